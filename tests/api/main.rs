//! The one integration-test binary: a real server per test, over SQLite by
//! default or PostgreSQL with `KB_TEST_DATABASE_URL`. One module per area.

mod helpers;
mod world;

mod accounts;
mod authz;
mod bids;
mod chronograph;
mod cli;
mod client_cli;
mod confidentiality;
mod evaluation;
mod frontend;
mod keys;
mod mail;
mod migrations;
mod multinode;
mod openapi;
mod opening;
mod opening_nodes;
mod pool;
mod protocol_example;
mod room;
mod sections;
mod smtp;
mod system;
mod vectors;
