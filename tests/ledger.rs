//! The seat ledger on both engines: claims, idempotency, eligibility, releases, caps, bulk
//! claims, succession, reports, and the invariant under heavy concurrency.

use std::sync::Arc;

use catalogue_tests::{Role, TestApp, on_both_engines};
use serde_json::{Value, json};

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.get(path).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// The id of the entitlement for `sku` in the agreement in force today.
async fn entitlement_for(app: &TestApp, token: &str, sku: &str) -> i64 {
    let products = get_json(app, token, &format!("/v1/products?q={sku}")).await;
    let product = products["items"].as_array().unwrap().iter().find(|p| p["sku"] == sku).unwrap()["id"]
        .as_i64()
        .unwrap();
    let coverage = get_json(app, token, &format!("/v1/coverage?organisation=RR8&product={product}")).await;
    coverage["licences"][0]["entitlement_id"].as_i64().unwrap()
}

/// Sets the cap (and policy) of an entitlement as an admin.
async fn set_cap(app: &TestApp, admin: &str, entitlement: i64, cap: i64, policy: &str) {
    let body = json!({"seat_cap": cap, "over_allocation_policy": policy});
    let response = app
        .patch_any_version(&format!("/v1/entitlements/{entitlement}"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn claim(
    app: &TestApp,
    token: &str,
    entitlement: i64,
    organisation: &str,
    quantity: i64,
) -> reqwest::Response {
    app.post(&format!("/v1/entitlements/{entitlement}/allocations"))
        .bearer_auth(token)
        .json(&json!({"organisation": organisation, "quantity": quantity}))
        .send()
        .await
        .unwrap()
}

async fn claim_raw(app: &TestApp, token: &str, entitlement: i64, body: &'static str) -> u16 {
    app.post(&format!("/v1/entitlements/{entitlement}/allocations"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn seats(app: &TestApp, token: &str, entitlement: i64) -> (i64, Option<i64>) {
    let line = get_json(app, token, &format!("/v1/entitlements/{entitlement}")).await;
    (line["seats_allocated"].as_i64().unwrap(), line["seats_remaining"].as_i64())
}

fn audit_events(app: &TestApp, action_name: &str) -> i64 {
    app.with_connection(|conn| {
        use db::schema::audit_events::dsl::*;
        use diesel::prelude::*;
        audit_events.filter(action.eq(action_name)).count().get_result(conn).unwrap()
    })
}

async fn an_officer_claims_seats_and_accepts_obligations(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let defender = entitlement_for(&app, &officer, "MS-MDE-P2").await;
    // Another trust holds seats and obligations on the same line, so the officer's views below
    // are scoped for real (with RR8's data alone, an unscoped list would pass too).
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    assert_eq!(claim(&app, &admin, defender, "RJ1", 7).await.status(), 201);
    let (before, _) = seats(&app, &officer, defender).await;
    let response = claim(&app, &officer, defender, "rr8", 40).await;
    assert_eq!(response.status(), 201);
    let allocation: Value = response.json().await.unwrap();
    assert_eq!(allocation["organisation_code"], "RR8");
    assert_eq!(allocation["quantity"], 40);
    assert_eq!(allocation["status"], "live");
    assert_eq!(seats(&app, &officer, defender).await.0, before + 40);

    let obligations = get_json(&app, &officer, "/v1/reports/obligations").await;
    let items = obligations["items"].as_array().unwrap();
    assert!(!items.is_empty(), "the claim accepted the entitlement's obligations");
    assert!(items.iter().all(|o| o["organisation_code"] == "RR8" && o["entitlement_id"] == defender));
    let mine = get_json(&app, &officer, "/v1/organisations/RR8/allocations").await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        get_json(&app, &officer, &format!("/v1/entitlements/{defender}/allocations")).await["items"][0]["id"],
        allocation["id"]
    );
    assert_eq!(
        get_json(&app, &officer, &format!("/v1/entitlements/{defender}/allocations")).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "RJ1's allocation on the same line is not the officer's to see"
    );
    let everyone = get_json(&app, &admin, "/v1/reports/obligations").await;
    assert!(everyone["items"].as_array().unwrap().iter().any(|o| o["organisation_code"] == "RJ1"));
    assert_eq!(audit_events(&app, "allocation.claim"), 2);
}

async fn claims_past_the_cap_are_refused_with_the_seats_left(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let e3 = entitlement_for(&app, &officer, "MS-M365-E3").await;
    set_cap(&app, &admin, e3, 10, "block").await;
    assert_eq!(claim(&app, &officer, e3, "RR8", 7).await.status(), 201);
    let refused = claim(&app, &officer, e3, "RR8", 4).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["seats_remaining"], 3);
    assert!(problem["detail"].as_str().unwrap().contains('3'));
    assert_eq!(seats(&app, &officer, e3).await, (7, Some(3)), "the refused claim took nothing");
    assert_eq!(claim(&app, &officer, e3, "RR8", 3).await.status(), 201);
    assert_eq!(claim(&app, &officer, e3, "RR8", 1).await.status(), 409);
    for bad in [0, -1] {
        assert_eq!(claim(&app, &officer, e3, "RR8", bad).await.status(), 422);
    }

    // The cap cannot drop below what is allocated, unless over-allocation is allowed and flagged.
    let lower = app
        .patch_any_version(&format!("/v1/entitlements/{e3}"))
        .bearer_auth(&admin)
        .json(&json!({"seat_cap": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 409);
    set_cap(&app, &admin, e3, 5, "allow_and_flag").await;
    assert_eq!(claim(&app, &officer, e3, "RR8", 2).await.status(), 201, "allow_and_flag takes it");
    let line = get_json(&app, &officer, &format!("/v1/entitlements/{e3}")).await;
    assert_eq!(line["seats_over_cap"], 7);
    let report = get_json(&app, &admin, "/v1/reports/utilisation").await;
    let flagged = report["agreements"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["entitlements"].as_array().unwrap().iter())
        .find(|e| e["entitlement_id"] == e3)
        .unwrap()
        .clone();
    assert_eq!(flagged["seats_over_cap"], 7);
    assert_eq!(flagged["seats_allocated"], 12);
    assert_eq!(flagged["by_kind"][0]["key"], "trust");
    assert_eq!(flagged["by_kind"][0]["seats"], 12);
    assert_eq!(flagged["by_region"][0]["seats"], 12);
}

async fn ineligible_claims_are_refused(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    let defender = entitlement_for(&app, &officer, "MS-MDE-P2").await;
    let practice = json!({"code": "Y88888", "name": "Example Practice", "kind": "gp_practice"});
    app.post("/v1/organisations").bearer_auth(&admin).json(&practice).send().await.unwrap();
    let not_eligible = claim(&app, &admin, defender, "Y88888", 1).await;
    assert_eq!(not_eligible.status(), 422);
    assert!(not_eligible.json::<Value>().await.unwrap()["detail"].as_str().unwrap().contains("gp_practice"));
    assert_eq!(claim(&app, &admin, defender, "RBA", 1).await.status(), 422, "a closed organisation");
    // An organisation named in the body that does not exist is bad input (422), unlike the
    // entitlement of the path (404), in a single claim and a bulk claim alike.
    assert_eq!(claim(&app, &admin, defender, "NOPE1", 1).await.status(), 422);
    assert_eq!(claim(&app, &admin, 999_999, "RR8", 1).await.status(), 404);
    let bulk = |entitlement: i64, organisation: &'static str| {
        app.post(&format!("/v1/entitlements/{entitlement}/allocations/bulk"))
            .bearer_auth(&admin)
            .json(&json!({"claims": [{"organisation": organisation, "quantity": 1}]}))
            .send()
    };
    assert_eq!(bulk(999_999, "RR8").await.unwrap().status(), 404);
    assert_eq!(bulk(defender, "NOPE1").await.unwrap().status(), 422);
    let succession = app
        .post("/v1/organisations/RR8/succession")
        .bearer_auth(&admin)
        .json(&json!({"successor": "NOPE1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(succession.status(), 422);
    // The 2018 Windows 10 line has ended.
    let agreements = get_json(&app, &admin, "/v1/agreements?status=expired").await;
    let w10_2018 = agreements["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["reference"] == "NHSE-MS-W10E-2018")
        .unwrap();
    let lines = get_json(&app, &admin, &format!("/v1/agreements/{}/entitlements", w10_2018["id"])).await;
    let ended = lines["items"][0]["id"].as_i64().unwrap();
    assert_eq!(claim(&app, &admin, ended, "RR8", 1).await.status(), 422);
    // Roles and organisations.
    assert_eq!(claim(&app, &officer, defender, "RJ1", 1).await.status(), 404, "not for another trust");
    assert_eq!(claim(&app, &auditor, defender, "RR8", 1).await.status(), 403);
    assert_eq!(seats(&app, &admin, defender).await.0, 0, "nothing was taken");
    assert_eq!(audit_events(&app, "allocation.claim"), 0, "refusals are not audited as changes");
}

async fn idempotent_retries_never_take_seats_twice(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let e3 = entitlement_for(&app, &officer, "MS-M365-E3").await;
    let send = |key: &'static str, quantity: i64| {
        app.post(&format!("/v1/entitlements/{e3}/allocations"))
            .bearer_auth(&officer)
            .header("idempotency-key", key)
            .json(&json!({"organisation": "RR8", "quantity": quantity, "reference": "PO-1"}))
            .send()
    };
    let first = send("order-1", 5).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let retry = send("order-1", 5).await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first, "the first result, again");
    assert_eq!(seats(&app, &officer, e3).await.0, 5);
    assert_eq!(send("order-1", 6).await.unwrap().status(), 422, "the key with another body");
    // The ledger reads the organisation code upper-cased: written in lower case it is the same
    // claim, so the same key replays it (one fingerprint for the API and the web pages).
    let lower_case = app
        .post(&format!("/v1/entitlements/{e3}/allocations"))
        .bearer_auth(&officer)
        .header("idempotency-key", "order-1")
        .json(&json!({"organisation": "rr8", "quantity": 5, "reference": "PO-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(lower_case.status(), 201, "the same claim with the code in lower case");
    assert_eq!(lower_case.headers()["idempotent-replayed"], "true");

    // With no seats left, a retry still gets its first answer; only a new claim is refused.
    set_cap(&app, &admin, e3, 5, "block").await;
    let retry = send("order-1", 5).await.unwrap();
    assert_eq!(retry.status(), 201, "a retry after the line filled up");
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    assert_eq!(send("order-1", 6).await.unwrap().status(), 422, "the key with another body, line full");
    let refused = send("order-3", 1).await.unwrap();
    assert_eq!(refused.status(), 409);
    assert_eq!(refused.json::<Value>().await.unwrap()["seats_remaining"], 0);
    set_cap(&app, &admin, e3, 100, "block").await;
    let granted = send("order-3", 1).await.unwrap();
    assert_eq!(granted.status(), 201, "a refusal is not stored as the key's answer");
    assert!(granted.headers().get("idempotent-replayed").is_none());

    // Many concurrent retries with one key: one allocation.
    let officer = Arc::new(officer);
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (app, officer) = (app.clone(), officer.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let response = app
                .post(&format!("/v1/entitlements/{e3}/allocations"))
                .bearer_auth(officer.as_str())
                .header("idempotency-key", "order-2")
                .json(&json!({"organisation": "RR8", "quantity": 2}))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry got the same allocation");
    assert_eq!(seats(&app, &officer, e3).await.0, 8);
    assert_eq!(audit_events(&app, "allocation.claim"), 3);
}

async fn seats_are_released_whole_or_in_part(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (_, other) = app.sign_in(Role::Officer, Some("RJ1")).await;
    let e3 = entitlement_for(&app, &officer, "MS-M365-E3").await;
    let allocation: Value = claim(&app, &officer, e3, "RR8", 10).await.json().await.unwrap();
    let release = |token: &str, body: Option<&str>| {
        let request = app.post(&format!("/v1/allocations/{}/release", allocation["id"])).bearer_auth(token);
        let request = match body {
            Some(body) => request.header("content-type", "application/json").body(body.to_owned()),
            None => request,
        };
        request.send()
    };
    assert_eq!(release(&other, None).await.unwrap().status(), 404, "another trust's allocation");
    assert_eq!(release(&officer, Some("{\"quantity\": ")).await.unwrap().status(), 400);
    assert_eq!(release(&officer, Some("{\"quantity\": 11}")).await.unwrap().status(), 422);
    assert_eq!(release(&officer, Some("{\"seats\": 1}")).await.unwrap().status(), 422);
    assert_eq!(seats(&app, &officer, e3).await.0, 10, "bad requests released nothing");
    let partial = release(&officer, Some("{\"quantity\": 4}")).await.unwrap();
    assert_eq!(partial.status(), 200);
    assert_eq!(partial.json::<Value>().await.unwrap()["quantity"], 6);
    assert_eq!(seats(&app, &officer, e3).await.0, 6);
    let all = release(&officer, None).await.unwrap();
    assert_eq!(all.json::<Value>().await.unwrap()["status"], "released");
    assert_eq!(seats(&app, &officer, e3).await.0, 0);
    assert_eq!(release(&officer, None).await.unwrap().status(), 409, "nothing left to release");
    let live = get_json(&app, &officer, "/v1/organisations/RR8/allocations").await;
    assert!(live["items"].as_array().unwrap().is_empty());
    let history = get_json(&app, &officer, "/v1/organisations/RR8/allocations?include_ended=true").await;
    assert_eq!(history["items"][0]["claimed_quantity"], 10, "history is kept");
    assert_eq!(audit_events(&app, "allocation.release"), 2);
}

async fn bulk_claims_are_all_or_nothing(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let e3 = entitlement_for(&app, &admin, "MS-M365-E3").await;
    set_cap(&app, &admin, e3, 20, "block").await;
    let bulk = |claims: Value| {
        app.post(&format!("/v1/entitlements/{e3}/allocations/bulk"))
            .bearer_auth(&admin)
            .json(&json!({"claims": claims}))
            .send()
    };
    let one_closed = json!([{"organisation": "RR8", "quantity": 2}, {"organisation": "RJ1", "quantity": 2},
                            {"organisation": "RBA", "quantity": 2}]);
    let refused = bulk(one_closed).await.unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused.json::<Value>().await.unwrap()["detail"].as_str().unwrap().contains("claims[2]"));
    let too_many = json!([{"organisation": "RR8", "quantity": 15}, {"organisation": "RJ1", "quantity": 15}]);
    assert_eq!(bulk(too_many).await.unwrap().status(), 409);
    assert_eq!(seats(&app, &admin, e3).await.0, 0, "nothing from either refused batch");
    assert_eq!(bulk(json!([])).await.unwrap().status(), 422);

    let good = json!([{"organisation": "RR8", "quantity": 5}, {"organisation": "RJ1", "quantity": 6},
                      {"organisation": "RTH", "quantity": 7}]);
    let created = bulk(good).await.unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap().as_array().unwrap().len(), 3);
    assert_eq!(seats(&app, &admin, e3).await, (18, Some(2)));
    assert_eq!(audit_events(&app, "allocation.claim"), 3, "one event per allocation");
}

async fn succession_moves_live_allocations_and_obligations(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let e3 = entitlement_for(&app, &admin, "MS-M365-E3").await;
    let defender = entitlement_for(&app, &admin, "MS-MDE-P2").await;
    claim(&app, &admin, e3, "RR8", 5).await;
    claim(&app, &admin, e3, "RJ1", 3).await;
    claim(&app, &admin, defender, "RR8", 100).await;
    let released: Value = claim(&app, &admin, e3, "RR8", 1).await.json().await.unwrap();
    app.post(&format!("/v1/allocations/{}/release", released["id"]))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let totals_before = (seats(&app, &admin, e3).await.0, seats(&app, &admin, defender).await.0);

    let response = app
        .post("/v1/organisations/RR8/succession")
        .bearer_auth(&admin)
        .json(&json!({"successor": "RJ1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let succession: Value = response.json().await.unwrap();
    assert_eq!(succession["predecessor"]["closed"], true);
    assert_eq!(succession["predecessor"]["successor_code"], "RJ1");
    assert_eq!(succession["moved_allocations"].as_array().unwrap().len(), 2);
    assert!(succession["moved_obligations"].as_i64().unwrap() >= 1);

    assert_eq!(
        (seats(&app, &admin, e3).await.0, seats(&app, &admin, defender).await.0),
        totals_before,
        "no seat created or lost"
    );
    let heir = get_json(&app, &admin, "/v1/organisations/RJ1/allocations").await;
    let heir = heir["items"].as_array().unwrap();
    assert_eq!(heir.len(), 2, "merged with the successor's own allocation");
    let merged = heir.iter().find(|a| a["entitlement_id"] == e3).unwrap();
    assert_eq!(merged["quantity"], 8);
    let history = get_json(&app, &admin, "/v1/organisations/RR8/allocations?include_ended=true").await;
    let statuses: Vec<&str> =
        history["items"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "transferred").count(), 2);
    assert!(statuses.contains(&"released"), "history stays with the predecessor");
    let obligations = get_json(&app, &admin, "/v1/reports/obligations?organisation=RJ1").await;
    assert!(!obligations["items"].as_array().unwrap().is_empty(), "open obligations moved to the successor");
    let left = get_json(&app, &admin, "/v1/reports/obligations?organisation=RR8").await;
    assert!(left["items"].as_array().unwrap().is_empty());

    let again =
        app.post("/v1/organisations/RR8/succession").bearer_auth(&admin).json(&json!({"successor": "RJ1"}));
    assert_eq!(again.send().await.unwrap().status(), 409);
    let to_itself =
        app.post("/v1/organisations/RTH/succession").bearer_auth(&admin).json(&json!({"successor": "RTH"}));
    assert_eq!(to_itself.send().await.unwrap().status(), 422);
    assert_eq!(claim(&app, &admin, e3, "RR8", 1).await.status(), 422, "a closed trust claims nothing");
    assert_eq!(audit_events(&app, "organisation.succession"), 1);
    assert_eq!(audit_events(&app, "allocation.transfer"), 2);
}

/// A tiny deterministic generator, so a failing run can be repeated.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn the_cap_holds_under_concurrent_claims_and_releases(app: TestApp) {
    const CLIENTS: u64 = 64;
    const CLAIMS_PER_CLIENT: u64 = 32;
    const CAP: i64 = 150;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let e3 = entitlement_for(&app, &admin, "MS-M365-E3").await;
    set_cap(&app, &admin, e3, CAP, "block").await;
    let trusts = ["RR8", "RJ1", "RTH", "RGT", "RTD", "RM3", "RBL", "RGR"];
    let mut officers = Vec::new();
    for trust in trusts {
        officers.push((trust, app.sign_in(Role::Officer, Some(trust)).await.1));
    }
    let app = Arc::new(app);
    let officers = Arc::new(officers);
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (app, officers) = (app.clone(), officers.clone());
        clients.push(actix_web::rt::spawn(async move {
            let mut random = XorShift(0x9E37_79B9_7F4A_7C15 ^ (client + 1));
            let (trust, token) = &officers[(client as usize) % officers.len()];
            let (mut net, mut claimed, mut released, mut refused) = (0i64, 0u64, 0u64, 0u64);
            for _ in 0..CLAIMS_PER_CLIENT {
                let quantity = 1 + random.below(6) as i64;
                let response = claim(&app, token, e3, trust, quantity).await;
                match response.status().as_u16() {
                    201 => {
                        claimed += 1;
                        net += quantity;
                        let allocation: Value = response.json().await.unwrap();
                        if random.below(3) == 0 {
                            let give_back = 1 + random.below(quantity as u64) as i64;
                            let release = app
                                .post(&format!("/v1/allocations/{}/release", allocation["id"]))
                                .bearer_auth(token)
                                .json(&json!({"quantity": give_back}))
                                .send()
                                .await
                                .unwrap();
                            assert_eq!(release.status(), 200);
                            released += 1;
                            net -= give_back;
                        }
                    }
                    409 => refused += 1,
                    other => {
                        panic!("unexpected status {other}: {}", response.text().await.unwrap_or_default())
                    }
                }
            }
            (net, claimed, released, refused)
        }));
    }
    let (mut net, mut claimed, mut released, mut refused) = (0i64, 0u64, 0u64, 0u64);
    for client in clients {
        let (n, c, r, x) = client.await.unwrap();
        net += n;
        claimed += c;
        released += r;
        refused += x;
    }
    assert_eq!(claimed + refused, CLIENTS * CLAIMS_PER_CLIENT, "every claim got 201 or 409");
    assert!(
        claimed > 0 && refused > 0,
        "the cap was reached and claims were refused ({claimed} taken, {refused} refused)"
    );
    let (allocated, _) = seats(&app, &admin, e3).await;
    let ledger = app.with_connection(|conn| db::ledger::live_total(conn, e3).unwrap());
    assert_eq!(allocated, net, "the entitlement's total equals the successful responses");
    assert_eq!(ledger, net, "the live allocations add up to the same");
    assert!(allocated <= CAP, "never past the cap: {allocated} > {CAP}");
    assert_eq!(
        audit_events(&app, "allocation.claim") as u64,
        claimed,
        "one audit event per successful claim"
    );
    assert_eq!(audit_events(&app, "allocation.release") as u64, released, "one per successful release");
}

/// Ten releases of one allocation at once: one gives the seats back, the others are told it is no
/// longer live (409), and the line's total drops once.
async fn concurrent_releases_give_seats_back_once(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let line = entitlement_for(&app, &officer, "MS-MDE-P2").await;
    for round in 0..5 {
        let response = claim(&app, &officer, line, "RR8", 10).await;
        assert_eq!(response.status(), 201);
        let allocation: Value = response.json().await.unwrap();
        let (before, _) = seats(&app, &officer, line).await;
        let url = format!("/v1/allocations/{}/release", allocation["id"]);
        let releases = (0..10).map(|_| app.post(&url).bearer_auth(&officer).send());
        let statuses: Vec<u16> = futures_util::future::join_all(releases)
            .await
            .into_iter()
            .map(|r| r.unwrap().status().as_u16())
            .collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "round {round}: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "round {round}: {statuses:?}");
        assert_eq!(seats(&app, &officer, line).await.0, before - 10, "round {round}: given back once");
    }
}

/// Releases and claims racing a succession: whatever wins, every seat is counted once (the line's
/// total equals its live allocations) and nothing is left live on the closed predecessor.
async fn releases_and_claims_during_a_succession_keep_the_ledger(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let line = entitlement_for(&app, &admin, "MS-MDE-P2").await;
    let mut allocations = Vec::new();
    for _ in 0..6 {
        let allocation: Value = claim(&app, &admin, line, "RR8", 5).await.json().await.unwrap();
        allocations.push(allocation["id"].as_i64().unwrap());
    }
    let releases = allocations
        .iter()
        .map(|id| app.post(&format!("/v1/allocations/{id}/release")).bearer_auth(&admin).send());
    let claims = (0..4).map(|_| claim(&app, &admin, line, "RR8", 2));
    let succession = app
        .post("/v1/organisations/RR8/succession")
        .bearer_auth(&admin)
        .json(&json!({"successor": "RJ1"}))
        .send();
    let (released, claimed, succeeded) = futures_util::join!(
        futures_util::future::join_all(releases),
        futures_util::future::join_all(claims),
        succession
    );
    assert_eq!(succeeded.unwrap().status(), 200);
    for response in released {
        let status = response.unwrap().status().as_u16();
        assert!([200, 409].contains(&status), "a release answered {status}");
    }
    for response in claimed {
        let status = response.status().as_u16();
        assert!([201, 422].contains(&status), "a claim answered {status} (422: RR8 has closed)");
    }
    let (total, _) = seats(&app, &admin, line).await;
    let live = app.with_connection(|conn| db::ledger::live_total(conn, line).unwrap());
    assert_eq!(total, live, "the line's total is its live allocations");
    let left_on_rr8 = get_json(&app, &admin, "/v1/organisations/RR8/allocations").await;
    assert!(
        left_on_rr8["items"].as_array().unwrap().is_empty(),
        "nothing live on the predecessor: {left_on_rr8}"
    );
}

/// Every kind of bad input to a claim gets its own problem status and takes no seat.
async fn bad_claims_get_their_problem_and_take_nothing(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let line = entitlement_for(&app, &officer, "MS-MDE-P2").await;
    let (before, _) = seats(&app, &officer, line).await;
    let url = format!("/v1/entitlements/{line}/allocations");
    let send = |content_type: &'static str, body: &'static str, key: Option<String>| {
        let mut request =
            app.post(&url).bearer_auth(&officer).header("content-type", content_type).body(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send()
    };
    let good = r#"{"organisation": "RR8", "quantity": 1}"#;
    for (content_type, body, key, expected) in [
        ("application/json", good, Some("k".repeat(256)), 400),
        ("application/json", good, Some("tab\there".to_owned()), 400),
        ("application/json", r#"{"organisation": "RR8", "quantity": 1"#, None, 400),
        ("application/json", r#"{"organisation": "RR8", "quantity": 1, "seats": 2}"#, None, 422),
        ("application/json", r#"{"organisation": "RR8"}"#, None, 422),
        ("text/plain", good, None, 415),
    ] {
        let response = send(content_type, body, key.clone()).await.unwrap();
        assert_eq!(response.status(), expected, "{content_type} {body} {key:?}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(seats(&app, &officer, line).await.0, before, "no seat was taken");
}

/// The security test's High finding: 9223372036854775807 seats on an uncapped line answered 201,
/// then every later claim 500 (PostgreSQL) or a float counter and negative seats (SQLite).
async fn seat_quantities_are_bounded_and_totals_never_overflow(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let line = entitlement_for(&app, &officer, "MS-M365-E3").await;
    // Uncapped, and then allowed past its cap: the two policies the overflow came through.
    for body in
        [json!({"seat_cap": null}), json!({"seat_cap": 5, "over_allocation_policy": "allow_and_flag"})]
    {
        let response = app
            .patch_any_version(&format!("/v1/entitlements/{line}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{body}");
        for quantity in [i64::MAX, 10_000_001, 0, -1] {
            let refused = claim(&app, &officer, line, "RR8", quantity).await;
            assert_eq!(refused.status(), 422, "{quantity} seats on {body}");
            let problem: Value = refused.json().await.unwrap();
            assert!(problem["detail"].as_str().unwrap().contains("between 1 and 10000000"), "{problem}");
        }
        let bulk = app
            .post(&format!("/v1/entitlements/{line}/allocations/bulk"))
            .bearer_auth(&admin)
            .json(&json!({"claims": [{"organisation": "RR8", "quantity": 1}, {"organisation": "RJ1", "quantity": i64::MAX}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(bulk.status(), 422, "a bulk claim with one huge line is refused whole");
        assert_eq!(seats(&app, &admin, line).await.0, 0);
    }
    // JSON Schema's integers include 342.0: a whole number written with a fraction is taken,
    // a fraction is not.
    assert_eq!(
        app.post(&format!("/v1/entitlements/{line}/allocations"))
            .bearer_auth(&officer)
            .header("content-type", "application/json")
            .body(r#"{"organisation": "RR8", "quantity": 3.0}"#)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(claim_raw(&app, &officer, line, r#"{"organisation": "RR8", "quantity": 2.5}"#).await, 422);
    // Given back, so the bound below is reached from zero.
    for allocation in
        get_json(&app, &admin, "/v1/organisations/RR8/allocations").await["items"].as_array().unwrap()
    {
        let id = allocation["id"].as_i64().unwrap();
        let response =
            app.post(&format!("/v1/allocations/{id}/release")).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(seats(&app, &admin, line).await.0, 0);
    // A line holds at most 1,000,000,000 seats, whatever its policy: 100 claims of the most one
    // claim may take fill it, and the next claim, however small, is refused with a 409.
    for _ in 0..100 {
        assert_eq!(claim(&app, &admin, line, "RR8", 10_000_000).await.status(), 201);
    }
    let full = claim(&app, &officer, line, "RR8", 1).await;
    assert_eq!(full.status(), 409);
    let problem: Value = full.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("at most 1000000000 seats"), "{problem}");
    let entitlement = get_json(&app, &admin, &format!("/v1/entitlements/{line}")).await;
    assert_eq!(entitlement["seats_allocated"].as_i64(), Some(1_000_000_000), "an integer: {entitlement}");
    assert_eq!(entitlement["seats_over_cap"].as_i64(), Some(1_000_000_000 - 5));
    // The report adds the seats up: still an exact integer, never negative.
    let report = get_json(&app, &admin, "/v1/reports/utilisation").await;
    let reported = report["agreements"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["entitlements"].as_array().unwrap())
        .find(|e| e["entitlement_id"] == line)
        .unwrap()
        .clone();
    assert_eq!(reported["seats_allocated"].as_i64(), Some(1_000_000_000));
    assert_eq!(reported["by_kind"][0]["seats"].as_i64(), Some(1_000_000_000), "{reported}");
    // A cap past the bound is refused too.
    let response = app
        .patch_any_version(&format!("/v1/entitlements/{line}"))
        .bearer_auth(&admin)
        .json(&json!({"seat_cap": 1_000_000_001_i64}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}

/// A claim on a line that is not in force on the day (its agreement a draft, or the line not
/// begun) is refused with 422, singly and in bulk, and takes nothing.
async fn claims_on_lines_not_in_force_are_refused(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let supplier = app.any_supplier_id(&admin).await;
    let product =
        json!({"supplier_id": supplier, "name": "Pager", "sku": "PAGER-1", "category": "workforce"});
    let product = app.created(&admin, "/v1/products", &product).await;
    let mut lines = Vec::new();
    for (reference, status, line_starts_on) in
        [("PAGER-DRAFT", "draft", "2020-01-01"), ("PAGER-LATER", "active", "2999-01-01")]
    {
        let agreement = json!({"supplier_id": supplier, "reference": reference, "title": "Pagers", "starts_on": "2020-01-01",
                               "funding_model": "central", "status": status, "eligible_kinds": ["trust"]});
        let agreement = app.created(&admin, "/v1/agreements", &agreement).await;
        let line = json!({"product_id": product["id"], "tier": "national_provision", "metric": "per_user", "seat_cap": 10,
                          "eligible_kinds": ["trust"], "starts_on": line_starts_on});
        let line =
            app.created(&admin, &format!("/v1/agreements/{}/entitlements", agreement["id"]), &line).await;
        lines.push((reference, line["id"].as_i64().unwrap()));
    }
    for (reference, line) in lines {
        let single = claim(&app, &admin, line, "RR8", 1).await;
        assert_eq!(single.status(), 422, "{reference}");
        let problem: Value = single.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains("is not in force on"), "{reference}: {problem}");
        let bulk = app
            .post(&format!("/v1/entitlements/{line}/allocations/bulk"))
            .bearer_auth(&admin)
            .json(&json!({"claims": [{"organisation": "RR8", "quantity": 1}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(bulk.status(), 422, "{reference} in bulk");
        assert_eq!(seats(&app, &admin, line).await.0, 0, "{reference}: nothing taken");
    }
}

/// Single claims and bulk claims racing on one capped line: the cap holds, no request fails with
/// a server error, and the line's total equals the seats of the successful responses (a bulk
/// claim's seats counted whole or not at all).
async fn bulk_and_single_claims_together_keep_the_cap(app: TestApp) {
    const CAP: i64 = 40;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let line = entitlement_for(&app, &admin, "MS-M365-E3").await;
    set_cap(&app, &admin, line, CAP, "block").await;
    let singles = (0..12).map(|_| async {
        let response = claim(&app, &admin, line, "RR8", 2).await;
        (response.status().as_u16(), 2)
    });
    let bulks = (0..8).map(|_| async {
        let response = app
            .post(&format!("/v1/entitlements/{line}/allocations/bulk"))
            .bearer_auth(&admin)
            .json(&json!({"claims": [{"organisation": "RJ1", "quantity": 2}, {"organisation": "RTH", "quantity": 1}]}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), 3)
    });
    let (singles, bulks) =
        futures_util::join!(futures_util::future::join_all(singles), futures_util::future::join_all(bulks));
    let outcomes: Vec<(u16, i64)> = singles.into_iter().chain(bulks).collect();
    assert!(outcomes.iter().all(|(status, _)| *status == 201 || *status == 409), "{outcomes:?}");
    let taken: i64 = outcomes.iter().filter(|(status, _)| *status == 201).map(|(_, seats)| seats).sum();
    assert!(outcomes.iter().any(|(status, _)| *status == 409), "the cap was never reached: {outcomes:?}");
    let (allocated, _) = seats(&app, &admin, line).await;
    assert_eq!(allocated, taken, "the line's total is the successful responses' seats");
    assert!(allocated <= CAP, "{allocated} seats past the cap of {CAP}");
    let live = app.with_connection(|conn| db::ledger::live_total(conn, line).unwrap());
    assert_eq!(live, taken, "the live allocations add up to the same");
}

/// Two instances writing to one SQLite file (two processes' worth of pools, as when a second
/// `catalogue serve` is started on the same file): claims through both keep the cap and the
/// ledger, and a write that meets the other instance's lock waits rather than failing.
#[actix_web::test]
async fn two_instances_on_one_sqlite_file_keep_the_ledger() {
    const CAP: i64 = 60;
    let app = catalogue_tests::spawn_app(catalogue_tests::Engine::Sqlite).await.expect("SQLite");
    let other = catalogue_tests::second_instance(&app);
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let line = entitlement_for(&app, &admin, "MS-M365-E3").await;
    set_cap(&app, &admin, line, CAP, "block").await;
    let claims = (0..50).map(|n| {
        let (instance, trust) = if n % 2 == 0 { (&app, "RR8") } else { (&other, "RJ1") };
        let admin = admin.clone();
        async move { (claim(instance, &admin, line, trust, 2).await.status().as_u16(), 2) }
    });
    let outcomes: Vec<(u16, i64)> = futures_util::future::join_all(claims).await;
    assert!(outcomes.iter().all(|(status, _)| *status == 201 || *status == 409), "{outcomes:?}");
    let taken: i64 = outcomes.iter().filter(|(status, _)| *status == 201).map(|(_, seats)| seats).sum();
    assert_eq!(taken, CAP, "the line fills exactly: {outcomes:?}");
    assert_eq!(seats(&app, &admin, line).await.0, taken);
    assert_eq!(seats(&other, &admin, line).await.0, taken, "the other instance reads the same total");
    let live = app.with_connection(|conn| db::ledger::live_total(conn, line).unwrap());
    assert_eq!(live, taken);
}

/// A key stored before the ledger kept what a claim made (when it kept the HTTP status and body)
/// still answers its retry after the upgrade: the migration reads the allocation's id out of the
/// stored body, and a retry gets that allocation back without taking seats again.
async fn keys_stored_as_responses_still_replay_after_the_upgrade(app: TestApp) {
    use diesel::prelude::*;
    use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
    const SQLITE: EmbeddedMigrations = embed_migrations!("../db/migrations/sqlite");
    const POSTGRES: EmbeddedMigrations = embed_migrations!("../db/migrations/postgres");
    let migrations = || match app.engine {
        catalogue_tests::Engine::Sqlite => SQLITE,
        catalogue_tests::Engine::Postgres => POSTGRES,
    };
    let (user, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let e3 = entitlement_for(&app, &officer, "MS-M365-E3").await;
    let body = json!({"organisation": "RR8", "quantity": 4, "reference": "PO-OLD"});
    let claimed = app.post(&format!("/v1/entitlements/{e3}/allocations")).bearer_auth(&officer).json(&body);
    let first: Value = claimed.send().await.unwrap().json().await.unwrap();
    let claim =
        db::ledger::Claim { organisation: "RR8".into(), quantity: 4, reference: Some("PO-OLD".into()) };
    let key = db::ledger::IdempotencyKey::for_claim(user.id, "old-key".into(), e3, &claim);
    app.with_connection(|conn| {
        while conn.applied_migrations().unwrap().iter().any(|v| v.to_string().contains("000046")) {
            conn.revert_last_migration(migrations()).unwrap();
        }
        // As the ledger stored it then: the status and the body it answered with.
        diesel::sql_query(
            "INSERT INTO idempotency_keys (user_id, idempotency_key, request_fingerprint, response_status, \
             response_body) VALUES ($1, 'old-key', $2, 201, $3)",
        )
        .bind::<diesel::sql_types::BigInt, _>(user.id)
        .bind::<diesel::sql_types::Text, _>(&key.fingerprint)
        .bind::<diesel::sql_types::Text, _>(first.to_string())
        .execute(conn)
        .unwrap();
        conn.run_pending_migrations(migrations()).unwrap();
    });
    let retry = app
        .post(&format!("/v1/entitlements/{e3}/allocations"))
        .bearer_auth(&officer)
        .header("idempotency-key", "old-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first, "the allocation the stored body named");
    assert_eq!(seats(&app, &officer, e3).await.0, 4, "the retry took nothing");
}

on_both_engines!(
    claims_on_lines_not_in_force_are_refused,
    bulk_and_single_claims_together_keep_the_cap,
    concurrent_releases_give_seats_back_once,
    releases_and_claims_during_a_succession_keep_the_ledger,
    bad_claims_get_their_problem_and_take_nothing,
    seat_quantities_are_bounded_and_totals_never_overflow,
    an_officer_claims_seats_and_accepts_obligations,
    claims_past_the_cap_are_refused_with_the_seats_left,
    ineligible_claims_are_refused,
    idempotent_retries_never_take_seats_twice,
    keys_stored_as_responses_still_replay_after_the_upgrade,
    seats_are_released_whole_or_in_part,
    bulk_claims_are_all_or_nothing,
    succession_moves_live_allocations_and_obligations,
    the_cap_holds_under_concurrent_claims_and_releases,
);
