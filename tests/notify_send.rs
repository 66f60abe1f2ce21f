//! Sending notifications, against real servers: webhooks to an HTTP receiver in this process that
//! checks signatures with its own code, email to aiosmtpd. No database: these are the sending
//! modules alone, below the outbox that will call them.

use std::time::Duration;

use api::notify::email::{self, Email, MailConfig, Mailer, Notice};
use api::notify::webhook::{self, Policy, Sender, UrlRefused};
use catalogue_tests::receiver::Receiver;
use catalogue_tests::smtp::SmtpServer;
use chrono::TimeZone;

const WAIT: Duration = Duration::from_secs(10);

/// A policy for a receiver on this machine: http allowed, loopback allowed by name.
fn local_policy(timeout: Duration) -> Policy {
    Policy { allow_http: true, allowed_hosts: vec!["127.0.0.1".to_owned()], timeout }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_webhook_arrives_signed_with_the_standard_headers() {
    let secret = webhook::new_secret();
    let receiver = Receiver::start(&secret);
    let sender = Sender::new(local_policy(Duration::from_secs(5))).unwrap();
    let body = r#"{"type":"advisory.published","data":{"reference":"NHSCERT-2026-0042"}}"#;
    let timestamp = now();

    let attempt = sender.send(&receiver.url(), &secret, "msg_0001", timestamp, body).await;

    assert!(attempt.succeeded(), "{attempt:?}");
    assert_eq!(attempt.status, Some(204));
    assert_eq!(attempt.error, None);
    let received = receiver.wait_for(1, WAIT).await;
    let request = &received[0];
    assert!(request.verified, "the receiver could not verify the signature: {request:?}");
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/catalogue");
    assert_eq!(request.header("webhook-id"), Some("msg_0001"));
    assert_eq!(request.header("webhook-timestamp"), Some(timestamp.to_string().as_str()));
    assert!(request.header("webhook-signature").is_some_and(|s| s.starts_with("v1,")), "{request:?}");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(request.header("user-agent").is_some_and(|agent| agent.contains("catalogue")), "{request:?}");
    assert_eq!(request.body, body);
}

#[tokio::test]
async fn a_webhook_signed_with_another_secret_does_not_verify() {
    let receiver = Receiver::start(&webhook::new_secret());
    let sender = Sender::new(local_policy(Duration::from_secs(5))).unwrap();

    let attempt = sender.send(&receiver.url(), &webhook::new_secret(), "msg_0002", now(), "{}").await;

    assert!(attempt.succeeded(), "{attempt:?}");
    assert!(!receiver.wait_for(1, WAIT).await[0].verified, "the receiver accepts any signature");
}

#[tokio::test]
async fn a_receiver_that_answers_500_is_reported_as_not_succeeded() {
    let secret = webhook::new_secret();
    let receiver = Receiver::start(&secret);
    receiver.fail_next(1);
    let sender = Sender::new(local_policy(Duration::from_secs(5))).unwrap();

    let failed = sender.send(&receiver.url(), &secret, "msg_0003", now(), "{}").await;
    let retried = sender.send(&receiver.url(), &secret, "msg_0003", now(), "{}").await;

    assert_eq!(failed.status, Some(500), "{failed:?}");
    assert!(!failed.succeeded());
    assert!(retried.succeeded(), "{retried:?}");
    assert!(receiver.wait_for(2, WAIT).await.iter().all(|request| request.verified));
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_within_the_policy() {
    let secret = webhook::new_secret();
    let receiver = Receiver::start(&secret);
    receiver.hang();
    let timeout = Duration::from_secs(1);
    let sender = Sender::new(local_policy(timeout)).unwrap();

    let attempt = sender.send(&receiver.url(), &secret, "msg_0004", now(), "{}").await;

    assert_eq!(attempt.status, None, "{attempt:?}");
    let error = attempt.error.clone().unwrap_or_default();
    assert!(error.contains("timed out"), "{attempt:?}");
    assert!(!error.contains(&secret) && !error.contains(&secret["whsec_".len()..]), "{error}");
    assert!(attempt.duration >= timeout && attempt.duration < timeout * 3, "{attempt:?}");
    assert_eq!(receiver.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn production_refuses_urls_that_are_not_public_https() {
    let production = Policy::default();
    let refused = [
        "http://receiver.example.org/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://user:pass@receiver.example.org/hook",
        "ftp://receiver.example.org/hook",
    ];
    for url in refused {
        let refusal = webhook::check_url(url, &production).err();
        let reason = refusal.map(|refusal| refusal.to_string()).unwrap_or_default();
        assert!(!reason.is_empty(), "{url} was accepted");
        assert!(!reason.contains("pass@"), "{url}: {reason}");
    }
    assert!(webhook::check_url("https://receiver.example.org/hook?team=estates", &production).is_ok());
}

#[tokio::test]
async fn the_sender_checks_the_url_itself() {
    let secret = webhook::new_secret();
    let receiver = Receiver::start(&secret);
    let sender = Sender::new(Policy { timeout: Duration::from_secs(2), ..Policy::default() }).unwrap();

    let plain_http = sender.send(&receiver.url(), &secret, "msg_0005", now(), "{}").await;
    let loopback = format!("https://127.0.0.1:{}/hooks/catalogue", receiver.port());
    let loopback = sender.send(&loopback, &secret, "msg_0005", now(), "{}").await;

    assert_eq!(plain_http.status, None);
    assert!(plain_http.error.as_deref().is_some_and(|e| e.contains("https://")), "{plain_http:?}");
    assert!(loopback.error.as_deref().is_some_and(|e| e.contains("loopback")), "{loopback:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.received().is_empty(), "a refused URL was requested");
}

#[tokio::test]
async fn localhost_is_refused_once_resolved_unless_allowed() {
    let url = webhook::check_url("https://localhost/hook", &Policy::default()).unwrap();

    let refused = webhook::check_resolves(&url, &Policy::default()).await;
    let allowed = Policy { allowed_hosts: vec!["LOCALHOST".to_owned()], ..Policy::default() };

    assert!(
        matches!(&refused, Err(UrlRefused::ResolvesToNonPublic { host, kind, .. })
            if host == "localhost" && kind.contains("loopback")),
        "{refused:?}"
    );
    assert_eq!(webhook::check_resolves(&url, &allowed).await, Ok(()));
    let nowhere = reqwest::Url::parse("https://nowhere.invalid/hook").unwrap();
    assert!(matches!(
        webhook::check_resolves(&nowhere, &Policy::default()).await,
        Err(UrlRefused::DoesNotResolve { .. })
    ));
}

/// A name that passes the URL check and resolves to loopback when the request is made (as a
/// rebinding DNS server would answer) is refused at connect time; the same name, allowed, is sent.
#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_when_connecting() {
    let secret = webhook::new_secret();
    let receiver = Receiver::start(&secret);
    let by_name = format!("http://localhost:{}/hooks/catalogue", receiver.port());
    let loopback_ip_allowed = Sender::new(local_policy(Duration::from_secs(5))).unwrap();
    let name_allowed = Sender::new(Policy {
        allow_http: true,
        allowed_hosts: vec!["localhost".to_owned()],
        timeout: Duration::from_secs(5),
    })
    .unwrap();

    let refused = loopback_ip_allowed.send(&by_name, &secret, "msg_0006", now(), "{}").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let nothing_arrived = receiver.received().is_empty();
    let sent = name_allowed.send(&by_name, &secret, "msg_0006", now(), "{}").await;

    assert_eq!(refused.status, None, "{refused:?}");
    assert!(refused.error.as_deref().is_some_and(|e| e.contains("resolves to")), "{refused:?}");
    assert!(nothing_arrived, "the refused name was connected to");
    assert!(sent.succeeded(), "{sent:?}");
    assert!(receiver.wait_for(1, WAIT).await[0].verified);
}

fn notice(summary: &str) -> Notice {
    Notice {
        kind: "advisory.published".to_owned(),
        summary: summary.to_owned(),
        occurred_at: chrono::Utc.with_ymd_and_hms(2026, 12, 7, 14, 5, 0).unwrap(),
        organisation: Some("RXX".to_owned()),
    }
}

#[tokio::test]
async fn a_single_email_and_a_digest_arrive_as_plain_text_and_html() {
    let Some(server) = SmtpServer::start() else { return };
    let config =
        MailConfig { smtp_url: server.url(), from: "NHS licence catalogue <catalogue@localhost>".to_owned() };
    let mailer = Mailer::new(&config).unwrap();
    let special = notice("Advisory NHSCERT-2026-0042 was published: R&D <b>tools</b>");
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let single = email::single(&special);
    let digest =
        email::digest("Ann Example", day, &[special.clone(), notice("Agreement SA-1 ends in 30 days.")]);

    mailer.send("ann@trust.example.nhs.uk", &single).await.unwrap();
    mailer.send("Bob Example <bob@trust.example.nhs.uk>", &digest).await.unwrap();

    let messages: Vec<Parsed> = server.wait_for(2, WAIT).iter().map(|raw| Parsed::new(raw)).collect();
    let arrived_single = messages.iter().find(|m| m.header("subject") == Some(single.subject.as_str()));
    let arrived_digest = messages.iter().find(|m| m.header("subject") == Some(digest.subject.as_str()));
    let (Some(arrived_single), Some(arrived_digest)) = (arrived_single, arrived_digest) else {
        panic!("subjects {:?} and {:?} not among {messages:#?}", single.subject, digest.subject);
    };
    assert_eq!(digest.subject, "NHS licence catalogue: 2 notices for 7 December 2026");
    assert_eq!(arrived_single.header("to"), Some("ann@trust.example.nhs.uk"));
    assert!(arrived_digest.header("to").is_some_and(|to| to.contains("<bob@trust.example.nhs.uk>")));
    for message in [arrived_single, arrived_digest] {
        let from = message.header("from").unwrap_or_default();
        assert!(
            from.contains("NHS licence catalogue") && from.ends_with("<catalogue@localhost>"),
            "{message:#?}"
        );
        assert!(message.header("content-type").is_some_and(|t| t.starts_with("multipart/alternative")));
    }
    for (arrived, sent) in [(arrived_single, &single), (arrived_digest, &digest)] {
        assert_eq!(arrived.part("text/plain").trim_end(), sent.text.trim_end());
        let html = arrived.part("text/html");
        assert!(html.contains("R&#38;D &#60;b&#62;tools&#60;/b&#62;"), "{html}");
        assert!(!html.contains("<b>tools"), "{html}");
        assert!(arrived.part("text/plain").contains("R&D <b>tools</b>"));
        assert!(html.contains(email::CHANGE_LINE) && sent.text.contains(email::CHANGE_LINE));
    }
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_an_error_not_a_wait() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = MailConfig {
        smtp_url: format!("smtp://127.0.0.1:{closed_port}"),
        from: email::DEFAULT_FROM.to_owned(),
    };
    let email = Email { subject: "Test".to_owned(), text: "Test".to_owned(), html: "<p>Test</p>".to_owned() };

    let sent = Mailer::new(&config).unwrap().send("ann@trust.example.nhs.uk", &email).await;

    assert!(matches!(sent, Err(email::MailError::Smtp(_))), "{sent:?}");
}

/// Just enough of RFC 5322 and MIME to read back what the mailer sent: unfolded headers and the
/// decoded parts of one multipart body (also read by `web_password_reset`).
#[derive(Debug)]
pub(crate) struct Parsed {
    headers: Vec<(String, String)>,
    body: String,
}

impl Parsed {
    pub(crate) fn new(raw: &str) -> Parsed {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        Parsed { headers: unfolded_headers(head), body: body.to_owned() }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The decoded body of the part whose type is `content_type`.
    pub(crate) fn part(&self, content_type: &str) -> String {
        let boundary = self
            .header("content-type")
            .and_then(|t| t.split("boundary=").nth(1))
            .map(|b| b.trim_matches('"').to_owned())
            .unwrap_or_else(|| panic!("no boundary: {self:#?}"));
        let delimiter = format!("--{boundary}");
        self.body
            .split(delimiter.as_str())
            .map(Parsed::new)
            .find(|part| part.header("content-type").is_some_and(|t| t.starts_with(content_type)))
            .map(|part| decoded(part.header("content-transfer-encoding").unwrap_or("7bit"), &part.body))
            .unwrap_or_else(|| panic!("no {content_type} part: {self:#?}"))
    }
}

fn unfolded_headers(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        match (line.starts_with([' ', '\t']), headers.last_mut()) {
            (true, Some((_, value))) => {
                value.push(' ');
                value.push_str(line.trim());
            }
            _ => {
                if let Some((name, value)) = line.split_once(':') {
                    headers.push((name.trim().to_owned(), value.trim().to_owned()));
                }
            }
        }
    }
    headers
}

fn decoded(encoding: &str, body: &str) -> String {
    use base64::Engine;
    match encoding.to_ascii_lowercase().as_str() {
        "base64" => {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(joined).unwrap()).unwrap()
        }
        "quoted-printable" => quoted_printable(body),
        _ => body.to_owned(),
    }
}

fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let mut bytes = Vec::new();
    let mut rest = joined.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'=' && tail.len() >= 2 {
            let hex = std::str::from_utf8(&tail[..2]).unwrap();
            bytes.push(u8::from_str_radix(hex, 16).unwrap());
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).unwrap()
}
