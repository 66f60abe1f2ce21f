//! Organisations from the Organisation Data Service: the real `etr.csv` (274 trusts, 202 of them
//! without a close date, counted with Python's csv module when the file was copied into seeds/),
//! a second import that renames, re-parents and closes, dry runs and bad files that write
//! nothing, and hand edits to what ODS owns refused through the API.

use catalogue_tests::{
    Engine, Role, TestApp, TestDatabase, empty_database, on_both_databases, on_both_engines,
};
use chrono::NaiveDate;
use db::ods::{self, OdsFileKind, OdsRecord};
use db::schema::organisations;
use diesel::prelude::*;
use serde_json::{Value, json};

const ETR: &str = include_str!("../seeds/ods/etr.csv");
const ROWS: usize = 274;
const OPEN: usize = 202;

fn records(text: &str) -> Vec<OdsRecord> {
    ods::parse(OdsFileKind::Etr, text.as_bytes()).unwrap_or_else(|e| panic!("parse: {e}"))
}

fn import(db: &TestDatabase, text: &str) -> ods::ImportPlan {
    ods::apply(&db.db, &db::Actor::system("test"), OdsFileKind::Etr, &records(text), &mut |_, _| {})
        .unwrap_or_else(|e| panic!("import: {e}"))
}

/// (code, name, kind, region, parent, closed_on, ods_file, revision) of every organisation.
type Row = (String, String, String, Option<String>, Option<String>, Option<NaiveDate>, Option<String>, i64);

fn snapshot(db: &TestDatabase) -> Vec<Row> {
    db.db
        .read(|conn| {
            Ok(organisations::table
                .select((
                    organisations::code,
                    organisations::name,
                    organisations::kind,
                    organisations::region,
                    organisations::parent_code,
                    organisations::closed_on,
                    organisations::ods_file,
                    organisations::revision,
                ))
                .order(organisations::code)
                .load::<Row>(conn)?)
        })
        .unwrap()
}

fn organisation(db: &TestDatabase, code: &str) -> db::organisations::Organisation {
    db.db.read(|conn| db::organisations::get(conn, code)).unwrap()
}

fn audit_events(db: &TestDatabase) -> i64 {
    db.db.read(db::audit::count).unwrap()
}

/// (all, open) organisations that the etr file owns.
fn etr_counts(db: &TestDatabase) -> (usize, usize) {
    let rows = snapshot(db);
    let owned: Vec<&Row> = rows.iter().filter(|r| r.6.as_deref() == Some("etr")).collect();
    (owned.len(), owned.iter().filter(|r| r.5.is_none()).count())
}

/// The file with the line of `code` changed by `edit`.
fn with_line(text: &str, code: &str, edit: impl Fn(&str) -> String) -> String {
    let prefix = format!("\"{code}\",");
    let mut found = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with(&prefix) {
                found = true;
                edit(line)
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(found, "{code} is in the file");
    lines.join("\n") + "\n"
}

#[test]
fn the_real_file_parses_into_its_trusts() {
    assert_eq!(ETR.lines().count(), ROWS);
    let parsed = records(ETR);
    assert_eq!(parsed.len(), ROWS);
    assert_eq!(parsed.iter().filter(|r| r.closed_on.is_none()).count(), OPEN);
    let leeds = parsed.iter().find(|r| r.code == "RR8").unwrap();
    assert_eq!(leeds.name, "LEEDS TEACHING HOSPITALS NHS TRUST");
    assert_eq!(leeds.region_code.as_deref(), Some("Y63"));
    assert_eq!(leeds.parent_code.as_deref(), Some("QWO"));
    assert_eq!(leeds.postcode.as_deref(), Some("LS9 7TF"));
    assert_eq!(leeds.opened_on, NaiveDate::from_ymd_opt(1998, 4, 1));
    let bedford = parsed.iter().find(|r| r.code == "RC1").unwrap();
    assert_eq!(bedford.closed_on, NaiveDate::from_ymd_opt(2020, 3, 31));
    // A trust opening in 2026 and five-character codes are read like any other.
    assert!(parsed.iter().any(|r| r.code == "K0N6A" && r.opened_on == NaiveDate::from_ymd_opt(2026, 6, 1)));
}

/// The first import into a catalogue with no organisations adds every trust, open or closed.
fn the_real_file_fills_an_empty_catalogue(engine: Engine) {
    let Some(db) = empty_database(engine) else { return };
    db.db.migrate().unwrap();
    let plan = import(&db, ETR);
    assert_eq!((plan.records, plan.open_records), (ROWS, OPEN));
    assert_eq!(plan.added.len(), ROWS);
    assert_eq!(plan.added.iter().filter(|a| a.closed_on.is_none()).count(), OPEN);
    assert_eq!(etr_counts(&db), (ROWS, OPEN));
    let leeds = organisation(&db, "RR8");
    assert_eq!(leeds.name, "LEEDS TEACHING HOSPITALS NHS TRUST");
    assert_eq!(leeds.region.as_deref(), Some("North East and Yorkshire"));
    assert_eq!(leeds.region_code.as_deref(), Some("Y63"));
    assert_eq!(leeds.parent_code.as_deref(), Some("QWO"));
    assert!(!leeds.exemplar, "ODS says nothing of exemplars");
    // One event per organisation and one for the import.
    assert_eq!(audit_events(&db), ROWS as i64 + 1);
    let again = import(&db, ETR);
    assert_eq!(again.unchanged, ROWS, "a repeat changes nothing");
    assert_eq!(audit_events(&db), ROWS as i64 + 1, "and records nothing");
}

#[test]
fn the_real_file_fills_an_empty_catalogue_sqlite() {
    the_real_file_fills_an_empty_catalogue(Engine::Sqlite);
}

#[test]
fn the_real_file_fills_an_empty_catalogue_postgres() {
    the_real_file_fills_an_empty_catalogue(Engine::Postgres);
}

/// The embedded default already holds every open trust; importing the same file adds the closed
/// ones, and ODS's names replace hand-checked ones only where they differ in more than case.
fn the_real_file_over_the_embedded_default(db: TestDatabase) {
    let seeded = etr_counts(&db);
    assert_eq!(seeded.1, OPEN, "the embedded default holds every open trust of the file");
    let salford = organisation(&db, "RM3");
    assert!(salford.exemplar);
    assert_eq!(
        salford.name, "Northern Care Alliance NHS Foundation Trust",
        "the hand-checked name is seeded"
    );
    assert_eq!(salford.parent_code.as_deref(), Some("QOP"), "with ODS's parent");

    let plan = import(&db, ETR);
    assert_eq!((plan.records, plan.open_records), (ROWS, OPEN));
    assert!(plan.added.iter().all(|a| a.closed_on.is_some()), "only closed trusts were missing");
    assert_eq!(etr_counts(&db), (ROWS, OPEN));
    let mut renamed: Vec<&str> = plan.renamed.iter().map(|c| c.code.as_str()).collect();
    renamed.sort();
    assert!(renamed.is_empty(), "case-only differences (RM3, RA7) keep the hand-checked name: {renamed:?}");
    assert_eq!(organisation(&db, "RR8").name, "Leeds Teaching Hospitals NHS Trust");
    let salford = organisation(&db, "RM3");
    assert_eq!(
        salford.name, "Northern Care Alliance NHS Foundation Trust",
        "the hand-checked spelling stays"
    );
    assert!(salford.exemplar, "the catalogue owns the exemplar flag");
    assert_eq!(organisation(&db, "RA7").name, "Bristol NHS Foundation Trust");
    assert!(plan.unknown_to_ods.is_empty(), "{:?}", plan.unknown_to_ods);
}

/// A later file renames one trust, moves one to another ICB, closes one and leaves one out.
fn a_changed_file_renames_reparents_and_closes(db: TestDatabase) {
    import(&db, ETR);
    let before = organisation(&db, "RJ1");
    let events = audit_events(&db);
    let changed = with_line(ETR, "RR8", |l| {
        l.replace(
            "\"LEEDS TEACHING HOSPITALS NHS TRUST\"",
            "\"LEEDS TEACHING HOSPITALS NHS FOUNDATION TRUST\"",
        )
    });
    let changed = with_line(&changed, "RJ1", |l| l.replace("\"Y56\",\"QKK\"", "\"Y56\",\"QWE\""));
    let changed = with_line(&changed, "RTH", |l| l.replace("\"19980401\",\"\"", "\"19980401\",\"20261130\""));
    let changed: String =
        changed.lines().filter(|l| !l.starts_with("\"RLQ\",")).map(|l| format!("{l}\n")).collect();

    let dry = db.db.read(|conn| ods::plan(conn, OdsFileKind::Etr, &records(&changed))).unwrap();
    let plan = import(&db, &changed);
    assert_eq!(dry, plan, "the dry run planned exactly what the import did");
    assert!(plan.added.is_empty());
    assert_eq!(plan.renamed.len(), 1);
    assert_eq!(plan.renamed[0].code, "RR8");
    assert_eq!(plan.renamed[0].to.as_deref(), Some("LEEDS TEACHING HOSPITALS NHS FOUNDATION TRUST"));
    assert_eq!(plan.reparented.len(), 1);
    assert_eq!(
        (
            plan.reparented[0].code.as_str(),
            plan.reparented[0].from.as_deref(),
            plan.reparented[0].to.as_deref()
        ),
        ("RJ1", Some("QKK"), Some("QWE"))
    );
    assert_eq!(plan.closed.len(), 1);
    assert_eq!(plan.closed[0].code, "RTH");
    assert_eq!(plan.closed[0].closed_on, NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
    assert!(plan.updated.is_empty(), "{:?}", plan.updated);
    assert_eq!(plan.unknown_to_ods, ["RLQ"], "left out of the file: reported");
    assert_eq!(plan.unchanged, ROWS - 4);

    assert_eq!(organisation(&db, "RR8").name, "LEEDS TEACHING HOSPITALS NHS FOUNDATION TRUST");
    let guys = organisation(&db, "RJ1");
    assert_eq!(guys.parent_code.as_deref(), Some("QWE"));
    assert_eq!(guys.revision, before.revision + 1, "an update moves the ETag on");
    let oxford = organisation(&db, "RTH");
    assert!(oxford.closed && oxford.exemplar, "closed, never deleted; its exemplar flag stays");
    let wye = organisation(&db, "RLQ");
    assert!(!wye.closed, "a code ODS does not list is kept as it was");
    // Three organisations changed, and the import itself: four events.
    assert_eq!(audit_events(&db), events + 4);
    let rename = db
        .db
        .read(|conn| {
            let filter = db::audit::AuditFilter {
                entity_id: Some("RR8".into()),
                action: Some("organisation.ods_import".into()),
                ..Default::default()
            };
            db::audit::events_after(conn, &filter, None, 10)
        })
        .unwrap();
    let last = rename.last().unwrap();
    assert_eq!(last.actor, "system:test");
    assert!(last.before_state.as_deref().unwrap().contains("Leeds Teaching Hospitals NHS Trust"));
    assert!(last.after_state.as_deref().unwrap().contains("LEEDS TEACHING HOSPITALS NHS FOUNDATION TRUST"));
}

fn a_dry_run_writes_nothing(db: TestDatabase) {
    let (rows, events) = (snapshot(&db), audit_events(&db));
    let plan = db.db.read(|conn| ods::plan(conn, OdsFileKind::Etr, &records(ETR))).unwrap();
    assert!(plan.changes_anything());
    assert_eq!(plan.added.len(), ROWS - OPEN - 2, "the closed trusts but RC1 and RBA, which are seeded");
    assert_eq!(snapshot(&db), rows);
    assert_eq!(audit_events(&db), events);
}

fn a_bad_file_is_refused_and_changes_nothing(db: TestDatabase) {
    let (rows, events) = (snapshot(&db), audit_events(&db));
    let first = ETR.lines().next().unwrap();
    let header = "\"Organisation Code\",\"Name\"".to_owned() + &",\"\"".repeat(25) + "\n" + ETR;
    let short = ETR.replacen(first, &first[..first.rfind(',').unwrap()], 1);
    let bad_date = with_line(ETR, "RR8", |l| l.replace("\"19980401\"", "\"1998-04-01\""));
    let twice = format!("{ETR}{first}\n");
    let cases: [(&str, &[u8], &str); 6] = [
        ("a header row", header.as_bytes(), "line 1: \"Organisation Code\" is not an ODS code"),
        ("a short row", short.as_bytes(), "line 1: 26 fields where the ODS etr layout has 27"),
        ("a bad date", bad_date.as_bytes(), "RR8: open date \"1998-04-01\" is not a date"),
        ("a code twice", twice.as_bytes(), "line 275: G6V2S is listed twice"),
        ("nothing", b"", "holds no records"),
        ("not text", b"\"RR8\",\"\xff\xfe\"\n", "line 1: not readable as CSV"),
    ];
    for (what, bytes, expected) in cases {
        match ods::parse(OdsFileKind::Etr, bytes) {
            Err(db::DbError::Invalid(detail)) => assert!(detail.contains(expected), "{what}: {detail}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // A file the database refuses halfway (a lower-case code, past the parser) rolls back whole.
    let mut records = records(ETR);
    records.push(OdsRecord {
        code: "zz9".into(),
        name: "NOT A TRUST".into(),
        region_code: None,
        parent_code: None,
        postcode: None,
        opened_on: None,
        closed_on: None,
        kind: db::vocabulary::OrganisationKind::Trust,
    });
    let refused = ods::apply(&db.db, &db::Actor::system("test"), OdsFileKind::Etr, &records, &mut |_, _| {});
    assert!(matches!(refused, Err(db::DbError::Invalid(_))), "{refused:?}");
    assert_eq!(snapshot(&db), rows, "the trusts added before the refusal were rolled back");
    assert_eq!(audit_events(&db), events);
}

on_both_databases!(
    the_real_file_over_the_embedded_default,
    a_changed_file_renames_reparents_and_closes,
    a_dry_run_writes_nothing,
    a_bad_file_is_refused_and_changes_nothing,
);

async fn patch(app: &TestApp, token: &str, code: &str, body: Value) -> (u16, Value) {
    let response =
        app.patch_any_version(&format!("/v1/organisations/{code}")).bearer_auth(token).json(&body).send();
    let response = response.await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn hand_edits_to_what_ods_owns_are_refused(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let leeds = app.get("/v1/organisations/RR8").bearer_auth(&admin).send().await.unwrap();
    let leeds: Value = leeds.json().await.unwrap();
    assert_eq!(leeds["ods_file"], "etr");
    assert_eq!(leeds["parent_code"], "QWO");
    assert_eq!(leeds["region_code"], "Y63");
    assert_eq!(leeds["postcode"], "LS9 7TF");
    assert_eq!(leeds["opened_on"], "1998-04-01");

    for refused in [json!({"name": "Leeds NHS"}), json!({"region": "London"}), json!({"region": null})] {
        let (status, problem) = patch(&app, &admin, "RR8", refused.clone()).await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(problem["type"], "urn:nhs-catalogue:problem:conflict");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("owned by the Organisation Data Service") && detail.contains("RR8"),
            "{detail}"
        );
    }
    // The kind is the catalogue's (what an organisation is eligible for), and so is the exemplar flag.
    let (_, after) =
        patch(&app, &admin, "RR8", json!({"exemplar": true, "kind": "trust", "name": leeds["name"]})).await;
    assert_eq!(after["exemplar"], true, "the catalogue's own fields are edited by hand");
    assert_eq!(after["name"], leeds["name"]);
    // An organisation kept by hand is edited as before.
    let (status, national) = patch(&app, &admin, "X24", json!({"name": "NHS England (national team)"})).await;
    assert_eq!((status, national["ods_file"].clone()), (200, Value::Null));
}

async fn organisations_are_listed_by_parent_and_region_code(app: TestApp) {
    let (_, token) = app.sign_in(Role::Auditor, None).await;
    let get = |path: String| {
        let request = app.get(&path).bearer_auth(&token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let leeds_icb = get("/v1/organisations?parent=qwo&limit=500".into()).await;
    let items = leeds_icb["items"].as_array().unwrap();
    assert!(items.iter().any(|o| o["code"] == "RR8"));
    assert!(items.iter().all(|o| o["parent_code"] == "QWO"));
    let by_code = get("/v1/organisations?region=Y63&limit=500".into()).await;
    let by_name = get("/v1/organisations?region=North%20East%20and%20Yorkshire&limit=500".into()).await;
    let codes = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|o| o["code"].as_str().unwrap().to_owned()).collect()
    };
    assert!(codes(&by_code).len() > 20);
    assert_eq!(codes(&by_code), codes(&by_name), "every trust of the region has both");
}

async fn post_file(app: &TestApp, token: &str, query: &str, content_type: &str, body: &str) -> (u16, Value) {
    let request = app
        .post(&format!("/v1/ods/imports{query}"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_owned());
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn app_events(app: &TestApp) -> i64 {
    app.with_connection(|conn| db::audit::count(conn).unwrap())
}

/// `POST /v1/ods/imports`: admins only (the route matrix proves every role), a dry run writes
/// nothing, a bad file or body is refused whole.
async fn admins_import_an_ods_file_over_http(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    assert_eq!(post_file(&app, &auditor, "", "text/csv", ETR).await.0, 403);

    let events = app_events(&app);
    let (status, dry) = post_file(&app, &admin, "?dry_run=true", "text/csv", ETR).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (dry["dry_run"].clone(), dry["records"].clone(), dry["open_records"].clone()),
        (json!(true), json!(ROWS), json!(OPEN))
    );
    assert_eq!(dry["added"].as_array().unwrap().len(), ROWS - OPEN - 2);
    assert_eq!(app_events(&app), events, "a dry run writes nothing");

    for (query, content_type, body, expected, says) in [
        ("", "application/json", "{}", 415, "text/csv"),
        ("", "text/csv", "\"RR8\",\"LEEDS\"\r\n", 422, "line 1: 2 fields"),
        ("?kind=eccg", "text/csv", ETR, 400, "eccg"),
        ("?colour=blue", "text/csv", ETR, 400, "colour"),
    ] {
        let (status, problem) = post_file(&app, &admin, query, content_type, body).await;
        assert_eq!(status, expected, "{query} {content_type}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(says), "{problem}");
    }
    assert_eq!(app_events(&app), events, "refused files write nothing");

    let (status, done) = post_file(&app, &admin, "?kind=etr", "text/csv; charset=utf-8", ETR).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["dry_run"], false);
    assert_eq!(done["added"], dry["added"], "the import did what the dry run said");
    assert_eq!(done["renamed"], dry["renamed"]);
    let (_, again) = post_file(&app, &admin, "", "text/csv", ETR).await;
    assert_eq!(again["unchanged"], ROWS);
    let bristol = app.get("/v1/organisations/RA7").bearer_auth(&admin).send().await.unwrap();
    assert_eq!(
        bristol.json::<Value>().await.unwrap()["name"],
        "Bristol NHS Foundation Trust",
        "the hand-checked spelling"
    );
}

on_both_engines!(
    hand_edits_to_what_ods_owns_are_refused,
    organisations_are_listed_by_parent_and_region_code,
    admins_import_an_ods_file_over_http,
);
