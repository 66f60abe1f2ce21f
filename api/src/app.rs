//! The HTTP application: routes, middleware, and the handlers of last resort (unknown paths,
//! unsupported methods, unreadable bodies), each answering with a problem response.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, error, web};
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

use crate::body::MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::openapi::{ApiDoc, RouteTable};
use crate::routes;
use crate::state::AppState;

/// The documented application, before it is given state: used by the server, by
/// `catalogue openapi` and by the test that keeps `openapi/openapi.json` equal to the code.
fn documented_app() -> (
    App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse,
            Error = actix_web::Error,
            InitError = (),
        >,
    >,
    utoipa::openapi::OpenApi,
) {
    let (app, mut document) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes::configure)
        .split_for_parts();
    crate::permissions::publish(&mut document);
    crate::openapi::require_sent_fields(&mut document);
    crate::openapi::add_conditional_rules(&mut document);
    (app, document)
}

/// The OpenAPI document as the code describes it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    documented_app().1
}

/// Prometheus metrics served at `/metrics`: request counts and latencies by route and status.
/// Built once per server and shared by its workers.
pub fn metrics() -> anyhow::Result<actix_web_prom::PrometheusMetrics> {
    actix_web_prom::PrometheusMetricsBuilder::new("catalogue")
        .endpoint("/metrics")
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up metrics: {e}"))
}

pub fn build_app(
    state: AppState,
    metrics: actix_web_prom::PrometheusMetrics,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, document) = documented_app();
    let cors = cors(&state.cors_origins);
    let metrics_token = state.metrics_token.clone();
    let route_table = Arc::new(RouteTable::from_document(&document));
    let document_json = Arc::new(crate::openapi::to_pretty_json(&document));
    let path_misses = route_table.clone();

    app.app_data(web::Data::new(state))
        .app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(json_error))
        .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
        .app_data(
            web::QueryConfig::default().error_handler(|e, _| ApiError::BadRequest(e.to_string()).into()),
        )
        .app_data(
            // A path a handler's template took but whose parameter does not parse: a 404, or a
            // 405 where the path is another route's (`PATCH /v1/agreements/ocds` reaches the
            // handler of `PATCH /v1/agreements/{id}`, yet `/v1/agreements/ocds` serves GET only).
            web::PathConfig::default()
                .error_handler(move |_, request| path_misses.miss(request.method(), request.path()).into()),
        )
        .route(
            "/openapi.json",
            web::get().to(move || {
                let body = document_json.clone();
                async move { HttpResponse::Ok().content_type("application/json").body(body.as_ref().clone()) }
            }),
        )
        // `/docs` is where people type; the page lives at `/docs/`.
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
            }),
        )
        .service(crate::docs::service())
        // The web pages for people: outside `/v1` and not in the OpenAPI document.
        .configure(crate::web::configure)
        .default_service(web::to(move |request: HttpRequest| {
            let route_table = route_table.clone();
            async move { Err::<HttpResponse, ApiError>(route_table.miss(request.method(), request.path())) }
        }))
        .wrap(actix_web::middleware::from_fn(crate::web::session::renew_cookie))
        .wrap(actix_web::middleware::from_fn(crate::web::kept_form::restore_kept_form))
        .wrap(actix_web::middleware::from_fn(crate::auth::extractors::authenticate))
        .wrap(security_headers())
        .wrap_fn(|request, service| {
            let request_id = request.extensions().get::<RequestId>().copied();
            let is_docs = request.path().starts_with("/docs");
            // A NUL character is never a valid path or query value (and PostgreSQL cannot store one).
            let has_nul = request
                .uri()
                .path_and_query()
                .is_some_and(|target| target.as_str().as_bytes().windows(3).any(|w| w == b"%00"));
            let response = if has_nul { None } else { Some(service.call(request)) };
            async move {
                let Some(response) = response else {
                    return Err(
                        ApiError::BadRequest("the path or query contains a NUL character".into()).into()
                    );
                };
                let mut response = response.await?;
                if is_docs {
                    // Swagger UI runs its own scripts and sets inline styles; everything it
                    // loads comes from this server.
                    response
                        .headers_mut()
                        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_POLICY));
                }
                if let Some(id) = request_id
                    && let Ok(value) = HeaderValue::from_str(&id.to_string())
                {
                    response.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
                }
                Ok(response)
            }
        })
        .wrap(cors)
        .wrap(metrics)
        // Metrics tell an attacker which routes are used and how hard: only a scraper holding
        // CATALOGUE_METRICS_TOKEN sees them; anyone else (and everyone, when no token is set)
        // gets the 404 of a path that does not exist.
        .wrap_fn(move |request, service| {
            let refused = request.path() == "/metrics" && !metrics_token.allows(request.headers());
            let response = if refused { None } else { Some(service.call(request)) };
            async move {
                match response {
                    Some(response) => response.await,
                    None => Err(ApiError::NotFound("no resource at /metrics".into()).into()),
                }
            }
        })
        .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
}

const DOCS_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                           script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// Cross-origin calls from browsers: off unless origins are configured.
fn cors(origins: &[String]) -> actix_web::middleware::Condition<actix_cors::Cors> {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH])
        .allowed_header("idempotency-key")
        .expose_headers([header::ETAG, header::HeaderName::from_static("x-request-id")])
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    actix_web::middleware::Condition::new(!origins.is_empty(), cors)
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        // API answers may name an organisation's holdings: never keep them in a shared cache.
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"))
}

fn json_error(error: error::JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    use error::JsonPayloadError as E;
    let api_error = match &error {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::PayloadTooLarge,
        E::ContentType => ApiError::UnsupportedMediaType("the request body must be application/json".into()),
        E::Deserialize(cause) if cause.is_data() => {
            ApiError::Unprocessable(format!("invalid request body: {cause}"))
        }
        E::Deserialize(cause) => ApiError::BadRequest(format!("malformed JSON: {cause}")),
        other => ApiError::BadRequest(format!("unreadable request body: {other}")),
    };
    api_error.into()
}
