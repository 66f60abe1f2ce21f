//! The change feed (`GET /v1/changes`, issue 20): the shared record's changes in order, each
//! exactly once across pages while writes go on; a change whose transaction is still running is
//! not read before it commits, and then comes in its turn, not lost behind a later one.

use std::collections::BTreeSet;

use catalogue_tests::{Engine, Role, TestApp, on_both_engines, status_and_json};
use serde_json::{Value, json};

/// Reads the feed on from `after` to its end for now: the changes, and where to go on from.
async fn read_on(
    app: &TestApp,
    token: &str,
    after: Option<String>,
    limit: u32,
) -> (Vec<Value>, Option<String>) {
    let (mut changes, mut position) = (Vec::new(), after);
    loop {
        let mut path = format!("/v1/changes?limit={limit}");
        if let Some(after) = &position {
            path.push_str(&format!("&after={after}"));
        }
        let (status, page) = status_and_json(app.get(&path).bearer_auth(token)).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        if let Some(last) = items.last() {
            position = Some(last["cursor"].as_str().unwrap().to_owned());
        }
        changes.extend(items);
        if page["next_cursor"].is_null() {
            return (changes, position);
        }
    }
}

async fn the_feed_carries_the_shared_record_in_order_and_once(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (seeded, position) = read_on(&app, &officer, None, 500).await;
    assert!(seeded.iter().all(|c| db::audit::FEED_ENTITIES.contains(&c["entity"].as_str().unwrap())));
    let supplier = app.any_supplier_id(&admin).await;
    let product = app
        .created(
            &admin,
            "/v1/products",
            &json!({"supplier_id": supplier, "name": "Feed product", "sku": "FEED-1", "category": "feed"}),
        )
        .await;
    let id = product["id"].as_i64().unwrap();
    let renamed = app
        .patch_any_version(&format!("/v1/products/{id}"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Feed product 2"}));
    assert_eq!(renamed.send().await.unwrap().status(), 200);
    // A claim is the organisation's business: not in the feed.
    let (_, line) = app.license_nationally("MS-WIN11-ENT", None).await;
    let claim = app.post(&format!("/v1/entitlements/{line}/allocations")).bearer_auth(&officer);
    assert_eq!(
        claim.json(&json!({"organisation": "RR8", "quantity": 1})).send().await.unwrap().status(),
        201
    );

    // On PostgreSQL a transaction running anywhere on the server (another test's) holds the feed
    // back until it ends: read as a client would, until the changes are there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let new = loop {
        let (new, _) = read_on(&app, &officer, position.clone(), 2).await;
        if new.iter().any(|c| c["entity"] == "entitlement") || std::time::Instant::now() > deadline {
            break new;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let actions: Vec<(&str, &str)> =
        new.iter().map(|c| (c["action"].as_str().unwrap(), c["entity"].as_str().unwrap())).collect();
    assert_eq!(actions[..2], [("product.create", "product"), ("product.update", "product")], "{new:?}");
    assert_eq!(new[1]["after"]["name"], "Feed product 2");
    assert!(
        actions.iter().any(|(_, entity)| *entity == "agreement")
            && actions.iter().any(|(_, entity)| *entity == "entitlement")
    );
    assert!(!actions.iter().any(|(_, entity)| *entity == "allocation"), "{actions:?}");
    let (again, _) = read_on(&app, &officer, position, 500).await;
    assert_eq!(again, new, "the same changes whatever the page size");
    let bad = app.get("/v1/changes?after=12").bearer_auth(&officer).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}
on_both_engines!(the_feed_carries_the_shared_record_in_order_and_once);

/// Writers and a reader at once: every change is read exactly once.
async fn every_change_is_read_once_while_writes_go_on(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, position) = read_on(&app, &admin, None, 500).await;
    let supplier = app.any_supplier_id(&admin).await;
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (client, base, admin) = (app.client.clone(), app.url("/v1/products"), admin.clone());
            tokio::spawn(async move {
                for n in 0..8 {
                    let body = json!({"supplier_id": supplier, "name": format!("Feed {writer}-{n}"), "sku": format!("FEED-{writer}-{n}"), "category": "feed"});
                    let response = client.post(&base).bearer_auth(&admin).json(&body).send().await.unwrap();
                    assert_eq!(response.status(), 201);
                }
            })
        })
        .collect();
    let (mut seen, mut position, mut skus) = (Vec::new(), position, BTreeSet::new());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while skus.len() < 32 {
        assert!(std::time::Instant::now() < deadline, "only {} of 32 products read", skus.len());
        let (read, next) = read_on(&app, &admin, position.clone(), 3).await;
        for change in &read {
            if let Some(sku) = change["after"]["sku"].as_str().filter(|s| s.starts_with("FEED-")) {
                skus.insert(sku.to_owned());
            }
        }
        seen.extend(read.into_iter().map(|c| c["id"].as_i64().unwrap()));
        position = next;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no change read twice");
}
on_both_engines!(every_change_is_read_once_while_writes_go_on);

/// PostgreSQL: a transaction that wrote a change and is still running holds back the feed at
/// its place: a change committed after it began is not read before it, and both come, in
/// order, once it commits. (SQLite has one writer: the second write waits for the first.)
async fn a_running_transaction_holds_the_feed_at_its_place(app: TestApp) {
    if app.engine != Engine::Postgres {
        return;
    }
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, position) = read_on(&app, &admin, None, 500).await;
    let (started_tx, started) = std::sync::mpsc::channel();
    let (finish_tx, finish) = std::sync::mpsc::channel::<()>();
    let db = app.db().clone();
    let slow = std::thread::spawn(move || {
        db.write(&db::Actor::system("test"), |conn| {
            // The transaction's first write takes its id, as a real write's first row does.
            use diesel::prelude::*;
            let xid: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "pg_current_xact_id()::text::bigint",
            ))
            .get_result(conn)
            .unwrap();
            assert!(xid > 0);
            started_tx.send(()).unwrap();
            finish.recv().unwrap();
            Ok(db::Audited::one((), db::Change::new("product.update", "product", "slow")))
        })
        .unwrap();
    });
    started.recv().unwrap();
    let supplier = app.any_supplier_id(&admin).await;
    app.created(
        &admin,
        "/v1/products",
        &json!({"supplier_id": supplier, "name": "Fast", "sku": "FEED-FAST", "category": "feed"}),
    )
    .await;
    let (held, _) = read_on(&app, &admin, position.clone(), 50).await;
    assert!(
        held.iter().all(|c| c["after"]["sku"] != "FEED-FAST"),
        "read past a running transaction: {held:?}"
    );
    finish_tx.send(()).unwrap();
    slow.join().unwrap();
    // Other tests' transactions on the same server may hold the feed back a little longer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let read = loop {
        let (read, _) = read_on(&app, &admin, position.clone(), 50).await;
        if read.iter().any(|c| c["after"]["sku"] == "FEED-FAST") || std::time::Instant::now() > deadline {
            break read;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let ids: Vec<&str> = read.iter().map(|c| c["entity_id"].as_str().unwrap()).collect();
    let slow_at = ids.iter().position(|id| *id == "slow").expect("the slow change");
    let fast_at = read.iter().position(|c| c["after"]["sku"] == "FEED-FAST").expect("the fast change");
    assert!(slow_at < fast_at, "in the order the transactions began: {ids:?}");
}
on_both_engines!(a_running_transaction_holds_the_feed_at_its_place);
