//! leadboard: a WeCom bot that runs a company's all-staff marketing programme.
//!
//! The layers, top to bottom (ARCHITECTURE.md has the picture):
//! - `main`, `cli`, `local`: the binary, its one-shot subcommands, local mode.
//! - `app`: starting and stopping the service; `state`: what its parts share;
//!   `reload`: the configuration reloaded while it runs; `control`: the socket
//!   through which `leadboard reload` asks for that.
//! - `http`: the callback, health and metrics endpoints; `exactly_once`: one callback,
//!   processed once.
//! - `commands`: the chat front end (command table, parser, card presses), thin over
//!   `service`.
//! - `web`: the web console under `/ui/` (WeCom sign-in, pages per role), thin over
//!   `service` like `commands`.
//!   `service`; `board`: the TV board front end (`/board/{contest}`, its live event
//!   stream), thin over `service` too.
//! - `jobs`: the scheduler and one run-once step per job, thin over `service`.
//! - `service`: the operations every entry point shares, with the permission table.
//! - `outbox`: the worker delivering queued messages to WeCom.
//! - `wecom`: callback crypto and XML, the API client, message bodies, the simulator.
//! - `store`: all SQL; `domain`: pure business types and rules; `config`: settings.

pub mod app;
pub mod board;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod domain;
pub mod exactly_once;
pub mod http;
pub mod jobs;
pub mod local;
pub mod metrics;
pub mod outbox;
pub mod reload;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod wecom;
