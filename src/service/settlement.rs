//! The monthly settlement for finance (结算中心): computes every person's rewards for a
//! month and writes `settlement-YYYY-MM.csv` (UTF-8 with BOM, byte-identical for the
//! same data) and `settlement-YYYY-MM.xlsx` (per-person and per-department totals,
//! every line, referrals). Each run records the rules it used. Admins can also ask in
//! chat (`结算`): the summary, and the workbook sent as a file.

use crate::clock::format_ms;
use crate::config::Settings;
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::domain::month::Month;
use crate::domain::org::DeptKind;
use crate::domain::rewards::{self, Decision, Payee, PkFacts, PlacementSource, RecordFacts, Settlement};
use crate::service::access::Operation;
use crate::service::sheet::{Cell, Table};
use crate::service::{Ctx, Outcome, ServiceError, refuse};
use crate::store::outbox::{self, Api, NewMessage};
use crate::store::records::Origin;
use crate::store::settlement::{self as store, MemberRow, ReferralRow, RewardRow, Run};
use anyhow::Context;
use base64::Engine;
use rust_xlsxwriter::Workbook;
use serde_json::json;
use sqlx::SqliteConnection;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tracing::instrument;

/// A month's settlement with what finance and account managers need alongside it.
#[derive(Debug)]
pub struct Report {
    pub month: Month,
    pub settlement: Settlement,
    pub referrals: Vec<ReferralRow>,
    pub referral_benefit: String,
    /// Records of the month still waiting for a decision (not paid yet).
    pub pending: i64,
    /// The rules and targets used, as recorded with the run.
    pub rules: String,
    /// Every earlier run of this month under other rules than this one (finance may
    /// hold its files): when, and its total; oldest first.
    pub earlier_rules: Vec<(i64, Fen)>,
}

/// Computes a month from the database.
#[instrument(level = "debug", skip(conn, settings))]
pub async fn compute(conn: &mut SqliteConnection, settings: &Settings, month: Month) -> Result<Report, sqlx::Error> {
    let (from, to) = month.range_ms();
    let units = business_units(&store::departments(conn).await?);
    let unit = |dept: i64, name: &str| units.get(&dept).cloned().unwrap_or_else(|| name.to_owned());
    let records: Vec<RecordFacts> =
        store::confirmed_in(conn, from, to).await?.iter().map(|r| record_facts(r, &unit)).collect();
    let achieved: BTreeMap<(String, DeptKind), i64> = store::achieved_in(conn, from, to)
        .await?
        .into_iter()
        .map(|(userid, class, points)| ((userid, class), points))
        .collect();
    let names: BTreeMap<&str, &str> = settings.contests.iter().map(|d| (d.id.as_str(), d.name.as_str())).collect();
    let pk: Vec<PkFacts> = store::payouts_finalised_in(conn, from, to)
        .await?
        .into_iter()
        .map(|p| PkFacts {
            contest: names.get(p.contest_id.as_str()).map_or_else(|| p.contest_id.clone(), |n| (*n).to_owned()),
            rank: p.rank as u32,
            amount: Fen(p.amount_fen),
            decided: p.finalised_at.map(|at| Decision { at, by: p.finalised_by.clone().unwrap_or_default() }),
            payee: Payee {
                unit: unit(p.department_id, &p.department),
                userid: p.userid,
                name: p.name,
                employee_no: p.employee_no,
                department: p.department,
                class: p.class,
                lead: p.lead,
            },
        })
        .collect();
    let members: Vec<Payee> = store::target_members(conn).await?.into_iter().map(|m| member_payee(m, &unit)).collect();
    let settlement = rewards::settle(&settings.rewards, &settings.targets, &records, &pk, &achieved, &members);
    let rules = rules_json(settings);
    let earlier_rules = store::earlier_runs(conn, &month.to_string())
        .await?
        .into_iter()
        .filter(|(_, earlier, _)| *earlier != rules)
        .map(|(at, _, total)| (at, Fen(total)))
        .collect();
    Ok(Report {
        month,
        settlement,
        referrals: store::referrals_in(conn, from, to).await?,
        referral_benefit: settings.rewards.referral.benefit.clone(),
        pending: store::pending_in(conn, from, to).await?,
        rules,
        earlier_rules,
    })
}

/// A CS or TR member as the settlement (and `我的`) sees them.
pub fn member_payee(m: MemberRow, unit: &impl Fn(i64, &str) -> String) -> Payee {
    Payee {
        unit: unit(m.department_id, &m.department),
        userid: m.userid,
        name: m.name,
        employee_no: m.employee_no,
        department: m.department,
        class: m.class,
        lead: m.lead,
    }
}

/// Each department's business unit (事业部): the department directly under a root of
/// the tree (the company), or the root itself. Bad data (a cycle) ends where it loops.
fn business_units(departments: &[(i64, String, Option<i64>)]) -> HashMap<i64, String> {
    let tree: HashMap<i64, (&str, Option<i64>)> =
        departments.iter().map(|(id, name, parent)| (*id, (name.as_str(), *parent))).collect();
    let parent = |id: i64| tree.get(&id).and_then(|(_, p)| *p).filter(|p| tree.contains_key(p));
    let unit = |mut id: i64| {
        for _ in 0..tree.len() {
            match parent(id) {
                Some(up) if parent(up).is_some() => id = up,
                _ => break,
            }
        }
        tree.get(&id).map_or_else(String::new, |(name, _)| (*name).to_owned())
    };
    tree.keys().map(|id| (*id, unit(*id))).collect()
}

fn record_facts(r: &RewardRow, unit: &impl Fn(i64, &str) -> String) -> RecordFacts {
    let closer = match (&r.closer, &r.closer_name) {
        (Some(userid), Some(name)) => {
            let department = r.closer_dept.clone().unwrap_or_default();
            Some(Payee {
                userid: userid.clone(),
                name: name.clone(),
                employee_no: r.closer_no.clone(),
                unit: r.closer_dept_id.map_or_else(|| department.clone(), |id| unit(id, &department)),
                department,
                class: r.closer_class.unwrap_or(DeptKind::Other),
                lead: r.closer_lead.unwrap_or(false),
            })
        }
        _ => None,
    };
    RecordFacts {
        id: r.id,
        kind: r.kind,
        mode: r.mode,
        reporter: Payee {
            userid: r.reporter.clone(),
            name: r.reporter_name.clone(),
            employee_no: r.reporter_no.clone(),
            unit: unit(r.reporter_dept_id, &r.reporter_dept),
            department: r.reporter_dept.clone(),
            class: r.reporter_class,
            lead: r.reporter_lead,
        },
        closer,
        reported_at: r.occurred_at,
        decided: r.decided_at.map(|at| Decision { at, by: r.decided_by.clone().unwrap_or_default() }),
        contract: r.contract.clone(),
        amount: r.amount_fen.map(Fen),
        placement: (r.kind == RecordKind::Placement).then_some(match r.channel_origin {
            None => PlacementSource::SelfRecruited,
            Some(Origin::Existing) => PlacementSource::OldChannel,
            Some(Origin::Reported) => PlacementSource::NewChannel,
        }),
    }
}

/// `结算 月份`: the month's summary for the admin who asked, and the workbook sent to
/// them as a file.
pub async fn send_in_chat(ctx: &Ctx<'_>, conn: &mut SqliteConnection, month: Month) -> Outcome {
    let admin = ctx.authorize(Operation::Settle)?;
    let report = compute(conn, ctx.settings, month).await?;
    if report.is_empty() {
        return refuse(format!("{month} 没有可结算的记录（待确认 {} 条）。", report.pending));
    }
    let xlsx = report.xlsx().map_err(|e| {
        tracing::error!(error = %e, "settlement workbook could not be built");
        ServiceError::Refused("结算文件生成失败，请联系管理员查看日志。".into())
    })?;
    let file_name = format!("{}.xlsx", report.file_stem());
    let payload = json!({
        "touser": admin.userid,
        "agentid": ctx.settings.wecom.agent_id,
        "file_name": file_name,
        "content_base64": base64::engine::general_purpose::STANDARD.encode(xlsx),
    });
    let msg = NewMessage { api: Api::FileSend, target: None, payload, reference: None };
    outbox::enqueue(conn, ctx.now_ms(), &msg).await?;
    report.record(conn, &admin.userid, ctx.now_ms()).await?;
    Ok(format!(
        "{}
结算文件 {file_name} 随后发送给您。",
        report.summary()
    ))
}

/// Everything the amounts depend on, as one canonical JSON text.
fn rules_json(settings: &Settings) -> String {
    serde_json::json!({
        "rewards": settings.rewards,
        "targets": settings.targets,
    })
    .to_string()
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.settlement.lines.is_empty() && self.referrals.is_empty()
    }

    /// The CSV: one row per line (paid lines first), UTF-8 with a byte-order mark for
    /// Excel.
    pub fn csv(&self) -> anyhow::Result<Vec<u8>> {
        let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
        self.lines_table().write_csv(&mut writer)?;
        Ok(writer.into_inner()?)
    }

    /// The workbook: per person, per business unit and department, every line,
    /// referrals; each sheet with a total row.
    pub fn xlsx(&self) -> anyhow::Result<Vec<u8>> {
        let mut book = Workbook::new();
        self.people_table().write_sheet(&mut book)?;
        self.units_table().write_sheet(&mut book)?;
        let mut lines = self.lines_table();
        let total = self.settlement.total();
        let mut last = vec![Cell::text(self.month.to_string()), Cell::text("合计")];
        last.resize(LINE_HEADER.len() - 2, Cell::Empty);
        last.extend([Cell::text(format!("{} 条", self.settlement.lines.len())), Cell::Yuan(total)]);
        lines.push_bold(last);
        lines.write_sheet(&mut book)?;
        self.referrals_table().write_sheet(&mut book)?;
        Ok(book.save_to_buffer()?)
    }

    fn lines_table(&self) -> Table {
        let mut table = Table::new("明细", &LINE_HEADER);
        let month = self.month.to_string();
        let date = |ms: Option<i64>| ms.map(format_date).unwrap_or_default();
        for l in &self.settlement.lines {
            let p = &l.payee;
            table.push(vec![
                Cell::text(&month),
                Cell::text(&p.userid),
                Cell::text(p.employee_no.clone().unwrap_or_default()),
                Cell::text(&p.name),
                Cell::text(&p.unit),
                Cell::text(&p.department),
                Cell::text(l.record.map(|n| format!("#{n}")).unwrap_or_default()),
                Cell::text(&l.kind),
                Cell::text(&l.mode),
                Cell::text(&l.rule),
                Cell::text(date(l.reported_at)),
                Cell::text(date(l.decided.as_ref().map(|d| d.at))),
                Cell::text(l.decided.as_ref().map(|d| d.by.clone()).unwrap_or_default()),
                Cell::text(l.contract.clone().unwrap_or_default()),
                Cell::Yuan(l.amount),
            ]);
        }
        table
    }

    fn people_table(&self) -> Table {
        let header =
            ["月份", "账号", "工号", "姓名", "事业部", "部门", "月度指标", "完成积分", "是否完成", "差额", "金额(元)"];
        let mut table = Table::new("个人合计", &header);
        let month = self.month.to_string();
        for p in &self.settlement.people {
            let who = &p.payee;
            let mut row = vec![
                Cell::text(&month),
                Cell::text(&who.userid),
                Cell::text(who.employee_no.clone().unwrap_or_default()),
                Cell::text(&who.name),
                Cell::text(&who.unit),
                Cell::text(&who.department),
            ];
            match (p.target, p.missing()) {
                (Some((target, achieved)), Some(missing)) => row.extend([
                    Cell::Int(target),
                    Cell::Int(achieved),
                    Cell::text(if missing == 0 { "完成" } else { "未完成" }),
                    Cell::Int(missing),
                ]),
                _ => row.extend([Cell::Empty, Cell::Empty, Cell::Empty, Cell::Empty]),
            }
            row.push(Cell::Yuan(p.total));
            table.push(row);
        }
        let mut last = vec![Cell::text(&month), Cell::text("合计")];
        last.resize(header.len() - 2, Cell::Empty);
        last.extend([Cell::text(format!("{} 人", self.settlement.people.len())), Cell::Yuan(self.settlement.total())]);
        table.push_bold(last);
        table
    }

    /// Each business unit (bold, with its total), its departments beneath.
    fn units_table(&self) -> Table {
        let mut table = Table::new("部门合计", &["月份", "事业部", "部门", "金额(元)"]);
        let month = self.month.to_string();
        for u in &self.settlement.units {
            table.push_bold(vec![Cell::text(&month), Cell::text(&u.unit), Cell::Empty, Cell::Yuan(u.total)]);
            for (department, total) in &u.departments {
                table.push(vec![Cell::text(&month), Cell::Empty, Cell::text(department), Cell::Yuan(*total)]);
            }
        }
        table.push_bold(vec![Cell::text(&month), Cell::text("合计"), Cell::Empty, Cell::Yuan(self.settlement.total())]);
        table
    }

    fn referrals_table(&self) -> Table {
        let header = ["月份", "编号", "老客户", "新客户", "报备人", "报备时间", "老客户权益"];
        let mut table = Table::new("转介绍", &header);
        let month = self.month.to_string();
        for r in &self.referrals {
            table.push(vec![
                Cell::text(&month),
                Cell::text(format!("#{}", r.id)),
                Cell::text(&r.old_client),
                Cell::text(&r.new_client),
                Cell::text(&r.reporter_name),
                Cell::text(format_ms(r.occurred_at)),
                Cell::text(&self.referral_benefit),
            ]);
        }
        let count = format!("{} 条", self.referrals.len());
        table.push_bold(vec![Cell::text(&month), Cell::text("合计"), Cell::text(count)]);
        table
    }

    /// A few lines for the person who asked.
    pub fn summary(&self) -> String {
        let paid = self.settlement.people.iter().filter(|p| p.total.0 > 0).count();
        let mut lines = vec![format!(
            "{} 结算：{} 条明细，{paid} 人获奖，合计 {} 元。",
            self.month,
            self.settlement.lines.len(),
            self.settlement.total()
        )];
        let missed: Vec<String> = self
            .settlement
            .people
            .iter()
            .filter(|p| p.target_met() == Some(false))
            .map(|p| format!("{}（{}/{}）", p.payee.name, p.target.map_or(0, |t| t.1), p.target.map_or(0, |t| t.0)))
            .collect();
        if !missed.is_empty() {
            lines.push(format!("未完成月度任务指标：{}。", missed.join("、")));
        }
        if !self.referrals.is_empty() {
            lines.push(format!("转介绍 {} 条，老客户权益见“转介绍”表。", self.referrals.len()));
        }
        if self.pending > 0 {
            lines.push(format!("注意：本月还有 {} 条记录待确认，确认后需重新结算。", self.pending));
        }
        if !self.earlier_rules.is_empty() {
            lines.push(format!(
                "注意：本月此前有 {} 次结算用的奖励规则与本次不同：{}。当时生成的文件可能与本次金额不同；本次按当前规则计算。",
                self.earlier_rules.len(),
                earlier_runs_text(&self.earlier_rules)
            ));
        }
        lines.join("\n")
    }

    /// Records the run (rules used, totals).
    pub async fn record(&self, conn: &mut SqliteConnection, by: &str, now_ms: i64) -> Result<(), sqlx::Error> {
        let month = self.month.to_string();
        let run = Run {
            month: &month,
            run_at: now_ms,
            run_by: by,
            rules: &self.rules,
            total_fen: self.settlement.total().0,
            lines: self.settlement.lines.len() as i64,
            pending: self.pending,
        };
        store::record_run(conn, &run).await
    }

    pub fn file_stem(&self) -> String {
        format!("settlement-{}", self.month)
    }
}

/// The columns of the CSV and of the 明细 sheet.
const LINE_HEADER: [&str; 15] = [
    "月份",
    "账号",
    "工号",
    "姓名",
    "事业部",
    "部门",
    "编号",
    "类型",
    "方式",
    "规则",
    "报备日期",
    "确认日期",
    "确认人",
    "合同号",
    "金额(元)",
];

/// `2026-11-29` in Asia/Shanghai.
fn format_date(ms: i64) -> String {
    format_ms(ms).split(' ').next().unwrap_or_default().to_owned()
}

/// `2023-07-15 18:00（合计 7440.00 元）、…`: the latest few runs, oldest first.
fn earlier_runs_text(runs: &[(i64, Fen)]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<String> = runs
        .iter()
        .skip(runs.len().saturating_sub(SHOWN))
        .map(|(at, total)| format!("{}（合计 {total} 元）", format_ms(*at)))
        .collect();
    let more = if runs.len() > SHOWN { format!("（仅列出最近 {SHOWN} 次）") } else { String::new() };
    format!("{}{more}", shown.join("、"))
}

/// The settlement's files written under temporary names (`….partial`) beside where
/// they go, not yet in place. Dropped without [`Staged::publish`], they are removed.
#[derive(Debug)]
pub struct Staged {
    /// `(temporary, final)` paths.
    files: Vec<(PathBuf, PathBuf)>,
}

/// Writes the CSV and the XLSX under temporary names in `dir`: both, or neither.
pub fn stage(dir: &Path, stem: &str, csv: &[u8], xlsx: &[u8]) -> anyhow::Result<Staged> {
    let mut staged = Staged { files: Vec::new() };
    for (ext, bytes) in [("csv", csv), ("xlsx", xlsx)] {
        let target = dir.join(format!("{stem}.{ext}"));
        let temp = PathBuf::from(format!("{}.partial", target.display()));
        std::fs::write(&temp, bytes).with_context(|| format!("无法写入目录 {}", dir.display()))?;
        staged.files.push((temp, target));
    }
    Ok(staged)
}

impl Staged {
    /// Moves both files into place, or neither: on any failure the files already moved
    /// are taken back out, the ones they replaced are put back, and nothing new remains.
    pub fn publish(self) -> anyhow::Result<Published> {
        let mut published = Published { placed: Vec::new(), replaced: Vec::new(), kept: false };
        for (temp, target) in &self.files {
            if let Ok(meta) = std::fs::symlink_metadata(target) {
                if meta.is_dir() {
                    anyhow::bail!("无法写入 {}：已有同名目录", target.display());
                }
                // The file of an earlier run is kept aside until both new files are in place.
                let aside = PathBuf::from(format!("{}.previous", target.display()));
                std::fs::rename(target, &aside).with_context(|| format!("无法替换 {}", target.display()))?;
                published.replaced.push((aside, target.clone()));
            }
            std::fs::rename(temp, target).with_context(|| format!("无法写入 {}", target.display()))?;
            published.placed.push(target.clone());
        }
        Ok(published)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (temp, _) in &self.files {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// Both files in place. Dropped without [`Published::keep`] (the run could not be
/// recorded), they are taken out again and the files they replaced are put back.
#[derive(Debug)]
pub struct Published {
    placed: Vec<PathBuf>,
    /// `(set aside, original)` paths of the files of an earlier run.
    replaced: Vec<(PathBuf, PathBuf)>,
    kept: bool,
}

impl Published {
    /// Keeps the new files (the run is recorded) and returns their paths.
    pub fn keep(mut self) -> Vec<PathBuf> {
        self.kept = true;
        for (aside, _) in &self.replaced {
            let _ = std::fs::remove_file(aside);
        }
        std::mem::take(&mut self.placed)
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for path in &self.placed {
            let _ = std::fs::remove_file(path);
        }
        for (aside, original) in &self.replaced {
            if let Err(e) = std::fs::rename(aside, original) {
                tracing::error!(error = %e, file = %original.display(), "settlement file of an earlier run could not be put back");
            }
        }
    }
}
