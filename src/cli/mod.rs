//! Subcommands other than `serve`.

pub mod backup;
pub mod demo;
pub mod directory;
pub mod jobs;
pub mod migrate;
pub mod press;
pub mod reload;
pub mod send;
pub mod settle;

/// Prints a line of a subcommand's output. When the reader has gone (`| head`), the
/// output ends quietly with success: whatever the command did is already committed.
pub fn line(text: impl std::fmt::Display) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{text}") {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("错误：无法输出：{e}");
            std::process::exit(1);
        }
        std::process::exit(0);
    }
}
