use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::NaiveDate;
use db::reports::UtilisationReport;
use db::risk::{MAX_WITHIN_MONTHS, RiskyHolding, UnsupportedFilter};
use db::vocabulary::RiskStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::extractors::{AdminOrAuditor, AnyRole};
use crate::error::{ApiError, ApiResult};
use crate::openapi::ReadErrors;
use crate::preconditions::page_request;
use crate::routes::today;
use crate::spreadsheet::{self, Format};
use crate::state::AppState;
use crate::views::{ObligationPage, ReconciliationPage, list_query};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UtilisationQuery {
    pub agreement_id: Option<i64>,
    /// Agreements not in force at `on` are left out unless this is true.
    #[serde(default)]
    pub include_ended: bool,
    /// Default today.
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub on: Option<NaiveDate>,
    /// `csv` for one row per entitlement line as a CSV file (or send `Accept: text/csv`); the
    /// breakdowns by kind and region are in the JSON only.
    pub format: Option<Format>,
}

/// One entitlement line of the utilisation report, as a row of its CSV file.
#[derive(Serialize, ToSchema)]
pub struct UtilisationLine {
    pub agreement_id: i64,
    pub agreement_reference: String,
    pub agreement_title: String,
    pub in_force: bool,
    pub entitlement_id: i64,
    pub product: String,
    pub tier: db::vocabulary::Tier,
    pub seat_cap: Option<i64>,
    pub seats_allocated: i64,
    pub seats_remaining: Option<i64>,
    pub seats_over_cap: i64,
}

impl UtilisationLine {
    fn lines_of(report: UtilisationReport) -> Vec<UtilisationLine> {
        let mut lines = Vec::new();
        for agreement in report.agreements {
            for line in agreement.entitlements {
                lines.push(UtilisationLine {
                    agreement_id: agreement.agreement_id,
                    agreement_reference: agreement.reference.clone(),
                    agreement_title: agreement.title.clone(),
                    in_force: agreement.in_force,
                    entitlement_id: line.entitlement_id,
                    product: line.product,
                    tier: line.tier,
                    seat_cap: line.seat_cap,
                    seats_allocated: line.seats_allocated,
                    seats_remaining: line.seats_remaining,
                    seats_over_cap: line.seats_over_cap,
                });
            }
        }
        lines
    }
}

/// Seat utilisation per agreement and entitlement: cap, allocated, remaining, over the cap,
/// by organisation kind and by region.
#[utoipa::path(
    tag = "reports",
    operation_id = "utilisation_report",
    security(("bearer" = [])),
    params(UtilisationQuery),
    responses(
        (status = 200, description = "The report, or one row per entitlement line as CSV (UtilisationLine's fields)", content(
            (UtilisationReport = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/reports/utilisation")]
pub async fn utilisation_report(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    query: web::Query<UtilisationQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let on = query.on.unwrap_or_else(today);
    let report = state
        .read(move |conn| db::reports::utilisation(conn, query.agreement_id, query.include_ended, on))
        .await?;
    if csv {
        return Ok(spreadsheet::whole("utilisation", &UtilisationLine::lines_of(report)));
    }
    Ok(HttpResponse::Ok().json(report))
}

list_query! {
    pub struct ObligationQuery {
        /// ODS code; officers and exemplars get their own organisation's whatever they ask.
        pub organisation: Option<String>,
        /// The date that decides what is overdue (default today).
        #[serde(default, deserialize_with = "crate::dates::optional")]
        pub on: Option<NaiveDate>,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<Format>,
    }
}

/// Open obligations, overdue first.
#[utoipa::path(
    tag = "reports",
    operation_id = "obligations_report",
    security(("bearer" = [])),
    params(ObligationQuery),
    responses((status = 200, description = "A page of obligations, or all of them as CSV", content(
            (ObligationPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/reports/obligations")]
pub async fn obligations_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<ObligationQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let organisation = user.report_scope(query.organisation)?;
    let page = page_request(query.limit, query.cursor)?;
    let on = query.on.unwrap_or_else(today);
    spreadsheet::list(&state, csv, "obligations", page, move |conn, page| {
        db::reports::open_obligations(conn, organisation.as_deref(), on, page)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ComplianceQuery {
    /// ODS code; officers and exemplars get their own organisation's whatever they ask.
    pub organisation: Option<String>,
    pub region: Option<String>,
    /// `csv` for the lines as one CSV file (or send `Accept: text/csv`).
    pub format: Option<Format>,
}

#[derive(Serialize, ToSchema)]
pub struct ComplianceReport {
    pub lines: Vec<db::purchases::ComplianceLine>,
}

/// Local purchases per organisation, region and category: compliant, non-compliant, spend, and
/// purchases made against versions since superseded.
#[utoipa::path(
    tag = "reports",
    operation_id = "compliance_report",
    security(("bearer" = [])),
    params(ComplianceQuery),
    responses(
        (status = 200, description = "The report, or its lines as CSV", content(
            (ComplianceReport = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/reports/compliance")]
pub async fn compliance_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<ComplianceQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let organisation = user.report_scope(query.organisation)?;
    let lines = state
        .read(move |conn| db::purchases::compliance(conn, organisation.as_deref(), query.region.as_deref()))
        .await?;
    Ok(spreadsheet::report(csv, "compliance", lines, |lines| ComplianceReport { lines }))
}

list_query! {
    pub struct UnsupportedQuery {
        /// The date asked about (default today), e.g. 2020-01-14 for the end of Windows 7.
        #[serde(default, deserialize_with = "crate::dates::optional")]
        pub on: Option<NaiveDate>,
        /// Also count products whose support ends within this many months of `on` (default 0).
        #[param(maximum = 120)]
        pub within_months: Option<u32>,
        /// Which holdings to list: `at_risk` (the default), those with no risk acceptance in force
        /// on `on` (an expired acceptance is flagged on the holding), or `accepted`, those covered by
        /// one. The totals count both.
        pub status: Option<RiskStatus>,
        /// ODS code: only this organisation's holdings (and totals).
        pub organisation: Option<String>,
        /// Only holdings (and totals) of organisations in this region.
        pub region: Option<String>,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<Format>,
    }
}

/// The whole report's counts under `on`, `within_months`, `organisation` and `region`, whatever
/// the status and the page asked for.
#[derive(Serialize, ToSchema)]
pub struct UnsupportedTotals {
    /// Holdings with no risk acceptance in force.
    pub holdings_at_risk: i64,
    /// Holdings covered by a risk acceptance in force.
    pub holdings_accepted: i64,
    /// Organisations with at least one holding at risk.
    pub organisations_at_risk: i64,
    /// Holdings at risk whose latest risk acceptance had expired.
    pub expired_acceptances: i64,
}

impl From<db::risk::UnsupportedTotals> for UnsupportedTotals {
    fn from(totals: db::risk::UnsupportedTotals) -> Self {
        UnsupportedTotals {
            holdings_at_risk: totals.holdings_at_risk,
            holdings_accepted: totals.holdings_accepted,
            organisations_at_risk: totals.organisations_at_risk,
            expired_acceptances: totals.expired_acceptances,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UnsupportedReportPage {
    /// The date asked about.
    pub on: NaiveDate,
    /// Products whose support ends within this many months also count (0: only unsupported).
    pub within_months: u32,
    /// The holdings listed: `at_risk` or `accepted`.
    pub status: RiskStatus,
    /// Holdings (an organisation and a product) in order of organisation code, then product id.
    pub items: Vec<RiskyHolding>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// The whole report's counts (for either status), on the first page only (no `cursor`):
    /// they take a pass over every holding, and a client walking the pages needs them once.
    pub totals: Option<UnsupportedTotals>,
}

/// Who holds unsupported software at a date (or software whose support ends soon), a page at a
/// time: the holdings at risk, or with `status=accepted` those covered by a risk acceptance, with
/// the whole report's totals on the first page.
#[utoipa::path(
    tag = "reports",
    operation_id = "unsupported_report",
    security(("bearer" = [])),
    params(UnsupportedQuery),
    responses(
        (status = 200, description = "One page of holdings, with the totals of the whole report; or as CSV", content(
            (UnsupportedReportPage = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/reports/unsupported")]
pub async fn unsupported_report(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    query: web::Query<UnsupportedQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let within_months = query.within_months.unwrap_or(0);
    if within_months > MAX_WITHIN_MONTHS {
        return Err(ApiError::BadRequest(format!("within_months must be at most {MAX_WITHIN_MONTHS}")));
    }
    let page = page_request(query.limit, query.cursor)?;
    let (on, status) = (query.on.unwrap_or_else(today), query.status.unwrap_or(RiskStatus::AtRisk));
    let filter = UnsupportedFilter {
        on,
        within_months,
        status: Some(status),
        organisation: query.organisation,
        region: query.region,
        only_ending: false,
    };
    if csv {
        return spreadsheet::list(&state, true, "unsupported", page, move |conn, page| {
            db::risk::unsupported_holdings(conn, &filter, page)
        })
        .await;
    }
    let first_page = page.cursor.is_none();
    let (found, totals) = state
        .read(move |conn| {
            let found = db::risk::unsupported_holdings(conn, &filter, &page)?;
            let totals = if first_page { Some(db::risk::unsupported_totals(conn, &filter)?) } else { None };
            Ok((found, totals))
        })
        .await?;
    Ok(HttpResponse::Ok().json(UnsupportedReportPage {
        on,
        within_months,
        status,
        items: found.items,
        next_cursor: found.next_cursor,
        totals: totals.map(UnsupportedTotals::from),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AdvisoryReportQuery {
    /// ODS code; officers and exemplars get their own organisation's whatever they ask.
    pub organisation: Option<String>,
    /// `csv` for the lines as one CSV file (or send `Accept: text/csv`).
    pub format: Option<Format>,
}

#[derive(Serialize, ToSchema)]
pub struct AdvisoryReport {
    /// Overdue acknowledgements first.
    pub lines: Vec<db::advisories::AdvisoryStanding>,
}

/// Responses to advisories by exposed organisations: overdue acknowledgements first.
#[utoipa::path(
    tag = "reports",
    operation_id = "advisories_report",
    security(("bearer" = [])),
    params(AdvisoryReportQuery),
    responses(
        (status = 200, description = "The report, or its lines as CSV", content(
            (AdvisoryReport = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/reports/advisories")]
pub async fn advisories_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<AdvisoryReportQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let organisation = user.report_scope(query.organisation)?;
    let at = chrono::Utc::now().naive_utc();
    let lines = state.read(move |conn| db::advisories::report(conn, organisation.as_deref(), at)).await?;
    Ok(spreadsheet::report(csv, "advisories", lines, |lines| AdvisoryReport { lines }))
}

list_query! {
    pub struct ReconciliationQuery {
        /// ODS code; officers and exemplars get their own organisation's unless they ask for one
        /// they may read (an ICB's officer, for one it commissions for).
        pub organisation: Option<String>,
        /// NHS England region code, for example `Y63`.
        pub region: Option<String>,
        /// ODS code of the parent (the commissioning ICB).
        pub parent: Option<String>,
        /// Only rows with this flag.
        pub flag: Option<db::vocabulary::ReconciliationFlag>,
        /// The date that decides support and which lines are in force (default today).
        #[serde(default, deserialize_with = "crate::dates::optional")]
        pub on: Option<NaiveDate>,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<Format>,
    }
}

/// What organisations run (their estate snapshots) beside what they hold (national seats
/// claimed and local purchases), per organisation and product, by organisation code: flagged
/// `under_claimed` (running more than held where held or licensed nationally), `unlicensed`
/// (running, none held, no national line it may use), `unused` (held more than running: seats
/// to release) and `running_unsupported` (devices on a release past its security support).
/// Running is the larger of devices and users, and across sources the largest source's count.
/// Organisations with no estate snapshot are left out.
#[utoipa::path(
    tag = "reports",
    operation_id = "reconciliation_report",
    security(("bearer" = [])),
    params(ReconciliationQuery),
    responses((status = 200, description = "A page of rows, or all of them as CSV", content(
            (ReconciliationPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/reports/reconciliation")]
pub async fn reconciliation_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<ReconciliationQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let filter = reconciliation_filter(&user, query.organisation, query.region, query.parent, query.flag)?;
    let page = page_request(query.limit, query.cursor)?;
    let on = query.on.unwrap_or_else(today);
    spreadsheet::list(&state, csv, "reconciliation", page, move |conn, page| {
        db::reconciliation::report(conn, &filter, on, page)
    })
    .await
}

fn reconciliation_filter(
    user: &crate::auth::extractors::CurrentUser,
    organisation: Option<String>,
    region: Option<String>,
    parent: Option<String>,
    flag: Option<db::vocabulary::ReconciliationFlag>,
) -> ApiResult<db::reconciliation::ReconciliationFilter> {
    Ok(db::reconciliation::ReconciliationFilter {
        organisation: user.report_scope(organisation)?,
        region,
        parent: parent.map(|code| code.to_uppercase()),
        flag,
    })
}
