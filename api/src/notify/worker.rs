//! The delivery worker inside `catalogue serve`: every second or so it writes the reminders that
//! dates have made due (one instance at a time), fans new outbox events out to subscriptions, and
//! takes due deliveries under a lease and attempts them: a signed webhook, an email, or a user's
//! daily digest. The tables decide who does what (`db::deliveries`), so any number of instances
//! can run it against one PostgreSQL database, and a killed one's deliveries are taken up again
//! when their leases run out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use db::Database;
use db::deliveries::{self, AttemptRecord, Destination, RetryPolicy, Taken};
use db::outbox::OutboxEvent;

use crate::notify::email::{self, MailConfig, Mailer, Notice};
use crate::notify::webhook::{Policy, Sender};

/// The advisory-lock key of the reminder pass: one instance writes reminders at a time.
const REMINDERS_LOCK: i64 = 0x6e6f_7469_6679;

/// Email deliveries are only taken when a mail server is configured; should one be taken
/// without, it fails with this rather than pretending to be sent.
const NO_MAIL_SERVER: &str = "no mail server is configured (CATALOGUE_SMTP_URL)";

/// How the worker runs; `from_env` reads production's settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// This worker's name in leases and attempts: unique per process.
    pub name: String,
    /// The pause between passes when there was nothing to do.
    pub poll: Duration,
    /// How long a taken delivery is held; well over `webhook_timeout`.
    pub lease: Duration,
    /// Deliveries taken per pass.
    pub batch: i64,
    pub retry: RetryPolicy,
    pub webhook_timeout: Duration,
    /// Plain-http webhook URLs (development and tests only; production is https only).
    pub allow_http: bool,
    /// The hour (UTC) daily digests go out.
    pub digest_hour: u32,
    pub reminders_every: Duration,
    pub mail: Option<MailConfig>,
}

impl WorkerConfig {
    /// Defaults for production: a 60-second lease, retries for a day, https only, digests at 07:00
    /// UTC, reminders every five minutes; email when `CATALOGUE_SMTP_URL` is set.
    pub fn new(mail: Option<MailConfig>, allow_http: bool) -> WorkerConfig {
        WorkerConfig {
            name: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            batch: 20,
            retry: RetryPolicy::default(),
            webhook_timeout: Duration::from_secs(10),
            allow_http,
            digest_hour: 7,
            reminders_every: Duration::from_secs(300),
            mail,
        }
    }
}

/// The next time daily digests go out after `at`: today's hour if it is still to come, else
/// tomorrow's.
pub fn next_digest(at: NaiveDateTime, hour: u32) -> NaiveDateTime {
    let today = at.date().and_hms_opt(hour.min(23), 0, 0).unwrap_or(at);
    if today > at { today } else { today + chrono::Duration::days(1) }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub reminders: usize,
    pub fanned_out: usize,
    pub attempted: usize,
}

/// The worker's state across passes.
pub struct Worker {
    db: Database,
    config: WorkerConfig,
    mailer: Option<Mailer>,
    last_reminders: Option<Instant>,
}

impl Worker {
    pub fn new(db: Database, config: WorkerConfig) -> anyhow::Result<Worker> {
        let mailer = config.mail.as_ref().map(Mailer::new).transpose()?;
        Ok(Worker { db, config, mailer, last_reminders: None })
    }

    /// One pass: reminders when due, fan-out, and one batch of deliveries attempted together.
    pub async fn pass(&mut self) -> anyhow::Result<Pass> {
        let mut pass = Pass::default();
        if self.last_reminders.is_none_or(|last| last.elapsed() >= self.config.reminders_every) {
            self.last_reminders = Some(Instant::now());
            let db = self.db.clone();
            let now = Utc::now().naive_utc();
            let ran = blocking(move || db.run_alone(REMINDERS_LOCK, || db::reminders::write_due(&db, now)))
                .await??;
            pass.reminders = ran.transpose()?.unwrap_or(0);
        }
        let (db, retry, hour) = (self.db.clone(), self.config.retry, self.config.digest_hour);
        pass.fanned_out =
            blocking(move || deliveries::fan_out(&db, 100, &retry, |at| next_digest(at, hour))).await??;
        let (db, name, lease, batch) =
            (self.db.clone(), self.config.name.clone(), self.config.lease, self.config.batch);
        let with_email = self.mailer.is_some();
        let taken = blocking(move || deliveries::take(&db, &name, lease, batch, with_email)).await??;
        pass.attempted = taken.len();
        if !taken.is_empty() {
            self.deliver(taken).await?;
        }
        Ok(pass)
    }

    async fn deliver(&self, taken: Vec<Taken>) -> anyhow::Result<()> {
        let db = self.db.clone();
        let allowed_hosts = blocking(move || db.read(db::subscriptions::allowed_hosts)).await??;
        let sender = Sender::new(Policy {
            allow_http: self.config.allow_http,
            allowed_hosts: allowed_hosts.into_iter().map(|h| h.host).collect(),
            timeout: self.config.webhook_timeout,
        })?;
        let mut digests: BTreeMap<i64, (String, String, Vec<Taken>)> = BTreeMap::new();
        let mut attempts = Vec::new();
        for delivery in taken {
            match &delivery.destination {
                Destination::Email { to, name, user_id, daily: true } => {
                    let entry =
                        digests.entry(*user_id).or_insert_with(|| (to.clone(), name.clone(), Vec::new()));
                    entry.2.push(delivery);
                }
                _ => attempts.push(self.attempt(&sender, delivery)),
            }
        }
        // One attempt that could not be recorded (its subscription ended meanwhile, say) does not
        // hold up the others; its lease runs out and the delivery is looked at again.
        for outcome in futures_util::future::join_all(attempts).await {
            if let Err(error) = outcome {
                tracing::warn!(%error, "a delivery attempt could not be recorded");
            }
        }
        for (user_id, (to, name, taken)) in digests {
            self.send_digest(user_id, &to, &name, taken).await?;
        }
        Ok(())
    }

    /// Attempts one webhook or immediate email and records the outcome.
    async fn attempt(&self, sender: &Sender, delivery: Taken) -> anyhow::Result<()> {
        let record = match &delivery.destination {
            Destination::Webhook { url, secret } => {
                let id = format!("msg_{}", delivery.delivery_id);
                let body = webhook_body(&delivery.event).to_string();
                let attempt = sender.send(url, secret, &id, Utc::now().timestamp(), &body).await;
                let error = match (attempt.succeeded(), attempt.error, attempt.status) {
                    (true, _, _) => None,
                    (false, Some(error), _) => Some(error),
                    (false, None, Some(status)) => Some(format!("the receiver answered {status}")),
                    (false, None, None) => Some("the receiver did not answer".to_owned()),
                };
                AttemptRecord { status_code: attempt.status, error, duration: attempt.duration }
            }
            Destination::Email { to, .. } => {
                let started = Instant::now();
                let error = match &self.mailer {
                    Some(mailer) => mailer
                        .send(to, &email::single(&notice(&delivery.event)))
                        .await
                        .err()
                        .map(|e| e.to_string()),
                    None => Some(NO_MAIL_SERVER.to_owned()),
                };
                AttemptRecord { status_code: None, error, duration: started.elapsed() }
            }
        };
        let (db, name, retry) = (self.db.clone(), self.config.name.clone(), self.config.retry);
        let finished =
            blocking(move || deliveries::finish(&db, &name, delivery.delivery_id, &record, &retry)).await??;
        tracing::info!(delivery = delivery.delivery_id, outcome = ?finished, "delivery attempted");
        Ok(())
    }

    /// Sends a user's digest of the day (once a day at most: a second batch the same day waits
    /// for tomorrow's) and records it with its deliveries.
    async fn send_digest(&self, user_id: i64, to: &str, name: &str, taken: Vec<Taken>) -> anyhow::Result<()> {
        let now = Utc::now().naive_utc();
        let day = now.date();
        let ids: Vec<i64> = taken.iter().map(|t| t.delivery_id).collect();
        let (db, worker) = (self.db.clone(), self.config.name.clone());
        let reader = db.clone();
        let sent_today =
            blocking(move || reader.read(|conn| deliveries::digest_sent_on(conn, user_id, day))).await??;
        if sent_today {
            let at = next_digest(now, self.config.digest_hour);
            let at = if at.date() == day { at + chrono::Duration::days(1) } else { at };
            return Ok(blocking(move || deliveries::postpone(&db, &worker, &ids, at)).await??);
        }
        let notices: Vec<Notice> = taken.iter().map(|t| notice(&t.event)).collect();
        let started = Instant::now();
        let error = match &self.mailer {
            Some(mailer) => {
                mailer.send(to, &email::digest(name, day, &notices)).await.err().map(|e| e.to_string())
            }
            None => Some(NO_MAIL_SERVER.to_owned()),
        };
        let record = AttemptRecord { status_code: None, error, duration: started.elapsed() };
        let retry = self.config.retry;
        blocking(move || deliveries::finish_digest(&db, &worker, user_id, day, &ids, &record, &retry))
            .await??;
        Ok(())
    }
}

/// A webhook's body, as Standard Webhooks suggests: `type`, `timestamp` and `data`.
pub fn webhook_body(event: &OutboxEvent) -> serde_json::Value {
    serde_json::json!({
        "type": event.kind.as_str(),
        "timestamp": event.occurred_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": {
            "event_id": event.id,
            "organisation_code": event.organisation_code,
            "subject": event.subject,
            "summary": event.summary,
            "details": event.payload,
        },
    })
}

fn notice(event: &OutboxEvent) -> Notice {
    Notice {
        kind: event.kind.as_str().to_owned(),
        summary: event.summary.clone(),
        occurred_at: event.occurred_at.and_utc(),
        organisation: event.organisation_code.clone(),
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// Runs the worker on its own thread for the life of the process. A failed pass is logged and
/// the next one tried after the poll interval; nothing is lost, because the tables hold it all.
pub fn start(db: Database, config: WorkerConfig) -> anyhow::Result<()> {
    let mut worker = Worker::new(db, config)?;
    std::thread::Builder::new().name("delivery".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => return tracing::error!(%error, "the delivery worker could not start"),
        };
        runtime.block_on(async move {
            loop {
                match worker.pass().await {
                    Ok(pass) if pass.attempted > 0 || pass.fanned_out > 0 => continue,
                    Ok(_) => {}
                    Err(error) => tracing::warn!(error = %error, "a delivery pass failed; trying again"),
                }
                tokio::time::sleep(worker.config.poll).await;
            }
        })
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_go_out_at_the_next_digest_hour() {
        let at = |text: &str| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap_or_default();
        assert_eq!(next_digest(at("2026-12-07 06:59:00"), 7), at("2026-12-07 07:00:00"));
        assert_eq!(next_digest(at("2026-12-07 07:00:00"), 7), at("2026-12-08 07:00:00"));
        assert_eq!(next_digest(at("2026-12-07 23:30:00"), 7), at("2026-12-08 07:00:00"));
    }
}
