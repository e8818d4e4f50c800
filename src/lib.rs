//! kaibiao (开标): an electronic public-resource trading platform — sealed
//! bids, live no-meeting openings and remote expert evaluation.
//!
//! See `docs/ARCHITECTURE.md` for the map of this crate.

pub mod app;
pub mod chronograph;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod evaluation;
pub mod http;
pub mod keystore;
pub mod metrics;
pub mod notify;
pub mod room;
pub mod service;
pub mod storage;
pub mod transcript;
