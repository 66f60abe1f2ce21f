//! Starting the service: open and prepare the database, then serve.

use std::net::TcpListener;

use actix_web::HttpServer;
use actix_web::dev::Server;
use anyhow::Context;
use db::Database;

use crate::app::build_app;
use crate::state::AppState;

/// Opens the database and applies pending migrations.
pub fn open_database(url: &str, max_connections: u32) -> anyhow::Result<Database> {
    let db = Database::connect(url, max_connections)?;
    db.migrate()?;
    Ok(db)
}

/// Binds the address, with a one-line error when it is taken or invalid.
pub fn bind(address: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))
}

/// The running server on an already bound listener (tests pass port 0).
pub fn start(listener: TcpListener, state: AppState, workers: Option<usize>) -> anyhow::Result<Server> {
    let metrics = crate::app::metrics()?;
    // Blocking threads a worker may start: enough for every database slot and password slot
    // (see `AppState`), no more. Tokio's default, 512 per server, let idle threads pile up,
    // each holding its stack.
    let blocking_threads = state.blocking_threads();
    // A request head must arrive within 15 s of connecting (actix's default is 5 s, which a
    // saturated two-core machine can miss for a client that did nothing wrong).
    let mut server = HttpServer::new(move || build_app(state.clone(), metrics.clone()))
        .client_request_timeout(std::time::Duration::from_secs(15))
        .worker_max_blocking_threads(blocking_threads);
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    Ok(server.listen(listener)?.run())
}
