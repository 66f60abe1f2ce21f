//! A real SMTP server for the email tests: aiosmtpd, storing each message it accepts in a
//! Maildir the test reads back. A real server rather than a mock so that what is tested is what
//! an SMTP relay receives: the conversation, the headers, the MIME structure.
//!
//! aiosmtpd is a Python package (`pip install aiosmtpd`, or Debian's `python3-aiosmtpd`, which
//! `.ci/run` installs). Without it the email tests fail under `CI=true` or `CI=1` and elsewhere
//! say loudly that they were skipped, as the PostgreSQL halves do.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long aiosmtpd gets to start listening (Python's start-up on a busy CI machine).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running aiosmtpd on a free loopback port; stopped, and its Maildir removed, on drop.
pub struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    log: PathBuf,
}

impl SmtpServer {
    /// Starts aiosmtpd, or returns `None` (after saying so) when it is not installed and this
    /// is not CI.
    pub fn start() -> Option<SmtpServer> {
        if !aiosmtpd_installed() {
            if super::in_ci() {
                panic!(
                    "aiosmtpd is not installed (python3 -c 'import aiosmtpd' fails) and this is CI (CI={}); \
                     .ci/run installs python3-aiosmtpd",
                    std::env::var("CI").unwrap_or_default()
                );
            }
            super::shout(
                "aiosmtpd is not installed (pip install aiosmtpd, or apt-get install python3-aiosmtpd): \
                 this email test was SKIPPED",
            );
            return None;
        }
        let port = free_port();
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let maildir = std::env::temp_dir().join(format!("catalogue-smtp-{unique}"));
        let log = std::env::temp_dir().join(format!("catalogue-smtp-{unique}.log"));
        let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("start aiosmtpd: {e}"));
        let mut server = SmtpServer { child, port, maildir, log };
        server.wait_until_listening();
        Some(server)
    }

    /// The URL the catalogue's mailer is configured with: plain SMTP on loopback.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, as the raw RFC 5322 text, in the order they arrived.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|folder| std::fs::read_dir(self.maildir.join(folder)).ok())
            .flatten()
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        // By delivery time; Maildir names, which start with it in seconds, break ties.
        files.sort_by_key(|path| (modified(path), path.clone()));
        files.iter().filter_map(|path| std::fs::read_to_string(path).ok()).collect()
    }

    /// Waits until at least `count` messages have arrived and returns them; fails the test
    /// after `timeout`.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} messages arrived within {timeout:?}; aiosmtpd said: {}",
                messages.len(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("aiosmtpd exited ({status}): {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen within {START_TIMEOUT:?}: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
        let _ = std::fs::remove_file(&self.log);
    }
}

fn aiosmtpd_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A port nothing listens on now: the system picks it for a listener that is then closed.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    listener.local_addr().unwrap_or_else(|e| panic!("local address: {e}")).port()
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok()
}
