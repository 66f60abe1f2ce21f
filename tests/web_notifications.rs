//! The Notifications page on both engines: an officer sees the two subscriptions every officer
//! starts with, adds one, is told what to correct (with the other answers kept), cannot send
//! webhooks inside the network, sees a webhook's secret once, keeps their subscriptions from
//! another officer (404) and ends one after a confirmation page.

use catalogue_tests::{Role, TestApp, on_both_engines};

use crate::web::{Browser, Page};

const TRUST: &str = "RM3";

fn subscriptions_of(app: &TestApp, user_id: i64) -> Vec<db::subscriptions::Subscription> {
    app.with_connection(|conn| {
        db::subscriptions::list(conn, Some(user_id), &db::PageRequest::default()).unwrap().items
    })
}

/// The page's form token, and the page.
async fn notifications(browser: &mut Browser<'_>) -> (String, Page) {
    let page = browser.get("/notifications").await;
    assert_eq!(page.status, 200, "{}", page.body);
    (page.hidden("csrf_token"), page)
}

/// The error summary's one link: where it points and what it says.
fn error_summary(page: &Page) -> (String, String) {
    let summary = page.body.find("nhsuk-error-summary__list").expect("an error summary");
    let rest = &page.body[summary..];
    let link = rest.split("<a href=\"").nth(1).unwrap_or_default();
    let (href, text) = link.split_once("\">").unwrap_or_default();
    let text = text.split('<').next().unwrap_or_default();
    (href.to_owned(), text.to_owned())
}

/// A webhook subscription of `user_id`, made through the data layer (its URL need not resolve).
fn webhook_of(app: &TestApp, user_id: i64) -> i64 {
    let new = db::subscriptions::NewSubscription {
        user_id,
        organisation_code: Some(TRUST.to_owned()),
        kinds: vec![db::outbox::EventKind::AdvisoryPublished],
        channel: db::subscriptions::Channel::Webhook,
        email_cadence: None,
        webhook_url: Some("https://integration.example.nhs.uk/catalogue".to_owned()),
        webhook_secret: Some(api::notify::webhook::new_secret()),
    };
    db::subscriptions::create(app.db(), &db::Actor::system("test"), new).unwrap().id
}

async fn an_officer_sees_their_two_default_subscriptions(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some(TRUST));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let (_, page) = notifications(&mut browser).await;
    assert!(
        page.body.contains(r#"href="/notifications" aria-current="page""#),
        "linked from the header, as the current page"
    );
    assert!(page.body.contains("Email at once"), "{}", page.body);
    assert!(page.body.contains("Email, daily digest"), "{}", page.body);
    assert!(page.body.contains("A security advisory is published"));
    let named = format!("Northern Care Alliance NHS Foundation Trust ({TRUST})");
    assert!(page.body.contains(&named), "the organisation by name: {}", page.body);
    assert_eq!(page.body.matches("End this subscription").count(), 2);
    // Email subscriptions have no deliveries link; officers do not choose an organisation.
    assert!(!page.body.contains("/deliveries\""));
    assert!(!page.body.contains(r#"name="organisation_scope""#));
}

async fn an_officer_adds_a_daily_email(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some(TRUST));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let (token, _) = notifications(&mut browser).await;
    let added = browser
        .post_form(
            "/notifications",
            &[
                ("csrf_token", &token),
                ("kinds", "cap.full"),
                ("kinds", "standard.withdrawn"),
                ("channel", "email"),
                ("email_cadence", "daily"),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(added.location(), "/notifications?notice=added");
    let subscriptions = subscriptions_of(&app, officer.id);
    assert_eq!(subscriptions.len(), 3);
    let new = subscriptions.last().unwrap();
    assert_eq!(new.kinds, vec![db::outbox::EventKind::CapFull, db::outbox::EventKind::StandardWithdrawn]);
    assert_eq!(new.channel, db::subscriptions::Channel::Email);
    assert_eq!(new.email_cadence, Some(db::subscriptions::EmailCadence::Daily));
    assert_eq!(new.organisation_code.as_deref(), Some(TRUST));
    let list = browser.get("/notifications?notice=added").await;
    assert!(list.body.contains("nhsuk-notification-banner--success"));
    assert!(list.body.contains("A national line&#39;s seats are all claimed"), "{}", list.body);
}

async fn no_kinds_chosen_is_an_error_that_keeps_the_other_answers(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some(TRUST));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let (token, _) = notifications(&mut browser).await;
    let refused = browser
        .post_form(
            "/notifications",
            &[("csrf_token", &token), ("channel", "email"), ("email_cadence", "daily")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        error_summary(&refused),
        ("#kinds".to_owned(), "Choose at least one thing to be told about".to_owned())
    );
    assert!(refused.body.contains(r#"id="kinds-error""#), "the message beside the field too");
    assert!(refused.body.contains(r#"value="email" checked"#));
    assert!(refused.body.contains(r#"value="daily" checked"#));
    assert_eq!(subscriptions_of(&app, officer.id).len(), 2, "nothing added");
}

async fn a_webhook_inside_the_network_is_refused(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some(TRUST));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let (token, _) = notifications(&mut browser).await;
    let url = "http://169.254.169.254/";
    let refused = browser
        .post_form(
            "/notifications",
            &[
                ("csrf_token", &token),
                ("kinds", "advisory.published"),
                ("channel", "webhook"),
                ("webhook_url", url),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let (href, message) = error_summary(&refused);
    assert_eq!(href, "#webhook_url");
    assert!(message.starts_with("169.254.169.254 is "), "{message}");
    assert!(message.contains("webhooks go only to public addresses"), "{message}");
    assert!(refused.body.contains(&format!(r#"value="{url}""#)), "the address is kept");
    assert!(refused.body.contains(r#"value="advisory.published" checked"#), "the kinds are kept");
    assert_eq!(subscriptions_of(&app, officer.id).len(), 2, "nothing added");
}

async fn a_webhooks_secret_is_shown_once(app: TestApp) {
    // Loopback is refused unless an admin allows the host, as a trust's own integration engine.
    db::subscriptions::allow_host(app.db(), &db::Actor::system("test"), "127.0.0.1").unwrap();
    let officer = app.create_user(Role::Officer, Some(TRUST));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let (token, _) = notifications(&mut browser).await;
    let added = browser
        .post_form(
            "/notifications",
            &[
                ("csrf_token", &token),
                ("kinds", "advisory.published"),
                ("channel", "webhook"),
                ("webhook_url", "http://127.0.0.1:9/hook"),
            ],
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(added.body.contains("nhsuk-warning-callout"));
    assert!(added.body.contains("Copy this secret now: it will not be shown again."));
    let secret =
        added.body.split(r#"id="webhook-secret">"#).nth(1).and_then(|s| s.split('<').next()).unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let subscriptions = subscriptions_of(&app, officer.id);
    assert_eq!(subscriptions.len(), 3);
    let id = subscriptions.last().unwrap().id;
    let list = browser.get("/notifications").await;
    assert!(list.body.contains("Webhook to http://127.0.0.1:9/hook"));
    assert!(list.body.contains(&format!("/notifications/{id}/deliveries")));
    assert!(!list.body.contains(secret), "never shown again");
    let deliveries = browser.get(&format!("/notifications/{id}/deliveries")).await;
    assert_eq!(deliveries.status, 200);
    assert!(deliveries.body.contains("Nothing has been sent yet."));
}

async fn another_officer_cannot_see_or_end_your_subscriptions(app: TestApp) {
    let owner = app.create_user(Role::Officer, Some(TRUST));
    let other = app.create_user(Role::Officer, Some(TRUST));
    let webhook = webhook_of(&app, owner.id);
    let mut owners = Browser::new(&app);
    owners.sign_in(&owner).await;
    assert_eq!(owners.get(&format!("/notifications/{webhook}/deliveries")).await.status, 200);

    let mut browser = Browser::new(&app);
    browser.sign_in(&other).await;
    let (token, _) = notifications(&mut browser).await;
    let deliveries = browser.get(&format!("/notifications/{webhook}/deliveries")).await;
    assert_eq!(deliveries.status, 404);
    assert!(deliveries.body.contains("Page not found"));
    assert_eq!(browser.get(&format!("/notifications/{webhook}/delete")).await.status, 404);
    let ended =
        browser.post_form(&format!("/notifications/{webhook}/delete"), &[("csrf_token", &token)]).await;
    assert_eq!(ended.status, 404);
    assert_eq!(subscriptions_of(&app, owner.id).len(), 3, "still there");

    // An admin may see and end anyone's.
    let admin = app.create_user(Role::Admin, None);
    let mut admins = Browser::new(&app);
    admins.sign_in(&admin).await;
    assert_eq!(admins.get(&format!("/notifications/{webhook}/deliveries")).await.status, 200);
}

async fn a_subscription_ends_after_confirmation(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some(TRUST));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let first = subscriptions_of(&app, officer.id)[0].id;
    let confirm = browser.get(&format!("/notifications/{first}/delete")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("End this subscription?"));
    assert!(confirm.body.contains("Email at once"));
    assert_eq!(subscriptions_of(&app, officer.id).len(), 2, "asking changes nothing");
    let token = confirm.hidden("csrf_token");
    let ended = browser.post_form(&format!("/notifications/{first}/delete"), &[("csrf_token", &token)]).await;
    assert_eq!(ended.status, 303, "{}", ended.body);
    assert_eq!(ended.location(), "/notifications?notice=ended");
    let left = subscriptions_of(&app, officer.id);
    assert_eq!(left.len(), 1);
    assert!(left.iter().all(|s| s.id != first));
    let list = browser.get("/notifications?notice=ended").await;
    assert!(!list.body.contains("Email at once"), "{}", list.body);
}

async fn an_admin_subscribes_for_one_organisation_or_every_one(app: TestApp) {
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let (token, page) = notifications(&mut browser).await;
    assert!(page.body.contains("You are told of nothing at the moment."));
    let form = |scope: &'static str, code: &'static str| {
        vec![
            ("kinds", "cap.full"),
            ("channel", "email"),
            ("email_cadence", "immediate"),
            ("organisation_scope", scope),
            ("organisation_code", code),
        ]
    };
    let send = |fields: Vec<(&'static str, &'static str)>| {
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend(fields);
        all.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect::<Vec<(String, String)>>()
    };
    for (fields, field) in
        [(form("one", ""), "#organisation_code"), (form("one", "ZZZ99"), "#organisation_code")]
    {
        let owned = send(fields);
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let refused = browser.post_form("/notifications", &pairs).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert_eq!(error_summary(&refused).0, field);
    }
    for fields in [form("one", "rm3"), form("every", "")] {
        let owned = send(fields);
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let added = browser.post_form("/notifications", &pairs).await;
        assert_eq!(added.status, 303, "{}", added.body);
    }
    let made = subscriptions_of(&app, admin.id);
    let scopes: Vec<Option<&str>> = made.iter().map(|s| s.organisation_code.as_deref()).collect();
    assert_eq!(scopes, vec![Some(TRUST), None]);
    let list = browser.get("/notifications").await;
    assert!(list.body.contains("Every organisation"));
}

on_both_engines!(
    an_officer_sees_their_two_default_subscriptions,
    an_officer_adds_a_daily_email,
    no_kinds_chosen_is_an_error_that_keeps_the_other_answers,
    a_webhook_inside_the_network_is_refused,
    a_webhooks_secret_is_shown_once,
    another_officer_cannot_see_or_end_your_subscriptions,
    a_subscription_ends_after_confirmation,
    an_admin_subscribes_for_one_organisation_or_every_one,
);
