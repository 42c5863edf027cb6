//! Subcommands other than `serve`.

pub mod jobs;
pub mod send;
