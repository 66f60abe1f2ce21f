//! Telling people and systems (issue 20): the outbox written with its change, subscriptions and
//! who may hold them, the scheduler's dated reminders, and the worker delivering signed webhooks
//! to a real HTTP receiver and email to a real SMTP server, on both engines.

use std::time::Duration;

use api::notify::worker::{Worker, WorkerConfig};
use catalogue_tests::receiver::Receiver;
use catalogue_tests::smtp::SmtpServer;
use catalogue_tests::{Role, TestApp, on_both_engines, status_and_json};
use db::outbox::EventKind;
use serde_json::{Value, json};

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    status_and_json(app.post(path).bearer_auth(token).json(&body)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    status_and_json(app.get(path).bearer_auth(token)).await
}

fn events(app: &TestApp) -> Vec<db::outbox::OutboxEvent> {
    app.db().read(|conn| db::outbox::recent(conn, 1000)).unwrap()
}

fn advisory(app: &TestApp, reference: &str, severity: &str) -> Value {
    use db::schema::products::dsl::*;
    use diesel::prelude::*;
    let product: i64 = app.with_connection(|conn| products.select(id).order(id).first(conn).unwrap());
    json!({"reference": reference, "title": "Test <b>advisory</b> & more", "severity": severity,
        "published_at": chrono::Utc::now().to_rfc3339(), "remediation": "Patch it.", "links": [],
        "affected_product_ids": [product]})
}

/// A worker for tests: plain http allowed, retries after milliseconds, a short lease.
fn worker_config(mail: Option<api::notify::email::MailConfig>) -> WorkerConfig {
    let mut config = WorkerConfig::new(mail, true);
    config.retry.first_wait = Duration::from_millis(50);
    config.retry.longest_wait = Duration::from_millis(200);
    config.webhook_timeout = Duration::from_secs(3);
    config.lease = Duration::from_secs(30);
    config
}

/// Runs worker passes until `done` holds or ten seconds pass.
async fn run_until(worker: &mut Worker, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "the worker did not get there in time");
        worker.pass().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn events_go_to_the_outbox_with_their_change(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let before = events(&app).len();
    let (status, created) = post(&app, &admin, "/v1/advisories", advisory(&app, "CC-N-1", "high")).await;
    assert_eq!(status, 201, "{created}");
    let after = events(&app);
    assert_eq!(after.len(), before + 1);
    let event = &after[0];
    assert_eq!(event.kind, EventKind::AdvisoryPublished);
    assert_eq!(event.subject, format!("advisory/{}", created["id"]));
    assert!(event.summary.contains("CC-N-1") && event.summary.contains("high"), "{}", event.summary);
    assert_eq!(event.organisation_code, None, "an advisory is national");

    // A write that fails tells nobody anything: the same reference again is refused.
    let (status, _) = post(&app, &admin, "/v1/advisories", advisory(&app, "CC-N-1", "high")).await;
    assert_eq!(status, 409);
    assert_eq!(events(&app).len(), before + 1);

    // A change is told as a change.
    let path = format!("/v1/advisories/{}", created["id"]);
    let response = app
        .patch_any_version(&path)
        .bearer_auth(&admin)
        .json(&json!({"severity": "critical"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(events(&app)[0].kind, EventKind::AdvisoryChanged);
}

async fn officers_start_with_email_subscriptions_for_their_organisation(app: TestApp) {
    let (officer, token) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (status, page) = get(&app, &token, "/v1/subscriptions").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    for item in items {
        assert_eq!(item["user_id"], officer.id);
        assert_eq!(item["organisation_code"], "RR8");
        assert_eq!(item["channel"], "email");
    }
    let cadences: Vec<&str> = items.iter().map(|i| i["email_cadence"].as_str().unwrap()).collect();
    assert_eq!(cadences, ["immediate", "daily"]);
    assert!(items[0]["kinds"].as_array().unwrap().contains(&json!("acknowledgement.due")));
    // Admins and auditors start with none.
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, mine) = get(&app, &admin, "/v1/subscriptions?user_id=0").await;
    assert_eq!(mine["items"], json!([]));
}

async fn subscriptions_are_their_owners(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (_, other) = app.sign_in(Role::Officer, Some("RRK")).await;
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let body = json!({"kinds": ["cap.full"], "channel": "email", "email_cadence": "daily"});

    // An officer subscribes for their own organisation (the default), not another's or nationally.
    let (status, created) = post(&app, &officer, "/v1/subscriptions", body.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["subscription"]["organisation_code"], "RR8");
    assert_eq!(created["webhook_secret"], Value::Null);
    let id = created["subscription"]["id"].as_i64().unwrap();
    let mut elsewhere = body.clone();
    elsewhere["organisation_code"] = json!("RRK");
    assert_eq!(post(&app, &officer, "/v1/subscriptions", elsewhere.clone()).await.0, 403);
    // Admins subscribe for any organisation, or for every one.
    assert_eq!(post(&app, &admin, "/v1/subscriptions", elsewhere).await.0, 201);
    let (status, national) = post(&app, &auditor, "/v1/subscriptions", body.clone()).await;
    assert_eq!(status, 201, "{national}");
    assert_eq!(national["subscription"]["organisation_code"], Value::Null);

    // Another officer cannot see it, list it, read its deliveries or end it: it does not exist.
    let path = format!("/v1/subscriptions/{id}");
    assert_eq!(get(&app, &other, &path).await.0, 404);
    assert_eq!(get(&app, &other, &format!("{path}/deliveries")).await.0, 404);
    let (_, theirs) = get(&app, &other, "/v1/subscriptions").await;
    assert!(theirs["items"].as_array().unwrap().iter().all(|s| s["id"] != id));
    assert_eq!(app.delete(&path).bearer_auth(&other).send().await.unwrap().status(), 404);
    // An auditor sees it and may not end it; an admin sees and ends it.
    assert_eq!(get(&app, &auditor, &path).await.0, 200);
    assert_eq!(app.delete(&path).bearer_auth(&auditor).send().await.unwrap().status(), 403);
    let (_, everyone) = get(&app, &admin, "/v1/subscriptions?limit=500").await;
    assert!(everyone["items"].as_array().unwrap().iter().any(|s| s["id"] == id));
    assert_eq!(app.delete(&path).bearer_auth(&admin).send().await.unwrap().status(), 204);
    assert_eq!(get(&app, &officer, &path).await.0, 404);

    // Shapes the service refuses, each with 422.
    for bad in [
        json!({"kinds": [], "channel": "email", "email_cadence": "daily"}),
        json!({"kinds": ["cap.full"], "channel": "email"}),
        json!({"kinds": ["cap.full"], "channel": "webhook"}),
        json!({"kinds": ["cap.full"], "channel": "email", "email_cadence": "daily", "webhook_url": "https://example.org/"}),
        json!({"kinds": ["no.such.kind"], "channel": "email", "email_cadence": "daily"}),
    ] {
        let (status, problem) = post(&app, &officer, "/v1/subscriptions", bad.clone()).await;
        assert!(status == 422 || status == 400, "{bad}: {status} {problem}");
    }
}

async fn webhook_urls_that_reach_inside_are_refused(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let hook = |url: &str| json!({"kinds": ["advisory.published"], "channel": "webhook", "webhook_url": url});
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "http://localhost/hook",
        "ftp://example.org/hook",
        "http://user:secret@example.org/hook",
    ] {
        let (status, problem) = post(&app, &officer, "/v1/subscriptions", hook(url)).await;
        assert_eq!(status, 422, "{url}: {problem}");
        assert!(!problem.to_string().contains("secret@"), "{problem}");
    }
    // An admin allows a host; then it may be used. Only admins manage the list.
    assert_eq!(
        app.put("/v1/webhook-hosts/127.0.0.1").bearer_auth(&officer).send().await.unwrap().status(),
        403
    );
    let response = app.put("/v1/webhook-hosts/127.0.0.1").bearer_auth(&admin).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (status, created) = post(&app, &officer, "/v1/subscriptions", hook("http://127.0.0.1:9/hook")).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["webhook_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    // The secret is shown once: never in a read, a list or the audit log.
    let id = created["subscription"]["id"].as_i64().unwrap();
    let (_, read) = get(&app, &officer, &format!("/v1/subscriptions/{id}")).await;
    let (_, listed) = get(&app, &admin, "/v1/subscriptions?limit=500").await;
    let (_, audit) = get(&app, &admin, "/v1/audit?entity=subscription&limit=500").await;
    for shown in [read, listed, audit] {
        assert!(!shown.to_string().contains(secret), "{shown}");
    }
    let (_, hosts) = get(&app, &admin, "/v1/webhook-hosts").await;
    assert_eq!(hosts[0]["host"], "127.0.0.1");
    assert_eq!(
        app.delete("/v1/webhook-hosts/127.0.0.1").bearer_auth(&admin).send().await.unwrap().status(),
        204
    );
    assert_eq!(
        app.delete("/v1/webhook-hosts/127.0.0.1").bearer_auth(&admin).send().await.unwrap().status(),
        404
    );
}

async fn a_line_tells_when_it_is_nearly_full_and_full(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, line) = app.license_nationally("MS-WS2019-STD", None).await;
    let path = format!("/v1/entitlements/{line}");
    let response =
        app.patch_any_version(&path).bearer_auth(&admin).json(&json!({"seat_cap": 10})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let claim = |quantity: i64| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let (status, body) = post(
                app,
                &admin,
                &format!("/v1/entitlements/{line}/allocations"),
                json!({"organisation": "RR8", "quantity": quantity}),
            )
            .await;
            assert_eq!(status, 201, "{body}");
        }
    };
    let told = |app: &TestApp| -> Vec<EventKind> {
        events(app)
            .into_iter()
            .filter(|e| e.subject == format!("entitlement/{line}"))
            .map(|e| e.kind)
            .collect()
    };
    claim(8).await;
    assert_eq!(told(&app), []);
    claim(1).await;
    assert_eq!(told(&app), [EventKind::CapNearlyFull]);
    claim(1).await;
    assert_eq!(told(&app), [EventKind::CapFull, EventKind::CapNearlyFull]);
}

async fn dated_reminders_are_written_once_per_occasion(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (agreement, line) = app
        .license_nationally(
            "MS-WS2019-STD",
            Some(&(chrono::Utc::now().date_naive() + chrono::Days::new(30)).to_string()),
        )
        .await;
    let now = chrono::Utc::now().naive_utc();
    let first = db::reminders::write_due(app.db(), now).unwrap();
    assert!(first >= 2, "{first}");
    let kinds: Vec<(EventKind, String)> = events(&app).into_iter().map(|e| (e.kind, e.subject)).collect();
    assert!(kinds.contains(&(EventKind::EntitlementEnding, format!("entitlement/{line}"))), "{kinds:?}");
    assert!(kinds.contains(&(EventKind::AgreementEnding, format!("agreement/{agreement}"))), "{kinds:?}");
    // Again, and on a later run the same day: nothing new.
    assert_eq!(db::reminders::write_due(app.db(), now).unwrap(), 0);
    assert_eq!(db::reminders::write_due(app.db(), now + chrono::Duration::hours(5)).unwrap(), 0);

    // Acknowledgements: RR8 holds seats of a product two critical advisories affect; one was
    // published 30 hours ago (due within 24 hours), the other 50 (overdue, past 48).
    let claimed = post(
        &app,
        &admin,
        &format!("/v1/entitlements/{line}/allocations"),
        json!({"organisation": "RR8", "quantity": 3}),
    )
    .await;
    assert_eq!(claimed.0, 201, "{}", claimed.1);
    let affected = {
        use db::schema::entitlements::dsl::*;
        use diesel::prelude::*;
        app.with_connection(|conn| entitlements.find(line).select(product_id).first::<i64>(conn).unwrap())
    };
    let mut ids = Vec::new();
    for (reference, hours) in [("CC-R-DUE", 30), ("CC-R-LATE", 50)] {
        let mut body = advisory(&app, reference, "critical");
        body["published_at"] = json!((chrono::Utc::now() - chrono::Duration::hours(hours)).to_rfc3339());
        body["affected_product_ids"] = json!([affected]);
        let (status, created) = post(&app, &admin, "/v1/advisories", body).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_i64().unwrap());
    }
    db::reminders::write_due(app.db(), chrono::Utc::now().naive_utc()).unwrap();
    let told: Vec<(EventKind, Option<String>, String)> =
        events(&app).into_iter().map(|e| (e.kind, e.organisation_code, e.subject)).collect();
    let rr8 = Some("RR8".to_owned());
    assert!(
        told.contains(&(EventKind::AcknowledgementDue, rr8.clone(), format!("advisory/{}", ids[0]))),
        "{told:?}"
    );
    assert!(
        told.contains(&(EventKind::AcknowledgementOverdue, rr8.clone(), format!("advisory/{}", ids[1]))),
        "{told:?}"
    );
    assert!(
        !told.contains(&(EventKind::AcknowledgementDue, rr8, format!("advisory/{}", ids[1]))),
        "{told:?}"
    );
}

/// Support ending is told of for products still supported whose support ends by the horizon
/// (three months on), and not for those already out of support (the unsupported-software
/// report's business) or ending later; the reminder reads only that window.
async fn support_ending_is_told_of_within_its_window_only(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let supplier = app.any_supplier_id(&admin).await;
    let today = chrono::Utc::now().date_naive();
    let horizon =
        today.checked_add_months(chrono::Months::new(db::reminders::SUPPORT_ENDING_MONTHS)).unwrap();
    let mut products = Vec::new();
    for (sku, ends) in [
        ("END-YESTERDAY", today - chrono::Days::new(1)),
        ("END-TODAY", today),
        ("END-HORIZON", horizon),
        ("END-AFTER", horizon + chrono::Days::new(1)),
    ] {
        let body = json!({"supplier_id": supplier, "name": sku, "sku": sku, "category": "operating-system",
                          "extended_support_ends_on": ends});
        let (status, product) = post(&app, &admin, "/v1/products", body).await;
        assert_eq!(status, 201, "{product}");
        let (_, line) = app.license_nationally(sku, None).await;
        let path = format!("/v1/entitlements/{line}/allocations");
        let (status, claimed) =
            post(&app, &admin, &path, json!({"organisation": "RR8", "quantity": 1})).await;
        assert_eq!(status, 201, "{claimed}");
        products.push((sku, product["id"].as_i64().unwrap()));
    }
    db::reminders::write_due(app.db(), chrono::Utc::now().naive_utc()).unwrap();
    let told: Vec<String> = events(&app)
        .into_iter()
        .filter(|e| e.kind == EventKind::SupportEnding && e.organisation_code.as_deref() == Some("RR8"))
        .map(|e| e.subject)
        .collect();
    for (sku, id) in products {
        let expected = matches!(sku, "END-TODAY" | "END-HORIZON");
        assert_eq!(told.contains(&format!("product/{id}")), expected, "{sku}: {told:?}");
    }
}

/// Subscribes `token`'s holder to advisories by webhook at `receiver`, the host allowed by an admin.
async fn subscribe_webhook(app: &TestApp, token: &str, receiver: &Receiver) -> i64 {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    assert_eq!(
        app.put("/v1/webhook-hosts/127.0.0.1").bearer_auth(&admin).send().await.unwrap().status(),
        200
    );
    let body = json!({"kinds": ["advisory.published"], "channel": "webhook", "webhook_url": receiver.url()});
    let (status, created) = post(app, token, "/v1/subscriptions", body).await;
    assert_eq!(status, 201, "{created}");
    receiver.set_secret(created["webhook_secret"].as_str().unwrap());
    created["subscription"]["id"].as_i64().unwrap()
}

async fn webhooks_arrive_signed_and_are_retried_and_redelivered(app: TestApp) {
    let receiver = Receiver::start("whsec_AAAA");
    receiver.fail_next(1);
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let subscription = subscribe_webhook(&app, &officer, &receiver).await;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (status, advisory) = post(&app, &admin, "/v1/advisories", advisory(&app, "CC-W-1", "critical")).await;
    assert_eq!(status, 201);

    let mut worker = Worker::new(app.db().clone(), worker_config(None)).unwrap();
    run_until(&mut worker, || receiver.received().len() >= 2).await;
    let received = receiver.received();
    assert_eq!(received.len(), 2, "one failure and one success");
    assert!(received.iter().all(|r| r.verified), "every delivery is signed with the subscription's secret");
    assert_eq!(received[0].header("webhook-id"), received[1].header("webhook-id"), "a retry keeps its id");
    let body: Value = serde_json::from_str(&received[1].body).unwrap();
    assert_eq!(body["type"], "advisory.published");
    assert_eq!(body["data"]["subject"], format!("advisory/{}", advisory["id"]));
    assert!(body["data"]["summary"].as_str().unwrap().contains("CC-W-1"), "{body}");

    let (status, deliveries) =
        get(&app, &officer, &format!("/v1/subscriptions/{subscription}/deliveries")).await;
    assert_eq!(status, 200, "{deliveries}");
    let delivery = &deliveries["items"][0];
    assert_eq!(delivery["status"], "delivered", "{deliveries}");
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{deliveries}");
    assert_eq!(attempts[0]["status_code"], 500);
    assert!(attempts[0]["error"].as_str().is_some());
    assert_eq!(attempts[1]["status_code"], 204);
    assert_eq!(attempts[1]["error"], Value::Null);

    // Redelivery on request, with the same id; not by another organisation's officer.
    let path = format!("/v1/deliveries/{}/redeliver", delivery["id"]);
    let (_, stranger) = app.sign_in(Role::Officer, Some("RRK")).await;
    assert_eq!(post(&app, &stranger, &path, json!({})).await.0, 404);
    let (status, again) = post(&app, &officer, &path, json!({})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "pending");
    run_until(&mut worker, || receiver.received().len() >= 3).await;
    assert_eq!(receiver.received()[2].header("webhook-id"), received[0].header("webhook-id"));
    assert!(receiver.received()[2].verified);
}

async fn a_delivery_that_keeps_failing_is_dead_lettered(app: TestApp) {
    let receiver = Receiver::start("whsec_AAAA");
    receiver.fail_next(1000);
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let subscription = subscribe_webhook(&app, &officer, &receiver).await;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    assert_eq!(post(&app, &admin, "/v1/advisories", advisory(&app, "CC-W-2", "low")).await.0, 201);
    let mut config = worker_config(None);
    config.retry.retry_for = Duration::from_millis(400);
    let mut worker = Worker::new(app.db().clone(), config).unwrap();
    let dead = || app.db().read(|conn| db::deliveries::count(conn, "dead")).unwrap() == 1;
    run_until(&mut worker, dead).await;
    let (_, deliveries) = get(&app, &officer, &format!("/v1/subscriptions/{subscription}/deliveries")).await;
    let delivery = &deliveries["items"][0];
    assert_eq!(delivery["status"], "dead");
    let attempts = delivery["attempts"].as_array().unwrap().len();
    assert!(attempts >= 2, "retried before giving up: {deliveries}");
    assert_eq!(receiver.received().len(), attempts);
    // Dead letters stay dead until someone asks again.
    for _ in 0..5 {
        worker.pass().await.unwrap();
    }
    assert_eq!(receiver.received().len(), attempts);
}

async fn two_workers_deliver_each_message_once(app: TestApp) {
    let receiver = Receiver::start("whsec_AAAA");
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    subscribe_webhook(&app, &officer, &receiver).await;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let count = 24;
    for n in 0..count {
        assert_eq!(
            post(&app, &admin, "/v1/advisories", advisory(&app, &format!("CC-X-{n}"), "low")).await.0,
            201
        );
    }
    // Two workers, each with its own pool, as two instances would have.
    let second = db::Database::connect(&app.database.url, 4).unwrap();
    let mut one = Worker::new(app.db().clone(), worker_config(None)).unwrap();
    let mut two = Worker::new(second, worker_config(None)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while receiver.received().len() < count {
        assert!(std::time::Instant::now() < deadline, "{} of {count} arrived", receiver.received().len());
        let (a, b) = futures_util::join!(one.pass(), two.pass());
        a.unwrap();
        b.unwrap();
    }
    for _ in 0..3 {
        let (a, b) = futures_util::join!(one.pass(), two.pass());
        a.unwrap();
        b.unwrap();
    }
    let mut ids: Vec<String> =
        receiver.received().iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    assert_eq!(ids.len(), count, "nothing delivered twice");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "each message once");
}

/// Makes every waiting daily-digest delivery due now, as if the digest hour had come.
fn digest_hour_comes(app: &TestApp) {
    use db::schema::deliveries::dsl::*;
    use diesel::prelude::*;
    app.with_connection(|conn| {
        diesel::update(deliveries.filter(status.eq("pending")))
            .set(next_attempt_at.eq(chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1)))
            .execute(conn)
            .unwrap()
    });
}

async fn email_at_once_and_in_one_daily_digest(app: TestApp) {
    let Some(smtp) = SmtpServer::start() else { return };
    let (officer, _) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let mail = api::notify::email::MailConfig { smtp_url: smtp.url(), from: "catalogue@test.invalid".into() };
    let mut worker = Worker::new(app.db().clone(), worker_config(Some(mail))).unwrap();

    // At once: an advisory (the officer's default immediate subscription).
    assert_eq!(post(&app, &admin, "/v1/advisories", advisory(&app, "CC-E-1", "high")).await.0, 201);
    run_until(&mut worker, || !smtp.messages().is_empty()).await;
    let first = smtp.wait_for(1, Duration::from_secs(5));
    assert_eq!(first.len(), 1);
    assert!(first[0].contains(&officer.email), "{}", first[0]);
    assert!(first[0].contains("CC-E-1"), "{}", first[0]);
    assert!(first[0].contains("multipart/alternative"), "{}", first[0]);

    // Daily: a line and its agreement ending soon (the scheduler's reminders), in one digest.
    let ends = chrono::Utc::now().date_naive() + chrono::Days::new(20);
    app.license_nationally("MS-WS2019-STD", Some(&ends.to_string())).await;
    assert!(db::reminders::write_due(app.db(), chrono::Utc::now().naive_utc()).unwrap() >= 2);
    worker.pass().await.unwrap();
    assert_eq!(smtp.messages().len(), 1, "a digest waits for its hour");
    digest_hour_comes(&app);
    run_until(&mut worker, || smtp.messages().len() >= 2).await;
    let digest = &smtp.wait_for(2, Duration::from_secs(5))[1];
    assert!(digest.contains("Subject: NHS licence catalogue: 2 notices"), "{digest}");
    assert!(digest.contains("TEST-NATIONAL-MS-WS2019-STD"), "{digest}");

    // A second digest the same day is not sent: its notices wait for tomorrow's.
    let ends = chrono::Utc::now().date_naive() + chrono::Days::new(21);
    app.license_nationally("MS-WIN10-ENT", Some(&ends.to_string())).await;
    db::reminders::write_due(app.db(), chrono::Utc::now().naive_utc()).unwrap();
    worker.pass().await.unwrap();
    digest_hour_comes(&app);
    for _ in 0..3 {
        worker.pass().await.unwrap();
    }
    assert_eq!(smtp.messages().len(), 2, "one digest a day");
    let waiting = app.db().read(|conn| db::deliveries::count(conn, "pending")).unwrap();
    assert!(waiting >= 2, "tomorrow's digest keeps them: {waiting}");
}

on_both_engines!(
    support_ending_is_told_of_within_its_window_only,
    events_go_to_the_outbox_with_their_change,
    officers_start_with_email_subscriptions_for_their_organisation,
    subscriptions_are_their_owners,
    webhook_urls_that_reach_inside_are_refused,
    a_line_tells_when_it_is_nearly_full_and_full,
    dated_reminders_are_written_once_per_occasion,
    webhooks_arrive_signed_and_are_retried_and_redelivered,
    a_delivery_that_keeps_failing_is_dead_lettered,
    two_workers_deliver_each_message_once,
    email_at_once_and_in_one_daily_digest,
);
