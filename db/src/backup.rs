//! Backups of the embedded SQLite database while the service runs.
//!
//! `VACUUM INTO` writes a consistent copy from one read transaction (writers carry on; WAL
//! mode keeps readers and the writer apart) and compacts it on the way. PostgreSQL has its own
//! tool for this, `pg_dump`, which the README describes; nothing here imitates it.

use std::path::Path;

use diesel::connection::SimpleConnection;

use crate::connection::{Database, Engine};
use crate::error::{DbError, DbResult};

/// Copies the SQLite database to `target`, which must not exist, and makes it readable by its
/// owner only (it holds password hashes).
pub fn sqlite_copy(db: &Database, target: &Path) -> DbResult<()> {
    if db.engine() != Engine::Sqlite {
        return Err(DbError::Invalid(
            "backup copies the embedded SQLite database; for PostgreSQL use pg_dump".into(),
        ));
    }
    if target.exists() {
        return Err(DbError::Invalid(format!("{} exists already: choose a new file", target.display())));
    }
    let path = target.to_str().ok_or_else(|| DbError::Invalid("the backup path must be UTF-8".into()))?;
    // Created empty and private first (VACUUM INTO accepts an empty file), so the copy is never
    // readable by others, not even for a moment.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(target).map_err(|e| DbError::Invalid(format!("cannot create {}: {e}", target.display())))?;
    let quoted = path.replace('\'', "''");
    let copied =
        db.read(|conn| conn.batch_execute(&format!("VACUUM INTO '{quoted}'")).map_err(DbError::from));
    if copied.is_err() {
        let _ = std::fs::remove_file(target);
    }
    copied
}
