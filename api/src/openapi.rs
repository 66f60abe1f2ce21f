//! The OpenAPI document: its top level, and the route table derived from it that answers
//! unsupported methods on known paths with 405 and `Allow`.

use actix_web::http::Method;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "NHS licence and procurement catalogue",
        description = "Which software is licensed nationally for each NHS organisation in England, how many \
                       seats are left, and which \"buy against\" standard a local purchase must meet.",
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "/", description = "This server")),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Tokens and the signed-in user"),
        (name = "users", description = "User administration (the national team)"),
        (name = "organisations", description = "NHS organisations by ODS code"),
        (name = "products", description = "Suppliers and products with their lifecycle"),
        (name = "agreements", description = "National licence agreements and their entitlement lines"),
        (name = "coverage", description = "Licensed nationally, buy locally against a standard, or no guidance"),
        (name = "allocations", description = "The seat ledger: claims, releases, bulk claims and successions"),
        (name = "standards", description = "\"Buy against\" standards: versions, requirements and assessments"),
        (name = "purchases", description = "Local purchases against a standard, with declarations"),
        (name = "advisories", description = "Security advisories, exposure and organisations' responses"),
        (name = "risk", description = "Risk acceptances for unsupported products"),
        (name = "audit", description = "The append-only audit log (read-only)"),
        (name = "reports", description = "Utilisation, obligations and other national reports"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

pub fn to_pretty_json(document: &utoipa::openapi::OpenApi) -> String {
    let mut json = document.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// Every documented path template with the methods it serves.
pub struct RouteTable {
    routes: Vec<(Vec<String>, Vec<Method>)>,
}

impl RouteTable {
    pub fn from_document(document: &utoipa::openapi::OpenApi) -> RouteTable {
        let routes = document
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path.split('/').map(str::to_owned).collect();
                let methods = [
                    (Method::GET, &item.get),
                    (Method::PUT, &item.put),
                    (Method::POST, &item.post),
                    (Method::DELETE, &item.delete),
                    (Method::OPTIONS, &item.options),
                    (Method::HEAD, &item.head),
                    (Method::PATCH, &item.patch),
                    (Method::TRACE, &item.trace),
                ]
                .into_iter()
                .filter(|(_, operation)| operation.is_some())
                .map(|(method, _)| method)
                .collect();
                (segments, methods)
            })
            .collect();
        RouteTable { routes }
    }

    /// The methods served on `path`, or none when no documented path matches it.
    pub fn allowed(&self, path: &str) -> Option<&[Method]> {
        let wanted: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .find(|(template, _)| {
                template.len() == wanted.len()
                    && template
                        .iter()
                        .zip(&wanted)
                        .all(|(t, w)| (t.starts_with('{') && !w.is_empty()) || t == w)
            })
            .map(|(_, methods)| methods.as_slice())
    }

    /// The error for a request no route took: 405 with `Allow` on a known path, else 404.
    pub fn miss(&self, method: &Method, path: &str) -> ApiError {
        match self.allowed(path) {
            Some(methods) if !methods.contains(method) => ApiError::MethodNotAllowed {
                allow: methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", "),
            },
            _ => ApiError::NotFound(format!("no resource at {path}")),
        }
    }
}

/// Problem responses shared by operations, so that every status a client can receive is in the
/// document with the problem schema.
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident { $($variant:ident = $status:literal $(+ $header:literal)?: $description:literal),+ $(,)? })*) => {
        $(
            $(#[$doc])*
            #[derive(utoipa::IntoResponses)]
            #[allow(dead_code)]
            pub enum $name {
                $(
                    #[response(
                        status = $status,
                        description = $description,
                        content_type = "application/problem+json"
                        $(, headers(($header = u64, description = "Seconds to wait before trying again")))?
                    )]
                    $variant(Problem),
                )+
            }
        )*
    };
}

problem_responses! {
    /// Errors of an authenticated read.
    ReadErrors {
        BadRequest = 400: "A query parameter is not valid",
        Unauthorized = 401: "No valid bearer token (missing, expired, revoked, or of a disabled user)",
        Forbidden = 403: "The caller's role may not do this",
        NotFound = 404: "No such resource, or not visible to the caller",
        Internal = 500: "An unexpected error; the detail shows nothing of it",
        Unavailable = 503: "The database cannot be reached; try again later",
    }
    /// Errors of an authenticated write.
    WriteErrors {
        BadRequest = 400: "Malformed JSON or an invalid parameter",
        Unauthorized = 401: "No valid bearer token (missing, expired, revoked, or of a disabled user)",
        Forbidden = 403: "The caller's role may not do this",
        NotFound = 404: "No such resource, or not visible to the caller",
        Conflict = 409: "The request conflicts with the current state",
        PayloadTooLarge = 413: "The body is larger than the limit",
        UnsupportedMediaType = 415: "The body is not application/json",
        Unprocessable = 422: "The body is well formed but not acceptable (unknown field, invalid value)",
        Internal = 500: "An unexpected error; the detail shows nothing of it",
        Unavailable = 503: "The database cannot be reached; try again later",
    }
    /// Errors of a password change, beyond those of any write.
    PasswordChangeErrors {
        TooManyRequests = 429 + "Retry-After": "Too many wrong current passwords for this account; see Retry-After",
        Busy = 503 + "Retry-After": "The database cannot be reached, or too many password checks are waiting (then with Retry-After)",
    }
    /// Errors of an update with optimistic concurrency, beyond those of any write.
    PreconditionErrors {
        PreconditionFailed = 412: "If-Match does not match the current ETag: someone changed it first",
        PreconditionRequired = 428: "If-Match is missing",
    }
    /// Errors of the token endpoint.
    TokenErrors {
        BadRequest = 400: "Malformed JSON",
        Unauthorized = 401: "Wrong email or password (the same answer for both)",
        PayloadTooLarge = 413: "The body is larger than the limit",
        UnsupportedMediaType = 415: "The body is not application/json",
        Unprocessable = 422: "The body is well formed but not acceptable",
        TooManyRequests = 429 + "Retry-After": "Too many failed attempts for this email or address; see Retry-After",
        Internal = 500: "An unexpected error; the detail shows nothing of it",
        Busy = 503 + "Retry-After": "The database cannot be reached, or too many password checks are waiting (then with Retry-After)",
    }
}
