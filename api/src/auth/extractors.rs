//! Authorisation as extractors: a handler that asks for [`CurrentUser`] gets a signed-in, enabled
//! user whose token is current; one that asks for `Authorised<AdminOnly>` (or another role set)
//! also gets the role check. Deny by default: a route that asks for neither is public. Who may
//! call each operation is published from `crate::permissions`, and the route matrix test proves
//! that table against these extractors by calling every operation as every role.

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use db::Actor;
use db::subscriptions::Subscription;
use db::users::{Principal, Role};
use futures_util::future::{Ready, ready};
use tracing_actix_web::RequestId;

use crate::auth::claims::{self, Claims};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The organisations an officer of an ICB may act for, beside the ICB itself: those it
/// commissions for, once the ICB has granted it (`db::icb_acting`). Read per request, so a
/// revoked grant or a re-parented organisation counts at once.
#[derive(Clone, Debug)]
pub struct Commissioned {
    pub icb: String,
    /// ODS codes, upper-case.
    pub codes: BTreeSet<String>,
}

/// The signed-in user of this request.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub principal: Principal,
    request_id: Option<String>,
    commissioned: Option<Arc<Commissioned>>,
}

impl CurrentUser {
    /// The user that a resolved token (see [`resolve_token`]) stands for in this request. (The
    /// web pages' session user acts for its own organisation only.)
    pub(crate) fn new(principal: Principal, request: &HttpRequest) -> CurrentUser {
        CurrentUser {
            principal,
            request_id: request.extensions().get::<RequestId>().map(|id| id.to_string()),
            commissioned: None,
        }
    }

    pub fn id(&self) -> i64 {
        self.principal.user_id
    }

    pub fn role(&self) -> Role {
        self.principal.role
    }

    pub fn organisation(&self) -> Option<&str> {
        self.principal.organisation_code.as_deref()
    }

    /// The actor the audit log records for writes made in this request.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.principal.user_id),
            label: self.principal.email.clone(),
            request_id: self.request_id.clone(),
            acting_icb: self.commissioned.as_ref().map(|scope| scope.icb.clone()),
        }
    }

    fn is_own(&self, code: &str) -> bool {
        self.organisation().is_some_and(|own| own.eq_ignore_ascii_case(code))
    }

    /// An organisation this officer's ICB commissions for, with the ICB's grant.
    fn commissions(&self, code: &str) -> bool {
        self.commissioned.as_ref().is_some_and(|scope| scope.codes.contains(&code.to_uppercase()))
    }

    /// Reading an organisation's private data: admins and auditors read any; officers and
    /// exemplars only their own, and an ICB's officers also those the ICB commissions for once it
    /// has granted it. Another organisation's data answers 404, never revealing it.
    pub fn ensure_can_read(&self, code: &str) -> ApiResult<()> {
        match self.role() {
            Role::Admin | Role::Auditor => Ok(()),
            Role::Officer | Role::Exemplar if self.is_own(code) => Ok(()),
            Role::Officer if self.commissions(code) => Ok(()),
            _ => Err(ApiError::NotFound("organisation not found".into())),
        }
    }

    /// The organisation a report is about: admins and auditors get what they ask for (or every
    /// organisation); officers and exemplars their own unless they ask for another they may read
    /// (an ICB's officer, for one it commissions for), and asking for any other is 404.
    pub fn report_scope(&self, asked: Option<String>) -> ApiResult<Option<String>> {
        match self.role() {
            Role::Admin | Role::Auditor => Ok(asked),
            Role::Officer | Role::Exemplar => match asked {
                Some(asked) if !self.is_own(&asked) => {
                    self.ensure_can_read(&asked)?;
                    Ok(Some(asked.to_uppercase()))
                }
                _ => Ok(self.organisation().map(str::to_owned)),
            },
        }
    }

    /// Acting for an organisation: admins for any; officers and exemplars for their own, and an
    /// ICB's officers for those it commissions for once it has granted it (another organisation
    /// answers 404, as for reads); auditors never (403).
    pub fn ensure_can_act_for(&self, code: &str) -> ApiResult<()> {
        match self.role() {
            Role::Admin => Ok(()),
            Role::Auditor => Err(ApiError::Forbidden("auditors cannot make changes".into())),
            Role::Officer | Role::Exemplar if self.is_own(code) => Ok(()),
            Role::Officer if self.commissions(code) => Ok(()),
            _ => Err(ApiError::NotFound("organisation not found".into())),
        }
    }

    /// Whether this user sees everyone's subscriptions (admins and auditors), not only their own.
    pub fn reads_every_subscription(&self) -> bool {
        matches!(self.role(), Role::Admin | Role::Auditor)
    }

    /// The organisation a new subscription of this user hears (`None`: every organisation's).
    /// Admins and auditors get what they ask for, or every organisation; officers and exemplars
    /// their own (asking for another is 403), and without one they cannot subscribe.
    pub fn subscription_scope(&self, asked: Option<&str>) -> ApiResult<Option<String>> {
        let asked = asked.map(str::to_uppercase);
        if self.reads_every_subscription() {
            return Ok(asked);
        }
        let own = self
            .organisation()
            .ok_or_else(|| ApiError::Forbidden("you have no organisation to subscribe for".into()))?;
        match asked {
            Some(code) if !self.is_own(&code) => {
                Err(ApiError::Forbidden("you may subscribe only to your own organisation's events".into()))
            }
            _ => Ok(Some(own.to_owned())),
        }
    }

    /// Seeing a subscription (and its deliveries): its owner, admins and auditors. Anyone else's
    /// answers 404, as if it did not exist.
    pub fn ensure_can_see_subscription(&self, subscription: &Subscription) -> ApiResult<()> {
        if subscription.user_id == self.id() || self.reads_every_subscription() {
            Ok(())
        } else {
            Err(ApiError::NotFound("subscription not found".into()))
        }
    }

    /// Changing or ending a subscription: its owner or an admin; an auditor, who sees it, gets
    /// 403; anyone else 404.
    pub fn ensure_can_change_subscription(&self, subscription: &Subscription) -> ApiResult<()> {
        self.ensure_can_see_subscription(subscription)?;
        if subscription.user_id == self.id() || self.role() == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("only its owner or an admin may change a subscription".into()))
        }
    }

    /// Acting as the organisation itself (an ICB granting its officers to act for others): admins
    /// for any; officers and exemplars for their own only, never through an ICB's grant.
    pub fn ensure_is_own(&self, code: &str) -> ApiResult<()> {
        match self.role() {
            Role::Admin => Ok(()),
            Role::Auditor => Err(ApiError::Forbidden("auditors cannot make changes".into())),
            Role::Officer | Role::Exemplar if self.is_own(code) => Ok(()),
            _ => Err(ApiError::NotFound("organisation not found".into())),
        }
    }
}

fn bearer_token(headers: &header::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

/// What the authentication middleware found for this request's bearer token: the user, and for
/// an ICB's officer the organisations it may act for.
#[derive(Clone)]
struct Authentication(Result<(Principal, Option<Arc<Commissioned>>), ApiError>);

/// Middleware: resolves the bearer token (signature, claims, and the user read fresh from the
/// database, so a disabled user or a revoked token stops at once) before any handler or body
/// extractor runs. Authentication therefore always answers first: 401 before 400, 404 or 422.
pub async fn authenticate(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(token) = bearer_token(request.headers()) {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let outcome = match state {
            Some(state) => match resolve_token(&state, &token).await {
                Ok((principal, _)) => {
                    commissioned(&state, &principal).await.map(|commissioned| (principal, commissioned))
                }
                Err(error) => Err(error),
            },
            None => Err(ApiError::Internal("application state missing".into())),
        };
        request.extensions_mut().insert(Authentication(outcome));
    }
    next.call(request).await
}

/// The user a token stands for, with its claims: the signature and claims are checked, and the
/// user is read fresh from the database, so a disabled user, or a token issued before a change of
/// password, role or organisation, is refused at once. Bearer tokens and the web pages' session
/// cookie are both resolved here.
pub(crate) async fn resolve_token(
    state: &AppState,
    token: &str,
) -> Result<(Principal, std::sync::Arc<Claims>), ApiError> {
    let claims = claims::verify(&state.auth, token).ok_or(ApiError::Unauthorized)?;
    let user_id: i64 = claims.sub.parse().map_err(|_| ApiError::Unauthorized)?;
    // From the read model when it holds the user: no query on the hot path. Otherwise from the
    // database, off the event loop (and cached for next time).
    let principal = state.principal(user_id).await?;
    match principal {
        Some(principal) if !principal.disabled && principal.token_generation == claims.r#gen => {
            Ok((principal, claims))
        }
        _ => Err(ApiError::Unauthorized),
    }
}

/// For an officer whose organisation is an ICB that has granted acting: the organisations it
/// commissions for. Officers of any other organisation are answered from the read model's set of
/// granting ICBs, with no database read (without a read model, the database is asked).
async fn commissioned(state: &AppState, principal: &Principal) -> ApiResult<Option<Arc<Commissioned>>> {
    if principal.role != Role::Officer {
        return Ok(None);
    }
    let Some(icb) = principal.organisation_code.clone() else { return Ok(None) };
    if state.read_model.as_ref().is_some_and(|model| !model.has_granted(&icb)) {
        return Ok(None);
    }
    let asked = icb.clone();
    let codes =
        state.run(move |db| db.read(|conn| db::icb_acting::commissioned_if_granted(conn, &asked))).await?;
    Ok(codes.map(|codes| Arc::new(Commissioned { icb, codes })))
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Ready<Result<CurrentUser, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = request.extensions();
        let outcome = match extensions.get::<Authentication>() {
            Some(Authentication(Ok((principal, commissioned)))) => Ok(CurrentUser {
                principal: principal.clone(),
                request_id: extensions.get::<RequestId>().map(|id| id.to_string()),
                commissioned: commissioned.clone(),
            }),
            Some(Authentication(Err(error))) => Err(error.clone()),
            None => Err(ApiError::Unauthorized),
        };
        ready(outcome)
    }
}

/// A set of roles allowed on a route.
pub trait RoleSet {
    const ROLES: &'static [Role];
}

macro_rules! role_set {
    ($($(#[$doc:meta])* $name:ident = [$($role:ident),+];)*) => {
        $(
            $(#[$doc])*
            pub struct $name;
            impl RoleSet for $name {
                const ROLES: &'static [Role] = &[$(Role::$role),+];
            }
        )*
    };
}

role_set! {
    /// The national team only.
    AdminOnly = [Admin];
    /// Those who read everything: the national team and auditors.
    AdminOrAuditor = [Admin, Auditor];
    /// Those who claim and release seats: the national team, and officers for their own organisation.
    AdminOrOfficer = [Admin, Officer];
    /// Those who write standards: the national team, and exemplars for their own organisation.
    AdminOrExemplar = [Admin, Exemplar];
    /// Those who ask for a product to be added to the catalogue: everyone but auditors, for their
    /// own organisation (the national team for any).
    Requesters = [Admin, Officer, Exemplar];
    /// Any signed-in user; organisation scope is checked by the handler.
    AnyRole = [Admin, Exemplar, Officer, Auditor];
}

/// A signed-in user whose role is in `R`; any other role gets 403.
pub struct Authorised<R: RoleSet>(pub CurrentUser, PhantomData<R>);

impl<R: RoleSet> Deref for Authorised<R> {
    type Target = CurrentUser;
    fn deref(&self) -> &CurrentUser {
        &self.0
    }
}

impl<R: RoleSet + 'static> FromRequest for Authorised<R> {
    type Error = ApiError;
    type Future = Ready<Result<Authorised<R>, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(request, payload).into_inner();
        ready(user.and_then(|user| check_role::<R>(&user).map(|()| Authorised(user, PhantomData))))
    }
}

/// The role check of [`Authorised<R>`]: 403 unless the user's role is in `R` (the web pages ask
/// it of their session user too).
pub fn check_role<R: RoleSet>(user: &CurrentUser) -> ApiResult<()> {
    if R::ROLES.contains(&user.role()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("the {} role may not do this", user.role().as_str())))
    }
}

/// What a route does with the organisation named in its `{code}` path segment.
pub trait Scope {
    fn check(user: &CurrentUser, code: &str) -> ApiResult<()>;
}

/// Reads the organisation's private data.
pub struct ReadsOrganisation;
/// Acts for the organisation.
pub struct ActsForOrganisation;
/// Acts as the organisation itself (not through an ICB's grant).
pub struct ActsAsOrganisation;

impl Scope for ReadsOrganisation {
    fn check(user: &CurrentUser, code: &str) -> ApiResult<()> {
        user.ensure_can_read(code)
    }
}

impl Scope for ActsForOrganisation {
    fn check(user: &CurrentUser, code: &str) -> ApiResult<()> {
        user.ensure_can_act_for(code)
    }
}

impl Scope for ActsAsOrganisation {
    fn check(user: &CurrentUser, code: &str) -> ApiResult<()> {
        user.ensure_is_own(code)
    }
}

/// The organisation of the `{code}` path segment, checked against the signed-in user before the
/// body is read, so another organisation's route answers 404 whatever the body holds.
pub struct OrganisationPath<S: Scope> {
    pub user: CurrentUser,
    /// The ODS code, upper-case.
    pub code: String,
    scope: PhantomData<S>,
}

impl<S: Scope + 'static> FromRequest for OrganisationPath<S> {
    type Error = ApiError;
    type Future = Ready<Result<OrganisationPath<S>, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(request, payload).into_inner();
        let code = request.match_info().get("code").unwrap_or_default().to_uppercase();
        ready(user.and_then(|user| {
            S::check(&user, &code)?;
            Ok(OrganisationPath { user, code, scope: PhantomData })
        }))
    }
}

/// Only the publisher's exemplars (or the national team) may change a standard.
pub async fn ensure_publisher(state: &AppState, user: &CurrentUser, standard_id: i64) -> ApiResult<()> {
    let publisher =
        state.run(move |db| db.read(|conn| db::standards::publisher_of(conn, standard_id))).await?;
    user.ensure_can_act_for(&publisher).map_err(|_| {
        ApiError::Forbidden(format!(
            "only {publisher}'s exemplars or the national team may change this standard"
        ))
    })
}
