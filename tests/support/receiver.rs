//! A real HTTP server that receives webhooks in the test process: it listens on a loopback port,
//! records every request, and checks each signature the way a subscriber would, with its own
//! HMAC-SHA256 and base64 rather than the catalogue's signing code, so a mistake there cannot
//! hide itself. It can be told to answer 500 to the first requests, or never to answer.
//!
//! Plain threads and `std::net`: the server does not depend on which async runtime a test uses,
//! and a request left unanswered costs only a sleeping thread.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a webhook's timestamp may be from now, as the Standard Webhooks libraries allow.
const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: String,
    /// Whether `webhook-signature` holds a valid signature of this id, timestamp and body with
    /// the receiver's secret, and the timestamp is within five minutes of now.
    pub verified: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Behaviour {
    received: Vec<Received>,
    /// Requests still to be answered 500.
    failures_left: usize,
    hang: bool,
    /// The secret signatures are checked with (set later when the service makes it).
    secret: String,
}

/// A webhook receiver on 127.0.0.1; stops when dropped.
pub struct Receiver {
    address: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    stopping: Arc<AtomicBool>,
}

impl Receiver {
    /// Starts a receiver that checks signatures with `secret` and answers 204.
    pub fn start(secret: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("local address: {e}"));
        let receiver = Receiver {
            address,
            behaviour: Arc::new(Mutex::new(Behaviour::default())),
            stopping: Arc::new(AtomicBool::new(false)),
        };
        receiver.set_secret(secret);
        let (behaviour, stopping) = (receiver.behaviour.clone(), receiver.stopping.clone());
        std::thread::spawn(move || accept(listener, &behaviour, &stopping));
        receiver
    }

    /// Checks signatures with `secret` from now on: the service shows a subscription's secret
    /// when it makes it, after the receiver's URL was given.
    pub fn set_secret(&self, secret: &str) {
        self.behaviour().secret = secret.to_owned();
    }

    /// Answers 500 to the next `count` requests, then 204 again.
    pub fn fail_next(&self, count: usize) {
        self.behaviour().failures_left = count;
    }

    /// Never answers: reads each request, records it and keeps the connection open.
    pub fn hang(&self) {
        self.behaviour().hang = true;
    }

    /// Where webhooks for this receiver go.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/catalogue", self.address)
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The requests received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.behaviour().received.clone()
    }

    /// Waits until at least `count` requests have arrived and returns them; fails the test after
    /// `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} webhooks arrived within {timeout:?}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        lock(&self.behaviour)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees it must stop.
        let _ = TcpStream::connect(self.address);
    }
}

fn lock(behaviour: &Mutex<Behaviour>) -> MutexGuard<'_, Behaviour> {
    // A test thread that panicked while holding the lock has already failed its test.
    behaviour.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept(listener: TcpListener, behaviour: &Arc<Mutex<Behaviour>>, stopping: &Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let (behaviour, stopping) = (behaviour.clone(), stopping.clone());
        std::thread::spawn(move || serve(stream, &behaviour, &stopping));
    }
}

/// Reads one request, records it, and answers as told (then closes the connection).
fn serve(stream: TcpStream, behaviour: &Mutex<Behaviour>, stopping: &AtomicBool) {
    let Some(mut request) = read_request(&stream) else { return };
    let secret = lock(behaviour).secret.clone();
    request.verified = verified(&secret, &request);
    let answer = {
        let mut behaviour = lock(behaviour);
        behaviour.received.push(request);
        if behaviour.hang {
            None
        } else if behaviour.failures_left > 0 {
            behaviour.failures_left -= 1;
            Some("500 Internal Server Error")
        } else {
            Some("204 No Content")
        }
    };
    match answer {
        Some(status) => {
            let mut stream = stream;
            let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
        None => {
            while !stopping.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// An HTTP/1.1 request with a Content-Length body (what reqwest sends for a string body).
fn read_request(stream: &TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers.get("content-length").and_then(|length| length.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let body = String::from_utf8(body).ok()?;
    Some(Received { method, path, headers, body, verified: false })
}

/// The Standard Webhooks check, written from the specification: HMAC-SHA256 with the key after
/// `whsec_`, over "{id}.{timestamp}.{body}", against any `v1,` signature in the header.
fn verified(secret: &str, request: &Received) -> bool {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        request.header("webhook-signature"),
    ) else {
        return false;
    };
    let Some(key) = secret.strip_prefix("whsec_").and_then(|key| BASE64.decode(key).ok()) else {
        return false;
    };
    let Ok(seconds) = timestamp.parse::<i64>() else { return false };
    if (chrono::Utc::now().timestamp() - seconds).abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return false;
    }
    let signed = format!("{id}.{timestamp}.{}", request.body);
    signatures.split(' ').filter_map(|signature| signature.strip_prefix("v1,")).any(|signature| {
        let Ok(signature) = BASE64.decode(signature) else { return false };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else { return false };
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature).is_ok()
    })
}
