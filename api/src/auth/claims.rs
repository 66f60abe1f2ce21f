//! Access tokens: `issue` and `verify` side by side. HS256 only, on both sides; `exp`, `iat`,
//! `iss` and `aud` are always set and checked. `gen` ties a token to the user's token generation,
//! which changes when their password, role, organisation or disabled flag changes.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::AuthConfig;

const ALGORITHM: Algorithm = Algorithm::HS256;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    /// The user's token generation when the token was issued.
    pub r#gen: i64,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    /// When it expires (seconds since the Unix epoch): a page's session ends then.
    pub expires_at: u64,
    /// Whose token it is.
    pub user_id: i64,
}

pub fn issue(config: &AuthConfig, user_id: i64, generation: i64) -> anyhow::Result<IssuedToken> {
    let now = jsonwebtoken::get_current_timestamp();
    let lifetime = config.token_lifetime.as_secs();
    let claims = Claims {
        sub: user_id.to_string(),
        iat: now,
        exp: now + lifetime,
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        r#gen: generation,
    };
    let token = encode(&Header::new(ALGORITHM), &claims, &config.encoding_key)?;
    Ok(IssuedToken { token, expires_in: lifetime, expires_at: claims.exp, user_id })
}

/// The claims of a valid token, or `None` for anything else (no reason is given to the caller).
pub fn verify(config: &AuthConfig, token: &str) -> Option<Arc<Claims>> {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if let Some(claims) = config.verified_tokens.get(&digest) {
        return unexpired(&claims, &config.validation).then_some(claims);
    }
    let claims = Arc::new(decode::<Claims>(token, &config.decoding_key, &config.validation).ok()?.claims);
    config.verified_tokens.insert(digest, claims.clone());
    Some(claims)
}

/// Whose a token was, once it no longer signs anyone in: expired, or ended by signing out
/// elsewhere. Only the pages ask, to bind a form sent after the session ended to the person who
/// typed it (`web::kept_form`), so that it is given back to them alone, after they sign in again
/// with their password. It never authenticates anything: `verify` (which always checks `exp`) does.
/// The signature, algorithm, issuer and audience are checked as `verify` checks them.
pub fn former_subject(config: &AuthConfig, token: &str) -> Option<FormerSubject> {
    let mut validation = config.validation.clone();
    validation.validate_exp = false;
    let claims = decode::<Claims>(token, &config.decoding_key, &validation).ok()?.claims;
    let user_id = claims.sub.parse().ok()?;
    Some(FormerSubject { user_id, expired: !unexpired(&claims, &config.validation) })
}

/// The user of a token that no longer signs them in, and whether it ended by expiring (rather
/// than by a sign-out or an account change).
pub struct FormerSubject {
    pub user_id: i64,
    pub expired: bool,
}

/// Tokens that passed [`decode`], by the SHA-256 of the whole token. A profile of the coverage
/// lookup under load showed `decode` (base64, JSON parsed three times, HMAC) at a tenth of the
/// server's time. A token's signature, algorithm, issuer, audience and subject cannot change, so
/// only its expiry is checked again on a hit (below); whether its user is still enabled and the
/// token still current is read fresh on every request, as for a token just decoded. Only the
/// digest is kept, never the token.
pub(crate) type VerifiedTokens = quick_cache::sync::Cache<[u8; 32], Arc<Claims>>;

/// Enough for every token in use at once at national scale (each lives 15 minutes); when full,
/// the least used are decoded again.
pub(crate) const VERIFIED_TOKENS_HELD: usize = 10_000;

/// The expiry check of `decode` (`exp` with the same leeway), for a token verified before.
fn unexpired(claims: &Claims, validation: &Validation) -> bool {
    claims.exp.saturating_add(validation.leeway) >= jsonwebtoken::get_current_timestamp()
}

/// What [`verify`] requires of a token: built once, at start-up, as it is the same for every request.
pub(crate) fn validation(issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(ALGORITHM);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 5;
    validation
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;

    fn new_config() -> AuthConfig {
        AuthConfig::new(Secret::random()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A token for user 7 with the given expiry, signed with `config`'s key.
    fn token_expiring_at(config: &AuthConfig, exp: u64) -> String {
        let claims = Claims {
            sub: "7".into(),
            iat: exp.saturating_sub(60),
            exp,
            iss: config.issuer.clone(),
            aud: config.audience.clone(),
            r#gen: 1,
        };
        encode(&Header::new(ALGORITHM), &claims, &config.encoding_key).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_verified_token_is_refused_once_it_expires_although_it_was_verified_before() {
        let config = new_config();
        // Four seconds past its expiry: still within the five seconds of leeway.
        let token = token_expiring_at(&config, jsonwebtoken::get_current_timestamp() - 4);
        assert_eq!(verify(&config, &token).map(|claims| claims.sub.clone()).as_deref(), Some("7"));
        assert_eq!(config.verified_tokens.len(), 1, "the verified token is held");
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(verify(&config, &token).is_none(), "past the leeway, the held token is refused");
    }

    #[test]
    fn an_expired_token_still_names_its_user_for_a_kept_form_but_signs_no_one_in() {
        let config = new_config();
        let token = token_expiring_at(&config, jsonwebtoken::get_current_timestamp() - 600);
        assert!(verify(&config, &token).is_none());
        let former = former_subject(&config, &token).unwrap_or_else(|| panic!("no subject"));
        assert_eq!((former.user_id, former.expired), (7, true));
        let live = token_expiring_at(&config, jsonwebtoken::get_current_timestamp() + 600);
        assert_eq!(former_subject(&config, &live).map(|f| f.expired), Some(false));
        let foreign = token_expiring_at(&new_config(), jsonwebtoken::get_current_timestamp() - 600);
        assert!(former_subject(&config, &foreign).is_none(), "signed with another key");
        assert!(former_subject(&config, "not.a.token").is_none());
    }

    #[test]
    fn a_held_token_does_not_vouch_for_an_altered_copy() {
        let config = new_config();
        let token = token_expiring_at(&config, jsonwebtoken::get_current_timestamp() + 600);
        assert!(verify(&config, &token).is_some());
        let (unsigned, signature) = token.rsplit_once('.').unwrap_or_else(|| panic!("{token}"));
        // The first character: every bit of it is signature (the last one carries padding bits).
        let first = if signature.starts_with('A') { 'B' } else { 'A' };
        let altered = format!("{unsigned}.{first}{}", &signature[1..]);
        assert!(verify(&config, &altered).is_none(), "another signature");
        let other_key = token_expiring_at(&new_config(), jsonwebtoken::get_current_timestamp() + 600);
        assert!(verify(&config, &other_key).is_none(), "signed with another key");
        assert!(verify(&config, &token).is_some(), "the genuine token still verifies");
        assert_eq!(config.verified_tokens.len(), 1, "only the genuine token is held");
    }
}
