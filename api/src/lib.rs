//! The catalogue's HTTP service and command line. Handlers live in `routes/`, one module per
//! resource; they call the `db` crate, which holds every query and transaction.

// The workspace denies unsafe code; only the `catalogue` binary's allocator setting
// (api/src/main.rs) allows it. Nothing in this crate may.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod body;
pub mod cli;
pub mod client;
pub mod commands;
pub mod dates;
pub mod docs;
pub mod error;
pub mod hot_reads;
pub mod lifecycle_feed;
pub mod notify;
pub mod ocds;
pub mod openapi;
pub mod permissions;
pub mod preconditions;
pub mod routes;
pub mod server;
pub mod spreadsheet;
pub mod state;
pub mod telemetry;
pub mod views;
pub mod web;
