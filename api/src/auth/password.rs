//! Argon2id password hashing with pinned parameters (OWASP's minimum: 19 MiB, 2 passes, 1 lane).
//! Both functions are CPU-heavy: call them through `web::block`, never on the event loop.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use rand::distr::Alphanumeric;

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

fn hasher() -> anyhow::Result<Argon2<'static>> {
    let params =
        Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) for a password.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let hash = hasher()?.hash_password(password.as_bytes()).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// True only when `password` matches `phc`; a malformed hash is simply a mismatch.
pub fn verify(password: &str, phc: &str) -> bool {
    hasher().is_ok_and(|argon2| argon2.verify_password(password.as_bytes(), phc).is_ok())
}

/// Why a new password is not acceptable, if it is not.
pub fn weakness(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Some(format!("the password must have at least {MIN_PASSWORD_CHARS} characters"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Some(format!("the password must have at most {MAX_PASSWORD_CHARS} characters"));
    }
    None
}

pub fn random_password() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(24).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_the_pinned_parameters_and_verify() {
        let phc = hash("correct horse battery staple").unwrap_or_default();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapler", &phc));
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        assert_ne!(hash("same password here").ok(), hash("same password here").ok());
    }

    #[test]
    fn short_passwords_are_weak() {
        assert!(weakness("short").is_some());
        assert!(weakness("long enough password").is_none());
    }
}
