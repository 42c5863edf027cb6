//! Who may do what: the one permission table. Chat commands, card presses and the web
//! console all ask it (through [`super::Ctx::authorize`]); the chat's help text lists
//! what it allows. Rules about a particular record (nobody decides or audits their
//! own; a record is decided by its receiving department) are here too.

use super::{Outcome, refuse};
use crate::config::Settings;
use crate::store::directory::Person;
use crate::store::records::Record;

/// Who may use an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Anyone active in the directory.
    Everyone,
    /// Confirmers of a receiving department.
    Confirmer,
    /// The audit group (业绩审核组).
    Audit,
    Admin,
    /// Finance (结算中心, `roles.finance`): settlement and stakes paid. Admins hold it too.
    Finance,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Everyone => "全体员工",
            Role::Confirmer => "接收部门负责人",
            Role::Audit => "业绩审核组",
            Role::Admin => "管理员",
            Role::Finance => "结算中心或管理员",
        }
    }
}

/// Everything people can do, whatever the entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Report,
    Mine,
    Help,
    Standings,
    Join,
    Assign,
    Confirm,
    Reject,
    OnJob,
    Left,
    Review,
    Void,
    Restore,
    Finalise,
    Settle,
    Withdraw,
    Edit,
    Appeal,
    Todo,
    /// 维持 / 改判 of an appeal.
    Judge,
    /// 缴费: a stake recorded as paid.
    MarkPaid,
    /// 登记老渠道 (Talent Recruitment's confirmers).
    RegisterChannel,
    /// 调队: a member moved to another team.
    Move,
    /// 退出PK: leaving a contest oneself.
    Leave,
    /// 移出: an admin takes a member out of a contest.
    Remove,
    /// The web console's 管理 page (contests and teams, stakes, people).
    Manage,
    /// 看板链接: a contest's read-only TV board link, shown or rotated.
    BoardLink,
}

impl Operation {
    pub const ALL: [Operation; 27] = [
        Operation::Report,
        Operation::Mine,
        Operation::Help,
        Operation::Standings,
        Operation::Join,
        Operation::Assign,
        Operation::Confirm,
        Operation::Reject,
        Operation::OnJob,
        Operation::Left,
        Operation::Review,
        Operation::Void,
        Operation::Restore,
        Operation::Finalise,
        Operation::Settle,
        Operation::Withdraw,
        Operation::Edit,
        Operation::Appeal,
        Operation::Todo,
        Operation::Judge,
        Operation::MarkPaid,
        Operation::RegisterChannel,
        Operation::Move,
        Operation::Leave,
        Operation::Remove,
        Operation::Manage,
        Operation::BoardLink,
    ];

    /// The permission table.
    pub fn role(self) -> Role {
        match self {
            // Withdraw, edit and appeal: anyone, on their own record (see `may_correct`).
            Operation::Report
            | Operation::Mine
            | Operation::Help
            | Operation::Standings
            | Operation::Join
            | Operation::Withdraw
            | Operation::Edit
            | Operation::Appeal
            | Operation::Leave => Role::Everyone,
            Operation::Confirm
            | Operation::Reject
            | Operation::OnJob
            | Operation::Left
            | Operation::Todo
            | Operation::RegisterChannel => Role::Confirmer,
            Operation::Review | Operation::Void | Operation::Restore | Operation::Finalise | Operation::Judge => {
                Role::Audit
            }
            Operation::Assign | Operation::Move | Operation::Remove | Operation::Manage | Operation::BoardLink => {
                Role::Admin
            }
            Operation::Settle | Operation::MarkPaid => Role::Finance,
        }
    }

    /// The operation's name in messages (the chat command's name).
    pub fn label(self) -> &'static str {
        match self {
            Operation::Report => "报备",
            Operation::Mine => "我的",
            Operation::Help => "帮助",
            Operation::Standings => "排行",
            Operation::Join => "加入PK",
            Operation::Assign => "分配",
            Operation::Confirm => "确认",
            Operation::Reject => "驳回",
            Operation::OnJob => "在岗",
            Operation::Left => "离职",
            Operation::Review => "待审",
            Operation::Void => "作废",
            Operation::Restore => "恢复",
            Operation::Finalise => "终审",
            Operation::Settle => "结算",
            Operation::Withdraw => "撤回",
            Operation::Edit => "修改",
            Operation::Appeal => "申诉",
            Operation::Todo => "待办",
            Operation::Judge => "维持/改判",
            Operation::MarkPaid => "缴费",
            Operation::RegisterChannel => "登记老渠道",
            Operation::Move => "调队",
            Operation::Leave => "退出PK",
            Operation::Remove => "移出",
            Operation::Manage => "管理",
            Operation::BoardLink => "看板链接",
        }
    }
}

/// Whether `person` holds `role`.
pub fn has_role(settings: &Settings, person: &Person, role: Role) -> bool {
    match role {
        Role::Everyone => true,
        Role::Confirmer => person.confirmer,
        Role::Audit => settings.roles.audit_group.contains(&person.userid),
        Role::Admin => settings.roles.admins.contains(&person.userid),
        Role::Finance => {
            settings.roles.finance.contains(&person.userid) || settings.roles.admins.contains(&person.userid)
        }
    }
}

/// Whether `person` may do `op` at all (a record may still refuse them).
pub fn allows(settings: &Settings, person: &Person, op: Operation) -> bool {
    has_role(settings, person, op.role())
}

/// A decision on a record: only a confirmer of its receiving department, never its
/// reporter.
pub fn may_decide(person: &Person, record: &Record) -> Outcome<()> {
    let dept = record.kind.receiving_dept();
    if record.reporter == person.userid {
        return refuse(format!("#{} 是您本人报备的，不能由自己确认或驳回。", record.id));
    }
    if !person.confirmer || person.kind != dept {
        return refuse(format!("#{} 须由{}的确认人处理。", record.id, dept.label()));
    }
    Ok(())
}

/// A void or restore: never of one's own record.
pub fn may_audit(person: &Person, record: &Record) -> Outcome<()> {
    if record.reporter == person.userid {
        return refuse(format!("#{} 是您本人报备的，不能由自己作废或恢复，请由审核组其他成员处理。", record.id));
    }
    Ok(())
}

/// A correction (撤回, 修改, 申诉): only by the record's reporter.
pub fn may_correct(person: &Person, record: &Record, op: Operation) -> Outcome<()> {
    if record.reporter != person.userid {
        return refuse(format!("#{} 不是您报备的：只有报备人本人可以{}。", record.id, op.label()));
    }
    Ok(())
}
