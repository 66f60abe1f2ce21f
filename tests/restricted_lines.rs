//! Restricted lines and NHSmail service eligibility (issue 16), on both engines: a claim on a
//! line that requires approval is held as a seat request until an admin approves it, and takes
//! no seats when refused; a per-organisation cap holds under a concurrent storm; a line that is
//! one NHSmail service's national provision is offered only to that service's organisations.

use std::sync::Arc;

use catalogue_tests::{Role, TestApp, on_both_engines, status_and_json};
use serde_json::{Value, json};

/// A line for `sku`, licensed nationally today, changed by `changes` (a PATCH as an admin).
async fn restricted_line(app: &TestApp, admin: &str, sku: &str, changes: Value) -> i64 {
    let (_, line) = app.license_nationally(sku, None).await;
    let (status, body) = status_and_json(
        app.patch_any_version(&format!("/v1/entitlements/{line}")).bearer_auth(admin).json(&changes),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    line
}

async fn claim(app: &TestApp, token: &str, line: i64, organisation: &str, quantity: i64) -> (u16, Value) {
    status_and_json(
        app.post(&format!("/v1/entitlements/{line}/allocations"))
            .bearer_auth(token)
            .json(&json!({"organisation": organisation, "quantity": quantity})),
    )
    .await
}

async fn seats_allocated(app: &TestApp, token: &str, line: i64) -> i64 {
    let (status, body) =
        status_and_json(app.get(&format!("/v1/entitlements/{line}")).bearer_auth(token)).await;
    assert_eq!(status, 200, "{body}");
    body["seats_allocated"].as_i64().unwrap_or_else(|| panic!("{body}"))
}

fn audit_events(app: &TestApp, action_name: &str) -> i64 {
    app.with_connection(|conn| {
        use db::schema::audit_events::dsl::*;
        use diesel::prelude::*;
        audit_events.filter(action.eq(action_name)).count().get_result(conn).unwrap()
    })
}

fn allocations_of(app: &TestApp, line: i64) -> i64 {
    app.with_connection(|conn| {
        use db::schema::allocations::dsl::*;
        use diesel::prelude::*;
        allocations.filter(entitlement_id.eq(line)).count().get_result(conn).unwrap()
    })
}

async fn an_approval_claim_is_held_until_approved_and_a_refusal_takes_no_seats(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let line =
        restricted_line(&app, &admin, "MS-PBI-PRO", json!({"requires_approval": true, "seat_cap": 100}))
            .await;
    let (_, rr8) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (_, rj1) = app.sign_in(Role::Officer, Some("RJ1")).await;

    // The claim becomes a request: 202, a Location, no seats taken, no allocation.
    let response = app
        .post(&format!("/v1/entitlements/{line}/allocations"))
        .bearer_auth(&rr8)
        .header("Idempotency-Key", "rr8-pbi-1")
        .json(&json!({"organisation": "RR8", "quantity": 30, "reference": "CR-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["status"], "pending", "{first}");
    assert_eq!(location, format!("/v1/seat-requests/{}", first["id"]));
    assert_eq!(seats_allocated(&app, &admin, line).await, 0, "a request holds no seats");
    assert_eq!(allocations_of(&app, line), 0);

    // A retry with the same key answers the same request; no second request is made.
    let retry = app
        .post(&format!("/v1/entitlements/{line}/allocations"))
        .bearer_auth(&rr8)
        .header("Idempotency-Key", "rr8-pbi-1")
        .json(&json!({"organisation": "RR8", "quantity": 30, "reference": "CR-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 202);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(audit_events(&app, "seat_request.create"), 1);

    // Officers see their own requests only; another trust's answers 404.
    let (status, own) = status_and_json(app.get("/v1/seat-requests").bearer_auth(&rr8)).await;
    assert_eq!(status, 200);
    assert_eq!(own["items"].as_array().unwrap().len(), 1, "{own}");
    let (status, _) = status_and_json(app.get(&location).bearer_auth(&rj1)).await;
    assert_eq!(status, 404, "RJ1 may not read RR8's request");
    let (status, none) =
        status_and_json(app.get("/v1/seat-requests?organisation=RR8").bearer_auth(&rj1)).await;
    assert_eq!(status, 200);
    assert_eq!(none["items"], json!([]), "the filter cannot widen an officer's view: {none}");
    let (status, _) = status_and_json(app.post(&format!("{location}/withdraw")).bearer_auth(&rj1)).await;
    assert_eq!(status, 404, "nor withdraw it");
    let (status, _) = status_and_json(app.post(&format!("{location}/approve")).bearer_auth(&rr8)).await;
    assert_eq!(status, 403, "an officer cannot approve");

    // Approved: the seats are taken now, as an allocation the request names.
    let (status, approval) =
        status_and_json(app.post(&format!("{location}/approve")).bearer_auth(&admin)).await;
    assert_eq!(status, 200, "{approval}");
    assert_eq!(approval["request"]["status"], "approved");
    assert_eq!(approval["request"]["allocation_id"], approval["allocation"]["id"]);
    assert_eq!(approval["allocation"]["quantity"], 30);
    assert_eq!(approval["allocation"]["reference"], "CR-1");
    assert_eq!(seats_allocated(&app, &admin, line).await, 30);
    let (status, _) = status_and_json(app.post(&format!("{location}/approve")).bearer_auth(&admin)).await;
    assert_eq!(status, 409, "never approved twice");
    assert_eq!(seats_allocated(&app, &admin, line).await, 30);

    // Refused: a reason is needed, and no seats are taken.
    let (status, second) = claim(&app, &rr8, line, "RR8", 20).await;
    assert_eq!(status, 202, "{second}");
    let second_path = format!("/v1/seat-requests/{}", second["id"]);
    let (status, _) = status_and_json(
        app.post(&format!("{second_path}/refuse")).bearer_auth(&admin).json(&json!({"reason": "   "})),
    )
    .await;
    assert_eq!(status, 422, "a blank reason is refused");
    let (status, refused) = status_and_json(
        app.post(&format!("{second_path}/refuse"))
            .bearer_auth(&admin)
            .json(&json!({"reason": "Power BI Pro is funded for analysts only"})),
    )
    .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["reason"], "Power BI Pro is funded for analysts only");
    assert_eq!(refused["allocation_id"], Value::Null);
    let (status, _) = status_and_json(app.post(&format!("{second_path}/approve")).bearer_auth(&admin)).await;
    assert_eq!(status, 409, "a refused request cannot be approved");
    assert_eq!(seats_allocated(&app, &admin, line).await, 30, "the refusal took no seats");

    // An approval the line can no longer hold is refused and changes nothing: the request waits.
    let (_, big) = claim(&app, &rj1, line, "RJ1", 60).await;
    let (_, small) = claim(&app, &rr8, line, "RR8", 50).await;
    let (status, _) =
        status_and_json(app.post(&format!("/v1/seat-requests/{}/approve", small["id"])).bearer_auth(&admin))
            .await;
    assert_eq!(status, 200);
    let (status, problem) =
        status_and_json(app.post(&format!("/v1/seat-requests/{}/approve", big["id"])).bearer_auth(&admin))
            .await;
    assert_eq!(status, 409, "only 20 seats are left: {problem}");
    assert_eq!(seats_allocated(&app, &admin, line).await, 80);
    let (_, still) =
        status_and_json(app.get(&format!("/v1/seat-requests/{}", big["id"])).bearer_auth(&rj1)).await;
    assert_eq!(still["status"], "pending", "{still}");
    // Its organisation withdraws it instead.
    let (status, withdrawn) =
        status_and_json(app.post(&format!("/v1/seat-requests/{}/withdraw", big["id"])).bearer_auth(&rj1))
            .await;
    assert_eq!(status, 200, "{withdrawn}");
    assert_eq!(withdrawn["status"], "withdrawn");

    // A claim the line could never hold is refused at once, not queued.
    let (status, _) = claim(&app, &rr8, line, "RR8", 21).await;
    assert_eq!(status, 409, "20 seats are left");
    // Bulk claims are refused on such a line: each organisation's claim is a request of its own.
    let (status, problem) = status_and_json(
        app.post(&format!("/v1/entitlements/{line}/allocations/bulk"))
            .bearer_auth(&admin)
            .json(&json!({"claims": [{"organisation": "RR8", "quantity": 1}]})),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("requires approval"), "{problem}");

    let (_, queue) = status_and_json(app.get("/v1/seat-requests?status=pending").bearer_auth(&admin)).await;
    assert_eq!(queue["items"], json!([]), "nothing left pending: {queue}");
    assert_eq!(seats_allocated(&app, &admin, line).await, 80);
    let live: i64 = app.with_connection(|conn| db::ledger::live_total(conn, line).unwrap());
    assert_eq!(live, 80, "the live allocations add up to the line's total");
    assert_eq!(audit_events(&app, "seat_request.create"), 4);
    assert_eq!(audit_events(&app, "seat_request.approve"), 2);
    assert_eq!(audit_events(&app, "seat_request.refuse"), 1);
    assert_eq!(audit_events(&app, "seat_request.withdraw"), 1);
    assert_eq!(audit_events(&app, "allocation.claim"), 2, "one claim per approval");
}

async fn the_per_organisation_cap_holds_under_a_concurrent_storm(app: TestApp) {
    const PER_ORGANISATION: i64 = 25;
    const CLIENTS: usize = 48;
    const CLAIMS_PER_CLIENT: usize = 12;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    // A per-organisation cap above a blocking seat cap is refused, and the line stays as it was.
    let (_, line) = app.license_nationally("MS-VISIO-P2", None).await;
    let (status, problem) = status_and_json(
        app.patch_any_version(&format!("/v1/entitlements/{line}"))
            .bearer_auth(&admin)
            .json(&json!({"seat_cap": 10, "per_organisation_cap": 11})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let (_, unchanged) =
        status_and_json(app.get(&format!("/v1/entitlements/{line}")).bearer_auth(&admin)).await;
    assert_eq!(unchanged["seat_cap"], Value::Null, "{unchanged}");
    let (status, body) = status_and_json(
        app.patch_any_version(&format!("/v1/entitlements/{line}"))
            .bearer_auth(&admin)
            .json(&json!({"per_organisation_cap": PER_ORGANISATION})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let trusts = ["RR8", "RJ1", "RTH", "RGT"];
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
            let (trust, token) = officers[client % officers.len()].clone();
            let mut taken = 0i64;
            let mut refused = 0;
            for round in 0..CLAIMS_PER_CLIENT {
                let quantity = 1 + ((client + round) % 3) as i64;
                let (status, body) = claim(&app, &token, line, trust, quantity).await;
                match status {
                    201 => taken += quantity,
                    409 => {
                        assert!(body["detail"].as_str().unwrap().contains("may hold at most"), "{body}");
                        refused += 1;
                    }
                    other => panic!("unexpected {other}: {body}"),
                }
            }
            (trust, taken, refused)
        }));
    }
    let mut taken_by: std::collections::HashMap<&str, i64> = Default::default();
    let mut refusals = 0;
    for client in clients {
        let (trust, taken, refused) = client.await.unwrap();
        *taken_by.entry(trust).or_default() += taken;
        refusals += refused;
    }
    assert!(refusals > 0, "the storm reached the cap");
    let mut total = 0;
    for trust in trusts {
        let held: i64 = app.with_connection(|conn| {
            use db::schema::allocations::dsl::*;
            use diesel::prelude::*;
            allocations
                .filter(entitlement_id.eq(line))
                .filter(organisation_code.eq(trust))
                .filter(status.eq("live"))
                .select(quantity)
                .load::<i64>(conn)
                .unwrap()
                .iter()
                .sum()
        });
        assert_eq!(held, taken_by[trust], "{trust}: what the 201s took is what it holds");
        assert!(held <= PER_ORGANISATION, "{trust} holds {held}, past its cap of {PER_ORGANISATION}");
        // 1 to 3 seats a claim: a trust refused at the cap is within 2 of it.
        assert!(held > PER_ORGANISATION - 3, "{trust} holds {held}: the cap was reached");
        total += held;
    }
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    assert_eq!(seats_allocated(&app, &admin, line).await, total, "the line's total is the sum held");
}

async fn coverage(app: &TestApp, token: &str, organisation: &str, sku: &str) -> Value {
    let (_, products) = status_and_json(app.get(&format!("/v1/products?q={sku}")).bearer_auth(token)).await;
    let product =
        products["items"].as_array().unwrap().iter().find(|p| p["sku"] == sku).unwrap()["id"].clone();
    let (status, answer) = status_and_json(
        app.get(&format!("/v1/coverage?organisation={organisation}&product={product}")).bearer_auth(token),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn nhsmail_service_lines_are_offered_to_that_service_only(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let practice = json!({"code": "Y77777", "name": "Example Practice", "kind": "gp_practice"});
    app.created(&admin, "/v1/organisations", &practice).await;
    // Nothing recorded: a trust takes the Enhanced Service, a practice the Standard, as NHS
    // England names them.
    let trust_e3 = coverage(&app, &admin, "RR8", "MS-M365-E3").await;
    assert_eq!(trust_e3["decision"], "nationally_licensed", "{trust_e3}");
    let trust_f3 = coverage(&app, &admin, "RR8", "MS-M365-F3").await;
    assert_ne!(trust_f3["decision"], "nationally_licensed", "{trust_f3}");
    let warning =
        trust_f3["warnings"].as_array().unwrap().iter().find(|w| w["code"] == "not_eligible").cloned();
    assert!(
        warning.as_ref().is_some_and(|w| w["message"].as_str().unwrap().contains("NHSmail Standard Service")),
        "{trust_f3}"
    );
    let practice_f3 = coverage(&app, &admin, "Y77777", "MS-M365-F3").await;
    assert_eq!(practice_f3["decision"], "nationally_licensed", "{practice_f3}");
    let practice_e3 = coverage(&app, &admin, "Y77777", "MS-M365-E3").await;
    assert_ne!(practice_e3["decision"], "nationally_licensed", "{practice_e3}");

    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (status, history) =
        status_and_json(app.get("/v1/organisations/RR8/nhsmail-service").bearer_auth(&officer)).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["service"], "enhanced");
    assert_eq!(history["basis"], "by_kind");

    // Bad histories are refused and change nothing.
    let path = "/v1/organisations/RR8/nhsmail-service";
    for (periods, why) in [
        (
            json!([{"service": "standard", "starts_on": "2024-01-01"}, {"service": "enhanced", "starts_on": "2025-01-01"}]),
            "overlapping",
        ),
        (json!([{"service": "standard", "starts_on": "2023-06-01"}]), "before the services began"),
        (
            json!([{"service": "standard", "starts_on": "2025-06-01", "ends_on": "2025-01-01"}]),
            "ends before it starts",
        ),
    ] {
        let (status, problem) = status_and_json(
            app.client.put(app.url(path)).bearer_auth(&officer).json(&json!({"periods": periods})),
        )
        .await;
        assert_eq!(status, 422, "{why}: {problem}");
    }
    let (status, _) = status_and_json(
        app.client
            .put(app.url(path))
            .bearer_auth(&officer)
            .json(&json!({"periods": [{"service": "gold", "starts_on": "2024-01-01"}]})),
    )
    .await;
    assert!(status == 400 || status == 422, "an unknown service is refused ({status})");
    assert_eq!(audit_events(&app, "nhsmail_service.replace"), 0, "nothing was recorded");

    // Another trust's officer may not record RR8's service; an auditor may not record any.
    let (_, rj1) = app.sign_in(Role::Officer, Some("RJ1")).await;
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    let standard_from_2026 = json!({"periods": [
        {"service": "enhanced", "starts_on": "2024-01-01", "ends_on": "2025-12-31"},
        {"service": "standard", "starts_on": "2026-01-01", "source": "NHSmail onboarding confirmation"}]});
    let (status, _) =
        status_and_json(app.client.put(app.url(path)).bearer_auth(&rj1).json(&standard_from_2026)).await;
    assert_eq!(status, 404);
    let (status, _) =
        status_and_json(app.client.put(app.url(path)).bearer_auth(&auditor).json(&standard_from_2026)).await;
    assert_eq!(status, 403);

    // RR8 records that it moved to the Standard Service: the Standard tier is offered, the
    // Enhanced tier is not, and a claim on it is refused naming the service.
    let (status, recorded) =
        status_and_json(app.client.put(app.url(path)).bearer_auth(&officer).json(&standard_from_2026)).await;
    assert_eq!(status, 200, "{recorded}");
    assert_eq!(recorded["service"], "standard");
    assert_eq!(recorded["basis"], "recorded");
    assert_eq!(recorded["periods"].as_array().unwrap().len(), 2);
    assert_eq!(audit_events(&app, "nhsmail_service.replace"), 1);
    let now_f3 = coverage(&app, &officer, "RR8", "MS-M365-F3").await;
    assert_eq!(now_f3["decision"], "nationally_licensed", "{now_f3}");
    let now_e3 = coverage(&app, &officer, "RR8", "MS-M365-E3").await;
    assert_ne!(now_e3["decision"], "nationally_licensed", "{now_e3}");
    let e3_line = trust_e3["licences"][0]["entitlement_id"].as_i64().unwrap();
    let (status, problem) = claim(&app, &officer, e3_line, "RR8", 1).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("NHSmail enhanced Service"), "{problem}");
    // Other trusts are untouched.
    let rj1_e3 = coverage(&app, &rj1, "RJ1", "MS-M365-E3").await;
    assert_eq!(rj1_e3["decision"], "nationally_licensed", "{rj1_e3}");
}

/// A succession hands the predecessor's pending requests to the successor (audited), which the
/// national team then approves for it; decided requests stay the predecessor's history.
async fn a_succession_hands_pending_requests_to_the_successor(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let line = restricted_line(&app, &admin, "MS-PBI-PRO", json!({"requires_approval": true})).await;
    let (_, rr8) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (status, pending) = claim(&app, &rr8, line, "RR8", 12).await;
    assert_eq!(status, 202, "{pending}");
    let (status, refused) = claim(&app, &rr8, line, "RR8", 3).await;
    assert_eq!(status, 202);
    let refuse = app
        .post(&format!("/v1/seat-requests/{}/refuse", refused["id"]))
        .bearer_auth(&admin)
        .json(&json!({"reason": "Not needed"}));
    assert_eq!(refuse.send().await.unwrap().status(), 200);

    let (status, succession) = status_and_json(
        app.post("/v1/organisations/RR8/succession").bearer_auth(&admin).json(&json!({"successor": "RJ1"})),
    )
    .await;
    assert_eq!(status, 200, "{succession}");
    assert_eq!(succession["moved_seat_requests"], 1);
    assert_eq!(audit_events(&app, "seat_request.transfer"), 1);
    let get = |id: &Value| app.get(&format!("/v1/seat-requests/{id}")).bearer_auth(&admin);
    assert_eq!(status_and_json(get(&pending["id"])).await.1["organisation_code"], "RJ1");
    assert_eq!(status_and_json(get(&refused["id"])).await.1["organisation_code"], "RR8", "decided: history");

    let (status, approved) = status_and_json(
        app.post(&format!("/v1/seat-requests/{}/approve", pending["id"])).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(seats_allocated(&app, &admin, line).await, 12, "the successor's seats");
}

on_both_engines!(
    a_succession_hands_pending_requests_to_the_successor,
    an_approval_claim_is_held_until_approved_and_a_refusal_takes_no_seats,
    the_per_organisation_cap_holds_under_a_concurrent_storm,
    nhsmail_service_lines_are_offered_to_that_service_only,
);
