//! What every handler can reach: the database and the authentication settings.

use actix_web::web;
use db::{Database, DbResult};

use crate::error::ApiResult;

#[derive(Clone)]
pub struct AppState {
    pub db: Database,
}

impl AppState {
    pub fn new(db: Database) -> AppState {
        AppState { db }
    }

    /// Runs blocking database work on the blocking thread pool, never on the event loop.
    pub async fn run<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> DbResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        Ok(web::block(move || work(&db)).await??)
    }
}
