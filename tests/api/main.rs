//! End-to-end tests: the service on a loopback port, driven as WeCom drives it.

mod callback;
mod crypto;
mod helpers;
