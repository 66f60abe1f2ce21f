//! The web pages on both engines: sign-in and the session cookie's flags, CSRF refusal on every
//! kind of form, organisation scope (another trust's pages answer 404), a session that ends when
//! its user is disabled, and the coverage answers an officer sees.

use std::collections::HashMap;

use catalogue_tests::{Role, TEST_PASSWORD, TestApp, TestUser, on_both_engines};
use chrono::Datelike;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

/// A browser of one: keeps the cookies the app sets and sends them back (also used by `lifecycle`).
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    cookies: HashMap<String, String>,
}

/// A page as the app answered it (also read by `web_route_matrix`).
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The value of the first hidden input called `name`.
    pub(crate) fn hidden(&self, name: &str) -> String {
        let marker = format!(r#"name="{name}" value=""#);
        let start = self.body.find(&marker).unwrap_or_else(|| panic!("no {name} in the page")) + marker.len();
        self.body[start..].split('"').next().unwrap_or_default().to_owned()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    /// `name=value` of the cookie called `name` that this answer sets (not one it clears).
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .iter()
            .filter_map(|c| c.split(';').next()?.split_once('='))
            .find(|(n, v)| *n == name && !v.is_empty())
            .map(|(n, v)| format!("{n}={v}"))
    }
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Browser<'a> {
        Browser { app, cookies: HashMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn page(&mut self, request: reqwest::RequestBuilder) -> Page {
        let response = request.header("cookie", self.cookie_header()).send().await.unwrap();
        let page = Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap_or_default(),
        };
        for cookie in page.set_cookies() {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || cookie.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        page
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.app.get(path);
        self.page(request).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_with_headers(path, fields, &[]).await
    }

    /// Sends a form with more headers (an `Accept`, or the `Referer` a browser sends).
    pub(crate) async fn post_with_headers(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let body = serde_urlencoded_pairs(fields);
        let mut request =
            self.app.post(path).header("content-type", "application/x-www-form-urlencoded").body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.page(request).await
    }

    /// The value of the cookie called `name` that the browser holds.
    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Sets (or replaces) a cookie, as if the app had set it.
    pub(crate) fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// Sends a form with a file as a browser sends `enctype="multipart/form-data"`: the fields in
    /// the order given, then the file (a name and its text), if any, in the part named `file`.
    pub(crate) async fn upload(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str)>,
    ) -> Page {
        let parts: Vec<Part> = fields
            .iter()
            .map(|(name, value)| Part::Field(name, value))
            .chain(file.map(|(name, text)| Part::File(name, text)))
            .collect();
        let (content_type, body) = multipart(&parts);
        let request = self.app.post(path).header("content-type", content_type).body(body);
        self.page(request).await
    }

    /// Sends parts in exactly the order given (a file before the token, say).
    pub(crate) async fn upload_parts(&mut self, path: &str, parts: &[Part<'_>]) -> Page {
        let (content_type, body) = multipart(parts);
        let request = self.app.post(path).header("content-type", content_type).body(body);
        self.page(request).await
    }

    pub(crate) async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post(path, fields).await
    }

    /// Signs in through the sign-in page; returns the page the app redirected to.
    pub(crate) async fn sign_in(&mut self, user: &TestUser) -> Page {
        let login = self.get("/login").await;
        assert_eq!(login.status, 200);
        let token = login.hidden("csrf_token");
        let signed_in = self
            .post("/login", &[("email", &user.email), ("password", TEST_PASSWORD), ("csrf_token", &token)])
            .await;
        assert_eq!(signed_in.status, 303, "{}", signed_in.body);
        signed_in
    }

    /// Every page of a list from `first` on, following its "Next page" links (at most `most`).
    pub(crate) async fn every_page(&mut self, first: &str, most: usize) -> Vec<Page> {
        let mut pages: Vec<Page> = Vec::new();
        let mut next = Some(first.to_owned());
        while let Some(path) = next.take() {
            assert!(pages.len() < most, "the pages of {first} end within {most}");
            let page = self.get(&path).await;
            assert_eq!(page.status, 200, "{path}: {}", page.body);
            next = page
                .body
                .split(r#"rel="next""#)
                .next()
                .filter(|before| before.len() < page.body.len())
                .and_then(|before| before.rsplit(r#"href=""#).next())
                .and_then(|rest| rest.split('"').next())
                .map(|href| href.replace("&#38;", "&").replace("&amp;", "&"));
            pages.push(page);
        }
        pages
    }
}

/// One part of a `multipart/form-data` body.
pub(crate) enum Part<'a> {
    Field(&'a str, &'a str),
    /// The part named `file`: the file's name and its text.
    File(&'a str, &'a str),
}

/// A `multipart/form-data` body of `parts`, and its content type.
pub(crate) fn multipart(parts: &[Part<'_>]) -> (String, String) {
    const BOUNDARY: &str = "----catalogue-test-form";
    let mut body = String::new();
    for part in parts {
        let header = match part {
            Part::Field(name, _) => format!("Content-Disposition: form-data; name=\"{name}\""),
            Part::File(file_name, _) => format!(
                "Content-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/csv"
            ),
        };
        let (Part::Field(_, content) | Part::File(_, content)) = part;
        body.push_str(&format!("--{BOUNDARY}\r\n{header}\r\n\r\n{content}\r\n"));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

fn serde_urlencoded_pairs(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The Windows 10 Enterprise entitlement in force today, from the start page's claim form (the
/// test licenses it first with `TestApp::license_nationally`: the shipped seeds license no Windows).
async fn windows_10_claim_form(browser: &mut Browser<'_>) -> (String, Page) {
    let page = browser.get("/?q=Windows+10+Enterprise").await;
    assert_eq!(page.status, 200);
    let marker = r#"action="/entitlements/"#;
    let start = page.body.find(marker).expect("a claim form") + marker.len();
    let id = page.body[start..].split('/').next().unwrap_or_default().to_owned();
    (id, page)
}

/// An RR8 officer signed in, with Windows 10 Enterprise licensed nationally, who sends the start
/// page's claim form for RR8 with `fields` (the quantity as typed, a reference): their browser and
/// the form's answer.
async fn rr8_officer_claims_windows_10<'a>(app: &'a TestApp, fields: &[(&str, &str)]) -> (Browser<'a>, Page) {
    app.license_nationally("MS-WIN10-ENT", None).await;
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(app);
    browser.sign_in(&officer).await;
    let (entitlement, page) = windows_10_claim_form(&mut browser).await;
    let token = page.hidden("csrf_token");
    let mut claim = vec![("organisation", "RR8"), ("csrf_token", token.as_str())];
    claim.extend_from_slice(fields);
    let answer = browser.post(&format!("/entitlements/{entitlement}/claim"), &claim).await;
    (browser, answer)
}

async fn sign_in_sets_a_strict_http_only_session_cookie(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    let signed_in = browser.sign_in(&officer).await;
    assert_eq!(signed_in.location(), "/");
    let session = signed_in
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("catalogue_session="))
        .expect("a session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(session.contains("Path=/"), "{session}");
    assert!(!session.contains("Secure"), "plain HTTP: no Secure flag: {session}");
    let start = browser.get("/").await;
    assert_eq!(start.status, 200);
    assert!(start.body.contains("Can we use"));

    // Behind a trusted TLS-terminating proxy the cookie is Secure; a client's own
    // X-Forwarded-Proto (no proxy trusted) changes nothing.
    let behind_proxy = catalogue_tests::spawn_app_behind_proxy(app.engine).await.expect("the same engine");
    for (server, secure) in [(&app, false), (&behind_proxy, true)] {
        let officer = server.create_user(Role::Officer, Some("RR8"));
        let mut tls = Browser::new(server);
        let login = tls.get("/login").await;
        let token = login.hidden("csrf_token");
        let request = server
            .post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-proto", "https")
            .body(serde_urlencoded_pairs(&[
                ("email", &officer.email),
                ("password", TEST_PASSWORD),
                ("csrf_token", &token),
            ]));
        let signed_in = tls.page(request).await;
        assert_eq!(signed_in.status, 303);
        let session =
            signed_in.set_cookies().into_iter().find(|c| c.starts_with("catalogue_session=")).unwrap();
        assert_eq!(session.contains("Secure"), secure, "{session}");
    }
}

async fn a_wrong_password_signs_no_one_in(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    let login = browser.get("/login").await;
    let token = login.hidden("csrf_token");
    let refused = browser
        .post(
            "/login",
            &[("email", &officer.email), ("password", "not the password"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("The email address or password is not correct"));
    assert!(!refused.set_cookies().iter().any(|c| c.starts_with("catalogue_session=")));
    // Without a session every page sends people to sign in, and remembers where they were going.
    let start = browser.get("/organisations/RR8").await;
    assert_eq!(start.status, 303);
    assert_eq!(start.location(), "/login?next=%2Forganisations%2FRR8");
}

async fn forms_without_their_csrf_token_are_refused(app: TestApp) {
    app.license_nationally("MS-WIN10-ENT", None).await;
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);

    // The sign-in form itself: no token, or a token not bound to this browser's sign-in cookie.
    browser.get("/login").await;
    let no_token = browser.post("/login", &[("email", &officer.email), ("password", TEST_PASSWORD)]).await;
    assert_eq!(no_token.status, 403);
    let forged = browser
        .post(
            "/login",
            &[("email", &officer.email), ("password", TEST_PASSWORD), ("csrf_token", &"ab".repeat(32))],
        )
        .await;
    assert_eq!(forged.status, 403);

    browser.sign_in(&officer).await;
    let (entitlement, page) = windows_10_claim_form(&mut browser).await;
    let token = page.hidden("csrf_token");
    let claim_path = format!("/entitlements/{entitlement}/claim");
    let fields = [("organisation", "RR8"), ("quantity", "5"), ("question", "Windows 10 Enterprise")];

    let without = browser.post(&claim_path, &fields).await;
    assert_eq!(without.status, 403, "a claim without a token");
    assert!(without.headers["content-type"].to_str().unwrap_or_default().starts_with("text/html"));
    let mut wrong = fields.to_vec();
    wrong.push(("csrf_token", "00"));
    assert_eq!(browser.post(&claim_path, &wrong).await.status, 403, "a claim with a wrong token");
    let allocations: i64 = app.with_connection(|conn| {
        use db::schema::allocations::dsl::*;
        use diesel::prelude::*;
        allocations.count().get_result(conn).unwrap()
    });
    assert_eq!(allocations, 0, "no refused form claimed seats");

    // Another user's token does not do either.
    let other = app.create_user(Role::Officer, Some("RR8"));
    let mut other_browser = Browser::new(&app);
    other_browser.sign_in(&other).await;
    let (_, other_page) = windows_10_claim_form(&mut other_browser).await;
    let mut theirs = fields.to_vec();
    let other_token = other_page.hidden("csrf_token");
    theirs.push(("csrf_token", &other_token));
    assert_eq!(browser.post(&claim_path, &theirs).await.status, 403, "a token of another session");

    assert_eq!(browser.post("/logout", &[]).await.status, 403, "sign-out without a token");

    let mut right = fields.to_vec();
    right.push(("csrf_token", &token));
    let claimed = browser.post(&claim_path, &right).await;
    assert_eq!(claimed.status, 303, "{}", claimed.body);
    assert!(claimed.location().contains("notice=claimed"));

    let signed_out = browser.post("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(signed_out.status, 303);
    let removed = signed_out
        .set_cookies()
        .into_iter()
        .any(|c| c.starts_with("catalogue_session=") && c.contains("Max-Age=0"));
    assert!(removed, "signing out removes the session cookie");
    assert_eq!(browser.get("/").await.status, 303, "signed out");
}

async fn an_officer_cannot_see_another_trusts_pages(app: TestApp) {
    app.license_nationally("MS-WIN10-ENT", None).await;
    let ours = app.create_user(Role::Officer, Some("RR8"));
    let theirs = app.create_user(Role::Officer, Some("RJ1"));
    let mut them = Browser::new(&app);
    them.sign_in(&theirs).await;
    let (entitlement, page) = windows_10_claim_form(&mut them).await;
    let token = page.hidden("csrf_token");
    let claimed = them
        .post(
            &format!("/entitlements/{entitlement}/claim"),
            &[("organisation", "RJ1"), ("quantity", "3"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(claimed.status, 303);
    let their_allocation: i64 = app.with_connection(|conn| {
        use db::schema::allocations::dsl::*;
        use diesel::prelude::*;
        allocations.select(id).first(conn).unwrap()
    });

    let mut us = Browser::new(&app);
    us.sign_in(&ours).await;
    assert_eq!(us.get("/organisations/RR8").await.status, 200);
    for code in ["RJ1", "rj1"] {
        let page = us.get(&format!("/organisations/{code}")).await;
        assert_eq!(page.status, 404, "{code}");
        assert!(!page.body.contains("Guy"), "nothing of the other trust is shown");
    }
    let asked_for_them = us.get("/?q=Windows+10+Enterprise&organisation=RJ1").await;
    // An answered page, for RR8 (an error page would pass the absence check alone).
    assert_eq!(asked_for_them.status, 200);
    assert!(asked_for_them.body.contains("RR8"), "the answer is for the officer's own trust");
    assert!(!asked_for_them.body.contains("RJ1"), "an officer's question is always for their own trust");
    let (_, page) = windows_10_claim_form(&mut us).await;
    let token = page.hidden("csrf_token");
    let for_them = us
        .post(
            &format!("/entitlements/{entitlement}/claim"),
            &[("organisation", "RJ1"), ("quantity", "3"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(for_them.status, 404, "claiming for another trust");
    let release =
        us.post(&format!("/allocations/{their_allocation}/release"), &[("csrf_token", &token)]).await;
    assert_eq!(release.status, 404, "releasing another trust's seats");
    assert_eq!(us.get("/users").await.status, 403, "officers do not see the users list");
}

async fn disabling_a_user_ends_their_session(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    assert_eq!(browser.get("/organisations/RR8").await.status, 200);
    let changes = db::users::UserChanges { disabled: Some(true), ..Default::default() };
    db::users::update(app.db(), &db::Actor::system("test"), officer.id, changes, db::Precondition::Exists)
        .unwrap();
    let after = browser.get("/organisations/RR8").await;
    assert_eq!(after.status, 303);
    assert!(after.location().starts_with("/login"));
}

async fn pages_answer_in_plain_words_under_a_page_csp(app: TestApp) {
    app.license_nationally("MS-WIN10-ENT", None).await;
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let windows = browser.get("/?q=windows+10+enterprise").await;
    assert!(windows.body.contains("Licensed nationally"), "{}", windows.body);
    assert!(windows.body.contains("nhsuk-card--warning"), "unsupported: a warning callout");
    let csp = windows.headers["content-security-policy"].to_str().unwrap_or_default();
    assert_eq!(csp, api::web::PAGE_CSP);
    assert_eq!(windows.headers["cache-control"], "no-store");

    let devices = browser.get("/?q=medical+device+software").await;
    assert!(devices.body.contains("Buy locally against a standard"), "{}", devices.body);
    assert!(devices.body.contains("Medical device security"));
    assert!(devices.body.contains("MUST"));

    let nothing = browser.get("/?q=no+such+product+anywhere").await;
    assert!(nothing.body.contains("Nothing matches"));

    // The stylesheet the page names is served from the binary, cacheable for a year.
    let marker = r#"<link rel="stylesheet" href=""#;
    let start = windows.body.find(marker).unwrap() + marker.len();
    let css = windows.body[start..].split('"').next().unwrap_or_default().to_owned();
    let response = app.get(&css).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["cache-control"].to_str().unwrap_or_default().contains("immutable"));
    assert!(response.text().await.unwrap_or_default().contains("nhsuk"));

    // The national team's agreement page draws a chart per entitlement.
    let admin = app.create_user(Role::Admin, None);
    let mut national = Browser::new(&app);
    national.sign_in(&admin).await;
    let agreements = national.get("/agreements").await;
    assert_eq!(agreements.status, 200);
    let marker = r#"<a href="/agreements/"#;
    let ids: Vec<String> = agreements
        .body
        .match_indices(marker)
        .map(|(at, _)| agreements.body[at + marker.len()..].split('"').next().unwrap_or_default().to_owned())
        .collect();
    let mut charts = 0;
    for id in ids {
        let page = national.get(&format!("/agreements/{id}")).await;
        assert_eq!(page.status, 200);
        charts += page.body.matches("<svg class=\"app-chart\"").count();
    }
    assert!(charts > 0, "at least one utilisation chart");
    assert_eq!(national.get("/users").await.status, 200);

    // The unsupported-software report at a chosen date, typed into the form's three boxes or
    // written year-month-day in an address (the report's own links).
    let report = national.get("/reports/unsupported?on-day=14&on-month=1&on-year=2020&within_months=6").await;
    assert_eq!(report.status, 200);
    assert!(report.body.contains("Unsupported software on 14 January 2020"));
    assert!(report.body.contains("on=2020-01-14&#38;within_months=6"), "its links keep the day");
    let linked = national.get("/reports/unsupported?on=2020-01-14&within_months=6").await;
    assert_eq!(linked.status, 200);
    assert!(linked.body.contains("Unsupported software on 14 January 2020"));
    assert!(linked.body.contains(
        r#"id="on-day" name="on-day" type="text" inputmode="numeric" spellcheck="false" value="14""#
    ));
    assert_eq!(national.get("/reports/unsupported?on=14/01/2020").await.status, 422);
    let bad =
        national.get("/reports/unsupported?on-day=30&on-month=feb&on-year=2020&within_months=many").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains(r##"<a href="#on-day">Date must be a real date</a>"##), "{}", bad.body);
    assert!(
        bad.body.contains(r##"<a href="#within_months">Enter a whole number of months"##),
        "both at once"
    );
    assert!(!bad.body.contains("Download CSV"), "no download of the page with its errors");
    assert!(bad.body.contains(
        r#"id="on-month" name="on-month" type="text" inputmode="numeric" spellcheck="false" value="feb""#
    ));
    assert_eq!(browser.get("/reports/unsupported").await.status, 403, "officers do not see national reports");
}

/// Claims Windows 10 Enterprise seats (unsupported since 2025-10-14) today for each organisation,
/// through the API.
async fn hold_windows_10(app: &TestApp, organisations: &[&str]) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let get = |path: String| {
        let request = app.get(&path).bearer_auth(&admin);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let products = get("/v1/products?q=MS-WIN10-ENT".to_owned()).await;
    let product = products["items"][0]["id"].as_i64().unwrap();
    for code in organisations {
        let coverage = get(format!("/v1/coverage?organisation={code}&product={product}")).await;
        let entitlement = coverage["licences"][0]["entitlement_id"].as_i64().unwrap();
        let response = app
            .post(&format!("/v1/entitlements/{entitlement}/allocations"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"organisation": code, "quantity": 10}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
}

/// The address a page's link marked `rel` leads to, with the HTML escapes undone.
fn link(page: &Page, rel: &str) -> Option<String> {
    let end = page.body.find(&format!(r#"" rel="{rel}""#))?;
    let start = page.body[..end].rfind(r#"href=""#)? + r#"href=""#.len();
    Some(page.body[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

async fn the_unsupported_software_page_shows_one_page_at_a_time(app: TestApp) {
    app.license_nationally("MS-WIN10-ENT", None).await;
    hold_windows_10(&app, &["RR8", "RTH", "RGT"]).await;
    let admin = app.create_user(Role::Admin, None);
    let mut national = Browser::new(&app);
    national.sign_in(&admin).await;
    let rows = |page: &Page| page.body.matches(r#"scope="row""#).count();

    let first = national.get("/reports/unsupported?limit=2").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(rows(&first), 2, "one page of two holdings");
    assert!(first.body.contains("(RGT)") && first.body.contains("(RR8)") && !first.body.contains("(RTH)"));
    assert!(first.body.contains("3 holdings at risk, 0 covered by a risk acceptance."), "{}", first.body);
    assert!(first.body.contains("3 organisations held unsupported software"));
    assert!(!first.body.contains("First page"));
    let next = link(&first, "next").expect("a link to the next page");
    assert!(
        next.contains("status=at_risk") && next.contains("limit=2") && next.contains("cursor=RR8"),
        "{next}"
    );

    let second = national.get(&next).await;
    assert_eq!(second.status, 200);
    assert_eq!(rows(&second), 1);
    assert!(second.body.contains("(RTH)") && !second.body.contains("(RR8)"));
    assert!(second.body.contains("3 holdings at risk"), "the whole report's totals on every page");
    assert!(link(&second, "next").is_none(), "the last page");
    assert!(second.body.contains("First page"));

    // The same filters as the API, from the form.
    let accepted = national.get("/reports/unsupported?status=accepted").await;
    assert_eq!(rows(&accepted), 0);
    assert!(accepted.body.contains("No holdings covered by a risk acceptance"));
    let region = national.get("/reports/unsupported?region=South+East&organisation=").await;
    assert_eq!(rows(&region), 1);
    assert!(region.body.contains("(RTH)") && region.body.contains("1 holding at risk"), "{}", region.body);
    assert_eq!(national.get("/reports/unsupported?cursor=nonsense").await.status, 400);
    assert_eq!(national.get("/reports/unsupported?status=everything").await.status, 422);
}

/// The id of the standard titled `title`, from the standards page.
async fn standard_id(browser: &mut Browser<'_>, title: &str) -> String {
    let list = browser.get("/standards").await;
    assert_eq!(list.status, 200);
    let at = list.body.find(&format!(">{title}</a>")).expect("the standard is listed");
    let start = list.body[..at].rfind("/standards/").unwrap() + "/standards/".len();
    list.body[start..at].split('"').next().unwrap_or_default().to_owned()
}

async fn only_the_publisher_drafts_and_publishes_a_standard(app: TestApp) {
    let author = app.create_user(Role::Exemplar, Some("RM3"));
    let other_author = app.create_user(Role::Exemplar, Some("RRK"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&author).await;
    let id = standard_id(&mut browser, "Medical device security").await;
    let page = browser.get(&format!("/standards/{id}")).await;
    let token = page.hidden("csrf_token");
    let drafted = browser.post(&format!("/standards/{id}/versions"), &[("csrf_token", &token)]).await;
    assert_eq!(drafted.status, 303, "{}", drafted.body);
    assert!(drafted.location().contains("notice=drafted&n=3"));
    let confirmation = browser.get(&format!("/standards/{id}/versions/3/publish")).await;
    assert_eq!(confirmation.status, 200);
    assert!(confirmation.body.contains("supersedes version 2"), "{}", confirmation.body);

    // Another exemplar trust may neither see the confirmation nor publish.
    let mut other = Browser::new(&app);
    other.sign_in(&other_author).await;
    assert_eq!(other.get(&format!("/standards/{id}/versions/3/publish")).await.status, 403);
    let other_token = other.get("/standards").await.hidden("csrf_token");
    let refused =
        other.post(&format!("/standards/{id}/versions/3/publish"), &[("csrf_token", &other_token)]).await;
    assert_eq!(refused.status, 403);

    let published =
        browser.post(&format!("/standards/{id}/versions/3/publish"), &[("csrf_token", &token)]).await;
    assert_eq!(published.status, 303);
    let after = browser.get(published.location()).await;
    assert!(after.body.contains("Version 3: published"));
    let published_twice =
        browser.post(&format!("/standards/{id}/versions/3/publish"), &[("csrf_token", &token)]).await;
    assert_eq!(published_twice.status, 409, "a published version never changes");
}

async fn an_officer_records_a_purchase_against_the_published_version(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let id = standard_id(&mut browser, "Medical device security").await;
    let form = browser.get(&format!("/organisations/RR8/purchases/new?standard={id}")).await;
    assert_eq!(form.status, 200);
    let token = form.hidden("csrf_token");
    let version = form.hidden("version");
    let base = x_ray_purchase(&token, &id, &version);
    let recorded = browser.post("/organisations/RR8/purchases", &fields(&base)).await;
    assert_eq!(recorded.status, 303, "{}", recorded.body);
    assert_eq!(recorded.location(), "/organisations/RR8?notice=purchased-non-compliant");
    let page = browser.get(recorded.location()).await;
    assert!(page.body.contains("Portable X-ray unit"));
    assert!(page.body.contains("Not compliant"));

    let mut bad = base.clone();
    bad.retain(|(name, _)| name != "unit_cost");
    bad.push(("unit_cost".into(), "twelve".into()));
    let refused = browser.post("/organisations/RR8/purchases", &fields(&bad)).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("Enter the cost of one unit in pounds"));
    assert!(refused.body.contains("Portable X-ray unit"), "what was typed is kept");

    // A date that is not one, in the three boxes: every problem at once, the summary linked to the
    // wrong box, only that box marked, what was typed kept; nothing recorded.
    let mut bad_date = base.clone();
    bad_date.retain(|(name, _)| !name.starts_with("purchased_on") && name != "quantity");
    for (name, value) in [
        ("purchased_on-day", " 31 "),
        ("purchased_on-month", "02"),
        ("purchased_on-year", "2026"),
        ("quantity", ""),
    ] {
        bad_date.push((name.into(), value.into()));
    }
    let recorded = count_rows(&app, "purchases");
    let refused = browser.post("/organisations/RR8/purchases", &fields(&bad_date)).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains(r##"<a href="#purchased_on-day">Date of purchase must be a real date</a>"##),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(r##"<a href="#quantity">Enter the quantity"##), "both problems at once");
    assert!(refused.body.contains(r#"nhsuk-input--error" id="purchased_on-day" name="purchased_on-day" type="text" inputmode="numeric" spellcheck="false" value="31""#));
    assert!(refused.body.contains(r#"nhsuk-input--width-2" id="purchased_on-month" name="purchased_on-month" type="text" inputmode="numeric" spellcheck="false" value="02""#), "the month is not marked");
    let mut two_digit_year = base.clone();
    two_digit_year.retain(|(name, _)| name != "purchased_on-year");
    two_digit_year.push(("purchased_on-year".into(), "26".into()));
    let refused = browser.post("/organisations/RR8/purchases", &fields(&two_digit_year)).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains(r##"<a href="#purchased_on-year">Year must include 4 numbers</a>"##));
    assert_eq!(count_rows(&app, "purchases"), recorded, "nothing recorded");

    assert_eq!(browser.get(&format!("/organisations/RJ1/purchases/new?standard={id}")).await.status, 404);
    assert_eq!(browser.post("/organisations/RJ1/purchases", &fields(&base)).await.status, 404);
}

/// The form for a portable X-ray unit bought against the medical device standard, meeting one
/// of its three MUST requirements.
fn x_ray_purchase(csrf_token: &str, standard_id: &str, version: &str) -> Vec<(String, String)> {
    [
        ("csrf_token", csrf_token),
        ("standard_id", standard_id),
        ("version", version),
        ("category", "medical-device-software"),
        ("description", "Portable X-ray unit"),
        ("purchased_on-day", "2"),
        ("purchased_on-month", "11"),
        ("purchased_on-year", "2026"),
        ("quantity", "1"),
        ("unit_cost", "12,000"),
        ("order_reference", "PO-1"),
        ("requirement_MDS-01", "1"),
        ("met_MDS-01", "yes"),
        ("requirement_MDS-02", "1"),
        ("requirement_MDS-03", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A session token issued `age` seconds ago, signed with the app's key.
fn token_issued_ago(app: &TestApp, user_id: i64, age: u64) -> String {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({"sub": user_id.to_string(), "iat": now - age, "exp": now - age + 900,
                                    "iss": "nhs-licence-catalogue", "aud": "nhs-licence-catalogue-api", "gen": 0});
    encode(&Header::default(), &claims, &EncodingKey::from_secret(&app.jwt_secret).unwrap()).unwrap()
}

async fn an_active_session_is_renewed_and_keeps_its_forms_valid(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    let session_id = "0123456789abcdef0123456789abcdef";

    // A fresh token is not renewed.
    browser.cookies.insert(
        "catalogue_session".into(),
        format!("{session_id}.{}", token_issued_ago(&app, officer.id, 10)),
    );
    let fresh = browser.get("/").await;
    assert_eq!(fresh.status, 200);
    assert!(fresh.set_cookies().is_empty(), "{:?}", fresh.set_cookies());
    let token_before = fresh.hidden("csrf_token");

    // Past half its life, the token is renewed under the same session id, so forms stay valid.
    browser.cookies.insert(
        "catalogue_session".into(),
        format!("{session_id}.{}", token_issued_ago(&app, officer.id, 600)),
    );
    let renewed = browser.get("/").await;
    assert_eq!(renewed.status, 200);
    let cookie =
        renewed.set_cookies().into_iter().find(|c| c.starts_with("catalogue_session=")).expect("renewed");
    assert!(cookie.starts_with(&format!("catalogue_session={session_id}.")), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert_eq!(
        renewed.hidden("csrf_token"),
        token_before,
        "the CSRF token belongs to the session, not the token"
    );
    assert_eq!(browser.get("/").await.set_cookies().len(), 0, "the renewed token is fresh");

    // An expired token is not.
    browser.cookies.insert(
        "catalogue_session".into(),
        format!("{session_id}.{}", token_issued_ago(&app, officer.id, 1000)),
    );
    assert_eq!(browser.get("/").await.status, 303);
}

async fn an_officer_acknowledges_an_advisory_for_their_own_trust_only(app: TestApp) {
    app.license_nationally("MS-WIN10-ENT", None).await;
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let advisory = exposed_to_the_windows_10_advisory(&mut browser).await;
    let token = browser.get("/organisations/RR8").await.hidden("csrf_token");
    let path = format!("/organisations/RR8/advisories/{advisory}/acknowledge");

    assert_eq!(browser.post(&path, &[("applicable", "yes")]).await.status, 403, "no CSRF token");
    let other_trust = format!("/organisations/RJ1/advisories/{advisory}/acknowledge");
    assert_eq!(browser.post(&other_trust, &[("csrf_token", &token)]).await.status, 404);
    let acknowledged = browser
        .post(&path, &[("csrf_token", &token), ("applicable", "yes"), ("return_to", "/organisations/RR8")])
        .await;
    assert_eq!(acknowledged.status, 303);
    assert_eq!(acknowledged.location(), "/organisations/RR8?notice=acknowledged");
    let after = browser.get(acknowledged.location()).await;
    assert!(after.body.contains("The advisory is acknowledged."));
    assert!(!after.body.contains("/acknowledge\""), "nothing left to acknowledge");

    let admin = app.create_user(Role::Admin, None);
    let mut national = Browser::new(&app);
    national.sign_in(&admin).await;
    let exposure = national.get(&format!("/advisories/{advisory}")).await;
    assert!(exposure.body.contains("Exposure"));
    assert!(exposure.body.contains("after the deadline"), "RR8 acknowledged late");
}

/// The value of the `<option>` labelled `label`.
fn option_value(page: &Page, label: &str) -> String {
    let at = page.body.find(&format!(">{label}</option>")).unwrap_or_else(|| panic!("no option {label}"));
    let start = page.body[..at].rfind("value=\"").unwrap() + "value=\"".len();
    page.body[start..at].split('"').next().unwrap_or_default().to_owned()
}

fn count_assessments(app: &TestApp) -> i64 {
    app.with_connection(|conn| {
        use db::schema::assessments::dsl::*;
        use diesel::prelude::*;
        assessments.count().get_result(conn).unwrap()
    })
}

/// Borrows owned form fields for `Browser::post`.
fn fields(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn the_publisher_assesses_products_against_the_published_version(app: TestApp) {
    let author = app.create_user(Role::Exemplar, Some("RM3"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&author).await;
    let id = standard_id(&mut browser, "Medical device security").await;
    let standard = browser.get(&format!("/standards/{id}")).await;
    let path = format!("/standards/{id}/versions/2/assessments");
    assert!(standard.body.contains(&format!(r#"href="{path}""#)), "the standard links to its assessments");
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("No product has been assessed against version 2."));
    let token = form.hidden("csrf_token");
    let ultrasound = option_value(&form, "ExampleScan Ultrasound Cart 9.1");
    let analyser = option_value(&form, "ExampleLab Analyser Controller 2.0");
    let every_requirement_met = |product: &str, token: &str| {
        let mut owned =
            vec![("csrf_token".to_owned(), token.to_owned()), ("product_id".into(), product.into())];
        for code in ["MDS-01", "MDS-02", "MDS-03", "MDS-04", "MDS-05", "MDS-06"] {
            owned.push((format!("requirement_{code}"), "1".into()));
            owned.push((format!("met_{code}"), "yes".into()));
        }
        owned
    };

    // No product chosen: the form again, with what to correct, and nothing recorded.
    let refused = browser.post(&path, &fields(&every_requirement_met("", &token))).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("nhsuk-error-summary"));
    assert!(refused.body.contains("Choose the product you assessed"));
    assert!(refused.body.contains(r#"name="met_MDS-01" type="checkbox" value="yes" checked"#), "kept");
    assert!(!refused.body.contains(" selected>"), "no product was chosen");

    // Without the CSRF token: refused before anything is read.
    assert_eq!(browser.post(&path, &fields(&every_requirement_met(&ultrasound, ""))).await.status, 403);
    assert_eq!(count_assessments(&app), 0);

    let assessed = browser.post(&path, &fields(&every_requirement_met(&ultrasound, &token))).await;
    assert_eq!(assessed.status, 303, "{}", assessed.body);
    assert_eq!(assessed.location(), format!("{path}?notice=conforms&product={ultrasound}"));
    let after = browser.get(assessed.location()).await;
    assert!(after.body.contains("ExampleScan Ultrasound Cart 9.1 is assessed: it conforms to version 2."));

    // The service's own check overrides the author: the analyser has no MDS2 form.
    let failing = browser.post(&path, &fields(&every_requirement_met(&analyser, &token))).await;
    assert_eq!(failing.status, 303, "{}", failing.body);
    assert!(failing.location().contains("notice=does-not-conform"));
    let after = browser.get(failing.location()).await;
    assert!(after.body.contains("Does not conform"));
    assert!(after.body.contains(">Important</h2>"), "not a green success banner: {}", after.body);
    assert!(!after.body.contains("nhsuk-notification-banner--success"));
    assert!(after.body.contains("MDS-01: not met (the service found the product record does not meet it)"));

    let twice = browser.post(&path, &fields(&every_requirement_met(&ultrasound, &token))).await;
    assert_eq!(twice.status, 409);
    assert!(twice.body.contains("already been assessed against version 2"), "{}", twice.body);
    assert_eq!(count_assessments(&app), 2);

    // Only the published version is assessed: version 1 is superseded.
    let superseded = browser.get(&format!("/standards/{id}/versions/1/assessments")).await;
    assert_eq!(superseded.status, 200);
    assert!(!superseded.body.contains("Record the assessment"));
    assert_eq!(browser.get(&format!("/standards/{id}/versions/9/assessments")).await.status, 404);

    // Another exemplar trust, and an officer, read the assessments but may not assess.
    let other_author = app.create_user(Role::Exemplar, Some("RRK"));
    let officer = app.create_user(Role::Officer, Some("RR8"));
    for user in [&other_author, &officer] {
        let mut other = Browser::new(&app);
        other.sign_in(user).await;
        let page = other.get(&path).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("ExampleScan Ultrasound Cart 9.1"));
        assert!(!page.body.contains("Record the assessment"), "no form for those who may not assess");
        let theirs = every_requirement_met(&analyser, &page.hidden("csrf_token"));
        assert_eq!(other.post(&path, &fields(&theirs)).await.status, 403);
    }
    assert_eq!(count_assessments(&app), 2);
}

/// The requirements of a version, as (code, level, text), from the data layer.
fn requirements_of(app: &TestApp, id: &str, number: i32) -> Vec<(String, String, String)> {
    let id: i64 = id.parse().unwrap();
    app.with_connection(|conn| {
        db::standards::get_version(conn, id, number)
            .unwrap()
            .requirements
            .into_iter()
            .map(|r| (r.code, r.level.as_str().to_owned(), r.text))
            .collect()
    })
}

async fn the_publisher_changes_and_removes_draft_requirements(app: TestApp) {
    let author = app.create_user(Role::Exemplar, Some("RM3"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&author).await;
    let id = standard_id(&mut browser, "Medical device security").await;
    let token = browser.get(&format!("/standards/{id}")).await.hidden("csrf_token");
    let drafted = browser.post(&format!("/standards/{id}/versions"), &[("csrf_token", &token)]).await;
    assert_eq!(drafted.status, 303);
    let standard = browser.get(&format!("/standards/{id}")).await;
    assert!(standard.body.contains("requirements/edit?code=MDS-03"), "each draft requirement can be changed");
    let revision = standard.hidden("revision");
    let edit_path = format!("/standards/{id}/versions/3/requirements/edit");
    let remove_path = format!("/standards/{id}/versions/3/requirements/remove");

    let form = browser.get(&format!("{edit_path}?code=MDS-03")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Change MDS-03"));
    assert_eq!(form.hidden("original_code"), "MDS-03");
    assert_eq!(browser.get(&format!("{edit_path}?code=NOPE-1")).await.status, 404);
    assert_eq!(
        browser.get(&format!("/standards/{id}/versions/2/requirements/edit?code=MDS-03")).await.status,
        404
    );

    let edit = |text: &'static str, revision: String, token: String| {
        vec![
            ("csrf_token".to_owned(), token),
            ("revision".to_owned(), revision),
            ("original_code".to_owned(), "MDS-03".to_owned()),
            ("code".to_owned(), "MDS-03".to_owned()),
            ("level".to_owned(), "SHOULD".to_owned()),
            ("text".to_owned(), text.to_owned()),
        ]
    };
    let before = requirements_of(&app, &id, 3);

    // Bad input: the form again with an error summary and what was typed; nothing changes.
    let blank = browser.post(&edit_path, &fields(&edit("  ", revision.clone(), token.clone()))).await;
    assert_eq!(blank.status, 422, "{}", blank.body);
    assert!(blank.body.contains("nhsuk-error-summary"));
    assert!(blank.body.contains("requirement MDS-03 needs text"));
    assert!(blank.body.contains(r#"<option value="SHOULD" selected>"#), "what was chosen is kept");
    let no_token =
        browser.post(&edit_path, &fields(&edit("Changed.", revision.clone(), String::new()))).await;
    assert_eq!(no_token.status, 403);
    assert_eq!(requirements_of(&app, &id, 3), before);

    let text = "The supplier SHOULD provide a software bill of materials in SPDX or CycloneDX.";
    let saved = browser.post(&edit_path, &fields(&edit(text, revision.clone(), token.clone()))).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), format!("/standards/{id}?notice=saved&n=3"));
    let changed = requirements_of(&app, &id, 3);
    assert!(changed.contains(&("MDS-03".into(), "SHOULD".into(), text.into())), "{changed:?}");
    assert_eq!(requirements_of(&app, &id, 2).len(), 6, "the published version never changes");

    // The form shown before the change is out of date: refused, not a lost update.
    let stale = browser.post(&edit_path, &fields(&edit("Stale.", revision.clone(), token.clone()))).await;
    assert_eq!(stale.status, 409);
    assert!(stale.body.contains("Someone changed the draft"));
    let stale = browser
        .post(&remove_path, &[("csrf_token", &token), ("code", "MDS-05"), ("revision", &revision)])
        .await;
    assert_eq!(stale.status, 409);

    // A published version never changes: refused with the API's status for it (409), not as bad input.
    let published_revision = app.with_connection(|conn| {
        db::standards::get_version(conn, id.parse().unwrap(), 2).unwrap().revision.to_string()
    });
    let add_to_published = [
        ("csrf_token", token.as_str()),
        ("revision", &published_revision),
        ("code", "MDS-99"),
        ("level", "MUST"),
        ("text", "Never added."),
    ];
    let refused = browser.post(&format!("/standards/{id}/versions/2/requirements"), &add_to_published).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("only a draft can change"));
    assert_eq!(requirements_of(&app, &id, 2).len(), 6);

    // Another exemplar trust and an officer may neither see the form nor change the draft.
    for user in [app.create_user(Role::Exemplar, Some("RRK")), app.create_user(Role::Officer, Some("RR8"))] {
        let mut other = Browser::new(&app);
        other.sign_in(&user).await;
        assert_eq!(other.get(&format!("{edit_path}?code=MDS-03")).await.status, 403);
        let their_token = other.get("/standards").await.hidden("csrf_token");
        let fresh = browser.get(&format!("/standards/{id}")).await.hidden("revision");
        let removed = other
            .post(&remove_path, &[("csrf_token", &their_token), ("code", "MDS-05"), ("revision", &fresh)])
            .await;
        assert_eq!(removed.status, 403);
    }
    assert_eq!(requirements_of(&app, &id, 3).len(), 6);

    let fresh = browser.get(&format!("/standards/{id}")).await.hidden("revision");
    assert_eq!(browser.post(&remove_path, &[("code", "MDS-05"), ("revision", &fresh)]).await.status, 403);
    let removed =
        browser.post(&remove_path, &[("csrf_token", &token), ("code", "MDS-05"), ("revision", &fresh)]).await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    let codes: Vec<String> = requirements_of(&app, &id, 3).into_iter().map(|(code, _, _)| code).collect();
    assert_eq!(codes, ["MDS-01", "MDS-02", "MDS-03", "MDS-04", "MDS-06"]);
}

async fn the_publisher_withdraws_a_version_after_confirming(app: TestApp) {
    let author = app.create_user(Role::Exemplar, Some("RM3"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&author).await;
    let id = standard_id(&mut browser, "Medical device security").await;
    let standard = browser.get(&format!("/standards/{id}")).await;
    let path = format!("/standards/{id}/versions/2/withdraw");
    assert!(standard.body.contains(&format!(r#"href="{path}""#)));
    let token = standard.hidden("csrf_token");
    let confirmation = browser.get(&path).await;
    assert_eq!(confirmation.status, 200);
    assert!(confirmation.body.contains("Withdraw version 2?"));
    assert!(confirmation.body.contains("no version of this standard is published"), "{}", confirmation.body);
    assert_eq!(browser.get(&format!("/standards/{id}/versions/1/withdraw")).await.status, 404, "superseded");

    let other_author = app.create_user(Role::Exemplar, Some("RRK"));
    let mut other = Browser::new(&app);
    other.sign_in(&other_author).await;
    assert_eq!(other.get(&path).await.status, 403);
    let their_token = other.get("/standards").await.hidden("csrf_token");
    assert_eq!(other.post(&path, &[("csrf_token", &their_token)]).await.status, 403);
    assert_eq!(browser.post(&path, &[]).await.status, 403, "no CSRF token");
    let published: i64 = app.with_connection(|conn| {
        db::standards::get(conn, id.parse().unwrap()).unwrap().published_version.map_or(0, i64::from)
    });
    assert_eq!(published, 2, "nothing refused withdrew it");

    let withdrawn = browser.post(&path, &[("csrf_token", &token)]).await;
    assert_eq!(withdrawn.status, 303, "{}", withdrawn.body);
    assert_eq!(withdrawn.location(), format!("/standards/{id}?notice=withdrawn&n=2"));
    let after = browser.get(withdrawn.location()).await;
    assert!(after.body.contains("Version 2 is withdrawn."));
    assert!(after.body.contains("No version of this standard is published"));
    let twice = browser.post(&path, &[("csrf_token", &token)]).await;
    assert_eq!(twice.status, 409);
    assert!(twice.body.contains("it cannot be withdrawn"), "{}", twice.body);
}

async fn signing_out_ends_the_session_token_not_just_the_cookie(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let mut elsewhere = Browser::new(&app);
    elsewhere.sign_in(&officer).await;
    let page = browser.get("/logout").await;
    assert!(page.body.contains("ends every session of your account"), "{}", page.body);
    let token = page.hidden("csrf_token");
    let old_cookie = browser.cookies["catalogue_session"].clone();

    let signed_out = browser.post("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(signed_out.status, 303);
    assert_eq!(signed_out.location(), "/login?signed_out=1");
    assert!(
        browser.get("/login?signed_out=1").await.body.contains("Every session of your account has ended")
    );

    // The cookie kept from before signing out (a copy, a stolen one) no longer signs anyone in.
    let old_token = old_cookie.split_once('.').unwrap().1.to_owned();
    browser.cookies.insert("catalogue_session".into(), old_cookie);
    let refused = browser.get("/organisations/RR8").await;
    assert_eq!(refused.status, 303);
    assert!(refused.location().starts_with("/login"));
    let response = app.get("/v1/me").bearer_auth(&old_token).send().await.unwrap();
    assert_eq!(response.status(), 401, "the token is refused by the API too");
    // Every other session of the account ends with it; signing in again works.
    assert_eq!(elsewhere.get("/").await.status, 303);
    browser.sign_in(&officer).await;
    assert_eq!(browser.get("/organisations/RR8").await.status, 200);
}

/// Claims Windows 10 Enterprise seats for RR8 (exposing it to advisory CC-2025-0001) and returns
/// the advisory's id, from the organisation page.
async fn exposed_to_the_windows_10_advisory(browser: &mut Browser<'_>) -> String {
    let (entitlement, page) = windows_10_claim_form(browser).await;
    let token = page.hidden("csrf_token");
    let claimed = browser
        .post(
            &format!("/entitlements/{entitlement}/claim"),
            &[("organisation", "RR8"), ("quantity", "10"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(claimed.status, 303);
    let organisation = browser.get("/organisations/RR8").await;
    assert!(organisation.body.contains("CC-2025-0001"), "{}", organisation.body);
    let at = organisation.body.find("/acknowledge\"").expect("an acknowledge form");
    let start = organisation.body[..at].rfind("/advisories/").unwrap() + "/advisories/".len();
    organisation.body[start..at].to_owned()
}

async fn an_officer_records_whether_an_advisory_applies_and_closes_it(app: TestApp) {
    app.license_nationally("MS-WIN10-ENT", None).await;
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let advisory = exposed_to_the_windows_10_advisory(&mut browser).await;
    let path = format!("/organisations/RR8/advisories/{advisory}");
    let organisation = browser.get("/organisations/RR8").await;
    assert!(organisation.body.contains(&format!(r#"href="{path}""#)), "the organisation page links to it");

    let page = browser.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("CC-2025-0001: the response of RR8"));
    assert!(page.body.contains("Acknowledge CC-2025-0001"), "not yet acknowledged");
    assert!(!page.body.contains("/close\""), "closing waits for the acknowledgement");
    let token = page.hidden("csrf_token");
    let applicability = format!("{path}/applicability");
    let close = format!("{path}/close");
    let too_early = browser.post(&applicability, &[("csrf_token", &token), ("applicable", "yes")]).await;
    assert_eq!(too_early.status, 409);
    assert!(too_early.body.contains("acknowledge the advisory first"));

    let acknowledged =
        browser.post(&format!("{path}/acknowledge"), &[("csrf_token", &token), ("return_to", &path)]).await;
    assert_eq!(acknowledged.status, 303);
    assert_eq!(acknowledged.location(), format!("{path}?notice=acknowledged"));
    let page = browser.get(acknowledged.location()).await;
    assert!(page.body.contains("Record whether it applies"));
    assert!(page.body.contains("Not known yet"));

    // Bad input: the page again with an error summary and what was typed; nothing changes.
    let unchosen = browser.post(&applicability, &[("csrf_token", &token), ("reason", "isolated ward")]).await;
    assert_eq!(unchosen.status, 422);
    assert!(unchosen.body.contains("nhsuk-error-summary"));
    assert!(unchosen.body.contains("Choose whether the advisory applies"));
    assert!(unchosen.body.contains(r#"value="isolated ward""#));
    let blank = browser.post(&close, &[("csrf_token", &token), ("remediation_note", "  ")]).await;
    assert_eq!(blank.status, 422);
    assert!(blank.body.contains("closing needs a remediation note"), "{}", blank.body);
    assert_eq!(browser.post(&close, &[("remediation_note", "Patched")]).await.status, 403, "no CSRF token");
    assert!(browser.get(&path).await.body.contains("Not yet"), "still open");

    let recorded = browser
        .post(&applicability, &[("csrf_token", &token), ("applicable", "yes"), ("reason", "ten desktops")])
        .await;
    assert_eq!(recorded.status, 303, "{}", recorded.body);
    assert!(browser.get(recorded.location()).await.body.contains("Yes: ten desktops"));

    // Another trust's officer, an exemplar and an auditor cannot respond for RR8.
    let other = app.create_user(Role::Officer, Some("RJ1"));
    let mut them = Browser::new(&app);
    them.sign_in(&other).await;
    assert_eq!(them.get(&path).await.status, 404);
    let their_token = them.get("/").await.hidden("csrf_token");
    let note = [("csrf_token", their_token.as_str()), ("remediation_note", "Not ours")];
    assert_eq!(them.post(&close, &note).await.status, 404);
    let exemplar = app.create_user(Role::Exemplar, Some("RM3"));
    let mut author = Browser::new(&app);
    author.sign_in(&exemplar).await;
    assert_eq!(author.get(&path).await.status, 404);
    let auditor = app.create_user(Role::Auditor, None);
    let mut audit = Browser::new(&app);
    audit.sign_in(&auditor).await;
    let seen = audit.get(&path).await;
    assert_eq!(seen.status, 200, "auditors read every organisation's response");
    assert!(!seen.body.contains("/close\""), "but cannot respond");
    let audit_token = seen.hidden("csrf_token");
    let note = [("csrf_token", audit_token.as_str()), ("remediation_note", "Audited")];
    assert_eq!(audit.post(&close, &note).await.status, 403);

    let closed = browser
        .post(&close, &[("csrf_token", &token), ("remediation_note", "Upgraded to Windows 11 Enterprise")])
        .await;
    assert_eq!(closed.status, 303);
    let page = browser.get(closed.location()).await;
    assert!(page.body.contains("The advisory is closed"));
    assert!(page.body.contains("Upgraded to Windows 11 Enterprise"));
    assert!(!page.body.contains("/close\""), "nothing left to do");
    let twice = browser.post(&close, &[("csrf_token", &token), ("remediation_note", "Again")]).await;
    assert_eq!(twice.status, 409);

    // The national team responds for any organisation, from the advisory's exposure table.
    let admin = app.create_user(Role::Admin, None);
    let mut national = Browser::new(&app);
    national.sign_in(&admin).await;
    let exposure = national.get(&format!("/advisories/{advisory}")).await;
    assert!(exposure.body.contains(&format!(r#"href="{path}""#)));
    assert_eq!(national.get(&path).await.status, 200);
}

fn count_rows(app: &TestApp, table: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    app.with_connection(|conn| {
        use diesel::prelude::*;
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}")).get_result::<Count>(conn).unwrap().n
    })
}

async fn an_officer_corrects_a_purchase_with_a_new_record_that_supersedes_it(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let id = standard_id(&mut browser, "Medical device security").await;
    let form = browser.get(&format!("/organisations/RR8/purchases/new?standard={id}")).await;
    let token = form.hidden("csrf_token");
    let version = form.hidden("version");
    let mut first = x_ray_purchase(&token, &id, &version);
    assert_eq!(browser.post("/organisations/RR8/purchases", &fields(&first)).await.status, 303);
    let old: i64 = app.with_connection(|conn| {
        use db::schema::purchases::dsl::*;
        use diesel::prelude::*;
        purchases.select(id).first(conn).unwrap()
    });
    let organisation = browser.get("/organisations/RR8").await;
    let path = format!("/organisations/RR8/purchases/new?standard={id}&corrects={old}");
    assert!(organisation.body.contains(&path.replace('&', "&amp;")), "each purchase can be corrected");

    let correction = browser.get(&path).await;
    assert_eq!(correction.status, 200, "{}", correction.body);
    assert!(correction.body.contains("Correct a local purchase"));
    assert_eq!(correction.hidden("supersedes"), old.to_string());
    assert!(correction.body.contains(r#"value="PO-1""#), "the form starts with what was recorded");
    assert!(correction.body.contains(r#"value="12000.00""#));
    assert!(correction.body.contains(r#"name="met_MDS-01" type="checkbox" value="yes" checked"#));

    first.retain(|(k, _)| k != "order_reference");
    first.push(("order_reference".into(), "PO-1A".into()));
    first.push(("supersedes".into(), old.to_string()));
    first.push(("met_MDS-02".into(), "yes".into()));
    first.push(("met_MDS-03".into(), "yes".into()));
    let mut no_token = first.clone();
    no_token.retain(|(k, _)| k != "csrf_token");
    assert_eq!(browser.post("/organisations/RR8/purchases", &fields(&no_token)).await.status, 403);
    assert_eq!(count_rows(&app, "purchases"), 1);

    let corrected = browser.post("/organisations/RR8/purchases", &fields(&first)).await;
    assert_eq!(corrected.status, 303, "{}", corrected.body);
    assert_eq!(corrected.location(), "/organisations/RR8?notice=corrected");
    let page = browser.get(corrected.location()).await;
    assert!(page.body.contains("The correction is recorded and replaces the earlier purchase"));
    assert!(page.body.contains("PO-1A"));
    assert!(page.body.contains("Corrects an earlier record"));
    assert!(!page.body.contains(">PO-1<"), "the superseded purchase is no longer listed");

    let again = browser.post("/organisations/RR8/purchases", &fields(&first)).await;
    assert_eq!(again.status, 422, "a purchase is superseded once");
    assert!(again.body.contains("already been superseded"), "{}", again.body);
    assert!(again.body.contains("Correct a local purchase"), "the correction form again");
    assert_eq!(count_rows(&app, "purchases"), 2);

    // Another trust can neither open the correction nor correct RR8's purchase from its own page.
    let other = app.create_user(Role::Officer, Some("RJ1"));
    let mut them = Browser::new(&app);
    them.sign_in(&other).await;
    assert_eq!(them.get(&path).await.status, 404);
    let theirs = format!("/organisations/RJ1/purchases/new?standard={id}&corrects={old}");
    assert_eq!(them.get(&theirs).await.status, 404);
    let their_token = them.get("/").await.hidden("csrf_token");
    let mut stolen = first.clone();
    stolen.retain(|(k, _)| k != "csrf_token" && k != "supersedes");
    stolen.push(("csrf_token".into(), their_token));
    let mut for_rr8 = stolen.clone();
    for_rr8.push(("supersedes".into(), old.to_string()));
    assert_eq!(them.post("/organisations/RR8/purchases", &fields(&for_rr8)).await.status, 404);
    let mut from_rj1_missing = stolen.clone();
    let mut from_rj1 = stolen;
    from_rj1.push(("supersedes".into(), old.to_string()));
    let refused = them.post("/organisations/RJ1/purchases", &fields(&from_rj1)).await;
    assert_eq!(refused.status, 422);
    // Answered as for a purchase that does not exist, so ids of other trusts' purchases stay
    // unknown (the security test's finding: "is not RJ1's" told them apart).
    assert!(refused.body.contains(&format!("purchase {old} does not exist")), "{}", refused.body);
    from_rj1_missing.push(("supersedes".into(), "99999".into()));
    let missing = them.post("/organisations/RJ1/purchases", &fields(&from_rj1_missing)).await;
    assert_eq!(missing.status, 422);
    assert!(missing.body.contains("purchase 99999 does not exist"), "{}", missing.body);
    assert_eq!(count_rows(&app, "purchases"), 2);
}

async fn an_officer_records_a_risk_acceptance_from_the_organisation_page(app: TestApp) {
    app.license_nationally("MS-WIN10-ENT", None).await;
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    exposed_to_the_windows_10_advisory(&mut browser).await;
    let organisation = browser.get("/organisations/RR8").await;
    assert!(organisation.body.contains("RR8 has recorded no risk acceptances."));
    let path = "/organisations/RR8/risk-acceptances/new";
    assert!(organisation.body.contains(&format!(r#"href="{path}""#)));
    let form = browser.get(path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let token = form.hidden("csrf_token");
    let marker = r#"<option value=""#;
    let start = form.body.find("Choose a product</option>").unwrap();
    let at = form.body[start..].find(marker).expect("a product RR8 holds") + start + marker.len();
    let product = form.body[at..].split('"').next().unwrap().to_owned();
    let next_year = chrono::Utc::now().date_naive() + chrono::Days::new(365);
    let next_year =
        [next_year.day().to_string(), next_year.month().to_string(), next_year.year().to_string()];
    let next_year = [next_year[0].as_str(), next_year[1].as_str(), next_year[2].as_str()];
    let acceptance = |product: &str, controls: &str, [day, month, year]: [&str; 3], token: &str| {
        vec![
            ("csrf_token".to_owned(), token.to_owned()),
            ("product_id".to_owned(), product.to_owned()),
            ("compensating_controls".to_owned(), controls.to_owned()),
            ("mds2_reference".to_owned(), "MDS2-W10-7".to_owned()),
            ("expires_on-day".to_owned(), day.to_owned()),
            ("expires_on-month".to_owned(), month.to_owned()),
            ("expires_on-year".to_owned(), year.to_owned()),
        ]
    };
    let record = "/organisations/RR8/risk-acceptances";

    // Bad input: the form again with an error summary linked to the field (the date's first wrong
    // box) and what was typed; nothing recorded.
    for (fields_, message, link) in [
        (
            acceptance("", "Isolated VLAN", next_year, &token),
            "Choose the product the acceptance is for",
            "product_id",
        ),
        (
            acceptance(&product, "Isolated VLAN", ["31", "2", next_year[2]], &token),
            "Expiry date must be a real date",
            "expires_on-day",
        ),
        (
            acceptance(&product, "Isolated VLAN", ["31", "", ""], &token),
            "Expiry date must include a month and year",
            "expires_on-month",
        ),
        (
            acceptance(&product, "Isolated VLAN", ["1", "1", "27"], &token),
            "Year must include 4 numbers",
            "expires_on-year",
        ),
        (
            acceptance(&product, "Isolated VLAN", ["1", "1", "2020"], &token),
            "Expiry date must be in the future",
            "expires_on-day",
        ),
        (
            acceptance(&product, " ", next_year, &token),
            "Describe the compensating controls",
            "compensating_controls",
        ),
    ] {
        let refused = browser.post(record, &fields(&fields_)).await;
        assert_eq!(refused.status, 422, "{message}");
        assert!(refused.body.contains("nhsuk-error-summary"));
        assert!(refused.body.contains(message), "{message}: {}", refused.body);
        assert!(refused.body.contains(&format!(r##"<a href="#{link}">"##)), "{message}: linked to {link}");
        let year = format!(
            r#"id="expires_on-year" name="expires_on-year" type="text" inputmode="numeric" spellcheck="false" value="{}""#,
            fields_[6].1
        );
        assert!(refused.body.contains(&year), "the year typed is kept: {}", refused.body);
        assert!(refused.body.contains(r#"value="MDS2-W10-7""#), "what was typed is kept");
        let chosen = format!(r#"<option value="{}" selected>"#, fields_[1].1);
        assert_eq!(refused.body.contains(&chosen), !fields_[1].1.is_empty(), "the product chosen is kept");
    }
    // Both of the data layer's rules broken: both listed at once, each beside its field.
    let both = browser.post(record, &fields(&acceptance(&product, " ", ["1", "1", "2020"], &token))).await;
    assert_eq!(both.status, 422);
    for (message, link) in [
        ("Describe the compensating controls", "compensating_controls"),
        ("Expiry date must be in the future", "expires_on-day"),
    ] {
        assert!(
            both.body.contains(&format!(r##"<a href="#{link}">{message}</a>"##)),
            "{message}: {}",
            both.body
        );
    }
    assert!(both.body.contains(r#"id="compensating_controls-error""#), "inline: {}", both.body);
    let no_token = acceptance(&product, "Isolated VLAN", next_year, "");
    assert_eq!(browser.post(record, &fields(&no_token)).await.status, 403);
    assert_eq!(count_rows(&app, "risk_acceptances"), 0);

    // Another trust's officer, an auditor and an exemplar may not record one for RR8.
    for (user, status) in [
        (app.create_user(Role::Officer, Some("RJ1")), 404),
        (app.create_user(Role::Auditor, None), 403),
        (app.create_user(Role::Exemplar, Some("RM3")), 403),
    ] {
        let mut other = Browser::new(&app);
        other.sign_in(&user).await;
        assert_eq!(other.get(path).await.status, status);
        let their_token = other.get("/").await.hidden("csrf_token");
        let theirs = acceptance(&product, "Not ours", next_year, &their_token);
        assert_eq!(other.post(record, &fields(&theirs)).await.status, status);
    }
    assert_eq!(count_rows(&app, "risk_acceptances"), 0);

    let recorded = browser
        .post(record, &fields(&acceptance(&product, "Isolated VLAN, no internet", next_year, &token)))
        .await;
    assert_eq!(recorded.status, 303, "{}", recorded.body);
    assert_eq!(recorded.location(), "/organisations/RR8?notice=risk-accepted");
    let page = browser.get(recorded.location()).await;
    assert!(page.body.contains("The risk acceptance is recorded."));
    assert!(page.body.contains("Isolated VLAN, no internet"));
    assert!(page.body.contains("MDS2-W10-7"));
    assert_eq!(count_rows(&app, "risk_acceptances"), 1);
}

/// On a line that requires approval, the start page says so, and its claim form makes a seat
/// request: no seats are taken, and the notice says the national team decides.
async fn a_claim_form_on_an_approval_line_makes_a_request(app: TestApp) {
    let (_, line) = app.license_nationally("MS-WIN10-ENT", None).await;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let restrict = app
        .patch_any_version(&format!("/v1/entitlements/{line}"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"requires_approval": true, "per_organisation_cap": 40}));
    assert_eq!(restrict.send().await.unwrap().status(), 200);
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let (entitlement, page) = windows_10_claim_form(&mut browser).await;
    assert_eq!(entitlement, line.to_string());
    // askama escapes the apostrophe, so the check is on the words either side of it.
    assert!(
        page.body.contains("Needs the national team")
            && page.body.contains("s approval: a claim is a request"),
        "the restriction is shown: {}",
        page.body
    );
    assert!(page.body.contains("An organisation may hold at most 40 seats"));
    let token = page.hidden("csrf_token");
    let fields = [
        ("organisation", "RR8"),
        ("quantity", "5"),
        ("question", "Windows 10 Enterprise"),
        ("csrf_token", &token),
    ];
    let requested = browser.post(&format!("/entitlements/{line}/claim"), &fields).await;
    assert_eq!(requested.status, 303, "{}", requested.body);
    assert!(requested.location().contains("notice=requested"), "{}", requested.location());
    let notice = browser.get(requested.location()).await;
    assert!(notice.body.contains("You asked for 5 seats"), "{}", notice.body);
    let (requests, allocations): (i64, i64) = app.with_connection(|conn| {
        use diesel::prelude::*;
        (
            db::schema::seat_requests::table.count().get_result(conn).unwrap(),
            db::schema::allocations::table.count().get_result(conn).unwrap(),
        )
    });
    assert_eq!((requests, allocations), (1, 0), "a request, and no seats taken");
}

/// Releasing is never one click: the list links to a page that shows the allocation and asks how
/// many seats (all at first); fewer keeps the rest; a number it cannot take shows the page again
/// with an error summary linked to the field, the message beside it and what was typed.
async fn an_officer_releases_part_of_an_allocation_after_confirming(app: TestApp) {
    let (mut browser, claimed) = rr8_officer_claims_windows_10(&app, &[("quantity", "1,200")]).await;
    assert_eq!(claimed.status, 303, "1,200 is a number people write: {}", claimed.body);
    let (allocation, held) = app.with_connection(|conn| {
        use db::schema::allocations::dsl::*;
        use diesel::prelude::*;
        allocations.select((id, quantity)).first::<(i64, i64)>(conn).unwrap()
    });
    assert_eq!(held, 1200);

    let organisation = browser.get("/organisations/RR8").await;
    let link = format!("/allocations/{allocation}/release?return_to=/organisations/RR8");
    assert!(organisation.body.contains(&link), "the list links to the page: {}", organisation.body);
    assert!(!organisation.body.contains(r#"/release" method="post""#), "no one-click release on the list");
    let confirm = browser.get(&link).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Release seats"));
    assert!(confirm.body.contains("1,200 seats"), "what the allocation holds: {}", confirm.body);
    assert!(
        confirm
            .body
            .contains(r#"name="quantity" type="text" inputmode="numeric" spellcheck="false" value="1,200""#)
    );
    assert_eq!(confirm.hidden("return_to"), "/organisations/RR8");
    let token = confirm.hidden("csrf_token");
    let release = |quantity: &'static str| {
        [("quantity", quantity), ("return_to", "/organisations/RR8"), ("csrf_token", "")]
    };

    for (typed, message) in
        [("1,201", "Enter 1,200 or fewer"), ("two", "whole number"), ("-3", "whole number")]
    {
        let mut fields = release(typed);
        fields[2].1 = &token;
        let refused = browser.post(&format!("/allocations/{allocation}/release"), &fields).await;
        assert_eq!(refused.status, 422, "{typed}");
        assert!(refused.body.contains("There is a problem"), "an error summary: {}", refused.body);
        assert!(refused.body.contains(r##"<a href="#quantity">"##), "linked to the field");
        assert!(refused.body.contains(r#"id="quantity-error""#), "the message beside the field");
        assert!(refused.body.contains(message), "{typed}: {}", refused.body);
        assert!(refused.body.contains(&format!(r#"value="{typed}""#)), "what was typed is kept");
        assert!(refused.body.contains("<title>Error: "), "the title says there is an error");
    }
    let quantity_now = || {
        app.with_connection(|conn| {
            use db::schema::allocations::dsl::*;
            use diesel::prelude::*;
            allocations.find(allocation).select(quantity).first::<i64>(conn).unwrap()
        })
    };
    assert_eq!(quantity_now(), 1200, "nothing was released by a refused form");

    let mut fields = release("200");
    fields[2].1 = &token;
    let released = browser.post(&format!("/allocations/{allocation}/release"), &fields).await;
    assert_eq!(released.status, 303);
    assert_eq!(released.location(), "/organisations/RR8?notice=released&n=200");
    assert!(browser.get(released.location()).await.body.contains("You released 200 seats."));
    assert_eq!(quantity_now(), 1000, "the rest is kept");
}

/// Pages name people and organisations as people know them: the header the signed-in user's name,
/// a standard's publisher by name beside its code.
async fn pages_name_people_and_publishers(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let start = browser.get("/").await;
    assert!(start.body.contains("Test officer ("), "the header names the user: {}", start.body);
    assert!(
        !start.body.contains(&format!("{} (", officer.email)),
        "the header shows the name, not the email"
    );
    let publisher = app.with_connection(|conn| db::organisations::get(conn, "RM3").unwrap().name);
    let standards = browser.get("/standards").await;
    assert_eq!(standards.status, 200);
    assert!(standards.body.contains(&format!("{publisher} (RM3)")), "{}", standards.body);
}

/// Auditors read the audit log on a page: filtered on the server by action, organisation and
/// dates, the same selection as CSV, and a date it cannot read shown back with an error summary.
async fn an_auditor_reads_and_downloads_the_audit_log(app: TestApp) {
    let claim = [("quantity", "7"), ("reference", "AUDIT-REF")];
    let (mut browser, claimed) = rr8_officer_claims_windows_10(&app, &claim).await;
    assert_eq!(claimed.status, 303);
    assert_eq!(browser.get("/audit").await.status, 403, "officers do not read the log");

    let auditor = app.create_user(Role::Auditor, None);
    let mut auditing = Browser::new(&app);
    auditing.sign_in(&auditor).await;
    let whole = auditing.get("/audit").await;
    assert_eq!(whole.status, 200);
    assert!(whole.body.contains("allocation.claim"), "{}", whole.body);
    assert!(whole.body.contains("entitlement.create") || whole.body.contains("agreement.create"));

    let today = chrono::Utc::now().date_naive();
    let (d, m, y) = (today.day(), today.month(), today.year());
    let days = format!("from-day={d}&from-month={m}&from-year={y}&to-day={d}&to-month={m}&to-year={y}");
    let filtered = auditing.get(&format!("/audit?action=allocation.claim&organisation=rr8&{days}")).await;
    assert_eq!(filtered.status, 200);
    assert!(filtered.body.contains("allocation.claim"));
    assert!(!filtered.body.contains("agreement.create"), "only the action asked for: {}", filtered.body);
    assert!(filtered.body.contains(r#"value="rr8""#), "the filters are kept in the form");
    let download = format!(
        "/audit?action=allocation.claim&#38;organisation=rr8&#38;{}&#38;format=csv",
        days.replace('&', "&#38;")
    );
    assert!(filtered.body.contains(&download), "the download keeps the filters: {}", filtered.body);

    let csv = auditing.get(&download.replace("&#38;", "&")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].contains("action"), "a header row: {}", lines[0]);
    assert_eq!(lines.len(), 2, "the one claim: {}", csv.body);
    assert!(lines[1].contains("allocation.claim") && lines[1].contains("RR8"));

    let before = auditing.get("/audit?action=allocation.claim&to-day=1&to-month=1&to-year=2000").await;
    assert!(before.body.contains("No events match these filters."));
    // An address from before the three boxes still filters, and its links use the boxes.
    let old = auditing.get(&format!("/audit?action=allocation.claim&from={today}&to=2000-01-01")).await;
    assert_eq!(old.status, 200);
    assert!(old.body.contains("No events match these filters."));
    assert!(
        old.body.contains(&format!("from-day={d:02}&#38;from-month={m:02}&#38;from-year={y}")),
        "{}",
        old.body
    );
    let bad = auditing
        .get("/audit?from-day=31&from-month=2&from-year=2026&to-day=1&to-month=12&to-year=26&action=allocation.claim")
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("There is a problem"));
    assert!(bad.body.contains(r##"<a href="#from-day">From date must be a real date</a>"##), "{}", bad.body);
    assert!(
        bad.body.contains(r##"<a href="#to-year">Year must include 4 numbers</a>"##),
        "both problems at once"
    );
    assert!(
        bad.body.contains(
            r#"id="to-year" name="to-year" type="text" inputmode="numeric" spellcheck="false" value="26""#
        ),
        "what was typed is kept"
    );
    assert!(!bad.body.contains("Download CSV"), "no download of the page with its errors");

    // To 31 December 9999: every event from the day on (no next day to stop before; SQLite
    // compared "+10000-01-01" as text and found none).
    let to_the_end = auditing
        .get(&format!("/audit?action=allocation.claim&from-day={d}&from-month={m}&from-year={y}&to-day=31&to-month=12&to-year=9999"))
        .await;
    assert_eq!(to_the_end.status, 200);
    assert!(to_the_end.body.contains("allocation.claim"), "{}", to_the_end.body);
    assert!(!to_the_end.body.contains("No events match these filters."));
}

/// The national team adds an account on a page: every problem listed at once and linked to its
/// field, what was typed kept (never the password), the data layer's refusals (an unknown trust,
/// a taken email) against the field to correct; then disables it after confirming, which signs
/// the person out, and enables it again. Auditors see accounts but change nothing.
async fn the_national_team_adds_disables_and_enables_an_account(app: TestApp) {
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let users = browser.get("/users").await;
    assert!(users.body.contains(r#"href="/users/new""#), "admins are offered the form");
    let form = browser.get("/users/new").await;
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains(r#"id="email" name="email" type="email" autocomplete="email""#),
        "{}",
        form.body
    );
    let token = form.hidden("csrf_token");

    let empty = browser.post_form("/users", &[("csrf_token", &token)]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("<title>Error: Add a user"), "{}", empty.body);
    for field in ["display_name", "email", "role", "password"] {
        assert!(
            empty.body.contains(&format!(r##"<a href="#{field}">"##)),
            "{field} is listed: {}",
            empty.body
        );
        assert!(empty.body.contains(&format!(r#"id="{field}-error""#)), "{field} has its message beside it");
    }

    let strong = "tangerine quietly harbours seven kites";
    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("display_name", "Priya Shah"),
        ("email", "Priya.Shah@nhs.net"),
        ("role", "officer"),
        ("organisation_code", ""),
        ("password", "password1"),
    ];
    let weak = browser.post_form("/users", &fields).await;
    assert_eq!(weak.status, 422);
    assert!(weak.body.contains(r##"<a href="#organisation_code">"##), "an officer needs a trust");
    assert!(weak.body.contains(r##"<a href="#password">The password"##), "{}", weak.body);
    assert!(!weak.body.contains(r##"<a href="#email">"##), "the email was fine");
    assert!(weak.body.contains(r#"value="Priya Shah""#), "what was typed is kept");
    assert!(weak.body.contains(r#"value="officer" aria-describedby="role-officer-hint" checked"#));
    assert!(!weak.body.contains("password1"), "the password is never shown back");

    fields[4] = ("organisation_code", "ZZ999");
    fields[5] = ("password", strong);
    let unknown = browser.post_form("/users", &fields).await;
    assert_eq!(unknown.status, 422);
    assert!(
        unknown.body.contains(r##"<a href="#organisation_code">Organisation ZZ999 does not exist"##),
        "{}",
        unknown.body
    );
    let every = db::users::UserFilter {
        role: None,
        organisation_code: None,
        include_disabled: true,
        order: db::users::UserOrder::Added,
    };
    let most = db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let count = || app.with_connection(|conn| db::users::list(conn, &every, &most).unwrap().items.len());
    let before = count();

    fields[4] = ("organisation_code", "rr8");
    let created = browser.post_form("/users", &fields).await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(count(), before + 1);
    let page = browser.get(created.location()).await;
    assert!(page.body.contains("Account created"), "{}", page.body);
    assert!(page.body.contains("priya.shah@nhs.net") && page.body.contains("Procurement officer"));
    assert!(page.body.contains(r#"href="/organisations/RR8""#));
    let id: i64 =
        created.location().trim_start_matches("/users/").split('?').next().unwrap().parse().unwrap();

    let taken = browser.post_form("/users", &fields).await;
    assert_eq!(taken.status, 422);
    assert!(
        taken.body.contains(r##"<a href="#email">A user with this email already exists"##),
        "{}",
        taken.body
    );
    assert_eq!(count(), before + 1, "nothing half-made");

    // The new account signs in with the password the admin set.
    let priya = TestUser {
        id,
        email: "priya.shah@nhs.net".into(),
        role: Role::Officer,
        organisation: Some("RR8".into()),
    };
    let mut theirs = Browser::new(&app);
    let login = theirs.get("/login").await;
    let signed_in = theirs
        .post_form(
            "/login",
            &[("email", &priya.email), ("password", strong), ("csrf_token", &login.hidden("csrf_token"))],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(theirs.get("/organisations/RR8").await.status, 200);

    let confirm = browser.get(&format!("/users/{id}/disable")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("signed out everywhere"), "{}", confirm.body);
    let disabled = browser.post_form(&format!("/users/{id}/disable"), &[("csrf_token", &token)]).await;
    assert_eq!(disabled.status, 303);
    let page = browser.get(disabled.location()).await;
    assert!(
        page.body.contains("Account disabled") && page.body.contains("Enable this account"),
        "{}",
        page.body
    );
    let signed_out = theirs.get("/organisations/RR8").await;
    assert_eq!(signed_out.status, 303, "the disabled person's session ended");
    assert!(signed_out.location().starts_with("/login"), "{}", signed_out.location());

    let enabled = browser.post_form(&format!("/users/{id}/enable"), &[("csrf_token", &token)]).await;
    assert_eq!(enabled.status, 303);
    assert!(browser.get(enabled.location()).await.body.contains("Account enabled"));
    assert!(!app.with_connection(|conn| db::users::get(conn, id).unwrap().disabled));

    let own = browser.get(&format!("/users/{}", admin.id)).await;
    assert!(!own.body.contains("Disable this account"), "an admin is not offered their own account");
    assert_eq!(browser.get(&format!("/users/{}/disable", admin.id)).await.status, 403, "nor asked about it");
    let refused = browser.post_form(&format!("/users/{}/disable", admin.id), &[("csrf_token", &token)]).await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    assert!(refused.body.contains("you cannot disable your own account"), "{}", refused.body);
    assert!(!app.with_connection(|conn| db::users::get(conn, admin.id).unwrap().disabled));

    let auditor = app.create_user(Role::Auditor, None);
    let mut auditing = Browser::new(&app);
    auditing.sign_in(&auditor).await;
    let seen = auditing.get(&format!("/users/{id}")).await;
    assert_eq!(seen.status, 200);
    assert!(!seen.body.contains("Disable this account"), "auditors change nothing");
    assert!(!auditing.get("/users").await.body.contains(r#"href="/users/new""#));
    assert_eq!(auditing.get("/users/new").await.status, 403);
}

/// The start page lists what needs the user's attention until a question is asked: an officer
/// their trust's risk acceptance about to end, the national team a line nearly full; auditors,
/// who act on nothing, get no list.
async fn the_start_page_lists_what_needs_attention(app: TestApp) {
    let (agreement, line) = app.license_nationally("MS-WIN10-ENT", None).await;
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let quiet = browser.get("/").await;
    assert!(quiet.body.contains("Needs your attention"), "{}", quiet.body);
    assert!(quiet.body.contains("Nothing needs your attention today."));

    let today = chrono::Utc::now().date_naive();
    let product = app.with_connection(|conn| db::agreements::get_entitlement(conn, line).unwrap().product_id);
    let acceptance = db::risk::NewRiskAcceptance {
        organisation_code: "RR8".into(),
        product_id: product,
        compensating_controls: "Isolated network segment".into(),
        mds2_reference: None,
        expires_on: today + chrono::Days::new(10),
    };
    db::risk::accept(app.db(), &db::Actor::system("test"), acceptance, today).unwrap();
    let start = browser.get("/").await;
    assert!(!start.body.contains("Nothing needs your attention"), "{}", start.body);
    assert!(
        start.body.contains(
            r##"<a href="/organisations/RR8#risk-acceptances">Your acceptance of the risk of running Windows 10"##
        ),
        "{}",
        start.body
    );
    let asked = browser.get("/?q=Windows+10+Enterprise").await;
    assert!(
        !asked.body.contains("Needs your attention"),
        "the answer, not the list, once a question is asked"
    );

    let claimed = browser
        .post_form(
            &format!("/entitlements/{line}/claim"),
            &[
                ("organisation", "RR8"),
                ("quantity", "9"),
                ("csrf_token", &start.hidden("csrf_token")),
                ("question", "Windows 10 Enterprise"),
            ],
        )
        .await;
    assert_eq!(claimed.status, 303, "{}", claimed.body);
    let (_, admin_token) = app.sign_in(Role::Admin, None).await;
    let cap = |seats: i64| {
        let request = app.patch_any_version(&format!("/v1/entitlements/{line}")).bearer_auth(&admin_token);
        async move {
            let capped = request.json(&serde_json::json!({"seat_cap": seats})).send().await.unwrap();
            assert_eq!(capped.status(), 200, "{}", capped.text().await.unwrap_or_default());
        }
    };
    // An admin recorded against a trust still gets the national list.
    let admin = app.create_user(Role::Admin, Some("RR8"));
    let mut national = Browser::new(&app);
    national.sign_in(&admin).await;
    cap(11).await;
    assert!(!national.get("/").await.body.contains("seats allocated"), "9 of 11 is not nearly full");
    cap(10).await;
    let theirs = national.get("/").await;
    assert!(
        theirs.body.contains(&format!(
            r#"<a href="/agreements/{agreement}">Windows 10 Enterprise 10.0: 9 of 10 seats allocated</a>"#
        )),
        "{}",
        theirs.body
    );
    assert!(
        !theirs.body.contains("Your acceptance of the risk"),
        "a trust's own business is not the national list"
    );

    cap(9).await;
    assert!(
        national.get("/").await.body.contains(r#"<strong class="nhsuk-tag nhsuk-tag--orange">Full</strong>"#)
    );

    let other = app.create_user(Role::Officer, Some("RJ1"));
    let mut elsewhere = Browser::new(&app);
    elsewhere.sign_in(&other).await;
    let theirs = elsewhere.get("/").await;
    assert!(
        theirs.body.contains("Nothing needs your attention today."),
        "not RR8's business: {}",
        theirs.body
    );

    for role in [Role::Auditor, Role::Exemplar] {
        let user = app.create_user(role, (role == Role::Exemplar).then_some("RM3"));
        let mut browser = Browser::new(&app);
        browser.sign_in(&user).await;
        assert!(!browser.get("/").await.body.contains("Needs your attention"), "{role:?} acts on none of it");
    }
}

on_both_engines!(
    the_start_page_lists_what_needs_attention,
    the_national_team_adds_disables_and_enables_an_account,
    a_claim_form_on_an_approval_line_makes_a_request,
    an_auditor_reads_and_downloads_the_audit_log,
    pages_name_people_and_publishers,
    an_officer_releases_part_of_an_allocation_after_confirming,
    an_officer_corrects_a_purchase_with_a_new_record_that_supersedes_it,
    an_officer_records_a_risk_acceptance_from_the_organisation_page,
    an_officer_records_whether_an_advisory_applies_and_closes_it,
    signing_out_ends_the_session_token_not_just_the_cookie,
    the_publisher_changes_and_removes_draft_requirements,
    the_publisher_withdraws_a_version_after_confirming,
    the_publisher_assesses_products_against_the_published_version,
    an_officer_acknowledges_an_advisory_for_their_own_trust_only,
    an_active_session_is_renewed_and_keeps_its_forms_valid,
    only_the_publisher_drafts_and_publishes_a_standard,
    an_officer_records_a_purchase_against_the_published_version,
    sign_in_sets_a_strict_http_only_session_cookie,
    a_wrong_password_signs_no_one_in,
    forms_without_their_csrf_token_are_refused,
    an_officer_cannot_see_another_trusts_pages,
    disabling_a_user_ends_their_session,
    pages_answer_in_plain_words_under_a_page_csp,
    the_unsupported_software_page_shows_one_page_at_a_time,
);
