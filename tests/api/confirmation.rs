//! Handoff confirmation end to end: cards to the right confirmers, button presses and
//! text commands, idempotent and race-free decisions, refusals, the day-3 rule with
//! new channels' base indicators, reminders and escalation.

use crate::helpers::{ORG, TestApp, metric};
use chrono::Duration;
use leadboard::jobs::{Job, run_once};
use leadboard::store::sql;

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

async fn state_of(app: &TestApp, id: i64) -> String {
    sql::query_scalar("SELECT state FROM records WHERE id = ?").bind(id).fetch_one(app.state.db.reader()).await.unwrap()
}

async fn card_updates(app: &TestApp) -> Vec<serde_json::Value> {
    app.drain().await;
    app.api_calls("message/update_template_card").await
}

#[tokio::test]
async fn a_report_is_confirmed_with_one_tap() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=杭州云帆科技有限公司 联系人=王经理").await;

    // The card reaches CS's confirmers, not TR's, never the reporter.
    let cards = app.cards_to("cs_lead").await;
    assert_eq!(cards.len(), 1);
    assert_eq!(app.cards_to("cs_lead2").await.len(), 1);
    assert!(app.cards_to("tr_lead").await.is_empty() && app.cards_to("zhangwei").await.is_empty());
    let card = &cards[0];
    assert_eq!(card["card_type"], "button_interaction");
    assert_eq!(card["main_title"]["title"], "待确认 #1 C类客户");
    assert!(card["main_title"]["desc"].as_str().unwrap().starts_with("杭州云帆科技有限公司 · "), "{card}");
    assert!(card.to_string().contains("王经理") && card.to_string().contains("张伟"), "{card}");

    let answer = app.press("cs_lead", card, "确认").await;
    assert_eq!(answer.body, "", "a press is acknowledged with an empty 200");
    assert_eq!(state_of(&app, 1).await, "confirmed");

    let updates = card_updates(&app).await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["button"]["replace_name"], "已由陈经理确认");
    assert_eq!(updates[0]["userids"], serde_json::json!(["cs_lead", "cs_lead2"]));
    assert_eq!(updates[0]["response_code"], format!("RC-cs_lead-{}", card["task_id"].as_str().unwrap()));

    let told = app.texts_to("zhangwei").await;
    assert!(told.iter().any(|t| t.contains("已由陈经理确认，1 分已计入")), "{told:?}");
    assert!(say(&app, "zhangwei", "我的").await.contains("已计入：1 分"));
    let events = app
        .count("SELECT COUNT(*) FROM events WHERE entity_id = '1' AND action = 'confirmed' AND actor = 'cs_lead'")
        .await;
    assert_eq!(events, 1);
}

#[tokio::test]
async fn rejecting_from_a_card_records_a_default_reason_until_one_is_given() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "B类 公司=云帆 约面=01-01").await;
    let card = app.cards_to("cs_lead").await.remove(0);
    app.press("cs_lead", &card, "驳回").await;
    assert_eq!(state_of(&app, 1).await, "rejected");
    let prompt = app.texts_to("cs_lead").await;
    assert!(prompt.iter().any(|t| t.contains("请回复「驳回 #1 原因」")), "{prompt:?}");
    assert_eq!(card_updates(&app).await[0]["button"]["replace_name"], "已由陈经理驳回");

    // The reporter is told at once, and again with the reason once it is given.
    app.drain().await;
    assert_eq!(
        app.texts_to("zhangwei").await,
        vec!["您报备的 #1 B类客户「云帆」已被陈经理驳回，驳回原因待补充，补充后会再通知您。"]
    );
    let reply = say(&app, "cs_lead", "驳回 #1 客户尚未约面").await;
    assert!(reply.contains("已补充 #1 的驳回原因"), "{reply}");
    let told = app.texts_to("zhangwei").await;
    assert_eq!(told[1..], ["您报备的 #1 B类客户「云帆」的驳回原因（陈经理）：客户尚未约面。"]);
    let reason: String =
        sql::query_scalar("SELECT reason FROM records WHERE id = 1").fetch_one(app.state.db.reader()).await.unwrap();
    assert_eq!(reason, "客户尚未约面");
    // Only a reasonless rejection can be amended, and only by who rejected it.
    assert!(say(&app, "cs_lead2", "驳回 #1 别的原因").await.contains("已由陈经理于"));
}

#[tokio::test]
async fn text_commands_decide_like_buttons() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    say(&app, "zhangwei", "C类 公司=星河 联系人=李").await;
    let confirmed = say(&app, "cs_lead", "确认 1").await;
    assert!(confirmed.contains("已确认 #1 C类客户「云帆」（张伟）"), "{confirmed}");
    let rejected = say(&app, "cs_lead", "驳回 #2 联系人电话无效").await;
    assert!(rejected.contains("已驳回 #2"), "{rejected}");
    assert_eq!((state_of(&app, 1).await, state_of(&app, 2).await), ("confirmed".into(), "rejected".into()));
    let updates = card_updates(&app).await;
    assert_eq!(updates.len(), 2, "each record's card is updated");
    assert!(updates.iter().all(|u| u["response_code"].as_str().unwrap().starts_with("RC")), "send response codes");
    let told = app.texts_to("zhangwei").await;
    assert!(told.iter().any(|t| t.contains("已被陈经理驳回，原因：联系人电话无效")), "{told:?}");
}

#[tokio::test]
async fn a_second_decision_changes_nothing_and_says_who_decided() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    let card = app.cards_to("cs_lead").await.remove(0);
    app.press("cs_lead", &card, "确认").await;
    app.press("cs_lead", &card, "确认").await;
    app.press("cs_lead2", &card, "驳回").await;
    let again = say(&app, "cs_lead2", "驳回 #1 不同意").await;
    assert!(again.contains("#1 已由陈经理于") && again.contains("确认，无需重复操作"), "{again}");
    assert_eq!(state_of(&app, 1).await, "confirmed");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE entity_id = '1' AND action IN ('confirmed', 'rejected')").await,
        1
    );
    assert!(app.texts_to("cs_lead2").await.iter().any(|t| t.contains("已由陈经理于")), "the late presser is told");
    assert_eq!(card_updates(&app).await.len(), 1, "the card is updated once");
}

#[tokio::test]
async fn a_card_press_resent_by_wecom_has_one_effect_and_the_same_answer() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    let card = app.cards_to("cs_lead").await.remove(0);
    let texts_before = app.texts_to("cs_lead").await.len();

    // WeCom resends an event it got no answer for: same sender, create time and key.
    let press = app.press_request("cs_lead", &card, "确认");
    let first = app.post(&press).await;
    let (second, third) = tokio::join!(app.post(&press), app.post(&press));

    for answer in [&second, &third] {
        assert_eq!((answer.status, &answer.body), (first.status, &first.body), "the same answer");
    }
    assert_eq!(first.status, 200);
    assert_eq!(state_of(&app, 1).await, "confirmed");
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE entity_id = '1' AND action = 'confirmed'").await, 1);
    assert_eq!(card_updates(&app).await.len(), 1, "the card is updated once");
    let told = app.texts_to("zhangwei").await;
    assert_eq!(told.iter().filter(|t| t.contains("已由陈经理确认")).count(), 1, "{told:?}");
    assert_eq!(app.texts_to("cs_lead").await.len(), texts_before, "no \"already decided\" note to the presser");
    assert_eq!(metric(&app.metrics().await, "leadboard_duplicates_total"), 2.0);
}

#[tokio::test]
async fn two_confirmers_pressing_at_once_make_one_decision() {
    let app = TestApp::spawn().await;
    for round in 0..4 {
        say(&app, "zhangwei", &format!("C类 公司=同时{round} 联系人=王")).await;
    }
    for (i, card) in app.cards_to("cs_lead").await.iter().enumerate() {
        let (a, b) = tokio::join!(app.press("cs_lead", card, "确认"), app.press("cs_lead2", card, "驳回"));
        assert_eq!((a.status, b.status), (200, 200));
        let id = (i + 1).to_string();
        let decisions = sql::query_scalar::<i64>(
            "SELECT COUNT(*) FROM events WHERE entity_id = ? AND action IN ('confirmed', 'rejected')",
        )
        .bind(&id)
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
        assert_eq!(decisions, 1, "record {id}");
    }
    // Each card is updated once, and each loser is told who decided.
    assert_eq!(card_updates(&app).await.len(), 4);
    let told = [app.texts_to("cs_lead").await, app.texts_to("cs_lead2").await].concat();
    assert_eq!(told.iter().filter(|t| t.contains("无需重复操作")).count(), 4, "{told:?}");
}

#[tokio::test]
async fn only_the_receiving_departments_confirmers_decide_and_never_on_their_own_report() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    say(&app, "cs_lead", "C类 公司=星河 联系人=李").await;
    let wrong_dept = say(&app, "tr_lead", "确认 #1").await;
    assert!(wrong_dept.contains("须由客户成功事业部的确认人处理"), "{wrong_dept}");
    let not_confirmer = say(&app, "sunli", "确认 #1").await;
    assert!(not_confirmer.contains("仅限接收部门负责人使用"), "{not_confirmer}");
    let own = say(&app, "cs_lead", "确认 #2").await;
    assert!(own.contains("本人报备的"), "{own}");
    assert!(app.cards_to("cs_lead").await.len() == 1, "the reporter gets no card for their own report");
    let card = app.cards_to("cs_lead2").await.remove(1);
    app.press("tr_lead", &card, "确认").await;
    let told = app.texts_to("tr_lead").await;
    assert!(told.iter().any(|t| t.contains("须由客户成功事业部的确认人处理")), "the presser is told why: {told:?}");
    assert!(say(&app, "cs_lead", "确认 #99").await.contains("没有找到记录 #99"));
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE state = 'reported'").await, 2, "nothing decided");
}

/// Placements onboarded `days` ago (through a channel or self-recruited), reported now.
async fn place(app: &TestApp, name: &str, days: u64, channel: &str) -> String {
    let date = app.today().checked_sub_days(chrono::Days::new(days)).unwrap();
    say(app, "zhengqiang", &format!("上岗 姓名={name} 入职={date} 渠道={channel}")).await
}

#[tokio::test]
async fn the_day_3_check_goes_out_only_for_placements_due() {
    let app = TestApp::spawn().await;
    for days in 0..=4 {
        place(&app, &format!("人员{days}"), days, "自招").await;
    }
    assert!(app.cards_to("tr_lead").await.is_empty(), "no card at report time");
    let summary = run_once(&app.state, Job::OnjobCheck).await.unwrap();
    assert!(summary.contains("2 张"), "{summary}");
    let cards = app.cards_to("tr_lead").await;
    let titles: Vec<&str> = cards.iter().map(|c| c["main_title"]["title"].as_str().unwrap()).collect();
    assert_eq!(titles, vec!["在岗确认 #4 人员3", "在岗确认 #5 人员4"]);
    // Run again: nobody gets a second card.
    run_once(&app.state, Job::OnjobCheck).await.unwrap();
    assert_eq!(app.cards_to("tr_lead").await.len(), 2);

    app.press("tr_lead", &cards[0], "在岗").await;
    app.press("tr_lead", &cards[1], "离职").await;
    assert_eq!((state_of(&app, 4).await, state_of(&app, 5).await), ("confirmed".into(), "left".into()));
    let early = say(&app, "tr_lead", "在岗 #3").await;
    assert!(early.contains("入职未满3天"), "{early}");
    let mine = say(&app, "zhengqiang", "我的").await;
    assert!(mine.contains("已计入：2 分"), "only the on-the-job placement counts: {mine}");
    assert!(mine.contains("#5 新增安置上岗 人员4 · 未满3天离职"), "no points on what never counts: {mine}");
}

#[tokio::test]
async fn an_agency_channel_is_valid_after_its_third_placement_stays_three_days() {
    let app = TestApp::spawn().await;
    say(&app, "qianjing", "机构渠道 名称=好工作人力").await;
    let agreed = say(&app, "tr_lead", "确认 #1").await;
    assert!(agreed.contains("合作协议") && agreed.contains("0/3"), "{agreed}");
    assert_eq!(state_of(&app, 1).await, "agreed");
    for i in 0..4 {
        place(&app, &format!("工人{i}"), 3, "好工作人力").await;
    }
    for id in 2..=3 {
        say(&app, "tr_lead", &format!("在岗 #{id}")).await;
        assert_eq!(state_of(&app, 1).await, "agreed", "not valid before the third");
    }
    let third = say(&app, "tr_lead", "在岗 #4").await;
    assert!(third.contains("已成为有效渠道"), "{third}");
    assert_eq!(state_of(&app, 1).await, "confirmed");
    say(&app, "tr_lead", "在岗 #5").await;
    assert!(app.texts_to("qianjing").await.iter().any(|t| t.contains("成为有效渠道，10 分已计入")));

    let base: i64 = app.count("SELECT COUNT(*) FROM records WHERE base_for = 1").await;
    assert_eq!(base, 3, "the first three placements are the channel's base");
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE action = 'base_placement' AND new_value = '1'").await, 3);
    let mine = say(&app, "zhengqiang", "我的").await;
    assert!(mine.contains("已计入：2 分"), "base placements do not count again, the fourth does: {mine}");
    assert!(say(&app, "qianjing", "我的").await.contains("已计入：10 分"));
    app.assert_counted_is_consistent().await;
}

#[tokio::test]
async fn base_placements_count_again_when_their_channel_is_rejected_or_voided() {
    let app = TestApp::spawn().await;
    say(&app, "qianjing", "机构渠道 名称=好工作人力").await;
    say(&app, "qianjing", "个人渠道 名称=王师傅").await;
    say(&app, "tr_lead", "确认 #1").await;
    say(&app, "tr_lead", "确认 #2").await;
    place(&app, "工人甲", 3, "好工作人力").await; // #3, towards the agency's base
    place(&app, "老乡", 3, "王师傅").await; // #4, the person channel's base
    say(&app, "tr_lead", "在岗 #3").await;
    assert!(say(&app, "tr_lead", "在岗 #4").await.contains("已成为有效渠道"));
    assert!(say(&app, "zhengqiang", "我的").await.contains("已计入：0 分"), "both are base placements");

    // The agency never becomes valid: its base placement is an ordinary placement again.
    say(&app, "tr_lead", "驳回 #1 协议未签").await;
    assert!(say(&app, "zhengqiang", "我的").await.contains("已计入：2 分"));
    // The valid person channel is voided: its placement counts, the channel's points go.
    say(&app, "wanggm", "作废 #2 渠道不实").await;
    assert!(say(&app, "zhengqiang", "我的").await.contains("已计入：4 分"));
    assert!(say(&app, "qianjing", "我的").await.contains("已计入：0 分"));
    app.assert_counted_is_consistent().await;
    // Restored, the channel counts again and its placement is its base again.
    say(&app, "wanggm", "恢复 #2").await;
    assert!(say(&app, "zhengqiang", "我的").await.contains("已计入：2 分"));
    assert!(say(&app, "qianjing", "我的").await.contains("已计入：5 分"));
    app.assert_counted_is_consistent().await;
}

#[tokio::test]
async fn a_person_channel_needs_one_placement_even_when_it_came_first() {
    let app = TestApp::spawn().await;
    say(&app, "zhengqiang", "个人渠道 名称=王师傅").await;
    place(&app, "老乡", 5, "王师傅").await;
    say(&app, "tr_lead", "在岗 #2").await;
    assert_eq!(state_of(&app, 1).await, "reported", "the agreement is not confirmed yet");
    let agreed = say(&app, "tr_lead", "确认 #1").await;
    assert!(agreed.contains("已成为有效渠道"), "{agreed}");
    assert_eq!(state_of(&app, 1).await, "confirmed");
}

#[tokio::test]
async fn confirming_a_transfer_records_its_closer() {
    let app = TestApp::spawn().await;
    say(&app, "qianjing", "院校渠道 名称=杭州职院 方式=转接").await;
    say(&app, "tr_lead", "确认 #1 接手=郑强").await;
    let closer: String =
        sql::query_scalar("SELECT closer FROM records WHERE id = 1").fetch_one(app.state.db.reader()).await.unwrap();
    assert_eq!(closer, "zhengqiang");
    say(&app, "qianjing", "院校渠道 名称=杭州技师学院 方式=转接").await;
    say(&app, "tr_lead", "确认 #2").await;
    let closer: String =
        sql::query_scalar("SELECT closer FROM records WHERE id = 2").fetch_one(app.state.db.reader()).await.unwrap();
    assert_eq!(closer, "tr_lead", "the confirmer closes when nobody is named");
    let logged = app.count("SELECT COUNT(*) FROM events WHERE action = 'closer_set' AND actor = 'tr_lead'").await;
    assert_eq!(logged, 2, "each closer is in the event log");
}

#[tokio::test]
async fn undecided_handoffs_are_reminded_then_escalated_once_each() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    say(&app, "zhangwei", "C类 公司=星河 联系人=李").await;
    say(&app, "cs_lead", "确认 #2").await;
    run_once(&app.state, Job::Reminders).await.unwrap();
    assert!(app.texts_to("cs_lead").await.is_empty(), "too early");

    app.advance(Duration::hours(25));
    assert!(run_once(&app.state, Job::Reminders).await.unwrap().contains("提醒 1 条"));
    run_once(&app.state, Job::Reminders).await.unwrap();
    let reminders: Vec<String> =
        app.texts_to("cs_lead").await.into_iter().filter(|t| t.contains("超过 24 小时")).collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert!(reminders[0].contains("#1 C类客户「云帆」") && !reminders[0].contains("#2"));
    assert!(app.texts_to("wanggm").await.is_empty());

    app.advance(Duration::hours(48));
    run_once(&app.state, Job::Reminders).await.unwrap();
    run_once(&app.state, Job::Reminders).await.unwrap();
    let escalations = app.texts_to("wanggm").await;
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert!(escalations[0].contains("超过 72 小时") && escalations[0].contains("#1"));
    let logged =
        app.count("SELECT COUNT(*) FROM events WHERE entity_id = '1' AND action IN ('reminded', 'escalated')").await;
    assert_eq!(logged, 2);
}

#[tokio::test]
async fn a_placements_reminder_asks_for_the_day_3_answer() {
    let app = TestApp::spawn().await;
    place(&app, "小王", 3, "自招").await;
    run_once(&app.state, Job::OnjobCheck).await.unwrap();
    app.advance(Duration::hours(25));
    run_once(&app.state, Job::Reminders).await.unwrap();
    let reminders: Vec<String> =
        app.texts_to("tr_lead").await.into_iter().filter(|t| t.contains("超过 24 小时")).collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert!(reminders[0].contains("「在岗 #编号」/「离职 #编号」"), "{}", reminders[0]);
    assert!(!reminders[0].contains("确认 #编号"), "确认 does not work on placements: {}", reminders[0]);
}

#[tokio::test]
async fn nobody_to_send_to_leaves_cards_reminders_and_escalations_for_later() {
    let no_tr_confirmer = ORG
        .replace(
            "name = \"吴总监\"\ndepartment = 3\nlevel = \"director\"\nconfirmer = true",
            "name = \"吴总监\"\ndepartment = 3",
        )
        .replace(r#"audit_group = ["wanggm"]"#, "audit_group = []");
    assert_eq!(no_tr_confirmer.matches("confirmer = true").count(), 2, "only CS's two confirmers are left");
    let app = TestApp::builder().config(&no_tr_confirmer).spawn().await;
    place(&app, "小王", 3, "自招").await;
    let summary = run_once(&app.state, Job::OnjobCheck).await.unwrap();
    assert!(summary.contains("发送了 0 张") && summary.contains("1 条因招商引才事业部没有"), "{summary}");
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE action = 'onjob_check_sent'").await, 0);

    say(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    app.advance(Duration::hours(73));
    let summary = run_once(&app.state, Job::Reminders).await.unwrap();
    assert!(summary.contains("升级 0 条"), "no audit group to tell: {summary}");
    assert_eq!(app.count("SELECT COUNT(*) FROM reminders WHERE stage = 'escalate'").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM reminders WHERE stage = 'remind'").await, 1, "CS was reminded");
}
