//! What every handler can reach: the database and the authentication settings.

use std::sync::Arc;

use actix_web::web;
use db::{Database, DbResult};

use crate::auth::AuthConfig;
use crate::auth::throttle::Throttle;
use crate::error::ApiResult;

#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub auth: Arc<AuthConfig>,
    pub throttle: Arc<Throttle>,
    /// Origins allowed to call the API from a browser (CORS); none by default.
    pub cors_origins: Arc<Vec<String>>,
}

impl AppState {
    pub fn new(db: Database, auth: AuthConfig) -> AppState {
        AppState {
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
        let db = self.db.clone();
        Ok(web::block(move || work(&db)).await??)
    }
}
