//! The foundation on both engines: readiness, problem responses, migrations, constraints and
//! the audit mechanism.

use catalogue_tests::{
    Engine, TestApp, TestDatabase, empty_database, on_both_databases, on_both_engines, serve,
};
use db::schema::{audit_events, entitlements, organisations, standard_versions, standards};
use db::{Actor, Audited, Change, DbError};
use diesel::prelude::*;
use serde_json::Value;

async fn health_and_readiness_answer(app: TestApp) {
    let health = app.get("/healthz").send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().get("x-request-id").is_some(), "every response carries its request id");
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

async fn unknown_paths_and_methods_get_problem_responses(app: TestApp) {
    let missing = app.get("/v1/no-such-thing").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    let problem: Value = missing.json().await.unwrap();
    assert_eq!(problem["status"], 404);
    assert_eq!(problem["title"], "Not Found");

    let wrong_method = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET");
    assert_eq!(wrong_method.headers()["content-type"], "application/problem+json");

    // A NUL character, escaped in the path or the query, is refused before any handler sees it.
    for target in ["/v1/organisations/R%00R8", "/v1/products?q=a%00b", "/healthz?x=%00"] {
        let refused = app.get(target).send().await.unwrap();
        assert_eq!(refused.status(), 400, "{target}");
        assert_eq!(refused.headers()["content-type"], "application/problem+json", "{target}");
    }
    assert_eq!(app.get("/healthz?x=%2500").send().await.unwrap().status(), 200, "an escaped percent sign");
}

async fn responses_carry_security_headers(app: TestApp) {
    let response = app.get("/healthz").send().await.unwrap();
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["cache-control"], "no-store");
}

async fn openapi_document_is_served(app: TestApp) {
    let response = app.get("/openapi.json").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/readyz"]["get"].is_object());
}

on_both_engines!(
    health_and_readiness_answer,
    unknown_paths_and_methods_get_problem_responses,
    responses_carry_security_headers,
    openapi_document_is_served,
);

/// A database that answers but has not been migrated is not ready.
async fn readiness_fails_while_migrations_are_pending(engine: Engine) {
    let Some(database) = empty_database(engine) else { return };
    let app = serve(database, engine);
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
    app.db().migrate().unwrap();
    assert_eq!(app.get("/readyz").send().await.unwrap().status(), 200);
}

#[actix_web::test]
async fn readiness_fails_while_migrations_are_pending_sqlite() {
    readiness_fails_while_migrations_are_pending(Engine::Sqlite).await
}

#[actix_web::test]
async fn readiness_fails_while_migrations_are_pending_postgres() {
    readiness_fails_while_migrations_are_pending(Engine::Postgres).await
}

fn migrations_are_idempotent_and_seeds_load_once(test_db: TestDatabase) {
    assert_eq!(test_db.db.migrate().unwrap(), 0, "a second migrate applies nothing");
    let before = test_db.db.read(|conn| Ok(organisations::table.count().get_result::<i64>(conn)?)).unwrap();
    let counts = db::seed::load_shipped(&test_db.db, &mut |_, _| {}).unwrap();
    assert_eq!(counts.total(), 0, "a second seed inserts nothing");
    let after = test_db.db.read(|conn| Ok(organisations::table.count().get_result::<i64>(conn)?)).unwrap();
    assert_eq!(before, after);
    assert!(after >= 16, "the listed trusts are seeded");
}

fn constraints_refuse_untrue_data(test_db: TestDatabase) {
    let mut conn = test_db.db.connection().unwrap();
    // An organisation kind that does not exist.
    let bad_kind = diesel::insert_into(organisations::table)
        .values((
            organisations::code.eq("ZZ1"),
            organisations::name.eq("Nowhere"),
            organisations::kind.eq("castle"),
            organisations::created_at.eq(chrono::Utc::now().naive_utc()),
            organisations::updated_at.eq(chrono::Utc::now().naive_utc()),
        ))
        .execute(&mut conn);
    assert!(matches!(DbError::from(bad_kind.unwrap_err()), DbError::Invalid(_)));

    // A successor that does not exist. (The closing date was NaiveDate::MIN, which PostgreSQL
    // refused as out of range: the check passed there without reaching the foreign key.)
    let dangling = diesel::update(organisations::table.find("RR8"))
        .set((
            organisations::successor_code.eq("NOPE"),
            organisations::closed_on.eq(chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
        ))
        .execute(&mut conn);
    let dangling = DbError::from(dangling.unwrap_err());
    assert!(
        matches!(&dangling, DbError::Invalid(m) if m.contains("referenced record")),
        "foreign keys: {dangling:?}"
    );

    // More seats allocated than the cap on a `block` entitlement (capped here: the shipped seeds
    // cap no `block` line, as no public source gives one a cap).
    let blocking: i64 = entitlements::table
        .filter(entitlements::over_allocation_policy.eq("block"))
        .select(entitlements::id)
        .first(&mut conn)
        .unwrap();
    diesel::update(entitlements::table.find(blocking))
        .set(entitlements::seat_cap.eq(Some(1000_i64)))
        .execute(&mut conn)
        .unwrap();
    let capped: (i64, i64) = entitlements::table
        .filter(entitlements::seat_cap.is_not_null())
        .filter(entitlements::over_allocation_policy.eq("block"))
        .select((entitlements::id, entitlements::seat_cap.assume_not_null()))
        .first(&mut conn)
        .unwrap();
    let over = diesel::update(entitlements::table.find(capped.0))
        .set(entitlements::seats_allocated.eq(capped.1 + 1))
        .execute(&mut conn);
    let over = DbError::from(over.unwrap_err());
    assert!(matches!(&over, DbError::Invalid(m) if m.contains("rule")), "the cap's CHECK: {over:?}");

    // Two published versions of one standard.
    let standard: i64 = standards::table.select(standards::id).first(&mut conn).unwrap();
    let now = chrono::Utc::now().naive_utc();
    let insert_published = |conn: &mut db::DbConnection, number: i32| {
        diesel::insert_into(standard_versions::table)
            .values((
                standard_versions::standard_id.eq(standard),
                standard_versions::number.eq(number),
                standard_versions::status.eq("published"),
                standard_versions::published_at.eq(now),
                standard_versions::created_at.eq(now),
                standard_versions::updated_at.eq(now),
            ))
            .execute(conn)
    };
    let published_already: i64 = standard_versions::table
        .filter(standard_versions::standard_id.eq(standard))
        .filter(standard_versions::status.eq("published"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    if published_already == 0 {
        insert_published(&mut conn, 90).unwrap();
    }
    let second = DbError::from(insert_published(&mut conn, 91).unwrap_err());
    assert!(
        matches!(second, DbError::Conflict(_)),
        "at most one published version (a unique index): {second:?}"
    );
}

fn audit_events_commit_exactly_with_their_write(test_db: TestDatabase) {
    let db = &test_db.db;
    let actor = Actor::system("test");
    let count = || db.read(db::audit::count).unwrap();
    let start = count();

    // A committed write has its event.
    db.write(&actor, |conn| {
        diesel::update(organisations::table.find("RR8"))
            .set(organisations::region.eq("North East and Yorkshire"))
            .execute(conn)?;
        Ok(Audited::one((), Change::new("organisation.update", "organisation", "RR8")))
    })
    .unwrap();
    assert_eq!(count(), start + 1);

    // A failed write leaves neither the change nor an event.
    let failed = db.write(&actor, |conn| {
        diesel::update(organisations::table.find("RR8"))
            .set(organisations::name.eq("Renamed"))
            .execute(conn)?;
        Err::<Audited<()>, _>(DbError::Conflict("refused after the change".into()))
    });
    assert!(matches!(failed, Err(DbError::Conflict(ref m)) if m == "refused after the change"), "{failed:?}");
    assert_eq!(count(), start + 1);
    let name: String = db
        .read(|conn| Ok(organisations::table.find("RR8").select(organisations::name).first(conn)?))
        .unwrap();
    assert_ne!(name, "Renamed");

    // A write that describes no change is refused rather than committed unaudited.
    let silent = db.write(&actor, |conn| {
        diesel::update(organisations::table.find("RR8"))
            .set(organisations::name.eq("Silent"))
            .execute(conn)?;
        Ok(Audited::many((), vec![]))
    });
    assert!(
        matches!(silent, Err(DbError::Internal(ref m)) if m.contains("described no change")),
        "{silent:?}"
    );
    assert_eq!(count(), start + 1);
}

fn audit_events_cannot_be_changed_or_deleted(test_db: TestDatabase) {
    let db = &test_db.db;
    let mut conn = db.connection().unwrap();
    let id: i64 = audit_events::table.select(audit_events::id).first(&mut conn).unwrap();
    let update = diesel::update(audit_events::table.find(id))
        .set(audit_events::actor.eq("someone else"))
        .execute(&mut conn);
    // Refused by the append-only trigger, not by any other error.
    let refused_by_trigger = |result: diesel::QueryResult<usize>| {
        result.is_err_and(|e| e.to_string().contains("audit events are append-only"))
    };
    assert!(refused_by_trigger(update), "audit events cannot be updated");
    let delete = diesel::delete(audit_events::table.find(id)).execute(&mut conn);
    assert!(refused_by_trigger(delete), "audit events cannot be deleted");
    let still_there: i64 =
        audit_events::table.filter(audit_events::id.eq(id)).count().get_result(&mut conn).unwrap();
    assert_eq!(still_there, 1);
}

/// `catalogue backup`: an online copy of the embedded database that opens and holds the same
/// records, private to its owner; PostgreSQL is pointed to pg_dump.
fn a_backup_copies_the_sqlite_database(database: TestDatabase) {
    let target = std::env::temp_dir().join(format!("catalogue-backup-{}.db", uuid::Uuid::new_v4().simple()));
    let copied = db::backup::sqlite_copy(&database.db, &target);
    if database.db.engine() == Engine::Postgres {
        assert!(matches!(copied, Err(db::DbError::Invalid(ref m)) if m.contains("pg_dump")), "{copied:?}");
        return;
    }
    copied.unwrap();
    let count = |db: &db::Database| -> i64 {
        db.read(|conn| Ok(db::schema::products::table.count().get_result(conn)?)).unwrap()
    };
    let copy = db::Database::connect(&target.display().to_string(), 1).unwrap();
    assert!(count(&copy) > 0);
    assert_eq!(count(&copy), count(&database.db));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(db::backup::sqlite_copy(&database.db, &target).is_err(), "an existing file is never overwritten");
    drop(copy);
    let _ = std::fs::remove_file(&target);
}

on_both_databases!(
    a_backup_copies_the_sqlite_database,
    migrations_are_idempotent_and_seeds_load_once,
    constraints_refuse_untrue_data,
    audit_events_commit_exactly_with_their_write,
    audit_events_cannot_be_changed_or_deleted,
);

async fn metrics_and_docs_are_served(app: TestApp) {
    app.get("/healthz").send().await.unwrap();
    // Only the scraper's token opens /metrics; anyone else finds nothing there.
    for refused in [app.get("/metrics"), app.get("/metrics").bearer_auth("a guess")] {
        let response = refused.send().await.unwrap();
        assert_eq!(response.status(), 404);
        assert!(!response.text().await.unwrap().contains("catalogue_http"));
    }
    let metrics = app.get("/metrics").bearer_auth(catalogue_tests::METRICS_TOKEN).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("catalogue_http_requests_total"), "{text}");
    let bare = app.get("/docs").send().await.unwrap();
    assert_eq!(bare.status(), 308, "/docs without the slash is redirected");
    assert_eq!(bare.headers()["location"], "/docs/");
    let docs = app.get("/docs/").send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let policy = docs.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self'") && !policy.contains("http"), "{policy}");
    assert!(docs.text().await.unwrap().contains("swagger"), "the page is Swagger UI");
}

/// The SQLite file holds password hashes: only its owner may read it (the security test found 0644).
async fn a_new_sqlite_file_is_private(app: TestApp) {
    if app.engine != catalogue_tests::Engine::Sqlite {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&app.database.url).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

on_both_engines!(metrics_and_docs_are_served, a_new_sqlite_file_is_private);

async fn cross_origin_calls_are_off_by_default(app: TestApp) {
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/me"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().get("access-control-allow-origin").is_none());
    let simple = app.get("/healthz").header("origin", "https://evil.example").send().await.unwrap();
    assert!(simple.headers().get("access-control-allow-origin").is_none());
}

on_both_engines!(cross_origin_calls_are_off_by_default);
