//! What each `catalogue` command does. The HTTP service itself is in `server.rs` and `app.rs`.

use anyhow::anyhow;
use db::Database;
use indicatif::{ProgressBar, ProgressStyle};

use crate::auth::{AuthConfig, password, secret};
use crate::cli::{
    Cli, Command, EstateCommand, EstateImportOptions, LifecycleCommand, LifecycleSyncOptions, OdsCommand,
    OdsImportOptions, SeedOptions, ServeOptions, UserAddOptions, UserCommand,
};
use crate::server;
use crate::state::AppState;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let database_url = cli.global.database_url;
    match cli.command {
        Command::Openapi => {
            print!("{}", crate::openapi::to_pretty_json(&crate::app::openapi_document()));
            Ok(())
        }
        Command::Migrate => {
            let db = Database::connect(&database_url, 1)?;
            let applied = db.migrate()?;
            eprintln!("{applied} migration(s) applied to the {} database", db.engine().name());
            Ok(())
        }
        Command::Seed(options) => seed(&database_url, options),
        Command::Serve(options) => serve(&database_url, options),
        Command::Backup { file } => backup(&database_url, &file),
        Command::User(UserCommand::Add(options)) => add_user(&database_url, options),
        Command::User(UserCommand::Disable { email }) => disable_user(&database_url, &email),
        Command::Lifecycle(LifecycleCommand::Sync(options)) => lifecycle_sync(&database_url, options),
        Command::Lifecycle(LifecycleCommand::Holds { all }) => lifecycle_holds(&database_url, all),
        Command::Lifecycle(LifecycleCommand::Confirm { id }) => decide_hold(&database_url, id, true),
        Command::Lifecycle(LifecycleCommand::Reject { id }) => decide_hold(&database_url, id, false),
        Command::Ods(OdsCommand::Import(options)) => ods_import(&database_url, options),
        Command::Estate(EstateCommand::Import(options)) => estate_import(&database_url, options),
    }
}

/// The signing secret for this database (see `auth::secret::load`).
fn auth_config(db: &Database, database_url: &str) -> anyhow::Result<AuthConfig> {
    let sqlite_file = match db.engine() {
        db::Engine::Sqlite => Some(std::path::PathBuf::from(db::connection::sqlite_path(database_url))),
        db::Engine::Postgres => None,
    };
    let secret = secret::load(std::env::var("CATALOGUE_JWT_SECRET").ok(), sqlite_file.as_deref())?;
    AuthConfig::new(secret)
}

/// On the very first start, one admin with a random password shown once, here, and never again,
/// unless an admin exists already (made by `catalogue user add`; a disabled one counts too, so
/// disabling every admin never conjures a new one).
fn ensure_first_admin(db: &Database) -> anyhow::Result<()> {
    if db.read(db::users::admin_exists)? {
        return Ok(());
    }
    let secret = password::random_password();
    let new = db::users::NewUser {
        email: "admin@catalogue.local".into(),
        display_name: "First administrator".into(),
        role: db::users::Role::Admin,
        organisation_code: None,
        password_hash: password::hash(&secret)?,
    };
    let user = db::users::create(db, &db::Actor::system("first-start"), new)?;
    eprintln!(
        "\nCreated the first admin: {}\n  password: {secret}\nIt is shown this once. Sign in with POST /v1/auth/token and change it \
         with POST /v1/me/password.\n",
        user.email
    );
    Ok(())
}

fn add_user(database_url: &str, options: UserAddOptions) -> anyhow::Result<()> {
    let db = prepare_database(database_url, 1)?;
    let secret = match std::env::var("CATALOGUE_PASSWORD") {
        Ok(value) => value,
        Err(_) => rpassword::prompt_password(format!("Password for {}: ", options.email))?,
    };
    if let Some(weakness) = password::weakness(&secret, &options.email) {
        anyhow::bail!("{weakness}");
    }
    let role =
        db::users::Role::parse(&options.role).ok_or_else(|| anyhow!("unknown role {}", options.role))?;
    let new = db::users::NewUser {
        display_name: options.name.unwrap_or_else(|| options.email.clone()),
        email: options.email,
        role,
        organisation_code: options.org.map(|c| c.to_uppercase()),
        password_hash: password::hash(&secret)?,
    };
    let user = db::users::create(&db, &db::Actor::system("cli"), new)?;
    eprintln!("Added {} ({}) with id {}.", user.email, user.role.as_str(), user.id);
    Ok(())
}

fn disable_user(database_url: &str, email: &str) -> anyhow::Result<()> {
    let db = server::open_database(database_url, 1)?;
    let id = db.read(|conn| db::users::find_id_by_email(conn, email))?;
    let changes = db::users::UserChanges { disabled: Some(true), ..Default::default() };
    db::users::update(&db, &db::Actor::system("cli"), id, changes, db::Precondition::Exists)?;
    eprintln!("Disabled {email}: their tokens no longer work.");
    Ok(())
}

/// Opens and migrates the database, and loads the shipped seeds into an empty one.
fn prepare_database(database_url: &str, connections: u32) -> anyhow::Result<Database> {
    let db = server::open_database(database_url, connections)?;
    if db.read(db::seed::is_empty)? {
        eprintln!("The database is empty: loading the shipped seed data.");
        load_shipped_seeds(&db)?;
    }
    Ok(db)
}

fn serve(database_url: &str, options: ServeOptions) -> anyhow::Result<()> {
    let db = prepare_database(database_url, options.db_connections)?;
    ensure_first_admin(&db)?;
    let auth = auth_config(&db, database_url)?;
    let listener = server::bind(&options.bind)?;
    let started = std::time::Instant::now();
    let model = std::sync::Arc::new(db::read_model::ReadModel::load(&db)?);
    let _poller = db::read_model::Poller::start(db.clone(), model.clone());
    if options.lifecycle_sync_hours > 0 {
        let every = std::time::Duration::from_secs(options.lifecycle_sync_hours * 3600);
        crate::lifecycle_feed::start_periodic_sync(db.clone(), options.endoflife_api.clone(), every)?;
    }
    if !options.no_delivery {
        let mail = options
            .smtp_url
            .clone()
            .map(|smtp_url| crate::notify::email::MailConfig { smtp_url, from: options.mail_from.clone() });
        let mut config = crate::notify::worker::WorkerConfig::new(mail, options.webhooks_allow_http);
        config.lease = std::time::Duration::from_secs(options.delivery_lease_seconds);
        config.retry.first_wait = std::time::Duration::from_secs(options.delivery_first_retry_seconds);
        crate::notify::worker::start(db.clone(), config)?;
    }
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "read model loaded");
    tracing::info!(address = %options.bind, engine = db.engine().name(), "serving");
    let reset_mail = match (&options.smtp_url, &options.public_url) {
        (Some(smtp_url), Some(public_url)) => {
            let config = crate::notify::email::MailConfig {
                smtp_url: smtp_url.clone(),
                from: options.mail_from.clone(),
            };
            Some(crate::notify::password_reset::ResetMail::new(&config, public_url)?)
        }
        _ => {
            tracing::info!("password reset by email is off: it needs both --smtp-url and --public-url");
            None
        }
    };
    let state = AppState::new(db, auth)?
        .with_password_reset_mail(reset_mail)
        .with_read_model(model)
        .with_cors_origins(options.cors_origins)
        .with_trusted_proxies(options.trusted_proxies)
        .with_metrics_token(options.metrics_token)
        .with_ocid_prefix(&options.ocid_prefix)
        .with_webhooks_allow_http(options.webhooks_allow_http);
    actix_web::rt::System::new().block_on(async move {
        server::start(listener, state, options.workers)?.await?;
        Ok(())
    })
}

fn backup(database_url: &str, file: &std::path::Path) -> anyhow::Result<()> {
    let db = server::open_database(database_url, 1)?;
    db::backup::sqlite_copy(&db, file)?;
    eprintln!("Backed up the database to {} (mode 0600).", file.display());
    Ok(())
}

fn seed(database_url: &str, options: SeedOptions) -> anyhow::Result<()> {
    let db = server::open_database(database_url, 2)?;
    let counts = load_shipped_seeds(&db)?;
    if options.synthetic {
        let size = db::synthetic::SyntheticSize {
            organisations: options.organisations,
            products: options.products,
            entitlements: options.entitlements,
            allocations: options.allocations,
            estates: options.estates.unwrap_or(options.organisations / 10),
            seed: options.seed,
        };
        let bar = progress_bar("synthetic");
        let started = std::time::Instant::now();
        db::synthetic::generate(&db, size, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
        bar.finish_and_clear();
        eprintln!(
            "Generated {} organisations, {} products, {} entitlements, {} estates and {} allocations (seed {}) \
             in {:.1}s.",
            size.organisations,
            size.products,
            size.entitlements,
            size.estates,
            size.allocations,
            size.seed,
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    eprintln!(
        "Seeded {} organisations, {} products, {} agreements ({} entitlements), {} standards, {} advisories \
         (records already present were left as they were).",
        counts.organisations,
        counts.products,
        counts.agreements,
        counts.entitlements,
        counts.standards,
        counts.advisories
    );
    Ok(())
}

fn load_shipped_seeds(db: &Database) -> anyhow::Result<db::seed::SeedCounts> {
    let bar = progress_bar("seed data");
    let counts = db::seed::load_shipped(db, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    Ok(counts)
}

fn lifecycle_sync(database_url: &str, options: LifecycleSyncOptions) -> anyhow::Result<()> {
    use crate::lifecycle_feed::FeedSource;
    use db::lifecycle::PlannedChange;
    let db = prepare_database(database_url, 2)?;
    let source = match options.from {
        Some(dir) => FeedSource::Directory(dir),
        None => FeedSource::Api {
            base_url: options.api,
            timeout: std::time::Duration::from_secs(options.timeout),
            attempts: options.attempts,
        },
    };
    let bar = progress_bar("documents");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let plan = runtime.block_on(crate::lifecycle_feed::sync(&db, &source, options.dry_run, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }));
    bar.finish_and_clear();
    let plan = plan?;
    let label = |product_id: i64| {
        db.read(|conn| db::products::get(conn, product_id, crate::routes::today()))
            .map(|p| p.label())
            .unwrap_or_else(|_| format!("product {product_id}"))
    };
    let show = |date: Option<chrono::NaiveDate>| date.map_or("none".to_owned(), |d| d.to_string());
    for change in &plan.changes {
        match change {
            PlannedChange::Add { product_id, release, dates, .. } => println!(
                "add     {} {release}: released {}, security support to {}, paid updates to {}",
                label(*product_id),
                show(dates.released_on),
                show(dates.security_support_ends_on),
                show(dates.extended_updates_end_on)
            ),
            PlannedChange::Update { product_id, release, field, from, to, .. } => {
                println!("update  {} {release}: {field} {} -> {}", label(*product_id), show(*from), show(*to))
            }
            PlannedChange::Hold { product_id, release, field, from, to, .. } => println!(
                "hold    {} {release}: {field} {} -> {} (moves more than a year: an admin decides)",
                label(*product_id),
                show(*from),
                show(*to)
            ),
        }
    }
    let verb = if options.dry_run { "Would add" } else { "Added" };
    eprintln!(
        "{verb} {} release(s), {} {} date(s), held {} for an admin; {} release(s) unchanged.{}",
        plan.count("add"),
        if options.dry_run { "update" } else { "updated" },
        plan.count("update"),
        plan.count("hold"),
        plan.unchanged,
        if options.dry_run { " Dry run: nothing was written." } else { "" }
    );
    Ok(())
}

fn lifecycle_holds(database_url: &str, all: bool) -> anyhow::Result<()> {
    let db = server::open_database(database_url, 1)?;
    let holds = db.read(|conn| db::lifecycle::holds(conn, all))?;
    if holds.is_empty() {
        eprintln!("No held dates{}.", if all { "" } else { " waiting" });
    }
    let show = |date: Option<chrono::NaiveDate>| date.map_or("none".to_owned(), |d| d.to_string());
    for hold in holds {
        println!(
            "{:>5}  {:<9}  release {}  {}: {} -> {}  ({})",
            hold.id,
            // as_str, because Display ignores the column's padding.
            hold.status.as_str(),
            hold.release_id,
            hold.field,
            show(hold.current_value),
            show(hold.proposed_value),
            hold.source
        );
    }
    Ok(())
}

fn decide_hold(database_url: &str, id: i64, confirm: bool) -> anyhow::Result<()> {
    let db = server::open_database(database_url, 1)?;
    let hold = db::lifecycle::decide_hold(&db, &db::Actor::system("cli"), id, confirm)?;
    eprintln!("Hold {} is {}.", hold.id, hold.status);
    Ok(())
}

/// Reads and parses the file first (a bad file changes nothing), then plans or applies it. The
/// plan goes to standard output, the progress and the summary to standard error.
fn ods_import(database_url: &str, options: OdsImportOptions) -> anyhow::Result<()> {
    use anyhow::Context;
    let kind = db::ods::OdsFileKind::parse(&options.kind)
        .ok_or_else(|| anyhow!("unknown ODS file kind {}", options.kind))?;
    let bytes =
        std::fs::read(&options.file).with_context(|| format!("cannot read {}", options.file.display()))?;
    let file = db::ods::read(kind, &bytes).with_context(|| options.file.display().to_string())?;
    let db = server::open_database(database_url, 1)?;
    let started = std::time::Instant::now();
    let plan = if options.dry_run {
        db.read(|conn| db::ods::plan_file(conn, &file))?
    } else {
        let bar = progress_bar("ods import");
        let plan = db::ods::apply_file(&db, &db::Actor::system("ods-import"), &file, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
        bar.finish_and_clear();
        plan
    };
    print!("{}", describe_plan(&plan));
    eprintln!(
        "{} the ODS {} file ({} records, {} open) in {:.1}s: {} added, {} renamed, {} re-parented, {} closed, \
         {} otherwise updated, {} successions proposed, {} unchanged; {} known here but not to ODS (kept).",
        if options.dry_run { "Dry run, nothing written: planned" } else { "Imported" },
        kind.as_str(),
        plan.records,
        plan.open_records,
        started.elapsed().as_secs_f64(),
        plan.added.len(),
        plan.renamed.len(),
        plan.reparented.len(),
        plan.closed.len(),
        plan.updated.len(),
        plan.succeeded.len(),
        plan.unchanged,
        plan.unknown_to_ods.len(),
    );
    Ok(())
}

/// Streams the file (it is never read whole: a national Defender export has millions of rows),
/// with a spinner counting rows; the per-row outcomes go to standard output, the summary to
/// standard error.
fn estate_import(database_url: &str, options: EstateImportOptions) -> anyhow::Result<()> {
    use anyhow::Context;
    let source = db::vocabulary::EstateSource::parse(&options.source)
        .ok_or_else(|| anyhow!("unknown source {} (catalogue, defender or intune)", options.source))?;
    let file = std::fs::File::open(&options.file)
        .with_context(|| format!("cannot read {}", options.file.display()))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let db = server::open_database(database_url, 1)?;
    let taken_on = options.taken_on.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let started = std::time::Instant::now();
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} {spinner} {pos} rows {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message("estate import");
    let mut progress = |rows: i64| bar.set_position(rows.max(0) as u64);
    let outcome = if options.dry_run {
        db.read(|conn| {
            db::estates::plan(conn, &options.organisation, source, taken_on, reader, &mut progress)
                .map(|plan| plan.report)
        })
    } else {
        db::estates::import(
            &db,
            &db::Actor::system("estate-import"),
            &options.organisation,
            source,
            taken_on,
            reader,
            &mut progress,
        )
    };
    bar.finish_and_clear();
    let report = outcome.with_context(|| options.file.display().to_string())?;
    for row in &report.rows {
        let what = match &row.detail {
            db::estates::RowOutcome::Matched { product, release, .. } => match release {
                Some(release) => format!("matched {product} {release}"),
                None => format!("matched {product}"),
            },
            db::estates::RowOutcome::Unmatched => "unmatched (queued for the national team)".to_owned(),
            db::estates::RowOutcome::Invalid { reason } => format!("invalid: {reason}"),
        };
        println!("line {}: {} {}: {what}", row.line, row.name, row.version);
    }
    eprintln!(
        "{} {} rows of the {} export for {} in {:.1}s: {} matched ({} products), {} unmatched, {} invalid.",
        if options.dry_run { "Dry run, nothing written: read" } else { "Imported" },
        report.rows_read,
        source.as_str(),
        report.organisation_code,
        started.elapsed().as_secs_f64(),
        report.rows_matched,
        report.products,
        report.rows_unmatched,
        report.rows_invalid,
    );
    Ok(())
}

/// One line per change, grouped by what happens.
fn describe_plan(plan: &db::ods::ImportPlan) -> String {
    let mut out = String::new();
    let none = || "-".to_owned();
    for added in &plan.added {
        let closed = added.closed_on.map(|d| format!(" (closed {d})")).unwrap_or_default();
        out.push_str(&format!("add        {} {}{closed}\n", added.code, added.name));
    }
    for change in &plan.renamed {
        let (from, to) = (change.from.clone().unwrap_or_else(none), change.to.clone().unwrap_or_else(none));
        out.push_str(&format!("rename     {} {from:?} -> {to:?}\n", change.code));
    }
    for change in &plan.reparented {
        let (from, to) = (change.from.clone().unwrap_or_else(none), change.to.clone().unwrap_or_else(none));
        out.push_str(&format!("re-parent  {} {from} -> {to}\n", change.code));
    }
    for closure in &plan.closed {
        out.push_str(&format!("close      {} {} on {}\n", closure.code, closure.name, closure.closed_on));
    }
    for update in &plan.updated {
        out.push_str(&format!("update     {} {}\n", update.code, update.fields.join(", ")));
    }
    for code in &plan.closed_here_open_in_ods {
        out.push_str(&format!("kept closed {code} (closed here, open in ODS)\n"));
    }
    for code in &plan.unknown_to_ods {
        out.push_str(&format!("not in ODS {code} (kept)\n"));
    }
    for succession in &plan.succeeded {
        out.push_str(&format!(
            "succeed    {} -> {} from {} (proposed, for an admin to confirm)\n",
            succession.predecessor, succession.successor, succession.effective_on
        ));
    }
    for succession in &plan.successor_unknown {
        out.push_str(&format!(
            "not proposed {} -> {} (the successor is not in the catalogue)\n",
            succession.predecessor, succession.successor
        ));
    }
    out
}

/// A progress bar on standard error; hidden when that is not a terminal (CI logs, pipes).
pub fn progress_bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}
