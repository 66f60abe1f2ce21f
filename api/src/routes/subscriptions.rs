//! Subscriptions to events (email or signed webhooks), their deliveries and redelivery, and the
//! private hosts an admin lets webhooks reach (`db::subscriptions`, `db::deliveries`; the worker
//! that delivers is `crate::notify::worker`).
//!
//! Each user manages their own subscriptions; admins see and manage everyone's, auditors see
//! them. Another user's subscription is "not found" to anyone else, as if it did not exist.

use actix_web::{HttpResponse, delete, get, post, put, web};
use db::deliveries::{Delivery, RetryPolicy};
use db::outbox::EventKind;
use db::subscriptions::{AllowedHost, Channel, EmailCadence, NewSubscription, Subscription};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authorised;
use crate::auth::extractors::{AdminOnly, AnyRole, CurrentUser};
use crate::body::Json;
use crate::error::ApiResult;
use crate::notify::check_webhook_url;
use crate::notify::webhook;
use crate::openapi::{ReadErrors, WriteErrors};
use crate::preconditions::page_request;
use crate::state::AppState;
use crate::views::{DeliveryPage, SubscriptionPage, list_query};

list_query! {
    pub struct SubscriptionQuery {
        /// Only this user's subscriptions (admins and auditors; everyone else sees only their own).
        pub user_id: Option<i64>,
        ..page,
    }
}

/// The caller's subscriptions; an admin's or auditor's, everyone's (or one user's).
#[utoipa::path(
    tag = "subscriptions",
    operation_id = "list_subscriptions",
    security(("bearer" = [])),
    params(SubscriptionQuery),
    responses((status = 200, body = SubscriptionPage, description = "A page of subscriptions in id order"), ReadErrors)
)]
#[get("/subscriptions")]
pub async fn list_subscriptions(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<SubscriptionQuery>,
) -> ApiResult<web::Json<SubscriptionPage>> {
    let query = query.into_inner();
    let page = page_request(query.limit, query.cursor)?;
    let owner = if user.reads_every_subscription() { query.user_id } else { Some(user.id()) };
    let found = state.read(move |conn| db::subscriptions::list(conn, owner, &page)).await?;
    Ok(web::Json(found.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// The events to be told of: at least one.
    #[schema(min_items = 1)]
    pub kinds: Vec<EventKind>,
    /// The organisation whose events to hear (and national ones). Officers and exemplars: their
    /// own (the default). Admins and auditors: any, or null for every organisation's.
    #[schema(pattern = "^[A-Za-z0-9]{3,10}$")]
    pub organisation_code: Option<String>,
    pub channel: Channel,
    /// Email only: `immediate`, or `daily` for one digest a day.
    pub email_cadence: Option<EmailCadence>,
    /// Webhook only: an https URL that does not resolve to a loopback, link-local or private
    /// address (unless an admin allowed its host), at most 2,048 characters.
    #[schema(max_length = 2048)]
    pub webhook_url: Option<String>,
}

/// A new subscription, with a webhook's signing secret: shown here once, never again.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionCreated {
    pub subscription: Subscription,
    /// The Standard Webhooks signing secret (`whsec_` and base64): verify each delivery's
    /// `webhook-signature` with it. Null for email.
    pub webhook_secret: Option<String>,
}

/// Subscribe to events by email or webhook.
///
/// Webhooks follow the Standard Webhooks specification: each delivery is a POST of
/// `{"type", "timestamp", "data"}` with `webhook-id` (the same on every retry of a delivery),
/// `webhook-timestamp` and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` under the secret). A delivery that fails (no 2xx within 10 seconds) is
/// retried with exponential backoff and jitter for a day, then dead-lettered.
#[utoipa::path(
    tag = "subscriptions",
    operation_id = "create_subscription",
    security(("bearer" = [])),
    request_body = CreateSubscription,
    responses((status = 201, body = SubscriptionCreated), WriteErrors)
)]
#[post("/subscriptions")]
pub async fn create_subscription(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    body: Json<CreateSubscription>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let organisation_code = user.subscription_scope(body.organisation_code.as_deref())?;
    let webhook_secret = match (body.channel, &body.webhook_url) {
        (Channel::Webhook, Some(url)) => {
            check_webhook_url(&state, url).await?;
            Some(webhook::new_secret())
        }
        _ => None,
    };
    let new = NewSubscription {
        user_id: user.id(),
        organisation_code,
        kinds: body.kinds,
        channel: body.channel,
        email_cadence: body.email_cadence,
        webhook_url: body.webhook_url,
        webhook_secret: webhook_secret.clone(),
    };
    let actor = user.actor();
    let subscription = state.run(move |db| db::subscriptions::create(db, &actor, new)).await?;
    Ok(HttpResponse::Created().json(SubscriptionCreated { subscription, webhook_secret }))
}

/// A subscription the caller may see: their own, or anyone's for admins and auditors.
async fn visible(state: &AppState, user: &CurrentUser, id: i64) -> ApiResult<Subscription> {
    let subscription = state.read(move |conn| db::subscriptions::get(conn, id)).await?;
    user.ensure_can_see_subscription(&subscription)?;
    Ok(subscription)
}

/// A subscription the caller may change: their own, or anyone's for admins.
async fn manageable(state: &AppState, user: &CurrentUser, id: i64) -> ApiResult<Subscription> {
    let subscription = state.read(move |conn| db::subscriptions::get(conn, id)).await?;
    user.ensure_can_change_subscription(&subscription)?;
    Ok(subscription)
}

/// One subscription.
#[utoipa::path(
    tag = "subscriptions",
    operation_id = "get_subscription",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Subscription id")),
    responses((status = 200, body = Subscription), ReadErrors)
)]
#[get("/subscriptions/{id}")]
pub async fn get_subscription(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    id: web::Path<i64>,
) -> ApiResult<web::Json<Subscription>> {
    Ok(web::Json(visible(&state, &user, id.into_inner()).await?))
}

/// End a subscription; its deliveries, waiting or done, go with it.
#[utoipa::path(
    tag = "subscriptions",
    operation_id = "delete_subscription",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Subscription id")),
    responses((status = 204, description = "Ended"), WriteErrors)
)]
#[delete("/subscriptions/{id}")]
pub async fn delete_subscription(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let subscription = manageable(&state, &user, id.into_inner()).await?;
    let actor = user.actor();
    state.run(move |db| db::subscriptions::delete(db, &actor, subscription.id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

list_query! {
    pub struct DeliveryQuery {
        ..page,
    }
}

/// A subscription's deliveries, oldest first, each with every attempt made.
#[utoipa::path(
    tag = "subscriptions",
    operation_id = "list_deliveries",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Subscription id"), DeliveryQuery),
    responses((status = 200, body = DeliveryPage), ReadErrors)
)]
#[get("/subscriptions/{id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    id: web::Path<i64>,
    query: web::Query<DeliveryQuery>,
) -> ApiResult<web::Json<DeliveryPage>> {
    let subscription = visible(&state, &user, id.into_inner()).await?;
    let query = query.into_inner();
    let page = page_request(query.limit, query.cursor)?;
    let found = state.read(move |conn| db::deliveries::of_subscription(conn, subscription.id, &page)).await?;
    Ok(web::Json(found.into()))
}

/// Deliver again: due at once and retried for another day, whether it was delivered, is waiting
/// or was dead-lettered; a webhook carries the same `webhook-id`, so a receiver can tell a repeat.
#[utoipa::path(
    tag = "subscriptions",
    operation_id = "redeliver",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Delivery id")),
    responses((status = 200, body = Delivery, description = "The delivery, due again"), WriteErrors)
)]
#[post("/deliveries/{id}/redeliver")]
pub async fn redeliver(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    id: web::Path<i64>,
) -> ApiResult<web::Json<Delivery>> {
    let id = id.into_inner();
    let subscription_id = state.read(move |conn| db::deliveries::subscription_of(conn, id)).await?;
    manageable(&state, &user, subscription_id).await?;
    let actor = user.actor();
    let retry = RetryPolicy::default();
    Ok(web::Json(state.run(move |db| db::deliveries::redeliver(db, &actor, id, &retry)).await?))
}

/// Hosts webhooks may reach although they resolve to loopback or private addresses.
#[utoipa::path(
    tag = "subscriptions",
    operation_id = "list_webhook_hosts",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<AllowedHost>), ReadErrors)
)]
#[get("/webhook-hosts")]
pub async fn list_webhook_hosts(
    state: web::Data<AppState>,
    _admin: Authorised<AdminOnly>,
) -> ApiResult<web::Json<Vec<AllowedHost>>> {
    Ok(web::Json(state.read(db::subscriptions::allowed_hosts).await?))
}

/// Let webhooks reach a host although it is loopback or private (an internal integration
/// engine, say). Allowing a host twice changes nothing.
#[utoipa::path(
    tag = "subscriptions",
    operation_id = "allow_webhook_host",
    security(("bearer" = [])),
    params(("host" = String, Path, description = "A host name or IP address, without scheme or port", pattern = "^[A-Za-z0-9.:\\[\\]-]{1,253}$")),
    responses((status = 200, body = AllowedHost), WriteErrors)
)]
#[put("/webhook-hosts/{host}")]
pub async fn allow_webhook_host(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    host: web::Path<String>,
) -> ApiResult<web::Json<AllowedHost>> {
    let actor = admin.actor();
    let host = host.into_inner();
    Ok(web::Json(state.run(move |db| db::subscriptions::allow_host(db, &actor, &host)).await?))
}

/// Stop allowing a host; webhooks to it are refused from the next attempt on.
#[utoipa::path(
    tag = "subscriptions",
    operation_id = "forbid_webhook_host",
    security(("bearer" = [])),
    params(("host" = String, Path, description = "An allowed host")),
    responses((status = 204, description = "No longer allowed"), WriteErrors)
)]
#[delete("/webhook-hosts/{host}")]
pub async fn forbid_webhook_host(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    host: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let actor = admin.actor();
    let host = host.into_inner();
    state.run(move |db| db::subscriptions::forbid_host(db, &actor, &host)).await?;
    Ok(HttpResponse::NoContent().finish())
}
