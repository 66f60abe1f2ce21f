//! The OpenAPI document: its top level, the corrections made to what utoipa generates (response
//! fields that are always sent are required; rules across the fields of a request body), and the
//! route table derived from it that answers unsupported methods on known paths with 405 and
//! `Allow`.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::Method;
use db::users::Role;
use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Schema};
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
    components(schemas(Problem, crate::spreadsheet::Format)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Tokens and the signed-in user"),
        (name = "users", description = "User administration (the national team)"),
        (name = "organisations", description = "NHS organisations by ODS code"),
        (name = "products", description = "Suppliers and products with their lifecycle"),
        (name = "agreements", description = "National licence agreements and their entitlement lines"),
        (name = "coverage", description = "Licensed nationally, buy locally against a standard, or no guidance"),
        (name = "estates", description = "What organisations run, from their inventory exports, and the queue of names to map"),
        (name = "allocations", description = "The seat ledger: claims, releases, bulk claims and successions"),
        (name = "standards", description = "\"Buy against\" standards: versions, requirements and assessments"),
        (name = "purchases", description = "Local purchases against a standard, with declarations"),
        (name = "advisories", description = "Security advisories, exposure and organisations' responses"),
        (name = "risk", description = "Risk acceptances for unsupported products"),
        (name = "audit", description = "The append-only audit log (read-only)"),
        (name = "changes", description = "The change feed: the shared record's changes in order, to keep a copy in step"),
        (name = "subscriptions", description = "Being told: subscriptions to events by email or signed webhook (Standard Webhooks), their deliveries, and the private hosts webhooks may reach"),
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

/// Response fields that serde leaves out when they are empty (`skip_serializing_if`), by schema
/// and property. Every other field of a response is always sent (null when empty), so
/// [`require_sent_fields`] marks it required; these stay optional because they really can be
/// absent. A unit test counts the attribute in the sources, so a new one cannot be missed.
const SKIPPED_WHEN_EMPTY: &[(&str, &str)] = &[
    ("Problem", "seats_remaining"),
    // OCDS (`crate::ocds`): the standard's schema has no null for these, so they are left out.
    ("OcdsRelease", "relatedProcesses"),
    ("OcdsPeriod", "endDate"),
    ("OcdsPeriod", "maxExtentDate"),
    ("OcdsAward", "value"),
    ("OcdsContract", "value"),
    ("OcdsContract", "documents"),
];

/// Marks every property of a response-only schema required. utoipa makes `Option<T>` fields
/// optional, which is right for request bodies (a client may leave them out) but wrong for
/// responses: serde sends every field, null when empty, and clients generated from the document
/// should be able to rely on the key. A schema reachable from a request body or a parameter is
/// left alone, since there an omitted field is allowed.
pub fn require_sent_fields(document: &mut utoipa::openapi::OpenApi) {
    let Some(components) = document.components.as_mut() else { return };
    let mut sent = Vec::new();
    let mut received = Vec::new();
    for item in document.paths.paths.values() {
        for parameter in item.parameters.iter().flatten() {
            collect_refs(parameter.schema.as_ref(), &mut received);
        }
        for operation in operations(item) {
            for parameter in operation.parameters.iter().flatten() {
                collect_refs(parameter.schema.as_ref(), &mut received);
            }
            for content in operation.request_body.iter().flat_map(|body| body.content.values()) {
                collect_refs(content.schema.as_ref(), &mut received);
            }
            for response in operation.responses.responses.values() {
                let response = match response {
                    RefOr::T(response) => Some(response),
                    RefOr::Ref(reference) => reference
                        .ref_location
                        .strip_prefix("#/components/responses/")
                        .and_then(|name| components.responses.get(name))
                        .and_then(|shared| match shared {
                            RefOr::T(response) => Some(response),
                            RefOr::Ref(_) => None,
                        }),
                };
                for content in response.iter().flat_map(|response| response.content.values()) {
                    collect_refs(content.schema.as_ref(), &mut sent);
                }
            }
        }
    }
    let sent = reachable(&components.schemas, sent);
    let received = reachable(&components.schemas, received);
    for name in sent.difference(&received) {
        if let Some(RefOr::T(schema)) = components.schemas.get_mut(name) {
            require_all(name, schema);
        }
    }
}

/// The operations of a path item, whatever their method.
fn operations(item: &PathItem) -> impl Iterator<Item = &Operation> {
    [&item.get, &item.put, &item.post, &item.delete, &item.options, &item.head, &item.patch, &item.trace]
        .into_iter()
        .flatten()
}

/// The component schemas named in `pending`, and every schema those refer to, transitively.
fn reachable(schemas: &BTreeMap<String, RefOr<Schema>>, mut pending: Vec<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if found.insert(name.clone()) {
            collect_refs(schemas.get(&name), &mut pending);
        }
    }
    found
}

/// The names of the component schemas `schema` refers to, directly or through inline schemas.
fn collect_refs(schema: Option<&RefOr<Schema>>, names: &mut Vec<String>) {
    match schema {
        None => {}
        Some(RefOr::Ref(reference)) => {
            if let Some(name) = reference.ref_location.strip_prefix("#/components/schemas/") {
                names.push(name.to_owned());
            }
        }
        Some(RefOr::T(schema)) => collect_inline_refs(schema, names),
    }
}

fn collect_inline_refs(schema: &Schema, names: &mut Vec<String>) {
    match schema {
        Schema::Object(object) => {
            for property in object.properties.values() {
                collect_refs(Some(property), names);
            }
            if let Some(additional) = object.additional_properties.as_deref()
                && let AdditionalProperties::RefOr(additional) = additional
            {
                collect_refs(Some(additional), names);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &array.items {
                collect_refs(Some(items), names);
            }
            for item in &array.prefix_items {
                collect_inline_refs(item, names);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter().for_each(|item| collect_refs(Some(item), names)),
        Schema::AllOf(all_of) => all_of.items.iter().for_each(|item| collect_refs(Some(item), names)),
        Schema::AnyOf(any_of) => any_of.items.iter().for_each(|item| collect_refs(Some(item), names)),
        _ => {}
    }
}

/// Makes every property of `schema` (a component named `name`) and of the objects inlined in it
/// required, but for those serde skips when empty.
fn require_all(name: &str, schema: &mut Schema) {
    match schema {
        Schema::Object(object) => {
            for property in object.properties.keys() {
                let skipped = SKIPPED_WHEN_EMPTY.contains(&(name, property.as_str()));
                if !skipped && !object.required.contains(property) {
                    object.required.push(property.clone());
                }
            }
            for property in object.properties.values_mut() {
                if let RefOr::T(inline) = property {
                    require_all(name, inline);
                }
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items
                && let RefOr::T(inline) = items.as_mut()
            {
                require_all(name, inline);
            }
        }
        Schema::OneOf(one_of) => inline_items(&mut one_of.items).for_each(|item| require_all(name, item)),
        Schema::AllOf(all_of) => inline_items(&mut all_of.items).for_each(|item| require_all(name, item)),
        Schema::AnyOf(any_of) => inline_items(&mut any_of.items).for_each(|item| require_all(name, item)),
        _ => {}
    }
}

fn inline_items(items: &mut [RefOr<Schema>]) -> impl Iterator<Item = &mut Schema> {
    items.iter_mut().filter_map(|item| match item {
        RefOr::T(schema) => Some(schema),
        RefOr::Ref(_) => None,
    })
}

/// What the API counts as blank text (Rust's `trim` also strips U+0085, which ECMA-262's `\s`
/// does not match), as the request schemas' `pattern` on required text says.
const NOT_BLANK: &str = "[^\\s\\u0085]";

/// Rules across the fields of one request body, by schema: each an `if`/`then` of JSON Schema
/// 2020-12 (the dialect of OpenAPI 3.1), written from the rule the data layer enforces, so that
/// a client and a contract test see the rule instead of meeting a 422.
/// - `CreatePurchase`: without a `product_id` (absent or null), a `description` that is not blank
///   (`db::purchases::record`).
/// - `CreateUser`: a role that acts for one organisation (`Role::needs_organisation`) needs an
///   `organisation_code` (`db::users::validate_assignment`).
/// - `CreateSubscription`: email needs an `email_cadence` and takes no `webhook_url`; a webhook
///   the other way round (`db::subscriptions::check_shape`).
/// - `UpdateUser`: a change to such a role cannot also remove the organisation (null). Whether
///   the merged record has one depends on the stored user, which no schema knows.
///
/// Rules across query parameters, and rules on the stored state or on today's date, stay in the
/// operations' descriptions.
fn conditional_rules() -> Vec<(&'static str, Value)> {
    let acting_for_one: Vec<&str> =
        Role::ALL.iter().copied().filter(|role| role.needs_organisation()).map(Role::as_str).collect();
    let role_acts_for_one =
        json!({ "required": ["role"], "properties": { "role": { "enum": acting_for_one } } });
    vec![
        (
            "CreatePurchase",
            json!({
                "if": { "properties": { "product_id": { "type": "null" } } },
                "then": {
                    "required": ["description"],
                    "properties": { "description": { "type": "string", "pattern": NOT_BLANK } }
                }
            }),
        ),
        (
            "CreateUser",
            json!({
                "if": role_acts_for_one,
                "then": {
                    "required": ["organisation_code"],
                    "properties": { "organisation_code": { "type": "string" } }
                }
            }),
        ),
        (
            "CreateSubscription",
            json!({
                "if": { "required": ["channel"], "properties": { "channel": { "const": "email" } } },
                "then": {
                    "required": ["email_cadence"],
                    "properties": { "email_cadence": { "type": "string" }, "webhook_url": { "type": "null" } }
                },
                "else": {
                    "required": ["webhook_url"],
                    "properties": { "webhook_url": { "type": "string" }, "email_cadence": { "type": "null" } }
                }
            }),
        ),
        (
            "UpdateUser",
            json!({
                "if": role_acts_for_one,
                "then": { "properties": { "organisation_code": { "type": "string" } } }
            }),
        ),
    ]
}

/// Adds [`conditional_rules`] to their schemas, each as the one item of an `allOf` beside the
/// schema's properties. utoipa has no field for `if`/`then`, so the keyword goes in through the
/// object's map of extra keys; a single key keeps the document's order stable (the map is a
/// `HashMap`). An `allOf` of `if`/`then` items is JSON Schema's usual form for such rules, and
/// generated clients ignore an `allOf` item without properties (openapi-python-client builds the
/// model from the properties alone; an `anyOf` here would have turned the model into a union).
pub fn add_conditional_rules(document: &mut utoipa::openapi::OpenApi) {
    let Some(components) = document.components.as_mut() else { return };
    for (name, rule) in conditional_rules() {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
            object.extensions.get_or_insert_with(Default::default).insert("allOf".to_owned(), json!([rule]));
        }
    }
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

    /// The methods served on `path`, or none when no documented path matches it. A literal
    /// segment outranks a parameter: `/v1/agreements/ocds` is that path, not `/v1/agreements/{id}`.
    pub fn allowed(&self, path: &str) -> Option<&[Method]> {
        let wanted: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .filter(|(template, _)| {
                template.len() == wanted.len()
                    && template
                        .iter()
                        .zip(&wanted)
                        .all(|(t, w)| (t.starts_with('{') && !w.is_empty()) || t == w)
            })
            .max_by_key(|(template, _)| template.iter().filter(|t| !t.starts_with('{')).count())
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
    /// Errors of a write whose body is a file sent as `text/csv` (an ODS import).
    CsvWriteErrors {
        BadRequest = 400: "An invalid query parameter, or a body that could not be read",
        Unauthorized = 401: "No valid bearer token (missing, expired, revoked, or of a disabled user)",
        Forbidden = 403: "The caller's role may not do this",
        Conflict = 409: "The request conflicts with the current state",
        PayloadTooLarge = 413: "The file is larger than the limit (32 MiB)",
        UnsupportedMediaType = 415: "The body is not text/csv, application/octet-stream or a multipart/form-data form",
        Unprocessable = 422: "The file is not in the layout of its kind; the detail names the line",
        Internal = 500: "An unexpected error; the detail shows nothing of it",
        Unavailable = 503: "The database cannot be reached; try again later",
    }
    /// Errors of a write whose body is a file sent as `text/csv` for one organisation (an estate
    /// import).
    OrganisationCsvWriteErrors {
        BadRequest = 400: "An invalid query parameter, or a body that could not be read",
        Unauthorized = 401: "No valid bearer token (missing, expired, revoked, or of a disabled user)",
        Forbidden = 403: "The caller's role may not do this",
        NotFound = 404: "No such organisation, or not one the caller may act for",
        Conflict = 409: "The request conflicts with the current state",
        PayloadTooLarge = 413: "The file is larger than the limit (32 MiB)",
        UnsupportedMediaType = 415: "The body is not text/csv, application/octet-stream or a multipart/form-data form",
        Unprocessable = 422: "The file is not in its source's layout, or has invalid rows; the detail names the lines",
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// How many fields of the wire types (the API's routes and errors, and the data layer's
    /// types) serde skips when empty.
    fn skipped_fields_in(directory: &Path, count: &mut usize) -> std::io::Result<()> {
        for entry in std::fs::read_dir(directory)? {
            let path = entry?.path();
            if path.is_dir() {
                // The web pages are not in the document.
                if path.file_name().is_some_and(|name| name != "web") {
                    skipped_fields_in(&path, count)?;
                }
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let text = std::fs::read_to_string(&path)?;
                *count += text
                    .lines()
                    .filter(|line| {
                        line.trim_start().starts_with("#[serde(") && line.contains("skip_serializing_if")
                    })
                    .count();
            }
        }
        Ok(())
    }

    #[test]
    fn every_field_skipped_when_empty_is_listed() -> std::io::Result<()> {
        let api = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut count = 0;
        skipped_fields_in(&api.join("src"), &mut count)?;
        skipped_fields_in(&api.join("../db/src"), &mut count)?;
        assert_eq!(
            count,
            SKIPPED_WHEN_EMPTY.len(),
            "a field uses skip_serializing_if: if it is sent in a response, list it in SKIPPED_WHEN_EMPTY \
             (api/src/openapi.rs) so the document does not call it required"
        );
        Ok(())
    }

    #[test]
    fn a_field_skipped_when_empty_is_absent_from_the_json() {
        let problem = Problem {
            problem_type: "urn:test".into(),
            title: "Conflict".into(),
            status: 409,
            detail: "no".into(),
            seats_remaining: None,
        };
        let json = serde_json::to_value(&problem).unwrap_or_default();
        assert!(json.get("seats_remaining").is_none() && json.get("detail").is_some());
    }
}
