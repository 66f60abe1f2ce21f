//! One connection type and one pool for both engines, chosen from the database URL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::DbError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Values bound in one `IN (...)` list: well under SQLite's limit of 32,766 and PostgreSQL's 65,535.
pub(crate) const BINDS_PER_QUERY: usize = 10_000;

/// A connection to either engine. Queries written once with diesel's DSL run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// `postgres://` and `postgresql://` URLs are PostgreSQL; anything else names a SQLite file
    /// (an optional `sqlite://` prefix is accepted).
    pub fn from_url(url: &str) -> Engine {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else {
            Engine::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgresql",
        }
    }
}

/// Opens connections for the pool. Written by hand rather than using diesel's generic manager
/// so that a PostgreSQL URL that fails to connect is never retried as a SQLite file name.
pub struct ConnectionManager {
    engine: Engine,
    url: String,
}

/// Creates a new SQLite file readable by its owner only (0600): it holds password hashes.
/// SQLite gives its `-wal` and `-shm` files the database file's permissions. An existing file is
/// left as it is (its owner chose its mode).
fn create_private_file(path: &str) -> Result<(), DbError> {
    if path == ":memory:" || path.is_empty() || std::path::Path::new(path).exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(DbError::Unavailable(format!("cannot create the database file {path}: {error}"))),
    }
}

/// The file a SQLite database URL names.
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url)
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match self.engine {
            Engine::Postgres => PgConnection::establish(&self.url)
                .map(DbConnection::Postgres)
                .map_err(r2d2::Error::ConnectionError),
            Engine::Sqlite => {
                let mut conn = SqliteConnection::establish(sqlite_path(&self.url))
                    .map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers proceed during a write; the busy timeout makes a second
                // process (a `catalogue seed` beside a running server) wait instead of failing.
                // The busy timeout comes first so that the pragmas after it wait too.
                // The page cache is per connection: SQLite's default of 2 MiB, times a pool of
                // 16, was a fifth of the server's memory at national scale after a few product
                // searches; the operating system caches the file for all of them anyway.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -512;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1").map_err(r2d2::Error::QueryError)
    }

    /// Checked when a connection comes back to the pool: one whose server went away (or that is
    /// mid-transaction after a panic) is dropped instead of handed out again.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        match conn {
            DbConnection::Postgres(conn) => R2D2Connection::is_broken(conn),
            DbConnection::Sqlite(conn) => R2D2Connection::is_broken(conn),
        }
    }
}

pub type PooledDb = PooledConnection<ConnectionManager>;

/// The database: a pool, and for SQLite the one-writer lock.
#[derive(Clone)]
pub struct Database {
    pool: Pool<ConnectionManager>,
    engine: Engine,
    /// SQLite allows one writer at a time. A deferred transaction that reads and then writes can
    /// fail at once with SQLITE_BUSY when another writer got there first; holding this lock for
    /// every write transaction in the process makes writers queue instead.
    sqlite_writer: Arc<Mutex<()>>,
    /// Told of every committed write's changes (the in-memory read model, when one is kept).
    listener: Arc<std::sync::OnceLock<Arc<dyn CommitListener>>>,
}

/// A change a committed write made, as those who keep a copy of the data need to hear of it.
#[derive(Clone, Debug)]
pub struct Committed {
    pub entity: &'static str,
    pub entity_id: String,
    pub after: Option<serde_json::Value>,
}

/// Hears of each write's changes once they are committed, before the write returns to its
/// caller (so a request that begins after a write sees it). The data layer knows only this
/// trait; what listens (the read model) is wired up above it.
pub trait CommitListener: Send + Sync {
    fn committed(&self, db: &Database, changes: &[Committed]);
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("engine", &self.engine).finish_non_exhaustive()
    }
}

impl Database {
    /// Connects and checks that one connection can be made, so that a bad URL or an unreachable
    /// server is reported at start-up in one line.
    pub fn connect(url: &str, max_connections: u32) -> Result<Database, DbError> {
        let engine = Engine::from_url(url);
        if engine == Engine::Sqlite {
            create_private_file(sqlite_path(url))?;
        }
        let manager = ConnectionManager { engine, url: url.to_owned() };
        let pool = Pool::builder()
            .max_size(max_connections.max(1))
            // Open one connection up front (so a bad URL fails now) and the rest on demand.
            .min_idle(Some(1))
            // No `SELECT 1` before every checkout: it was one round trip in ten of a seat claim
            // on PostgreSQL. Broken connections are dropped when returned (`has_broken`).
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(5))
            // Failures are reported once, by the caller, not logged by r2d2 on every retry.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|error| DbError::Unavailable(connection_error_summary(&error.to_string())))?;
        Ok(Database {
            pool,
            engine,
            sqlite_writer: Arc::new(Mutex::new(())),
            listener: Arc::new(std::sync::OnceLock::new()),
        })
    }

    /// From now on `listener` hears of every committed write, on this database and its clones.
    /// There is one listener; a second is refused (false).
    pub fn on_commit(&self, listener: Arc<dyn CommitListener>) -> bool {
        self.listener.set(listener).is_ok()
    }

    /// Tells the listener, if any, of changes just committed.
    pub(crate) fn publish(&self, changes: &[Committed]) {
        if let Some(listener) = self.listener.get() {
            listener.committed(self, changes);
        }
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        self.pool.max_size()
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn connection(&self) -> Result<PooledDb, DbError> {
        self.pool.get().map_err(|error| DbError::Unavailable(connection_error_summary(&error.to_string())))
    }

    /// Runs `work` in a read-only manner on a pooled connection.
    pub fn read<T>(&self, work: impl FnOnce(&mut DbConnection) -> Result<T, DbError>) -> Result<T, DbError> {
        let mut conn = self.connection()?;
        work(&mut conn)
    }

    /// Runs `work` in one transaction: everything it does commits together or not at all.
    /// Write operations use `Database::write` (in the audit module) around it, so that the audit
    /// event commits with them.
    pub fn transaction<T>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut conn = self.connection()?;
        let conn: &mut DbConnection = &mut conn;
        match self.engine {
            Engine::Sqlite => {
                let _writer = self.sqlite_writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                immediate_transaction(conn, work)
            }
            Engine::Postgres => conn.transaction(work),
        }
    }

    /// Runs `work` in a transaction that is always rolled back, and gives back what it found: a
    /// dry run that meets every rule, lock and constraint the write would, and leaves nothing.
    pub fn rehearse<T>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut found = None;
        let outcome = self.transaction(|conn| {
            found = Some(work(conn)?);
            Err::<(), _>(DbError::RolledBack)
        });
        match (outcome, found) {
            (Err(DbError::RolledBack), Some(value)) => Ok(value),
            (Err(error), _) => Err(error),
            (Ok(()), _) => Err(DbError::Internal("a rehearsal committed".into())),
        }
    }

    /// Runs `work` only when no other instance is running work under the same `key` (a periodic
    /// job that must run once across several instances). On PostgreSQL, a session advisory lock
    /// held on one pooled connection for the duration; `None` when another holds it. On SQLite
    /// the embedded default is one instance, so the work always runs.
    pub fn run_alone<T>(&self, key: i64, work: impl FnOnce() -> T) -> Result<Option<T>, DbError> {
        #[derive(diesel::QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        if self.engine == Engine::Sqlite {
            return Ok(Some(work()));
        }
        let mut conn = self.connection()?;
        let locked: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<diesel::sql_types::BigInt, _>(key)
            .get_result(&mut *conn)?;
        if !locked.locked {
            return Ok(None);
        }
        let outcome = work();
        let _: Locked = diesel::sql_query("SELECT pg_advisory_unlock($1) AS locked")
            .bind::<diesel::sql_types::BigInt, _>(key)
            .get_result(&mut *conn)?;
        Ok(Some(outcome))
    }

    pub fn migrate(&self) -> Result<usize, DbError> {
        let mut conn = self.connection()?;
        let applied = match self.engine {
            Engine::Sqlite => conn.run_pending_migrations(SQLITE_MIGRATIONS),
            Engine::Postgres => conn.run_pending_migrations(POSTGRES_MIGRATIONS),
        }
        .map_err(|error| DbError::Migration(error.to_string()))?;
        Ok(applied.len())
    }

    /// True when the database answers and every embedded migration has been applied.
    pub fn is_ready(&self) -> bool {
        let Ok(mut conn) = self.connection() else { return false };
        let pending = match self.engine {
            Engine::Sqlite => conn.has_pending_migration(SQLITE_MIGRATIONS),
            Engine::Postgres => conn.has_pending_migration(POSTGRES_MIGRATIONS),
        };
        matches!(pending, Ok(false))
    }
}

/// A SQLite write transaction that takes the write lock when it begins (`BEGIN IMMEDIATE`).
/// Another process (or another pool on the same file) may be writing: a deferred transaction
/// that has read and then writes fails at once with SQLITE_BUSY, without waiting, whereas
/// `BEGIN IMMEDIATE` waits for the lock up to the busy timeout. The in-process writer lock
/// cannot help across processes.
fn immediate_transaction<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;
    let DbConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(work);
    };
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match work(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            Err(rollback_error) => Err(rollback_error.into()),
        },
    }
}

/// The first line of a connection error, without the URL (which may hold a password).
fn connection_error_summary(message: &str) -> String {
    let first = message.lines().next().unwrap_or("cannot connect").trim();
    if first.contains("://") { "cannot connect to the database".to_owned() } else { first.to_owned() }
}
