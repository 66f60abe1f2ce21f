//! The files the pages need, carried by the binary: NHS.UK frontend (with its licence, under
//! `api/assets/nhsuk/`) and the catalogue's own few. Served under a path that names a digest of
//! their contents, so they can be cached for a year and a new build is never served stale.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $content_type:literal),* $(,)?) => {
        &[$(Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }),*]
    };
}

const ASSETS: &[Asset] = assets! {
    "nhsuk/nhsuk-frontend.min.css" => "text/css; charset=utf-8",
    "nhsuk/nhsuk-frontend.min.js" => "text/javascript; charset=utf-8",
    "nhsuk/images/favicon.ico" => "image/x-icon",
    "nhsuk/images/favicon.svg" => "image/svg+xml",
    "nhsuk/images/nhsuk-icon-arrow-down.svg" => "image/svg+xml",
    "nhsuk/images/nhsuk-icon-arrow-up-down.svg" => "image/svg+xml",
    "nhsuk/images/nhsuk-icon-arrow-up.svg" => "image/svg+xml",
    "nhsuk/images/nhsuk-icon-cross.svg" => "image/svg+xml",
    "nhsuk/LICENCE.md" => "text/markdown; charset=utf-8",
    "app/app.css" => "text/css; charset=utf-8",
    "app/body.js" => "text/javascript; charset=utf-8",
    "app/init.mjs" => "text/javascript; charset=utf-8",
    "app/session-timeout.mjs" => "text/javascript; charset=utf-8",
};

/// `/assets/<digest>`: the prefix of every asset URL in this build.
pub fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let mut digest = Sha256::new();
        for asset in ASSETS {
            digest.update(asset.path.as_bytes());
            digest.update(asset.bytes);
        }
        let hex: String = digest.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("/assets/{hex}")
    })
}

/// `GET /assets/{digest}/{path}` (registered in `web::ROUTES`): the asset, if `digest` is this build's.
pub async fn serve(path: web::Path<(String, String)>) -> HttpResponse {
    let (digest, path) = path.into_inner();
    let current = prefix().rsplit('/').next().unwrap_or_default();
    match ASSETS.iter().find(|asset| asset.path == path) {
        Some(asset) if digest == current => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(asset.bytes),
        _ => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body("no such asset"),
    }
}
