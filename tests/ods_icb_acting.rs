//! An ICB acting for the organisations it commissions for (their `parent_code`, from ODS): its
//! officers answer coverage, claim seats and respond to advisories for them once the ICB has
//! granted it, each act audited with both the acting ICB and the organisation; never for an
//! organisation another ICB commissions for, and a trust's officers never for a sibling.

use catalogue_tests::{Role, TestApp, on_both_engines, status_and_json};
use serde_json::{Value, json};

const ICB: &str = include_str!("fixtures/ods/icb.csv");

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    status_and_json(app.get(path).bearer_auth(token)).await
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    status_and_json(app.post(path).bearer_auth(token).json(&body)).await
}

async fn grant(app: &TestApp, token: &str, code: &str, granted: bool) -> (u16, Value) {
    let path = format!("/v1/organisations/{code}/acting-grant");
    status_and_json(app.client.put(app.url(&path)).bearer_auth(token).json(&json!({"granted": granted})))
        .await
}

/// The newest audit event of `action`.
fn newest(app: &TestApp, action: &str) -> db::audit::AuditEvent {
    app.with_connection(|conn| {
        let filter = db::audit::AuditFilter { action: Some(action.into()), ..Default::default() };
        db::audit::events_after(conn, &filter, None, 500).unwrap().pop().unwrap()
    })
}

/// West Yorkshire ICB (QWO) commissions for Leeds (RR8, and Bradford, RAE); Guy's (RJ1) is
/// South East London's (QKK), as ODS's etr.csv says.
async fn an_icb_officer_acts_for_what_it_commissions_once_granted(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let import =
        app.post("/v1/ods/imports?kind=icb").bearer_auth(&admin).header("content-type", "text/csv").body(ICB);
    assert_eq!(import.send().await.unwrap().status(), 200, "QWO is an ICB in the catalogue");
    let (_, line) = app.license_nationally("MS-WIN10-ENT", None).await;
    let (_, entitlement) = get(&app, &admin, &format!("/v1/entitlements/{line}")).await;
    let product = entitlement["product_id"].as_i64().unwrap();
    let coverage = |code: &str| format!("/v1/coverage?organisation={code}&product={product}");
    let claim_path = format!("/v1/entitlements/{line}/allocations");
    let claim = |code: &str| json!({"organisation": code, "quantity": 2});
    let (_, icb_officer) = app.sign_in(Role::Officer, Some("QWO")).await;
    let (_, leeds_officer) = app.sign_in(Role::Officer, Some("RR8")).await;

    // Not granted: an ICB officer is an officer of the ICB only.
    assert_eq!(get(&app, &icb_officer, &coverage("RR8")).await.0, 404);
    assert_eq!(post(&app, &icb_officer, &claim_path, claim("RR8")).await.0, 404);
    assert_eq!(get(&app, &icb_officer, &coverage("QWO")).await.0, 200, "its own ICB, as ever");

    // Only an ICB grants, by its own officers (or an admin); not for another organisation.
    let (status, problem) = grant(&app, &leeds_officer, "RR8", true).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("RR8 is not an integrated care board"), "{problem}");
    assert_eq!(grant(&app, &icb_officer, "QKK", true).await.0, 404, "another ICB's grant is not its to give");
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    assert_eq!(grant(&app, &auditor, "QWO", true).await.0, 403);
    let (status, granted) = grant(&app, &icb_officer, "QWO", true).await;
    assert_eq!(status, 200, "{granted}");
    assert_eq!((granted["icb_code"].clone(), granted["granted"].clone()), (json!("QWO"), json!(true)));
    let event = newest(&app, "icb_grant.grant");
    assert_eq!(event.organisation_code.as_deref(), Some("QWO"));
    assert_eq!(event.acting_icb, None, "the ICB acting for itself is no acting for another");

    // Granted: coverage, claims and advisory responses for RR8, each audited as QWO acting.
    let (status, answer) = get(&app, &icb_officer, &coverage("RR8")).await;
    assert_eq!(status, 200, "{answer}");
    let (status, claimed) = post(&app, &icb_officer, &claim_path, claim("RR8")).await;
    assert_eq!(status, 201, "{claimed}");
    let event = newest(&app, "allocation.claim");
    assert_eq!(
        (event.organisation_code.as_deref(), event.acting_icb.as_deref()),
        (Some("RR8"), Some("QWO")),
        "ICB QWO acting for RR8"
    );
    let (status, audit) = get(&app, &auditor, "/v1/audit?action=allocation.claim").await;
    assert_eq!(status, 200);
    let listed = audit["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (listed["organisation_code"].clone(), listed["acting_icb"].clone()),
        (json!("RR8"), json!("QWO"))
    );
    let advisory = json!({"reference": "CC-2026-0190", "title": "ICB acting test", "severity": "high",
                          "published_at": chrono::Utc::now().to_rfc3339(), "remediation": "Patch",
                          "links": [], "affected_product_ids": [product]});
    let (status, advisory) = post(&app, &admin, "/v1/advisories", advisory).await;
    assert_eq!(status, 201, "{advisory}");
    let acknowledge =
        |code: &str| format!("/v1/organisations/{code}/advisories/{}/acknowledge", advisory["id"]);
    let (status, acknowledged) = post(&app, &icb_officer, &acknowledge("RR8"), json!(null)).await;
    assert_eq!(status, 200, "{acknowledged}");
    let event = newest(&app, "advisory.acknowledge");
    assert_eq!((event.organisation_code.as_deref(), event.acting_icb.as_deref()), (Some("RR8"), Some("QWO")));

    // Never for an organisation another ICB commissions for.
    assert_eq!(get(&app, &icb_officer, &coverage("RJ1")).await.0, 404);
    assert_eq!(post(&app, &icb_officer, &claim_path, claim("RJ1")).await.0, 404);
    assert_eq!(post(&app, &icb_officer, &acknowledge("RJ1"), json!(null)).await.0, 404);
    // And a trust's officer never for a sibling under the same ICB.
    assert_eq!(get(&app, &leeds_officer, &coverage("RAE")).await.0, 404);
    assert_eq!(post(&app, &leeds_officer, &claim_path, claim("RAE")).await.0, 404);

    // Revoked: at once.
    let (status, revoked) = grant(&app, &icb_officer, "QWO", false).await;
    assert_eq!((status, revoked["granted"].clone()), (200, json!(false)));
    assert_eq!(get(&app, &icb_officer, &coverage("RR8")).await.0, 404);
    assert_eq!(post(&app, &icb_officer, &claim_path, claim("RR8")).await.0, 404);
    assert_eq!(newest(&app, "icb_grant.revoke").organisation_code.as_deref(), Some("QWO"));
    // An admin may grant for the ICB too.
    assert_eq!(grant(&app, &admin, "QWO", true).await.0, 200);
    assert_eq!(get(&app, &icb_officer, &coverage("RR8")).await.0, 200);
}

on_both_engines!(an_icb_officer_acts_for_what_it_commissions_once_granted);
