//! The authorisation matrix, generated from the command table: every command typed by
//! every kind of person, and every card button pressed by each, is allowed or refused
//! as the permission table declares; a refused one changes nothing (the records,
//! events and outbox tables are the same, row for row).

use crate::helpers::TestApp;
use chrono::Days;
use leadboard::commands::table::{COMMANDS, CommandId};
use leadboard::domain::kind::RecordKind;
use leadboard::service::access::Role;
use leadboard::store::sql;
use serde_json::Value;

/// Everything a refused command must leave as it was.
async fn fingerprint(app: &TestApp) -> String {
    let mut lines = Vec::new();
    for sql in [
        "SELECT json_group_array(json_array(id, kind, state, fields, subject_id, points, decided_by, decided_at, reason,
                voided_by, counted, base_for)) FROM (SELECT * FROM records ORDER BY id) AS t",
        "SELECT json_group_array(json_array(id, actor, entity, entity_id, action, old_value, new_value, reason, data))
         FROM (SELECT * FROM events ORDER BY id) AS t",
        "SELECT json_group_array(json_array(id, api, payload)) FROM (SELECT * FROM outbox ORDER BY id) AS t",
        "SELECT json_group_array(json_array(contest_id, userid, team, stake_fen, stake_paid_at))
         FROM (SELECT * FROM contest_members ORDER BY contest_id, userid) AS t",
        "SELECT json_group_array(json_array(contest_id, token)) FROM (SELECT * FROM board_links ORDER BY contest_id) AS t",
    ] {
        let sql = crate::helpers::json_sql(app, sql);
        let line: String = sql::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(app.state.db.reader()).await.unwrap();
        lines.push(line);
    }
    lines.join("\n")
}

/// A message that uses `id`, on the records the matrix sets up (#1 pending, #2 rejected,
/// both reported by 张伟). The match is exhaustive: a new command does not compile here
/// until the matrix covers it.
fn sample(id: CommandId, contest: &str) -> String {
    match id {
        CommandId::Report(RecordKind::LeadC) => "C类 公司=矩阵客户 联系人=王".into(),
        CommandId::Report(RecordKind::LeadB) => "B类 公司=矩阵客户B 约面=01-02".into(),
        CommandId::Report(RecordKind::LeadA) => "A类 公司=矩阵客户A 金额=1万".into(),
        CommandId::Report(RecordKind::ChannelSchool) => "院校渠道 名称=矩阵学院".into(),
        CommandId::Report(RecordKind::ChannelAgency) => "机构渠道 名称=矩阵人力".into(),
        CommandId::Report(RecordKind::ChannelPerson) => "个人渠道 名称=矩阵师傅".into(),
        CommandId::Report(RecordKind::Placement) => "上岗 姓名=矩阵工人 入职=01-02 渠道=自招".into(),
        CommandId::Report(RecordKind::Referral) => "转介绍 老客户=云帆科技 新客户=矩阵新客户".into(),
        CommandId::Mine => "我的".into(),
        CommandId::Help => "帮助".into(),
        CommandId::Standings => "排行".into(),
        CommandId::JoinPk => "加入PK 雄鹰队".into(),
        CommandId::Confirm => "确认 #1".into(),
        CommandId::Reject => "驳回 #1 矩阵".into(),
        CommandId::OnJob => "在岗 #1".into(),
        CommandId::LeftJob => "离职 #1".into(),
        CommandId::Todo => "待办".into(),
        CommandId::RegisterChannel => "登记老渠道 矩阵老渠道".into(),
        CommandId::Review => "待审".into(),
        CommandId::Void => "作废 #1 矩阵".into(),
        CommandId::Restore => "恢复 #1".into(),
        CommandId::Finalise => format!("终审 {contest}"),
        CommandId::Uphold => "维持 #2".into(),
        CommandId::Overturn => "改判 #2".into(),
        CommandId::Assign => format!("分配 人员=钱静 队伍=雄鹰队 比赛={contest}"),
        CommandId::MarkPaid => "缴费 张伟".into(),
        CommandId::Move => format!("调队 人员=张伟 队伍=猎豹队 比赛={contest}"),
        CommandId::Leave => format!("退出PK {contest}"),
        CommandId::Remove => format!("移出 人员=张伟 比赛={contest}"),
        CommandId::Settle => "结算 2020-01".into(),
        CommandId::Withdraw => "撤回 #1".into(),
        CommandId::Edit => "修改 #1 联系人=矩阵".into(),
        CommandId::Appeal => "申诉 #2 矩阵".into(),
        CommandId::BoardLink => format!("看板链接 {contest} 换新"),
    }
}

/// The people of the test organisation by what they hold.
const PEOPLE: &[(&str, &[Role])] = &[
    ("zhangwei", &[Role::Everyone]),                 // staff, and the records' reporter
    ("sunli", &[Role::Everyone]),                    // staff, not the reporter
    ("cs_lead", &[Role::Everyone, Role::Confirmer]), // confirmer of the records' department
    ("tr_lead", &[Role::Everyone, Role::Confirmer]), // confirmer of the other department
    ("wanggm", &[Role::Everyone, Role::Audit]),
    ("lina", &[Role::Everyone, Role::Admin, Role::Finance]), // admins hold finance's commands too
    ("qianjing", &[Role::Everyone, Role::Finance]),
];

async fn matrix_app() -> TestApp {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let config = format!(
        "[[contests]]\nid = \"pk\"\nname = \"矩阵PK\"\nkinds = [\"lead_c\"]\nstart = \"{}\"\nend = \"{}\"\n\
         [[contests.teams]]\nname = \"雄鹰队\"\nmembers = [\"zhangwei\"]\n[[contests.teams]]\nname = \"猎豹队\"\nmembers = []\n",
        today.checked_sub_days(Days::new(3)).unwrap(),
        today.checked_add_days(Days::new(3)).unwrap(),
    );
    let app = TestApp::builder().config(&config).spawn().await;
    app.say("zhangwei", "C类 公司=云帆科技 联系人=王").await; // #1, pending
    app.say("zhangwei", "C类 公司=星河传媒 联系人=李").await; // #2
    app.say("cs_lead", "驳回 #2 矩阵").await;
    // A person who left the company.
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("UPDATE people SET active = 0 WHERE userid = 'zhengqiang'").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    app.drain().await;
    app
}

#[tokio::test]
async fn every_command_by_every_role_is_allowed_or_refused_as_declared() {
    let app = matrix_app().await;
    let mut checked = 0;
    // Refusals first, on a state nothing has changed yet.
    for spec in COMMANDS {
        let text = sample(spec.id, "矩阵PK");
        for (user, roles) in PEOPLE.iter().filter(|(_, roles)| !roles.contains(&spec.role())) {
            let before = fingerprint(&app).await;
            let answer = app.say(user, &text).await.unwrap_or_default();
            assert!(answer.contains("仅限"), "{user} ({roles:?}) may not {text}: {answer}");
            app.drain().await;
            assert_eq!(fingerprint(&app).await, before, "{user}: a refused {text} changed something");
            checked += 1;
        }
        for user in ["nobody", "zhengqiang"] {
            let before = fingerprint(&app).await;
            let answer = app.say(user, &text).await.unwrap_or_default();
            assert!(
                answer.contains("没有在全员营销通讯录中找到您") || answer.contains("账号已停用"),
                "{user}: {answer}"
            );
            app.drain().await;
            assert_eq!(fingerprint(&app).await, before, "{user}: {text} changed something");
            checked += 1;
        }
    }
    // Record-level rules: the other department's confirmer, the reporter on their own
    // record, anyone but the reporter on someone else's.
    for (user, text, refusal) in [
        ("tr_lead", "确认 #1", "须由客户成功事业部的确认人处理"),
        ("tr_lead", "驳回 #1 矩阵", "须由客户成功事业部的确认人处理"),
        ("sunli", "撤回 #1", "不是您报备的"),
        ("sunli", "修改 #1 联系人=矩阵", "不是您报备的"),
        ("sunli", "申诉 #2 矩阵", "不是您报备的"),
        ("cs_lead", "撤回 #1", "不是您报备的"),
        ("cs_lead", "登记老渠道 矩阵老渠道", "须由招商引才事业部的确认人操作"),
    ] {
        let before = fingerprint(&app).await;
        let answer = app.say(user, text).await.unwrap_or_default();
        assert!(answer.contains(refusal), "{user} {text}: {answer}");
        assert_eq!(fingerprint(&app).await, before, "{user}: {text} changed something");
        checked += 1;
    }
    // Everyone holding the role gets past the permission check.
    for spec in COMMANDS {
        let text = sample(spec.id, "矩阵PK");
        for (user, _) in PEOPLE.iter().filter(|(_, roles)| roles.contains(&spec.role())) {
            // Passive or (when long) sent through the API: either way, not refused.
            let answer = match app.say(user, &text).await {
                Some(answer) => answer,
                None => app.texts_to(user).await.pop().unwrap_or_default(),
            };
            assert!(!answer.contains("仅限"), "{user} may {text}: {answer}");
            checked += 1;
        }
    }
    eprintln!("authorisation matrix: {checked} cases");
    assert!(checked >= 150, "{checked}");
}

#[tokio::test]
async fn every_card_button_is_pressed_as_declared() {
    let app = matrix_app().await;
    let card: Value =
        app.cards_to("cs_lead").await.into_iter().find(|c| c["task_id"].as_str().unwrap().contains("-1-")).unwrap();
    for user in ["zhangwei", "sunli", "tr_lead", "wanggm", "lina", "nobody", "zhengqiang"] {
        for button in ["确认", "驳回"] {
            let before = fingerprint(&app).await;
            app.press(user, &card, button).await;
            app.drain().await;
            let after = fingerprint(&app).await;
            // A refused press tells the presser why (a queued text): the records, the
            // events and the teams do not change.
            let unchanged =
                |f: &str| f.lines().enumerate().filter(|(i, _)| *i != 2).map(|(_, l)| l.to_owned()).collect::<Vec<_>>();
            assert_eq!(unchanged(&after), unchanged(&before), "{user} pressed {button}");
        }
    }
    app.press("cs_lead", &card, "确认").await;
    let state: String =
        sql::query_scalar("SELECT state FROM records WHERE id = 1").fetch_one(app.state.db.reader()).await.unwrap();
    assert_eq!(state, "confirmed", "the right confirmer's press decides");
}
