//! What each `catalogue` command does. The HTTP service itself is in `server.rs` and `app.rs`.

use anyhow::anyhow;
use db::Database;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Cli, Command, SeedOptions, ServeOptions};
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
            let db = Database::connect(&database_url, 1).map_err(|e| anyhow!("{e}"))?;
            let applied = db.migrate().map_err(|e| anyhow!("{e}"))?;
            eprintln!("{applied} migration(s) applied to the {} database", db.engine().name());
            Ok(())
        }
        Command::Seed(options) => seed(&database_url, options),
        Command::Serve(options) => serve(&database_url, options),
    }
}

fn serve(database_url: &str, options: ServeOptions) -> anyhow::Result<()> {
    let db = server::open_database(database_url, options.db_connections)?;
    let empty = db.read(db::seed::is_empty).map_err(|e| anyhow!("{e}"))?;
    if empty {
        eprintln!("The database is empty: loading the shipped seed data.");
        load_shipped_seeds(&db)?;
    }
    let listener = server::bind(&options.bind)?;
    tracing::info!(address = %options.bind, engine = db.engine().name(), "serving");
    let state = AppState::new(db);
    actix_web::rt::System::new().block_on(async move {
        server::start(listener, state, options.workers)?.await?;
        Ok(())
    })
}

fn seed(database_url: &str, _options: SeedOptions) -> anyhow::Result<()> {
    let db = server::open_database(database_url, 2)?;
    let counts = load_shipped_seeds(&db)?;
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
    })
    .map_err(|e| anyhow!("{e}"))?;
    bar.finish_and_clear();
    Ok(counts)
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
