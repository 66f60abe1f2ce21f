//! "Change your password" on both engines: every problem listed at once and beside its field,
//! passwords never shown back, nothing changed by a refused form; a change ends every session
//! and token of the account, as `POST /v1/me/password` does; and guesses at the current
//! password count against the same throttle as the API's.

use catalogue_tests::{Role, TEST_PASSWORD, TestApp, TestUser, on_both_engines};

use crate::web::{Browser, Page};

const NEW_PASSWORD: &str = "tangerine otter on a bicycle";

fn password_hash(app: &TestApp, user: &TestUser) -> String {
    app.with_connection(|conn| db::users::password_hash(conn, user.id).unwrap())
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.get("/v1/me").bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// Sends the form with the CSRF token of the browser's page.
async fn change(browser: &mut Browser<'_>, token: &str, current: &str, new: &str, confirm: &str) -> Page {
    browser
        .post_form(
            "/account/password",
            &[
                ("csrf_token", token),
                ("current_password", current),
                ("new_password", new),
                ("confirm_password", confirm),
            ],
        )
        .await
}

fn assert_listed(page: &Page, field: &str, message: &str) {
    assert!(
        page.body.contains(&format!(r##"<a href="#{field}">{message}"##)),
        "{field}: {message} is listed in the summary: {}",
        page.body
    );
    assert!(page.body.contains(&format!(r#"id="{field}-error""#)), "{field} has its message beside it");
}

async fn changing_your_password_lists_every_problem_and_ends_every_session(app: TestApp) {
    let user = app.create_user(Role::Officer, Some("RR8"));
    let api_token = app.token_for(&user).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let mut elsewhere = Browser::new(&app);
    elsewhere.sign_in(&user).await;

    let start = browser.get("/").await;
    assert!(start.body.contains(r#"href="/account/password""#), "the header links to the page");
    let form = browser.get("/account/password").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<title>Change your password"), "{}", form.body);
    assert!(form.body.contains(r#"href="/account/password" aria-current="page""#));
    assert!(form.body.contains("signed out on this computer and any other"), "the page says what happens");
    for (field, autocomplete) in [
        ("current_password", "current-password"),
        ("new_password", "new-password"),
        ("confirm_password", "new-password"),
    ] {
        assert!(
            form.body.contains(&format!(
                r#"id="{field}" name="{field}" type="password" autocomplete="{autocomplete}""#
            )),
            "{field}: {}",
            form.body
        );
    }
    let token = form.hidden("csrf_token");
    let before = password_hash(&app, &user);

    let empty = change(&mut browser, &token, "", "", "").await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("<title>Error: Change your password"), "{}", empty.body);
    assert_listed(&empty, "current_password", "Enter your current password");
    assert_listed(&empty, "new_password", "Enter a new password");
    assert_listed(&empty, "confirm_password", "Enter your new password again");

    let weak = change(&mut browser, &token, "not my password at all", "password1", "pasword1").await;
    assert_eq!(weak.status, 422);
    assert_listed(&weak, "new_password", "The password must have at least 12 characters");
    assert_listed(&weak, "confirm_password", "The new passwords do not match");
    assert!(!weak.body.contains(r##"<a href="#current_password">"##), "a current password was typed");
    for typed in ["not my password at all", "password1", "pasword1"] {
        assert!(!weak.body.contains(typed), "{typed} is never shown back");
    }

    let wrong = change(&mut browser, &token, "not my password at all", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(wrong.status, 422);
    assert_listed(&wrong, "current_password", "Your current password is not correct");
    assert!(!wrong.body.contains(NEW_PASSWORD) && !wrong.body.contains("not my password at all"));

    assert_eq!(password_hash(&app, &user), before, "a refused form changes nothing");
    assert_eq!(me_status(&app, &api_token).await, 200, "and ends no token");
    assert_eq!(elsewhere.get("/").await.status, 200, "nor any session");

    let changed = change(&mut browser, &token, TEST_PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(changed.location(), "/login?password_changed=1");
    assert!(browser.cookie("catalogue_session").is_none(), "the session cookie is removed");
    assert_ne!(password_hash(&app, &user), before);
    let login = browser.get(changed.location()).await;
    assert!(login.body.contains("Your password has been changed"), "{}", login.body);

    assert_eq!(me_status(&app, &api_token).await, 401, "the API token ended");
    let other = elsewhere.get("/").await;
    assert_eq!(other.status, 303, "the other session ended");
    assert!(other.location().starts_with("/login"), "{}", other.location());

    let old = app
        .post("/v1/auth/token")
        .json(&serde_json::json!({"email": user.email, "password": TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401, "the old password no longer signs in");
    let mut again = Browser::new(&app);
    let login = again.get("/login").await;
    let signed_in = again
        .post_form(
            "/login",
            &[
                ("email", &user.email),
                ("password", NEW_PASSWORD),
                ("csrf_token", &login.hidden("csrf_token")),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303, "the new one does: {}", signed_in.body);
    assert_eq!(again.get("/").await.status, 200);
}

async fn guesses_at_the_current_password_on_the_page_count_with_the_apis(app: TestApp) {
    let user = app.create_user(Role::Auditor, None);
    let api_token = app.token_for(&user).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let token = browser.get("/account/password").await.hidden("csrf_token");
    let before = password_hash(&app, &user);

    // Three wrong guesses through the API and two on the page: the account's five.
    for _ in 0..3 {
        let response = app
            .post("/v1/me/password")
            .bearer_auth(&api_token)
            .json(&serde_json::json!({"current_password": "wrong guess", "new_password": NEW_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
    }
    for _ in 0..2 {
        let wrong = change(&mut browser, &token, "wrong guess", NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(wrong.status, 422);
        assert_listed(&wrong, "current_password", "Your current password is not correct");
    }
    let throttled = change(&mut browser, &token, TEST_PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(throttled.status, 429, "even the right password waits: {}", throttled.body);
    assert!(throttled.headers.contains_key("retry-after"));
    assert_listed(&throttled, "current_password", "You have entered a wrong current password too many times");
    assert_eq!(password_hash(&app, &user), before, "nothing changed");
    assert_eq!(me_status(&app, &api_token).await, 200);
    assert_eq!(browser.get("/").await.status, 200, "still signed in");
}

on_both_engines!(
    changing_your_password_lists_every_problem_and_ends_every_session,
    guesses_at_the_current_password_on_the_page_count_with_the_apis,
);
