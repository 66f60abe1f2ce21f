//! The token signing secret: from `CATALOGUE_JWT_SECRET`, or for the embedded default a file
//! beside the SQLite database, created on first start with owner-only permissions.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use rand::RngCore;

pub const MIN_SECRET_BYTES: usize = 32;

/// Key material that never prints itself.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> anyhow::Result<Secret> {
        if bytes.len() < MIN_SECRET_BYTES {
            bail!("the JWT secret must be at least {MIN_SECRET_BYTES} bytes long");
        }
        Ok(Secret(bytes))
    }

    pub fn random() -> Secret {
        let mut bytes = vec![0u8; 48];
        rand::rng().fill_bytes(&mut bytes);
        Secret(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// The secret for a server: the environment's if given; else, for SQLite, the one kept beside
/// the database file (made on first start); PostgreSQL deployments must set it, because every
/// instance behind the load balancer has to share it.
pub fn load(from_environment: Option<String>, sqlite_path: Option<&Path>) -> anyhow::Result<Secret> {
    if let Some(value) = from_environment {
        return Secret::new(value.into_bytes())
            .context("CATALOGUE_JWT_SECRET is too short: use at least 32 random bytes");
    }
    let Some(database) = sqlite_path else {
        bail!(
            "set CATALOGUE_JWT_SECRET (at least 32 bytes): instances sharing a PostgreSQL database must share it"
        );
    };
    let path = database.with_file_name(format!(
        "{}.jwt-secret",
        database.file_name().and_then(|n| n.to_str()).unwrap_or("catalogue.db")
    ));
    if path.exists() {
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let bytes = decode_hex(text.trim())
            .with_context(|| format!("{} is not a valid secret file", path.display()))?;
        return Secret::new(bytes);
    }
    let secret = Secret::random();
    write_owner_only(&path, &encode_hex(secret.expose()))
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(secret)
}

fn write_owner_only(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        bail!("odd length");
    }
    (0..text.len()).step_by(2).map(|i| Ok(u8::from_str_radix(&text[i..i + 2], 16)?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert!(Secret::new(b"too short".to_vec()).is_err());
        assert!(load(Some("x".repeat(31)), None).is_err());
        assert!(load(Some("x".repeat(32)), None).is_ok());
    }

    #[test]
    fn postgres_without_a_secret_is_refused() {
        assert!(load(None, None).is_err());
    }

    #[test]
    fn the_generated_secret_survives_a_restart_and_is_owner_only() {
        let dir = std::env::temp_dir().join(format!("secret-test-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap_or_default();
        let database = dir.join("catalogue.db");
        let first = load(None, Some(&database)).map(|s| s.expose().to_vec()).unwrap_or_default();
        let second = load(None, Some(&database)).map(|s| s.expose().to_vec()).unwrap_or_default();
        assert_eq!(first.len(), 48);
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("catalogue.db.jwt-secret"))
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret =
            Secret::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap_or_else(|_| Secret::random());
        assert_eq!(format!("{secret:?}"), "Secret(redacted)");
    }
}
