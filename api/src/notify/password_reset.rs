//! The password reset email: its words, its link, and sending it. The link starts with the
//! service's public address, from configuration (`--public-url`, `CATALOGUE_PUBLIC_URL`), never
//! from the request's `Host` header, which whoever asks for a link could set to their own site.
//! The rules of links are `db::password_resets`'; the pages' flow is `auth::password_reset`.

use std::sync::Arc;

use db::password_resets::{Issued, Recipient};

use crate::notify::email::{Email, MailConfig, MailError, Mailer};

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

    /// Sends the link of `issued` after the answer, in the background, so that the answer takes
    /// as long whether or not an email goes out. A failure is logged with the user's id, never
    /// with the link.
    pub fn send_in_background(self: &Arc<Self>, issued: Issued) {
        let mail = self.clone();
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

/// The email with the link.
pub fn email(recipient: &Recipient, link: &str) -> Email {
    use askama::Template;
    let minutes = db::password_resets::LIFETIME.num_minutes();
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
