//! Telling people and systems: signed webhooks, email, and the worker that delivers the outbox.

pub mod email;
pub mod webhook;
pub mod worker;
