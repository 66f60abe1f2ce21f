//! Argon2id password hashing with pinned parameters (OWASP's minimum: 19 MiB, 2 passes, 1 lane).
//! Both functions are CPU-heavy: call them through `web::block`, never on the event loop.

use std::cell::RefCell;

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

thread_local! {
    /// Argon2's working memory (19 MiB with the pinned parameters), kept by each thread that
    /// verifies passwords and reused. Allocated afresh for every check, the buffers were kept
    /// anyway by glibc's per-thread arenas, several to an arena: a storm of sign-ins left the
    /// server 220 MB larger. Only the password threads (`password_workers`) verify.
    static WORKING_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// True only when `password` matches `phc`; a malformed hash is simply a mismatch. The same
/// check as argon2's `verify_password` (the hash's own algorithm, version, parameters and salt;
/// a constant-time comparison of the outputs), computed in this thread's reused memory.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(hash.algorithm.as_str()), Params::try_from(&hash))
    else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut computed = vec![0u8; expected.len()];
    let hashed = WORKING_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut computed,
            &mut memory[..blocks],
        )
    });
    // `Output`'s equality is constant-time.
    hashed.is_ok() && Output::new(&computed).is_ok_and(|computed| computed == *expected)
}

/// Words that name this service: a password built on them is among the first an attacker tries.
const SERVICE_WORDS: [&str; 3] = ["catalogue", "catalog", "licence catalogue"];

/// The least zxcvbn score (0 to 4) a new password needs: 3 is "safely unguessable: moderate
/// protection from offline slow-hash scenario" (about 10^8 guesses), right for argon2id hashes.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// Why a new password for `email` is not acceptable, if it is not. The rules follow NCSC password
/// guidance and OWASP ASVS 2.1: at least 12 characters and up to 256 (long passphrases welcome),
/// no composition rules, and nothing an attacker tries first: the common and breached passwords
/// that zxcvbn carries in the binary (its password frequency list, English words, names and
/// keyboard patterns, repeats and sequences such as `aaaaaaaaaaaa` or `123456789012`), or a
/// password containing the user's email, its name part, or the service's name.
pub fn weakness(password: &str, email: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Some(format!("the password must have at least {MIN_PASSWORD_CHARS} characters"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Some(format!("the password must have at most {MAX_PASSWORD_CHARS} characters"));
    }
    if password.trim().is_empty() {
        return Some("the password must not be only spaces".into());
    }
    let lowered = password.to_lowercase();
    let email = email.trim().to_lowercase();
    let name_part = email.split('@').next().unwrap_or_default();
    if (!email.is_empty() && lowered.contains(&email))
        || (name_part.chars().count() >= 4 && lowered.contains(name_part))
    {
        return Some("the password must not contain your email address or its name part".into());
    }
    if SERVICE_WORDS.iter().any(|word| lowered.contains(word)) {
        return Some("the password must not contain the service's name".into());
    }
    let estimate = zxcvbn::zxcvbn(password, &[email.as_str(), name_part, "nhs", "catalogue"]);
    if estimate.score() < MIN_SCORE {
        let advice = estimate
            .feedback()
            .and_then(|feedback| feedback.warning())
            .map(|warning| format!(": {}", warning.to_string().trim_end_matches('.')))
            .unwrap_or_default();
        return Some(format!(
            "the password is too easy to guess{advice}. A few unrelated words make a strong one"
        ));
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

    /// The reused-memory check agrees with argon2's own, for hashes with other parameters too.
    #[test]
    fn verify_agrees_with_argon2s_own_check() {
        use argon2::password_hash::PasswordVerifier;
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap_or_default(),
        );
        let phcs = [
            hash("correct horse battery staple").unwrap_or_default(),
            other.hash_password(b"correct horse battery staple").map(|h| h.to_string()).unwrap_or_default(),
        ];
        for phc in &phcs {
            for candidate in ["correct horse battery staple", "correct horse battery stapl", ""] {
                let theirs =
                    hasher().is_ok_and(|a| a.verify_password(candidate.as_bytes(), phc.as_str()).is_ok());
                assert_eq!(verify(candidate, phc), theirs, "{candidate:?} against {phc}");
            }
        }
        assert!(!verify("x", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$"));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        assert_ne!(hash("same password here").ok(), hash("same password here").ok());
    }

    #[test]
    fn short_passwords_are_weak() {
        assert!(weakness("short", "a@nhs.net").is_some());
    }

    /// The passwords the security test found accepted, and others an attacker tries first.
    #[test]
    fn common_predictable_and_personal_passwords_are_refused() {
        let email = "jane.smith@rr8.nhs.uk";
        for password in [
            "            ",
            "aaaaaaaaaaaa",
            "123456789012",
            "Password1234",
            "password1234",
            "qwertyuiopas",
            "iloveyou12345",
            "jane.smith@rr8.nhs.uk",
            "jane.smith-is-my-password-2026",
            "my catalogue password 42",
            "Catalogue2026!",
            "nhsnhsnhsnhs",
        ] {
            assert!(weakness(password, email).is_some(), "{password:?} was accepted");
        }
    }

    #[test]
    fn long_passphrases_and_random_passwords_are_accepted() {
        let email = "jane.smith@rr8.nhs.uk";
        for password in [
            "correct horse battery staple",
            "a long enough password",
            "a brand new password",
            "browser test password",
            "tangerine otter on a bicycle in leeds",
            &random_password(),
            "the heron waited by the weir while seven barges of slate drifted past the lock keeper's \
             cottage, and nobody on the towpath noticed the kingfisher at all that grey morning",
        ] {
            assert_eq!(weakness(password, email), None, "{password:?} was refused");
        }
        assert!(weakness(&"x".repeat(257), email).is_some(), "longer than 256 characters");
    }
}
