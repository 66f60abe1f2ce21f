//! Throttling of guesses at a password: sign-ins per email and per client address, and the
//! current password on a change per account. After too many attempts in a window, further
//! attempts get 429 with `Retry-After` until the window ends.
//!
//! An attempt is counted in the database *before* its password is checked (`db::attempts`), and
//! a success gives its count back. Counted after the check, 100 parallel guesses all passed the
//! check before the first failure was recorded (a security test got 99 x 401 and 1 x 200); kept in
//! memory, each instance behind a proxy saw only its share.

use chrono::{NaiveDateTime, Utc};
use db::{Database, DbResult};

pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);
pub const MAX_FAILURES_PER_EMAIL: i32 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i32 = 20;
/// Guesses at one's own current password when changing it.
pub const MAX_FAILURES_PER_ACCOUNT: i32 = 5;

/// What an attempt was counted against, to give back when it succeeds.
#[must_use = "an attempt that succeeds must be given back with `succeeded`"]
pub struct Attempt {
    /// Forgotten on success: the owner proved who they are.
    forget: String,
    /// Given back one on success: other people's attempts from the same address still count.
    give_back: Option<String>,
}

impl Attempt {
    /// The password was right: its count is given back.
    pub fn succeeded(self, db: &Database) -> DbResult<()> {
        db::attempts::forget(db, &self.forget)?;
        if let Some(key) = &self.give_back {
            db::attempts::give_back(db, key)?;
        }
        Ok(())
    }
}

/// Counts a sign-in attempt for `email` from `address`, or the seconds to wait when either has
/// had too many.
pub fn sign_in_attempt(db: &Database, email: &str, address: &str) -> DbResult<Result<Attempt, u64>> {
    let (email_key, address_key) = (email_key(email), format!("address:{address}"));
    let limits =
        [(email_key.as_str(), MAX_FAILURES_PER_EMAIL), (address_key.as_str(), MAX_FAILURES_PER_ADDRESS)];
    Ok(count(db, &limits)?
        .map(|()| Attempt { forget: email_key.clone(), give_back: Some(address_key.clone()) }))
}

/// Counts a guess at account `user_id`'s current password, or the seconds to wait.
pub fn password_change_attempt(db: &Database, user_id: i64) -> DbResult<Result<Attempt, u64>> {
    let key = format!("account:{user_id}");
    Ok(count(db, &[(key.as_str(), MAX_FAILURES_PER_ACCOUNT)])?
        .map(|()| Attempt { forget: key.clone(), give_back: None }))
}

fn count(db: &Database, limits: &[(&str, i32)]) -> DbResult<Result<(), u64>> {
    let now = Utc::now().naive_utc();
    let window = chrono::Duration::from_std(WINDOW).unwrap_or(chrono::Duration::MAX);
    let keys: Vec<&str> = limits.iter().map(|(key, _)| *key).collect();
    let counted = db::attempts::count(db, &keys, now, window)?;
    let wait = limits
        .iter()
        .zip(&counted)
        .filter(|((_, limit), counted)| counted.attempts > *limit)
        .map(|(_, counted)| seconds_left(counted.window_started, window, now))
        .max();
    Ok(wait.map_or(Ok(()), Err))
}

fn seconds_left(window_started: NaiveDateTime, window: chrono::Duration, now: NaiveDateTime) -> u64 {
    u64::try_from((window_started + window - now).num_seconds()).unwrap_or(0).max(1)
}

fn email_key(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_what_is_left_of_the_window_and_never_zero() {
        let start =
            chrono::DateTime::from_timestamp(1_700_000_000, 0).map(|t| t.naive_utc()).unwrap_or_default();
        let window = chrono::Duration::minutes(15);
        assert_eq!(seconds_left(start, window, start + chrono::Duration::minutes(5)), 600);
        assert_eq!(seconds_left(start, window, start + window), 1);
        assert_eq!(seconds_left(start, window, start + chrono::Duration::hours(2)), 1);
    }

    #[test]
    fn emails_are_keyed_without_case_or_spaces() {
        assert_eq!(email_key(" A@NHS.net "), email_key("a@nhs.net"));
    }
}
