//! `结算 月份=YYYY-MM` (admins): the month's settlement summary in chat, and the XLSX
//! sent as a WeCom file message.

use crate::commands::parse::Parsed;
use crate::commands::{CommandError, CommandResult, Ctx, refuse};
use crate::settlement::compute;
use crate::store::outbox::{self, NewMessage};
use base64::Engine;
use serde_json::json;
use sqlx::SqliteConnection;

/// The outbox API that uploads a file (`media/upload`) and sends it (`message/send`).
pub const FILE_SEND: &str = "file/send";

pub async fn run(ctx: &Ctx<'_>, conn: &mut SqliteConnection, p: &Parsed) -> CommandResult {
    let month = p.month("月份").ok_or_else(|| CommandError::User("缺少月份".into()))?;
    let report = compute(conn, ctx.settings, month).await?;
    if report.is_empty() {
        return refuse(format!("{month} 没有可结算的记录（待确认 {} 条）。", report.pending));
    }
    let xlsx = report.xlsx().map_err(|e| {
        tracing::error!(error = %e, "settlement workbook could not be built");
        CommandError::User("结算文件生成失败，请联系管理员查看日志。".into())
    })?;
    let file_name = format!("{}.xlsx", report.file_stem());
    let payload = json!({
        "touser": ctx.sender.userid,
        "agentid": ctx.settings.wecom.agent_id,
        "file_name": file_name,
        "content_base64": base64::engine::general_purpose::STANDARD.encode(xlsx),
    });
    let msg = NewMessage { api: FILE_SEND.into(), target: None, payload, reference: None };
    outbox::enqueue(conn, ctx.now_ms(), &msg).await?;
    report.record(conn, &ctx.sender.userid, ctx.now_ms()).await?;
    Ok(format!("{}\n结算文件 {file_name} 随后发送给您。", report.summary()))
}
