//! The test harness: the real app on port 0 with its own fresh database, on SQLite and on
//! PostgreSQL, so that every integration test runs on both engines.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! each test creates and later drops its own database there. When it does not answer, tests fail
//! under `CI=true` or `CI=1` and elsewhere say loudly that the PostgreSQL half was skipped.

use std::io::Write;
use std::net::TcpListener;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use db::{Database, DbConnection};
use diesel::Connection;
use diesel::connection::SimpleConnection;

pub use db::Engine;
pub use db::users::Role;

pub mod receiver;
pub mod smtp;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Whether PostgreSQL answers; asked once per test binary.
fn postgres_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| match diesel::PgConnection::establish(&postgres_admin_url()) {
        Ok(_) => true,
        Err(error) => {
            if in_ci() {
                panic!(
                    "PostgreSQL does not answer at TEST_DATABASE_URL and this is CI (CI={}): {error}",
                    std::env::var("CI").unwrap_or_default()
                );
            }
            false
        }
    })
}

/// Whether this is a CI run (`CI=true` or `CI=1`, as CI services set it): PostgreSQL must answer.
fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|value| matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// PostgreSQL halves skipped in this test binary. The test harness counts each as passed, so the
/// count is written after its summary, when the process exits.
static SKIPPED_POSTGRES_HALVES: AtomicUsize = AtomicUsize::new(0);

extern "C" fn report_skipped_postgres_halves() {
    let skipped = SKIPPED_POSTGRES_HALVES.load(Ordering::SeqCst);
    let _ = writeln!(
        std::io::stderr(),
        "\n*** {skipped} PostgreSQL halves were SKIPPED (PostgreSQL did not answer at TEST_DATABASE_URL) \
         and are counted as passed in the summary above ***\n"
    );
}

fn count_skipped_postgres_half() {
    if SKIPPED_POSTGRES_HALVES.fetch_add(1, Ordering::SeqCst) == 0 {
        // SAFETY: registers a function that takes nothing and only reads an atomic and writes
        // to standard error; it runs once, at exit.
        unsafe {
            libc::atexit(report_skipped_postgres_halves);
        }
    }
}

/// Written straight to the process's standard error, past the test harness's capture.
fn shout(message: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** {message} ***\n");
}

/// A database made for one test, removed when the test ends.
pub struct TestDatabase {
    pub db: Database,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(std::path::PathBuf),
    PostgresDatabase(String),
    /// Another handle on a database someone else cleans up.
    Nothing,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm", ".jwt-secret"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Nothing => {}
            Cleanup::PostgresDatabase(name) => {
                if let Ok(mut conn) = diesel::PgConnection::establish(&postgres_admin_url()) {
                    let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            }
        }
    }
}

/// A fresh, empty database (not migrated), or `None` when PostgreSQL was skipped.
pub fn empty_database(engine: Engine) -> Option<TestDatabase> {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    match engine {
        Engine::Sqlite => {
            let path = std::env::temp_dir().join(format!("catalogue-test-{unique}.db"));
            let url = path.display().to_string();
            let db = Database::connect(&url, 8).unwrap_or_else(|e| panic!("open SQLite: {e}"));
            Some(TestDatabase { db, url, cleanup: Cleanup::SqliteFile(path) })
        }
        Engine::Postgres => {
            if !postgres_available() {
                shout(
                    "PostgreSQL does not answer at TEST_DATABASE_URL: the PostgreSQL half of this test was SKIPPED",
                );
                count_skipped_postgres_half();
                return None;
            }
            let name = format!("catalogue_test_{unique}");
            let admin = postgres_admin_url();
            let mut conn =
                diesel::PgConnection::establish(&admin).unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
            conn.batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap_or_else(|e| panic!("create database: {e}"));
            let url = replace_database_name(&admin, &name);
            let db = Database::connect(&url, 8).unwrap_or_else(|e| panic!("open PostgreSQL: {e}"));
            Some(TestDatabase { db, url, cleanup: Cleanup::PostgresDatabase(name) })
        }
    }
}

fn replace_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let without_path = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    format!("{without_path}/{name}{query}")
}

/// A fresh database, migrated and loaded with the shipped seeds.
pub fn seeded_database(engine: Engine) -> Option<TestDatabase> {
    let test_db = empty_database(engine)?;
    test_db.db.migrate().unwrap_or_else(|e| panic!("migrate: {e}"));
    db::seed::load_shipped(&test_db.db, &mut |_, _| {}).unwrap_or_else(|e| panic!("seed: {e}"));
    Some(test_db)
}

/// The token test apps want from a metrics scraper.
pub const METRICS_TOKEN: &str = "test metrics scraper token";

/// The password every test user has; its hash is computed once per test binary.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

fn test_password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| api::auth::password::hash(TEST_PASSWORD).unwrap())
}

/// The real app, serving on a free loopback port.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database: TestDatabase,
    pub engine: Engine,
    /// The token signing secret, so tests can forge tampered and expired tokens.
    pub jwt_secret: Vec<u8>,
    /// The instance's read model (none on a database that could not be loaded).
    pub read_model: Option<std::sync::Arc<db::read_model::ReadModel>>,
    /// Keeps the read model picking up changes made by other instances.
    pub poller: Option<db::read_model::Poller>,
}

/// A user made for a test, with the test password.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub organisation: Option<String>,
}

impl TestApp {
    pub fn db(&self) -> &Database {
        &self.database.db
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.put(self.url(path))
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path))
    }

    /// A PATCH that applies whatever the record's current version (`If-Match: *`), for tests
    /// whose subject is not the precondition.
    pub fn patch_any_version(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.patch(self.url(path)).header("if-match", "*")
    }

    /// POSTs `body` to `path` as `token`'s holder and returns the record made; a status other
    /// than 201 fails the test with the problem response.
    pub async fn created(&self, token: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let (status, record) = status_and_json(self.post(path).bearer_auth(token).json(body)).await;
        assert_eq!(status, 201, "POST {path} {body}: {record}");
        record
    }

    /// The id of a seeded supplier, for records a test makes.
    pub async fn any_supplier_id(&self, token: &str) -> i64 {
        let (status, suppliers) = status_and_json(self.get("/v1/suppliers").bearer_auth(token)).await;
        assert_eq!(status, 200, "{suppliers}");
        suppliers["items"][0]["id"].as_i64().unwrap_or_else(|| panic!("no supplier: {suppliers}"))
    }

    /// Makes `sku` licensed nationally today, for a test that needs such a product rather than
    /// whatever the shipped seeds license (they record only what public sources say): an active
    /// agreement from 2023-06-01 with no end, holding one uncapped national-provision line for
    /// `sku` open to every kind of NHS organisation, ending on `ends_on` (none: no end), made
    /// through the API by a new admin. Returns the agreement's id and the line's (entitlement's) id.
    pub async fn license_nationally(&self, sku: &str, ends_on: Option<&str>) -> (i64, i64) {
        let (_, admin) = self.sign_in(Role::Admin, None).await;
        let path = format!("/v1/products?q={sku}&limit=500");
        let (status, products) = status_and_json(self.get(&path).bearer_auth(&admin)).await;
        assert_eq!(status, 200, "{products}");
        let product = products["items"]
            .as_array()
            .and_then(|items| items.iter().find(|p| p["sku"] == sku))
            .unwrap_or_else(|| panic!("no product {sku}: {products}"))
            .clone();
        let kinds = ["trust", "icb", "gp_practice", "csu", "arms_length_body", "national_body"];
        let agreement = self
            .created(
                &admin,
                "/v1/agreements",
                &serde_json::json!({"supplier_id": product["supplier_id"], "reference": format!("TEST-NATIONAL-{sku}"),
                    "title": format!("Test national licence for {sku}"), "starts_on": "2023-06-01",
                    "ends_on": ends_on, "funding_model": "central", "status": "active", "eligible_kinds": kinds}),
            )
            .await;
        let agreement = agreement["id"].as_i64().unwrap_or_else(|| panic!("{agreement}"));
        let line = self
            .created(
                &admin,
                &format!("/v1/agreements/{agreement}/entitlements"),
                &serde_json::json!({"product_id": product["id"], "tier": "national_provision", "metric": "per_device",
                    "eligible_kinds": kinds, "starts_on": "2023-06-01", "ends_on": ends_on}),
            )
            .await;
        (agreement, line["id"].as_i64().unwrap_or_else(|| panic!("{line}")))
    }

    /// A line licensing `sku` nationally (as [`TestApp::license_nationally`] makes it) whose
    /// claims need the national team's approval: each is held as a seat request. Returns the
    /// line's id.
    pub async fn line_needing_approval(&self, sku: &str) -> i64 {
        let (_, line) = self.license_nationally(sku, None).await;
        let (_, admin) = self.sign_in(Role::Admin, None).await;
        let patched = self
            .patch_any_version(&format!("/v1/entitlements/{line}"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"requires_approval": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 200, "the line needs approval");
        line
    }

    /// A claim of `quantity` seats of `line` for `organisation`, held as a seat request (the line
    /// needs approval); returns the request's id.
    pub fn request_seats(&self, line: i64, organisation: &str, quantity: i64) -> i64 {
        let claim = db::ledger::Claim { organisation: organisation.to_owned(), quantity, reference: None };
        let today = chrono::Utc::now().date_naive();
        match db::ledger::claim(self.db(), &db::Actor::system("test"), line, claim, None, today)
            .unwrap()
            .outcome
        {
            db::ledger::ClaimOutcome::Requested(request) => request.id,
            db::ledger::ClaimOutcome::Created(_) => panic!("line {line} needs no approval"),
        }
    }

    /// Asks for a product to be added, for `organisation`, directly in the database (audited as a
    /// test actor): the request's id.
    pub fn request_product(&self, organisation: &str, product_name: &str) -> i64 {
        let new = db::product_requests::NewProductRequest {
            organisation_code: organisation.to_owned(),
            product_name: product_name.to_owned(),
            supplier: "Test Supplier Ltd".to_owned(),
            version: None,
            need: "Needed for a test".to_owned(),
            search_text: None,
        };
        db::product_requests::create(self.db(), &db::Actor::system("test"), new).unwrap().id
    }

    /// Creates a user directly in the database (audited as a test actor).
    pub fn create_user(&self, role: Role, organisation: Option<&str>) -> TestUser {
        let email = format!("{}-{}@test.nhs.uk", role.as_str(), uuid::Uuid::new_v4().simple());
        let new = db::users::NewUser {
            email: email.clone(),
            display_name: format!("Test {}", role.as_str()),
            role,
            organisation_code: organisation.map(str::to_owned),
            password_hash: test_password_hash().to_owned(),
        };
        let user = db::users::create(self.db(), &db::Actor::system("test"), new).unwrap();
        TestUser { id: user.id, email, role, organisation: organisation.map(str::to_owned) }
    }

    /// Signs in through the API and returns the bearer token.
    pub async fn token_for(&self, user: &TestUser) -> String {
        let response = self
            .post("/v1/auth/token")
            .json(&serde_json::json!({"email": user.email, "password": TEST_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "sign in as {}", user.email);
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A new user of `role` (for `organisation`) and a token for them.
    pub async fn sign_in(&self, role: Role, organisation: Option<&str>) -> (TestUser, String) {
        let user = self.create_user(role, organisation);
        let token = self.token_for(&user).await;
        (user, token)
    }

    /// Runs a closure on one connection of the test's database.
    pub fn with_connection<T>(&self, work: impl FnOnce(&mut DbConnection) -> T) -> T {
        let mut conn = self.db().connection().unwrap_or_else(|e| panic!("connection: {e}"));
        work(&mut conn)
    }
}

/// Starts the app on a seeded database of `engine`; `None` when PostgreSQL was skipped.
pub async fn spawn_app(engine: Engine) -> Option<TestApp> {
    let database = seeded_database(engine)?;
    Some(serve(database, engine))
}

/// Sends a request and returns its status and JSON body (null when the body is not JSON).
pub async fn status_and_json(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap_or_else(|e| panic!("request: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// Sends a request that must fail as an internal error: a bare 500 problem response that says
/// nothing of the cause, and in particular does not contain `hidden` (what the corrupt record holds).
pub async fn expect_bare_internal_error(request: reqwest::RequestBuilder, hidden: &str) {
    let response = request.send().await.unwrap_or_else(|e| panic!("request: {e}"));
    let url = response.url().to_string();
    assert_eq!(response.status().as_u16(), 500, "{url}");
    assert_eq!(response.headers()["content-type"], "application/problem+json", "{url}");
    let body = response.text().await.unwrap_or_else(|e| panic!("body: {e}"));
    assert!(!body.contains(hidden), "{url} shows the stored value: {body}");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(problem["type"], "urn:nhs-catalogue:problem:internal", "{url}: {body}");
    assert_eq!(problem["detail"], "an unexpected error occurred; it has been logged", "{url}: {body}");
}

/// A second instance of the app on the same database, as behind a load balancer: its own pool,
/// read model and poller.
pub fn second_instance(app: &TestApp) -> TestApp {
    let db = Database::connect(&app.database.url, 8).unwrap_or_else(|e| panic!("second instance: {e}"));
    let database = TestDatabase { db, url: app.database.url.clone(), cleanup: Cleanup::Nothing };
    // Tokens must verify on every instance: they share the signing secret.
    serve_with_secret(database, app.engine, app.jwt_secret.clone())
}

/// Starts the app on a database prepared by the caller.
pub fn serve(database: TestDatabase, engine: Engine) -> TestApp {
    let jwt_secret: Vec<u8> = (0..48).map(|_| rand_byte()).collect();
    serve_with_secret(database, engine, jwt_secret)
}

/// Starts the app on a seeded database as it runs behind a reverse proxy on 127.0.0.1: the
/// test's requests may name their client address in `X-Forwarded-For`.
pub async fn spawn_app_behind_proxy(engine: Engine) -> Option<TestApp> {
    let database = seeded_database(engine)?;
    let jwt_secret: Vec<u8> = (0..48).map(|_| rand_byte()).collect();
    let proxies = "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"));
    Some(serve_with(database, engine, jwt_secret, proxies, None))
}

fn serve_with_secret(database: TestDatabase, engine: Engine, jwt_secret: Vec<u8>) -> TestApp {
    serve_with(database, engine, jwt_secret, api::client::TrustedProxies::default(), None)
}

/// Starts the app on a seeded database with reset by email on: password reset emails go through
/// the SMTP server at `smtp_url` (see `smtp::SmtpServer`), their links start with the app's own
/// address. `None` when PostgreSQL was skipped.
pub async fn spawn_app_with_mail(engine: Engine, smtp_url: &str) -> Option<TestApp> {
    let database = seeded_database(engine)?;
    let jwt_secret: Vec<u8> = (0..48).map(|_| rand_byte()).collect();
    Some(serve_with(database, engine, jwt_secret, api::client::TrustedProxies::default(), Some(smtp_url)))
}

fn serve_with(
    database: TestDatabase,
    engine: Engine,
    jwt_secret: Vec<u8>,
    trusted_proxies: api::client::TrustedProxies,
    smtp_url: Option<&str>,
) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let reset_mail = smtp_url.map(|smtp_url| {
        let config = api::notify::email::MailConfig {
            smtp_url: smtp_url.to_owned(),
            from: api::notify::email::DEFAULT_FROM.to_owned(),
        };
        api::notify::password_reset::ResetMail::new(&config, &format!("http://127.0.0.1:{port}"))
            .unwrap_or_else(|e| panic!("reset mail: {e}"))
    });
    let secret = api::auth::Secret::new(jwt_secret.clone()).unwrap();
    let auth = api::auth::AuthConfig::new(secret).unwrap();
    // The same wiring as `catalogue serve`: the read model attached and polling. A database that
    // has not been migrated (a readiness test) cannot be loaded and runs without one.
    let read_model = db::read_model::ReadModel::load(&database.db).ok().map(std::sync::Arc::new);
    let poller = read_model.clone().map(|model| db::read_model::Poller::start(database.db.clone(), model));
    let mut state =
        api::state::AppState::new(database.db.clone(), auth).unwrap_or_else(|e| panic!("state: {e}"));
    if let Some(model) = &read_model {
        state = state.with_read_model(model.clone());
    }
    // Webhook receivers in tests are plain http on loopback (an admin must still allow the host).
    let state = state
        .with_trusted_proxies(trusted_proxies)
        .with_metrics_token(Some(METRICS_TOKEN.to_owned()))
        .with_webhooks_allow_http(true)
        .with_password_reset_mail(reset_mail);
    let server = api::server::start(listener, state, Some(2)).unwrap_or_else(|e| panic!("start: {e}"));
    actix_web::rt::spawn(server);
    // The server closes a connection idle for 5 s (actix's keep-alive); a client that reused one
    // as it closed would see an incomplete message. Tests pause that long on a loaded machine
    // (seeding a second app, hashing a password), so the client lets idle connections go first.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client,
        database,
        engine,
        jwt_secret,
        read_model,
        poller,
    }
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

/// Declares tests that run once on SQLite and once on PostgreSQL: for each name, an async
/// function `name(app: TestApp)` must exist beside the macro call; it becomes `name::sqlite`
/// and `name::postgres`.
#[macro_export]
macro_rules! on_both_engines {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[actix_web::test]
                async fn sqlite() {
                    if let Some(app) = $crate::spawn_app($crate::Engine::Sqlite).await {
                        super::$test(app).await
                    }
                }

                #[actix_web::test]
                async fn postgres() {
                    if let Some(app) = $crate::spawn_app($crate::Engine::Postgres).await {
                        super::$test(app).await
                    }
                }
            }
        )*
    };
}

/// Like [`on_both_engines`], for tests of the data layer alone: `name(db: TestDatabase)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[test]
                fn sqlite() {
                    if let Some(db) = $crate::seeded_database($crate::Engine::Sqlite) {
                        super::$test(db)
                    }
                }

                #[test]
                fn postgres() {
                    if let Some(db) = $crate::seeded_database($crate::Engine::Postgres) {
                        super::$test(db)
                    }
                }
            }
        )*
    };
}
