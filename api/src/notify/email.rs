//! Email: what a notice or a day's digest says, and sending it by SMTP.
//!
//! Each email is multipart/alternative, plain text and HTML with the same words: the text part is
//! what screen readers, terminals and many NHS mail filters show. The HTML comes from askama
//! templates (`templates/email_*.html`), which escape every value, because a notice's summary
//! carries text users typed (an advisory's title, a product's name).
//!
//! SMTP is configured by a URL, as lettre reads it: `smtp://127.0.0.1:2525` (plain, for a local
//! relay), `smtp://host?tls=required` (STARTTLS), `smtps://user:password@host` (TLS from the
//! first byte). The URL can hold a password, so it is never shown whole.

use std::time::Duration;

use askama::Template;
use chrono::{DateTime, NaiveDate, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// The sender when `CATALOGUE_MAIL_FROM` is not set: fine for a local relay, which is all that
/// accepts it.
pub const DEFAULT_FROM: &str = "catalogue@localhost";

/// The longest one email may take to hand over, connecting included. SMTP servers can be slow
/// (greylisting, DNS checks) but a delivery worker must not wait on one for ever.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Subjects are cut to this many characters: mail clients show about this much, and the full
/// text is in the body.
const MAX_SUBJECT_SUMMARY: usize = 120;

const SUBJECT_PREFIX: &str = "NHS licence catalogue";

/// The line every email ends with.
pub const CHANGE_LINE: &str =
    "To change what you are sent, go to Notifications in the catalogue (/notifications).";

/// A problem configuring the mailer or sending one email. Never shows the SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the SMTP URL {url} cannot be used: {reason}")]
    SmtpUrl { url: String, reason: String },
    #[error("the sender address {address:?} is not a valid email address ({reason})")]
    From { address: String, reason: String },
    #[error("the recipient address {address:?} is not a valid email address ({reason})")]
    To { address: String, reason: String },
    #[error("could not build the email: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("the SMTP server did not take the email: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("the SMTP server did not take the email within {} seconds", .0.as_secs())]
    TimedOut(Duration),
}

/// Where email goes and who it is from.
#[derive(Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// An SMTP URL (see the module's comment); may hold a password.
    pub smtp_url: String,
    /// The From address, such as `catalogue@trust.nhs.uk` or `NHS licence catalogue
    /// <catalogue@trust.nhs.uk>`.
    pub from: String,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("smtp_url", &redacted(&self.smtp_url))
            .field("from", &self.from)
            .finish()
    }
}

impl MailConfig {
    /// From `CATALOGUE_SMTP_URL` and `CATALOGUE_MAIL_FROM` (default [`DEFAULT_FROM`]); `None`
    /// when no SMTP URL is set, which means the catalogue sends no email.
    pub fn from_env() -> Option<MailConfig> {
        let smtp_url = non_empty_env("CATALOGUE_SMTP_URL")?;
        let from = non_empty_env("CATALOGUE_MAIL_FROM").unwrap_or_else(|| DEFAULT_FROM.to_owned());
        Some(MailConfig { smtp_url, from })
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|value| value.trim().to_owned()).filter(|value| !value.is_empty())
}

/// The URL with its password replaced, or a note when it does not parse (then any part of it
/// could be the password).
fn redacted(smtp_url: &str) -> String {
    match reqwest::Url::parse(smtp_url) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("********"));
            }
            url.to_string()
        }
        Err(_) => "(not shown: it is not a URL)".to_owned(),
    }
}

/// Sends email through one SMTP server; cheap to share.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// Checks the URL and the sender address; connects only when sending.
    pub fn new(config: &MailConfig) -> Result<Mailer, MailError> {
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| MailError::From { address: config.from.clone(), reason: e.to_string() })?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|e| MailError::SmtpUrl { url: redacted(&config.smtp_url), reason: e.to_string() })?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        Ok(Mailer { transport, from })
    }

    /// Sends `email` to `to` (an address, or `Name <address>`) as multipart/alternative.
    pub async fn send(&self, to: &str, email: &Email) -> Result<(), MailError> {
        let recipient = to
            .parse::<Mailbox>()
            .map_err(|e| MailError::To { address: to.to_owned(), reason: e.to_string() })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(recipient)
            .subject(email.subject.as_str())
            .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))?;
        // lettre's timeout bounds each read and write; this bounds the whole conversation.
        tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message))
            .await
            .map_err(|_| MailError::TimedOut(SEND_TIMEOUT))??;
        Ok(())
    }
}

/// One email's subject and its two bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Something that happened that someone asked to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The event's type, such as `advisory.published`.
    pub kind: String,
    /// A plain-English sentence: "Advisory NHSCERT-2026-0042 was published: ...".
    pub summary: String,
    pub occurred_at: DateTime<Utc>,
    /// The ODS code of the organisation it concerns, if one.
    pub organisation: Option<String>,
}

/// What the templates show of a notice, its times already in words.
struct NoticeView<'a> {
    summary: &'a str,
    kind: &'a str,
    organisation: Option<&'a str>,
    /// "14:05 UTC, 7 December 2026"
    when: String,
    /// "14:05"
    time: String,
}

impl<'a> NoticeView<'a> {
    fn of(notice: &'a Notice) -> Self {
        NoticeView {
            summary: &notice.summary,
            kind: &notice.kind,
            organisation: notice.organisation.as_deref(),
            when: format!(
                "{} UTC, {}",
                notice.occurred_at.format("%H:%M"),
                long_date(notice.occurred_at.date_naive())
            ),
            time: notice.occurred_at.format("%H:%M").to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "email_notice.html")]
struct NoticeHtml<'a> {
    subject: &'a str,
    notice: NoticeView<'a>,
    change_line: &'a str,
}

#[derive(Template)]
#[template(path = "email_digest.html")]
struct DigestHtml<'a> {
    subject: &'a str,
    recipient_name: &'a str,
    introduction: &'a str,
    notices: Vec<NoticeView<'a>>,
    change_line: &'a str,
}

/// "7 December 2026"
fn long_date(day: NaiveDate) -> String {
    day.format("%-d %B %Y").to_string()
}

/// The email for one notice, sent as it happens.
pub fn single(notice: &Notice) -> Email {
    let subject = format!("{SUBJECT_PREFIX}: {}", subject_summary(&notice.summary));
    let view = NoticeView::of(notice);
    let mut text = format!("{}\n\nWhen: {}\n", view.summary, view.when);
    if let Some(organisation) = view.organisation {
        text.push_str(&format!("Organisation: {organisation}\n"));
    }
    text.push_str(&format!("Type: {}\n\n{CHANGE_LINE}\n", view.kind));
    // Rendering writes only strings, which cannot fail.
    let html = NoticeHtml { subject: &subject, notice: view, change_line: CHANGE_LINE }.to_string();
    Email { subject, text, html }
}

/// One email with a day's notices for one person, earliest first.
pub fn digest(recipient_name: &str, day: NaiveDate, notices: &[Notice]) -> Email {
    let date = long_date(day);
    let subject = format!("{SUBJECT_PREFIX}: {} for {date}", count_of_notices(notices.len()));
    let introduction = match notices.len() {
        0 => format!("Nothing you asked to hear about happened on {date}."),
        1 => format!("This happened on {date}. The time is UTC."),
        _ => format!("These happened on {date}. Times are UTC."),
    };
    let mut in_order: Vec<&Notice> = notices.iter().collect();
    in_order.sort_by_key(|notice| notice.occurred_at);
    let views: Vec<NoticeView> = in_order.into_iter().map(NoticeView::of).collect();

    let mut text = format!("Hello {recipient_name},\n\n{introduction}\n\n");
    for view in &views {
        text.push_str(&format!("- {} {}\n", view.time, view.summary));
        if let Some(organisation) = view.organisation {
            text.push_str(&format!("  Organisation: {organisation}\n"));
        }
        text.push_str(&format!("  Type: {}\n", view.kind));
    }
    if !views.is_empty() {
        text.push('\n');
    }
    text.push_str(CHANGE_LINE);
    text.push('\n');
    // Rendering writes only strings, which cannot fail.
    let html = DigestHtml {
        subject: &subject,
        recipient_name,
        introduction: &introduction,
        notices: views,
        change_line: CHANGE_LINE,
    }
    .to_string();
    Email { subject, text, html }
}

/// "1 notice", "3 notices"
fn count_of_notices(count: usize) -> String {
    if count == 1 { "1 notice".to_owned() } else { format!("{count} notices") }
}

/// The summary on one line (a header cannot hold a line break), cut to
/// [`MAX_SUBJECT_SUMMARY`] characters.
fn subject_summary(summary: &str) -> String {
    let one_line = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_SUBJECT_SUMMARY {
        return one_line;
    }
    let cut: String = one_line.chars().take(MAX_SUBJECT_SUMMARY - 3).collect();
    format!("{}...", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 7).unwrap_or_else(|| panic!("a real date"))
    }

    fn notice(summary: &str, hour: u32, organisation: Option<&str>) -> Notice {
        let occurred_at = day().and_hms_opt(hour, 5, 0).unwrap_or_else(|| panic!("hour {hour}")).and_utc();
        Notice {
            kind: "advisory.published".to_owned(),
            summary: summary.to_owned(),
            occurred_at,
            organisation: organisation.map(str::to_owned),
        }
    }

    #[test]
    fn a_single_notice_says_what_when_and_how_to_stop() {
        let email =
            single(&notice("Advisory NHSCERT-2026-0042 was published: Example flaw", 14, Some("RXX")));
        assert_eq!(
            email.subject,
            "NHS licence catalogue: Advisory NHSCERT-2026-0042 was published: Example flaw"
        );
        assert_eq!(
            email.text,
            "Advisory NHSCERT-2026-0042 was published: Example flaw\n\nWhen: 14:05 UTC, 7 December 2026\n\
             Organisation: RXX\nType: advisory.published\n\n\
             To change what you are sent, go to Notifications in the catalogue (/notifications).\n"
        );
        assert!(email.html.contains("When: 14:05 UTC, 7 December 2026"), "{}", email.html);
        assert!(email.html.contains("Organisation: RXX"), "{}", email.html);
        assert!(email.html.contains(CHANGE_LINE), "{}", email.html);
    }

    #[test]
    fn every_value_is_escaped_in_the_html() {
        let hostile = r#"<script>alert("x")</script> & 'quoted'"#;
        let mut one = notice(hostile, 9, Some("<b>RXX</b>"));
        one.kind = "<i>kind</i>".to_owned();
        for html in
            [single(&one).html, digest("<Ann & Bob>", one.occurred_at.date_naive(), &[one.clone()]).html]
        {
            for raw in ["<script>", "<b>", "<i>", "<Ann", "'quoted'"] {
                assert!(!html.contains(raw), "{raw} unescaped in {html}");
            }
            // askama writes every escape as a numeric character reference.
            assert!(
                html.contains("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;quoted&#39;"),
                "{html}"
            );
        }
        // The text part is plain text: nothing to escape.
        assert!(single(&one).text.contains(hostile));
    }

    #[test]
    fn a_digest_lists_the_days_notices_in_order() {
        let notices = [
            notice("Second thing.", 15, None),
            notice("First thing.", 9, Some("RXX")),
            notice("Third.", 16, None),
        ];
        let email = digest("Ann Example", day(), &notices);
        assert_eq!(email.subject, "NHS licence catalogue: 3 notices for 7 December 2026");
        assert_eq!(
            email.text,
            "Hello Ann Example,\n\nThese happened on 7 December 2026. Times are UTC.\n\n\
             - 09:05 First thing.\n  Organisation: RXX\n  Type: advisory.published\n\
             - 15:05 Second thing.\n  Type: advisory.published\n\
             - 16:05 Third.\n  Type: advisory.published\n\n\
             To change what you are sent, go to Notifications in the catalogue (/notifications).\n"
        );
        let (first, second) = (email.html.find("First thing."), email.html.find("Second thing."));
        assert!(first.is_some() && first < second, "{}", email.html);
        assert_eq!(
            digest("Ann", day(), &notices[..1]).subject,
            "NHS licence catalogue: 1 notice for 7 December 2026"
        );
        assert!(
            digest("Ann", day(), &[])
                .text
                .contains("Nothing you asked to hear about happened on 7 December 2026.")
        );
    }

    #[test]
    fn subjects_are_one_short_line() {
        let email = single(&notice(&format!("Line one\r\nline two {}", "x".repeat(300)), 9, None));
        assert!(!email.subject.contains('\n') && !email.subject.contains('\r'), "{}", email.subject);
        assert!(email.subject.starts_with("NHS licence catalogue: Line one line two x"), "{}", email.subject);
        assert!(email.subject.ends_with("..."));
        assert_eq!(email.subject.chars().count(), "NHS licence catalogue: ".len() + MAX_SUBJECT_SUMMARY);
    }

    #[test]
    fn configuration_errors_never_show_the_password() {
        let config =
            |smtp_url: &str| MailConfig { smtp_url: smtp_url.to_owned(), from: DEFAULT_FROM.to_owned() };
        for url in
            ["gopher://user:s3cret-pw@mail.example.org", "smtp://user:s3cret-pw@mail.example.org?tls=bogus"]
        {
            let Err(error) = Mailer::new(&config(url)) else { panic!("{url} accepted") };
            let error = error.to_string();
            assert!(!error.contains("s3cret-pw"), "{error}");
            assert!(error.contains("********"), "{error}");
        }
        let Err(error) = Mailer::new(&config("not a url s3cret-pw")) else { panic!("a non-URL accepted") };
        assert!(!error.to_string().contains("s3cret-pw"), "{error}");
        assert!(!format!("{:?}", config("smtps://user:s3cret-pw@mail.example.org")).contains("s3cret-pw"));
        let bad_from =
            MailConfig { smtp_url: "smtp://127.0.0.1:2525".to_owned(), from: "not an address".to_owned() };
        assert!(matches!(Mailer::new(&bad_from), Err(MailError::From { .. })));
    }
}
