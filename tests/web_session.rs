//! The end of a page session, on both engines (issue 22): a form sent after the session ended is
//! kept, the sign-in page says why, and signing in again as the same user brings them back to
//! the form with what they typed (never the password) and a fresh CSRF token, to check and send
//! again; anyone else who signs in never sees it. The way back is always a page of this site; a
//! form too long to keep is refused with 413; a file must be chosen again. The timeout warning's
//! renewal needs the session's CSRF token and gives the session its full life again.

use catalogue_tests::{Role, TEST_PASSWORD, TestApp, TestUser, on_both_engines};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

use crate::web::{Browser, Page, Part};

const SESSION: &str = "catalogue_session";
const KEPT: &str = "catalogue_kept_form";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Replaces the token of `browser`'s session with one issued `age` seconds ago that expires at
/// `exp`, signed with the app's secret; the session id (and so its CSRF token) stays the same.
fn retime_session(app: &TestApp, browser: &mut Browser<'_>, age: u64, exp: u64) {
    let cookie = browser.cookie(SESSION).expect("a session cookie").to_owned();
    let (session_id, token) = cookie.split_once('.').expect("<session id>.<token>");
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    let mut claims: Value =
        jsonwebtoken::decode(token, &DecodingKey::from_secret(&app.jwt_secret).unwrap(), &validation)
            .unwrap()
            .claims;
    claims["iat"] = (now() - age).into();
    claims["exp"] = exp.into();
    let key = EncodingKey::from_secret(&app.jwt_secret).unwrap();
    let token = jsonwebtoken::encode(&Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap();
    browser.set_cookie(SESSION, &format!("{session_id}.{token}"));
}

/// The session ended 15 minutes after its last renewal, a minute ago.
fn end_session(app: &TestApp, browser: &mut Browser<'_>) {
    retime_session(app, browser, 16 * 60, now() - 60);
}

/// An admin signed in on the new-user page, with that page's CSRF token.
async fn admin_on_new_user_form(app: &TestApp) -> (TestUser, Browser<'_>, String) {
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(app);
    browser.sign_in(&admin).await;
    let form = browser.get("/users/new").await;
    assert_eq!(form.status, 200);
    let token = form.hidden("csrf_token");
    (admin, browser, token)
}

/// The new-user form as typed, with `token`.
fn new_user<'a>(token: &'a str, name: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", token),
        ("display_name", name),
        ("email", "ada.lovelace@rr8.test.nhs.uk"),
        ("role", "officer"),
        ("organisation_code", "RR8"),
        ("password", "a long secret passphrase 1843"),
    ]
}

/// Sends the new-user form from its page, as a browser does (it names the page in `Referer`).
async fn send_new_user(app: &TestApp, browser: &mut Browser<'_>, fields: &[(&str, &str)]) -> Page {
    let referer = app.url("/users/new");
    browser.post_with_headers("/users", fields, &[("referer", &referer)]).await
}

fn user_exists(app: &TestApp, email: &str) -> bool {
    app.with_connection(|conn| db::users::find_id_by_email(conn, email).is_ok())
}

async fn a_form_sent_after_the_session_ended_is_kept_and_given_back_to_its_author(app: TestApp) {
    let (admin, mut browser, token) = admin_on_new_user_form(&app).await;
    end_session(&app, &mut browser);
    let sent = send_new_user(&app, &mut browser, &new_user(&token, "Ada Lovelace")).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(sent.location(), "/login?next=%2Fusers%2Fnew", "back to the form's page");
    let kept = sent.cookie(KEPT).expect("the form is kept");
    for secret in ["Ada", "Lovelace", "passphrase", &token] {
        assert!(!kept.contains(secret), "the kept form is encrypted: {kept}");
    }
    assert!(!user_exists(&app, "ada.lovelace@rr8.test.nhs.uk"), "nothing was sent");

    let login = browser.get(sent.location()).await;
    assert_eq!(login.status, 200);
    assert!(
        login.body.contains("You were signed out after up to 15 minutes without activity."),
        "{}",
        login.body
    );
    assert!(login.body.contains("Sign in again to send the form you were filling in"));

    let signed_in = browser.sign_in(&admin).await;
    assert_eq!(signed_in.location(), "/users/new");
    let form = browser.get("/users/new").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Your form has not been sent yet"), "{}", form.body);
    assert!(form.body.contains(r#"value="Ada Lovelace""#), "{}", form.body);
    assert!(form.body.contains(r#"value="ada.lovelace@rr8.test.nhs.uk""#));
    assert!(form.body.contains(r#"value="RR8""#));
    assert!(
        form.body.contains(r#"value="officer" aria-describedby="role-officer-hint" checked"#),
        "{}",
        form.body
    );
    assert!(!form.body.contains("passphrase"), "a password is never kept");
    assert!(form.body.contains("Type the password again"));
    assert!(browser.cookie(KEPT).is_none(), "given back once, then dropped");
    let fresh = form.hidden("csrf_token");
    assert_ne!(fresh, token, "a new session, a new CSRF token");

    // CSRF holds for what is sent again: the old session's token is refused, the page's accepted.
    let stale = send_new_user(&app, &mut browser, &new_user(&token, "Ada Lovelace")).await;
    assert_eq!(stale.status, 403);
    let created = send_new_user(&app, &mut browser, &new_user(&fresh, "Ada Lovelace")).await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert!(user_exists(&app, "ada.lovelace@rr8.test.nhs.uk"));
    let again = browser.get("/users/new").await;
    assert!(!again.body.contains("Your form has not been sent yet"));
    assert!(!again.body.contains("Ada Lovelace"));
}

async fn a_kept_form_is_never_shown_to_someone_else(app: TestApp) {
    let (_, mut browser, token) = admin_on_new_user_form(&app).await;
    end_session(&app, &mut browser);
    let sent = send_new_user(&app, &mut browser, &new_user(&token, "Ada Lovelace")).await;
    let kept = sent.cookie(KEPT).expect("the form is kept");
    let kept = kept.split_once('=').map(|(_, value)| value.to_owned()).unwrap_or_default();

    // Another admin signs in on the same browser: the form is dropped, and where it was is not said.
    let other = app.create_user(Role::Admin, None);
    let signed_in = browser.sign_in(&other).await;
    assert_eq!(signed_in.location(), "/");
    assert!(browser.cookie(KEPT).is_none());
    let form = browser.get("/users/new").await;
    assert!(!form.body.contains("Ada Lovelace"), "{}", form.body);
    assert!(!form.body.contains("Your form has not been sent yet"));

    // Nor does the cookie, brought back, show it to them: it is dropped unseen.
    browser.set_cookie(KEPT, &kept);
    let form = browser.get("/users/new").await;
    assert_eq!(form.status, 200);
    assert!(!form.body.contains("Ada Lovelace"));
    assert!(browser.cookie(KEPT).is_none());

    // A forged or altered cookie is nobody's.
    browser.set_cookie(KEPT, &format!("{}A", &kept[..kept.len() - 1]));
    assert!(!browser.get("/users/new").await.body.contains("Ada Lovelace"));
    assert!(browser.cookie(KEPT).is_none());
}

async fn the_way_back_after_signing_in_never_leaves_the_site(app: TestApp) {
    let (admin, mut browser, token) = admin_on_new_user_form(&app).await;
    let fields = new_user(&token, "Ada Lovelace");
    for (referer, next) in [
        ("https://evil.example/users/new", "%2Fusers"),
        ("https://evil.example//users/new", "%2Fusers"),
        (&app.url("//evil.example/x")[..], "%2F"),
        (&app.url("/\\evil.example")[..], "%2F"),
    ] {
        end_session(&app, &mut browser);
        let sent = browser.post_with_headers("/users", &fields, &[("referer", referer)]).await;
        assert_eq!(sent.status, 303, "{referer}");
        assert_eq!(sent.location(), format!("/login?next={next}"), "{referer}");
        let back = browser.sign_in(&admin).await;
        assert!(back.location().starts_with('/') && !back.location().starts_with("//"), "{referer}");
        assert!(!back.location().contains("evil"), "{referer}: {}", back.location());
    }

    // Signed out, a page asked for is returned to after signing in; another site never is.
    let mut signed_out = Browser::new(&app);
    let asked = signed_out.get("/users/new?role=officer").await;
    assert_eq!(asked.location(), "/login?next=%2Fusers%2Fnew%3Frole%3Dofficer");
    let login = signed_out.get(asked.location()).await;
    let (token, next) = (login.hidden("csrf_token"), login.hidden("next"));
    let fields = [
        ("email", admin.email.as_str()),
        ("password", TEST_PASSWORD),
        ("csrf_token", &token),
        ("next", &next),
    ];
    assert_eq!(signed_out.post_form("/login", &fields).await.location(), "/users/new?role=officer");
    let mut signed_out = Browser::new(&app);
    let login = signed_out.get("/login?next=https://evil.example/").await;
    assert!(login.body.contains(r#"name="next" value="/""#), "{}", login.body);
}

async fn a_form_too_long_to_keep_is_refused_with_413(app: TestApp) {
    let (_, mut browser, token) = admin_on_new_user_form(&app).await;
    end_session(&app, &mut browser);
    let long = "Ada Lovelace ".repeat(400);
    let sent = send_new_user(&app, &mut browser, &new_user(&token, &long)).await;
    assert_eq!(sent.status, 413, "{}", sent.body);
    assert!(sent.body.contains("Your form could not be kept"));
    assert!(sent.body.contains(r#"href="/login?next=%2Fusers%2Fnew""#), "{}", sent.body);
    assert!(sent.cookie(KEPT).is_none());
    assert!(!sent.body.contains("Ada Lovelace"), "what was typed is not echoed");
}

async fn a_form_with_a_file_is_kept_without_its_file(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let token = browser.get("/organisations/RR8/estate").await.hidden("csrf_token");
    end_session(&app, &mut browser);
    // No Referer: the form posts to its own page's path, which is where it is given back.
    let fields = [
        ("csrf_token", token.as_str()),
        ("source", "intune"),
        ("taken_on-day", "31"),
        ("taken_on-month", "1"),
        ("taken_on-year", "2025"),
        ("dry_run", "yes"),
    ];
    let sent =
        browser.upload("/organisations/RR8/estate", &fields, Some(("estate.csv", "hostname\nPC1\n"))).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(sent.location(), "/login?next=%2Forganisations%2FRR8%2Festate");
    let login = browser.get(sent.location()).await;
    assert!(login.body.contains("You will need to choose the file again."), "{}", login.body);
    assert_eq!(browser.sign_in(&officer).await.location(), "/organisations/RR8/estate");
    let page = browser.get("/organisations/RR8/estate").await;
    assert!(page.body.contains("Choose the file again"), "{}", page.body);
    for (part, typed) in [("day", "31"), ("month", "1"), ("year", "2025")] {
        assert_eq!(input_value(&page, &format!("taken_on-{part}")), typed, "{}", page.body);
    }
    assert!(
        page.body.contains(r#"value="intune" aria-describedby="source-intune-hint" checked"#),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(r#"aria-describedby="source-catalogue-hint" checked"#),
        "the page's default unchosen"
    );
    assert!(page.body.contains(r#"aria-describedby="dry_run-hint" checked"#));
    assert!(!page.body.contains("PC1"));

    // A file before the token: not read past (anyone may send a signed-out upload), not kept.
    let mut other = Browser::new(&app);
    other.sign_in(&officer).await;
    let token = other.get("/organisations/RR8/estate").await.hidden("csrf_token");
    end_session(&app, &mut other);
    let file_first = other
        .upload_parts(
            "/organisations/RR8/estate",
            &[Part::File("estate.csv", "hostname\nPC1\n"), Part::Field("csrf_token", &token)],
        )
        .await;
    assert_eq!(file_first.status, 303, "{}", file_first.body);
    let login = other.get(file_first.location()).await;
    assert!(login.body.contains("Sign in"), "{}", login.body);
    assert!(!login.body.contains("Sign in again to send the form"), "{}", login.body);
}

/// The value of the input named `name` (its tag's `value` attribute).
fn input_value(page: &Page, name: &str) -> String {
    let marker = format!(r#"name="{name}""#);
    let at = page.body.find(&marker).unwrap_or_else(|| panic!("no input {name}: {}", page.body));
    let tag_start = page.body[..at].rfind('<').unwrap_or_default();
    let tag = &page.body[tag_start..tag_start + page.body[tag_start..].find('>').unwrap_or_default()];
    tag.split(r#"value=""#).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default().to_owned()
}

/// The `data-ends-in` the page's timeout warning counts down from.
fn ends_in(page: &Page) -> u64 {
    let marker = r#"data-ends-in=""#;
    let start =
        page.body.find(marker).unwrap_or_else(|| panic!("no timeout warning: {}", page.body)) + marker.len();
    page.body[start..].split('"').next().unwrap_or_default().parse().unwrap_or_else(|e| panic!("{e}"))
}

async fn renewing_the_session_needs_its_csrf_token_and_starts_its_time_again(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let page = browser.get("/").await;
    let token = page.hidden("csrf_token");
    assert!((895..=900).contains(&ends_in(&page)), "a fresh session has 15 minutes");
    assert!(page.body.contains(r#"data-warn-before="120""#));
    // A minute left (and issued too recently to be renewed by reading a page).
    retime_session(&app, &mut browser, 60, now() + 60);
    let page = browser.get("/").await;
    assert!((55..=60).contains(&ends_in(&page)), "{}", ends_in(&page));
    let before = browser.cookie(SESSION).map(str::to_owned);

    let json = [("accept", "application/json")];
    for fields in [vec![], vec![("csrf_token", "00ff")]] {
        let refused = browser.post_with_headers("/session/renew", &fields, &json).await;
        assert_eq!(refused.status, 403, "{fields:?}");
        assert_eq!(browser.cookie(SESSION).map(str::to_owned), before, "not renewed");
    }
    let renewed = browser.post_with_headers("/session/renew", &[("csrf_token", &token)], &json).await;
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let body: Value = serde_json::from_str(&renewed.body).unwrap();
    assert_eq!(body["expires_in"], 900);
    assert!(renewed.cookie(SESSION).is_some());
    assert_ne!(browser.cookie(SESSION).map(str::to_owned), before);
    let page = browser.get("/").await;
    assert!((895..=900).contains(&ends_in(&page)), "{}", ends_in(&page));
    assert_eq!(page.hidden("csrf_token"), token, "the same session: its forms' token still holds");

    // Without the page's script: back to the page, a page of this site only.
    let back = browser.post_form("/session/renew", &[("csrf_token", &token), ("next", "/agreements")]).await;
    assert_eq!((back.status.as_u16(), back.location()), (303, "/agreements"));
    let back = browser
        .post_form("/session/renew", &[("csrf_token", &token), ("next", "https://evil.example")])
        .await;
    assert_eq!(back.location(), "/");

    // An ended session is not renewed, and nothing is kept for it.
    end_session(&app, &mut browser);
    let ended = browser.post_with_headers("/session/renew", &[("csrf_token", &token)], &json).await;
    assert_eq!((ended.status.as_u16(), ended.location()), (303, "/login?next=%2F"));
    assert!(ended.cookie(KEPT).is_none());
}

on_both_engines!(
    a_form_sent_after_the_session_ended_is_kept_and_given_back_to_its_author,
    a_kept_form_is_never_shown_to_someone_else,
    the_way_back_after_signing_in_never_leaves_the_site,
    a_form_too_long_to_keep_is_refused_with_413,
    a_form_with_a_file_is_kept_without_its_file,
    renewing_the_session_needs_its_csrf_token_and_starts_its_time_again,
);
