//! The catalogue's data layer: one schema on SQLite and PostgreSQL, the transactional operations
//! on it, and the audit mechanism they all use. Nothing here knows about HTTP.

// The workspace denies unsafe code; only the `catalogue` binary's allocator setting
// (api/src/main.rs) allows it. Nothing in this crate may.
#![forbid(unsafe_code)]

pub mod action;
pub mod advisories;
pub mod agreements;
pub mod attempts;
pub mod attention;
pub mod audit;
pub mod backup;
pub mod connection;
pub mod coverage;
pub mod deliveries;
pub mod error;
pub mod estates;
pub mod guidance;
pub mod icb_acting;
pub mod ledger;
pub mod lifecycle;
pub mod nhsmail;
pub mod ods;
pub mod ods_successions;
pub mod organisations;
pub mod outbox;
pub mod page;
pub mod password_resets;
pub mod product_requests;
pub mod products;
pub mod purchases;
pub mod read_model;
pub mod reconciliation;
pub mod releases;
pub mod reminders;
pub mod reports;
pub mod risk;
pub mod schema;
pub mod seat_changes;
pub mod seat_requests;
pub mod seed;
pub mod standards;
pub mod stored;
pub mod subscriptions;
pub mod synthetic;
pub mod text_filter;
pub mod time;
pub mod users;
pub mod vocabulary;

pub use audit::{Actor, Audited, Change};
pub use connection::{Database, DbConnection, Engine};
pub use error::{DbError, DbResult};
pub use page::{AddedOrder, Page, PageRequest, Precondition};
