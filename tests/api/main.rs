//! The one integration-test binary: a real server per test, over SQLite by
//! default or PostgreSQL with `KB_TEST_DATABASE_URL`. One module per area;
//! the opening and the evaluation are directories with one file per
//! concern. `world` makes the people, `fixture` brings a section to a
//! phase of its opening, `evaluation::Panel` to a stage of its evaluation.

mod fixture;
mod helpers;
mod world;

mod accounts;
mod authz;
mod bids;
mod chronograph;
mod cli;
mod client_cli;
mod completeness;
mod confidentiality;
mod evaluation;
mod frontend;
mod keys;
mod layout;
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
