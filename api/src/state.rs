//! What every handler can reach: the database and the authentication settings.

use std::sync::Arc;

use actix_web::web;
use db::{Database, DbResult};
use tokio::sync::Semaphore;

use crate::auth::AuthConfig;
use crate::auth::throttle::Throttle;
use crate::error::{ApiError, ApiResult};

#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub auth: Arc<AuthConfig>,
    pub throttle: Arc<Throttle>,
    /// Origins allowed to call the API from a browser (CORS); none by default.
    pub cors_origins: Arc<Vec<String>>,
    /// Database work waits here for a slot, one per pooled connection, before it takes a
    /// blocking thread. Without it every waiting request held a thread (64 connections of load
    /// grew the server by 25 MB of stacks) and waited in r2d2, whose waiters are not served in
    /// order (PostgreSQL showed a multi-second p99 tail). Slots are handed out first come, first
    /// served.
    database_slots: Arc<Semaphore>,
    /// Password hashing (argon2id: 19 MiB and tens of milliseconds each) runs at most one per
    /// core at a time: more at once is no faster, and each holds its memory while it runs.
    password_slots: Arc<Semaphore>,
    /// The two slot counts added up (a semaphore does not tell its size).
    blocking_threads: usize,
}

impl AppState {
    pub fn new(db: Database, auth: AuthConfig) -> AppState {
        let database_slots = db.max_connections() as usize;
        let password_slots = std::thread::available_parallelism().map_or(1, usize::from);
        AppState {
            database_slots: Arc::new(Semaphore::new(database_slots)),
            password_slots: Arc::new(Semaphore::new(password_slots)),
            blocking_threads: database_slots + password_slots,
            db,
            auth: Arc::new(auth),
            throttle: Arc::new(Throttle::default()),
            cors_origins: Arc::default(),
        }
    }

    pub fn with_cors_origins(mut self, origins: Vec<String>) -> AppState {
        self.cors_origins = Arc::new(origins);
        self
    }

    /// Runs blocking database work on the blocking thread pool, never on the event loop.
    pub async fn run<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> DbResult<T> + Send + 'static,
    {
        let _slot = self.database_slots.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
        let db = self.db.clone();
        Ok(web::block(move || work(&db)).await??)
    }

    /// How many blocking threads the work above can use at once: one per database slot and one
    /// per password slot. A worker needs no more.
    pub fn blocking_threads(&self) -> usize {
        self.blocking_threads
    }

    /// Runs password hashing or verification on the blocking thread pool, a few at a time.
    pub async fn run_password_work<T>(&self, work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T>
    where
        T: Send + 'static,
    {
        let _slot = self.password_slots.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(web::block(work).await?)
    }
}
