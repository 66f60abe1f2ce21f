//! Sending one webhook: signed as Standard Webhooks specifies (https://www.standardwebhooks.com/),
//! so a receiver can check it with any of that specification's libraries, and sent only to
//! public addresses.
//!
//! A webhook URL is typed by a catalogue user, and the catalogue then makes requests to it from
//! inside the NHS network: without care that is a way to reach internal services (server-side
//! request forgery). Three checks, each for a different trick:
//! - [`check_url`] when the URL is saved: https only, no credentials, no private IP literal;
//! - [`check_resolves`] when the URL is saved: its name must not resolve to a private address;
//! - at every send, the client's own resolver drops private addresses, because a name can resolve
//!   to a public address when it is checked and to 127.0.0.1 a second later (DNS rebinding).
//!   IP literals never reach a resolver, so [`Sender::send`] applies [`check_url`] again.
//!
//! Hosts an administrator names in [`Policy::allowed_hosts`] skip the address checks: a receiver
//! on the trust's own network is legitimate when someone decided it is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::CONTENT_TYPE;
use sha2::Sha256;

/// What a Standard Webhooks secret starts with; base64 of the key follows.
const SECRET_PREFIX: &str = "whsec_";

/// 32 bytes: inside the 24 to 64 the specification recommends, and a full SHA-256 block's worth.
const NEW_KEY_BYTES: usize = 32;

/// Longer URLs are refused: some receivers' proxies refuse them anyway, and a URL this long is
/// more likely a mistake or an attack than a real endpoint.
pub const MAX_URL_LENGTH: usize = 2048;

/// The most of a response body read before the connection is let go. Reading a little lets a
/// short answer complete and the connection be reused; the body itself is never kept, so a
/// receiver cannot make the catalogue store or download much.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// How long a send may take, connection included, unless a policy says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const USER_AGENT: &str = concat!("nhs-licence-catalogue-webhooks/", env!("CARGO_PKG_VERSION"));

/// A problem with a secret or with building the HTTP client. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("a webhook secret must start with \"whsec_\"")]
    SecretPrefix,
    #[error("the part of a webhook secret after \"whsec_\" must be base64")]
    SecretNotBase64,
    #[error("a webhook secret's key must not be empty")]
    EmptyKey,
    #[error("could not build the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Why a webhook URL is refused, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("the address is {length} characters long; at most {MAX_URL_LENGTH} are accepted")]
    TooLong { length: usize },
    #[error("the address is not a valid URL ({reason})")]
    NotAUrl { reason: String },
    #[error("the address must start with https:// (plain http:// is not accepted)")]
    NotHttps,
    #[error("the address must start with https://, not {scheme}:")]
    Scheme { scheme: String },
    #[error("the address has no host name")]
    NoHost,
    #[error(
        "the address contains a user name or password; the catalogue signs each webhook instead, \
         so leave them out"
    )]
    Credentials,
    #[error("{host} is {kind}; webhooks go only to public addresses unless an administrator allows the host")]
    NotPublic { host: String, kind: &'static str },
    #[error(
        "{host} resolves to {address}, {kind}; webhooks go only to public addresses unless an \
         administrator allows the host"
    )]
    ResolvesToNonPublic { host: String, address: IpAddr, kind: &'static str },
    #[error("{host} does not resolve ({reason})")]
    DoesNotResolve { host: String, reason: String },
}

/// Where webhooks may go and how long a send may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Whether http:// URLs are accepted; false in production, where only https is.
    pub allow_http: bool,
    /// Host names or IP literals an administrator allowed even though they are loopback or
    /// private. Compared without case, and IP literals as addresses (`::1` matches `[::1]`).
    pub allowed_hosts: Vec<String>,
    /// The longest a send may take, connecting included.
    pub timeout: Duration,
}

impl Default for Policy {
    /// Production's: https only, no host exempt, [`DEFAULT_TIMEOUT`].
    fn default() -> Self {
        Policy { allow_http: false, allowed_hosts: Vec::new(), timeout: DEFAULT_TIMEOUT }
    }
}

impl Policy {
    /// Whether an administrator allowed `host` (a URL's host, IPv6 literals in brackets or not).
    pub fn allows(&self, host: &str) -> bool {
        allowed(&self.allowed_hosts, host)
    }
}

fn allowed(allowed_hosts: &[String], host: &str) -> bool {
    allowed_hosts.iter().any(|allowed| same_host(allowed, host))
}

fn same_host(a: &str, b: &str) -> bool {
    let (a, b) = (bare_host(a), bare_host(b));
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// A host without IPv6 brackets or the root's trailing dot, which name the same host.
fn bare_host(host: &str) -> &str {
    host.trim().trim_start_matches('[').trim_end_matches(']').trim_end_matches('.')
}

/// A new secret for a subscription: `whsec_` and base64 of 32 random bytes. `rand`'s thread
/// generator is a CSPRNG seeded from the operating system.
pub fn new_secret() -> String {
    let key: [u8; NEW_KEY_BYTES] = rand::random();
    format!("{SECRET_PREFIX}{}", BASE64.encode(key))
}

/// The `webhook-signature` header's value for one message: `v1,` and base64 of
/// HMAC-SHA256(key, "{id}.{timestamp}.{body}").
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String, WebhookError> {
    let key = secret_key(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| WebhookError::EmptyKey)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

fn secret_key(secret: &str) -> Result<Vec<u8>, WebhookError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(WebhookError::SecretPrefix)?;
    let key = BASE64.decode(encoded).map_err(|_| WebhookError::SecretNotBase64)?;
    if key.is_empty() { Err(WebhookError::EmptyKey) } else { Ok(key) }
}

/// The checks that need no network: the URL parses, is https (or http when the policy allows
/// it), has a host and no credentials, is not too long, and an IP-literal host is public or
/// allowed. A host name is checked by [`check_resolves`].
pub fn check_url(url: &str, policy: &Policy) -> Result<Url, UrlRefused> {
    if url.len() > MAX_URL_LENGTH {
        return Err(UrlRefused::TooLong { length: url.len() });
    }
    let parsed = Url::parse(url).map_err(|e| UrlRefused::NotAUrl { reason: e.to_string() })?;
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => return Err(UrlRefused::NotHttps),
        scheme => return Err(UrlRefused::Scheme { scheme: scheme.to_owned() }),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlRefused::Credentials);
    }
    let host = parsed.host_str().filter(|host| !host.is_empty()).ok_or(UrlRefused::NoHost)?;
    // The URL parser has already turned forms such as http://2130706433/ into 127.0.0.1.
    if let Ok(ip) = bare_host(host).parse::<IpAddr>()
        && let Some(kind) = non_public_kind(ip)
        && !policy.allows(host)
    {
        return Err(UrlRefused::NotPublic { host: host.to_owned(), kind });
    }
    Ok(parsed)
}

/// Resolves the URL's host and refuses it when it does not resolve or when any of its addresses
/// is not public (unless the host is allowed). For when a URL is saved: a send checks the
/// addresses it connects to itself.
pub async fn check_resolves(url: &Url, policy: &Policy) -> Result<(), UrlRefused> {
    let host = url.host_str().filter(|host| !host.is_empty()).ok_or(UrlRefused::NoHost)?;
    if policy.allows(host) {
        return Ok(());
    }
    let addresses = tokio::time::timeout(policy.timeout, resolve(host)).await.map_err(|_| {
        UrlRefused::DoesNotResolve { host: host.to_owned(), reason: "timed out".to_owned() }
    })??;
    match addresses.iter().find_map(|address| non_public_kind(address.ip()).map(|kind| (address.ip(), kind)))
    {
        Some((address, kind)) => {
            Err(UrlRefused::ResolvesToNonPublic { host: host.to_owned(), address, kind })
        }
        None => Ok(()),
    }
}

/// The addresses of `host` (a name or an IP literal, with or without brackets).
async fn resolve(host: &str) -> Result<Vec<SocketAddr>, UrlRefused> {
    let bare = bare_host(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, 0)]);
    }
    let does_not_resolve = |reason: String| UrlRefused::DoesNotResolve { host: host.to_owned(), reason };
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((bare, 0)).await.map_err(|e| does_not_resolve(e.to_string()))?.collect();
    if addresses.is_empty() {
        return Err(does_not_resolve("no addresses".to_owned()));
    }
    Ok(addresses)
}

/// Addresses that are not public, with what they are. The IPv4 list is IANA's special-purpose
/// registry's ranges that are not globally reachable; IPv6 ranges that embed an IPv4 address are
/// judged by that address.
const V4_NOT_PUBLIC: [(Ipv4Net, &str); 15] = [
    (v4(0, 0, 0, 0, 8), "an unspecified (\"this network\") address"),
    (v4(10, 0, 0, 0, 8), "a private-network address"),
    (v4(100, 64, 0, 0, 10), "a shared (carrier-grade NAT) address"),
    (v4(127, 0, 0, 0, 8), "a loopback address"),
    (v4(169, 254, 0, 0, 16), "a link-local address (where cloud metadata services answer)"),
    (v4(172, 16, 0, 0, 12), "a private-network address"),
    (v4(192, 0, 0, 0, 24), "an IETF protocol address"),
    (v4(192, 0, 2, 0, 24), "a documentation address"),
    (v4(192, 88, 99, 0, 24), "a 6to4 relay address"),
    (v4(192, 168, 0, 0, 16), "a private-network address"),
    (v4(198, 18, 0, 0, 15), "a benchmarking address"),
    (v4(198, 51, 100, 0, 24), "a documentation address"),
    (v4(203, 0, 113, 0, 24), "a documentation address"),
    (v4(224, 0, 0, 0, 4), "a multicast address"),
    // Includes the broadcast address 255.255.255.255.
    (v4(240, 0, 0, 0, 4), "a reserved or broadcast address"),
];

const V6_NOT_PUBLIC: [(Ipv6Net, &str); 8] = [
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "an unspecified address"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "a loopback address"),
    // ::a.b.c.d, deprecated IPv4-compatible addresses; the mapped ones are judged by their IPv4.
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 96), "an IPv4-compatible address"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "a discard-only address"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "a documentation address"),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "a unique-local (private) address"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "a link-local address"),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "a multicast address"),
];

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// What `ip` is when it is not a public address ("a loopback address"); `None` when it is public.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => V4_NOT_PUBLIC.iter().find(|(net, _)| net.contains(&ip)).map(|(_, kind)| *kind),
        IpAddr::V6(ip) => match embedded_ipv4(ip) {
            Some(ip) => non_public_kind(IpAddr::V4(ip)),
            None => V6_NOT_PUBLIC.iter().find(|(net, _)| net.contains(&ip)).map(|(_, kind)| *kind),
        },
    }
}

/// Whether `ip` is a public address (see [`non_public_kind`]).
pub fn is_public(ip: IpAddr) -> bool {
    non_public_kind(ip).is_none()
}

/// The IPv4 address an IPv6 address reaches when it is IPv4-mapped (::ffff:a.b.c.d), NAT64's
/// well-known prefix (64:ff9b::a.b.c.d) or 6to4 (2002:aabb:ccdd::): a connection to it ends at
/// that IPv4 address, so that address is what must be public.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, high, low] | [0x64, 0xff9b, 0, 0, 0, 0, high, low] => {
            Some(ipv4_of(high, low))
        }
        [0x2002, high, low, ..] => Some(ipv4_of(high, low)),
        _ => None,
    }
}

fn ipv4_of(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

/// The client's resolver: the system's, with the addresses that are not public dropped for hosts
/// nobody allowed. A name left with no address fails to connect with the reason.
struct PublicOnlyResolver {
    allowed_hosts: Arc<[String]>,
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let host_allowed = allowed(&self.allowed_hosts, &host);
        Box::pin(async move {
            let addresses = resolve(&host).await?;
            if host_allowed {
                return Ok(Box::new(addresses.into_iter()) as Addrs);
            }
            let refused = addresses.iter().find_map(|a| non_public_kind(a.ip()).map(|kind| (a.ip(), kind)));
            let public: Vec<SocketAddr> = addresses.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty()
                && let Some((address, kind)) = refused
            {
                return Err(UrlRefused::ResolvesToNonPublic { host, address, kind }.into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The outcome of one delivery attempt, for the outbox to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why there is no status: the URL was refused, the connection failed or timed out. Never
    /// contains the secret.
    pub error: Option<String>,
    /// From the start of the attempt to its status or error.
    pub duration: Duration,
}

impl Attempt {
    /// Whether the receiver accepted the webhook (answered 2xx). Redirects are not followed and
    /// count as failures: a redirect to an internal address is the classic way round URL checks.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| (200..300).contains(&status))
    }
}

/// Sends webhooks; one per process, shared (its HTTP client pools connections).
pub struct Sender {
    client: reqwest::Client,
    policy: Policy,
}

impl Sender {
    pub fn new(policy: Policy) -> Result<Sender, WebhookError> {
        let resolver = PublicOnlyResolver { allowed_hosts: policy.allowed_hosts.clone().into() };
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(!policy.allow_http)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy named in the environment would resolve and connect in our place, past the
            // resolver's checks.
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(WebhookError::Client)?;
        Ok(Sender { client, policy })
    }

    /// POSTs `body` (JSON) to `url` with the Standard Webhooks headers signed with `secret`.
    /// Never fails: what went wrong is in the [`Attempt`].
    pub async fn send(&self, url: &str, secret: &str, id: &str, timestamp: i64, body: &str) -> Attempt {
        let started = Instant::now();
        let outcome = self.deliver(url, secret, id, timestamp, body).await;
        let duration = started.elapsed();
        match outcome {
            Ok(status) => Attempt { status: Some(status), error: None, duration },
            Err(error) => Attempt { status: None, error: Some(error), duration },
        }
    }

    async fn deliver(
        &self,
        url: &str,
        secret: &str,
        id: &str,
        timestamp: i64,
        body: &str,
    ) -> Result<u16, String> {
        let url = check_url(url, &self.policy).map_err(|refused| refused.to_string())?;
        let signature = sign(secret, id, timestamp, body).map_err(|e| e.to_string())?;
        let response = self
            .client
            .post(url)
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        discard_body(response).await;
        Ok(status)
    }
}

/// Reads and drops at most [`MAX_RESPONSE_BYTES`] of the body. Its errors do not matter: the
/// status is what the attempt reports.
async fn discard_body(mut response: reqwest::Response) {
    let mut read = 0;
    while read < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
}

/// A request error in words, without the URL reqwest puts in its own message (a URL's query
/// may hold a token of the receiver's) and with the causes that say what happened.
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_builder() {
        "could not make the request"
    } else {
        "the request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() { what.to_owned() } else { format!("{what}: {}", causes.join(": ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production() -> Policy {
        Policy::default()
    }

    #[test]
    fn signature_matches_the_specifications_example() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature.ok().as_deref(), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    }

    #[test]
    fn new_secrets_are_32_random_bytes_that_sign() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_"), "{secret}");
        assert_eq!(secret_key(&secret).map(|key| key.len()).ok(), Some(32));
        assert_ne!(secret, new_secret());
        assert!(sign(&secret, "msg_1", 1, "{}").is_ok_and(|signature| signature.starts_with("v1,")));
    }

    #[test]
    fn malformed_secrets_are_refused_without_being_repeated() {
        for secret in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_"] {
            let Err(error) = sign(secret, "msg_1", 1, "{}") else { panic!("{secret} accepted") };
            assert!(!error.to_string().contains(secret), "{error}");
        }
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        let not_public = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ];
        for address in not_public {
            let ip: IpAddr = address.parse().unwrap_or_else(|e| panic!("{address}: {e}"));
            assert!(!is_public(ip), "{address} counted as public");
        }
        for address in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2a00:1450:4009:81f::200e", "::ffff:8.8.8.8"]
        {
            let ip: IpAddr = address.parse().unwrap_or_else(|e| panic!("{address}: {e}"));
            assert!(is_public(ip), "{address} counted as not public: {:?}", non_public_kind(ip));
        }
    }

    #[test]
    fn urls_are_refused_with_a_reason() {
        let long = format!("https://example.org/{}", "a".repeat(MAX_URL_LENGTH));
        let refused = [
            ("http://example.org/hook", UrlRefused::NotHttps),
            ("ftp://example.org/hook", UrlRefused::Scheme { scheme: "ftp".to_owned() }),
            ("https://user:pass@example.org/hook", UrlRefused::Credentials),
            ("https://user@example.org/hook", UrlRefused::Credentials),
            (long.as_str(), UrlRefused::TooLong { length: long.len() }),
        ];
        for (url, expected) in refused {
            assert_eq!(check_url(url, &production()), Err(expected), "{url}");
        }
        for url in [
            "https://127.0.0.1/hook",
            "https://2130706433/hook",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
        ] {
            assert!(matches!(check_url(url, &production()), Err(UrlRefused::NotPublic { .. })), "{url}");
        }
        assert!(matches!(check_url("not a url", &production()), Err(UrlRefused::NotAUrl { .. })));
        assert!(check_url("https://receiver.example.org/hooks?x=1", &production()).is_ok());
        assert!(check_url("https://8.8.8.8/", &production()).is_ok());
    }

    #[test]
    fn refusal_messages_are_plain_english() {
        let reason = |url: &str| check_url(url, &production()).err().map(|refused| refused.to_string());
        assert_eq!(
            reason("https://169.254.169.254/").as_deref(),
            Some(
                "169.254.169.254 is a link-local address (where cloud metadata services answer); webhooks \
                 go only to public addresses unless an administrator allows the host"
            )
        );
        assert_eq!(
            reason("http://example.org/").as_deref(),
            Some("the address must start with https:// (plain http:// is not accepted)")
        );
    }

    #[test]
    fn allowed_hosts_and_http_are_honoured() {
        let policy = Policy {
            allow_http: true,
            allowed_hosts: vec!["127.0.0.1".to_owned(), "::1".to_owned(), "Receiver.Internal".to_owned()],
            timeout: DEFAULT_TIMEOUT,
        };
        assert!(check_url("http://127.0.0.1:8080/hook", &policy).is_ok());
        assert!(check_url("http://[::1]:8080/hook", &policy).is_ok());
        assert!(policy.allows("receiver.internal."));
        assert!(matches!(check_url("http://10.0.0.1/", &policy), Err(UrlRefused::NotPublic { .. })));
    }

    #[test]
    fn a_successful_attempt_is_a_2xx() {
        let attempt = |status| Attempt { status, error: None, duration: Duration::ZERO };
        assert!(attempt(Some(200)).succeeded());
        assert!(attempt(Some(204)).succeeded());
        assert!(!attempt(Some(301)).succeeded());
        assert!(!attempt(Some(500)).succeeded());
        assert!(!attempt(None).succeeded());
    }
}
