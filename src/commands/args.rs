//! Each command's typed arguments, built once from its parsed fields: handlers never
//! look a field up by its key, and a required field is there because the parser
//! checked it.

use crate::commands::parse::{ParseError, Value, fields_json};
use crate::commands::table::{CommandId, CommandSpec};
use crate::domain::kind::RecordKind;
use crate::domain::month::Month;
use crate::domain::record::Mode;
use crate::domain::text::BoundedText;
use crate::service::correct::Verdict;
use crate::service::decide::Action;
use crate::service::report::{ReportInput, Subject};
use std::collections::BTreeMap;

/// A chat command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Report(ReportInput),
    Mine {
        month: Option<Month>,
    },
    /// `帮助`, or `帮助 C类`: one command's fields with an example.
    Help {
        topic: Option<String>,
    },
    /// 确认, 驳回, 在岗, 离职.
    Decide {
        id: i64,
        action: Action,
    },
    /// `确认 #4 #5 #6`: the same decision on each, each answered.
    DecideEach {
        ids: Vec<i64>,
        action: Action,
    },
    Standings {
        contest: Option<String>,
    },
    Join {
        team: String,
        contest: Option<String>,
    },
    Assign {
        person: String,
        team: String,
        contest: Option<String>,
    },
    Review {
        contest: Option<String>,
        page: u32,
    },
    Void {
        id: i64,
        reason: String,
    },
    Restore {
        id: i64,
        reason: Option<String>,
    },
    Finalise {
        contest: String,
        /// `待定=不计`: finalise without the records still undecided.
        exclude_pending: bool,
    },
    Settle {
        month: Month,
    },
    Withdraw {
        id: i64,
        reason: Option<String>,
    },
    /// `修改`: the fields given, as parsed (the record's kind decides which apply).
    Edit {
        id: i64,
        changes: BTreeMap<&'static str, Value>,
    },
    Appeal {
        id: i64,
        reason: String,
    },
    Todo,
    Judge {
        id: i64,
        verdict: Verdict,
        note: Option<String>,
    },
    MarkPaid {
        person: String,
        contest: Option<String>,
    },
    RegisterChannel {
        name: BoundedText,
    },
    Move {
        person: String,
        team: String,
        contest: Option<String>,
    },
    Leave {
        contest: Option<String>,
    },
    Remove {
        person: String,
        contest: Option<String>,
    },
    /// `看板链接 [比赛] [换新]`.
    BoardLink {
        contest: Option<String>,
        rotate: bool,
    },
}

/// The fields of one parsed command.
struct Fields<'a> {
    spec: &'static CommandSpec,
    values: &'a BTreeMap<&'static str, Value>,
}

impl Fields<'_> {
    fn get(&self, key: &'static str) -> Option<&Value> {
        self.values.get(key)
    }

    /// A required field's value; a table whose parser let it be absent is answered as
    /// the parser answers a missing field.
    fn required(&self, key: &'static str) -> Result<&Value, ParseError> {
        self.get(key).ok_or(ParseError::Missing { spec: self.spec, key })
    }

    fn text(&self, key: &'static str) -> Option<BoundedText> {
        match self.get(key) {
            Some(Value::Text(t)) => Some(t.clone()),
            _ => None,
        }
    }

    fn required_text(&self, key: &'static str) -> Result<BoundedText, ParseError> {
        match self.required(key)? {
            Value::Text(t) => Ok(t.clone()),
            _ => Err(ParseError::Missing { spec: self.spec, key }),
        }
    }

    fn string(&self, key: &'static str) -> Option<String> {
        self.text(key).map(|t| t.to_string())
    }

    fn record_no(&self) -> Result<i64, ParseError> {
        match self.required("编号")? {
            Value::RecordNo(n) => Ok(*n),
            _ => Err(ParseError::Missing { spec: self.spec, key: "编号" }),
        }
    }

    fn record_nos(&self) -> Result<Vec<i64>, ParseError> {
        match self.required("编号")? {
            Value::RecordNos(ns) => Ok(ns.clone()),
            Value::RecordNo(n) => Ok(vec![*n]),
            _ => Err(ParseError::Missing { spec: self.spec, key: "编号" }),
        }
    }

    fn month(&self) -> Option<Month> {
        match self.get("月份") {
            Some(Value::Month(m)) => Some(*m),
            _ => None,
        }
    }
}

/// The typed command for a spec and its checked fields.
pub fn build(spec: &'static CommandSpec, values: &BTreeMap<&'static str, Value>) -> Result<Command, ParseError> {
    let f = Fields { spec, values };
    Ok(match spec.id {
        CommandId::Report(kind) => Command::Report(report(&f, kind)?),
        CommandId::Mine => Command::Mine { month: f.month() },
        CommandId::Help => Command::Help { topic: f.string("命令") },
        CommandId::Confirm => decide_each(f.record_nos()?, Action::Confirm { closer: f.string("接手") }),
        CommandId::Reject => {
            Command::Decide { id: f.record_no()?, action: Action::Reject { reason: f.string("原因") } }
        }
        CommandId::OnJob => decide_each(f.record_nos()?, Action::OnJob),
        CommandId::LeftJob => {
            Command::Decide { id: f.record_no()?, action: Action::Left { reason: f.string("原因") } }
        }
        CommandId::Standings => Command::Standings { contest: f.string("比赛") },
        CommandId::JoinPk => {
            Command::Join { team: f.required_text("队伍")?.to_string(), contest: f.string("比赛") }
        }
        CommandId::Assign => Command::Assign {
            person: f.required_text("人员")?.to_string(),
            team: f.required_text("队伍")?.to_string(),
            contest: f.string("比赛"),
        },
        CommandId::Review => Command::Review {
            contest: f.string("比赛"),
            page: match f.get("页") {
                Some(Value::Number(n)) => *n,
                _ => 1,
            },
        },
        CommandId::Void => Command::Void { id: f.record_no()?, reason: f.required_text("原因")?.to_string() },
        CommandId::Restore => Command::Restore { id: f.record_no()?, reason: f.string("原因") },
        CommandId::Finalise => Command::Finalise {
            contest: f.required_text("比赛")?.to_string(),
            exclude_pending: f.get("待定").is_some(),
        },
        CommandId::Settle => Command::Settle { month: f.month().ok_or(ParseError::Missing { spec, key: "月份" })? },
        CommandId::Withdraw => Command::Withdraw { id: f.record_no()?, reason: f.string("原因") },
        CommandId::Edit => Command::Edit {
            id: f.record_no()?,
            changes: values.iter().filter(|(k, _)| **k != "编号").map(|(k, v)| (*k, v.clone())).collect(),
        },
        CommandId::Appeal => Command::Appeal { id: f.record_no()?, reason: f.required_text("理由")?.to_string() },
        CommandId::Todo => Command::Todo,
        CommandId::Uphold => Command::Judge { id: f.record_no()?, verdict: Verdict::Uphold, note: f.string("原因") },
        CommandId::MarkPaid => {
            Command::MarkPaid { person: f.required_text("人员")?.to_string(), contest: f.string("比赛") }
        }
        CommandId::RegisterChannel => Command::RegisterChannel { name: f.required_text("名称")? },
        CommandId::Move => Command::Move {
            person: f.required_text("人员")?.to_string(),
            team: f.required_text("队伍")?.to_string(),
            contest: f.string("比赛"),
        },
        CommandId::Leave => Command::Leave { contest: f.string("比赛") },
        CommandId::Remove => {
            Command::Remove { person: f.required_text("人员")?.to_string(), contest: f.string("比赛") }
        }
        CommandId::BoardLink => {
            // `看板链接 换新`: the one word fills the first positional.
            let contest = f.string("比赛");
            match contest.as_deref() {
                Some("换新") if f.get("操作").is_none() => Command::BoardLink { contest: None, rotate: true },
                _ => Command::BoardLink { contest, rotate: f.get("操作").is_some() },
            }
        }
        CommandId::Overturn => {
            Command::Judge { id: f.record_no()?, verdict: Verdict::Overturn, note: f.string("原因") }
        }
    })
}

pub fn report_input(
    spec: &'static CommandSpec,
    values: &BTreeMap<&'static str, Value>,
    kind: RecordKind,
) -> Result<ReportInput, ParseError> {
    report(&Fields { spec, values }, kind)
}

/// One decision, or the same on several records.
fn decide_each(mut ids: Vec<i64>, action: Action) -> Command {
    match ids.len() {
        1 => Command::Decide { id: ids.remove(0), action },
        _ => Command::DecideEach { ids, action },
    }
}

fn report(f: &Fields<'_>, kind: RecordKind) -> Result<ReportInput, ParseError> {
    let subject = match kind {
        RecordKind::LeadC | RecordKind::LeadB | RecordKind::LeadA => Subject::Client {
            name: f.required_text("公司")?,
            credit_code: match f.get("信用代码") {
                Some(Value::CreditCode(c)) => Some(c.clone()),
                _ => None,
            },
        },
        RecordKind::ChannelSchool | RecordKind::ChannelAgency | RecordKind::ChannelPerson => {
            Subject::Channel { name: f.required_text("名称")? }
        }
        RecordKind::Placement => Subject::Placement {
            person: f.required_text("姓名")?,
            onboard: match f.required("入职")? {
                Value::Date(d) => *d,
                _ => return Err(ParseError::Missing { spec: f.spec, key: "入职" }),
            },
            channel: f.text("渠道"),
        },
        RecordKind::Referral => {
            Subject::Referral { old_client: f.required_text("老客户")?, new_client: f.required_text("新客户")? }
        }
    };
    Ok(ReportInput {
        kind,
        subject,
        mode: match f.get("方式") {
            Some(Value::Mode(m)) => *m,
            _ => Mode::Direct,
        },
        closer: f.text("接手"),
        amount: match f.get("金额") {
            Some(Value::Amount(a)) => Some(*a),
            _ => None,
        },
        meeting: match f.get("约面") {
            Some(Value::DateTime(t)) => Some(*t),
            _ => None,
        },
        fields: fields_json(f.values),
    })
}
