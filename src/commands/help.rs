//! `帮助`: the commands the sender may use, generated from the command table and the
//! permission table; `帮助 C类`: one command's fields with an example; and a short
//! introduction for greetings and questions (你好, 在吗, 怎么报备, 规则).

use crate::commands::table::{self, COMMANDS, CommandId, CommandSpec};
use crate::domain::kind::RecordKind;
use crate::domain::text::fold_width;
use crate::service::access::{self, Operation, Role};
use crate::service::{Ctx, Outcome, refuse};
use chrono::NaiveDate;

pub fn text(ctx: &Ctx<'_>) -> Outcome {
    let person = ctx.authorize(Operation::Help)?;
    let today = ctx.today();
    let mut lines = vec![format!("{}，您可以发送以下命令（字段写成 键=值，用空格、逗号或换行分隔）：", person.name)];
    let mut role = None;
    let allowed = COMMANDS.iter().filter(|c| access::allows(ctx.settings, person, c.id.operation()));
    for spec in allowed.filter(|c| c.id != CommandId::Help) {
        if role != Some(spec.role()) && spec.role() != Role::Everyone {
            lines.push(format!("\n【{}】", spec.role().label()));
        }
        role = Some(spec.role());
        // Everyone's commands with what they do; the roles' own, which their holders
        // know, by their usage only (the whole list must fit one message).
        if spec.role() == Role::Everyone {
            lines.push(format!("· {}\n  {}", spec.summary, spec.short_usage(today)));
        } else {
            lines.push(format!("· {}", spec.short_usage(today)));
        }
    }
    lines.push("\n例如：C类 公司=杭州云帆科技有限公司 联系人=王经理".into());
    lines.push("发送「帮助 C类」查看一个命令的字段和例子。".into());
    Ok(lines.join("\n"))
}

/// `帮助 命令`: what the command does, its fields, and an example.
pub fn command(ctx: &Ctx<'_>, name: &str) -> Outcome {
    let person = ctx.authorize(Operation::Help)?;
    let Some(spec) = table::lookup(name.trim()) else {
        return refuse(format!("没有命令“{name}”。发送「帮助」查看可用命令。"));
    };
    let today = ctx.today();
    let mut lines = vec![format!("「{}」{}", spec.name, spec.summary)];
    if !access::allows(ctx.settings, person, spec.id.operation()) {
        lines.push(format!("（仅限{}使用）", spec.role().label()));
    }
    lines.push(format!("写法：{}", spec.usage(today)));
    let keys = |required: bool| -> Vec<&str> {
        spec.fields.iter().filter(|f| f.required == required).map(|f| f.key).collect()
    };
    for (label, keys) in [("必填", keys(true)), ("选填", keys(false))] {
        if !keys.is_empty() {
            lines.push(format!("{label}：{}", keys.join("、")));
        }
    }
    if !spec.aliases.is_empty() {
        lines.push(format!("也可以写：{}", spec.aliases.join("、")));
    }
    if let Some(example) = example(ctx, spec, today) {
        lines.push(format!("例如：{example}"));
    }
    Ok(lines.join("\n"))
}

/// An example message for a command, with today's dates and a configured contest.
fn example(ctx: &Ctx<'_>, spec: &CommandSpec, today: NaiveDate) -> Option<String> {
    let tomorrow = today.succ_opt().unwrap_or(today);
    let contest = ctx.settings.contests.first().map_or("客户开发PK", |c| c.name.as_str());
    let team = ctx.settings.contests.iter().flat_map(|c| &c.teams).next().map_or("雄鹰队", |t| t.name.as_str());
    Some(match spec.id {
        CommandId::Report(RecordKind::LeadC) => "C类 公司=杭州云帆科技有限公司 联系人=王经理".into(),
        CommandId::Report(RecordKind::LeadB) => format!("B类 公司=杭州云帆科技有限公司 约面={tomorrow} 14:30"),
        CommandId::Report(RecordKind::LeadA) => "A类 公司=杭州云帆科技有限公司 金额=50万 合同号=HT-001".into(),
        CommandId::Report(RecordKind::ChannelSchool) => "院校渠道 名称=杭州职业技术学院 联系人=李老师".into(),
        CommandId::Report(RecordKind::ChannelAgency) => "机构渠道 名称=好工作人力 联系人=赵经理".into(),
        CommandId::Report(RecordKind::ChannelPerson) => "个人渠道 名称=王师傅".into(),
        CommandId::Report(RecordKind::Placement) => format!("上岗 姓名=小王 入职={today} 渠道=自招"),
        CommandId::Report(RecordKind::Referral) => "转介绍 老客户=杭州云帆科技有限公司 新客户=星河传媒".into(),
        CommandId::Mine => "我的 上月".into(),
        CommandId::Help => "帮助 B类".into(),
        CommandId::Confirm => "确认 #12 #13".into(),
        CommandId::Reject => "驳回 #12 客户信息不实".into(),
        CommandId::OnJob => "在岗 #12".into(),
        CommandId::LeftJob => "离职 #12".into(),
        CommandId::Standings => format!("排行 {contest}"),
        CommandId::JoinPk => format!("加入PK {team}"),
        CommandId::Assign => format!("分配 人员=钱静 队伍={team}"),
        CommandId::Review => format!("待审 {contest}"),
        CommandId::Void => "作废 #12 重复报备".into(),
        CommandId::Restore => "恢复 #12".into(),
        CommandId::Finalise => format!("终审 {contest}"),
        CommandId::Settle => "结算 上月".into(),
        CommandId::Withdraw => "撤回 #12 公司名写错了".into(),
        CommandId::Edit => "修改 #12 金额=60万".into(),
        CommandId::Appeal => "申诉 #12 已签合同，附件可补".into(),
        CommandId::Todo => "待办".into(),
        CommandId::Uphold => "维持 #12 理由充分".into(),
        CommandId::Overturn => "改判 #12 合同已核实".into(),
        CommandId::MarkPaid => format!("缴费 人员=钱静 比赛={contest}"),
        CommandId::RegisterChannel => "登记老渠道 名称=杭州人才市场".into(),
        CommandId::Move => format!("调队 人员=钱静 队伍={team}"),
        CommandId::Leave => format!("退出PK {contest}"),
        CommandId::Remove => format!("移出 人员=钱静 比赛={contest}"),
        CommandId::BoardLink => format!("看板链接 {contest}"),
    })
}

/// Greetings and questions about how to take part, as people open a chat.
const GREETINGS: &[&str] = &[
    "你好",
    "您好",
    "你好呀",
    "嗨",
    "hi",
    "hello",
    "哈喽",
    "在吗",
    "在么",
    "在不在",
    "有人吗",
    "怎么报备",
    "如何报备",
    "怎么用",
    "如何使用",
    "怎么使用",
    "规则",
    "活动规则",
    "报备规则",
    "积分规则",
    "规则是什么",
    "活动规则是什么",
];

/// Whether a message is a greeting or a question about how to take part, not a command.
pub fn is_greeting(text: &str) -> bool {
    let text = fold_width(text).to_lowercase();
    let text = text.trim_matches(|c: char| c.is_whitespace() || "?!.,~。，！？～…".contains(c));
    let text = text.strip_prefix("请问").unwrap_or(text).trim();
    GREETINGS.contains(&text)
}

/// A short, friendly introduction with the three commands used most.
pub fn introduction(ctx: &Ctx<'_>) -> Outcome {
    let person = ctx.authorize(Operation::Help)?;
    Ok([
        format!("您好，{}！我是全员营销助手。", person.name),
        "报备业绩、查积分、看PK排行都可以找我。".into(),
        "最常用的三个命令：".into(),
        "1. 报备客户：C类 公司=… 联系人=…".into(),
        "2. 查看积分：我的".into(),
        "3. 查看排行：排行".into(),
        "报备经接收部门确认后计入积分，先报先得。".into(),
        "发送「帮助」查看全部命令，「帮助 C类」看写法和例子。".into(),
    ]
    .join("\n"))
}
