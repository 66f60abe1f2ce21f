//! Links that reset a forgotten password. Knows nothing of HTTP or email: it makes a link's token,
//! keeps only the token's SHA-256, finds the account a token was made for, and spends it.
//!
//! The rules, stated here once:
//! - a token is 32 bytes from the operating system's CSPRNG, written URL-safe (base64url, 43
//!   characters); only its SHA-256 is stored, so the table cannot be read back into links (a
//!   slow hash is not needed for a secret of 256 random bits);
//! - it works for [`LIFETIME`], once;
//! - an account has at most one: a new link replaces the old one, which stops working; and a
//!   second request within [`RESEND_AFTER`] of the last sends nothing new (so nobody can flood a
//!   mailbox), which also bounds the table at one row per user; expired rows are swept by every
//!   request;
//! - disabled accounts get none, and a link made before the account was disabled stops working;
//! - setting the password (here, or by any other way, `users::set_password`) ends every token
//!   of the account and every link.
//!
//! Every write is audited; the token is never in an audit event (nor anywhere but the email).

use base64::Engine as _;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

use crate::audit::{Actor, Audited, Change};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::schema::{password_resets, users};

/// How long a link works.
pub const LIFETIME: Duration = Duration::minutes(30);

/// How long after a link is sent a new request sends nothing.
pub const RESEND_AFTER: Duration = Duration::minutes(5);

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// Whom a link is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: i64,
    pub email: String,
    pub display_name: String,
}

/// A link just made: the token in clear (for the email only) and whom to send it to.
pub struct Issued {
    pub token: String,
    pub recipient: Recipient,
    pub expires_at: NaiveDateTime,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("token", &"(not shown)")
            .field("recipient", &self.recipient)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a request for a link came to. Only [`Requested::Issued`] sends an email; a page shows
/// every outcome the same way, so that it tells nobody whether an account exists.
#[derive(Debug)]
pub enum Requested {
    Issued(Issued),
    /// No account has the address.
    NoAccount,
    /// The account is disabled.
    Disabled,
    /// A link was sent less than [`RESEND_AFTER`] ago and still works.
    AlreadySent,
}

/// The SHA-256 of a token, in hex: what the table stores.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn new_token() -> DbResult<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| DbError::Internal(format!("no random bytes for a reset link: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A link for the account with `email` (any case, spaces around), made at `at`, as `actor` (the
/// person who asked, who need not be signed in).
pub fn request_by_email(db: &Database, actor: &Actor, email: &str, at: NaiveDateTime) -> DbResult<Requested> {
    let email = crate::users::normalise_email(email);
    db.write(actor, |conn| {
        sweep(conn, at)?;
        let found: Option<i64> =
            users::table.filter(users::email.eq(&email)).select(users::id).first(conn).optional()?;
        match found {
            Some(user_id) => issue_in(conn, user_id, at),
            None => Ok(Audited::unchanged(Requested::NoAccount)),
        }
    })
}

/// A link for user `user_id` (an admin sends one from the user's page).
pub fn request_for_user(
    db: &Database,
    actor: &Actor,
    user_id: i64,
    at: NaiveDateTime,
) -> DbResult<Requested> {
    db.write(actor, |conn| {
        sweep(conn, at)?;
        crate::users::get(conn, user_id)?;
        issue_in(conn, user_id, at)
    })
}

fn sweep(conn: &mut DbConnection, at: NaiveDateTime) -> DbResult<()> {
    diesel::delete(password_resets::table.filter(password_resets::expires_at.le(at))).execute(conn)?;
    Ok(())
}

fn issue_in(conn: &mut DbConnection, user_id: i64, at: NaiveDateTime) -> DbResult<Audited<Requested>> {
    let user = crate::users::get(conn, user_id)?;
    if user.disabled {
        return Ok(Audited::unchanged(Requested::Disabled));
    }
    let last: Option<NaiveDateTime> =
        password_resets::table.find(user_id).select(password_resets::requested_at).first(conn).optional()?;
    if last.is_some_and(|requested_at| requested_at > at - RESEND_AFTER) {
        return Ok(Audited::unchanged(Requested::AlreadySent));
    }
    let token = new_token()?;
    let expires_at = at + LIFETIME;
    // One row per account: the new link replaces any older one, which stops working.
    diesel::delete(password_resets::table.find(user_id)).execute(conn)?;
    diesel::insert_into(password_resets::table)
        .values((
            password_resets::user_id.eq(user_id),
            password_resets::token_hash.eq(token_hash(&token)),
            password_resets::requested_at.eq(at),
            password_resets::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    let change = Change::new("user.password_reset_link", "user", user_id)
        .organisation(user.organisation_code.as_deref())
        .after(&serde_json::json!({
            "expires_at": expires_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }));
    let recipient = Recipient { user_id, email: user.email, display_name: user.display_name };
    Ok(Audited::one(Requested::Issued(Issued { token, recipient, expires_at }), change))
}

/// The account a token works for at `at`: made for it, not yet spent nor replaced, not
/// expired, and the account not disabled. `None` says nothing of which it is not.
pub fn find(conn: &mut DbConnection, token: &str, at: NaiveDateTime) -> DbResult<Option<Recipient>> {
    let found: Option<(i64, String, String)> = password_resets::table
        .inner_join(users::table)
        .filter(password_resets::token_hash.eq(token_hash(token)))
        .filter(password_resets::expires_at.gt(at))
        .filter(users::disabled.eq(false))
        .select((users::id, users::email, users::display_name))
        .first(conn)
        .optional()?;
    Ok(found.map(|(user_id, email, display_name)| Recipient { user_id, email, display_name }))
}

/// Sets the password of the account `token` works for to `password_hash` (already hashed by the
/// caller, who checked it against the password rule), spending the token and ending every token
/// and session of the account, as `actor` (the account's owner, proven by the link). `false`,
/// and nothing changed, when the token no longer works at `at` (spent by another request
/// meanwhile, say) or is not `actor`'s.
pub fn reset_password(
    db: &Database,
    actor: &Actor,
    token: &str,
    password_hash: &str,
    at: NaiveDateTime,
) -> DbResult<bool> {
    let hash = token_hash(token);
    db.write(actor, |conn| {
        let Some(found) = find(conn, token, at)? else {
            return Ok(Audited::unchanged(false));
        };
        if actor.user_id != Some(found.user_id) {
            return Ok(Audited::unchanged(false));
        }
        // Spent first, in the same transaction: of two requests with one token only one deletes it.
        let spent = diesel::delete(password_resets::table.filter(password_resets::token_hash.eq(&hash)))
            .execute(conn)?;
        if spent == 0 {
            return Ok(Audited::unchanged(false));
        }
        crate::users::store_password(conn, found.user_id, password_hash)?;
        Ok(Audited::one(true, Change::new("user.password_reset", "user", found.user_id)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let (a, b) = (new_token().unwrap_or_default(), new_token().unwrap_or_default());
        assert_eq!(a.len(), 43, "{a}");
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a}");
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
