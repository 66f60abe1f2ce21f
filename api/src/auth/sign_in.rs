//! Signing in with an email and password: the one path that the API's token endpoint and the web
//! sign-in page both take, with the same throttle and the same timing for unknown emails.

use crate::auth::claims::{self, IssuedToken};
use crate::auth::{password, throttle};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A token for `email` and `password` from `address`, or 401 (wrong email, wrong password or
/// disabled user: the same answer for each) or 429 while the email or address is throttled.
pub async fn sign_in(
    state: &AppState,
    email: String,
    password: String,
    address: &str,
) -> ApiResult<IssuedToken> {
    // Counted before the password is checked: parallel guesses cannot all slip in before the
    // first failure is recorded.
    let (throttle_email, throttle_address) = (email.clone(), address.to_owned());
    let attempt = state
        .run(move |db| throttle::sign_in_attempt(db, &throttle_email, &throttle_address))
        .await?
        .map_err(|retry_after_seconds| ApiError::TooManyRequests { retry_after_seconds })?;
    let lookup_email = email.clone();
    let credentials =
        state.run(move |db| db.read(|conn| db::users::credentials(conn, &lookup_email))).await?;
    // An unknown email is checked against a dummy hash, so both failures take the same time.
    let (stored_hash, account) = match credentials {
        Some(c) => (c.password_hash.clone(), Some(c)),
        None => (state.auth.dummy_hash.clone(), None),
    };
    let matches = state.run_password_work(move || password::verify(&password, &stored_hash)).await?;
    match account {
        Some(account) if matches && !account.disabled => {
            state.run(move |db| attempt.succeeded(db)).await?;
            claims::issue(&state.auth, account.user_id, account.token_generation)
                .map_err(|e| ApiError::Internal(e.to_string()))
        }
        // A failure keeps its count.
        _ => Err(ApiError::Unauthorized),
    }
}
