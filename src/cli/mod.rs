//! Subcommands other than `serve`.

pub mod send;
