//! The ODS files beside the trusts' (`etr`): GP practices (`epraccur`), integrated care boards
//! (`icb`), sub-ICB locations (`subicb`, ODS's `eccg.csv`) and successors (`succ`), from the
//! samples in tests/fixtures/ods/ (their README says which layout each follows and what in them
//! is real). Successions from `succ` are proposed, then confirmed (moving allocations) or
//! rejected by an admin; a closed organisation with no successor is listed, never deleted.

use catalogue_tests::{Role, TestApp, TestDatabase, on_both_databases, on_both_engines, status_and_json};
use chrono::NaiveDate;
use db::ods::{self, OdsFile, OdsFileKind};
use db::vocabulary::OrganisationKind;
use serde_json::{Value, json};

const ETR: &str = include_str!("../seeds/ods/etr.csv");
const ICB: &str = include_str!("fixtures/ods/icb.csv");
const SUBICB: &str = include_str!("fixtures/ods/eccg.csv");
const EPRACCUR: &str = include_str!("fixtures/ods/epraccur.csv");
const SUCC: &str = include_str!("fixtures/ods/succ.csv");

fn read(kind: OdsFileKind, text: &str) -> OdsFile {
    ods::read(kind, text.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", kind.as_str()))
}

fn import(db: &TestDatabase, kind: OdsFileKind, text: &str) -> ods::ImportPlan {
    let file = read(kind, text);
    ods::apply_file(&db.db, &db::Actor::system("test"), &file, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("import {}: {e}", kind.as_str()))
}

fn dry_run(db: &TestDatabase, kind: OdsFileKind, text: &str) -> ods::ImportPlan {
    let file = read(kind, text);
    db.db.read(|conn| ods::plan_file(conn, &file)).unwrap()
}

fn organisation(db: &TestDatabase, code: &str) -> db::organisations::Organisation {
    db.db.read(|conn| db::organisations::get(conn, code)).unwrap()
}

/// (code, revision, closed_on, successor_code) of every organisation.
type Row = (String, i64, Option<NaiveDate>, Option<String>);

fn snapshot(db: &TestDatabase) -> Vec<Row> {
    use db::schema::organisations as o;
    use diesel::prelude::*;
    db.db
        .read(|conn| {
            Ok(o::table
                .select((o::code, o::revision, o::closed_on, o::successor_code))
                .order(o::code)
                .load(conn)?)
        })
        .unwrap()
}

fn codes(plan_items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut codes: Vec<String> = plan_items.into_iter().collect();
    codes.sort();
    codes
}

#[test]
fn the_samples_parse_in_their_layouts() {
    let OdsFile::Organisations(_, icbs) = read(OdsFileKind::Icb, ICB) else { panic!("icb") };
    assert_eq!(icbs.len(), 4);
    assert!(icbs.iter().all(|r| r.kind == OrganisationKind::Icb && r.parent_code.is_none()));
    let west_yorkshire = icbs.iter().find(|r| r.code == "QWO").unwrap();
    assert_eq!(west_yorkshire.region_code.as_deref(), Some("Y63"));

    let OdsFile::Organisations(_, locations) = read(OdsFileKind::Subicb, SUBICB) else { panic!("subicb") };
    assert!(locations.iter().all(|r| r.kind == OrganisationKind::Other), "sub-ICB locations are not ICBs");
    let leeds = locations.iter().find(|r| r.code == "15F").unwrap();
    assert_eq!(leeds.parent_code.as_deref(), Some("QWO"));
    let lambeth = locations.iter().find(|r| r.code == "08K").unwrap();
    assert_eq!(lambeth.closed_on, NaiveDate::from_ymd_opt(2020, 3, 31));

    let OdsFile::Organisations(_, practices) = read(OdsFileKind::Epraccur, EPRACCUR) else {
        panic!("epraccur")
    };
    assert_eq!(practices.len(), 5);
    let kind_of = |code: &str| practices.iter().find(|r| r.code == code).unwrap().kind;
    assert_eq!(kind_of("B86001"), OrganisationKind::GpPractice);
    assert_eq!(kind_of("Y02001"), OrganisationKind::Other, "a walk-in centre (prescribing setting 1)");
    let closed = practices.iter().find(|r| r.code == "B86002").unwrap();
    assert_eq!(closed.closed_on, NaiveDate::from_ymd_opt(2025, 3, 31));
    assert_eq!(closed.parent_code.as_deref(), Some("QWO"), "the ICB, not the sub-ICB location");
    assert_eq!(closed.postcode.as_deref(), Some("LS2 2AA"));

    let OdsFile::Successions(successions) = read(OdsFileKind::Succ, SUCC) else { panic!("succ") };
    assert_eq!(successions.len(), 5);
    assert_eq!((successions[0].predecessor.as_str(), successions[0].successor.as_str()), ("RVJ", "RA7"));
    assert_eq!(successions[0].effective_on, NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());
    assert_eq!(successions[0].reason.as_deref(), Some("R"));
}

#[test]
fn bad_files_of_the_new_kinds_are_refused_naming_the_line() {
    let cases: [(OdsFileKind, &str, &str); 7] = [
        (
            OdsFileKind::Succ,
            "\"RVJ\",\"RA7\",\"R\",\"20260701\"\r\n",
            "line 1: 4 fields where the ODS succ layout has 5",
        ),
        (OdsFileKind::Succ, "\"RVJ\",\"RVJ\",\"R\",\"20260701\",\"\"\r\n", "line 1: RVJ succeeds itself"),
        (
            OdsFileKind::Succ,
            "\"RVJ\",\"RA7\",\"R\",\"2026-07-01\",\"\"\r\n",
            "effective date \"2026-07-01\" is not a date",
        ),
        (OdsFileKind::Succ, "\"RVJ\",\"RA7\",\"R\",\"\",\"\"\r\n", "RVJ -> RA7 has no effective date"),
        (
            OdsFileKind::Succ,
            "\"RVJ\",\"RA7\",\"R\",\"20260701\",\"\"\r\n\"RVJ\",\"RA7\",\"R\",\"20260701\",\"\"\r\n",
            "line 2: RVJ -> RA7 is listed twice",
        ),
        (OdsFileKind::Epraccur, SUCC, "line 1: 5 fields where the ODS epraccur layout has 27"),
        (OdsFileKind::Icb, "", "holds no records"),
    ];
    for (kind, text, expected) in cases {
        match ods::read(kind, text.as_bytes()) {
            Err(db::DbError::Invalid(detail)) => assert!(detail.contains(expected), "{expected}: {detail}"),
            other => panic!("{expected}: {other:?}"),
        }
    }
    // A successor file is not a file of organisations.
    assert!(matches!(ods::parse(OdsFileKind::Succ, SUCC.as_bytes()), Err(db::DbError::Invalid(_))));
}

/// ICBs, sub-ICB locations and GP practices import like trusts: added with their kind, parent
/// and region; a repeat changes nothing; a later file renames, re-parents and closes.
fn every_organisation_kind_imports(db: TestDatabase) {
    // The embedded default keeps three ICBs by hand: QWE, which the file lists (ODS takes the
    // record over, keeping the hand-checked name), and QOP and QHL, which the sample leaves out.
    let icbs = import(&db, OdsFileKind::Icb, ICB);
    assert_eq!(codes(icbs.added.iter().map(|a| a.code.clone())), ["QKK", "QUY", "QWO"]);
    assert_eq!(icbs.updated.iter().map(|u| u.code.as_str()).collect::<Vec<_>>(), ["QWE"]);
    assert!(icbs.renamed.is_empty(), "a case-only difference keeps the hand-checked name");
    assert_eq!(icbs.unknown_to_ods, ["QHL", "QOP"], "hand-kept ICBs the file does not list: reported");
    assert!(!organisation(&db, "QOP").closed, "and kept");
    assert_eq!(organisation(&db, "QWE").ods_file.as_deref(), Some("icb"));
    let west_yorkshire = organisation(&db, "QWO");
    assert_eq!(west_yorkshire.kind, OrganisationKind::Icb);
    assert_eq!(west_yorkshire.region.as_deref(), Some("North East and Yorkshire"));
    assert_eq!(west_yorkshire.ods_file.as_deref(), Some("icb"));

    let locations = import(&db, OdsFileKind::Subicb, SUBICB);
    assert_eq!(locations.added.len(), 4);
    assert_eq!(locations.open_records, 3);
    assert!(
        locations.unknown_to_ods.is_empty(),
        "hand-kept organisations of kind other are not the file's: {:?}",
        locations.unknown_to_ods
    );
    let leeds = organisation(&db, "15F");
    assert_eq!((leeds.kind, leeds.parent_code.as_deref()), (OrganisationKind::Other, Some("QWO")));
    assert!(organisation(&db, "08K").closed, "a closed location is added closed: its code is known");

    let practices = import(&db, OdsFileKind::Epraccur, EPRACCUR);
    assert_eq!(practices.added.len(), 5);
    let practice = organisation(&db, "G85001");
    assert_eq!(
        (practice.kind, practice.parent_code.as_deref(), practice.region_code.as_deref()),
        (OrganisationKind::GpPractice, Some("QKK"), Some("Y56"))
    );
    assert_eq!(organisation(&db, "Y02001").kind, OrganisationKind::Other);

    for (kind, text) in
        [(OdsFileKind::Icb, ICB), (OdsFileKind::Subicb, SUBICB), (OdsFileKind::Epraccur, EPRACCUR)]
    {
        let again = import(&db, kind, text);
        assert!(!again.changes_anything(), "{}: {again:?}", kind.as_str());
        assert_eq!(again.unchanged, again.records);
    }

    // G85001 renamed and moved to QWE (and its postcode), H85001 closed, B86001 left out.
    let changed: String = EPRACCUR
        .lines()
        .filter(|l| !l.starts_with("\"B86001\""))
        .map(|l| {
            let l = l.replace(
                "\"SAMPLE SURGERY\",\"Y56\",\"QKK\"",
                "\"SAMPLE SURGERY PARTNERSHIP\",\"Y56\",\"QWE\"",
            );
            let l = if l.starts_with("\"H85001\"") {
                l.replace("\"19740401\",\"\"", "\"19740401\",\"20261130\"")
            } else {
                l
            };
            format!("{l}\r\n")
        })
        .collect();
    let dry = dry_run(&db, OdsFileKind::Epraccur, &changed);
    let plan = import(&db, OdsFileKind::Epraccur, &changed);
    assert_eq!(dry, plan, "the dry run planned what the import did");
    assert_eq!(plan.renamed.len(), 1);
    assert_eq!(plan.renamed[0].to.as_deref(), Some("SAMPLE SURGERY PARTNERSHIP"));
    assert_eq!(
        plan.reparented.iter().map(|c| (c.code.as_str(), c.to.as_deref())).collect::<Vec<_>>(),
        [("G85001", Some("QWE"))]
    );
    assert_eq!(plan.closed.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(), ["H85001"]);
    assert_eq!(plan.unknown_to_ods, ["B86001"], "reported, never removed");
    assert!(!organisation(&db, "B86001").closed);
    assert_eq!(organisation(&db, "G85001").parent_code.as_deref(), Some("QWE"));
}

/// `succ` proposes the successions whose both ends the catalogue knows, once; it changes no
/// organisation, and a dry run writes nothing.
fn a_successor_file_proposes_successions(db: TestDatabase) {
    import(&db, OdsFileKind::Etr, ETR);
    import(&db, OdsFileKind::Subicb, SUBICB);
    import(&db, OdsFileKind::Epraccur, EPRACCUR);
    // Made up for this test: a known predecessor whose successor the catalogue does not hold.
    let with_unknown_successor = format!("{SUCC}\"RNK\",\"ZZ9\",\"R\",\"20260401\",\"\"\r\n");
    let organisations_before = snapshot(&db);
    let events = db.db.read(db::audit::count).unwrap();

    let dry = dry_run(&db, OdsFileKind::Succ, &with_unknown_successor);
    assert_eq!(db.db.read(db::audit::count).unwrap(), events, "a dry run writes nothing");
    let plan = import(&db, OdsFileKind::Succ, &with_unknown_successor);
    assert_eq!(dry, plan);
    let pairs: Vec<(String, String)> =
        plan.succeeded.iter().map(|s| (s.predecessor.clone(), s.successor.clone())).collect();
    assert_eq!(
        pairs,
        [("RVJ", "RA7"), ("RA3", "RA7"), ("08K", "72Q"), ("B86002", "B86001")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(plan.predecessor_unknown, 1, "00C is not in the catalogue");
    assert_eq!(plan.successor_unknown.len(), 1);
    assert_eq!(plan.successor_unknown[0].successor, "ZZ9");
    assert_eq!(snapshot(&db), organisations_before, "proposing changes no organisation");
    // Four proposals and the import.
    assert_eq!(db.db.read(db::audit::count).unwrap(), events + 5);
    let proposed = db
        .db
        .read(|conn| {
            db::ods_successions::list(
                conn,
                Some(db::ods_successions::SuccessionStatus::Proposed),
                &db::PageRequest::default(),
            )
        })
        .unwrap();
    assert_eq!(proposed.items.len(), 4);
    assert_eq!(proposed.items[0].effective_on, NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());

    let again = import(&db, OdsFileKind::Succ, &with_unknown_successor);
    assert!(again.succeeded.is_empty(), "nothing is proposed twice");
    assert_eq!(again.unchanged, 4);
}

on_both_databases!(every_organisation_kind_imports, a_successor_file_proposes_successions);

async fn post_file(app: &TestApp, token: &str, query: &str, body: &str) -> (u16, Value) {
    let request = app
        .post(&format!("/v1/ods/imports{query}"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body.to_owned());
    status_and_json(request).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    status_and_json(app.get(path).bearer_auth(token)).await
}

fn listed(page: &Value, field: &str) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i[field].as_str().unwrap().to_owned()).collect()
}

fn events(app: &TestApp, action: &str) -> usize {
    app.with_connection(|conn| {
        let filter = db::audit::AuditFilter { action: Some(action.into()), ..Default::default() };
        db::audit::events_after(conn, &filter, None, 500).unwrap().len()
    })
}

/// North Bristol (RVJ) holds seats; ODS closes it, and its successor file names Bristol (RA7).
/// The closure is flagged until the succession is proposed; an admin confirms it and the seats
/// move to RA7, keeping ODS's close date. Weston (RA3), also succeeded by RA7, is rejected and
/// flagged again. Auditors read, never decide.
async fn an_admin_confirms_or_rejects_what_ods_proposes(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    // RVJ open first (its close date taken out), so that it can hold seats.
    let open_rvj: String = ETR
        .lines()
        .map(|l| {
            let l = if l.starts_with("\"RVJ\"") { l.replace("\"20260630\"", "\"\"") } else { l.to_owned() };
            format!("{l}\r\n")
        })
        .collect();
    assert_eq!(post_file(&app, &admin, "?kind=etr", &open_rvj).await.0, 200);
    let (_, line) = app.license_nationally("MS-WIN10-ENT", None).await;
    let (status, claimed) = status_and_json(
        app.post(&format!("/v1/entitlements/{line}/allocations"))
            .bearer_auth(&admin)
            .json(&json!({"organisation": "RVJ", "quantity": 5})),
    )
    .await;
    assert_eq!(status, 201, "{claimed}");

    let (status, closing) = post_file(&app, &admin, "?kind=etr", ETR).await;
    assert_eq!(status, 200, "{closing}");
    assert_eq!(closing["closed"][0]["code"], "RVJ");
    let (status, flagged) = get(&app, &auditor, "/v1/ods/closed-without-successor?limit=500").await;
    assert_eq!(status, 200, "{flagged}");
    let flagged = listed(&flagged, "code");
    assert!(flagged.contains(&"RVJ".to_owned()) && flagged.contains(&"RA3".to_owned()), "{flagged:?}");

    let (status, dry) = post_file(&app, &admin, "?kind=succ&dry_run=true", SUCC).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["kind"], "succ");
    assert_eq!(
        dry["succeeded"][0],
        json!({"predecessor": "RVJ", "successor": "RA7", "effective_on": "2026-07-01", "reason": "R"})
    );
    let (_, proposed_now) = get(&app, &admin, "/v1/ods/successions?status=proposed").await;
    assert!(proposed_now["items"].as_array().unwrap().is_empty(), "the dry run proposed nothing");
    let (status, done) = post_file(&app, &admin, "?kind=succ", SUCC).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["succeeded"], dry["succeeded"]);

    let (status, proposed) = get(&app, &auditor, "/v1/ods/successions?status=proposed").await;
    assert_eq!(status, 200, "{proposed}");
    assert_eq!(
        listed(&proposed, "predecessor_code"),
        ["RVJ", "RA3"],
        "08K and B86002 are not in this catalogue"
    );
    let (_, flagged) = get(&app, &admin, "/v1/ods/closed-without-successor?limit=500").await;
    let flagged = listed(&flagged, "code");
    assert!(!flagged.contains(&"RVJ".to_owned()), "a proposed succession is no longer flagged");
    assert!(flagged.contains(&"RNK".to_owned()), "a closure ODS gives no successor stays flagged");
    let rvj = proposed["items"][0]["id"].as_i64().unwrap();
    let ra3 = proposed["items"][1]["id"].as_i64().unwrap();

    let confirm =
        |id: i64, token: &str| app.post(&format!("/v1/ods/successions/{id}/confirm")).bearer_auth(token);
    assert_eq!(status_and_json(confirm(rvj, &auditor)).await.0, 403, "auditors write nothing");
    let (status, confirmed) = status_and_json(confirm(rvj, &admin)).await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["status"], "confirmed");
    assert!(confirmed["decided_by"].as_str().is_some());
    let (_, north_bristol) = get(&app, &admin, "/v1/organisations/RVJ").await;
    assert_eq!(north_bristol["successor_code"], "RA7");
    assert_eq!(north_bristol["closed_on"], "2026-06-30", "the close date ODS gave it stays");
    let (_, moved) = get(&app, &admin, "/v1/organisations/RA7/allocations").await;
    let moved = moved["items"].as_array().unwrap();
    assert!(moved.iter().any(|a| a["entitlement_id"] == line && a["quantity"] == 5), "{moved:?}");
    let (_, left) = get(&app, &admin, "/v1/organisations/RVJ/allocations").await;
    assert!(left["items"].as_array().unwrap().is_empty(), "no live seats stay with the predecessor");
    assert_eq!(status_and_json(confirm(rvj, &admin)).await.0, 409, "a decision is final");
    assert_eq!(events(&app, "ods_succession.confirm"), 1);
    assert_eq!(events(&app, "organisation.succession"), 1);
    assert_eq!(events(&app, "allocation.transfer"), 1);

    let (status, rejected) =
        status_and_json(app.post(&format!("/v1/ods/successions/{ra3}/reject")).bearer_auth(&admin)).await;
    assert_eq!((status, rejected["status"].clone()), (200, json!("rejected")));
    let (_, weston) = get(&app, &admin, "/v1/organisations/RA3").await;
    assert_eq!(weston["successor_code"], Value::Null, "a rejection changes no organisation");
    let (_, flagged) = get(&app, &admin, "/v1/ods/closed-without-successor?limit=500").await;
    assert!(listed(&flagged, "code").contains(&"RA3".to_owned()), "rejected: flagged again");
    assert_eq!(events(&app, "ods_succession.reject"), 1);
    // A successor found by a person is recorded by hand: a closure ODS made is succeeded, keeping
    // ODS's close date, and is then no longer flagged; a second succession is refused.
    let by_hand = || {
        app.post("/v1/organisations/RA3/succession").bearer_auth(&admin).json(&json!({"successor": "RA7"}))
    };
    let (status, succession) = status_and_json(by_hand()).await;
    assert_eq!(status, 200, "{succession}");
    assert_eq!(succession["predecessor"]["closed_on"], "2020-03-31");
    let (_, flagged) = get(&app, &admin, "/v1/ods/closed-without-successor?limit=500").await;
    assert!(!listed(&flagged, "code").contains(&"RA3".to_owned()));
    let (status, problem) = status_and_json(by_hand()).await;
    assert_eq!(status, 409);
    assert!(
        problem["detail"].as_str().unwrap().contains("RA3 has already been succeeded by RA7"),
        "{problem}"
    );

    let (_, again) = post_file(&app, &admin, "?kind=succ", SUCC).await;
    assert_eq!(again["succeeded"], json!([]), "a rejected succession is not proposed again");
    let (status, all) = get(&app, &admin, "/v1/ods/successions").await;
    assert_eq!(status, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    for bad in ["/v1/ods/successions?status=pending", "/v1/ods/successions?limit=0"] {
        assert_eq!(get(&app, &admin, bad).await.0, 400, "{bad}");
    }
    assert_eq!(status_and_json(confirm(9999, &admin)).await.0, 404);
}

/// Every kind over HTTP: the query parameter names it as ODS does.
async fn every_kind_is_imported_over_http(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    // QWE, an ICB the embedded default keeps by hand, is taken over rather than added.
    for (kind, text, added) in [("icb", ICB, 3), ("subicb", SUBICB, 4), ("epraccur", EPRACCUR, 5)] {
        let (status, dry) = post_file(&app, &admin, &format!("?kind={kind}&dry_run=true"), text).await;
        assert_eq!(status, 200, "{kind}: {dry}");
        assert_eq!(dry["added"].as_array().unwrap().len(), added, "{kind}");
        let (status, done) = post_file(&app, &admin, &format!("?kind={kind}"), text).await;
        assert_eq!((status, done["kind"].clone()), (200, json!(kind)));
        assert_eq!(done["added"], dry["added"]);
    }
    let (_, practices) = get(&app, &admin, "/v1/organisations?parent=QWO&kind=gp_practice").await;
    assert_eq!(listed(&practices, "code"), ["B86001"], "the closed practice is left out by default");
    let (status, problem) = post_file(&app, &admin, "?kind=succ", EPRACCUR).await;
    assert_eq!(status, 422);
    assert!(problem["detail"].as_str().unwrap().contains("27 fields where the ODS succ layout has 5"));
}

on_both_engines!(an_admin_confirms_or_rejects_what_ods_proposes, every_kind_is_imported_over_http);
