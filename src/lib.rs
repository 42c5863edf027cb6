//! leadboard: a WeCom bot that runs a company's all-staff marketing programme.
//!
//! - `config`: settings from TOML and the environment, checked as a whole.
//! - `app`, `http`: the service, its callback, health and metrics endpoints.
//! - `bot`: exactly-once processing of one callback.
//! - `wecom`: callback crypto and XML, the API client, outbound messages, the simulator.
//! - `delivery`: the outbox worker; `jobs`: the scheduler and its jobs.
//! - `commands`: the chat commands (table, parser, one module per command).
//! - `store`: all SQL.
//! - `domain`: pure business types and rules.
//! - `settlement`: the monthly rewards export for finance.
//! - `cli`: one-shot subcommands; `local`: local mode.

pub mod app;
pub mod bot;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod local;
pub mod metrics;
pub mod settlement;
pub mod store;
pub mod telemetry;
pub mod wecom;
