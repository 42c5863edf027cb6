//! `修改` and `待办` as chat text: an edit's fields merged onto the record's own and
//! checked against its kind's declaration in the command table; the confirmer's queue.

use crate::commands::args::report_input;
use crate::commands::parse::{Value, read_value};
use crate::commands::table::{COMMANDS, CommandId};
use crate::domain::kind::RecordKind;
use crate::service::{Ctx, Outcome, correct, refuse};
use crate::store::Conn;
use std::collections::BTreeMap;

/// How many waiting records `待办` lists before it says how many more there are.
const TODO_SHOWN: usize = 15;

/// `修改 #N 字段=值…`.
pub async fn edit(ctx: &Ctx<'_>, conn: &mut Conn, id: i64, changes: &BTreeMap<&'static str, Value>) -> Outcome {
    let record = correct::editable(ctx, conn, id).await?;
    let Some(spec) = COMMANDS.iter().find(|c| c.id == CommandId::Report(record.kind)) else {
        return refuse(format!("#{id} 不能修改。"));
    };
    if changes.is_empty() {
        let keys: Vec<&str> = spec.fields.iter().map(|f| f.key).collect();
        return refuse(format!(
            "请写明要修改的字段，例如「修改 #{id} {}=新值」。可修改：{}。",
            keys[0],
            keys.join("、")
        ));
    }
    if let Some(key) = changes.keys().find(|k| spec.field(k).is_none()) {
        let keys: Vec<&str> = spec.fields.iter().map(|f| f.key).collect();
        return refuse(format!("「{key}」不是{}的字段。#{id} 可修改：{}。", record.kind.label(), keys.join("、")));
    }
    // The record's fields as reported, read back as the parser reads them.
    let stored: serde_json::Value = serde_json::from_str(&record.fields).unwrap_or_default();
    let mut values: BTreeMap<&'static str, Value> = BTreeMap::new();
    for field in spec.fields {
        if let Some(text) = stored.get(field.key).and_then(|v| v.as_str())
            && let Ok(value) = read_value(field.ty, text, ctx.today())
        {
            values.insert(field.key, value);
        }
    }
    for (key, value) in changes {
        let field = spec.field(key).map_or(*key, |f| f.key);
        values.insert(field, value.clone());
    }
    let input = match report_input(spec, &values, record.kind) {
        Ok(input) => input,
        Err(e) => return refuse(e.explain(ctx.today())),
    };
    correct::edit(ctx, conn, id, &input).await
}

/// `待办`.
pub async fn todo(ctx: &Ctx<'_>, conn: &mut Conn) -> Outcome {
    let waiting = correct::todo(ctx, conn).await?;
    if waiting.is_empty() {
        return Ok("目前没有等待您确认的记录。".into());
    }
    let mut lines = vec![format!("📥 待办 {} 条（最早的在前）", waiting.len())];
    for (r, since) in waiting.iter().take(TODO_SHOWN) {
        let age = age(ctx.now_ms() - since);
        let what = match r.kind {
            RecordKind::Placement => format!("#{} 在岗确认「{}」{}", r.id, r.what(), r.reporter_name),
            kind => format!("#{} {}「{}」{}", r.id, kind.label(), r.what(), r.reporter_name),
        };
        lines.push(format!("{what} · 等待{age}"));
    }
    if waiting.len() > TODO_SHOWN {
        lines.push(format!("……另有 {} 条", waiting.len() - TODO_SHOWN));
    }
    lines.push("回复「确认 #编号」或「驳回 #编号 原因」；上岗：「在岗 #编号」/「离职 #编号」。".into());
    Ok(lines.join("\n"))
}

/// `3天`, `5小时`, `不到1小时`.
fn age(ms: i64) -> String {
    let hours = ms.max(0) / 3_600_000;
    match (hours / 24, hours % 24) {
        (0, 0) => "不到1小时".into(),
        (0, h) => format!("{h}小时"),
        (d, _) => format!("{d}天"),
    }
}
