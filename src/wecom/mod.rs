//! Everything WeCom: callback crypto and XML, the API client, outbound message bodies,
//! and the local-mode simulator that stands in for the API.

pub mod client;
pub mod contacts;
pub mod crypto;
pub mod message;
pub mod peer;
pub mod simulator;
pub mod xml;
