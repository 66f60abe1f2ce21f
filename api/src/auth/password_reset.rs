//! Resetting a forgotten password by email: the link is made by `db::password_resets` (whose
//! comment states the rules), sent here through the same SMTP mailer as notifications, and
//! spent here once the new password passes the same rule as every other password
//! (`password::weakness`).
//!
//! The link starts with the service's public address, from configuration
//! (`--public-url`, `CATALOGUE_PUBLIC_URL`), never from the request's `Host` header, which
//! whoever asks for a link could set to their own site. Without both that and an SMTP server,
//! reset by email is off and the pages say to ask the national team.
//!
//! The email is sent after the answer, in the background: the answer takes as long, and says
//! the same, whether or not the account exists. A failure to send is logged with the user's id,
//! never with the link. The token is in no log, audit event or database row.

use std::sync::Arc;

use chrono::NaiveDateTime;
use db::Actor;
use db::password_resets::{self, Issued, Recipient, Requested};

use crate::auth::password;
use crate::error::{ApiError, ApiResult};
use crate::notify::email::{Email, MailConfig, MailError, Mailer};
use crate::state::AppState;

/// The path of the pages; a link is this, a slash and the token.
pub const PATH: &str = "/password-reset";

/// How reset emails go out: the mailer and the public address links start with.
pub struct ResetMail {
    mailer: Mailer,
    /// Such as `https://catalogue.example.nhs.uk`, without a trailing slash.
    public_url: String,
}

impl ResetMail {
    pub fn new(config: &MailConfig, public_url: &str) -> Result<ResetMail, MailError> {
        Ok(ResetMail {
            mailer: Mailer::new(config)?,
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The link for `token`.
    pub fn link(&self, token: &str) -> String {
        format!("{}{PATH}/{token}", self.public_url)
    }
}

/// Checks a public address for `--public-url`: `http` or `https`, a host, no query or fragment.
pub fn parse_public_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(
            "the public address is http:// or https:// and a host, such as https://catalogue.example.nhs.uk"
                .into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the public address has no query (?) or fragment (#)".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

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
        send_in_background(mail, issued);
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
            send_in_background(mail, issued);
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

fn send_in_background(mail: Arc<ResetMail>, issued: Issued) {
    let Issued { token, recipient, .. } = issued;
    let email = email(&recipient, &mail.link(&token));
    drop(token);
    actix_web::rt::spawn(async move {
        if let Err(error) = mail.mailer.send(&recipient.email, &email).await {
            // The error names the server's refusal, never the message (which holds the link).
            tracing::warn!(user_id = recipient.user_id, %error, "a password reset email could not be sent");
        }
    });
}

/// The email with the link.
pub fn email(recipient: &Recipient, link: &str) -> Email {
    use askama::Template;
    let minutes = lifetime_minutes();
    let subject = "NHS licence catalogue: reset your password".to_owned();
    let text = format!(
        "Hello {name},\n\nSomeone asked to reset the password of your account in the NHS licence catalogue \
         ({address}).\n\nTo choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n\
         The link works once. Resetting your password signs you out everywhere.\n\n\
         If you did not ask for this, you can ignore this email: your password has not changed.\n",
        name = recipient.display_name,
        address = recipient.email,
    );
    let html = ResetHtml {
        subject: &subject,
        name: &recipient.display_name,
        address: &recipient.email,
        link,
        minutes,
    }
    .render()
    // Rendering writes only strings, which cannot fail.
    .unwrap_or_default();
    Email { subject, text, html }
}

#[derive(askama::Template)]
#[template(path = "email_password_reset.html")]
struct ResetHtml<'a> {
    subject: &'a str,
    name: &'a str,
    address: &'a str,
    link: &'a str,
    minutes: i64,
}

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
