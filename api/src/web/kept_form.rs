//! A form sent after its session ended is kept, not lost, and given back after signing in again.
//!
//! A session ends after up to 15 minutes without activity (the token's life; it is renewed once half
//! of that has passed, so from 7½ minutes on) or when its account signs
//! out elsewhere. A form sent then used to send its author to sign in with no word of why, drop
//! what they typed and land them on the start page. Now the form extractors (`Submitted`,
//! `Uploaded` in `session.rs`) keep its fields in a private cookie, bound to the user whose ended
//! session sent it, and send them to sign in with a message saying why. When that same user signs
//! in again they are brought back to the form's page, and [`restore_kept_form`] puts their
//! answers back into its form, with a banner asking them to check it and send it again.
//!
//! - Not sent again by itself: the form was written against what the page showed up to a
//!   quarter of an hour before (seats left, a standard's current version), and many forms are
//!   consequential (release seats, publish, disable a user). The person checks and sends it, with
//!   a fresh CSRF token, so CSRF is checked on what is finally sent as on any form.
//! - Only its author sees it: it is kept only for a form that came with its session cookie and
//!   that session's CSRF token (so never for a cross-site post, which carries neither), is bound to
//!   the user that session's token names (`claims::former_subject`), and is removed, unseen, when
//!   anyone else signs in or is signed in on that browser.
//! - Nothing that must not sit in a browser: no password, no CSRF token, no file (the page asks
//!   for the file again). The cookie is encrypted and authenticated (AES-256-GCM, a key derived
//!   from the signing secret): the browser can neither read nor forge it. It is `HttpOnly`,
//!   `SameSite=Strict` like the session's, and holds for [`KEPT_FOR_SECONDS`], also checked inside.
//! - A cookie, not a table: the service keeps no state but the database, and a form one browser
//!   keeps for minutes needs no sharing between instances. One cookie holds about 4 KB, so a form
//!   is kept only when sealed it fits in [`MAX_SEALED_BYTES`]; a longer one is refused (413) with
//!   a page that says how to recover what was typed.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::cookie::{Cookie, CookieJar, Key};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use askama::Template;
use lol_html::html_content::{ContentType, Element};
use lol_html::{RewriteStrSettings, element, end_tag, rewrite_str};
use serde::{Deserialize, Serialize};

use crate::auth::claims::FormerSubject;
use crate::state::AppState;
use crate::web::{PageMethod, ROUTES, local_path};

pub const KEPT_FORM_COOKIE: &str = "catalogue_kept_form";
/// How long a kept form waits for its author to sign in again.
pub const KEPT_FOR_SECONDS: u64 = 20 * 60;
/// The most a sealed form may take: browsers keep a cookie of at most 4,096 bytes, its name
/// and attributes included.
pub const MAX_SEALED_BYTES: usize = 3_800;
/// Forms that are never kept: nothing was typed into them, and neither means anything once the
/// session has ended.
const NEVER_KEPT: &[&str] = &["/logout", "/session/renew"];

/// What was typed into a form sent after its session ended, and whose it is. No `Debug`, so that
/// it cannot be logged by mistake.
#[derive(Serialize, Deserialize)]
pub struct KeptForm {
    /// The user whose session sent it: only they get it back.
    user: i64,
    /// Where the form posts to: the form of the page that it is put back into.
    action: String,
    /// The page the form is on (a local path), where its author is brought back to.
    page: String,
    fields: Vec<(String, String)>,
    /// A file was chosen, and must be chosen again.
    file_left_out: bool,
    /// A password was typed, and must be typed again.
    password_left_out: bool,
    /// The session ended by being left idle (otherwise: signed out elsewhere, or the account
    /// changed), to tell the person why.
    timed_out: bool,
    /// Seconds since the Unix epoch after which it is dropped.
    until: u64,
}

/// The cookie holding a kept form, as sent with the answer that asks its author to sign in.
/// Its `Debug` shows nothing of it; boxed, as errors are passed by value.
pub struct KeptCookie(pub Box<Cookie<'static>>);

impl std::fmt::Debug for KeptCookie {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("KeptCookie(..)")
    }
}

/// The user a request was signed in as, put in its extensions by the `Session` extractor, so
/// that [`restore_kept_form`] gives a kept form back to no one else.
#[derive(Clone, Copy)]
pub struct SignedInUser(pub i64);

/// Whether a form sent to `request`'s path may be kept at all.
pub fn keepable(request: &HttpRequest) -> bool {
    !NEVER_KEPT.contains(&request.path())
}

/// The page a form sent with `request` is on, to come back to after signing in: the page that
/// sent it (the pages' `Referrer-Policy: same-origin` gives its path to this site only), else the
/// path the form posts to when that is also a page, else the start page. Always a local path.
pub fn form_page(request: &HttpRequest) -> String {
    if let Some(page) = referring_page(request) {
        return page;
    }
    let pattern = request.match_pattern();
    let is_page =
        ROUTES.iter().any(|route| route.method == PageMethod::Get && Some(route.path) == pattern.as_deref());
    local_path(Some(if is_page { request.path() } else { "/" }))
}

/// The path and query of the `Referer`, when it is a page of this host.
fn referring_page(request: &HttpRequest) -> Option<String> {
    let referer = request.headers().get(header::REFERER)?.to_str().ok()?;
    let (_, after_scheme) = referer.split_once("://")?;
    let slash = after_scheme.find('/')?;
    let (authority, path) = after_scheme.split_at(slash);
    // The host as the request names it (an HTTP/2 request has no Host header; behind a proxy,
    // the forwarded host). Whatever it says, the answer is a local path.
    let connection = request.connection_info();
    (authority.eq_ignore_ascii_case(connection.host()) && path != "/login").then(|| local_path(Some(path)))
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

impl KeptForm {
    /// The form `fields` (the CSRF token already taken out) sent to `request` by `former`'s ended
    /// session. Passwords are left out, whatever the form.
    pub fn new(
        request: &HttpRequest,
        former: &FormerSubject,
        fields: Vec<(String, String)>,
        file_left_out: bool,
    ) -> KeptForm {
        let is_password = |name: &str| name.to_ascii_lowercase().contains("password");
        let password_left_out = fields.iter().any(|(name, value)| is_password(name) && !value.is_empty());
        let fields = fields.into_iter().filter(|(name, _)| !is_password(name)).collect();
        KeptForm {
            user: former.user_id,
            action: request.path().to_owned(),
            page: form_page(request),
            fields,
            file_left_out,
            password_left_out,
            timed_out: former.expired,
            until: now() + KEPT_FOR_SECONDS,
        }
    }

    /// The page to bring its author back to.
    pub fn page(&self) -> &str {
        &self.page
    }

    /// Whether it is `user_id`'s.
    pub fn belongs_to(&self, user_id: i64) -> bool {
        self.user == user_id
    }

    /// The cookie's value: the form encrypted and authenticated with `key`. `None` when it is
    /// too long to keep in a cookie.
    pub fn seal(&self, key: &Key) -> Option<String> {
        let plain = serde_json::to_string(self).ok()?;
        let mut jar = CookieJar::new();
        jar.private_mut(key).add(Cookie::new(KEPT_FORM_COOKIE, plain));
        let sealed = jar.get(KEPT_FORM_COOKIE)?.value().to_owned();
        (sealed.len() <= MAX_SEALED_BYTES).then_some(sealed)
    }

    /// The form a cookie value holds: `None` when it was not sealed with `key` (forged, altered,
    /// or from another deployment), cannot be read, or is past its time.
    pub fn open(key: &Key, sealed: &str) -> Option<KeptForm> {
        let opened =
            CookieJar::new().private(key).decrypt(Cookie::new(KEPT_FORM_COOKIE, sealed.to_owned()))?;
        let kept: KeptForm = serde_json::from_str(opened.value()).ok()?;
        (now() < kept.until).then_some(kept)
    }

    /// The form kept in `request`'s cookie, if any (see [`KeptForm::open`]).
    pub fn of_request(request: &HttpRequest, key: &Key) -> Option<KeptForm> {
        KeptForm::open(key, request.cookie(KEPT_FORM_COOKIE)?.value())
    }

    /// What the sign-in page tells its author: why they must sign in, and that the form is kept.
    pub fn notice(&self, idle_minutes: u64) -> KeptNotice {
        let why = if self.timed_out {
            // A session is renewed once half its token's life has passed, so it ends after
            // between half of `idle_minutes` and all of it without activity: "up to".
            format!("You were signed out after up to {idle_minutes} minutes without activity.")
        } else {
            "You were signed out, on this computer or another, or your account was changed.".to_owned()
        };
        let file = if self.file_left_out { " You will need to choose the file again." } else { "" };
        KeptNotice {
            heading: "Your form has not been sent yet".to_owned(),
            detail: format!(
                "{why} Sign in again to send the form you were filling in: what you typed is kept for {} \
                 minutes and will be put back into the form.{file}",
                KEPT_FOR_SECONDS / 60
            ),
        }
    }

    /// `html` with what was typed put back into the form(s) posting to the kept form's action, and
    /// a banner at the top of the page's main content. `None` when the page has no such form.
    ///
    /// Text fields and text areas get their typed value; checkboxes, radios and options are
    /// chosen exactly as they were sent. Hidden fields (the fresh CSRF token, ids) keep the page's
    /// values, and password and file fields stay empty.
    pub fn put_back(&self, html: &str) -> Result<Option<String>, lol_html::errors::RewritingError> {
        let mut typed: HashMap<&str, Vec<&str>> = HashMap::new();
        for (name, value) in &self.fields {
            typed.entry(name.as_str()).or_default().push(value.as_str());
        }
        let in_form = Rc::new(Cell::new(false));
        let forms_found = Rc::new(Cell::new(0usize));
        // How many text fields of each name have been filled: a name may repeat.
        let filled: Rc<RefCell<HashMap<String, usize>>> = Rc::default();
        let select_name: Rc<RefCell<Option<String>>> = Rc::default();
        let banner =
            KeptFormBanner { file_left_out: self.file_left_out, password_left_out: self.password_left_out }
                .render()
                .map_err(|e| lol_html::errors::RewritingError::ContentHandlerError(e.into()))?;
        let typed = &typed;
        let settings = RewriteStrSettings::new()
            .append_element_content_handler(element!("form", {
                let (in_form, forms_found) = (in_form.clone(), forms_found.clone());
                move |form| {
                    let targeted = form.get_attribute("action").as_deref() == Some(self.action.as_str());
                    in_form.set(targeted);
                    if targeted {
                        forms_found.set(forms_found.get() + 1);
                        let in_form = in_form.clone();
                        form.on_end_tag(end_tag!(move |_| {
                            in_form.set(false);
                            Ok(())
                        }))?;
                    }
                    Ok(())
                }
            }))
            .append_element_content_handler(element!("input", {
                let (in_form, filled) = (in_form.clone(), filled.clone());
                move |input| {
                    if in_form.get() {
                        put_back_input(input, typed, &mut filled.borrow_mut())?;
                    }
                    Ok(())
                }
            }))
            .append_element_content_handler(element!("textarea", {
                let (in_form, filled) = (in_form.clone(), filled.clone());
                move |area| {
                    if let (true, Some(name)) = (in_form.get(), area.get_attribute("name"))
                        && let Some(value) = next_value(typed, &name, &mut filled.borrow_mut())
                    {
                        area.set_inner_content(value, ContentType::Text);
                    }
                    Ok(())
                }
            }))
            .append_element_content_handler(element!("select", {
                let (in_form, select_name) = (in_form.clone(), select_name.clone());
                move |select| {
                    let name = select.get_attribute("name").filter(|_| in_form.get());
                    *select_name.borrow_mut() = name;
                    let select_name = select_name.clone();
                    select.on_end_tag(end_tag!(move |_| {
                        *select_name.borrow_mut() = None;
                        Ok(())
                    }))?;
                    Ok(())
                }
            }))
            .append_element_content_handler(element!("option", {
                let select_name = select_name.clone();
                move |option| {
                    let name = select_name.borrow().clone();
                    if let Some(values) = name.and_then(|name| typed.get(name.as_str()))
                        && let Some(value) = option.get_attribute("value")
                    {
                        choose(option, "selected", values.iter().any(|typed| escaped(typed) == value))?;
                    }
                    Ok(())
                }
            }))
            .append_element_content_handler(element!("main", move |main| {
                main.prepend(&banner, ContentType::Html);
                Ok(())
            }));
        let rewritten = rewrite_str(html, settings)?;
        Ok((forms_found.get() > 0).then_some(rewritten))
    }
}

/// The sign-in page's notice about a kept form.
pub struct KeptNotice {
    pub heading: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "kept_form_banner.html")]
struct KeptFormBanner {
    file_left_out: bool,
    password_left_out: bool,
}

/// A value as askama writes it into an attribute, to compare with the page's raw attribute text
/// and to write into one (lol_html takes attribute values as HTML and escapes only quotes).
fn escaped(value: &str) -> String {
    askama::filters::escape(value, askama::filters::Html).map(|safe| safe.to_string()).unwrap_or_default()
}

/// The next typed value for a field called `name` (the first, then the second, ...).
fn next_value<'a>(
    typed: &HashMap<&str, Vec<&'a str>>,
    name: &str,
    filled: &mut HashMap<String, usize>,
) -> Option<&'a str> {
    let values = typed.get(name)?;
    let index = filled.entry(name.to_owned()).or_default();
    let value = values.get(*index).copied();
    *index += 1;
    value
}

fn choose(element: &mut Element<'_, '_>, attribute: &str, chosen: bool) -> lol_html::HandlerResult {
    if chosen {
        element.set_attribute(attribute, "")?;
    } else {
        element.remove_attribute(attribute);
    }
    Ok(())
}

fn put_back_input(
    input: &mut Element<'_, '_>,
    typed: &HashMap<&str, Vec<&str>>,
    filled: &mut HashMap<String, usize>,
) -> lol_html::HandlerResult {
    let Some(name) = input.get_attribute("name") else { return Ok(()) };
    let kind = input.get_attribute("type").unwrap_or_else(|| "text".to_owned()).to_ascii_lowercase();
    match kind.as_str() {
        "hidden" | "password" | "file" | "submit" | "button" | "image" | "reset" => {}
        "checkbox" | "radio" => {
            let value = input.get_attribute("value").unwrap_or_else(|| "on".to_owned());
            let sent =
                typed.get(name.as_str()).is_some_and(|values| values.iter().any(|v| escaped(v) == value));
            choose(input, "checked", sent)?;
        }
        _ => {
            if let Some(value) = next_value(typed, &name, filled) {
                input.set_attribute("value", &escaped(value))?;
            }
        }
    }
    Ok(())
}

/// Middleware: on a page read by the signed-in author of a kept form, at the page the form is
/// on, puts what they typed back into the form ([`KeptForm::put_back`]) and drops the cookie.
/// Anyone else signed in on that browser never sees it: the cookie is dropped. Every other answer
/// passes untouched, and nothing is read from its body.
pub async fn restore_kept_form(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let candidate = request.method() == Method::GET && request.cookie(KEPT_FORM_COOKIE).is_some();
    let response = next.call(request).await?;
    let signed_in = response.request().extensions().get::<SignedInUser>().copied();
    let (Some(SignedInUser(user_id)), true) = (signed_in, candidate) else {
        return Ok(response.map_into_left_body());
    };
    let state = response.request().app_data::<web::Data<AppState>>().cloned();
    let kept = state.and_then(|state| KeptForm::of_request(response.request(), &state.auth.kept_form_key));
    let here = response.request().uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let is_page = response.status() == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
    match kept {
        // Its author, elsewhere on the site: the form waits for its page.
        Some(kept) if kept.belongs_to(user_id) && !(is_page && kept.page == here) => {
            Ok(response.map_into_left_body())
        }
        Some(kept) if kept.belongs_to(user_id) => {
            let (request, response) = response.into_parts();
            let (mut response, body) = response.into_parts();
            let body = actix_web::body::to_bytes(body)
                .await
                .map_err(|_| actix_web::error::ErrorInternalServerError("the page could not be read"))?;
            let page = String::from_utf8_lossy(&body);
            let restored = match kept.put_back(&page) {
                Ok(Some(restored)) => restored.into_bytes().into(),
                // The page no longer has the form (or could not be rewritten): shown as it is.
                Ok(None) | Err(_) => body,
            };
            drop_kept_form(&mut response)?;
            Ok(ServiceResponse::new(request, response.set_body(BoxBody::new(restored))).map_into_right_body())
        }
        // Someone else's, unreadable or past its time.
        _ => {
            let mut response = response.map_into_left_body();
            drop_kept_form(response.response_mut())?;
            Ok(response)
        }
    }
}

fn drop_kept_form<B>(response: &mut actix_web::HttpResponse<B>) -> Result<(), actix_web::Error> {
    response.add_removal_cookie(&removal())?;
    Ok(())
}

/// The kept form's cookie name and path, to remove it.
pub fn removal() -> Cookie<'static> {
    Cookie::build(KEPT_FORM_COOKIE, "").path("/").finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(fields: &[(&str, &str)]) -> KeptForm {
        KeptForm {
            user: 7,
            action: "/organisations/RR8/purchases".into(),
            page: "/organisations/RR8/purchases/new".into(),
            fields: fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            file_left_out: false,
            password_left_out: false,
            timed_out: true,
            until: now() + 60,
        }
    }

    const PAGE: &str = r#"<html><body><main id="maincontent">
<form action="/search" method="get"><input name="reference" value=""></form>
<form action="/organisations/RR8/purchases" method="post">
<input type="hidden" name="csrf_token" value="fresh">
<input name="reference" type="text" value="">
<input name="password" type="password">
<textarea name="note">old</textarea>
<input type="checkbox" name="kinds" value="trust" checked>
<input type="checkbox" name="kinds" value="icb">
<input type="radio" name="tier" value="a &#38; b">
<select name="level"><option value="must" selected>Must</option><option value="should">Should</option></select>
</form></main></body></html>"#;

    #[test]
    fn typed_values_go_back_into_the_form_that_was_sent_and_no_other() {
        let form = kept(&[
            ("reference", r#"PO "7" <b>&</b>"#),
            ("note", "</textarea><script>alert(1)</script>"),
            ("kinds", "icb"),
            ("tier", "a & b"),
            ("level", "should"),
            ("csrf_token", "stale"),
        ]);
        let page = form.put_back(PAGE).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("no form"));
        assert!(
            page.contains(r#"<form action="/search" method="get"><input name="reference" value=""></form>"#)
        );
        assert!(
            page.contains(
                r#"name="reference" type="text" value="PO &#34;7&#34; &#60;b&#62;&#38;&#60;/b&#62;""#
            ),
            "{page}"
        );
        assert!(page.contains("&lt;/textarea&gt;&lt;script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains(r#"name="csrf_token" value="fresh""#), "{page}");
        assert!(page.contains(r#"<input type="checkbox" name="kinds" value="trust">"#), "{page}");
        assert!(page.contains(r#"value="icb" checked="">"#), "{page}");
        assert!(page.contains(r#"value="a &#38; b" checked="">"#), "as askama writes it: {page}");
        assert!(
            page.contains(r#"<option value="must">Must</option><option value="should" selected="">"#),
            "{page}"
        );
        assert!(page.contains("Your form has not been sent"), "{page}");
    }

    #[test]
    fn a_page_without_the_form_is_not_changed() {
        let mut form = kept(&[("reference", "x")]);
        form.action = "/elsewhere".into();
        assert!(form.put_back(PAGE).unwrap_or_else(|e| panic!("{e}")).is_none());
    }

    #[test]
    fn a_sealed_form_opens_only_with_its_key_and_in_its_time() {
        let key = Key::generate();
        let sealed = kept(&[("reference", "PO-1")]).seal(&key).unwrap_or_else(|| panic!("not sealed"));
        assert!(!sealed.contains("PO-1"), "encrypted");
        let opened = KeptForm::open(&key, &sealed).unwrap_or_else(|| panic!("not opened"));
        assert_eq!(opened.fields, vec![("reference".to_owned(), "PO-1".to_owned())]);
        assert!(KeptForm::open(&Key::generate(), &sealed).is_none(), "another key");
        let mut altered = sealed.clone().into_bytes();
        altered[20] = if altered[20] == b'A' { b'B' } else { b'A' };
        assert!(KeptForm::open(&key, &String::from_utf8_lossy(&altered)).is_none(), "altered");
        let mut old = kept(&[]);
        old.until = now() - 1;
        let sealed = old.seal(&key).unwrap_or_else(|| panic!("not sealed"));
        assert!(KeptForm::open(&key, &sealed).is_none(), "past its time");
    }

    #[test]
    fn a_form_too_long_for_a_cookie_is_not_sealed() {
        let long = "x".repeat(MAX_SEALED_BYTES);
        assert!(kept(&[("note", &long)]).seal(&Key::generate()).is_none());
    }
}
