//! End-to-end tests: the service on a loopback port, driven as WeCom drives it.

mod answers;
mod audit;
mod backup;
mod callback;
mod config;
mod confirmation;
mod connections;
mod contests;
mod corrections;
mod crypto;
mod directory_sync;
mod entry_points;
mod first_claim;
mod helpers;
mod inbox;
mod interop;
mod layering;
mod local_mode;
mod new_user;
mod outbox;
mod programme_admin;
mod reporting;
mod scheduler;
mod settlement;
mod shutdown;
mod storage;
