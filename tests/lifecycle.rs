//! Lifecycle per release and the action a coverage answer leads with: the releases the embedded
//! default ships, the action for shipped products at dates around each end of support, and
//! `lifecycle sync` against a real local HTTP server standing in for endoflife.date (serving the
//! shipped documents, changed copies of them, and failures).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use api::lifecycle_feed::{FeedSource, sync};
use catalogue_tests::{Role, TestApp, on_both_engines, status_and_json};
use chrono::NaiveDate;
use db::lifecycle::PlannedChange;
use serde_json::{Value, json};

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn shipped_document(product: &str) -> Value {
    let path = format!("{}/../seeds/endoflife/{product}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn product_id(app: &TestApp, sku: &str) -> i64 {
    use db::schema::products;
    use diesel::prelude::*;
    app.with_connection(|conn| {
        products::table.filter(products::sku.eq(sku)).select(products::id).first::<i64>(conn).unwrap()
    })
}

async fn coverage(app: &TestApp, token: &str, query: &str) -> Value {
    let (status, body) =
        status_and_json(app.get(&format!("/v1/coverage?organisation=RR8&{query}")).bearer_auth(token)).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

/// The support a release has at a date, restated from its dates (not through the catalogue's
/// own function): the end day is the last day covered.
fn status_from_dates(release: &Value, on: NaiveDate) -> &'static str {
    let date = |field: &str| release[field].as_str().map(day);
    let security = date("security_support_ends_on").or(date("active_support_ends_on"));
    let paid = date("extended_updates_end_on");
    match security {
        Some(end) if on > end => match paid {
            Some(paid) if on <= paid => "extended_updates_only",
            _ => "unsupported",
        },
        Some(end) if end <= on.checked_add_months(chrono::Months::new(12)).unwrap() => "ending",
        _ => "supported",
    }
}

async fn shipped_releases_carry_the_documents_dates(app: TestApp) {
    let (_, token) = app.sign_in(Role::Auditor, None).await;
    let windows_10 = product_id(&app, "MS-WIN10-ENT");
    let (status, body) =
        status_and_json(app.get(&format!("/v1/products/{windows_10}/releases")).bearer_auth(&token)).await;
    assert_eq!(status, 200);
    let releases = body["items"].as_array().unwrap();
    let r22h2 = releases.iter().find(|r| r["name"] == "22H2").expect("Windows 10 Enterprise 22H2");
    // As endoflife.date's `10-22h2` gives them: end of security support, then paid ESU to 2028.
    assert_eq!(r22h2["security_support_ends_on"], "2025-10-14");
    assert_eq!(r22h2["extended_updates_end_on"], "2028-10-10");
    assert!(r22h2["source"].as_str().unwrap().contains("endoflife.date windows release 10-22h2"));
    // Newest first.
    let released: Vec<&str> = releases.iter().map(|r| r["released_on"].as_str().unwrap()).collect();
    let mut sorted = released.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(released, sorted);
    // Every mapped release of the shipped documents is held, for every mapped product.
    let windows = shipped_document("windows");
    let sources: Value = app
        .get(&format!("/v1/products/{windows_10}/lifecycle-sources"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sources["items"].as_array().unwrap().len(), releases.len());
    for source in sources["items"].as_array().unwrap() {
        let upstream = windows["result"]["releases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == source["eol_release"])
            .unwrap();
        let held = releases.iter().find(|r| r["name"] == source["release_name"]).unwrap();
        assert_eq!(held["security_support_ends_on"], upstream["eolFrom"]);
        assert_eq!(held["released_on"], upstream["releaseDate"]);
    }
    // An unknown product is a 404, not an empty list.
    let (status, _) = status_and_json(app.get("/v1/products/999999/releases").bearer_auth(&token)).await;
    assert_eq!(status, 404);
}

async fn the_action_follows_each_release_around_its_ends(app: TestApp) {
    let (_, token) = app.sign_in(Role::Admin, None).await;
    // Every shipped product with releases (seeds/lifecycle.json), every release, the day before,
    // of and after each end it has.
    let shipped: Value = serde_json::from_str(include_str!("../seeds/lifecycle.json")).unwrap();
    for entry in shipped.as_array().unwrap() {
        let sku = entry["sku"].as_str().unwrap();
        let id = product_id(&app, sku);
        let releases: Value = app
            .get(&format!("/v1/products/{id}/releases"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for release in releases["items"].as_array().unwrap() {
            let name = release["name"].as_str().unwrap();
            let mut dates = Vec::new();
            for field in ["security_support_ends_on", "extended_updates_end_on"] {
                if let Some(end) = release[field].as_str().map(day) {
                    dates.extend([end.pred_opt().unwrap(), end, end.succ_opt().unwrap()]);
                }
            }
            for on in dates {
                let answer = coverage(&app, &token, &format!("product={id}&release={name}&on={on}")).await;
                let action = &answer["action"];
                let expected_status = status_from_dates(release, on);
                assert_eq!(action["release"]["name"], name, "{sku} {name} on {on}");
                assert_eq!(action["release"]["status"], expected_status, "{sku} {name} on {on}");
                let code = action["code"].as_str().unwrap();
                let licensed = answer["decision"] == "nationally_licensed";
                let expected: &[&str] = match expected_status {
                    "unsupported" => &["do_not_buy_unsupported", "move_to_supported"],
                    "extended_updates_only" => &["extended_updates_only"],
                    _ if licensed => &["claim_national_seats", "ask_national_team"],
                    _ => &["use_national_provision", "buy_against_standard", "no_guidance"],
                };
                assert!(
                    expected.contains(&code),
                    "{sku} {name} on {on}: {code}, expected one of {expected:?}"
                );
                match code {
                    "extended_updates_only" => {
                        assert_eq!(
                            action["rests_on"], release["extended_updates_end_on"],
                            "{sku} {name} on {on}"
                        )
                    }
                    "do_not_buy_unsupported" | "move_to_supported" => {
                        assert_eq!(
                            action["rests_on"], release["security_support_ends_on"],
                            "{sku} {name} on {on}"
                        );
                        assert!(action["summary"].as_str().unwrap().contains("unsupported"));
                    }
                    _ => {}
                }
                // Unsupported is never answered as "claim" or "buy", whatever the licence.
                if expected_status == "unsupported" {
                    assert_ne!(code, "claim_national_seats");
                }
            }
        }
    }
}

async fn the_headline_cases_read_as_what_to_do(app: TestApp) {
    let (_, token) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (windows_7, windows_10, windows_11) =
        (product_id(&app, "MS-WIN7-ENT"), product_id(&app, "MS-WIN10-ENT"), product_id(&app, "MS-WIN11-ENT"));

    // Windows 10 Enterprise today: 22H2 is past security support; paid ESU to 2028-10-10.
    let answer = coverage(&app, &token, &format!("product={windows_10}&on=2026-12-03")).await;
    assert_eq!(answer["action"]["code"], "extended_updates_only", "{answer}");
    assert_eq!(answer["action"]["rests_on"], "2028-10-10");
    assert_eq!(answer["action"]["release"]["name"], "22H2");
    assert_eq!(answer["action"]["successor"]["product_id"], windows_11);
    assert_eq!(answer["action"]["successor"]["supported"], true);
    // The day after paid updates end it is a stop.
    let answer = coverage(&app, &token, &format!("product={windows_10}&on=2028-10-11")).await;
    assert!(
        ["do_not_buy_unsupported", "move_to_supported"].contains(&answer["action"]["code"].as_str().unwrap())
    );

    // Windows 7: unsupported; its successor is followed past Windows 10 (itself only on paid
    // updates) to Windows 11.
    let answer = coverage(&app, &token, &format!("product={windows_7}&on=2026-12-03")).await;
    assert_eq!(answer["action"]["code"], "do_not_buy_unsupported", "{answer}");
    assert_eq!(answer["action"]["rests_on"], "2020-01-14");
    assert_eq!(answer["action"]["successor"]["product_id"], windows_11);
    assert!(answer["action"]["reason"].as_str().unwrap().contains("risk acceptance"));
    // The old decision field is unchanged in meaning: nothing licensed, so not "licensed".
    assert_ne!(answer["decision"], "nationally_licensed");

    // A product with no releases: its own dates decide (ExampleScan CT's extended support ended
    // on 2020-10-13).
    let scanner = product_id(&app, "EXIMG-CTWS-4");
    let answer = coverage(&app, &token, &format!("product={scanner}&on=2026-12-03")).await;
    assert_eq!(answer["action"]["code"], "do_not_buy_unsupported", "{answer}");
    assert_eq!(answer["action"]["release"], Value::Null);
    assert_eq!(answer["action"]["rests_on"], "2020-10-13");
    let answer = coverage(&app, &token, &format!("product={scanner}&on=2019-12-01")).await;
    assert_ne!(answer["action"]["code"], "do_not_buy_unsupported", "{answer}");
    assert!(
        answer["action"]["reason"].as_str().unwrap().contains("2020-10-13"),
        "ending within 12 months is said"
    );

    // A release asked for by name that has ended, while a newer one is supported: move to it.
    let answer = coverage(&app, &token, &format!("product={windows_11}&release=23H2&on=2026-12-03")).await;
    assert_eq!(answer["action"]["code"], "move_to_supported", "{answer}");
    assert_eq!(answer["action"]["release"]["status"], "unsupported");
    assert!(answer["action"]["summary"].as_str().unwrap().starts_with("Move to Windows 11 Enterprise"));
    // A release the product does not have is a 404; a release with a category is a 400.
    let (status, _) = status_and_json(
        app.get(&format!("/v1/coverage?organisation=RR8&product={windows_11}&release=95H7"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = status_and_json(
        app.get("/v1/coverage?organisation=RR8&category=operating-system&release=22H2").bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 400);
}

async fn a_national_provision_in_the_category_comes_before_buying(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    // A product with no releases and no dates of its own, in a category with a national
    // provision line for trusts.
    let supplier = app.any_supplier_id(&admin).await;
    let category = format!("provision-test-{}", app.engine.name());
    let provided = app
        .created(
            &admin,
            "/v1/products",
            &json!({"supplier_id": supplier, "name": "Provided Shield", "category": category}),
        )
        .await;
    let local = app
        .created(
            &admin,
            "/v1/products",
            &json!({"supplier_id": supplier, "name": "Local Shield", "category": category}),
        )
        .await;
    let answer = coverage(&app, &officer, &format!("product={}", local["id"])).await;
    assert_eq!(answer["action"]["code"], "no_guidance", "{answer}");
    assert_eq!(answer["action"]["release"], Value::Null);

    let agreement = app
        .created(
            &admin,
            "/v1/agreements",
            &json!({"supplier_id": supplier, "reference": format!("PROVISION-{}", app.engine.name()),
                    "title": "Provision test", "status": "active", "starts_on": "2020-01-01",
                    "funding_model": "central", "eligible_kinds": ["trust"]}),
        )
        .await;
    app.created(
        &admin,
        &format!("/v1/agreements/{}/entitlements", agreement["id"]),
        &json!({"product_id": provided["id"], "tier": "national_provision", "metric": "per_device",
                "starts_on": "2020-01-01", "eligible_kinds": ["trust"]}),
    )
    .await;
    let answer = coverage(&app, &officer, &format!("product={}", local["id"])).await;
    assert_eq!(answer["action"]["code"], "use_national_provision", "{answer}");
    assert_eq!(answer["action"]["national_provision"]["product_id"], provided["id"]);
    assert_eq!(answer["decision"], "no_guidance", "the decision about the product itself is unchanged");
    // The provided product itself: claim.
    let answer = coverage(&app, &officer, &format!("product={}", provided["id"])).await;
    assert_eq!(answer["action"]["code"], "claim_national_seats", "{answer}");
}

// --- lifecycle sync against a local endoflife.date ---

/// What the stand-in server does for a product document.
#[derive(Clone)]
struct Feed {
    documents: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    /// Requests seen, to check retries.
    requests: Arc<AtomicUsize>,
    /// The first N requests answer 503.
    failing_first: Arc<AtomicUsize>,
}

async fn serve_document(feed: web::Data<Feed>, name: web::Path<String>) -> HttpResponse {
    feed.requests.fetch_add(1, Ordering::SeqCst);
    if feed.failing_first.load(Ordering::SeqCst) > 0 {
        feed.failing_first.fetch_sub(1, Ordering::SeqCst);
        return HttpResponse::ServiceUnavailable().finish();
    }
    let name = name.into_inner();
    if name == "slow" {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    match feed.documents.lock().unwrap().get(&name) {
        Some(text) => HttpResponse::Ok().content_type("application/json").body(text.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}

/// A real HTTP server on a free local port, serving `/api/v1/products/{name}`.
fn start_feed() -> (String, Feed, actix_web::dev::ServerHandle) {
    let mut documents = std::collections::HashMap::new();
    for product in ["windows", "windows-server", "mssqlserver", "office"] {
        documents.insert(product.to_owned(), shipped_document(product).to_string());
    }
    let feed = Feed {
        documents: Arc::new(std::sync::Mutex::new(documents)),
        requests: Arc::new(AtomicUsize::new(0)),
        failing_first: Arc::new(AtomicUsize::new(0)),
    };
    let data = web::Data::new(feed.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route("/api/v1/products/{name}", web::get().to(serve_document))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{address}/api/v1"), feed, handle)
}

fn api(base: &str, timeout_ms: u64, attempts: u32) -> FeedSource {
    FeedSource::Api { base_url: base.to_owned(), timeout: Duration::from_millis(timeout_ms), attempts }
}

/// Everything a failed sync must leave as it was.
fn snapshot(app: &TestApp) -> (Value, i64) {
    let releases = app.db().read(db::releases::all).unwrap();
    let mut flat: Vec<_> = releases.into_values().flatten().collect();
    flat.sort_by_key(|r| r.id);
    let audit = app.db().read(db::audit::count).unwrap();
    (serde_json::to_value(flat).unwrap(), audit)
}

fn change_release(feed: &Feed, product: &str, release: &str, field: &str, value: Value) {
    let mut documents = feed.documents.lock().unwrap();
    let mut document: Value = serde_json::from_str(&documents[product]).unwrap();
    let target = document["result"]["releases"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["name"] == release)
        .unwrap();
    target[field] = value;
    documents.insert(product.to_owned(), document.to_string());
}

async fn a_sync_applies_small_moves_and_holds_large_ones(app: TestApp) {
    let (base, feed, server) = start_feed();
    // Against the shipped documents, nothing changes.
    let plan = sync(app.db(), &api(&base, 2000, 1), false, |_, _| {}).await.unwrap();
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert!(plan.unchanged > 20);

    // Windows 11 25H2's end moves two months (applied); Windows 10 22H2's paid updates move
    // three years (held); a new release appears upstream but is not mapped (ignored).
    change_release(&feed, "windows", "11-25h2-e", "eolFrom", json!("2028-12-12"));
    change_release(&feed, "windows", "10-22h2", "eoesFrom", json!("2031-10-14"));
    let before = snapshot(&app);
    let plan = sync(app.db(), &api(&base, 2000, 1), true, |_, _| {}).await.unwrap();
    assert_eq!(snapshot(&app), before, "a dry run writes nothing");
    assert_eq!(
        (plan.count("update"), plan.count("hold"), plan.count("add")),
        (1, 2, 0),
        "{:?}",
        plan.changes
    );

    let plan = sync(app.db(), &api(&base, 2000, 1), false, |_, _| {}).await.unwrap();
    assert_eq!((plan.count("update"), plan.count("hold")), (1, 2));
    let windows_11 = product_id(&app, "MS-WIN11-ENT");
    let windows_10 = product_id(&app, "MS-WIN10-ENT");
    let releases = app.db().read(|conn| db::releases::for_product(conn, windows_11)).unwrap();
    let r25h2 = releases.iter().find(|r| r.name == "25H2").unwrap();
    assert_eq!(r25h2.security_support_ends_on, Some(day("2028-12-12")));
    let source = r25h2.source.as_deref().unwrap();
    assert!(
        source.contains(&base) && source.contains("11-25h2-e"),
        "the source names the document: {source}"
    );
    // The held date is not applied; the answer rests on the old one.
    let releases = app.db().read(|conn| db::releases::for_product(conn, windows_10)).unwrap();
    assert_eq!(
        releases.iter().find(|r| r.name == "22H2").unwrap().extended_updates_end_on,
        Some(day("2028-10-10"))
    );
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let answer = coverage(&app, &admin, &format!("product={windows_10}&on=2026-12-03")).await;
    assert_eq!(answer["action"]["rests_on"], "2028-10-10");
    // The applied change reached the read model: the coverage answer (served from memory) says so.
    let answer = coverage(&app, &admin, &format!("product={windows_11}&release=25H2&on=2026-12-03")).await;
    assert_eq!(answer["action"]["release"]["security_support_ends_on"], "2028-12-12");

    // Held once, not again on the next sync.
    sync(app.db(), &api(&base, 2000, 1), false, |_, _| {}).await.unwrap();
    let (status, holds) = status_and_json(app.get("/v1/lifecycle/holds").bearer_auth(&admin)).await;
    assert_eq!(status, 200);
    let holds = holds["items"].as_array().unwrap().clone();
    assert_eq!(holds.len(), 2, "{holds:?}");
    // An officer may not see or decide holds.
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (status, _) = status_and_json(app.get("/v1/lifecycle/holds").bearer_auth(&officer)).await;
    assert_eq!(status, 403);

    // Confirm the Enterprise one: applied, and the answer moves with it. Reject the other.
    let enterprise_release = app
        .db()
        .read(|conn| db::releases::for_product(conn, windows_10))
        .unwrap()
        .into_iter()
        .find(|r| r.name == "22H2")
        .unwrap();
    let enterprise_hold = holds.iter().find(|h| h["release_id"] == enterprise_release.id).unwrap();
    let other_hold = holds.iter().find(|h| h["id"] != enterprise_hold["id"]).unwrap();
    let (status, body) = status_and_json(
        app.post(&format!("/v1/lifecycle/holds/{}/confirm", enterprise_hold["id"])).bearer_auth(&admin),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("confirmed")), "{body}");
    let answer = coverage(&app, &admin, &format!("product={windows_10}&on=2026-12-03")).await;
    assert_eq!(answer["action"]["rests_on"], "2031-10-14");
    let (status, _) = status_and_json(
        app.post(&format!("/v1/lifecycle/holds/{}/reject", other_hold["id"])).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 200);
    // A decided hold cannot be decided again.
    let (status, _) = status_and_json(
        app.post(&format!("/v1/lifecycle/holds/{}/confirm", other_hold["id"])).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 409);
    server.stop(false).await;
}

async fn a_failing_or_slow_server_changes_nothing(app: TestApp) {
    let (base, feed, server) = start_feed();
    change_release(&feed, "windows", "11-25h2-e", "eolFrom", json!("2028-12-12"));
    let before = snapshot(&app);

    // A server that answers 503 three times: with two attempts the sync fails, naming the status.
    feed.failing_first.store(3, Ordering::SeqCst);
    let error = sync(app.db(), &api(&base, 2000, 2), false, |_, _| {}).await.unwrap_err().to_string();
    assert!(error.contains("503"), "{error}");
    assert_eq!(snapshot(&app), before);
    // With enough attempts the retries carry it through.
    feed.failing_first.store(2, Ordering::SeqCst);
    feed.requests.store(0, Ordering::SeqCst);
    let plan = sync(app.db(), &api(&base, 2000, 3), true, |_, _| {}).await.unwrap();
    assert_eq!(plan.count("update"), 1);
    assert!(feed.requests.load(Ordering::SeqCst) >= 3, "the failed requests were retried");

    // 404: the document is missing upstream; not retried, clear error, nothing changed.
    let removed = feed.documents.lock().unwrap().remove("mssqlserver").unwrap();
    feed.requests.store(0, Ordering::SeqCst);
    let error = sync(app.db(), &api(&base, 2000, 3), false, |_, _| {}).await.unwrap_err().to_string();
    assert!(error.contains("404") && error.contains("mssqlserver"), "{error}");
    assert_eq!(snapshot(&app), before);
    feed.documents.lock().unwrap().insert("mssqlserver".into(), removed);

    // Malformed: not JSON, the wrong product, a mapped release gone, dates out of order.
    for (product, text) in
        [("mssqlserver", "{not json".to_owned()), ("mssqlserver", shipped_document("windows").to_string())]
    {
        let good = feed.documents.lock().unwrap().insert(product.to_owned(), text).unwrap();
        let error = sync(app.db(), &api(&base, 2000, 1), false, |_, _| {}).await.unwrap_err().to_string();
        assert!(error.contains("mssqlserver"), "{error}");
        assert_eq!(snapshot(&app), before);
        feed.documents.lock().unwrap().insert(product.to_owned(), good);
    }
    change_release(&feed, "windows", "10-22h2", "name", json!("10-22h2-renamed"));
    let error = sync(app.db(), &api(&base, 2000, 1), false, |_, _| {}).await.unwrap_err().to_string();
    assert!(error.contains("no release 10-22h2"), "{error}");
    assert_eq!(snapshot(&app), before);
    change_release(&feed, "windows", "10-22h2-renamed", "name", json!("10-22h2"));
    change_release(&feed, "windows", "10-22h2", "eoasFrom", json!("2030-01-01"));
    let error = sync(app.db(), &api(&base, 2000, 1), false, |_, _| {}).await.unwrap_err().to_string();
    assert!(error.contains("out of order"), "{error}");
    assert_eq!(snapshot(&app), before);

    // Slow: a server that takes longer than the timeout.
    // (the mapping is changed to name it, and restored: the audit log records those edits).
    let error = sync_slow(&app, &base).await;
    assert!(error.contains("timed out"), "{error}");
    let before = snapshot(&app);
    // Nobody listening.
    let error = sync(app.db(), &api("http://127.0.0.1:9/api/v1", 500, 1), false, |_, _| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("could not read"), "{error}");
    assert_eq!(snapshot(&app), before);
    server.stop(false).await;
}

/// A sync whose mapping names the server's slow document.
async fn sync_slow(app: &TestApp, base: &str) -> String {
    let windows_7 = product_id(app, "MS-WIN7-ENT");
    let original = app.db().read(|conn| db::lifecycle::sources(conn, Some(windows_7))).unwrap();
    let slow = db::lifecycle::LifecycleSource {
        id: 0,
        product_id: windows_7,
        release_name: "slow".into(),
        eol_product: "slow".into(),
        eol_release: "x".into(),
    };
    let mut wanted = original.clone();
    wanted.push(slow);
    db::lifecycle::set_sources(app.db(), &db::Actor::system("test"), windows_7, wanted).unwrap();
    let before = snapshot(app);
    let started = std::time::Instant::now();
    let error = sync(app.db(), &api(base, 300, 1), false, |_, _| {}).await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(4), "the timeout cut the request short");
    assert_eq!(snapshot(app), before);
    db::lifecycle::set_sources(app.db(), &db::Actor::system("test"), windows_7, original).unwrap();
    error
}

async fn admins_edit_the_mapping_and_nobody_else(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let id = product_id(&app, "MS-WS2019-STD");
    let path = format!("/v1/products/{id}/lifecycle-sources");
    let body = json!({"sources": [{"release_name": "2019", "eol_product": "windows-server", "eol_release": "2019"},
                                   {"release_name": "2022", "eol_product": "windows-server", "eol_release": "2022"}]});
    let put = |token: &str, body: &Value| app.client.put(app.url(&path)).bearer_auth(token).json(body);
    let (status, _) = status_and_json(put(&officer, &body)).await;
    assert_eq!(status, 403);
    let (status, saved) = status_and_json(put(&admin, &body)).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["items"].as_array().unwrap().len(), 2);
    // The next sync adds the newly mapped release.
    let (base, _feed, server) = start_feed();
    let plan = sync(app.db(), &api(&base, 2000, 1), false, |_, _| {}).await.unwrap();
    assert!(
        plan.changes.iter().any(|c| matches!(c, PlannedChange::Add { release, .. } if release == "2022"))
    );
    server.stop(false).await;
    // Bad input: a mapped release twice, a product name that is not a slug, an unknown field.
    let before = snapshot(&app);
    for bad in [
        json!({"sources": [{"release_name": "A", "eol_product": "windows-server", "eol_release": "2019"},
                           {"release_name": "B", "eol_product": "windows-server", "eol_release": "2019"}]}),
        json!({"sources": [{"release_name": "A", "eol_product": "../etc", "eol_release": "2019"}]}),
        json!({"sources": [{"release_name": "A", "eol_product": "windows", "eol_release": "x", "extra": 1}]}),
    ] {
        let (status, problem) = status_and_json(put(&admin, &bad)).await;
        assert!((400..500).contains(&status), "{bad}: {status} {problem}");
        assert_eq!(snapshot(&app), before, "{bad}");
    }
    let (status, _) = status_and_json(
        app.client.put(app.url("/v1/products/999999/lifecycle-sources")).bearer_auth(&admin).json(&body),
    )
    .await;
    assert_eq!(status, 404);
}

async fn the_start_page_leads_with_the_action(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = crate::web::Browser::new(&app);
    browser.sign_in(&officer).await;
    // The action is the first heading of the answer, before the licence and warnings.
    let first_heading = |body: &str| {
        let start = body.find(r#"id="answer""#).expect("an answer");
        let before_licence = body.find("Licensed nationally").unwrap_or(usize::MAX);
        assert!(start < before_licence, "the action comes before what the catalogue holds");
        body[start..].split("</h2>").next().unwrap().to_owned()
    };

    let windows_7 = browser.get("/?q=Windows+7+Enterprise").await;
    assert_eq!(windows_7.status, 200);
    let heading = first_heading(&windows_7.body);
    assert!(heading.contains("Do not buy or deploy Windows 7 Enterprise"), "{heading}");
    assert!(windows_7.body.contains("nhsuk-card--care--urgent"), "unsupported is red");
    assert!(windows_7.body.contains("Stop: "));
    assert!(!windows_7.body.contains("No national guidance</h2>"), "the old headline is not the headline");

    let windows_10 = browser.get("/?q=Windows+10+Enterprise").await;
    let heading = first_heading(&windows_10.body);
    assert!(heading.contains("Covered only by paid Extended Security Updates until 2028-10-10"), "{heading}");
    assert!(windows_10.body.contains("nhsuk-warning-callout app-action"));

    // "Windows 10" names two products: the page asks which, with the standing of each.
    let both = browser.get("/?q=Windows+10").await;
    assert!(both.body.contains("Which product do you mean?"), "{}", both.body);
    assert!(both.body.contains("Windows 10 Enterprise") && both.body.contains("Windows 10 Pro"));
    assert!(both.body.contains("nhsuk-tag--red"), "unsupported choices are marked");
    assert!(!both.body.contains("app-action"), "no answer is given for the first match");
}

async fn a_periodic_sync_runs_on_one_instance_at_a_time(app: TestApp) {
    let other = catalogue_tests::second_instance(&app);
    let key = api::lifecycle_feed::PERIODIC_SYNC_LOCK;
    let ran_inside = app
        .db()
        .run_alone(key, || other.db().run_alone(key, || "the other instance ran too").unwrap())
        .unwrap()
        .expect("the first instance runs");
    match app.engine {
        // Two instances on PostgreSQL: the second finds the lock held and skips.
        db::Engine::Postgres => assert_eq!(ran_inside, None),
        // The embedded default is one instance: nothing to exclude.
        db::Engine::Sqlite => assert_eq!(ran_inside, Some("the other instance ran too")),
    }
    // Released afterwards: the other instance runs the next one.
    assert_eq!(other.db().run_alone(key, || 7).unwrap(), Some(7));
}

on_both_engines!(
    a_periodic_sync_runs_on_one_instance_at_a_time,
    the_start_page_leads_with_the_action,
    shipped_releases_carry_the_documents_dates,
    the_action_follows_each_release_around_its_ends,
    the_headline_cases_read_as_what_to_do,
    a_national_provision_in_the_category_comes_before_buying,
    a_sync_applies_small_moves_and_holds_large_ones,
    a_failing_or_slow_server_changes_nothing,
    admins_edit_the_mapping_and_nobody_else,
);

/// A catalogue made before releases existed keeps its product-level dates: the migration copies
/// them into one release per product (nothing is lost, and the action has something to decide on).
fn product_dates_survive_the_move_to_releases(engine: db::Engine) {
    use diesel::prelude::*;
    use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
    const SQLITE: EmbeddedMigrations = embed_migrations!("../db/migrations/sqlite");
    const POSTGRES: EmbeddedMigrations = embed_migrations!("../db/migrations/postgres");
    let Some(test) = catalogue_tests::empty_database(engine) else { return };
    let migrations = || match engine {
        db::Engine::Sqlite => SQLITE,
        db::Engine::Postgres => POSTGRES,
    };
    let mut conn = test.db.connection().unwrap();
    let conn: &mut db::DbConnection = &mut conn;
    conn.run_pending_migrations(migrations()).unwrap();
    // Back to the schema before releases.
    while conn.applied_migrations().unwrap().iter().any(|v| v.to_string().contains("000010")) {
        conn.revert_last_migration(migrations()).unwrap();
    }
    diesel::sql_query("INSERT INTO suppliers (id, name) VALUES (1, 'Old Supplier')").execute(conn).unwrap();
    diesel::sql_query(
        "INSERT INTO products (id, supplier_id, name, edition, version, category, mainstream_support_ends_on, \
         extended_support_ends_on) VALUES (1, 1, 'Old OS', 'Pro', '5.1', 'operating-system', '2009-04-14', '2014-04-08'), \
         (2, 1, 'Undated OS', '', '', 'operating-system', NULL, NULL)",
    )
    .execute(conn)
    .unwrap();
    conn.run_pending_migrations(migrations()).unwrap();
    let releases = db::releases::all(conn).unwrap();
    let old = &releases[&1];
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].name, "5.1");
    assert_eq!(old[0].active_support_ends_on, Some(day("2009-04-14")));
    assert_eq!(old[0].security_support_ends_on, Some(day("2014-04-08")));
    assert!(!releases.contains_key(&2), "a product with no dates gets no release");
    assert_eq!(old[0].status(day("2026-12-03")), db::vocabulary::ReleaseStatus::Unsupported);
}

#[test]
fn product_dates_survive_the_move_to_releases_sqlite() {
    product_dates_survive_the_move_to_releases(db::Engine::Sqlite);
}

#[test]
fn product_dates_survive_the_move_to_releases_postgres() {
    product_dates_survive_the_move_to_releases(db::Engine::Postgres);
}
