//! The `catalogue` command line. Every option can also be set from the environment.

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

#[derive(Parser, Debug)]
#[command(
    name = "catalogue",
    version,
    about = "The NHS licence and procurement catalogue: national licences, seats, and \"buy against\" standards",
    long_about = "The NHS licence and procurement catalogue.\n\nWith no configuration, `catalogue serve` \
                  creates the SQLite file catalogue.db in the working directory, migrates it, loads the \
                  real seed data and serves on 127.0.0.1:8080. Set DATABASE_URL=postgres://... for PostgreSQL."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct GlobalOptions {
    /// Database: a SQLite file path, or a postgres:// URL.
    #[arg(long, env = "DATABASE_URL", default_value = "catalogue.db", global = true, hide_env_values = true)]
    pub database_url: String,
    /// Log format on standard error.
    #[arg(long, env = "CATALOGUE_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Migrate, seed an empty database, and serve the API.
    Serve(ServeOptions),
    /// Apply pending migrations and exit.
    Migrate,
    /// Load the shipped seed data (idempotent), or generate a synthetic national-scale data set.
    Seed(SeedOptions),
    /// Print the OpenAPI document generated from the code.
    Openapi,
    /// Copy the embedded SQLite database to FILE while the service runs (a consistent online copy,
    /// made 0600). For PostgreSQL use pg_dump: see the README's "Running in production".
    Backup {
        /// Where to write the copy; must not exist yet.
        file: std::path::PathBuf,
    },
    /// Manage users from the console (for the first admin, or when locked out).
    #[command(subcommand)]
    User(UserCommand),
    /// Release lifecycle dates from endoflife.date: sync them, and decide the dates held for an admin.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Organisations from the Organisation Data Service (ODS), the source that owns them.
    #[command(subcommand)]
    Ods(OdsCommand),
    /// Estates: what an organisation runs, from its inventory exports.
    #[command(subcommand)]
    Estate(EstateCommand),
}

#[derive(Subcommand, Debug)]
pub enum EstateCommand {
    /// Import an inventory export as an organisation's snapshot of its source, replacing the
    /// previous one in one transaction. A file with any invalid row is refused whole; --dry-run
    /// lists each row's outcome (matched, unmatched, invalid) and writes nothing.
    Import(EstateImportOptions),
}

#[derive(Args, Debug)]
pub struct EstateImportOptions {
    /// The export, as CSV with a header row.
    pub file: std::path::PathBuf,
    /// ODS code of the organisation that runs it.
    #[arg(long = "org")]
    pub organisation: String,
    /// Which export it is: catalogue (product, release, devices, users, site), defender (a
    /// Microsoft Defender for Endpoint software inventory, DeviceTvmSoftwareInventory) or intune
    /// (an Intune discovered-apps export, AppInvAggregate).
    #[arg(long, default_value = "catalogue")]
    pub source: String,
    /// The day the inventory was taken, YYYY-MM-DD (default today).
    #[arg(long)]
    pub taken_on: Option<chrono::NaiveDate>,
    /// Report each row's outcome and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum LifecycleCommand {
    /// Read the endoflife.date documents that the products' lifecycle sources name and apply what
    /// changed, as one audited transaction. A date that moves by more than a year, or is withdrawn,
    /// is held for an admin (see `holds`) instead of applied. Any fault (network, timeout, 404, a
    /// malformed document, a mapped release missing from it) is reported and changes nothing.
    Sync(LifecycleSyncOptions),
    /// List the dates held for an admin (pending only, unless --all).
    Holds {
        #[arg(long)]
        all: bool,
    },
    /// Apply a held date (refused if the release's date changed since it was held).
    Confirm { id: i64 },
    /// Close a held date, keeping the release as it is.
    Reject { id: i64 },
}

#[derive(Args, Debug)]
pub struct LifecycleSyncOptions {
    /// Read `{product}.json` files (API v1 product documents) from DIR instead of the API.
    #[arg(long, value_name = "DIR")]
    pub from: Option<std::path::PathBuf>,
    /// The endoflife.date API v1 base address.
    #[arg(long, env = "CATALOGUE_ENDOFLIFE_URL", default_value = crate::lifecycle_feed::ENDOFLIFE_API)]
    pub api: String,
    /// Print the changes that would be made, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds before a request is abandoned.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
    /// Attempts per document: timeouts, refused connections, 5xx and 429 are tried again.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub attempts: u32,
}

#[derive(Subcommand, Debug)]
pub enum OdsCommand {
    /// Import an ODS national file: add, rename, re-parent and close organisations in one audited
    /// transaction. Codes the catalogue knows but the file does not are reported, never removed.
    Import(OdsImportOptions),
}

#[derive(Args, Debug)]
pub struct OdsImportOptions {
    /// The file, in its published CSV layout (no header row, every field quoted).
    pub file: std::path::PathBuf,
    /// Which ODS file it is: etr (NHS trusts), epraccur (GP practices), icb (integrated care
    /// boards), subicb (sub-ICB locations, eccg.csv) or succ (successors: each succession is
    /// proposed to an admin, who confirms or rejects it).
    #[arg(long, default_value = "etr", value_parser = ["etr", "epraccur", "icb", "subicb", "succ"])]
    pub kind: String,
    /// Print what the import would add, rename, re-parent, close and propose as successions,
    /// and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. The password is read from CATALOGUE_PASSWORD, or asked for without echo.
    Add(UserAddOptions),
    /// Disable a user: every token they hold stops working at once.
    Disable {
        #[arg(long)]
        email: String,
    },
}

#[derive(Args, Debug)]
pub struct UserAddOptions {
    #[arg(long)]
    pub email: String,
    /// admin, exemplar, officer or auditor.
    #[arg(long, value_parser = ["admin", "exemplar", "officer", "auditor"])]
    pub role: String,
    /// ODS code of the user's organisation (required for officer and exemplar).
    #[arg(long)]
    pub org: Option<String>,
    /// Display name (default: the email).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct ServeOptions {
    /// Address to listen on.
    #[arg(long, env = "CATALOGUE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "CATALOGUE_WORKERS")]
    pub workers: Option<usize>,
    /// Origins allowed to call the API from a browser (CORS), comma-separated; none by default.
    #[arg(long, env = "CATALOGUE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For and
    /// X-Forwarded-Proto are believed; from anyone else those headers are ignored. None by default.
    #[arg(long, env = "CATALOGUE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::client::TrustedProxies,
    /// Bearer token a Prometheus scraper presents for /metrics; without one /metrics is off.
    #[arg(long, env = "CATALOGUE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Database connections in the pool.
    #[arg(long, env = "CATALOGUE_DB_CONNECTIONS", default_value_t = 16)]
    pub db_connections: u32,
    /// Sync release lifecycles from endoflife.date every N hours (24 for daily; 0, the default,
    /// for never). With several instances on PostgreSQL, one runs each sync (an advisory lock).
    #[arg(long, env = "CATALOGUE_LIFECYCLE_SYNC_HOURS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=8760))]
    pub lifecycle_sync_hours: u64,
    /// The endoflife.date API v1 base address the periodic sync reads.
    #[arg(long, env = "CATALOGUE_ENDOFLIFE_URL", default_value = crate::lifecycle_feed::ENDOFLIFE_API)]
    pub endoflife_api: String,
    /// The OCID prefix of the agreements' OCDS releases (`ocds-` and six letters or digits). The
    /// default is a placeholder: register the catalogue's own prefix before publishing.
    #[arg(long, env = "CATALOGUE_OCID_PREFIX", default_value = crate::ocds::DEFAULT_OCID_PREFIX, value_parser = ocid_prefix)]
    pub ocid_prefix: String,
    /// The SMTP server email notifications go through, such as smtp://mail.example:25,
    /// smtp://host:587?tls=required or smtps://user:password@host; without one, email
    /// subscriptions wait undelivered (webhooks are delivered regardless).
    #[arg(long, env = "CATALOGUE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The From address of notification emails.
    #[arg(long, env = "CATALOGUE_MAIL_FROM", default_value = "catalogue@localhost")]
    pub mail_from: String,
    /// The address people reach the service at, such as https://catalogue.example.nhs.uk: links
    /// in emails start with it (a password reset link). With --smtp-url it turns on "Forgotten
    /// your password?" by email; without either, people ask the national team instead.
    #[arg(long, env = "CATALOGUE_PUBLIC_URL", value_parser = crate::notify::password_reset::parse_public_url)]
    pub public_url: Option<String>,
    /// Let webhook URLs be plain http (development and tests only: production is https only).
    #[arg(long, env = "CATALOGUE_WEBHOOKS_ALLOW_HTTP", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub webhooks_allow_http: bool,
    /// Seconds a worker holds a delivery it took; another instance takes it up after that if this
    /// one died. Must be well over the webhook timeout (10 s).
    #[arg(long, env = "CATALOGUE_DELIVERY_LEASE_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(15..=3600))]
    pub delivery_lease_seconds: u64,
    /// Seconds before the first retry of a failed delivery (doubling after each failure, with
    /// jitter, up to two hours; retried for a day, then dead-lettered).
    #[arg(long, env = "CATALOGUE_DELIVERY_FIRST_RETRY_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub delivery_first_retry_seconds: u64,
    /// Do not run the delivery worker in this instance (another instance, or none, delivers).
    #[arg(long, env = "CATALOGUE_NO_DELIVERY", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_delivery: bool,
}

fn ocid_prefix(text: &str) -> Result<String, String> {
    if crate::ocds::valid_prefix(text) {
        Ok(text.to_owned())
    } else {
        Err("an OCID prefix is ocds- and six lower-case letters or digits, such as ocds-213czf".into())
    }
}

#[derive(Args, Debug)]
pub struct SeedOptions {
    /// Generate a national-scale synthetic data set (for benchmarks) on top of the shipped seeds.
    #[arg(long)]
    pub synthetic: bool,
    /// Synthetic organisations.
    #[arg(long, default_value_t = 25_000, requires = "synthetic")]
    pub organisations: usize,
    /// Synthetic products.
    #[arg(long, default_value_t = 20_000, requires = "synthetic")]
    pub products: usize,
    /// Synthetic entitlement lines (20 to an agreement).
    #[arg(long, default_value_t = 500, requires = "synthetic")]
    pub entitlements: usize,
    /// Synthetic live allocations.
    #[arg(long, default_value_t = 200_000, requires = "synthetic")]
    pub allocations: usize,
    /// Synthetic organisations with an estate snapshot (default: a tenth of the organisations).
    #[arg(long, requires = "synthetic")]
    pub estates: Option<usize>,
    /// Seed of the random generator: the same seed gives the same data set.
    #[arg(long, default_value_t = 1, requires = "synthetic")]
    pub seed: u64,
}
