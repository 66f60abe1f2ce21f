//! Signing in and out of the pages, the session cookie, and CSRF protection.
//!
//! The session cookie holds `<session id>.<access token>`: the token is issued by
//! `auth::claims::issue` and resolved by `auth::extractors::resolve_token`, exactly as a bearer
//! token is, so disabling a user or changing their password ends the session at once. Signing out
//! moves the account's token generation on, which ends every session of the account. While the
//! user is active the token is renewed when half its life has passed (an idle session ends when
//! the token expires). The session id is random per sign-in and survives renewals; every form
//! carries `HMAC(key, session id)` as its CSRF token. The sign-in form, before any session,
//! carries an HMAC of a random value kept in a short-lived cookie instead. Forms with a file
//! (`multipart/form-data`, [`Uploaded`]) carry the same token, checked before the file is read.
//!
//! A form sent after the session ended is kept while its author signs in again (`kept_form`).
//! Every page tells its script when the session ends (`Session::ends_in_seconds`), so that it can
//! warn a couple of minutes before; its "Stay signed in" is `POST /session/renew` ([`renew`]).
//!
//! Cookies are `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` when the connection is TLS.

use std::marker::PhantomData;

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::auth::extractors::{RoleSet, Scope, check_role, resolve_token};
use crate::auth::sign_in::sign_in;
use crate::auth::{AuthConfig, CurrentUser, claims};
use crate::body::MAX_ODS_FILE_BYTES;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::kept_form::{self, KEPT_FOR_SECONDS, KEPT_FORM_COOKIE, KeptCookie, KeptForm, SignedInUser};
use crate::web::{Chrome, WebError, WebResult, local_path, render, see_other};

pub const SESSION_COOKIE: &str = "catalogue_session";
const SIGN_IN_COOKIE: &str = "catalogue_sign_in";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

/// A signed-in user of the pages, with the CSRF token their forms must carry.
pub struct Session {
    pub user: CurrentUser,
    pub csrf_token: String,
    /// The session id, which the CSRF token is bound to and which survives renewals.
    id: String,
    /// How long until the session ends unless renewed (its token expires), as of this request.
    pub ends_in_seconds: u64,
    /// How long before the end the page warns: two minutes, less for a very short session.
    pub warn_seconds_before: u64,
}

impl Session {
    /// The same role check as the API's `Authorised<R>` extractor.
    pub fn require<R: RoleSet>(&self) -> WebResult<&CurrentUser> {
        check_role::<R>(&self.user)?;
        Ok(&self.user)
    }

    /// The role check, and that the user acts for organisation `code`: the API's rule for
    /// writes on an organisation's behalf.
    pub fn require_acting_for<R: RoleSet>(&self, code: &str) -> WebResult<&CurrentUser> {
        let user = self.require::<R>()?;
        user.ensure_can_act_for(code)?;
        Ok(user)
    }
}

/// A session renewed during this request; [`renew_cookie`] sends the new cookie.
#[derive(Clone)]
struct RenewedSession(Cookie<'static>);

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(config: &AuthConfig, purpose: &str, value: &str) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length: this never fails for the 32-byte key.
    let mut mac = Hmac::<Sha256>::new_from_slice(&config.csrf_key).ok()?;
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(value.as_bytes());
    Some(mac)
}

/// The CSRF token for forms of the session (or sign-in value) `value`.
fn csrf_token_for(config: &AuthConfig, purpose: &str, value: &str) -> String {
    mac(config, purpose, value)
        .map(|mac| mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default()
}

/// Whether `token` is the CSRF token for `value`, compared in constant time.
fn csrf_token_matches(config: &AuthConfig, purpose: &str, value: &str, token: &str) -> bool {
    match (decode_hex(token), mac(config, purpose, value)) {
        (Some(bytes), Some(mac)) => mac.verify_slice(&bytes).is_ok(),
        _ => false,
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// Over TLS, or behind a trusted proxy that says so (`X-Forwarded-Proto` from anyone else is
/// ignored: see `crate::client`).
fn is_tls(request: &HttpRequest) -> bool {
    request.app_data::<web::Data<AppState>>().is_some_and(|state| state.trusted_proxies.is_https(request))
}

/// A cookie with the flags every cookie of the pages has.
fn cookie(name: &'static str, value: String, request: &HttpRequest) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_tls(request))
        .finish()
}

/// The session cookie's name and path, to remove it.
pub fn session_cookie_template() -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, "").path("/").finish()
}

fn state_of(request: &HttpRequest) -> WebResult<web::Data<AppState>> {
    request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| WebError::Internal("application state missing".into()))
}

/// Where to come back to after signing in: this page (GET), the page of a form (POST), else
/// the start page.
fn return_path(request: &HttpRequest) -> String {
    if request.method() == actix_web::http::Method::GET {
        local_path(request.uri().path_and_query().map(|p| p.as_str()))
    } else if kept_form::keepable(request) {
        kept_form::form_page(request)
    } else {
        "/".into()
    }
}

/// The most a page warns before its session ends; a session shorter than three times this is
/// warned a third of its life before.
const WARN_SECONDS_BEFORE: u64 = 120;

impl FromRequest for Session {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Session, WebError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let state = state_of(&request)?;
            let sign_in = || WebError::SignIn { next: return_path(&request) };
            let cookie = request.cookie(SESSION_COOKIE).ok_or_else(sign_in)?;
            let (session_id, token) = cookie.value().split_once('.').ok_or_else(sign_in)?;
            let (principal, claims) = resolve_token(&state, token).await.map_err(|error| match error {
                ApiError::Unauthorized => sign_in(),
                other => other.into(),
            })?;
            let lifetime = state.auth.token_lifetime.as_secs();
            let now = jsonwebtoken::get_current_timestamp();
            let mut expires_at = claims.exp;
            if now >= claims.iat + lifetime / 2
                && let Ok(issued) = claims::issue(&state.auth, principal.user_id, principal.token_generation)
            {
                let renewed = cookie_for_session(&request, session_id, &issued.token);
                request.extensions_mut().insert(RenewedSession(renewed));
                expires_at = issued.expires_at;
            }
            request.extensions_mut().insert(SignedInUser(principal.user_id));
            Ok(Session {
                csrf_token: csrf_token_for(&state.auth, "session", session_id),
                id: session_id.to_owned(),
                ends_in_seconds: expires_at.saturating_sub(now),
                warn_seconds_before: WARN_SECONDS_BEFORE.min(lifetime / 3),
                user: CurrentUser::new(principal, &request),
            })
        })
    }
}

/// The organisation of a page's `{code}` path segment, checked against the signed-in user by the
/// API's own rule for that path (`S`, as `OrganisationPath<S>` checks it), so another
/// organisation's page is not found, as its API route is not.
pub struct PageOrganisation<S: Scope> {
    pub session: Session,
    /// The ODS code, upper-case.
    pub code: String,
    scope: PhantomData<S>,
}

impl<S: Scope + 'static> FromRequest for PageOrganisation<S> {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<PageOrganisation<S>, WebError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = Session::from_request(request, payload);
        let code = request.match_info().get("code").unwrap_or_default().to_uppercase();
        Box::pin(async move {
            let session = session.await?;
            S::check(&session.user, &code)?;
            Ok(PageOrganisation { session, code, scope: PhantomData })
        })
    }
}

fn cookie_for_session(request: &HttpRequest, session_id: &str, token: &str) -> Cookie<'static> {
    cookie(SESSION_COOKIE, format!("{session_id}.{token}"), request)
}

/// Middleware: sends the renewed session cookie when the request renewed the session (and the
/// handler did not set or remove the cookie itself, as signing out does).
pub async fn renew_cookie(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(request).await?;
    let renewed = response.request().extensions().get::<RenewedSession>().cloned();
    if let Some(RenewedSession(cookie)) = renewed {
        let handled = response.response().cookies().any(|c| c.name() == SESSION_COOKIE);
        if !handled {
            response.response_mut().add_cookie(&cookie)?;
        }
    }
    Ok(response)
}

/// A form submitted by a signed-in user, with a valid CSRF token. A form without the token, or
/// with a wrong one, is refused with 403 before its fields are looked at.
pub struct Submitted<T> {
    pub session: Session,
    pub form: T,
}

fn form_pairs(body: &[u8]) -> WebResult<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body).map_err(|_| WebError::BadRequest("the form could not be read".into()))
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

fn ensure_form_content_type(request: &HttpRequest) -> WebResult<()> {
    ensure_content_type(request, "application/x-www-form-urlencoded")
}

/// The request's media type (without its parameters) is `essence`, or the form is refused.
fn ensure_content_type(request: &HttpRequest, essence: &str) -> WebResult<()> {
    let declared = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    match declared.split(';').next() {
        Some(found) if found.trim().eq_ignore_ascii_case(essence) => Ok(()),
        _ => Err(WebError::BadRequest(format!("the form must be sent as {essence}"))),
    }
}

/// Whether `token` is the CSRF token of the session whose cookie came with the request.
fn csrf_accepted(state: &AppState, request: &HttpRequest, token: &str) -> bool {
    let cookie = request.cookie(SESSION_COOKIE);
    let session_id = cookie.as_ref().and_then(|c| c.value().split_once('.')).map(|(id, _)| id);
    session_id.is_some_and(|id| csrf_token_matches(&state.auth, "session", id, token))
}

fn csrf_refused() -> WebError {
    WebError::Forbidden(
        "The form could not be accepted because its security token was missing or out of date. Go back, \
         reload the page and try again."
            .into(),
    )
}

/// The answer to a form sent without a valid session: sign in, then back to the form's page. The
/// form is kept (`kept_form`) when it came with its ended session's cookie and that session's
/// CSRF token (still in `fields`, and not kept): a form from anywhere else is not.
fn signed_out(
    request: &HttpRequest,
    state: &AppState,
    mut fields: Vec<(String, String)>,
    file_left_out: bool,
    next: String,
) -> WebError {
    let session_cookie = request.cookie(SESSION_COOKIE);
    let Some((session_id, token)) = session_cookie.as_ref().and_then(|c| c.value().split_once('.')) else {
        return WebError::SignIn { next };
    };
    let sent_by_session = csrf_token_matches(
        &state.auth,
        "session",
        session_id,
        field(&fields, CSRF_FIELD).unwrap_or_default(),
    );
    let former = claims::former_subject(&state.auth, token);
    let (true, true, Some(former)) = (kept_form::keepable(request), sent_by_session, former) else {
        return WebError::SignIn { next };
    };
    fields.retain(|(name, _)| name != CSRF_FIELD);
    let kept = KeptForm::new(request, &former, fields, file_left_out);
    let next = kept.page().to_owned();
    match kept.seal(&state.auth.kept_form_key) {
        Some(sealed) => {
            let mut kept_cookie = cookie(KEPT_FORM_COOKIE, sealed, request);
            kept_cookie.set_max_age(CookieDuration::seconds(KEPT_FOR_SECONDS as i64));
            WebError::SignInToSend { next, kept: KeptCookie(Box::new(kept_cookie)) }
        }
        None => WebError::TooLongToKeep { next },
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Submitted<T> {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Submitted<T>, WebError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = Session::from_request(request, payload);
        let body = web::Bytes::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            let session = match session.await {
                Err(WebError::SignIn { next }) => {
                    let state = state_of(&request)?;
                    let fields = match body.await {
                        Ok(body) if ensure_form_content_type(&request).is_ok() => {
                            form_pairs(&body).unwrap_or_default()
                        }
                        _ => Vec::new(),
                    };
                    return Err(signed_out(&request, &state, fields, false, next));
                }
                other => other?,
            };
            let state = state_of(&request)?;
            let body = body.await.map_err(|_| WebError::BadRequest("the form is too large".into()))?;
            ensure_form_content_type(&request)?;
            let pairs = form_pairs(&body)?;
            if !csrf_accepted(&state, &request, field(&pairs, CSRF_FIELD).unwrap_or_default()) {
                return Err(csrf_refused());
            }
            let form = serde_urlencoded::from_bytes(&body)
                // Not serde's message: it may quote what was typed, and the error is logged.
                .map_err(|_| WebError::BadRequest("the form could not be read".into()))?;
            Ok(Submitted { session, form })
        })
    }
}

/// The most bytes one text field of a form with a file may hold (a CSRF token is 64).
pub const MAX_UPLOAD_FIELD_BYTES: usize = 4 * 1024;
/// The most text fields a form with a file may have.
pub const MAX_UPLOAD_FIELDS: usize = 32;

/// The file chosen in a form.
pub struct UploadedFile {
    /// The name the browser gave it (without its folders, as browsers send it).
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A form with a file (`multipart/form-data`) sent by a signed-in user with a valid CSRF token:
/// small text fields, read into `T` as [`Submitted`] reads a form (each at most
/// [`MAX_UPLOAD_FIELD_BYTES`]), and the part named `file`, at most [`MAX_ODS_FILE_BYTES`] as the
/// API takes (413 past it). Any other content type is a 400.
///
/// The token must come before the file: browsers send a form's fields in the order the form
/// lists them and the forms put it first, so an upload without a valid token is refused (403)
/// before its file is read.
pub struct Uploaded<T> {
    pub session: Session,
    pub form: T,
    /// `None` when no file was chosen (browsers then send an empty part without a name).
    pub file: Option<UploadedFile>,
}

fn unreadable_form(_: actix_multipart::MultipartError) -> WebError {
    WebError::BadRequest("the form could not be read".into())
}

/// A part's bytes, or `None` once they pass `limit` (the rest is not read).
async fn read_part(part: &mut actix_multipart::Field, limit: usize) -> WebResult<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = part.next().await {
        let chunk = chunk.map_err(unreadable_form)?;
        if bytes.len() + chunk.len() > limit {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

impl<T: DeserializeOwned + 'static> FromRequest for Uploaded<T> {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Uploaded<T>, WebError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = Session::from_request(request, payload);
        let payload = payload.take();
        let request = request.clone();
        Box::pin(async move {
            let session = match session.await {
                Err(WebError::SignIn { next }) => {
                    let state = state_of(&request)?;
                    // Nothing is read of a form that could not be kept: anyone may send one.
                    if !could_be_kept(&request, &state) {
                        return Err(WebError::SignIn { next });
                    }
                    let (fields, file_chosen) =
                        text_fields_of_upload(&request, &state, payload).await.unwrap_or_default();
                    return Err(signed_out(&request, &state, fields, file_chosen, next));
                }
                other => other?,
            };
            let state = state_of(&request)?;
            ensure_content_type(&request, "multipart/form-data")?;
            let mut parts = actix_multipart::Multipart::new(request.headers(), payload);
            let (mut fields, mut file, mut token_accepted) = (Vec::<(String, String)>::new(), None, false);
            while let Some(part) = parts.next().await {
                let mut part = part.map_err(unreadable_form)?;
                let name = part.name().unwrap_or_default().to_owned();
                if name == "file" {
                    if !token_accepted {
                        return Err(csrf_refused());
                    }
                    if file.is_some() {
                        return Err(WebError::BadRequest("the form has more than one file".into()));
                    }
                    let file_name = part
                        .content_disposition()
                        .and_then(|d| d.get_filename())
                        .unwrap_or_default()
                        .to_owned();
                    let bytes = read_part(&mut part, MAX_ODS_FILE_BYTES).await?.ok_or(WebError::TooLarge)?;
                    file = Some(UploadedFile { name: file_name, bytes });
                    continue;
                }
                if fields.len() == MAX_UPLOAD_FIELDS {
                    return Err(WebError::BadRequest("the form has too many fields".into()));
                }
                let too_long = || WebError::BadRequest(format!("the form's field {name:?} is too long"));
                let bytes = read_part(&mut part, MAX_UPLOAD_FIELD_BYTES).await?.ok_or_else(too_long)?;
                let value = String::from_utf8(bytes)
                    .map_err(|_| WebError::BadRequest("the form could not be read".into()))?;
                if name == CSRF_FIELD {
                    if !csrf_accepted(&state, &request, &value) {
                        return Err(csrf_refused());
                    }
                    token_accepted = true;
                }
                fields.push((name, value));
            }
            if !token_accepted {
                return Err(csrf_refused());
            }
            // The fields as a form would send them, so that `T` reads them as `Submitted` does.
            let encoded = serde_urlencoded::to_string(&fields)
                .map_err(|_| WebError::BadRequest("the form could not be read".into()))?;
            let form = serde_urlencoded::from_str(&encoded)
                // Not serde's message: it may quote what was typed, and the error is logged.
                .map_err(|_| WebError::BadRequest("the form could not be read".into()))?;
            let file = file.filter(|f: &UploadedFile| !(f.name.is_empty() && f.bytes.is_empty()));
            Ok(Uploaded { session, form, file })
        })
    }
}

/// Whether a form sent without a session could be kept: it came with an ended session's cookie
/// whose token names its user, to a page whose forms are kept ([`signed_out`] also checks the
/// form's CSRF token).
fn could_be_kept(request: &HttpRequest, state: &AppState) -> bool {
    let cookie = request.cookie(SESSION_COOKIE);
    let token = cookie.as_ref().and_then(|c| c.value().split_once('.')).map(|(_, token)| token);
    kept_form::keepable(request)
        && token.is_some_and(|token| claims::former_subject(&state.auth, token).is_some())
}

/// The text fields of a form with a file sent without a session, and whether a file was chosen:
/// what `kept_form` keeps of it. The file is read past, not kept (the forms put it before some
/// of their fields), and only after the ended session's CSRF token, as [`Uploaded`] reads it.
/// `None` for a form that `Uploaded` would refuse.
async fn text_fields_of_upload(
    request: &HttpRequest,
    state: &AppState,
    payload: Payload,
) -> Option<(Vec<(String, String)>, bool)> {
    ensure_content_type(request, "multipart/form-data").ok()?;
    let mut parts = actix_multipart::Multipart::new(request.headers(), payload);
    let (mut fields, mut file_chosen, mut token_accepted) = (Vec::new(), false, false);
    while let Some(part) = parts.next().await {
        let mut part = part.ok()?;
        let name = part.name().unwrap_or_default().to_owned();
        if name == "file" {
            if !token_accepted {
                return None;
            }
            file_chosen |= part
                .content_disposition()
                .and_then(|d| d.get_filename())
                .is_some_and(|name| !name.is_empty());
            let mut read = 0;
            while let Some(chunk) = part.next().await {
                read += chunk.ok()?.len();
                if read > MAX_ODS_FILE_BYTES {
                    return None;
                }
            }
            continue;
        }
        if fields.len() == MAX_UPLOAD_FIELDS {
            return None;
        }
        let bytes = read_part(&mut part, MAX_UPLOAD_FIELD_BYTES).await.ok()??;
        let value = String::from_utf8(bytes).ok()?;
        token_accepted |= name == CSRF_FIELD && csrf_accepted(state, request, &value);
        fields.push((name, value));
    }
    Some((fields, file_chosen))
}

/// The CSRF token for a form shown before signing in other than the sign-in form (which has its
/// own cookie): bound, as the sign-in form's is, to a random value in a short-lived cookie called
/// `cookie_name`, which the page sets, and to `purpose`. Returns the token and the cookie.
pub(crate) fn signed_out_form(
    request: &HttpRequest,
    config: &AuthConfig,
    cookie_name: &'static str,
    purpose: &str,
) -> (String, Cookie<'static>) {
    let value = random_hex(16);
    let mut bound = cookie(cookie_name, value.clone(), request);
    bound.set_max_age(CookieDuration::hours(1));
    (csrf_token_for(config, purpose, &value), bound)
}

/// Whether a form sent before signing in carries the token [`signed_out_form`] gave its page,
/// and is sent as a form.
pub(crate) fn signed_out_form_accepted(
    request: &HttpRequest,
    config: &AuthConfig,
    cookie_name: &'static str,
    purpose: &str,
    token: &str,
) -> WebResult<()> {
    ensure_form_content_type(request)?;
    let bound = request.cookie(cookie_name);
    let value = bound.as_ref().map(|c| c.value().to_owned()).unwrap_or_default();
    if value.is_empty() || !csrf_token_matches(config, purpose, &value, token) {
        return Err(csrf_refused());
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf_token: String,
    next: String,
    email: String,
    error: Option<String>,
    signed_out: bool,
    /// Signed out by changing their password (`web::account`): every session ended.
    password_changed: bool,
    /// Signed out by resetting a forgotten password (`web::password_reset`): every session ended.
    password_reset: bool,
    /// Why they must sign in again, when a form they sent is kept meanwhile.
    kept_form: Option<kept_form::KeptNotice>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
    password_changed: Option<String>,
    password_reset: Option<String>,
}

/// The sign-in page. It sets a short-lived random cookie that its form's CSRF token is bound to.
pub async fn login_page(request: HttpRequest, query: web::Query<LoginQuery>) -> WebResult<HttpResponse> {
    let state = state_of(&request)?;
    let query = query.into_inner();
    let value = random_hex(16);
    let kept = KeptForm::of_request(&request, &state.auth.kept_form_key);
    let page = LoginPage {
        chrome: Chrome::anonymous("Sign in"),
        csrf_token: csrf_token_for(&state.auth, "sign-in", &value),
        next: local_path(query.next.as_deref()),
        email: String::new(),
        error: None,
        signed_out: query.signed_out.is_some(),
        password_changed: query.password_changed.is_some(),
        password_reset: query.password_reset.is_some(),
        kept_form: kept.map(|kept| kept.notice(state.auth.token_lifetime.as_secs() / 60)),
    };
    let mut response = render(StatusCode::OK, &page)?;
    let mut sign_in_cookie = cookie(SIGN_IN_COOKIE, value, &request);
    sign_in_cookie.set_max_age(CookieDuration::hours(1));
    response.add_cookie(&sign_in_cookie).map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(response)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    csrf_token: String,
}

/// Signs in through the same path as the API's token endpoint (`auth::sign_in`), then keeps
/// the token in the session cookie.
pub async fn login(request: HttpRequest, body: web::Bytes) -> WebResult<HttpResponse> {
    let state = state_of(&request)?;
    ensure_form_content_type(&request)?;
    let form: LoginForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| WebError::BadRequest("the form could not be read".into()))?;
    let bound = request.cookie(SIGN_IN_COOKIE);
    let bound_value = bound.as_ref().map(|c| c.value().to_owned()).unwrap_or_default();
    if bound_value.is_empty() || !csrf_token_matches(&state.auth, "sign-in", &bound_value, &form.csrf_token) {
        return Err(csrf_refused());
    }
    let next = local_path(Some(&form.next));
    let address = state.trusted_proxies.address_key(&request);
    let email = form.email.trim().to_owned();
    let failure = |message: &str| LoginPage {
        chrome: Chrome::anonymous("Sign in"),
        csrf_token: form.csrf_token.clone(),
        next: next.clone(),
        email: email.clone(),
        error: Some(message.to_owned()),
        signed_out: false,
        password_changed: false,
        password_reset: false,
        kept_form: None,
    };
    if email.is_empty() || form.password.is_empty() {
        return render(StatusCode::UNPROCESSABLE_ENTITY, &failure("Enter your email address and password"));
    }
    match sign_in(&state, email.clone(), form.password, &address).await {
        Ok(issued) => {
            let session_id = random_hex(16);
            // A kept form brings its author back to it; anyone else never sees it, nor where
            // it was (the start page instead).
            let kept = KeptForm::of_request(&request, &state.auth.kept_form_key);
            let (next, drop_kept) = match kept {
                Some(kept) if kept.belongs_to(issued.user_id) => (kept.page().to_owned(), false),
                Some(_) => ("/".to_owned(), true),
                None => (next, request.cookie(KEPT_FORM_COOKIE).is_some()),
            };
            let mut response = see_other(&next);
            response
                .add_cookie(&cookie_for_session(&request, &session_id, &issued.token))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            let _ = response.add_removal_cookie(&Cookie::build(SIGN_IN_COOKIE, "").path("/").finish());
            if drop_kept {
                let _ = response.add_removal_cookie(&kept_form::removal());
            }
            Ok(response)
        }
        Err(ApiError::Unauthorized) => {
            render(StatusCode::UNAUTHORIZED, &failure("The email address or password is not correct"))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    chrome: Chrome,
}

/// Asks to confirm signing out (signing out itself is a form post, so that it carries a token).
pub async fn logout_page(session: Session) -> WebResult<HttpResponse> {
    render(StatusCode::OK, &LogoutPage { chrome: Chrome::for_session("Sign out", &session, "/logout") })
}

#[derive(Deserialize)]
pub struct NoFields {}

/// Signs out: the account's token generation moves on, so the session's token (and every other
/// token of the account, on every instance) is refused from now on, and the cookie is removed.
pub async fn logout(state: web::Data<AppState>, submitted: Submitted<NoFields>) -> WebResult<HttpResponse> {
    let user = &submitted.session.user;
    let (actor, id) = (user.actor(), user.id());
    state.run(move |db| db::users::end_sessions(db, &actor, id)).await?;
    let mut response = see_other("/login?signed_out=1");
    let _ = response.add_removal_cookie(&session_cookie_template());
    let _ = response.add_removal_cookie(&kept_form::removal());
    Ok(response)
}

#[derive(Deserialize)]
pub struct RenewForm {
    /// The page to go back to, for a browser that sent the form without the page's script.
    #[serde(default)]
    next: String,
}

/// The new end of a renewed session, for the page's script.
#[derive(serde::Serialize)]
struct Renewed {
    expires_in: u64,
}

/// `POST /session/renew`, the timeout warning's "Stay signed in": a new token for the same
/// session (the same id, so the page's CSRF token still holds), so that the idle time starts
/// again. The page's script asks for JSON and is told how long the session now lasts; a form
/// sent without it goes back to its page. An ended session cannot be renewed: that takes signing
/// in (`Submitted` answers as for any form).
pub async fn renew(request: HttpRequest, submitted: Submitted<RenewForm>) -> WebResult<HttpResponse> {
    let state = state_of(&request)?;
    let principal = &submitted.session.user.principal;
    let issued = claims::issue(&state.auth, principal.user_id, principal.token_generation)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let wants_json = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    let mut response = if wants_json {
        HttpResponse::Ok().json(Renewed { expires_in: issued.expires_in })
    } else {
        see_other(&local_path(Some(&submitted.form.next)))
    };
    response
        .add_cookie(&cookie_for_session(&request, &submitted.session.id, &issued.token))
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;

    fn new_config() -> AuthConfig {
        AuthConfig::new(Secret::random()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_session_and_purpose() {
        let config = new_config();
        let token = csrf_token_for(&config, "session", "abc");
        assert!(csrf_token_matches(&config, "session", "abc", &token));
        assert!(!csrf_token_matches(&config, "session", "abd", &token));
        assert!(!csrf_token_matches(&config, "sign-in", "abc", &token));
        assert!(!csrf_token_matches(&config, "session", "abc", ""));
        assert!(!csrf_token_matches(&config, "session", "abc", "zz"));
        assert!(!csrf_token_matches(&config, "session", "abc", &token[..10]));
        assert!(!csrf_token_matches(&new_config(), "session", "abc", &token), "another key");
    }
}
