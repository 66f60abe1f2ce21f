//! Resetting a forgotten password by email: the link is made by `db::password_resets` (whose
//! comment states the rules), sent here through the same SMTP mailer as notifications, and
//! spent here once the new password passes the same rule as every other password
//! (`password::weakness`).
//!
//! The email and its link are `notify::password_reset`'s. Without both an SMTP server and the
//! service's public address configured, reset by email is off and the pages say to ask the
//! national team. The email is sent after the answer, in the background: the answer takes as
//! long, and says the same, whether or not the account exists. The token is in no log, audit
//! event or database row.

use chrono::NaiveDateTime;
use db::Actor;
use db::password_resets::{self, Recipient, Requested};

use crate::auth::password;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// The minutes a link works, for the pages and the email.
pub fn lifetime_minutes() -> i64 {
    password_resets::LIFETIME.num_minutes()
}

/// Someone asked for a link for `email`: an email goes out only when the account exists, is
/// enabled and was sent none in the last few minutes; the caller shows the same answer whatever
/// happened. `Ok` without doing anything when reset by email is off.
pub async fn request(state: &AppState, actor: Actor, email: String) -> ApiResult<()> {
    let Some(mail) = state.password_reset_mail.clone() else { return Ok(()) };
    let requested = state.run(move |db| password_resets::request_by_email(db, &actor, &email, now())).await?;
    if let Requested::Issued(issued) = requested {
        mail.send_in_background(issued);
    }
    Ok(())
}

/// What an admin's "Send a password reset email" came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminSent {
    Sent,
    /// A link went out less than a few minutes ago: nothing new was sent.
    AlreadySent,
    /// The account is disabled: enable it first.
    Disabled,
}

/// An admin sends user `id` a link (audited as the admin). 409 when reset by email is off.
pub async fn send_for_user(state: &AppState, actor: Actor, id: i64) -> ApiResult<AdminSent> {
    let Some(mail) = state.password_reset_mail.clone() else {
        return Err(ApiError::Conflict(NOT_AVAILABLE.into()));
    };
    let requested = state.run(move |db| password_resets::request_for_user(db, &actor, id, now())).await?;
    Ok(match requested {
        Requested::Issued(issued) => {
            mail.send_in_background(issued);
            AdminSent::Sent
        }
        Requested::AlreadySent => AdminSent::AlreadySent,
        Requested::Disabled => AdminSent::Disabled,
        Requested::NoAccount => return Err(ApiError::NotFound("user".into())),
    })
}

/// Why an admin cannot send a link.
pub const NOT_AVAILABLE: &str = "reset by email is not available: the service has no SMTP server or public \
                                 address configured (CATALOGUE_SMTP_URL, CATALOGUE_PUBLIC_URL)";

/// The account `token` works for now, if it works.
pub async fn recipient(state: &AppState, token: String) -> ApiResult<Option<Recipient>> {
    state.read(move |conn| password_resets::find(conn, &token, now())).await
}

/// What setting a new password through a link came to.
#[derive(Debug)]
pub enum Reset {
    Done,
    /// The link does not work (any more).
    LinkDoesNotWork,
    /// The password rule refuses the new password: why, as the API words it.
    Weak(String),
}

/// Sets the new password of the account `token` works for: the password rule first, then the
/// hash, then in one transaction the token spent and the password stored, which ends every
/// token and session of the account (`db::password_resets::reset_password`).
pub async fn reset(
    state: &AppState,
    request_id: Option<String>,
    token: String,
    new_password: String,
) -> ApiResult<Reset> {
    let Some(found) = recipient(state, token.clone()).await? else { return Ok(Reset::LinkDoesNotWork) };
    if let Some(weakness) = password::weakness(&new_password, &found.email) {
        return Ok(Reset::Weak(weakness));
    }
    let new_hash = state
        .run_password_work(move || password::hash(&new_password))
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    // The owner of the mailbox, proven by the link.
    let actor = Actor { user_id: Some(found.user_id), label: found.email, request_id, acting_icb: None };
    let done =
        state.run(move |db| password_resets::reset_password(db, &actor, &token, &new_hash, now())).await?;
    Ok(if done { Reset::Done } else { Reset::LinkDoesNotWork })
}
