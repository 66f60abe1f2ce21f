//! Access tokens: `issue` and `verify` side by side. HS256 only, on both sides; `exp`, `iat`,
//! `iss` and `aud` are always set and checked. `gen` ties a token to the user's token generation,
//! which changes when their password, role, organisation or disabled flag changes.

use jsonwebtoken::{Algorithm, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

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
    Ok(IssuedToken { token, expires_in: lifetime })
}

/// The claims of a valid token, or `None` for anything else (no reason is given to the caller).
pub fn verify(config: &AuthConfig, token: &str) -> Option<Claims> {
    decode::<Claims>(token, &config.decoding_key, &config.validation).ok().map(|data| data.claims)
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
