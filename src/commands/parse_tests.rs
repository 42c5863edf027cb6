//! Table-driven tests of the parser for every command, and properties: it never panics,
//! and never accepts a report without its required fields.

use super::args::Command;
use super::parse::{ParseError, Problem, display, parse};
use super::table::{COMMANDS, CommandId};
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::domain::month::Month;
use crate::domain::record::Mode;
use crate::service::decide::Action;
use crate::service::report::{ReportInput, Subject};
use chrono::NaiveDate;
use proptest::prelude::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 7, 20).unwrap()
}

/// (message, command, [(field, value as shown)])
type Case = (&'static str, CommandId, &'static [(&'static str, &'static str)]);

const ACCEPTED: &[Case] = &[
    (
        "C类 公司=杭州云帆科技有限公司 联系人=王经理",
        CommandId::Report(RecordKind::LeadC),
        &[("公司", "杭州云帆科技有限公司"), ("联系人", "王经理")],
    ),
    (
        "c 公司:云帆，联系人:王经理，方式:转接",
        CommandId::Report(RecordKind::LeadC),
        &[("公司", "云帆"), ("联系人", "王经理"), ("方式", "转接")],
    ),
    (
        "Ｃ类客户　公司＝云帆；联系人＝王经理；方向＝人力外包",
        CommandId::Report(RecordKind::LeadC),
        &[("公司", "云帆"), ("方向", "人力外包")],
    ),
    (
        "C类\n公司：杭州云帆科技有限公司\n联系人：王经理\n备注：明天 下午 再联系",
        CommandId::Report(RecordKind::LeadC),
        &[("备注", "明天 下午 再联系")],
    ),
    (
        "C类 公司名称=云帆 关键人=王 信用代码=91330100716105852F",
        CommandId::Report(RecordKind::LeadC),
        &[("公司", "云帆"), ("联系人", "王"), ("信用代码", "91330100716105852F")],
    ),
    ("B类 公司=云帆 约面=2023-07-25 14:30", CommandId::Report(RecordKind::LeadB), &[("约面", "2023-07-25 14:30")]),
    (
        "B 公司=云帆 约面=7月25日 需求=外包",
        CommandId::Report(RecordKind::LeadB),
        &[("约面", "2023-07-25"), ("需求", "外包")],
    ),
    ("A类 公司=云帆 金额=1,200.50", CommandId::Report(RecordKind::LeadA), &[("金额", "1200.50")]),
    ("A类 公司=云帆 金额=￥120000", CommandId::Report(RecordKind::LeadA), &[("金额", "120000.00")]),
    ("A类 公司=云帆 金额=¥120000", CommandId::Report(RecordKind::LeadA), &[("金额", "120000.00")]),
    ("A类 公司=云帆 金额=120,000元", CommandId::Report(RecordKind::LeadA), &[("金额", "120000.00")]),
    ("A类 公司=云帆 金额=120，000元", CommandId::Report(RecordKind::LeadA), &[("金额", "120000.00")]),
    ("A类 公司=云帆 金额=12万元", CommandId::Report(RecordKind::LeadA), &[("金额", "120000.00")]),
    ("A类 公司=云帆 金额=RMB 12万", CommandId::Report(RecordKind::LeadA), &[("金额", "120000.00")]),
    ("A类 公司=云帆 金额=人民币12万元", CommandId::Report(RecordKind::LeadA), &[("金额", "120000.00")]),
    (
        "A类客户 公司=云帆 合同金额=12.5万元 合同号=HT-001",
        CommandId::Report(RecordKind::LeadA),
        &[("金额", "125000.00"), ("合同号", "HT-001")],
    ),
    (
        "院校渠道 名称=杭州职业技术学院 联系人=李老师",
        CommandId::Report(RecordKind::ChannelSchool),
        &[("名称", "杭州职业技术学院")],
    ),
    (
        "机构渠道 名称=好工作人力 方式=转接 接手=郑强",
        CommandId::Report(RecordKind::ChannelAgency),
        &[("方式", "转接"), ("接手", "郑强")],
    ),
    ("个人渠道 名称=王师傅 备注=老乡介绍", CommandId::Report(RecordKind::ChannelPerson), &[("名称", "王师傅")]),
    (
        "上岗 姓名=小王 入职=2023-07-18 渠道=好工作人力",
        CommandId::Report(RecordKind::Placement),
        &[("入职", "2023-07-18"), ("渠道", "好工作人力")],
    ),
    (
        "安置 姓名=小王 入职日期=2023年7月18日 渠道=自招",
        CommandId::Report(RecordKind::Placement),
        &[("入职", "2023-07-18")],
    ),
    (
        "转介绍 老客户=云帆 新客户=星河",
        CommandId::Report(RecordKind::Referral),
        &[("老客户", "云帆"), ("新客户", "星河")],
    ),
    ("我的", CommandId::Mine, &[]),
    ("积分 2023-06", CommandId::Mine, &[("月份", "2023-06")]),
    ("我的 月份=2023年6月", CommandId::Mine, &[("月份", "2023-06")]),
    ("排行", CommandId::Standings, &[]),
    ("榜单 客户开发PK", CommandId::Standings, &[("比赛", "客户开发PK")]),
    ("看板链接", CommandId::BoardLink, &[]),
    ("看板 客户开发PK 换新", CommandId::BoardLink, &[("比赛", "客户开发PK"), ("操作", "换新")]),
    ("加入PK 雄鹰队", CommandId::JoinPk, &[("队伍", "雄鹰队")]),
    ("加入PK 队伍=雄鹰队 比赛=客户开发PK", CommandId::JoinPk, &[("队伍", "雄鹰队"), ("比赛", "客户开发PK")]),
    ("帮助", CommandId::Help, &[]),
    ("HELP", CommandId::Help, &[]),
    ("？", CommandId::Help, &[]),
    ("确认 12", CommandId::Confirm, &[("编号", "#12")]),
    ("确认 #12", CommandId::Confirm, &[("编号", "#12")]),
    ("确认＃１２", CommandId::Confirm, &[("编号", "#12")]),
    ("确认12", CommandId::Confirm, &[("编号", "#12")]),
    ("确认 编号=12 接手=郑强", CommandId::Confirm, &[("编号", "#12"), ("接手", "郑强")]),
    (
        "驳回 #12 客户信息不真实, 电话打不通",
        CommandId::Reject,
        &[("编号", "#12"), ("原因", "客户信息不真实, 电话打不通")],
    ),
    ("驳回 编号=12 原因=重复报备", CommandId::Reject, &[("原因", "重复报备")]),
    ("在岗 #7", CommandId::OnJob, &[("编号", "#7")]),
    ("离职 7", CommandId::LeftJob, &[("编号", "#7")]),
    ("确认 #4 #5，#6", CommandId::Confirm, &[("编号", "#4 #5 #6")]),
    ("待审", CommandId::Review, &[]),
    ("作废 #3 虚假报备", CommandId::Void, &[("编号", "#3"), ("原因", "虚假报备")]),
    ("恢复 #3", CommandId::Restore, &[("编号", "#3")]),
    ("终审 比赛=客户开发PK", CommandId::Finalise, &[("比赛", "客户开发PK")]),
    ("终审 客户开发PK", CommandId::Finalise, &[("比赛", "客户开发PK")]),
    ("分配 人员=钱静 队伍=雄鹰队", CommandId::Assign, &[("人员", "钱静"), ("队伍", "雄鹰队")]),
    ("结算 2023-07", CommandId::Settle, &[("月份", "2023-07")]),
    ("待办", CommandId::Todo, &[]),
    ("调队 人员=钱静 队伍=猎豹队", CommandId::Move, &[("人员", "钱静"), ("队伍", "猎豹队")]),
    ("退出PK 客户开发PK", CommandId::Leave, &[("比赛", "客户开发PK")]),
    ("移出 钱静", CommandId::Remove, &[("人员", "钱静")]),
    ("登记老渠道 杭州人才市场", CommandId::RegisterChannel, &[("名称", "杭州人才市场")]),
    ("缴费 人员=钱静 比赛=客户开发PK", CommandId::MarkPaid, &[("人员", "钱静"), ("比赛", "客户开发PK")]),
    ("撤回 #4 公司名写错了", CommandId::Withdraw, &[("编号", "#4"), ("原因", "公司名写错了")]),
    (
        "修改 #4 公司=杭州云帆 金额=60万",
        CommandId::Edit,
        &[("编号", "#4"), ("公司", "杭州云帆"), ("金额", "600000.00")],
    ),
    (
        "申诉 #5 客户已签约，有合同（见附件）",
        CommandId::Appeal,
        &[("编号", "#5"), ("理由", "客户已签约，有合同（见附件）")],
    ),
    ("维持 #5", CommandId::Uphold, &[("编号", "#5")]),
    ("改判 #5 合同属实", CommandId::Overturn, &[("编号", "#5"), ("原因", "合同属实")]),
    ("离职 #21 做了两天就走了", CommandId::LeftJob, &[("编号", "#21"), ("原因", "做了两天就走了")]),
    ("终审 比赛=客户开发PK 待定=不计", CommandId::Finalise, &[("比赛", "客户开发PK"), ("待定", "不计")]),
    ("待审 页=2", CommandId::Review, &[("页", "2")]),
    (
        "C类 公司=云帆 联系人=王 备注=会议 10:30 在 A座:3楼",
        CommandId::Report(RecordKind::LeadC),
        &[("备注", "会议 10:30 在 A座:3楼")],
    ),
];

#[test]
fn every_command_parses_in_its_forms() {
    for (message, id, fields) in ACCEPTED {
        let parsed = parse(message, today()).unwrap_or_else(|e| panic!("{message:?}: {e:?}"));
        assert_eq!(parsed.spec.id, *id, "{message:?}");
        for (key, value) in *fields {
            let got = parsed.get(key).map(display);
            assert_eq!(got.as_deref(), Some(*value), "{message:?} field {key}");
        }
    }
    for spec in COMMANDS {
        assert!(ACCEPTED.iter().any(|(_, id, _)| *id == spec.id), "no accepted case for {}", spec.name);
    }
}

/// Every accepted one-liner, pasted as a multi-line form (`键：值` per line, full-width
/// colon, or `键:值`), says the same.
#[test]
fn every_command_parses_as_a_pasted_multi_line_form() {
    for (message, _, _) in ACCEPTED {
        let one_line = parse(message, today()).unwrap();
        let fields = one_line.to_json();
        for colon in ["：", ":"] {
            let lines: Vec<String> =
                fields.as_object().unwrap().iter().map(|(k, v)| format!("{k}{colon}{}", v.as_str().unwrap())).collect();
            let form = format!("{}\n{}\n", one_line.spec.name, lines.join("\n"));
            let pasted = parse(&form, today()).unwrap_or_else(|e| panic!("{form:?}: {e:?}"));
            assert_eq!(pasted.spec.id, one_line.spec.id, "{form:?}");
            assert_eq!(pasted.to_json(), fields, "{form:?}");
        }
    }
}

fn report(message: &str) -> ReportInput {
    match parse(message, today()).unwrap().command {
        Command::Report(report) => report,
        other => panic!("{message:?} is not a report: {other:?}"),
    }
}

#[test]
fn typed_values_are_exact() {
    assert_eq!(report("A类 公司=云帆 金额=0.1万").amount, Some(Fen(100_000)));
    assert_eq!(report("C类 公司=云帆 联系人=王 方式=转接促成").mode, Mode::Transfer);
    assert_eq!(report("C类 公司=云帆 联系人=王").mode, Mode::Direct);
    assert_eq!(parse("我的 2023-7", today()).unwrap().command, Command::Mine { month: Month::new(2023, 7) });
}

#[test]
fn every_command_gets_its_typed_arguments() {
    let client = report("C类 公司=云帆 联系人=王 信用代码=91330100716105852F 接手=郑强");
    let Subject::Client { name, credit_code } = &client.subject else { panic!("{client:?}") };
    assert_eq!((name.as_str(), credit_code.as_ref().map(|c| c.as_str())), ("云帆", Some("91330100716105852F")));
    assert_eq!(client.closer.as_ref().map(|c| c.as_str()), Some("郑强"));
    let referral = report("转介绍 老客户=云帆 新客户=星河");
    let Subject::Referral { old_client, new_client } = &referral.subject else { panic!("{referral:?}") };
    assert_eq!((old_client.as_str(), new_client.as_str()), ("云帆", "星河"));
    let command = |message: &str| parse(message, today()).unwrap().command;
    assert_eq!(
        command("驳回 #12 重复报备"),
        Command::Decide { id: 12, action: Action::Reject { reason: Some("重复报备".into()) } }
    );
    assert_eq!(
        command("确认 12 接手=郑强"),
        Command::Decide { id: 12, action: Action::Confirm { closer: Some("郑强".into()) } }
    );
    assert_eq!(command("离职 7"), Command::Decide { id: 7, action: Action::Left { reason: None } });
    assert_eq!(
        command("分配 人员=钱静 队伍=雄鹰队"),
        Command::Assign { person: "钱静".into(), team: "雄鹰队".into(), contest: None }
    );
    assert_eq!(command("结算 2023-07"), Command::Settle { month: Month::new(2023, 7).unwrap() });
    assert_eq!(command("恢复 #3"), Command::Restore { id: 3, reason: None });
    assert_eq!(command("看板链接"), Command::BoardLink { contest: None, rotate: false });
    assert_eq!(command("看板链接 换新"), Command::BoardLink { contest: None, rotate: true });
    assert_eq!(
        command("看板链接 比赛=客户开发PK 操作=换新"),
        Command::BoardLink { contest: Some("客户开发PK".into()), rotate: true }
    );
    assert_eq!(command("大屏 客户开发PK"), Command::BoardLink { contest: Some("客户开发PK".into()), rotate: false });
}

#[test]
fn an_onboarding_date_without_a_year_is_the_latest_such_day_so_far() {
    let date = |text: &str| match report(&format!("上岗 姓名=小王 入职={text}")).subject {
        Subject::Placement { onboard, .. } => Some(onboard),
        _ => None,
    };
    assert_eq!(date("7月18日"), NaiveDate::from_ymd_opt(2023, 7, 18));
    assert_eq!(date("7-20"), NaiveDate::from_ymd_opt(2023, 7, 20));
    assert_eq!(date("12-30"), NaiveDate::from_ymd_opt(2022, 12, 30), "not this year's, which is still to come");
    assert_eq!(date("2023-12-30"), NaiveDate::from_ymd_opt(2023, 12, 30), "a written year is kept (and refused later)");
    // An appointment keeps the current year.
    let p = parse("B类 公司=云帆 约面=12-30 10:00", today()).unwrap();
    assert_eq!(p.get("约面").map(display), Some("2023-12-30 10:00".to_owned()));
}

/// (message, what the error must say)
const REFUSED: &[(&str, &str)] = &[
    ("", "消息是空的"),
    ("报销 金额=100", "不认识的命令“报销”"),
    ("C类 公司=云帆 联系人=王 金额=100", "没有字段“金额”"),
    ("C类 公司=云帆 电话=123", "没有字段“电话”"),
    ("C类 公司=云帆", "缺少必填字段“联系人”"),
    ("B类 公司=云帆", "缺少必填字段“约面”"),
    ("A类 公司=云帆", "缺少必填字段“金额”"),
    ("C类 联系人=王", "缺少必填字段“公司”"),
    ("C类 公司= 联系人=王", "缺少必填字段“公司”"),
    ("C类 公司=云帆 公司=星河 联系人=王", "写了两次"),
    ("B类 公司=云帆 约面=2023-02-30", "不是有效的日期时间"),
    ("上岗 姓名=小王 入职=明天", "不是有效日期"),
    ("A类 公司=云帆 金额=很多", "格式不对"),
    ("A类 公司=云帆 金额=0", "必须大于 0"),
    ("A类 公司=云帆 金额=1.234", "格式不对"),
    ("C类 公司=云帆 联系人=王 方式=代理", "只能是“直接”或“转接”"),
    ("C类 公司=云帆 联系人=王 信用代码=123", "统一社会信用代码"),
    ("确认 abc", "不是有效编号"),
    ("确认 #0", "不是有效编号"),
    ("我的 2023-13", "不是有效月份"),
    ("我的 262142-12", "不是有效月份"),
    ("我的 +202-01", "不是有效月份"),
    ("我的 2023-+7", "不是有效月份"),
    ("我的 1999-12", "不是有效月份"),
    ("A类 公司=云帆 金额=99999999999万", "太大"),
    ("C类 杭州云帆 联系人=王", "无法识别“杭州云帆”"),
    ("确认 12 abc", "不是有效编号"),
    ("驳回 12", "缺少必填字段“原因”"),
];

#[test]
fn every_error_says_exactly_what_is_wrong_and_shows_usage() {
    for (message, expected) in REFUSED {
        let error = parse(message, today()).expect_err(message);
        let text = error.explain(today());
        assert!(text.contains(expected), "{message:?} → {text}");
        if error.spec().is_some() {
            assert!(text.contains("用法："), "{message:?} → {text}");
        }
    }
}

#[test]
fn overlong_text_is_refused() {
    let name = "长".repeat(61);
    let error = parse(&format!("C类 公司={name} 联系人=王"), today()).unwrap_err();
    assert!(matches!(error, ParseError::Invalid { problem: Problem::Text(_), .. }), "{error:?}");
    assert!(error.explain(today()).contains("太长（最多 60 个字）"));
    assert_eq!(parse(&"字".repeat(2001), today()).unwrap_err(), ParseError::TooLong);
}

#[test]
fn usage_comes_from_the_declarations() {
    let c = COMMANDS.iter().find(|c| c.name == "C类").unwrap();
    assert_eq!(c.usage(today()), "C类 公司=… 联系人=… [方向=…] [信用代码=18位代码] [备注=…] [方式=直接|转接] [接手=…]");
    let reject = COMMANDS.iter().find(|c| c.name == "驳回").unwrap();
    assert_eq!(reject.usage(today()), "驳回 #编号 原因");
}

fn report_specs() -> impl Strategy<Value = &'static super::table::CommandSpec> {
    let reports: Vec<_> = COMMANDS.iter().filter(|c| matches!(c.id, CommandId::Report(_))).collect();
    proptest::sample::select(reports)
}

proptest! {
    #[test]
    fn the_parser_never_panics(text in any::<String>()) {
        let _ = parse(&text, today());
    }

    /// Any month the parser accepts has a first day and a next month (`我的`, `结算`).
    #[test]
    fn an_accepted_month_always_has_a_range(year in any::<i32>(), month in any::<u32>(), sep in "[-/.年]") {
        if let Some(m) = Month::parse(&format!("{year}{sep}{month}")) {
            prop_assert!(m.first_day() < m.next().first_day());
        }
    }

    #[test]
    fn the_parser_never_panics_on_command_like_text(
        word in proptest::sample::select(vec!["C类", "B类", "A类", "上岗", "确认", "驳回", "我的", "加入PK"]),
        rest in "[=:：，,；; \n#0-9a-zA-Z公司联系人金额约面入职姓名渠道原因编号月份一二三万元.-]{0,40}",
    ) {
        let _ = parse(&format!("{word}{rest}"), today());
    }

    /// Whatever else is written, a report missing one required field is refused.
    #[test]
    fn a_report_missing_a_required_field_is_never_accepted(
        spec in report_specs(),
        drop in 0usize..4,
        noise in "[a-z备注方向需求=: ，]{0,20}",
    ) {
        let required: Vec<_> = spec.fields.iter().filter(|f| f.required).collect();
        let dropped = required[drop % required.len()];
        let sample = |key: &str| match key {
            "约面" => "2023-07-25".to_owned(),
            "入职" => "2023-07-18".to_owned(),
            "金额" => "100".to_owned(),
            _ => "云帆".to_owned(),
        };
        let fields: Vec<String> = required
            .iter()
            .filter(|f| f.key != dropped.key)
            .map(|f| format!("{}={}", f.key, sample(f.key)))
            .collect();
        let message = format!("{} {} {}", spec.name, fields.join(" "), noise);
        let result = parse(&message, today());
        prop_assert!(result.is_err(), "accepted {:?}", message);
    }
}
