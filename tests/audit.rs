//! The audit log: every write route adds exactly one event naming the actor and the entity when
//! it succeeds and none when it is refused; filtering, paging and export; and nothing can change
//! or delete an event.

use catalogue_tests::{Role, TestApp, TestUser, on_both_engines};
use serde_json::{Value, json};

/// Write operations that are not changes to the catalogue, and so have no audit event.
const NOT_AUDITED: &[(&str, &str)] = &[("create_token", "signing in changes nothing")];

struct Call {
    operation: &'static str,
    method: reqwest::Method,
    path: String,
    body: Value,
    if_match: Option<&'static str>,
}

fn call(operation: &'static str, method: &str, path: impl Into<String>, body: Value) -> Call {
    Call { operation, method: method.parse().unwrap(), path: path.into(), body, if_match: None }
}

impl Call {
    fn if_match(mut self, value: &'static str) -> Call {
        self.if_match = Some(value);
        self
    }
}

fn event_count(app: &TestApp) -> i64 {
    app.with_connection(|conn| db::audit::count(conn).unwrap())
}

fn newest_event(app: &TestApp) -> db::audit::AuditEvent {
    app.with_connection(|conn| {
        use db::schema::audit_events::dsl::*;
        use diesel::prelude::*;
        audit_events.order(id.desc()).select(db::audit::AuditEvent::as_select()).first(conn).unwrap()
    })
}

async fn send(app: &TestApp, token: &str, call: &Call) -> (u16, Value) {
    let mut request = app.client.request(call.method.clone(), app.url(&call.path)).bearer_auth(token);
    if !call.body.is_null() {
        request = request.json(&call.body);
    }
    if let Some(value) = call.if_match {
        request = request.header("if-match", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A refused call first (no event), then the successful one (exactly one event, by `actor`,
/// about `entity`). Returns the successful response body.
async fn audited(
    app: &TestApp,
    walked: &mut Vec<&'static str>,
    actor: (&TestUser, &str),
    entity: &str,
    refused: Call,
    success: Call,
) -> Value {
    assert_eq!(refused.operation, success.operation);
    let before = event_count(app);
    let (status, body) = send(app, actor.1, &refused).await;
    assert!(
        (400..500).contains(&status),
        "{}: the refused call answered {status}: {body}",
        refused.operation
    );
    assert_eq!(event_count(app), before, "{}: a refused call added an audit event", refused.operation);
    let (status, body) = send(app, actor.1, &success).await;
    assert!((200..300).contains(&status), "{}: {status} {body}", success.operation);
    assert_eq!(event_count(app), before + 1, "{}: one audit event per successful call", success.operation);
    let event = newest_event(app);
    assert_eq!(event.actor_user_id, Some(actor.0.id), "{}: the event names the actor", success.operation);
    assert_eq!(event.actor, actor.0.email);
    assert_eq!(event.entity, entity, "{}: the event names the entity", success.operation);
    assert!(!event.entity_id.is_empty());
    walked.push(success.operation);
    body
}

fn product_id_of(app: &TestApp, sku: &str) -> i64 {
    use db::schema::products;
    use diesel::prelude::*;
    app.with_connection(|conn| {
        products::table.filter(products::sku.eq(sku)).select(products::id).first(conn).unwrap()
    })
}

/// Syncs a copy of the shipped Windows document whose 22H2 paid updates end three years later:
/// held, for Windows 10 Enterprise and Pro. Gives back the two holds' ids.
fn hold_two_dates(app: &TestApp) -> Vec<i64> {
    let read = |product: &str| {
        std::fs::read_to_string(format!("{}/../seeds/endoflife/{product}.json", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    };
    let mut documents = Vec::new();
    for product in ["windows", "windows-server", "mssqlserver"] {
        let mut text = read(product);
        if product == "windows" {
            text = text.replace(r#""eoesFrom": "2028-10-10""#, r#""eoesFrom": "2031-10-14""#);
        }
        documents.push(db::lifecycle::Fetched {
            document: db::lifecycle::EolDocument::parse(product, &text).unwrap(),
            location: "test".into(),
            fetched_at: chrono::Utc::now(),
        });
    }
    let plan = db::lifecycle::sync(app.db(), &db::Actor::system("test"), &documents, false).unwrap();
    assert_eq!(plan.count("hold"), 2, "{:?}", plan.changes);
    app.db().read(|conn| db::lifecycle::holds(conn, false)).unwrap().iter().map(|h| h.id).collect()
}

async fn every_write_route_is_audited_exactly_once(app: TestApp) {
    let admin = app.sign_in(Role::Admin, None).await;
    let officer = app.sign_in(Role::Officer, Some("RR8")).await;
    let author = app.sign_in(Role::Exemplar, Some("RM3")).await;
    let auditor = app.sign_in(Role::Auditor, None).await;
    let (a, o, e) =
        ((&admin.0, admin.1.as_str()), (&officer.0, officer.1.as_str()), (&author.0, author.1.as_str()));
    let mut walked = Vec::new();
    let w = &mut walked;

    let supplier = audited(
        &app,
        w,
        a,
        "supplier",
        call("create_supplier", "POST", "/v1/suppliers", json!({"name": ""})),
        call("create_supplier", "POST", "/v1/suppliers", json!({"name": "Walk Supplier Ltd"})),
    )
    .await;
    let product_body = json!({"supplier_id": supplier["id"], "name": "Walk Scanner", "sku": "WALK-1", "category": "walk-device",
                              "mainstream_support_ends_on": "2040-01-01", "mds2_supplied": true});
    let mut bad_product = product_body.clone();
    bad_product["category"] = json!("Not A Slug");
    let product = audited(
        &app,
        w,
        a,
        "product",
        call("create_product", "POST", "/v1/products", bad_product),
        call("create_product", "POST", "/v1/products", product_body),
    )
    .await;
    let product_path = format!("/v1/products/{}", product["id"]);
    audited(
        &app,
        w,
        a,
        "product",
        call("update_product", "PATCH", product_path.clone(), json!({"version": "2"})),
        call("update_product", "PATCH", product_path, json!({"version": "2"})).if_match("*"),
    )
    .await;
    audited(
        &app,
        w,
        a,
        "organisation",
        call(
            "create_organisation",
            "POST",
            "/v1/organisations",
            json!({"code": "RR8", "name": "Again", "kind": "trust"}),
        ),
        call(
            "create_organisation",
            "POST",
            "/v1/organisations",
            json!({"code": "W0K", "name": "Walk Trust", "kind": "trust"}),
        ),
    )
    .await;
    audited(
        &app,
        w,
        a,
        "organisation",
        call("update_organisation", "PATCH", "/v1/organisations/W0K", json!({"region": "London"}))
            .if_match("\"999\""),
        call("update_organisation", "PATCH", "/v1/organisations/W0K", json!({"region": "London"}))
            .if_match("*"),
    )
    .await;
    let agreement_body = json!({"supplier_id": supplier["id"], "reference": "WALK-AG", "title": "Walk agreement",
        "starts_on": "2020-01-01", "funding_model": "central", "status": "active", "eligible_kinds": ["trust"]});
    let mut bad_agreement = agreement_body.clone();
    bad_agreement["ends_on"] = json!("2019-01-01");
    let agreement = audited(
        &app,
        w,
        a,
        "agreement",
        call("create_agreement", "POST", "/v1/agreements", bad_agreement),
        call("create_agreement", "POST", "/v1/agreements", agreement_body),
    )
    .await;
    let agreement_path = format!("/v1/agreements/{}", agreement["id"]);
    audited(
        &app,
        w,
        a,
        "agreement",
        call("update_agreement", "PATCH", agreement_path.clone(), json!({"status": "draft"})).if_match("*"),
        call(
            "update_agreement",
            "PATCH",
            agreement_path.clone(),
            json!({"title": "Walk agreement, renamed"}),
        )
        .if_match("*"),
    )
    .await;
    let line_body = json!({"product_id": product["id"], "tier": "national_provision", "metric": "per_device", "seat_cap": 10,
                           "eligible_kinds": ["trust"], "starts_on": "2020-01-01"});
    let mut bad_line = line_body.clone();
    bad_line["tier"] = json!("platinum");
    let line = audited(
        &app,
        w,
        a,
        "entitlement",
        call("create_entitlement", "POST", format!("{agreement_path}/entitlements"), bad_line),
        call("create_entitlement", "POST", format!("{agreement_path}/entitlements"), line_body),
    )
    .await;
    let line_path = format!("/v1/entitlements/{}", line["id"]);
    audited(
        &app,
        w,
        a,
        "entitlement",
        call("update_entitlement", "PATCH", line_path.clone(), json!({"seat_cap": -1})).if_match("*"),
        call("update_entitlement", "PATCH", line_path.clone(), json!({"seat_cap": 20})).if_match("*"),
    )
    .await;
    let allocation = audited(
        &app,
        w,
        o,
        "allocation",
        call(
            "claim_seats",
            "POST",
            format!("{line_path}/allocations"),
            json!({"organisation": "RR8", "quantity": 0}),
        ),
        call(
            "claim_seats",
            "POST",
            format!("{line_path}/allocations"),
            json!({"organisation": "RR8", "quantity": 3}),
        ),
    )
    .await;
    let release_path = format!("/v1/allocations/{}/release", allocation["id"]);
    audited(
        &app,
        w,
        o,
        "allocation",
        call("release_seats", "POST", release_path.clone(), json!({"quantity": 99})),
        call("release_seats", "POST", release_path, json!({"quantity": 1})),
    )
    .await;
    audited(
        &app,
        w,
        a,
        "allocation",
        call("claim_seats_bulk", "POST", format!("{line_path}/allocations/bulk"), json!({"claims": []})),
        call(
            "claim_seats_bulk",
            "POST",
            format!("{line_path}/allocations/bulk"),
            json!({"claims": [{"organisation": "RJ1", "quantity": 1}]}),
        ),
    )
    .await;

    let advisory_body = json!({"reference": "CC-WALK-1", "title": "Walk advisory", "severity": "high",
        "published_at": "2026-01-01T00:00:00Z", "remediation": "Patch", "affected_product_ids": [product["id"]]});
    let mut bad_advisory = advisory_body.clone();
    bad_advisory["affected_product_ids"] = json!([]);
    let advisory = audited(
        &app,
        w,
        a,
        "advisory",
        call("create_advisory", "POST", "/v1/advisories", bad_advisory),
        call("create_advisory", "POST", "/v1/advisories", advisory_body),
    )
    .await;
    let advisory_path = format!("/v1/advisories/{}", advisory["id"]);
    audited(
        &app,
        w,
        a,
        "advisory",
        call("update_advisory", "PATCH", advisory_path.clone(), json!({"title": "Walk advisory, revised"})),
        call("update_advisory", "PATCH", advisory_path, json!({"title": "Walk advisory, revised"}))
            .if_match("*"),
    )
    .await;
    let response_path = format!("/v1/organisations/RR8/advisories/{}", advisory["id"]);
    let elsewhere = format!("/v1/organisations/RJ1/advisories/{}", advisory["id"]);
    audited(
        &app,
        w,
        o,
        "advisory_response",
        call("acknowledge_advisory", "POST", format!("{elsewhere}/acknowledge"), Value::Null),
        call("acknowledge_advisory", "POST", format!("{response_path}/acknowledge"), Value::Null),
    )
    .await;
    audited(
        &app,
        w,
        o,
        "advisory_response",
        call(
            "set_advisory_applicability",
            "POST",
            format!("{response_path}/applicability"),
            json!({"applicable": "yes"}),
        ),
        call(
            "set_advisory_applicability",
            "POST",
            format!("{response_path}/applicability"),
            json!({"applicable": true}),
        ),
    )
    .await;
    audited(
        &app,
        w,
        o,
        "advisory_response",
        call("close_advisory", "POST", format!("{response_path}/close"), json!({"remediation_note": ""})),
        call(
            "close_advisory",
            "POST",
            format!("{response_path}/close"),
            json!({"remediation_note": "Patched"}),
        ),
    )
    .await;
    let acceptance =
        json!({"product_id": product["id"], "compensating_controls": "Isolated", "expires_on": "2099-01-01"});
    let mut expired = acceptance.clone();
    expired["expires_on"] = json!("2000-01-01");
    audited(
        &app,
        w,
        o,
        "risk_acceptance",
        call("create_risk_acceptance", "POST", "/v1/organisations/RR8/risk-acceptances", expired),
        call("create_risk_acceptance", "POST", "/v1/organisations/RR8/risk-acceptances", acceptance),
    )
    .await;

    let requirements = json!([{"code": "W-01", "text": "An MDS2 form MUST be supplied.", "level": "MUST", "criterion": {"kind": "mds2_supplied"}}]);
    let standard = audited(&app, w, e, "standard",
        call("create_standard", "POST", "/v1/standards", json!({"publisher": "RGT", "category": "walk-device", "title": "Walk", "requirements": requirements})),
        call("create_standard", "POST", "/v1/standards", json!({"publisher": "RM3", "category": "walk-device", "title": "Walk", "requirements": requirements}))).await;
    let standard_path = format!("/v1/standards/{}", standard["id"]);
    audited(
        &app,
        w,
        e,
        "standard_version",
        call(
            "update_standard_version",
            "PATCH",
            format!("{standard_path}/versions/1"),
            json!({"summary": "v1"}),
        )
        .if_match("\"999\""),
        call(
            "update_standard_version",
            "PATCH",
            format!("{standard_path}/versions/1"),
            json!({"summary": "v1"}),
        )
        .if_match("*"),
    )
    .await;
    audited(
        &app,
        w,
        e,
        "standard_version",
        call("publish_standard_version", "POST", format!("{standard_path}/versions/9/publish"), Value::Null),
        call("publish_standard_version", "POST", format!("{standard_path}/versions/1/publish"), Value::Null),
    )
    .await;
    audited(
        &app,
        w,
        e,
        "assessment",
        call(
            "create_assessment",
            "POST",
            format!("{standard_path}/versions/1/assessments"),
            json!({"product_id": product["id"], "outcomes": []}),
        ),
        call(
            "create_assessment",
            "POST",
            format!("{standard_path}/versions/1/assessments"),
            json!({"product_id": product["id"], "outcomes": [{"requirement": "W-01", "met": true}]}),
        ),
    )
    .await;
    audited(
        &app,
        w,
        e,
        "standard_version",
        call("create_standard_version", "POST", "/v1/standards/999999/versions", Value::Null),
        call("create_standard_version", "POST", format!("{standard_path}/versions"), Value::Null),
    )
    .await;
    audited(
        &app,
        w,
        e,
        "standard_version",
        call(
            "withdraw_standard_version",
            "POST",
            format!("{standard_path}/versions/9/withdraw"),
            Value::Null,
        ),
        call(
            "withdraw_standard_version",
            "POST",
            format!("{standard_path}/versions/2/withdraw"),
            Value::Null,
        ),
    )
    .await;
    let today = chrono::Utc::now().date_naive().to_string();
    let purchase = |version: i64| {
        json!({"product_id": product["id"], "category": "walk-device", "standard_id": standard["id"],
        "version": version, "purchased_on": today, "quantity": 1, "unit_cost_pence": 10, "order_reference": "PO-W",
        "declarations": [{"requirement": "W-01", "met": true}]})
    };
    audited(
        &app,
        w,
        o,
        "purchase",
        call("create_purchase", "POST", "/v1/organisations/RR8/purchases", purchase(9)),
        call("create_purchase", "POST", "/v1/organisations/RR8/purchases", purchase(1)),
    )
    .await;
    audited(
        &app,
        w,
        a,
        "organisation",
        call("record_succession", "POST", "/v1/organisations/W0K/succession", json!({"successor": "NOPE9"})),
        call("record_succession", "POST", "/v1/organisations/W0K/succession", json!({"successor": "RR8"})),
    )
    .await;

    let user_body = json!({"email": "walk@nhs.uk", "display_name": "Walk", "role": "auditor", "password": "a long enough password"});
    let user = audited(
        &app,
        w,
        a,
        "user",
        call(
            "create_user",
            "POST",
            "/v1/users",
            json!({"email": "walk@nhs.uk", "display_name": "Walk", "role": "auditor", "password": "short"}),
        ),
        call("create_user", "POST", "/v1/users", user_body),
    )
    .await;
    let user_path = format!("/v1/users/{}", user["id"]);
    audited(
        &app,
        w,
        a,
        "user",
        call("update_user", "PATCH", user_path.clone(), json!({"display_name": "Walker"})),
        call("update_user", "PATCH", user_path, json!({"display_name": "Walker"})).if_match("*"),
    )
    .await;
    let changing = (&auditor.0, auditor.1.as_str());
    audited(&app, w, changing, "user",
        call("change_my_password", "POST", "/v1/me/password", json!({"current_password": "wrong", "new_password": "a brand new password"})),
        call("change_my_password", "POST", "/v1/me/password",
             json!({"current_password": catalogue_tests::TEST_PASSWORD, "new_password": "a brand new password"}))).await;

    // The lifecycle mapping, and dates held by a sync for an admin.
    let windows_10 = product_id_of(&app, "MS-WIN10-ENT");
    let sources_path = format!("/v1/products/{windows_10}/lifecycle-sources");
    audited(&app, w, a, "product",
        call("replace_lifecycle_sources", "PUT", sources_path.clone(),
             json!({"sources": [{"release_name": "22H2", "eol_product": "../windows", "eol_release": "10-22h2"}]})),
        call("replace_lifecycle_sources", "PUT", sources_path,
             json!({"sources": [{"release_name": "22H2", "eol_product": "windows", "eol_release": "10-22h2"}]}))).await;
    let holds = hold_two_dates(&app);
    audited(
        &app,
        w,
        a,
        "release",
        call("confirm_lifecycle_hold", "POST", "/v1/lifecycle/holds/999999/confirm", json!({})),
        call(
            "confirm_lifecycle_hold",
            "POST",
            format!("/v1/lifecycle/holds/{}/confirm", holds[0]),
            json!({}),
        ),
    )
    .await;
    audited(
        &app,
        w,
        a,
        "lifecycle_hold",
        call("reject_lifecycle_hold", "POST", format!("/v1/lifecycle/holds/{}/reject", holds[0]), json!({})),
        call("reject_lifecycle_hold", "POST", format!("/v1/lifecycle/holds/{}/reject", holds[1]), json!({})),
    )
    .await;
    // An ODS import writes an event for each organisation it changes and one for the import
    // itself: a file whose one change is a new name for RR8 adds two. A file it cannot read adds
    // none.
    let leeds = include_str!("../seeds/ods/etr.csv").lines().find(|l| l.starts_with("\"RR8\",")).unwrap();
    let renamed =
        leeds.replace("LEEDS TEACHING HOSPITALS NHS TRUST", "LEEDS TEACHING HOSPITALS NHS FT") + "\r\n";
    let before = event_count(&app);
    for (body, status, added) in [(leeds.replace("\"RR8\"", "\"R R8\""), 422, 0), (renamed, 200, 2)] {
        let request =
            app.post("/v1/ods/imports").bearer_auth(a.1).header("content-type", "text/csv").body(body);
        assert_eq!(request.send().await.unwrap().status().as_u16(), status);
        assert_eq!(event_count(&app), before + added, "create_ods_import: events of a {status}");
    }
    let event = newest_event(&app);
    assert_eq!((event.actor_user_id, event.entity.as_str()), (Some(a.0.id), "ods_import"));
    w.push("create_ods_import");

    // An estate import by the organisation's officer: one event for the snapshot; a file with an
    // invalid row adds none. Then a mapping of a name by the national team.
    let before = event_count(&app);
    for (body, status, added) in
        [("product,devices\nMS-WIN10-ENT,many\n", 422, 0), ("product,devices\nMS-WIN10-ENT,12\n", 200, 1)]
    {
        let request = app
            .post("/v1/organisations/RR8/estate?source=catalogue")
            .bearer_auth(o.1)
            .header("content-type", "text/csv")
            .body(body);
        assert_eq!(request.send().await.unwrap().status().as_u16(), status);
        assert_eq!(event_count(&app), before + added, "import_estate: events of a {status}");
    }
    let event = newest_event(&app);
    assert_eq!((event.actor_user_id, event.entity.as_str()), (Some(o.0.id), "estate_snapshot"));
    w.push("import_estate");

    // Seat changes from a file: an event per claim and per allocation released; a dry run and a
    // file with a refused row add none.
    let line_id = line["id"].as_i64().unwrap();
    let before = event_count(&app);
    let good = format!("entitlement_id,change,quantity\n{line_id},claim,2\n{line_id},release,1\n");
    let refused = format!("entitlement_id,change,quantity\n{line_id},claim,2\n{line_id},claim,0\n");
    for (query, body, status, added) in
        [("?dry_run=true", good.clone(), 200, 0), ("", refused, 422, 0), ("", good, 200, 2)]
    {
        let request = app
            .post(&format!("/v1/organisations/RR8/seat-changes{query}"))
            .bearer_auth(o.1)
            .header("content-type", "text/csv")
            .body(body);
        assert_eq!(request.send().await.unwrap().status().as_u16(), status, "seat changes{query}");
        assert_eq!(event_count(&app), before + added, "apply_seat_changes: events of a {status}{query}");
    }
    let event = newest_event(&app);
    assert_eq!((event.actor_user_id, event.action.as_str()), (Some(o.0.id), "allocation.release"));
    w.push("apply_seat_changes");
    audited(
        &app,
        w,
        a,
        "software_mapping",
        call(
            "map_software_name",
            "POST",
            "/v1/estate/mappings",
            json!({"name": "chrome", "product_id": 999_999}),
        ),
        call(
            "map_software_name",
            "POST",
            "/v1/estate/mappings",
            json!({"vendor": "google", "name": "chrome", "product_id": product_id_of(&app, "MS-WIN10-ENT")}),
        ),
    )
    .await;

    // An organisation's NHSmail service, recorded by its officer.
    let services = "/v1/organisations/RR8/nhsmail-service";
    audited(
        &app,
        w,
        o,
        "nhsmail_service",
        call(
            "replace_nhsmail_service",
            "PUT",
            services,
            json!({"periods": [{"service": "standard", "starts_on": "2023-01-01"}]}),
        ),
        call(
            "replace_nhsmail_service",
            "PUT",
            services,
            json!({"periods": [{"service": "enhanced", "starts_on": "2024-01-01"}]}),
        ),
    )
    .await;

    // Seat requests on a line that requires approval: each claim is a request (one event each).
    let (_, approval_line) = app.license_nationally("MS-PBI-PRO", None).await;
    let restrict = app
        .patch_any_version(&format!("/v1/entitlements/{approval_line}"))
        .bearer_auth(a.1)
        .json(&json!({"requires_approval": true}));
    assert_eq!(restrict.send().await.unwrap().status(), 200);
    let mut requests = Vec::new();
    for _ in 0..3 {
        let before = event_count(&app);
        let response = app
            .post(&format!("/v1/entitlements/{approval_line}/allocations"))
            .bearer_auth(o.1)
            .json(&json!({"organisation": "RR8", "quantity": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        assert_eq!(event_count(&app), before + 1, "claim_seats on an approval line: one event");
        assert_eq!(newest_event(&app).entity, "seat_request");
        requests.push(response.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    audited(
        &app,
        w,
        a,
        "seat_request",
        call(
            "refuse_seat_request",
            "POST",
            format!("/v1/seat-requests/{}/refuse", requests[0]),
            json!({"reason": ""}),
        ),
        call(
            "refuse_seat_request",
            "POST",
            format!("/v1/seat-requests/{}/refuse", requests[0]),
            json!({"reason": "not funded"}),
        ),
    )
    .await;
    audited(
        &app,
        w,
        o,
        "seat_request",
        call(
            "withdraw_seat_request",
            "POST",
            format!("/v1/seat-requests/{}/withdraw", requests[0]),
            Value::Null,
        ),
        call(
            "withdraw_seat_request",
            "POST",
            format!("/v1/seat-requests/{}/withdraw", requests[1]),
            Value::Null,
        ),
    )
    .await;
    // An approval writes two events: the request's decision and the claim it makes.
    let before = event_count(&app);
    for (id, status, added) in [(requests[1], 409, 0), (requests[2], 200, 2)] {
        let response =
            app.post(&format!("/v1/seat-requests/{id}/approve")).bearer_auth(a.1).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(event_count(&app), before + added, "approve_seat_request: events of a {status}");
    }
    let actions: Vec<String> = app.with_connection(|conn| {
        use db::schema::audit_events::dsl::*;
        use diesel::prelude::*;
        audit_events.order(id.desc()).limit(2).select(action).load(conn).unwrap()
    });
    assert!(
        actions.contains(&"seat_request.approve".to_owned())
            && actions.contains(&"allocation.claim".to_owned()),
        "{actions:?}"
    );
    w.push("approve_seat_request");

    // An ICB lets its officers act for the organisations it commissions for (refused for a trust).
    let grant = |code: &str, granted: bool| {
        call(
            "set_icb_acting_grant",
            "PUT",
            format!("/v1/organisations/{code}/acting-grant"),
            json!({"granted": granted}),
        )
    };
    audited(&app, &mut walked, a, "icb_grant", grant("RR8", true), grant("QWE", true)).await;

    // Successions that ODS published, proposed (two, made up for the walk) for an admin. A
    // confirmation is the decision and the succession it runs: two events when no seats move. A
    // rejection is one.
    let proposals: Vec<db::ods::SuccessionRecord> = [("RLQ", "RR8"), ("RJ1", "RR8")]
        .iter()
        .map(|(predecessor, successor)| db::ods::SuccessionRecord {
            predecessor: (*predecessor).to_owned(),
            successor: (*successor).to_owned(),
            reason: Some("R".to_owned()),
            effective_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        })
        .collect();
    db::ods::apply_successions(app.db(), &db::Actor::system("test"), &proposals, &mut |_, _| {}).unwrap();
    let ids: Vec<i64> = app
        .db()
        .read(|conn| db::ods_successions::list(conn, None, &db::PageRequest::default()))
        .unwrap()
        .items
        .iter()
        .map(|s| s.id)
        .collect();
    let before = event_count(&app);
    let refused = app.post("/v1/ods/successions/999999/confirm").bearer_auth(a.1);
    assert_eq!(refused.send().await.unwrap().status().as_u16(), 404);
    assert_eq!(event_count(&app), before, "confirm_ods_succession: a refused call adds nothing");
    let confirmed = app.post(&format!("/v1/ods/successions/{}/confirm", ids[0])).bearer_auth(a.1);
    assert_eq!(confirmed.send().await.unwrap().status().as_u16(), 200);
    assert_eq!(event_count(&app), before + 2, "confirm_ods_succession: the decision and the succession");
    let decision = app.with_connection(|conn| {
        let filter =
            db::audit::AuditFilter { action: Some("ods_succession.confirm".into()), ..Default::default() };
        db::audit::events_after(conn, &filter, None, 10).unwrap()
    });
    assert_eq!((decision[0].actor_user_id, decision[0].entity.as_str()), (Some(a.0.id), "ods_succession"));
    walked.push("confirm_ods_succession");
    audited(
        &app,
        &mut walked,
        a,
        "ods_succession",
        call("reject_ods_succession", "POST", format!("/v1/ods/successions/{}/reject", ids[0]), json!({})),
        call("reject_ods_succession", "POST", format!("/v1/ods/successions/{}/reject", ids[1]), json!({})),
    )
    .await;

    // Subscriptions, their deliveries and the allowed webhook hosts.
    let hook = |url: &str| json!({"kinds": ["advisory.published"], "channel": "webhook", "webhook_url": url});
    audited(
        &app,
        &mut walked,
        a,
        "webhook_host",
        call("allow_webhook_host", "PUT", "/v1/webhook-hosts/not%20a%20host", Value::Null),
        call("allow_webhook_host", "PUT", "/v1/webhook-hosts/127.0.0.1", Value::Null),
    )
    .await;
    let created = audited(
        &app,
        &mut walked,
        o,
        "subscription",
        call("create_subscription", "POST", "/v1/subscriptions", hook("http://169.254.169.254/")),
        call("create_subscription", "POST", "/v1/subscriptions", hook("http://127.0.0.1:9/hook")),
    )
    .await;
    let subscription = created["subscription"]["id"].as_i64().unwrap();
    let advisory = json!({"reference": "CC-AUDIT-1", "title": "Audit walk", "severity": "low",
        "published_at": "2026-01-01T00:00:00Z", "remediation": "None.", "links": [],
        "affected_product_ids": [product_id_of(&app, "MS-WS2019-STD")]});
    assert_eq!(
        app.post("/v1/advisories").bearer_auth(a.1).json(&advisory).send().await.unwrap().status(),
        201
    );
    let retry = db::deliveries::RetryPolicy::default();
    db::deliveries::fan_out(app.db(), 100, &retry, |at| at).unwrap();
    let (_, deliveries) = send(
        &app,
        o.1,
        &call("list_deliveries", "GET", format!("/v1/subscriptions/{subscription}/deliveries"), Value::Null),
    )
    .await;
    let delivery = deliveries["items"][0]["id"].as_i64().unwrap();
    audited(
        &app,
        &mut walked,
        o,
        "delivery",
        call("redeliver", "POST", "/v1/deliveries/999999999/redeliver", Value::Null),
        call("redeliver", "POST", format!("/v1/deliveries/{delivery}/redeliver"), Value::Null),
    )
    .await;
    audited(
        &app,
        &mut walked,
        o,
        "subscription",
        call("delete_subscription", "DELETE", "/v1/subscriptions/999999999", Value::Null),
        call("delete_subscription", "DELETE", format!("/v1/subscriptions/{subscription}"), Value::Null),
    )
    .await;
    audited(
        &app,
        &mut walked,
        a,
        "webhook_host",
        call("forbid_webhook_host", "DELETE", "/v1/webhook-hosts/example.org", Value::Null),
        call("forbid_webhook_host", "DELETE", "/v1/webhook-hosts/127.0.0.1", Value::Null),
    )
    .await;

    // Every write operation of the document was walked, or is listed as not audited with a reason.
    let document = serde_json::to_value(api::app::openapi_document()).unwrap();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if method == "get" {
                continue;
            }
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                walked.contains(&id) || NOT_AUDITED.iter().any(|(skipped, _)| *skipped == id),
                "{} {path} ({id}) is a write route that this walk does not cover",
                method.to_uppercase()
            );
        }
    }
}

async fn the_audit_log_filters_pages_and_exports(app: TestApp) {
    let (admin_user, admin) = app.sign_in(Role::Admin, None).await;
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    for name in ["Audit One", "Audit Two", "Audit Three"] {
        let body = json!({"name": name});
        assert_eq!(
            app.post("/v1/suppliers").bearer_auth(&admin).json(&body).send().await.unwrap().status(),
            201
        );
    }
    let get = |path: String, token: String| {
        let request = app.get(&path).bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            response.json::<Value>().await.unwrap()
        }
    };
    let mine =
        get(format!("/v1/audit?actor={}&action=supplier.create", admin_user.id), auditor.clone()).await;
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|e| e["entity"] == "supplier" && e["actor"] == admin_user.email.as_str()));
    let ids: Vec<i64> = items.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");

    let first = get("/v1/audit?entity=supplier&limit=2".to_owned(), auditor.clone()).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = get(format!("/v1/audit?entity=supplier&limit=2&cursor={cursor}"), auditor.clone()).await;
    assert_eq!(first["items"].as_array().unwrap().len() + second["items"].as_array().unwrap().len(), 3);
    assert!(second["next_cursor"].is_null());

    // An audit event's id that is no supplier's id finds no supplier's event.
    let not_a_supplier =
        ids.iter().find(|id| !items.iter().any(|e| e["entity_id"] == id.to_string())).unwrap();
    let one = get(format!("/v1/audit?entity=supplier&entity_id={not_a_supplier}"), admin.clone()).await;
    assert!(one["items"].as_array().unwrap().is_empty(), "supplier ids are not audit ids");
    let entity_id = items[1]["entity_id"].as_str().unwrap().to_owned();
    let one = get(format!("/v1/audit?entity=supplier&entity_id={entity_id}"), admin.clone()).await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    let future = get("/v1/audit?from=2099-01-01T00:00:00Z".to_owned(), admin.clone()).await;
    assert!(future["items"].as_array().unwrap().is_empty());
    let past = get("/v1/audit?to=2000-01-01T00:00:00Z".to_owned(), admin.clone()).await;
    assert!(past["items"].as_array().unwrap().is_empty());
    let seed = get("/v1/audit?action=seed.load".to_owned(), admin.clone()).await;
    assert_eq!(seed["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("/v1/audit?from=yesterday").bearer_auth(&admin).send().await.unwrap().status(), 400);
    assert_eq!(app.get("/v1/audit").bearer_auth(&officer).send().await.unwrap().status(), 403);

    let csv = app.get("/v1/audit/export?entity=supplier").bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("id,occurred_at,actor_user_id,actor,action,entity,entity_id"));
    assert_eq!(lines.len(), 4, "a header and three events");
    let jsonl = app
        .get("/v1/audit/export?format=jsonl&action=supplier.create")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<Value> = jsonl.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["id"], ids[0]);
    let empty = app
        .get("/v1/audit/export?entity=nothing")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(empty.lines().count(), 1, "just the header");
    assert_eq!(
        app.get("/v1/audit/export?format=xml").bearer_auth(&admin).send().await.unwrap().status(),
        400
    );
}

async fn no_route_changes_or_deletes_an_event(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let method: reqwest::Method = method.parse().unwrap();
        let response = app
            .client
            .request(method.clone(), app.url("/v1/audit"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} /v1/audit");
        assert_eq!(response.headers()["allow"], "GET");
        let one = app
            .client
            .request(method.clone(), app.url("/v1/audit/1"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(one.status(), 404, "{method} /v1/audit/1: no such route");
    }
    let document = serde_json::to_value(api::app::openapi_document()).unwrap();
    for (path, item) in document["paths"].as_object().unwrap() {
        if path.starts_with("/v1/audit") {
            assert_eq!(
                item.as_object().unwrap().keys().collect::<Vec<_>>(),
                vec!["get"],
                "{path} only reads"
            );
        }
    }
}

/// The security test's finding: cells starting with `=` were written as they were, so a
/// spreadsheet opening the export ran them as formulas.
async fn the_csv_export_never_writes_a_formula(app: TestApp) {
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    let dangerous =
        ["=HYPERLINK(\"http://attacker.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"];
    app.with_connection(|conn| {
        use db::schema::audit_events::dsl::*;
        use diesel::prelude::*;
        for (index, text) in dangerous.iter().enumerate() {
            diesel::insert_into(audit_events)
                .values((
                    occurred_at.eq(chrono::Utc::now().naive_utc()),
                    actor.eq(*text),
                    action.eq("formula.test"),
                    entity.eq("formula"),
                    entity_id.eq(*text),
                    before_state.eq(Some(*text)),
                    request_id.eq(Some(format!("r{index}"))),
                ))
                .execute(conn)
                .unwrap();
        }
    });
    let csv = app.get("/v1/audit/export?entity=formula").bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    for text in dangerous {
        // Each dangerous text appears only behind an apostrophe (quoted or not, as CSV needs).
        let quoted = format!("\"'{}\"", text.replace('"', "\"\""));
        let plain = format!("'{text}");
        let neutralised = csv.matches(&quoted).count() + csv.matches(&plain).count();
        assert!(neutralised >= 3, "{text:?} three times behind an apostrophe in {csv}");
        assert!(!csv.contains(&format!(",{text}")), "{text:?} bare in {csv}");
    }
    // Numbers are left alone.
    assert!(csv.lines().nth(1).unwrap().split(',').next().unwrap().parse::<i64>().is_ok());
}

on_both_engines!(
    the_csv_export_never_writes_a_formula,
    every_write_route_is_audited_exactly_once,
    the_audit_log_filters_pages_and_exports,
    no_route_changes_or_deletes_an_event,
);
