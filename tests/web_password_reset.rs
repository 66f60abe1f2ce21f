//! "Forgotten your password?" on both engines, with a real SMTP server (aiosmtpd, as
//! `notify_send` uses): the email arrives with a link that works once and ends every session;
//! older, expired and spent links do not work and say nothing of why; the answer to a request is
//! the same for an unknown address, a disabled account and a real one, and only the real one gets
//! an email; the token is in neither the database nor the audit log; the new password meets the
//! same rule as "Change your password"; an admin sends the same email from a user's page.

use std::time::Duration;

use catalogue_tests::smtp::SmtpServer;
use catalogue_tests::{Engine, Role, TEST_PASSWORD, TestApp, TestUser, on_both_engines, spawn_app_with_mail};

use crate::notify_send::Parsed;
use crate::web::{Browser, Page};

const NEW_PASSWORD: &str = "tangerine otter on a bicycle";
const SENT: &str =
    "If an account exists for that address, we have sent a link to it. It works for 30 minutes.";
/// How long the tests wait for an email that should arrive, and for one that should not.
const ARRIVES_WITHIN: Duration = Duration::from_secs(15);
const NOTHING_WITHIN: Duration = Duration::from_millis(2500);

/// Runs `test` on an app whose reset emails go to a real SMTP server.
async fn with_mail<F, Fut>(engine: Engine, test: F)
where
    F: FnOnce(TestApp, SmtpServer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(smtp) = SmtpServer::start() else { return };
    let Some(app) = spawn_app_with_mail(engine, &smtp.url()).await else { return };
    test(app, smtp).await
}

macro_rules! with_mail_on_both_engines {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[actix_web::test]
                async fn sqlite() {
                    super::with_mail(catalogue_tests::Engine::Sqlite, super::$test).await
                }

                #[actix_web::test]
                async fn postgres() {
                    super::with_mail(catalogue_tests::Engine::Postgres, super::$test).await
                }
            }
        )*
    };
}

/// Waits (without blocking the app) until `count` emails have arrived; returns them.
async fn emails(smtp: &SmtpServer, count: usize) -> Vec<Parsed> {
    let deadline = std::time::Instant::now() + ARRIVES_WITHIN;
    loop {
        let messages = smtp.messages();
        if messages.len() >= count {
            return messages.iter().map(|raw| Parsed::new(raw)).collect();
        }
        assert!(std::time::Instant::now() < deadline, "{} of {count} emails arrived", messages.len());
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits a while and checks that still only `count` emails have arrived.
async fn still_only(smtp: &SmtpServer, count: usize) {
    actix_web::rt::time::sleep(NOTHING_WITHIN).await;
    assert_eq!(smtp.messages().len(), count, "an email was sent that should not have been");
}

/// The token of the link in an email's text part, checked to be the same link as in its HTML.
fn token_in(app: &TestApp, email: &Parsed) -> String {
    let text = email.part("text/plain");
    let prefix = format!("{}/password-reset/", app.address);
    let start =
        text.find(&prefix).unwrap_or_else(|| panic!("no link starting {prefix} in {text}")) + prefix.len();
    let token: String =
        text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    assert_eq!(token.len(), 43, "32 bytes, base64url: {token}");
    assert!(email.part("text/html").contains(&format!(r#"href="{prefix}{token}""#)), "the HTML has the link");
    token
}

fn link(token: &str) -> String {
    format!("/password-reset/{token}")
}

/// Asks for a link on the page, as someone signed out; checks the one answer everyone gets.
async fn ask_for_link(app: &TestApp, email: &str) {
    let mut browser = Browser::new(app);
    let form = browser.get("/password-reset").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("<h1>Reset your password</h1>"), "{}", form.body);
    let asked = browser
        .post_form("/password-reset", &[("csrf_token", &form.hidden("csrf_token")), ("email", email)])
        .await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    assert_eq!(asked.location(), "/password-reset?sent=1");
    let sent = browser.get(asked.location()).await;
    assert_eq!(sent.status, 200);
    assert!(sent.body.contains(SENT), "{}", sent.body);
}

fn password_hash(app: &TestApp, user: &TestUser) -> String {
    app.with_connection(|conn| db::users::password_hash(conn, user.id).unwrap())
}

/// One value of the database, as text.
fn value(app: &TestApp, sql: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Value {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    app.with_connection(|conn| {
        use diesel::prelude::*;
        diesel::sql_query(sql).get_result::<Value>(conn).unwrap_or_else(|e| panic!("{sql}: {e}")).value
    })
}

fn links_of(app: &TestApp, user: &TestUser) -> String {
    value(
        app,
        &format!("SELECT CAST(COUNT(*) AS TEXT) AS value FROM password_resets WHERE user_id = {}", user.id),
    )
}

fn execute(app: &TestApp, sql: &str) {
    app.with_connection(|conn| {
        use diesel::prelude::*;
        diesel::sql_query(sql).execute(conn).unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

/// Nowhere in the database is `token` in clear: not in the links' table (which holds its SHA-256)
/// nor anywhere in the audit log.
fn token_stored_nowhere(app: &TestApp, user: &TestUser, token: &str) {
    let stored = value(
        app,
        &format!(
            "SELECT COALESCE(MAX(token_hash), '') AS value FROM password_resets WHERE user_id = {}",
            user.id
        ),
    );
    assert_ne!(stored, token);
    if !stored.is_empty() {
        assert_eq!(stored, db::password_resets::token_hash(token), "the SHA-256 of the token is stored");
    }
    let in_audit = value(
        app,
        &format!(
            "SELECT CAST(COUNT(*) AS TEXT) AS value FROM audit_events WHERE COALESCE(before_state, '') LIKE '%{token}%' \
             OR COALESCE(after_state, '') LIKE '%{token}%' OR entity_id LIKE '%{token}%' OR actor LIKE '%{token}%'"
        ),
    );
    assert_eq!(in_audit, "0", "the token is in the audit log");
}

fn audited(app: &TestApp, action: &str, user: &TestUser) -> Vec<(Option<i64>, String)> {
    app.with_connection(|conn| {
        use db::schema::audit_events::dsl as a;
        use diesel::prelude::*;
        a::audit_events
            .filter(a::action.eq(action))
            .filter(a::entity_id.eq(user.id.to_string()))
            .select((a::actor_user_id, a::actor))
            .load(conn)
            .unwrap()
    })
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.get("/v1/me").bearer_auth(token).send().await.unwrap().status().as_u16()
}

async fn signs_in_with(app: &TestApp, user: &TestUser, password: &str) -> bool {
    let response = app
        .post("/v1/auth/token")
        .json(&serde_json::json!({"email": user.email, "password": password}))
        .send()
        .await
        .unwrap();
    response.status() == 200
}

async fn choose(browser: &mut Browser<'_>, token: &str, new: &str, confirm: &str) -> Page {
    browser.post_form(&link(token), &[("new_password", new), ("confirm_password", confirm)]).await
}

fn assert_listed(page: &Page, field: &str, message: &str) {
    assert!(
        page.body.contains(&format!(r##"<a href="#{field}">{message}"##)),
        "{field}: {message} is listed in the summary: {}",
        page.body
    );
    assert!(page.body.contains(&format!(r#"id="{field}-error""#)), "{field} has its message beside it");
}

fn assert_link_does_not_work(page: &Page) {
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(page.body.contains("<h1>This link no longer works</h1>"), "{}", page.body);
    assert!(page.body.contains(r#"href="/password-reset">Ask for a new link"#), "{}", page.body);
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
}

async fn a_forgotten_password_is_reset_through_the_emailed_link(app: TestApp, smtp: SmtpServer) {
    let user = app.create_user(Role::Officer, Some("RR8"));
    let api_token = app.token_for(&user).await;
    let mut elsewhere = Browser::new(&app);
    elsewhere.sign_in(&user).await;

    let mut browser = Browser::new(&app);
    let login = browser.get("/login").await;
    assert!(
        login.body.contains(r#"<a href="/password-reset">Forgotten your password?</a>"#),
        "{}",
        login.body
    );
    // Typed as people type it: capitals and spaces.
    ask_for_link(&app, &format!("  {}  ", user.email.to_uppercase())).await;

    let sent = emails(&smtp, 1).await;
    let email = &sent[0];
    assert!(email.header("to").is_some_and(|to| to.contains(&user.email)), "{email:?}");
    assert_eq!(email.header("subject"), Some("NHS licence catalogue: reset your password"));
    let text = email.part("text/plain");
    assert!(text.contains("within 30 minutes") && text.contains("The link works once"), "{text}");
    let token = token_in(&app, email);
    token_stored_nowhere(&app, &user, &token);
    let requested = audited(&app, "user.password_reset_link", &user);
    assert_eq!(requested.len(), 1, "the link is audited");
    assert_eq!(requested[0], (None, "anonymous:password-reset-request".to_owned()));

    let form = browser.get(&link(&token)).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(form.headers["referrer-policy"], "no-referrer", "the token never leaves in a Referer");
    assert!(form.body.contains("<title>Choose a new password"), "{}", form.body);
    assert!(form.body.contains(&user.email), "the page names the account");
    for field in ["new_password", "confirm_password"] {
        assert!(
            form.body.contains(&format!(
                r#"id="{field}" name="{field}" type="password" autocomplete="new-password""#
            )),
            "{field}: {}",
            form.body
        );
    }

    // The same rule and messages as "Change your password"; nothing changes, nothing is shown back.
    let before = password_hash(&app, &user);
    let empty = choose(&mut browser, &token, "", "").await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("<title>Error: Choose a new password"), "{}", empty.body);
    assert_listed(&empty, "new_password", "Enter a new password");
    assert_listed(&empty, "confirm_password", "Enter your new password again");
    let weak = choose(&mut browser, &token, "password1", "pasword1").await;
    assert_eq!(weak.status, 422);
    assert_eq!(weak.headers["referrer-policy"], "no-referrer");
    assert_listed(&weak, "new_password", "The password must have at least 12 characters");
    assert_listed(&weak, "confirm_password", "The new passwords do not match");
    let own_address = choose(&mut browser, &token, &user.email, &user.email).await;
    assert_eq!(own_address.status, 422);
    assert!(own_address.body.contains(r##"<a href="#new_password">"##), "{}", own_address.body);
    for typed in ["password1", "pasword1"] {
        assert!(!weak.body.contains(typed), "{typed} is never shown back");
    }
    assert_eq!(password_hash(&app, &user), before, "a refused form changes nothing");
    assert_eq!(me_status(&app, &api_token).await, 200, "and ends no token");

    let reset = choose(&mut browser, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(reset.status, 303, "{}", reset.body);
    assert_eq!(reset.location(), "/login?password_reset=1");
    let login = browser.get(reset.location()).await;
    assert!(login.body.contains("Your password has been reset"), "{}", login.body);
    assert_ne!(password_hash(&app, &user), before);

    // Every session and token of the account ended.
    assert_eq!(me_status(&app, &api_token).await, 401, "the API token ended");
    let other = elsewhere.get("/").await;
    assert_eq!(other.status, 303, "the other session ended");
    assert!(other.location().starts_with("/login"), "{}", other.location());
    assert!(!signs_in_with(&app, &user, TEST_PASSWORD).await, "the old password no longer signs in");
    assert!(signs_in_with(&app, &user, NEW_PASSWORD).await, "the new one does");

    // The link worked once.
    assert_link_does_not_work(&browser.get(&link(&token)).await);
    let again =
        choose(&mut browser, &token, "another password for the bin", "another password for the bin").await;
    assert_link_does_not_work(&again);
    assert!(signs_in_with(&app, &user, NEW_PASSWORD).await, "a spent link changes nothing");
    assert_eq!(links_of(&app, &user), "0", "the spent link is gone");

    let resets = audited(&app, "user.password_reset", &user);
    assert_eq!(resets, vec![(Some(user.id), user.email.clone())], "audited as the account's owner");
    token_stored_nowhere(&app, &user, &token);
}

async fn only_the_newest_link_works_and_only_for_30_minutes(app: TestApp, smtp: SmtpServer) {
    let user = app.create_user(Role::Auditor, None);
    ask_for_link(&app, &user.email).await;
    let first = token_in(&app, &emails(&smtp, 1).await[0]);

    // Asked again at once: the same answer, and nothing new is sent.
    ask_for_link(&app, &user.email).await;
    still_only(&smtp, 1).await;
    assert_eq!(links_of(&app, &user), "1");

    // Six minutes later (the link made then), a new link replaces the first.
    let earlier = six_minutes_earlier(&app);
    execute(
        &app,
        &format!("UPDATE password_resets SET requested_at = {earlier} WHERE user_id = {}", user.id),
    );
    ask_for_link(&app, &user.email).await;
    let second = token_in(&app, &emails(&smtp, 2).await[1]);
    assert_ne!(first, second);
    assert_eq!(links_of(&app, &user), "1", "one link per account");
    let mut browser = Browser::new(&app);
    assert_link_does_not_work(&browser.get(&link(&first)).await);
    assert_eq!(browser.get(&link(&second)).await.status, 200, "the newest link works");

    // Thirty minutes after it was sent, it no longer works, and changes nothing.
    execute(
        &app,
        &format!("UPDATE password_resets SET expires_at = requested_at WHERE user_id = {}", user.id),
    );
    assert_link_does_not_work(&browser.get(&link(&second)).await);
    let late = choose(&mut browser, &second, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_link_does_not_work(&late);
    assert!(signs_in_with(&app, &user, TEST_PASSWORD).await, "the password is unchanged");

    // A link that never was gets the same page.
    assert_link_does_not_work(&browser.get(&link("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).await);
    // An expired link is swept by the next request.
    ask_for_link(&app, "someone.else@test.nhs.uk").await;
    assert_eq!(links_of(&app, &user), "0", "expired links are swept");
}

/// `requested_at` six minutes earlier, in the engine's SQL.
fn six_minutes_earlier(app: &TestApp) -> String {
    match app.engine {
        Engine::Sqlite => "datetime(requested_at, '-6 minutes')".to_owned(),
        Engine::Postgres => "requested_at - INTERVAL '6 minutes'".to_owned(),
    }
}

async fn unknown_and_disabled_addresses_get_the_same_answer_and_no_email(app: TestApp, smtp: SmtpServer) {
    let disabled = app.create_user(Role::Officer, Some("RR8"));
    let enabled = app.create_user(Role::Officer, Some("RR8"));
    // A link made before the account was disabled stops working with it.
    let before = db::password_resets::request_for_user(
        app.db(),
        &db::Actor::system("test"),
        disabled.id,
        chrono::Utc::now().naive_utc(),
    )
    .unwrap();
    let db::password_resets::Requested::Issued(issued) = before else { panic!("{before:?}") };
    let changes = db::users::UserChanges { disabled: Some(true), ..Default::default() };
    db::users::update(app.db(), &db::Actor::system("test"), disabled.id, changes, db::Precondition::Exists)
        .unwrap();
    let mut browser = Browser::new(&app);
    assert_link_does_not_work(&browser.get(&link(&issued.token)).await);
    execute(&app, &format!("DELETE FROM password_resets WHERE user_id = {}", disabled.id));

    let pages_before = value(&app, "SELECT CAST(COUNT(*) AS TEXT) AS value FROM password_resets");
    ask_for_link(&app, "nobody-at-all@test.nhs.uk").await;
    ask_for_link(&app, &disabled.email).await;
    still_only(&smtp, 0).await;
    assert_eq!(value(&app, "SELECT CAST(COUNT(*) AS TEXT) AS value FROM password_resets"), pages_before);
    ask_for_link(&app, &enabled.email).await;
    assert_eq!(emails(&smtp, 1).await.len(), 1, "a real, enabled account gets its email");

    // The form's own problems, and its security token.
    let form = browser.get("/password-reset").await;
    let csrf = form.hidden("csrf_token");
    let empty = browser.post_form("/password-reset", &[("csrf_token", &csrf), ("email", " ")]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("<title>Error: Reset your password"), "{}", empty.body);
    assert_listed(&empty, "email", "Enter your email address");
    let malformed =
        browser.post_form("/password-reset", &[("csrf_token", &csrf), ("email", "not an address")]).await;
    assert_eq!(malformed.status, 422);
    assert_listed(
        &malformed,
        "email",
        "Enter an email address in the correct format, like name@example.nhs.uk",
    );
    assert!(malformed.body.contains(r#"value="not an address""#), "what was typed is kept");
    let forged = Browser::new(&app)
        .post_form("/password-reset", &[("csrf_token", &csrf), ("email", &enabled.email)])
        .await;
    assert_eq!(forged.status, 403, "a form from elsewhere is refused: {}", forged.body);
    still_only(&smtp, 1).await;
}

async fn an_admin_sends_a_reset_email_from_the_users_page(app: TestApp, smtp: SmtpServer) {
    let admin = app.create_user(Role::Admin, None);
    let user = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let page = browser.get(&format!("/users/{}", user.id)).await;
    assert!(page.body.contains("Send a password reset email"), "{}", page.body);
    let csrf = page.hidden("csrf_token");

    let sent =
        browser.post_form(&format!("/users/{}/password-reset", user.id), &[("csrf_token", &csrf)]).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let shown = browser.get(sent.location()).await;
    assert!(
        shown.body.contains(&format!("A password reset email has been sent to {}", user.email)),
        "{}",
        shown.body
    );
    let token = token_in(&app, &emails(&smtp, 1).await[0]);
    assert_eq!(audited(&app, "user.password_reset_link", &user), vec![(Some(admin.id), admin.email.clone())]);
    token_stored_nowhere(&app, &user, &token);

    let again =
        browser.post_form(&format!("/users/{}/password-reset", user.id), &[("csrf_token", &csrf)]).await;
    let shown = browser.get(again.location()).await;
    assert!(shown.body.contains("less than 5 minutes ago, so no new one was sent"), "{}", shown.body);
    still_only(&smtp, 1).await;

    let mut owner = Browser::new(&app);
    assert_eq!(owner.get(&link(&token)).await.status, 200, "the link the admin sent works");
    assert_eq!(choose(&mut owner, &token, NEW_PASSWORD, NEW_PASSWORD).await.status, 303);
    assert!(signs_in_with(&app, &user, NEW_PASSWORD).await);
}

with_mail_on_both_engines!(
    a_forgotten_password_is_reset_through_the_emailed_link,
    only_the_newest_link_works_and_only_for_30_minutes,
    unknown_and_disabled_addresses_get_the_same_answer_and_no_email,
    an_admin_sends_a_reset_email_from_the_users_page,
);

/// Without an SMTP server and a public address, the pages say to ask the national team, the same
/// for every address, and an admin's user page offers no button.
async fn without_mail_reset_by_email_is_not_available(app: TestApp) {
    let user = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    let page = browser.get("/password-reset").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h1>Reset by email is not available</h1>"), "{}", page.body);
    assert!(page.body.contains("Ask the national team"), "{}", page.body);
    assert!(!page.body.contains("<form"), "no form to send");
    let answer = browser.post_form("/password-reset", &[("email", &user.email)]).await;
    assert_eq!(answer.status, 403, "no form without its token either");
    assert_eq!(links_of(&app, &user), "0");

    let admin = app.create_user(Role::Admin, None);
    let mut admin_browser = Browser::new(&app);
    admin_browser.sign_in(&admin).await;
    let user_page = admin_browser.get(&format!("/users/{}", user.id)).await;
    assert!(user_page.body.contains("Reset by email is not available"), "{}", user_page.body);
    assert!(!user_page.body.contains("Send a password reset email"));
    let refused = admin_browser
        .post_form(
            &format!("/users/{}/password-reset", user.id),
            &[("csrf_token", &user_page.hidden("csrf_token"))],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("reset by email is not available"), "{}", refused.body);
    assert_eq!(links_of(&app, &user), "0");
}

on_both_engines!(without_mail_reset_by_email_is_not_available);
