//! Subcommands other than `serve`.

pub mod backup;
pub mod directory;
pub mod jobs;
pub mod send;
pub mod settle;
