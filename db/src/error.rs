//! The data layer's error: what went wrong in domain terms. The API maps each variant to an
//! HTTP problem response; nothing here knows about HTTP.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The named thing does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is well formed but conflicts with the current state (a cap, a lifecycle rule).
    #[error("{0}")]
    Conflict(String),
    /// The request is well formed but its content is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// A seat claim would take the entitlement past its cap.
    #[error("not enough seats remain: {remaining}")]
    SeatsExhausted { remaining: i64 },
    /// A list's `cursor` is not one the list handed out.
    #[error("cursor is not valid: pass a next_cursor from the previous page")]
    InvalidCursor,
    /// The caller's copy is out of date (optimistic concurrency).
    #[error("the resource has changed since it was read")]
    StaleRevision,
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A rehearsal's transaction, rolled back on purpose ([`crate::Database::rehearse`]); it
    /// never leaves the data layer.
    #[error("rolled back: a rehearsal writes nothing")]
    RolledBack,
    /// Anything else: logged, never shown to a client.
    #[error("database error: {0}")]
    Internal(String),
}

impl From<DieselError> for DbError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => DbError::NotFound("record"),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                DbError::Conflict("a record with the same identifying values already exists".into())
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                DbError::Invalid("a referenced record does not exist".into())
            }
            DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, _)
            | DieselError::DatabaseError(DatabaseErrorKind::NotNullViolation, _) => {
                DbError::Invalid("the values break a rule of the catalogue".into())
            }
            // PostgreSQL refuses text it cannot store (a NUL character); the input was bad.
            DieselError::DatabaseError(_, info) if info.message().contains("invalid byte sequence") => {
                DbError::Invalid("text must not contain NUL characters".into())
            }
            // PostgreSQL ends one of two transactions that wait on each other; the other goes on.
            // The request can be retried as it was.
            DieselError::DatabaseError(_, info)
                if info.message().contains("deadlock detected")
                    || info.message().contains("could not serialize") =>
            {
                DbError::Conflict("a concurrent change to the same records won; try again".into())
            }
            // SQLite: another process held the write lock past the busy timeout. Nothing was
            // written; the request can be retried.
            DieselError::DatabaseError(_, info) if info.message().contains("database is locked") => {
                DbError::Unavailable("the database is busy with another writer".into())
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                DbError::Unavailable(info.message().to_owned())
            }
            other => DbError::Internal(other.to_string()),
        }
    }
}

impl DbError {
    /// A JSON column that does not read back as its type: the record is corrupt. The message
    /// names the record and the column and says where the text breaks, never what it holds
    /// (serde's own message quotes the offending value).
    pub(crate) fn corrupt_json(
        record: impl std::fmt::Display,
        column: &str,
        error: &serde_json::Error,
    ) -> DbError {
        DbError::Internal(format!(
            "{record} is corrupt: its stored {column} is not valid ({:?} error at line {}, column {})",
            error.classify(),
            error.line(),
            error.column()
        ))
    }

    /// A value that cannot be written as JSON (never expected: the types written serialise).
    pub(crate) fn unwritable_json(what: &str, error: &serde_json::Error) -> DbError {
        DbError::Internal(format!("{what} cannot be written as JSON: {error}"))
    }
}

pub type DbResult<T> = Result<T, DbError>;
