//! Every integration test, in one binary. Each module drives the real HTTP app (or the data
//! layer) on SQLite and on PostgreSQL.

mod advisories;
mod attention;
mod audit;
mod auth;
mod catalogue;
mod changes;
mod commercial;
mod coverage_rules;
mod estates;
mod foundation;
mod ledger;
mod lifecycle;
mod module_cycles;
mod notifications;
mod notify_send;
mod ods;
mod ods_icb_acting;
mod ods_kinds;
mod openapi_contract;
mod query_counts;
mod read_model;
mod restricted_lines;
mod route_matrix;
mod schema_file;
mod search;
mod seat_changes;
mod spreadsheets;
mod standards;
mod synthetic;
mod web;
mod web_estates;
mod web_notifications;
mod web_password;
mod web_route_matrix;
mod web_session;
