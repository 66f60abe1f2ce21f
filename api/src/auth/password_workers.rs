//! Password hashing and verification on a few threads of their own, with a bounded queue.
//!
//! Why not the blocking pool: argon2id takes 19 MiB a call, and glibc keeps freed memory in the
//! arena of the thread that used it. Spread over every blocking thread of every worker, 300
//! concurrent wrong-password sign-ins took the server from 38 MB to 785 MB, and it stayed there.
//! Here a fixed set of threads does all password work, so at most that many buffers are ever
//! held; and the queue in front of them is bounded, so a storm gets 503 with `Retry-After`
//! instead of an ever longer wait.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// A handle on the password threads; they stop when the last handle is dropped.
#[derive(Clone)]
pub struct PasswordWorkers {
    jobs: SyncSender<Job>,
}

/// The queue is full: try again shortly.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl PasswordWorkers {
    /// `threads` threads, and at most `queue` jobs waiting for one.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<PasswordWorkers> {
        let (jobs, waiting) = sync_channel::<Job>(queue);
        let waiting = Arc::new(Mutex::new(waiting));
        for index in 0..threads.max(1) {
            let waiting = Arc::clone(&waiting);
            std::thread::Builder::new().name(format!("password-{index}")).spawn(move || work(&waiting))?;
        }
        Ok(PasswordWorkers { jobs })
    }

    /// Runs `job` on a password thread and waits for its result, or refuses at once when the
    /// queue is full.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(job());
        });
        match self.jobs.try_send(job) {
            Ok(()) => answered.await.map_err(|_| Busy),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

fn work(waiting: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only to take the next job, not while it runs.
        let next = waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[actix_web::test]
    async fn jobs_run_and_a_full_queue_refuses_at_once() {
        let workers = PasswordWorkers::start(1, 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(workers.run(|| 2 + 2).await, Ok(4));
        // Hold the only thread, and fill the one place in the queue: the next job is refused.
        let (release, held) = channel::<()>();
        let (started, running) = channel::<()>();
        let holding: Job = Box::new(move || {
            let _ = started.send(());
            let _ = held.recv();
        });
        assert!(workers.jobs.try_send(holding).is_ok());
        let _ = running.recv();
        let (queued_ran, queued) = channel::<()>();
        let waiting: Job = Box::new(move || {
            let _ = queued_ran.send(());
        });
        assert!(workers.jobs.try_send(waiting).is_ok());
        assert_eq!(workers.run(|| 3).await, Err(Busy));
        let _ = release.send(());
        assert!(queued.recv().is_ok(), "the queued job runs once the thread is free");
        assert_eq!(workers.run(|| 5).await, Ok(5));
    }
}
