//! End-to-end tests: the service on a loopback port, driven as WeCom drives it.

mod backup;
mod callback;
mod config;
mod crypto;
mod helpers;
mod interop;
mod local_mode;
mod outbox;
mod shutdown;
