//! Seat changes from a CSV file (issue 18): an organisation claims and gives back seats on many
//! lines at once; the dry run goes through the ledger's rules and writes nothing; a file with a
//! refused row applies nothing and names the line; another organisation's seats are refused.

use catalogue_tests::{Role, TestApp, on_both_engines, status_and_json};
use serde_json::{Value, json};

async fn send(app: &TestApp, token: &str, code: &str, query: &str, file: &str) -> (u16, Value) {
    status_and_json(
        app.post(&format!("/v1/organisations/{code}/seat-changes{query}"))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(file.to_owned()),
    )
    .await
}

/// Seats allocated on a line, as the line says, and the organisation's live seats on it.
async fn seats(app: &TestApp, token: &str, line: i64, code: &str) -> (i64, i64) {
    let (_, entitlement) =
        status_and_json(app.get(&format!("/v1/entitlements/{line}")).bearer_auth(token)).await;
    let (_, held) =
        status_and_json(app.get(&format!("/v1/organisations/{code}/allocations")).bearer_auth(token)).await;
    let mine = held["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["entitlement_id"] == line)
        .map(|a| a["quantity"].as_i64().unwrap())
        .sum();
    (entitlement["seats_allocated"].as_i64().unwrap(), mine)
}

async fn a_file_claims_and_releases_on_many_lines(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (_, windows) = app.license_nationally("MS-WIN11-ENT", None).await;
    let (_, office) = app.license_nationally("MS-M365-E3", None).await;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let cap = app
        .patch_any_version(&format!("/v1/entitlements/{office}"))
        .bearer_auth(&admin)
        .json(&json!({"seat_cap": 50}));
    assert_eq!(cap.send().await.unwrap().status(), 200);
    let first = format!(
        "entitlement_id,change,quantity,reference\n{windows},claim,30,PO-1\n{office},claim,20,PO-2\n"
    );
    let (status, applied) = send(&app, &officer, "RR8", "", &first).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!((applied["applied"].as_bool(), applied["seats_claimed"].as_i64()), (Some(true), Some(50)));
    assert_eq!(applied["rows"][1]["seats_remaining"], 30, "{applied}");

    // A dry run of claims and releases: every row's outcome, the same rules, nothing written.
    let file = format!(
        "Change,Entitlement_ID,Quantity\nrelease,{windows},25\nclaim,{office},10\nrelease,{office},5\n"
    );
    let audit_before = app.with_connection(|conn| db::audit::count(conn).unwrap());
    let (status, rehearsed) = send(&app, &officer, "RR8", "?dry_run=true", &file).await;
    assert_eq!(status, 200, "{rehearsed}");
    let outcomes: Vec<&str> =
        rehearsed["rows"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["released", "claimed", "released"]);
    assert_eq!((rehearsed["dry_run"].as_bool(), rehearsed["applied"].as_bool()), (Some(true), Some(false)));
    assert_eq!(rehearsed["rows"][1]["seats_remaining"], 20, "as it would be after the row: {rehearsed}");
    assert_eq!(seats(&app, &officer, windows, "RR8").await, (30, 30), "the dry run wrote nothing");
    assert_eq!(seats(&app, &officer, office, "RR8").await, (20, 20));
    assert_eq!(app.with_connection(|conn| db::audit::count(conn).unwrap()), audit_before);

    // The same file, applied.
    let (status, applied) = send(&app, &officer, "RR8", "", &file).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!((applied["seats_claimed"].as_i64(), applied["seats_released"].as_i64()), (Some(10), Some(30)));
    assert_eq!(seats(&app, &officer, windows, "RR8").await, (5, 5));
    assert_eq!(seats(&app, &officer, office, "RR8").await, (25, 25));

    // Rows the ledger refuses (past the cap, more than held, no such line, a bad quantity): the
    // dry run names each; the real run applies none of the file, good rows included.
    let refused = format!(
        "entitlement_id,change,quantity\n{windows},claim,1\n{office},claim,26\n{windows},release,7\n999999,claim,1\n{office},claim,0\n"
    );
    let (status, rehearsed) = send(&app, &officer, "RR8", "?dry_run=true", &refused).await;
    assert_eq!(status, 200, "{rehearsed}");
    assert_eq!(rehearsed["rows_refused"], 4, "{rehearsed}");
    let reasons: Vec<String> = rehearsed["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(reasons[0], "", "the good row would pass: {rehearsed}");
    assert!(reasons[1].contains("seats remain"), "{}", reasons[1]);
    assert!(reasons[2].contains("fewer than the 7"), "{}", reasons[2]);
    assert!(reasons[3].contains("not found"), "{}", reasons[3]);
    assert!(reasons[4].contains("quantity"), "{}", reasons[4]);
    let (status, problem) = send(&app, &officer, "RR8", "", &refused).await;
    assert_eq!(status, 422, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("4 of 5 rows refused, so none was applied") && detail.contains("line 3:"),
        "{detail}"
    );
    assert_eq!(seats(&app, &officer, windows, "RR8").await, (5, 5), "the good row was not applied either");
}
on_both_engines!(a_file_claims_and_releases_on_many_lines);

async fn seat_changes_are_refused_beyond_the_callers_organisation(app: TestApp) {
    let (_, windows) = app.license_nationally("MS-WIN11-ENT", None).await;
    let file = format!("entitlement_id,change,quantity\n{windows},claim,1\n");
    let (_, officer) = app.sign_in(Role::Officer, Some("RJ1")).await;
    assert_eq!(send(&app, &officer, "RR8", "?dry_run=true", &file).await.0, 404, "another trust's seats");
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    assert_eq!(send(&app, &auditor, "RR8", "?dry_run=true", &file).await.0, 403);
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    assert_eq!(send(&app, &admin, "RR8", "", &file).await.0, 200, "the national team for any organisation");
    let (status, problem) = send(&app, &officer, "RJ1", "", "line,qty\n1,2\n").await;
    assert_eq!(status, 422);
    assert!(problem["detail"].as_str().unwrap().starts_with("the header must name"), "{problem}");
    let restricted = app.patch_any_version(&format!("/v1/entitlements/{windows}")).bearer_auth(&admin);
    assert_eq!(restricted.json(&json!({"requires_approval": true})).send().await.unwrap().status(), 200);
    let (status, rehearsed) = send(&app, &officer, "RJ1", "?dry_run=true", &file).await;
    assert_eq!(status, 200);
    assert!(rehearsed["rows"][0]["reason"].as_str().unwrap().contains("requires approval"), "{rehearsed}");
}
on_both_engines!(seat_changes_are_refused_beyond_the_callers_organisation);
