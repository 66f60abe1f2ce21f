//! Authentication (who is calling: passwords, tokens, throttling) and authorisation (what they
//! may do: role guards and organisation scope, as extractors that handlers ask for).

pub mod accounts;
pub mod claims;
pub mod extractors;
pub mod password;
pub mod password_reset;
pub mod password_workers;
pub mod secret;
pub mod sign_in;
pub mod throttle;

pub use extractors::{Authorised, CurrentUser, ensure_publisher};
pub use secret::Secret;

use std::time::Duration;

/// Signing keys and token settings, fixed at start-up.
pub struct AuthConfig {
    pub(crate) encoding_key: jsonwebtoken::EncodingKey,
    pub(crate) decoding_key: jsonwebtoken::DecodingKey,
    /// The checks every bearer token must pass (algorithm, issuer, audience, required claims).
    pub(crate) validation: jsonwebtoken::Validation,
    /// Tokens already verified (see [`claims::VerifiedTokens`]).
    pub(crate) verified_tokens: claims::VerifiedTokens,
    pub issuer: String,
    pub audience: String,
    pub token_lifetime: Duration,
    /// A hash of a random password with the pinned parameters: unknown emails are verified
    /// against it so that they take as long as a wrong password.
    pub(crate) dummy_hash: String,
    /// Key for the web pages' CSRF tokens, derived from the secret (never the signing key itself).
    pub(crate) csrf_key: [u8; 32],
    /// Key that encrypts and authenticates the cookie keeping a form sent after its session ended
    /// (`web::kept_form`), derived from the secret like `csrf_key`.
    pub(crate) kept_form_key: actix_web::cookie::Key,
}

impl AuthConfig {
    pub const ISSUER: &'static str = "nhs-licence-catalogue";
    pub const AUDIENCE: &'static str = "nhs-licence-catalogue-api";

    pub fn new(secret: Secret) -> anyhow::Result<AuthConfig> {
        Ok(AuthConfig {
            encoding_key: jsonwebtoken::EncodingKey::from_secret(secret.expose())?,
            decoding_key: jsonwebtoken::DecodingKey::from_secret(secret.expose())?,
            validation: claims::validation(Self::ISSUER, Self::AUDIENCE),
            verified_tokens: claims::VerifiedTokens::new(claims::VERIFIED_TOKENS_HELD),
            issuer: Self::ISSUER.to_owned(),
            audience: Self::AUDIENCE.to_owned(),
            token_lifetime: Duration::from_secs(15 * 60),
            dummy_hash: password::hash(&password::random_password())?,
            csrf_key: derive_key(secret.expose(), b"nhs-licence-catalogue/web-csrf/v1")?,
            kept_form_key: cookie_key(secret.expose(), b"nhs-licence-catalogue/web-kept-form/v1")?,
        })
    }
}

/// The 64 bytes a private cookie's key takes (32 to encrypt, 32 to sign), as two subkeys.
fn cookie_key(secret: &[u8], purpose: &[u8]) -> anyhow::Result<actix_web::cookie::Key> {
    let mut bytes = Vec::with_capacity(64);
    for half in [&b"/1"[..], &b"/2"[..]] {
        bytes.extend_from_slice(&derive_key(secret, &[purpose, half].concat())?);
    }
    Ok(actix_web::cookie::Key::try_from(bytes.as_slice())?)
}

/// A subkey of `secret` for one purpose: HMAC-SHA256(secret, purpose).
fn derive_key(secret: &[u8], purpose: &[u8]) -> anyhow::Result<[u8; 32]> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret)?;
    mac.update(purpose);
    Ok(mac.finalize().into_bytes().into())
}
