//! Logging: tracing to stderr, human-readable or JSON lines, filtered by `RUST_LOG`.

use crate::clock::TZ;
use crate::config::LogFormat;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::{EnvFilter, fmt};

/// Log timestamps in Asia/Shanghai, with the offset (`2026-11-29T10:02:03.123456+08:00`):
/// the times people and the programme speak of, whatever the server's time zone.
struct Shanghai;

impl FormatTime for Shanghai {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", chrono::Utc::now().with_timezone(&TZ).format("%Y-%m-%dT%H:%M:%S%.6f%:z"))
    }
}

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).with_timer(Shanghai);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // Every line names the span it was emitted in and all spans around it, so a
        // callback's lines carry the `request` span's request id however deep they are.
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(true).try_init(),
    };
}
