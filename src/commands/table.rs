//! The command table: every chat command declared once, with its aliases, fields and
//! help, and the operation it performs (whose role the service's permission table
//! holds). The parser, the help text and the permission check all read these
//! declarations, so they cannot drift apart.

use crate::domain::kind::RecordKind;
use crate::domain::month::Month;
use crate::service::access::{Operation, Role};
use chrono::NaiveDate;

/// What a command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandId {
    Report(RecordKind),
    Mine,
    Help,
    Confirm,
    Reject,
    OnJob,
    LeftJob,
    Standings,
    JoinPk,
    Assign,
    Void,
    Restore,
    Review,
    Finalise,
    Settle,
    Withdraw,
    Edit,
    Appeal,
    Todo,
    Uphold,
    Overturn,
    MarkPaid,
    RegisterChannel,
    Move,
    Leave,
    Remove,
    BoardLink,
}

/// How a field's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A name: up to 60 characters.
    Name,
    /// Free text: up to 200 characters.
    Note,
    Date,
    /// A date with an optional time.
    DateTime,
    /// Yuan; stored as fen.
    Amount,
    /// `12` or `#12`.
    RecordNo,
    /// One or more record numbers: `#4 #5 #6`.
    RecordNos,
    /// 直接 / 转接.
    Mode,
    /// `YYYY-MM`.
    Month,
    CreditCode,
    /// A positive whole number (a page).
    Number,
    /// One of the listed words.
    Choice(&'static [&'static str]),
}

impl FieldType {
    /// What to type, for usage lines; example dates are today's (a meeting: tomorrow's).
    pub fn hint(self, today: NaiveDate) -> String {
        match self {
            FieldType::Name | FieldType::Note => "…".into(),
            FieldType::Date => today.to_string(),
            FieldType::DateTime => format!("{} 14:30", today.succ_opt().unwrap_or(today)),
            FieldType::Amount => "金额(元)".into(),
            FieldType::RecordNo | FieldType::RecordNos => "#编号".into(),
            FieldType::Mode => "直接|转接".into(),
            FieldType::Month => Month::of(today).to_string(),
            FieldType::CreditCode => "18位代码".into(),
            FieldType::Number => "2".into(),
            FieldType::Choice(words) => words.first().copied().unwrap_or("…").into(),
        }
    }
}

#[derive(Debug)]
pub struct Field {
    pub key: &'static str,
    pub aliases: &'static [&'static str],
    pub ty: FieldType,
    pub required: bool,
}

#[derive(Debug)]
pub struct CommandSpec {
    pub id: CommandId,
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub summary: &'static str,
    pub fields: &'static [Field],
    /// Fields that bare words fill, in order (`确认 12`, `驳回 #12 客户不真实`); a last
    /// `Note` positional takes the rest of the text.
    pub positional: &'static [&'static str],
}

/// Commands are the same when their ids are.
impl PartialEq for CommandSpec {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for CommandSpec {}

impl CommandId {
    /// The operation the command performs.
    pub fn operation(self) -> Operation {
        match self {
            CommandId::Report(_) => Operation::Report,
            CommandId::Mine => Operation::Mine,
            CommandId::Help => Operation::Help,
            CommandId::Confirm => Operation::Confirm,
            CommandId::Reject => Operation::Reject,
            CommandId::OnJob => Operation::OnJob,
            CommandId::LeftJob => Operation::Left,
            CommandId::Standings => Operation::Standings,
            CommandId::JoinPk => Operation::Join,
            CommandId::Assign => Operation::Assign,
            CommandId::Void => Operation::Void,
            CommandId::Restore => Operation::Restore,
            CommandId::Review => Operation::Review,
            CommandId::Finalise => Operation::Finalise,
            CommandId::Settle => Operation::Settle,
            CommandId::Withdraw => Operation::Withdraw,
            CommandId::Edit => Operation::Edit,
            CommandId::Appeal => Operation::Appeal,
            CommandId::Todo => Operation::Todo,
            CommandId::Uphold | CommandId::Overturn => Operation::Judge,
            CommandId::MarkPaid => Operation::MarkPaid,
            CommandId::RegisterChannel => Operation::RegisterChannel,
            CommandId::Move => Operation::Move,
            CommandId::Leave => Operation::Leave,
            CommandId::Remove => Operation::Remove,
            CommandId::BoardLink => Operation::BoardLink,
        }
    }
}

impl CommandSpec {
    /// Who may use the command (the service's permission table).
    pub fn role(&self) -> Role {
        self.id.operation().role()
    }

    pub fn field(&self, key: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.key == key || f.aliases.contains(&key))
    }

    /// One usage line: `C类 公司=… 联系人=… [方向=…]`, example dates of `today`.
    pub fn usage(&self, today: NaiveDate) -> String {
        self.usage_of(self.fields.iter(), today)
    }

    /// The usage with the required fields only (`C类 公司=… 联系人=… […]`), for lists.
    pub fn short_usage(&self, today: NaiveDate) -> String {
        let mut usage = self.usage_of(self.fields.iter().filter(|f| f.required), today);
        if self.id != CommandId::Edit && self.fields.iter().any(|f| !f.required) {
            usage.push_str(" […]");
        }
        usage
    }

    fn usage_of<'a>(&self, fields: impl Iterator<Item = &'a Field>, today: NaiveDate) -> String {
        if self.id == CommandId::Edit {
            // Its fields are those of the record's kind.
            return format!("{} #编号 字段=新值", self.name);
        }
        let mut parts = vec![self.name.to_owned()];
        for field in fields {
            let numbers = matches!(field.ty, FieldType::RecordNo | FieldType::RecordNos);
            let item = if self.positional.contains(&field.key) && numbers {
                field.ty.hint(today)
            } else if self.positional.contains(&field.key) {
                field.key.to_owned()
            } else {
                format!("{}={}", field.key, field.ty.hint(today))
            };
            parts.push(if field.required { item } else { format!("[{item}]") });
        }
        parts.join(" ")
    }
}

const fn req(key: &'static str, aliases: &'static [&'static str], ty: FieldType) -> Field {
    Field { key, aliases, ty, required: true }
}

const fn opt(key: &'static str, aliases: &'static [&'static str], ty: FieldType) -> Field {
    Field { key, aliases, ty, required: false }
}

const CREDIT: Field = opt("信用代码", &["统一社会信用代码", "社会信用代码"], FieldType::CreditCode);
const NOTE: Field = opt("备注", &["说明"], FieldType::Note);
const MODE: Field = opt("方式", &["促成方式"], FieldType::Mode);
const CLOSER: Field = opt("接手", &["接手人", "促成人"], FieldType::Name);
const COMPANY: Field = req("公司", &["公司名称", "客户", "客户名称", "企业"], FieldType::Name);
const CHANNEL_FIELDS: &[Field] = &[
    req("名称", &["渠道名称", "院校", "学校", "机构"], FieldType::Name),
    opt("联系人", &["关键人", "对接人"], FieldType::Name),
    NOTE,
    MODE,
    CLOSER,
];
const RECORD_NO: Field = req("编号", &["单号"], FieldType::RecordNo);
/// `确认 #4 #5 #6`: several records decided alike in one message.
const RECORD_NOS: Field = req("编号", &["单号"], FieldType::RecordNos);
const REASON: Field = opt("原因", &["理由"], FieldType::Note);
/// Every field a report of any kind has: what `修改` may change (the record's kind
/// decides which of them apply).
const EDIT_FIELDS: &[Field] = &[
    RECORD_NO,
    opt("公司", &["公司名称", "客户", "客户名称", "企业"], FieldType::Name),
    opt("名称", &["渠道名称", "院校", "学校", "机构"], FieldType::Name),
    opt("姓名", &["人员", "员工姓名"], FieldType::Name),
    opt("联系人", &["关键人", "对接人"], FieldType::Name),
    opt("方向", &["业务方向"], FieldType::Note),
    opt("约面", &["约面时间", "面谈", "面谈时间"], FieldType::DateTime),
    opt("需求", &["产品需求"], FieldType::Note),
    opt("金额", &["合同金额", "成交金额"], FieldType::Amount),
    opt("合同号", &["合同编号"], FieldType::Name),
    opt("入职", &["入职日期", "入职时间"], FieldType::Date),
    opt("渠道", &["来源", "来源渠道"], FieldType::Name),
    opt("老客户", &["原客户", "介绍人"], FieldType::Name),
    opt("新客户", &["被介绍客户"], FieldType::Name),
    CREDIT,
    NOTE,
    MODE,
    CLOSER,
];
const CONTEST: Field = opt("比赛", &["PK", "赛事"], FieldType::Name);

/// Every command, in the order help lists them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        id: CommandId::Report(RecordKind::LeadC),
        name: "C类",
        aliases: &["C", "C类客户"],
        summary: "报备C类客户：已沟通业务方向、添加关键人微信并转接客户成功部",
        fields: &[
            COMPANY,
            req("联系人", &["关键人", "对接人"], FieldType::Name),
            opt("方向", &["业务方向"], FieldType::Note),
            CREDIT,
            NOTE,
            MODE,
            CLOSER,
        ],
        positional: &[],
    },
    CommandSpec {
        id: CommandId::Report(RecordKind::LeadB),
        name: "B类",
        aliases: &["B", "B类客户"],
        summary: "报备B类客户：需求基本锁定且约面成功",
        fields: &[
            COMPANY,
            req("约面", &["约面时间", "面谈", "面谈时间"], FieldType::DateTime),
            opt("需求", &["产品需求"], FieldType::Note),
            CREDIT,
            NOTE,
        ],
        positional: &[],
    },
    CommandSpec {
        id: CommandId::Report(RecordKind::LeadA),
        name: "A类",
        aliases: &["A", "A类客户"],
        summary: "报备A类客户：已与集团签订合作协议",
        fields: &[
            COMPANY,
            req("金额", &["合同金额", "成交金额"], FieldType::Amount),
            opt("合同号", &["合同编号"], FieldType::Name),
            CREDIT,
            NOTE,
        ],
        positional: &[],
    },
    CommandSpec {
        id: CommandId::Report(RecordKind::ChannelSchool),
        name: "院校渠道",
        aliases: &["新增院校渠道"],
        summary: "报备新增院校渠道：已签订实习生合作协议",
        fields: CHANNEL_FIELDS,
        positional: &[],
    },
    CommandSpec {
        id: CommandId::Report(RecordKind::ChannelAgency),
        name: "机构渠道",
        aliases: &["新增机构渠道"],
        summary: "报备新增机构渠道：签订合作协议，输送3人在岗满3天后有效",
        fields: CHANNEL_FIELDS,
        positional: &[],
    },
    CommandSpec {
        id: CommandId::Report(RecordKind::ChannelPerson),
        name: "个人渠道",
        aliases: &["新增个人渠道"],
        summary: "报备新增个人渠道：签订合作协议，输送1人在岗满3天后有效",
        fields: CHANNEL_FIELDS,
        positional: &[],
    },
    CommandSpec {
        id: CommandId::Report(RecordKind::Placement),
        name: "上岗",
        aliases: &["安置", "安置上岗", "新增安置上岗"],
        summary: "报备安置上岗：已办理入职，在岗满3天后有效",
        fields: &[
            req("姓名", &["人员", "员工姓名"], FieldType::Name),
            req("入职", &["入职日期", "入职时间"], FieldType::Date),
            opt("渠道", &["来源", "来源渠道"], FieldType::Name),
            NOTE,
        ],
        positional: &[],
    },
    CommandSpec {
        id: CommandId::Report(RecordKind::Referral),
        name: "转介绍",
        aliases: &["裂变"],
        summary: "报备老客户转介绍的新客户",
        fields: &[
            req("老客户", &["原客户", "介绍人"], FieldType::Name),
            req("新客户", &["被介绍客户"], FieldType::Name),
            NOTE,
        ],
        positional: &[],
    },
    CommandSpec {
        id: CommandId::Mine,
        name: "我的",
        aliases: &["积分", "我的积分"],
        summary: "查看本人当月（或指定月份）的积分和记录",
        fields: &[opt("月份", &["月"], FieldType::Month)],
        positional: &["月份"],
    },
    CommandSpec {
        id: CommandId::Standings,
        name: "排行",
        aliases: &["榜单", "排行榜"],
        summary: "查看PK比赛当前排名",
        fields: &[CONTEST],
        positional: &["比赛"],
    },
    CommandSpec {
        id: CommandId::JoinPk,
        name: "加入PK",
        aliases: &["加入"],
        summary: "报名加入PK队伍（按职级缴纳PK金）",
        fields: &[req("队伍", &["战队", "小组", "队"], FieldType::Name), CONTEST],
        positional: &["队伍"],
    },
    CommandSpec {
        id: CommandId::Withdraw,
        name: "撤回",
        aliases: &["撤销"],
        summary: "撤回本人一条待确认的记录",
        fields: &[RECORD_NO, REASON],
        positional: &["编号", "原因"],
    },
    CommandSpec {
        id: CommandId::Edit,
        name: "修改",
        aliases: &["更正"],
        summary: "修改本人待确认的记录，如 修改 #3 金额=60万",
        fields: EDIT_FIELDS,
        positional: &["编号"],
    },
    CommandSpec {
        id: CommandId::Appeal,
        name: "申诉",
        aliases: &[],
        summary: "对被驳回的记录申诉（每条一次，须写明理由）",
        fields: &[RECORD_NO, req("理由", &["原因"], FieldType::Note)],
        positional: &["编号", "理由"],
    },
    CommandSpec {
        id: CommandId::Leave,
        name: "退出PK",
        aliases: &["退出"],
        summary: "截止前退出PK比赛（不能再次加入）",
        fields: &[CONTEST],
        positional: &["比赛"],
    },
    CommandSpec {
        id: CommandId::Help,
        name: "帮助",
        aliases: &["help", "?", "菜单"],
        summary: "查看可用命令；「帮助 C类」查看一个命令的写法",
        fields: &[opt("命令", &[], FieldType::Name)],
        positional: &["命令"],
    },
    CommandSpec {
        id: CommandId::Todo,
        name: "待办",
        aliases: &["我的待办", "待确认"],
        summary: "查看等待我确认的记录（最早的在前）",
        fields: &[],
        positional: &[],
    },
    CommandSpec {
        id: CommandId::RegisterChannel,
        name: "登记老渠道",
        aliases: &["老渠道"],
        summary: "登记活动前已有的老渠道（招商引才事业部确认人）",
        fields: &[req("名称", &["渠道名称", "渠道"], FieldType::Name)],
        positional: &["名称"],
    },
    CommandSpec {
        id: CommandId::Confirm,
        name: "确认",
        aliases: &["通过"],
        summary: "确认待确认的记录（可一次写多个编号）",
        fields: &[RECORD_NOS, CLOSER],
        positional: &["编号"],
    },
    CommandSpec {
        id: CommandId::Reject,
        name: "驳回",
        aliases: &["退回"],
        summary: "驳回一条待确认的记录（须写明原因）",
        fields: &[RECORD_NO, req("原因", &["理由"], FieldType::Note)],
        positional: &["编号", "原因"],
    },
    CommandSpec {
        id: CommandId::OnJob,
        name: "在岗",
        aliases: &["在岗满3天"],
        summary: "确认上岗人员已在岗满3天（可一次写多个编号）",
        fields: &[RECORD_NOS],
        positional: &["编号"],
    },
    CommandSpec {
        id: CommandId::LeftJob,
        name: "离职",
        aliases: &["未满3天离职"],
        summary: "上岗人员未满3天离职（不计业绩）",
        fields: &[RECORD_NO, REASON],
        positional: &["编号", "原因"],
    },
    CommandSpec {
        id: CommandId::Review,
        name: "待审",
        aliases: &["审核"],
        summary: "查看超时未确认、申诉、驳回作废和需核实的记录",
        fields: &[CONTEST, opt("页", &["页码"], FieldType::Number)],
        positional: &["比赛"],
    },
    CommandSpec {
        id: CommandId::Void,
        name: "作废",
        aliases: &[],
        summary: "作废一条记录（须写明原因）",
        fields: &[RECORD_NO, req("原因", &["理由"], FieldType::Note)],
        positional: &["编号", "原因"],
    },
    CommandSpec {
        id: CommandId::Restore,
        name: "恢复",
        aliases: &[],
        summary: "恢复一条已作废的记录",
        fields: &[RECORD_NO, opt("原因", &["理由"], FieldType::Note)],
        positional: &["编号", "原因"],
    },
    CommandSpec {
        id: CommandId::Finalise,
        name: "终审",
        aliases: &[],
        summary: "截止后终审比赛结果并发放PK奖金",
        fields: &[req("比赛", &["PK", "赛事"], FieldType::Name), opt("待定", &[], FieldType::Choice(&["不计"]))],
        positional: &["比赛"],
    },
    CommandSpec {
        id: CommandId::Uphold,
        name: "维持",
        aliases: &["维持驳回"],
        summary: "处理申诉：维持驳回",
        fields: &[RECORD_NO, REASON],
        positional: &["编号", "原因"],
    },
    CommandSpec {
        id: CommandId::Overturn,
        name: "改判",
        aliases: &[],
        summary: "处理申诉：改判为确认",
        fields: &[RECORD_NO, REASON],
        positional: &["编号", "原因"],
    },
    CommandSpec {
        id: CommandId::Assign,
        name: "分配",
        aliases: &[],
        summary: "把员工分配到PK队伍",
        fields: &[
            req("人员", &["员工", "姓名"], FieldType::Name),
            req("队伍", &["战队", "小组", "队"], FieldType::Name),
            CONTEST,
        ],
        positional: &[],
    },
    CommandSpec {
        id: CommandId::Move,
        name: "调队",
        aliases: &["换队"],
        summary: "把队员调到另一支队伍（此后的业绩计入新队）",
        fields: &[
            req("人员", &["员工", "姓名"], FieldType::Name),
            req("队伍", &["战队", "小组", "队"], FieldType::Name),
            CONTEST,
        ],
        positional: &[],
    },
    CommandSpec {
        id: CommandId::Remove,
        name: "移出",
        aliases: &["移出PK"],
        summary: "把队员移出PK比赛",
        fields: &[req("人员", &["员工", "姓名"], FieldType::Name), CONTEST],
        positional: &["人员"],
    },
    CommandSpec {
        id: CommandId::BoardLink,
        name: "看板链接",
        aliases: &["看板", "大屏"],
        summary: "获取PK比赛的电视看板只读链接（加「换新」换新链接，旧链接立即失效）",
        fields: &[CONTEST, opt("操作", &[], FieldType::Choice(&["换新"]))],
        positional: &["比赛", "操作"],
    },
    CommandSpec {
        id: CommandId::MarkPaid,
        name: "缴费",
        aliases: &["已缴费", "交PK金"],
        summary: "登记某人的PK金已缴",
        fields: &[req("人员", &["员工", "姓名"], FieldType::Name), CONTEST],
        positional: &["人员"],
    },
    CommandSpec {
        id: CommandId::Settle,
        name: "结算",
        aliases: &[],
        summary: "生成月度奖励结算表",
        fields: &[req("月份", &["月"], FieldType::Month)],
        positional: &["月份"],
    },
];

/// The command whose name or alias is `word` (Latin letters in any case).
pub fn lookup(word: &str) -> Option<&'static CommandSpec> {
    let word = word.to_lowercase();
    COMMANDS.iter().find(|c| c.name.to_lowercase() == word || c.aliases.iter().any(|a| a.to_lowercase() == word))
}

/// Every name and alias, longest first (for `确认12`-style input without a space).
pub fn names_longest_first() -> Vec<(&'static str, &'static CommandSpec)> {
    let mut names: Vec<_> = COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()).map(move |n| (n, c)))
        .collect();
    names.sort_by_key(|(n, _)| std::cmp::Reverse(n.chars().count()));
    names
}

/// Whether `key` is a field of any command (so that a misplaced field is reported as
/// a field, not read as text).
pub fn is_known_key(key: &str) -> bool {
    COMMANDS.iter().any(|c| c.field(key).is_some())
}
