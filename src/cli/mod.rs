//! Subcommands other than `serve`.

pub mod backup;
pub mod jobs;
pub mod send;
pub mod settle;
