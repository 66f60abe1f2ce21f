use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::NaiveDate;
use db::agreements::{
    Agreement, AgreementFields, AgreementFilter, Entitlement, EntitlementChanges, EntitlementFields,
    NewExtensionOption, NewObligation,
};
use db::vocabulary::{
    AgreementStatus, ExtensionDecision, FundingModel, Metric, NhsmailService, OrganisationKind,
    OverAllocationPolicy, Tier,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Authorised;
use crate::auth::extractors::{AdminOnly, AnyRole};
use crate::body::Json;
use crate::error::ApiResult;
use crate::ocds::{OcdsRecordPackage, OcdsReleasePackage};
use crate::openapi::{PreconditionErrors, ReadErrors, WriteErrors};
use crate::preconditions::{IfMatch, double_option, page_request, with_etag};
use crate::spreadsheet::{self, PageQuery};
use crate::state::AppState;
use crate::views::{AgreementPage, EntitlementPage, list_query};

list_query! {
    pub struct AgreementQuery {
        pub supplier_id: Option<i64>,
        pub status: Option<AgreementStatus>,
        /// e.g. `RM6068`.
        pub framework_reference: Option<String>,
        /// Expired and terminated agreements are left out unless this is true (or `status` asks for them).
        #[serde(default)]
        pub include_ended: bool,
        /// Only agreements with an undecided extension option whose decision is due within this
        /// window from today: a number of days or months, `30d`, `90d`, `12m` (1 to 9999 days or
        /// 1 to 999 months). Options already overdue and still undecided are included.
        #[param(value_type = Option<String>, pattern = "^([1-9][0-9]{0,3}d|[1-9][0-9]{0,2}m)$", example = "90d")]
        pub decision_due_within: Option<Window>,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

/// A window of time ahead of a date: `90d` (days) or `12m` (calendar months).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    Days(u32),
    Months(u32),
}

impl Window {
    pub const MAX_DAYS: u32 = 9999;
    pub const MAX_MONTHS: u32 = 999;

    pub fn parse(text: &str) -> Option<Window> {
        let (number, unit) = text.split_at(text.len().checked_sub(1)?);
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || number.starts_with('0') {
            return None;
        }
        let n: u32 = number.parse().ok()?;
        match unit {
            "d" if n <= Self::MAX_DAYS => Some(Window::Days(n)),
            "m" if n <= Self::MAX_MONTHS => Some(Window::Months(n)),
            _ => None,
        }
    }

    /// The last day of the window that starts on `from`.
    pub fn end(self, from: NaiveDate) -> Option<NaiveDate> {
        match self {
            Window::Days(n) => from.checked_add_days(chrono::Days::new(n.into())),
            Window::Months(n) => from.checked_add_months(chrono::Months::new(n)),
        }
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Window, D::Error> {
        let text = String::deserialize(deserializer)?;
        Window::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a window such as 30d or 12m (1 to {} days, 1 to {} months)",
                Window::MAX_DAYS,
                Window::MAX_MONTHS
            ))
        })
    }
}

/// List agreements, ordered by id.
#[utoipa::path(
    tag = "agreements",
    operation_id = "list_agreements",
    security(("bearer" = [])),
    params(AgreementQuery),
    responses((status = 200, description = "A page of agreements, or all of them as CSV", content(
            (AgreementPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/agreements")]
pub async fn list_agreements(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    query: web::Query<AgreementQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    let filter = AgreementFilter {
        supplier_id: query.supplier_id,
        status: query.status,
        framework_reference: query.framework_reference,
        include_ended: query.include_ended,
        decision_due_by: query.decision_due_within.and_then(|w| w.end(crate::routes::today())),
        ..AgreementFilter::default()
    };
    spreadsheet::list(&state, csv, "agreements", page, move |conn, page| {
        db::agreements::list(conn, &filter, page)
    })
    .await
}

/// Agreements read per batch of the streamed OCDS package.
const OCDS_BATCH: i64 = 100;

/// The address a request was made to, for a package's `uri`.
fn requested_uri(request: &HttpRequest) -> String {
    let info = request.connection_info();
    format!("{}://{}{}", info.scheme(), info.host(), request.path())
}

/// Every agreement, ended ones included, as one OCDS 1.1 release package (one release per
/// agreement, ordered by id), streamed in batches.
#[utoipa::path(
    tag = "agreements",
    operation_id = "list_agreements_ocds",
    security(("bearer" = [])),
    responses((status = 200, body = OcdsReleasePackage, description = "An OCDS 1.1 release package"), ReadErrors)
)]
#[get("/agreements/ocds")]
pub async fn list_agreements_ocds(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let published = state.run(|db| db.read(db::agreements::last_updated)).await?;
    let head = crate::ocds::package_head(
        &requested_uri(&request),
        published.unwrap_or_else(|| chrono::Utc::now().naive_utc()),
    );
    let prefix = state.ocid_prefix.clone();
    // A small bounded channel: the reader waits while the client is slow.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(2);
    let db = state.db.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut text = head;
        let mut cursor = None;
        let mut first = true;
        loop {
            let filter = AgreementFilter { include_ended: true, ..AgreementFilter::default() };
            let page = db::PageRequest { limit: Some(OCDS_BATCH), cursor: cursor.take() };
            let found = match db.read(|conn| db::agreements::list(conn, &filter, &page)) {
                Ok(found) => found,
                Err(error) => {
                    tracing::error!(%error, "OCDS package failed");
                    let _ = sender.blocking_send(Err(std::io::Error::other("OCDS package failed")));
                    return;
                }
            };
            for agreement in &found.items {
                if !first {
                    text.push(',');
                }
                first = false;
                match serde_json::to_string(&crate::ocds::release(agreement, &prefix)) {
                    Ok(release) => text.push_str(&release),
                    Err(error) => {
                        tracing::error!(%error, "OCDS release failed");
                        let _ = sender.blocking_send(Err(std::io::Error::other("OCDS release failed")));
                        return;
                    }
                }
            }
            cursor = found.next_cursor;
            if cursor.is_none() {
                text.push_str("]}");
            }
            if sender.blocking_send(Ok(web::Bytes::from(std::mem::take(&mut text)))).is_err()
                || cursor.is_none()
            {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Ok(HttpResponse::Ok().content_type("application/json").streaming(stream))
}

/// One agreement as an OCDS 1.1 release package holding its one release.
#[utoipa::path(
    tag = "agreements",
    operation_id = "get_agreement_ocds",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Agreement id")),
    responses((status = 200, body = OcdsReleasePackage, description = "An OCDS 1.1 release package"), ReadErrors)
)]
#[get("/agreements/{id}/ocds")]
pub async fn get_agreement_ocds(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    id: web::Path<i64>,
    request: HttpRequest,
) -> ApiResult<web::Json<OcdsReleasePackage>> {
    let id = id.into_inner();
    let agreement = state.read(move |conn| db::agreements::get(conn, id)).await?;
    Ok(web::Json(crate::ocds::package(&requested_uri(&request), &agreement, &state.ocid_prefix)))
}

/// One agreement as an OCDS 1.1 record package: its record holds its one current release and
/// the compiled release.
#[utoipa::path(
    tag = "agreements",
    operation_id = "get_agreement_ocds_record",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Agreement id")),
    responses((status = 200, body = OcdsRecordPackage, description = "An OCDS 1.1 record package"), ReadErrors)
)]
#[get("/agreements/{id}/ocds/record")]
pub async fn get_agreement_ocds_record(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    id: web::Path<i64>,
    request: HttpRequest,
) -> ApiResult<web::Json<OcdsRecordPackage>> {
    let id = id.into_inner();
    let agreement = state.read(move |conn| db::agreements::get(conn, id)).await?;
    let uri = requested_uri(&request);
    let release_package = uri.strip_suffix("/record").unwrap_or(&uri).to_owned();
    Ok(web::Json(crate::ocds::record_package(&uri, &release_package, &agreement, &state.ocid_prefix)))
}

/// One agreement.
#[utoipa::path(
    tag = "agreements",
    operation_id = "get_agreement",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Agreement id")),
    responses((status = 200, body = Agreement, headers(("ETag" = String))), ReadErrors)
)]
#[get("/agreements/{id}")]
pub async fn get_agreement(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let agreement = state.read(move |conn| db::agreements::get(conn, id)).await?;
    Ok(with_etag(HttpResponse::Ok(), agreement.revision, &agreement))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgreement {
    pub supplier_id: i64,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub reference: String,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub title: String,
    pub framework_reference: Option<String>,
    #[serde(deserialize_with = "crate::dates::required")]
    pub starts_on: NaiveDate,
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub ends_on: Option<NaiveDate>,
    pub funding_model: FundingModel,
    pub status: AgreementStatus,
    #[schema(min_items = 1)]
    pub eligible_kinds: Vec<OrganisationKind>,
    pub source: Option<String>,
    /// The value in the currency's minor unit (pence for GBP); null when not published.
    #[schema(minimum = 0, maximum = 100_000_000_000_000_i64)]
    pub value_minor: Option<i64>,
    /// ISO 4217 code; GBP when left out.
    #[serde(default = "default_currency")]
    #[schema(pattern = "^[A-Z]{3}$", default = "GBP")]
    pub currency: String,
    /// A supplier id: the reseller the agreement was awarded to.
    pub reseller_id: Option<i64>,
    pub framework_lot: Option<String>,
    #[schema(minimum = 1, maximum = 1200)]
    pub initial_term_months: Option<i32>,
    /// Addresses (http or https) of published notices; at most 50.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub notice_urls: Vec<NoticeUrl>,
    pub commercial_source: Option<String>,
    /// The contracting authority that bought it; the OCDS export's buyer (the catalogue's
    /// publisher when null).
    #[schema(min_length = 1, max_length = 200, pattern = "[^\\s\\u0085]")]
    pub buyer: Option<String>,
    /// Options to extend; at most 20.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub extension_options: Vec<ExtensionOptionInput>,
}

/// The address of a published notice: `http://` or `https://` and 1 to 1,990 characters with no
/// white space (the data layer's rule, published here so that clients know it).
#[derive(Deserialize, ToSchema)]
#[schema(
    pattern = "^https?://[^\\s\\u0085]{1,1990}$",
    example = "https://www.find-tender.service.gov.uk/Notice/000001-2024"
)]
#[serde(transparent)]
pub struct NoticeUrl(pub String);

fn default_currency() -> String {
    "GBP".into()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionOptionInput {
    /// How long the extension runs, in months.
    #[schema(minimum = 1, maximum = 1200)]
    pub months: i32,
    /// The date by which the option must be decided.
    #[serde(deserialize_with = "crate::dates::required")]
    pub decide_by: NaiveDate,
    /// Null (or left out) while undecided.
    pub decision: Option<ExtensionDecision>,
    /// Only with a decision; may be null when the date is not known.
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub decided_on: Option<NaiveDate>,
    pub source: Option<String>,
}

impl From<ExtensionOptionInput> for NewExtensionOption {
    fn from(o: ExtensionOptionInput) -> NewExtensionOption {
        NewExtensionOption {
            months: o.months,
            decide_by: o.decide_by,
            decision: o.decision,
            decided_on: o.decided_on,
            source: o.source,
        }
    }
}

/// Create an agreement.
#[utoipa::path(
    tag = "agreements",
    operation_id = "create_agreement",
    security(("bearer" = [])),
    request_body = CreateAgreement,
    responses((status = 201, body = Agreement, headers(("ETag" = String))), WriteErrors)
)]
#[post("/agreements")]
pub async fn create_agreement(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    body: Json<CreateAgreement>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let fields = AgreementFields {
        supplier_id: b.supplier_id,
        reference: b.reference,
        title: b.title,
        framework_reference: b.framework_reference,
        starts_on: b.starts_on,
        ends_on: b.ends_on,
        funding_model: b.funding_model,
        status: b.status,
        eligible_kinds: b.eligible_kinds,
        source: b.source,
        value_minor: b.value_minor,
        currency: b.currency,
        reseller_id: b.reseller_id,
        framework_lot: b.framework_lot,
        initial_term_months: b.initial_term_months,
        notice_urls: b.notice_urls.into_iter().map(|u| u.0).collect(),
        commercial_source: b.commercial_source,
        buyer: b.buyer,
        extension_options: b.extension_options.into_iter().map(Into::into).collect(),
    };
    let actor = admin.actor();
    let agreement = state.run(move |db| db::agreements::create(db, &actor, fields)).await?;
    Ok(with_etag(HttpResponse::Created(), agreement.revision, &agreement))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgreement {
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub framework_reference: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub starts_on: Option<NaiveDate>,
    #[serde(default, deserialize_with = "crate::dates::double_optional")]
    #[schema(value_type = Option<NaiveDate>)]
    pub ends_on: Option<Option<NaiveDate>>,
    pub funding_model: Option<FundingModel>,
    /// Forward only: draft to active or terminated; active to expired or terminated.
    pub status: Option<AgreementStatus>,
    #[schema(min_items = 1)]
    pub eligible_kinds: Option<Vec<OrganisationKind>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub source: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 100_000_000_000_000_i64)]
    pub value_minor: Option<Option<i64>>,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub reseller_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub framework_lot: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 1200)]
    pub initial_term_months: Option<Option<i32>>,
    #[schema(max_items = 50)]
    pub notice_urls: Option<Vec<NoticeUrl>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub commercial_source: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200, pattern = "[^\\s\\u0085]")]
    pub buyer: Option<Option<String>>,
    /// The whole new list of extension options (recording a decision is an update of this list).
    #[schema(max_items = 20)]
    pub extension_options: Option<Vec<ExtensionOptionInput>>,
}

/// Update an agreement. Agreements are never deleted: end one by setting its status.
#[utoipa::path(
    tag = "agreements",
    operation_id = "update_agreement",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Agreement id"),
        ("If-Match" = String, Header, description = "The ETag from GET (a quoted entity tag such as \"3\"; several may be listed), or *; anything else is refused with 400", pattern = r#"^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#),
    ),
    request_body = UpdateAgreement,
    responses((status = 200, body = Agreement, headers(("ETag" = String))), WriteErrors, PreconditionErrors)
)]
#[patch("/agreements/{id}")]
pub async fn update_agreement(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<UpdateAgreement>,
) -> ApiResult<HttpResponse> {
    let precondition = if_match.precondition()?;
    let b = body.into_inner();
    let change = move |f: &mut AgreementFields| {
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(value) = b.$field { f.$field = value; })* };
        }
        set!(
            title,
            framework_reference,
            starts_on,
            ends_on,
            funding_model,
            status,
            eligible_kinds,
            source,
            value_minor,
            currency,
            reseller_id,
            framework_lot,
            initial_term_months,
            commercial_source,
            buyer
        );
        if let Some(urls) = b.notice_urls {
            f.notice_urls = urls.into_iter().map(|u| u.0).collect();
        }
        if let Some(options) = b.extension_options {
            f.extension_options = options.into_iter().map(Into::into).collect();
        }
    };
    let (id, actor) = (id.into_inner(), admin.actor());
    let agreement = state.run(move |db| db::agreements::update(db, &actor, id, change, precondition)).await?;
    Ok(with_etag(HttpResponse::Ok(), agreement.revision, &agreement))
}

/// The entitlement lines of an agreement, with seats allocated and remaining.
#[utoipa::path(
    tag = "agreements",
    operation_id = "list_agreement_entitlements",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Agreement id"), PageQuery),
    responses((status = 200, description = "A page of entitlement lines, or all of them as CSV", content(
            (EntitlementPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/agreements/{id}/entitlements")]
pub async fn list_agreement_entitlements(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let (id, page) = (id.into_inner(), page_request(query.limit, query.cursor)?);
    spreadsheet::list(&state, csv, "entitlements", page, move |conn, page| {
        db::agreements::entitlements_of(conn, id, page)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObligationInput {
    #[schema(pattern = "[^\\s\\u0085]")]
    pub description: String,
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub due_on: Option<NaiveDate>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEntitlement {
    pub product_id: i64,
    pub tier: Tier,
    pub metric: Metric,
    /// Null for no cap; at most 1,000,000,000 (`db::agreements::MAX_SEATS_PER_LINE`).
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub seat_cap: Option<i64>,
    #[serde(default = "default_policy")]
    pub over_allocation_policy: OverAllocationPolicy,
    #[schema(min_items = 1)]
    pub eligible_kinds: Vec<OrganisationKind>,
    #[serde(deserialize_with = "crate::dates::required")]
    pub starts_on: NaiveDate,
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub ends_on: Option<NaiveDate>,
    pub how_to_claim: Option<String>,
    /// A claim on the line is held as a seat request until an admin approves it (default false).
    #[serde(default)]
    pub requires_approval: bool,
    /// The most seats one organisation may hold of the line (null: only `seat_cap` applies).
    /// With the `block` policy it may not exceed `seat_cap`.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub per_organisation_cap: Option<i64>,
    /// Offer the line only to organisations taking this NHSmail service on the day asked about.
    pub nhsmail_service: Option<NhsmailService>,
    #[serde(default)]
    pub obligations: Vec<ObligationInput>,
    pub source: Option<String>,
}

fn default_policy() -> OverAllocationPolicy {
    OverAllocationPolicy::Block
}

/// Add an entitlement line to an agreement.
#[utoipa::path(
    tag = "agreements",
    operation_id = "create_entitlement",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Agreement id")),
    request_body = CreateEntitlement,
    responses((status = 201, body = Entitlement, headers(("ETag" = String))), WriteErrors)
)]
#[post("/agreements/{id}/entitlements")]
pub async fn create_entitlement(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
    body: Json<CreateEntitlement>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let fields = EntitlementFields {
        product_id: b.product_id,
        tier: b.tier,
        metric: b.metric,
        seat_cap: b.seat_cap,
        over_allocation_policy: b.over_allocation_policy,
        eligible_kinds: b.eligible_kinds,
        starts_on: b.starts_on,
        ends_on: b.ends_on,
        how_to_claim: b.how_to_claim,
        requires_approval: b.requires_approval,
        per_organisation_cap: b.per_organisation_cap,
        nhsmail_service: b.nhsmail_service,
        source: b.source,
    };
    let obligations = b
        .obligations
        .into_iter()
        .map(|o| NewObligation { description: o.description, due_on: o.due_on })
        .collect();
    let (id, actor) = (id.into_inner(), admin.actor());
    let entitlement =
        state.run(move |db| db::agreements::create_entitlement(db, &actor, id, fields, obligations)).await?;
    Ok(with_etag(HttpResponse::Created(), entitlement.revision, &entitlement))
}

/// One entitlement line, with seats allocated and remaining.
#[utoipa::path(
    tag = "agreements",
    operation_id = "get_entitlement",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Entitlement id")),
    responses((status = 200, body = Entitlement, headers(("ETag" = String))), ReadErrors)
)]
#[get("/entitlements/{id}")]
pub async fn get_entitlement(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let entitlement = state.entitlement(id.into_inner()).await?;
    Ok(with_etag(HttpResponse::Ok(), entitlement.revision, &entitlement))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEntitlement {
    /// A lower cap is refused (409) while more seats are allocated, unless the policy is
    /// `allow_and_flag`, which flags the excess for true-up. At most 1,000,000,000.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000)]
    pub seat_cap: Option<Option<i64>>,
    pub over_allocation_policy: Option<OverAllocationPolicy>,
    #[schema(min_items = 1)]
    pub eligible_kinds: Option<Vec<OrganisationKind>>,
    #[serde(default, deserialize_with = "crate::dates::double_optional")]
    #[schema(value_type = Option<NaiveDate>)]
    pub ends_on: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub how_to_claim: Option<Option<String>>,
    /// Requests already pending stay pending when this is turned off (an admin decides them).
    pub requires_approval: Option<bool>,
    /// Lowering it keeps what organisations hold; it refuses new claims past it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000)]
    pub per_organisation_cap: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<NhsmailService>)]
    pub nhsmail_service: Option<Option<NhsmailService>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub source: Option<Option<String>>,
}

/// Update an entitlement line (cap, policy, eligibility, end date).
#[utoipa::path(
    tag = "agreements",
    operation_id = "update_entitlement",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Entitlement id"),
        ("If-Match" = String, Header, description = "The ETag from GET (a quoted entity tag such as \"3\"; several may be listed), or *; anything else is refused with 400", pattern = r#"^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#),
    ),
    request_body = UpdateEntitlement,
    responses((status = 200, body = Entitlement, headers(("ETag" = String))), WriteErrors, PreconditionErrors)
)]
#[patch("/entitlements/{id}")]
pub async fn update_entitlement(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<UpdateEntitlement>,
) -> ApiResult<HttpResponse> {
    let precondition = if_match.precondition()?;
    let b = body.into_inner();
    let changes = EntitlementChanges {
        seat_cap: b.seat_cap,
        over_allocation_policy: b.over_allocation_policy,
        eligible_kinds: b.eligible_kinds,
        ends_on: b.ends_on,
        how_to_claim: b.how_to_claim,
        requires_approval: b.requires_approval,
        per_organisation_cap: b.per_organisation_cap,
        nhsmail_service: b.nhsmail_service,
        source: b.source,
    };
    let (id, actor) = (id.into_inner(), admin.actor());
    let entitlement = state
        .run(move |db| db::agreements::update_entitlement(db, &actor, id, changes, precondition))
        .await?;
    Ok(with_etag(HttpResponse::Ok(), entitlement.revision, &entitlement))
}
