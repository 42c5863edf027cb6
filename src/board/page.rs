//! The board's HTML (askama templates under `templates/board/`, checked at compile
//! time and escaped) and its static files.

use super::live::Snapshot;
use crate::domain::money::Fen;
use crate::service::board::BoardView;
use askama::Template;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// At most this many teams are listed (a screen's height); the rest are counted.
const TEAMS_SHOWN: usize = 10;
/// From this many teams on, the rows are smaller.
const MANY_TEAMS: usize = 8;
/// Distinct colours (`team-0` … in the stylesheet and `board.js`).
const COLOURS: usize = 10;

const CSS: &[u8] = include_bytes!("../../assets/board.css");
const JS: &[u8] = include_bytes!("../../assets/board.js");
const CHART_JS: &[u8] = include_bytes!("../../assets/vendor/chartjs/chart.umd.js");

/// A file served under `/board/assets/`, and its content type.
pub fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    Some(match name {
        "board.css" => (CSS, "text/css; charset=utf-8"),
        "board.js" => (JS, "text/javascript; charset=utf-8"),
        "chart.umd.js" => (CHART_JS, "text/javascript; charset=utf-8"),
        _ => return None,
    })
}

/// A hash of the static files, in their addresses: a new build's files are fetched
/// anew although browsers cache them long.
static ASSETS_VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for bytes in [CSS, JS, CHART_JS] {
        hash.update(bytes);
    }
    hex::encode(&hash.finalize()[..6])
});

struct TeamRow<'a> {
    rank: u32,
    name: &'a str,
    points: i64,
    members: usize,
    owed: Option<String>,
    colour: usize,
}

#[derive(Template)]
#[template(path = "board/live.html")]
struct Live<'a> {
    v: &'a BoardView,
    countdown: String,
    pool: String,
    stakes: String,
    sponsorship: String,
    owed: Option<String>,
    teams: Vec<TeamRow<'a>>,
    hidden_teams: usize,
    many: bool,
    today_more: i64,
}

#[derive(Template)]
#[template(path = "board/page.html")]
struct Page<'a> {
    name: &'a str,
    live: &'a str,
    series: String,
    events: String,
    theme: Option<&'a str>,
    assets: &'a str,
    now_ms: i64,
}

/// Yuan for a screen: `12,600`, or `12,600.50` when there are fen.
fn yuan(fen: Fen) -> String {
    let grouped = fen.grouped();
    grouped.strip_suffix(".00").map(str::to_owned).unwrap_or(grouped)
}

/// `2 天 03:12:45` until the cut-off (`board.js` counts it down each second).
pub fn countdown(left_ms: i64) -> String {
    let secs = left_ms.max(0) / 1000;
    let (days, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if days > 0 { format!("{days} 天 {h:02}:{m:02}:{s:02}") } else { format!("{h:02}:{m:02}:{s:02}") }
}

/// The part of the page that live updates replace.
pub fn live(v: &BoardView) -> askama::Result<String> {
    let teams = v
        .teams
        .iter()
        .take(TEAMS_SHOWN)
        .map(|t| TeamRow {
            rank: t.rank,
            name: &t.name,
            points: t.points,
            members: t.members,
            owed: (t.owed.0 > 0).then(|| yuan(t.owed)),
            colour: t.slot % COLOURS,
        })
        .collect();
    Live {
        v,
        countdown: if v.running { countdown(v.cutoff_ms - v.now_ms) } else { v.time_left.clone() },
        pool: yuan(v.pool),
        stakes: yuan(v.stakes),
        sponsorship: yuan(v.sponsorship),
        owed: (v.owed.0 > 0).then(|| yuan(v.owed)),
        teams,
        hidden_teams: v.teams.len().saturating_sub(TEAMS_SHOWN),
        many: v.teams.len() >= MANY_TEAMS,
        today_more: v.today_count - v.today.len() as i64,
    }
    .render()
}

/// The whole page for a board opened with `key`.
pub fn render(s: &Snapshot, contest: &str, key: &str, theme: Option<&str>, now_ms: i64) -> askama::Result<String> {
    let path = crate::service::board::path(contest, key);
    let (base, query) = path.split_once('?').unwrap_or((&path, ""));
    Page {
        name: &s.name,
        live: &s.live_html,
        series: s.series.to_string(),
        events: format!("{base}/events?{query}"),
        theme,
        assets: &ASSETS_VERSION,
        now_ms,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_countdown_reads_days_then_a_clock() {
        assert_eq!(countdown(((2 * 24 + 3) * 3600 + 12 * 60 + 45) * 1000), "2 天 03:12:45");
        assert_eq!(countdown(59_999), "00:00:59");
        assert_eq!(countdown(-5), "00:00:00");
    }

    #[test]
    fn whole_yuan_have_no_cents() {
        assert_eq!(yuan(Fen::from_yuan(12_600)), "12,600");
        assert_eq!(yuan(Fen(1_260_050)), "12,600.50");
    }
}
