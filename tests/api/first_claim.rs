//! First claim wins over the names people actually type: every variant of a claimed
//! name that an auditor would call the same is refused, near misses are stored but
//! flagged for the confirmers and the audit group, for clients, channels, placed
//! people and a referral's new client. A credit code bound to an unrelated name does
//! not block the genuine company.

use crate::helpers::TestApp;

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

/// Variants of `base` that are the same name, by the tricks people (and copy-paste)
/// play: invisible characters, punctuation, spacing, widths, legal forms, traditional
/// characters, brackets and look-alike letters.
fn same_variants(base: &str) -> Vec<String> {
    let (head, tail) = base.split_at(base.char_indices().nth(2).map_or(base.len(), |(i, _)| i));
    vec![
        format!("{head}\u{200D}{tail}"), // zero-width joiner
        format!("{head}\u{200B}{tail}"), // zero-width space
        format!("{head}\u{200C}{tail}"), // zero-width non-joiner
        format!("{head}\u{2060}{tail}"), // word joiner
        format!("\u{FEFF}{base}"),       // BOM
        format!("{head}\u{00AD}{tail}"), // soft hyphen
        format!("\u{200E}{base}\u{200F}"),
        format!("\u{202E}{base}\u{202C}"),
        format!("{base}."),
        format!("{base}．"),
        format!("{base}·"),
        format!("{head} {tail}"),
        format!("{head}\u{3000}{tail}"),
        format!("{head}\u{00A0}{tail}"),
    ]
}

fn refused(answer: &str) -> bool {
    answer.contains("先报先得") && !answer.contains("已登记")
}

#[tokio::test]
async fn variants_of_a_client_are_the_same_client_or_flagged() {
    let app = TestApp::spawn().await;
    let base = "杭州ABC云网络发展有限公司(9号)";
    assert!(say(&app, "zhangwei", &format!("C类 公司={base} 联系人=王")).await.contains("已登记 #1"));
    let mut same = same_variants(base);
    same.extend(
        [
            "杭州ABC云网络发展有限责任公司(9号)",
            "杭州ABC雲網絡發展有限公司(9號)",
            "杭州ＡＢＣ云网络发展有限公司（9号）",
            "杭州ABC云网络发展有限公司【9号】",
            "杭州ABC云网络发展有限公司〔9号〕",
            "杭州\u{0410}BC云网络发展有限公司(9号)", // Cyrillic А
            "杭州A\u{0392}C云网络发展有限公司(9号)", // Greek Β
            "杭州AB\u{216D}云网络发展有限公司(9号)", // Roman numeral Ⅽ
            "杭州𝐀𝐁𝐂云网络发展有限公司(9号)",
            "杭州A\u{0301}BC云网络发展有限公司(9号)", // a combining accent
            "杭州abc云网络发展有限公司(9号)",
        ]
        .map(str::to_owned),
    );
    for variant in &same {
        let answer = say(&app, "sunli", &format!("C类 公司={variant} 联系人=李")).await;
        assert!(refused(&answer) && answer.contains("#1"), "{variant:?} → {answer}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 1);

    // A near miss is stored, flagged, and named on the confirmers' card and in 待审.
    let near = say(&app, "sunli", "C类 公司=杭州ABC云网络发展有限公司(九号) 联系人=李").await;
    assert!(near.contains("已登记 #2") && near.contains("与 #1「杭州ABC云网络发展有限公司(9号)」"), "{near}");
    let card = app.cards_to("cs_lead").await.pop().unwrap();
    assert!(card["sub_title_text"].as_str().unwrap_or_default().contains("#1"), "{card}");
    let review = say(&app, "wanggm", "待审").await;
    assert!(review.contains("#2 C类客户") && review.contains("与 #1"), "{review}");
    // Two companies in different cities stay two.
    let other_city = say(&app, "sunli", "C类 公司=宁波ABC云网络发展有限公司(9号) 联系人=李").await;
    assert!(other_city.contains("已登记 #3"), "{other_city}");
}

#[tokio::test]
async fn variants_of_a_channel_are_the_same_channel() {
    let app = TestApp::spawn().await;
    let base = "杭州职业技术学院";
    assert!(say(&app, "zhengqiang", &format!("院校渠道 名称={base}")).await.contains("已登记 #1"));
    let mut same = same_variants(base);
    same.extend(["杭州職業技術學院", "〔杭州职业技术学院〕"].map(str::to_owned));
    for variant in &same {
        let answer = say(&app, "qianjing", &format!("院校渠道 名称={variant}")).await;
        assert!(refused(&answer), "{variant:?} → {answer}");
    }
    let near = say(&app, "qianjing", "院校渠道 名称=杭州职业技术学院分院").await;
    assert!(near.contains("已登记 #2") && near.contains("名称相近"), "{near}");
    // Containment either way, anywhere in the name and beyond the index's eight
    // characters: a name inside both, and one holding #2 in its middle.
    let inside = say(&app, "qianjing", "院校渠道 名称=职业技术学院").await;
    assert!(inside.contains("已登记 #3") && inside.contains("#1") && inside.contains("#2"), "{inside}");
    let around = say(&app, "qianjing", "院校渠道 名称=浙江省杭州职业技术学院分院继续教育中心").await;
    assert!(around.contains("已登记 #4") && around.contains("#2") && around.contains("名称相近"), "{around}");
}

#[tokio::test]
async fn variants_of_a_placed_person_are_the_same_placement() {
    let app = TestApp::spawn().await;
    let day = app.today();
    let first = say(&app, "zhengqiang", &format!("上岗 姓名=王小明 入职={day} 渠道=自招")).await;
    assert!(first.contains("已登记 #1"), "{first}");
    let mut same = same_variants("王小明");
    same.push("王小明.".into());
    for variant in &same {
        let answer = say(&app, "tr_lead", &format!("上岗 姓名={variant} 入职={day} 渠道=自招")).await;
        assert!(refused(&answer), "{variant:?} → {answer}");
    }
    let near = say(&app, "tr_lead", &format!("上岗 姓名=王晓明 入职={day} 渠道=自招")).await;
    assert!(near.contains("已登记 #2") && near.contains("名称相近"), "{near}");
}

#[tokio::test]
async fn a_referral_claims_its_new_client_under_the_same_rules() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆科技 联系人=王").await; // #1, the old client
    let referral = say(&app, "sunli", "转介绍 老客户=云帆科技 新客户=星河传媒有限公司").await;
    assert!(referral.contains("已登记 #2"), "{referral}");
    assert!(!referral.contains("没有记录"), "the old client is known: {referral}");
    for variant in same_variants("星河传媒有限公司").iter().chain([&"星河傳媒".to_owned()]) {
        let answer = say(&app, "zhangwei", &format!("转介绍 老客户=云帆科技 新客户={variant}")).await;
        assert!(refused(&answer), "{variant:?} → {answer}");
        // A referral's new client is claimed: a colleague cannot report it as a client.
        let as_client = say(&app, "zhangwei", &format!("C类 公司={variant} 联系人=李")).await;
        assert!(refused(&as_client) && as_client.contains("#2"), "{variant:?} → {as_client}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 2);
}

#[tokio::test]
async fn a_self_referral_is_refused_and_an_unknown_old_client_is_said() {
    let app = TestApp::spawn().await;
    let own = say(&app, "sunli", "转介绍 老客户=星河传媒 新客户=星河传媒有限公司").await;
    assert!(own.contains("同一家"), "{own}");
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 0);
    let unknown = say(&app, "sunli", "转介绍 老客户=海洋集团 新客户=星河传媒").await;
    assert!(unknown.contains("已登记 #1") && unknown.contains("老客户「海洋集团」在系统中没有记录"), "{unknown}");
    let card = app.cards_to("cs_lead").await.pop().unwrap();
    assert!(card["sub_title_text"].as_str().unwrap_or_default().contains("海洋集团"), "{card}");
    // A client already reported is not a referral's new client.
    say(&app, "zhangwei", "C类 公司=山峰科技 联系人=王").await;
    let taken = say(&app, "sunli", "转介绍 老客户=海洋集团 新客户=山峰科技").await;
    assert!(refused(&taken) && taken.contains("张伟"), "{taken}");
}

#[tokio::test]
async fn a_credit_code_bound_to_an_unrelated_name_does_not_block_the_company() {
    let app = TestApp::spawn().await;
    // Someone binds the real company's code to an unrelated name first.
    say(&app, "zhangwei", "C类 公司=随便写的名字 联系人=王 信用代码=91330100716105852F").await;
    let genuine = say(&app, "sunli", "C类 公司=杭州云帆科技有限公司 联系人=李 信用代码=91330100716105852F").await;
    assert!(genuine.contains("已登记 #2"), "the genuine report is accepted: {genuine}");
    assert!(genuine.contains("信用代码 91330100716105852F 已登记在「随便写的名字」（#1）名下"), "{genuine}");
    let flags = app.count("SELECT COUNT(*) FROM record_flags WHERE record_id = 2 AND kind = 'credit_code'").await;
    assert_eq!(flags, 1);
    // The same name under another valid code: no invitation to rename around it.
    let other_code = say(&app, "qianjing", "C类 公司=随便写的名字 联系人=钱 信用代码=91110000100003495Y").await;
    assert!(other_code.contains("不同的统一社会信用代码") && !other_code.contains("注明区别"), "{other_code}");
}

#[tokio::test]
async fn a_refused_report_leaves_nothing_it_wrote_before_refusing() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=杭州云帆科技有限公司 联系人=王").await;
    // The second report's credit code is bound to the stored company (written, with
    // its event) before the first claim is found and the report refused: the command
    // runs in its callback's savepoint, rolled back when it refuses.
    let late = say(&app, "sunli", "C类 公司=杭州云帆科技有限公司 联系人=李 信用代码=91330100716105852F").await;
    assert!(refused(&late), "{late}");
    assert_eq!(app.count("SELECT COUNT(*) FROM subjects WHERE credit_code IS NOT NULL").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE action = 'credit_code_set'").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 2, "the refusal is the stored answer");
}
