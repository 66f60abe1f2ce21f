//! What every handler can reach: the database, the read model when one is kept, and the
//! authentication settings. `hot_reads.rs` decides where the hot reads are answered from.

use std::sync::Arc;

use actix_web::web;
use db::read_model::ReadModel;
use db::{Database, DbResult};
use tokio::sync::Semaphore;

use crate::auth::AuthConfig;
use crate::auth::password_workers::PasswordWorkers;
use crate::client::TrustedProxies;
use crate::error::{ApiError, ApiResult};
use crate::notify::password_reset::ResetMail;

/// Password jobs that may wait for a password thread, per thread: with argon2id at tens of
/// milliseconds a job, a full queue is well under a second of work. Past it: 503 and Retry-After.
const PASSWORD_QUEUE_PER_THREAD: usize = 16;

#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    /// The in-memory read model of the hot reads, when the service keeps one (`catalogue serve`
    /// does); it hears of every committed write through the database's commit listener.
    pub(crate) read_model: Option<Arc<ReadModel>>,
    pub auth: Arc<AuthConfig>,
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed; none by default.
    pub trusted_proxies: Arc<TrustedProxies>,
    /// The bearer token a metrics scraper must present; `/metrics` is off without one.
    pub metrics_token: Arc<MetricsToken>,
    /// Origins allowed to call the API from a browser (CORS); none by default.
    pub cors_origins: Arc<Vec<String>>,
    /// Database work waits here for a slot, one per pooled connection, before it takes a
    /// blocking thread. Without it every waiting request held a thread (64 connections of load
    /// grew the server by 25 MB of stacks) and waited in r2d2, whose waiters are not served in
    /// order (PostgreSQL showed a multi-second p99 tail). Slots are handed out first come, first
    /// served.
    database_slots: Arc<Semaphore>,
    /// Password hashing (argon2id: 19 MiB and tens of milliseconds each) runs on one thread per
    /// core, never more: more at once is no faster, and each holds its memory (see
    /// [`PasswordWorkers`]).
    password_workers: PasswordWorkers,
    /// Blocking threads database work may use (a semaphore does not tell its size).
    blocking_threads: usize,
    /// The OCID prefix of the OCDS releases (`crate::ocds`).
    pub ocid_prefix: Arc<str>,
    /// Webhook URLs may be plain http (development and tests; production is https only).
    pub webhooks_allow_http: bool,
    /// How password reset emails go out; `None` (no SMTP server or no public address
    /// configured): reset by email is off.
    pub password_reset_mail: Option<Arc<ResetMail>>,
}

impl AppState {
    pub fn new(db: Database, auth: AuthConfig) -> anyhow::Result<AppState> {
        let database_slots = db.max_connections() as usize;
        let password_threads = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(AppState {
            database_slots: Arc::new(Semaphore::new(database_slots)),
            password_workers: PasswordWorkers::start(
                password_threads,
                password_threads * PASSWORD_QUEUE_PER_THREAD,
            )?,
            blocking_threads: database_slots,
            db,
            read_model: None,
            auth: Arc::new(auth),
            trusted_proxies: Arc::default(),
            metrics_token: Arc::default(),
            cors_origins: Arc::default(),
            ocid_prefix: Arc::from(crate::ocds::DEFAULT_OCID_PREFIX),
            webhooks_allow_http: false,
            password_reset_mail: None,
        })
    }

    /// Answers the hot reads from `model`, which from now on hears of every write committed
    /// through this state's database.
    pub fn with_read_model(mut self, model: Arc<ReadModel>) -> AppState {
        self.db.on_commit(model.clone());
        self.read_model = Some(model);
        self
    }

    pub fn with_webhooks_allow_http(mut self, allow: bool) -> AppState {
        self.webhooks_allow_http = allow;
        self
    }

    pub fn with_password_reset_mail(mut self, mail: Option<ResetMail>) -> AppState {
        self.password_reset_mail = mail.map(Arc::new);
        self
    }

    pub fn with_metrics_token(mut self, token: Option<String>) -> AppState {
        self.metrics_token = Arc::new(MetricsToken::new(token));
        self
    }

    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> AppState {
        self.trusted_proxies = Arc::new(proxies);
        self
    }

    pub fn with_ocid_prefix(mut self, prefix: &str) -> AppState {
        self.ocid_prefix = Arc::from(prefix);
        self
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

    /// Runs a read on one pooled connection, waiting for a database slot as [`AppState::run`] does.
    pub async fn read<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut db::DbConnection) -> DbResult<T> + Send + 'static,
    {
        self.run(move |db| db.read(work)).await
    }

    /// How many blocking threads the work above can use at once: one per database slot. A
    /// worker needs no more (password work has threads of its own).
    pub fn blocking_threads(&self) -> usize {
        self.blocking_threads
    }

    /// Runs password hashing or verification on the password threads; 503 with `Retry-After`
    /// when too many are waiting already.
    pub async fn run_password_work<T>(&self, work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T>
    where
        T: Send + 'static,
    {
        self.password_workers.run(work).await.map_err(|_| ApiError::Busy { retry_after_seconds: 1 })
    }
}

/// The metrics scraper's token, held as its SHA-256 so that the comparison takes the same time
/// whatever the guess.
#[derive(Default)]
pub struct MetricsToken(Option<[u8; 32]>);

impl MetricsToken {
    pub fn new(token: Option<String>) -> MetricsToken {
        MetricsToken(token.filter(|t| !t.is_empty()).map(|t| digest(t.as_bytes())))
    }

    /// Whether the request carries `Authorization: Bearer <token>`.
    pub fn allows(&self, headers: &actix_web::http::header::HeaderMap) -> bool {
        let Some(expected) = &self.0 else { return false };
        headers
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|presented| digest(presented.trim().as_bytes()) == *expected)
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
