//! Reading endoflife.date product documents for `catalogue lifecycle sync`: from the API v1
//! (`{base}/products/{name}`, over rustls, with timeouts and retries) or from a directory of
//! files named `{name}.json`. Every fault (network, timeout, 404, a body too large, a malformed
//! document) is an error naming the document, and nothing is synced when any document fails.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use db::lifecycle::{EolDocument, Fetched};

/// The public API the catalogue reads by default.
pub const ENDOFLIFE_API: &str = "https://endoflife.date/api/v1";
/// A product document is tens of kilobytes; anything far larger is not one.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// Where documents come from.
pub enum FeedSource {
    Api { base_url: String, timeout: Duration, attempts: u32 },
    Directory(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{product}: {url} answered {status}")]
    Status { product: String, url: String, status: u16 },
    #[error("{product}: could not read {url}: {reason}")]
    Network { product: String, url: String, reason: String },
    #[error("{product}: the document at {location} is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { product: String, location: String },
    #[error("{product}: could not read {location}: {reason}")]
    File { product: String, location: String, reason: String },
    #[error("{0}")]
    Malformed(String),
}

/// Reads one document per product name, in order; the first failure stops and is returned.
pub async fn fetch_all(
    source: &FeedSource,
    products: &[String],
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Fetched>, FeedError> {
    let client = match source {
        FeedSource::Api { timeout, .. } => Some(
            reqwest::Client::builder()
                .use_rustls_tls()
                .timeout(*timeout)
                .connect_timeout(*timeout)
                .user_agent(concat!("nhs-licence-catalogue/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| FeedError::Network {
                    product: String::new(),
                    url: String::new(),
                    reason: e.to_string(),
                })?,
        ),
        FeedSource::Directory(_) => None,
    };
    let mut fetched = Vec::with_capacity(products.len());
    for (done, product) in products.iter().enumerate() {
        let (text, location) = match (source, &client) {
            (FeedSource::Api { base_url, attempts, .. }, Some(client)) => {
                let url = format!("{}/products/{product}", base_url.trim_end_matches('/'));
                (fetch_with_retries(client, product, &url, (*attempts).max(1)).await?, url)
            }
            (FeedSource::Directory(dir), _) => read_file(dir, product)?,
            (FeedSource::Api { .. }, None) => unreachable!("an API source always has a client"),
        };
        let document = EolDocument::parse(product, &text).map_err(|e| FeedError::Malformed(e.to_string()))?;
        fetched.push(Fetched { document, location, fetched_at: Utc::now() });
        progress(done + 1, products.len());
    }
    Ok(fetched)
}

fn read_file(dir: &std::path::Path, product: &str) -> Result<(String, String), FeedError> {
    // Product names come from the mapping, which admits only [a-z0-9.-]: no path can escape `dir`.
    let path = dir.join(format!("{product}.json"));
    let location = path.display().to_string();
    let file_error =
        |reason: String| FeedError::File { product: product.to_owned(), location: location.clone(), reason };
    let size = std::fs::metadata(&path).map_err(|e| file_error(e.to_string()))?.len();
    if size > MAX_DOCUMENT_BYTES as u64 {
        return Err(FeedError::TooLarge { product: product.to_owned(), location });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| file_error(e.to_string()))?;
    Ok((text, location))
}

/// Retries what may pass (timeouts, refused connections, 5xx, 429) with a growing pause; a 404
/// or another 4xx is final at once.
async fn fetch_with_retries(
    client: &reqwest::Client,
    product: &str,
    url: &str,
    attempts: u32,
) -> Result<String, FeedError> {
    let mut attempt = 1;
    loop {
        match fetch_once(client, product, url).await {
            Ok(text) => return Ok(text),
            Err(error) if attempt < attempts && retriable(&error) => {
                tracing::warn!(%error, attempt, "endoflife.date fetch failed; retrying");
                tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(attempt - 1))).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

fn retriable(error: &FeedError) -> bool {
    match error {
        FeedError::Network { .. } => true,
        FeedError::Status { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}

/// An error with the causes beneath it ("error sending request" alone does not say "connection
/// refused").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

async fn fetch_once(client: &reqwest::Client, product: &str, url: &str) -> Result<String, FeedError> {
    let network = |e: reqwest::Error| FeedError::Network {
        product: product.to_owned(),
        url: url.to_owned(),
        reason: if e.is_timeout() { "timed out".to_owned() } else { with_causes(&e) },
    };
    let mut response = client.get(url).send().await.map_err(network)?;
    let status = response.status();
    if !status.is_success() {
        return Err(FeedError::Status {
            product: product.to_owned(),
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let too_large = || FeedError::TooLarge { product: product.to_owned(), location: url.to_owned() };
    if response.content_length().is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body)
        .map_err(|_| FeedError::Malformed(format!("{product}: the document at {url} is not UTF-8")))
}

/// A whole sync: reads every document the mapping names, then plans (and unless `dry_run`,
/// applies) the changes in one transaction. A failure anywhere changes nothing.
pub async fn sync(
    db: &db::Database,
    source: &FeedSource,
    dry_run: bool,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<db::lifecycle::SyncPlan> {
    let names = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || db.read(db::lifecycle::products_to_fetch)).await??
    };
    let documents = fetch_all(source, &names, progress).await?;
    let db = db.clone();
    let plan = tokio::task::spawn_blocking(move || {
        db::lifecycle::sync(&db, &db::Actor::system("lifecycle-sync"), &documents, dry_run)
    })
    .await??;
    Ok(plan)
}

/// The advisory lock key of the periodic sync ("lifecycle" in ASCII): one instance syncs at a time.
pub const PERIODIC_SYNC_LOCK: i64 = 0x6c69_6665_6379_636c;

/// Starts a thread that syncs every `every`, on one instance at a time; each outcome is logged.
pub fn start_periodic_sync(db: db::Database, base_url: String, every: Duration) -> std::io::Result<()> {
    std::thread::Builder::new().name("lifecycle-sync".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => return tracing::error!(%error, "the periodic lifecycle sync could not start"),
        };
        let source = FeedSource::Api { base_url, timeout: Duration::from_secs(20), attempts: 3 };
        loop {
            std::thread::sleep(every);
            let outcome =
                db.run_alone(PERIODIC_SYNC_LOCK, || runtime.block_on(sync(&db, &source, false, |_, _| {})));
            match outcome {
                Ok(Some(Ok(plan))) => tracing::info!(
                    added = plan.count("add"),
                    updated = plan.count("update"),
                    held = plan.count("hold"),
                    "lifecycle sync done"
                ),
                Ok(Some(Err(error))) => tracing::warn!(%error, "lifecycle sync failed; nothing changed"),
                Ok(None) => tracing::info!("lifecycle sync running on another instance"),
                Err(error) => tracing::warn!(%error, "lifecycle sync could not take its lock"),
            }
        }
    })?;
    Ok(())
}
