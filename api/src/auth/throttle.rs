//! Throttling of failed sign-ins, per email and per client address: after too many failures in
//! a window, further attempts get 429 with `Retry-After` until the window ends. Kept in memory
//! per instance: behind a load balancer each instance throttles on its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_FAILURES_PER_EMAIL: u32 = 5;
pub const MAX_FAILURES_PER_ADDRESS: u32 = 20;
/// Beyond this many tracked keys, expired entries are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Default)]
pub struct Throttle {
    windows: Mutex<HashMap<String, Window>>,
}

impl Throttle {
    /// Seconds to wait when `email` or `address` is throttled, else `None`.
    pub fn retry_after(&self, email: &str, address: &str) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        [(email_key(email), MAX_FAILURES_PER_EMAIL), (address_key(address), MAX_FAILURES_PER_ADDRESS)]
            .into_iter()
            .filter_map(|(key, limit)| {
                let window = windows.get(&key)?;
                let ends = window.started + WINDOW;
                (window.failures >= limit && ends > now).then(|| (ends - now).as_secs().max(1))
            })
            .max()
    }

    pub fn record_failure(&self, email: &str, address: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| w.started + WINDOW > now);
        }
        for key in [email_key(email), address_key(address)] {
            let window = windows.entry(key).or_insert(Window { started: now, failures: 0 });
            if window.started + WINDOW <= now {
                *window = Window { started: now, failures: 0 };
            }
            window.failures += 1;
        }
    }

    pub fn record_success(&self, email: &str) {
        self.windows.lock().unwrap_or_else(|p| p.into_inner()).remove(&email_key(email));
    }
}

fn email_key(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_throttled_after_its_failures_and_freed_by_success() {
        let throttle = Throttle::default();
        for _ in 0..MAX_FAILURES_PER_EMAIL {
            assert_eq!(throttle.retry_after("a@nhs.net", "1.1.1.1"), None);
            throttle.record_failure("A@nhs.net", "1.1.1.1");
        }
        assert!(throttle.retry_after("a@nhs.net", "2.2.2.2").is_some_and(|s| s > 0 && s <= WINDOW.as_secs()));
        assert_eq!(throttle.retry_after("b@nhs.net", "2.2.2.2"), None);
        throttle.record_success("a@nhs.net");
        assert_eq!(throttle.retry_after("a@nhs.net", "2.2.2.2"), None);
    }

    #[test]
    fn an_address_is_throttled_across_emails() {
        let throttle = Throttle::default();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            throttle.record_failure(&format!("user{i}@nhs.net"), "9.9.9.9");
        }
        assert!(throttle.retry_after("new@nhs.net", "9.9.9.9").is_some());
        assert_eq!(throttle.retry_after("new@nhs.net", "8.8.8.8"), None);
    }
}
