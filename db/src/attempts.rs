//! Attempts at a secret (a sign-in, the current password on a change), counted in the database.
//!
//! Why here and not in memory: behind a proxy each instance saw only its share of the guesses,
//! and an in-memory check-then-record let 100 parallel guesses through before the first failure
//! was recorded. An attempt is now counted *before* its password is checked, in one statement
//! that every instance (and every concurrent request) sees; a success gives its count back.
//! Nothing here is audited: a count records no change to the catalogue.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::schema::sign_in_attempts as attempts_table;

/// An attempt counted against a key, and the window it falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    /// Attempts in the window, this one included (failures and attempts still being checked).
    pub attempts: i32,
    pub window_started: NaiveDateTime,
}

/// Counts one attempt against each key at `at`, starting a new window for a key whose last one
/// began `window` or more ago. Returns the counts in the order of `keys`.
pub fn count(db: &Database, keys: &[&str], at: NaiveDateTime, window: Duration) -> DbResult<Vec<Counted>> {
    use attempts_table::dsl as t;
    let expired_before = at - window;
    db.transaction(|conn| {
        // Windows that have passed are swept, so spraying many keys leaves nothing behind.
        diesel::delete(t::sign_in_attempts.filter(t::window_started.le(expired_before))).execute(conn)?;
        keys.iter()
            .map(|key| {
                // The first attempt in a window inserts its row; two that race to insert it both
                // succeed, the second by counting on the row the first made (the insert is in a
                // savepoint, so its refusal does not abort the transaction on PostgreSQL).
                if let Some(counted) = add_attempt(conn, key)? {
                    return Ok(counted);
                }
                let inserted = conn.transaction(|conn| {
                    diesel::insert_into(t::sign_in_attempts)
                        .values((t::throttle_key.eq(*key), t::window_started.eq(at), t::attempts.eq(1)))
                        .execute(conn)
                });
                match inserted {
                    Ok(_) => Ok(Counted { attempts: 1, window_started: at }),
                    Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                        add_attempt(conn, key)?.ok_or_else(|| {
                            DbError::Internal("an attempt's row vanished while it was counted".into())
                        })
                    }
                    Err(other) => Err(other.into()),
                }
            })
            .collect()
    })
}

/// Adds an attempt to `key`'s row in one statement, which concurrent attempts queue on (the row
/// lock on PostgreSQL, the one writer on SQLite); `None` when there is no row yet.
fn add_attempt(conn: &mut DbConnection, key: &str) -> DbResult<Option<Counted>> {
    use attempts_table::dsl as t;
    let counted = diesel::update(t::sign_in_attempts.filter(t::throttle_key.eq(key)))
        .set(t::attempts.eq(t::attempts + 1))
        .returning((t::attempts, t::window_started))
        .get_result::<(i32, NaiveDateTime)>(conn)
        .optional()?;
    Ok(counted.map(|(attempts, window_started)| Counted { attempts, window_started }))
}

/// Gives back the attempt counted against `key` (it succeeded): successes never throttle.
pub fn give_back(db: &Database, key: &str) -> DbResult<()> {
    use attempts_table::dsl as t;
    db.transaction(|conn| {
        diesel::update(t::sign_in_attempts.filter(t::throttle_key.eq(key)).filter(t::attempts.gt(0)))
            .set(t::attempts.eq(t::attempts - 1))
            .execute(conn)?;
        Ok(())
    })
}

/// Forgets every attempt counted against `key` (the account's owner proved who they are).
pub fn forget(db: &Database, key: &str) -> DbResult<()> {
    use attempts_table::dsl as t;
    db.transaction(|conn| {
        diesel::delete(t::sign_in_attempts.filter(t::throttle_key.eq(key))).execute(conn)?;
        Ok(())
    })
}
