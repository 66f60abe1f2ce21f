use actix_web::{get, web};
use chrono::NaiveDate;
use db::reports::{OpenObligation, UtilisationReport};
use db::risk::{RiskyHolding, UnsupportedFilter};
use db::vocabulary::RiskStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::extractors::{AdminOrAuditor, AnyRole};
use crate::error::{ApiError, ApiResult};
use crate::openapi::ReadErrors;
use crate::preconditions::page_request;
use crate::routes::today;
use crate::state::AppState;

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
}

/// Seat utilisation per agreement and entitlement: cap, allocated, remaining, over the cap,
/// by organisation kind and by region.
#[utoipa::path(
    tag = "reports",
    operation_id = "utilisation_report",
    security(("bearer" = [])),
    params(UtilisationQuery),
    responses((status = 200, body = UtilisationReport), ReadErrors)
)]
#[get("/reports/utilisation")]
pub async fn utilisation_report(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    query: web::Query<UtilisationQuery>,
) -> ApiResult<web::Json<UtilisationReport>> {
    let query = query.into_inner();
    let on = query.on.unwrap_or_else(today);
    let report = state
        .run(move |db| {
            db.read(|conn| db::reports::utilisation(conn, query.agreement_id, query.include_ended, on))
        })
        .await?;
    Ok(web::Json(report))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ObligationQuery {
    /// ODS code; officers and exemplars get their own organisation's whatever they ask.
    pub organisation: Option<String>,
    /// The date that decides what is overdue (default today).
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub on: Option<NaiveDate>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ObligationPage {
    pub items: Vec<OpenObligation>,
    pub next_cursor: Option<String>,
}

/// Open obligations, overdue first.
#[utoipa::path(
    tag = "reports",
    operation_id = "obligations_report",
    security(("bearer" = [])),
    params(ObligationQuery),
    responses((status = 200, body = ObligationPage), ReadErrors)
)]
#[get("/reports/obligations")]
pub async fn obligations_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<ObligationQuery>,
) -> ApiResult<web::Json<ObligationPage>> {
    let query = query.into_inner();
    let organisation = user.report_scope(query.organisation)?;
    let page = page_request(query.limit, query.cursor)?;
    let on = query.on.unwrap_or_else(today);
    let found = state
        .run(move |db| {
            db.read(|conn| db::reports::open_obligations(conn, organisation.as_deref(), on, &page))
        })
        .await?;
    Ok(web::Json(ObligationPage { items: found.items, next_cursor: found.next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ComplianceQuery {
    /// ODS code; officers and exemplars get their own organisation's whatever they ask.
    pub organisation: Option<String>,
    pub region: Option<String>,
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
    responses((status = 200, body = ComplianceReport), ReadErrors)
)]
#[get("/reports/compliance")]
pub async fn compliance_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<ComplianceQuery>,
) -> ApiResult<web::Json<ComplianceReport>> {
    let query = query.into_inner();
    let organisation = user.report_scope(query.organisation)?;
    let lines = state
        .run(move |db| {
            db.read(|conn| db::purchases::compliance(conn, organisation.as_deref(), query.region.as_deref()))
        })
        .await?;
    Ok(web::Json(ComplianceReport { lines }))
}

/// The longest look-ahead of the unsupported-software report, in months.
pub const MAX_WITHIN_MONTHS: u32 = 120;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
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
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
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
        (status = 200, description = "One page of holdings, with the totals of the whole report", body = UnsupportedReportPage),
        ReadErrors
    )
)]
#[get("/reports/unsupported")]
pub async fn unsupported_report(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    query: web::Query<UnsupportedQuery>,
) -> ApiResult<web::Json<UnsupportedReportPage>> {
    let query = query.into_inner();
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
    };
    let first_page = page.cursor.is_none();
    let (found, totals) = state
        .run(move |db| {
            db.read(|conn| {
                let found = db::risk::unsupported_holdings(conn, &filter, &page)?;
                let totals =
                    if first_page { Some(db::risk::unsupported_totals(conn, &filter)?) } else { None };
                Ok((found, totals))
            })
        })
        .await?;
    Ok(web::Json(UnsupportedReportPage {
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
    responses((status = 200, body = AdvisoryReport), ReadErrors)
)]
#[get("/reports/advisories")]
pub async fn advisories_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<AdvisoryReportQuery>,
) -> ApiResult<web::Json<AdvisoryReport>> {
    let query = query.into_inner();
    let organisation = user.report_scope(query.organisation)?;
    let at = chrono::Utc::now().naive_utc();
    let lines = state
        .run(move |db| db.read(|conn| db::advisories::report(conn, organisation.as_deref(), at)))
        .await?;
    Ok(web::Json(AdvisoryReport { lines }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
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
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReconciliationPage {
    pub items: Vec<db::reconciliation::ReconciliationRow>,
    pub next_cursor: Option<String>,
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
    responses((status = 200, body = ReconciliationPage), ReadErrors)
)]
#[get("/reports/reconciliation")]
pub async fn reconciliation_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<ReconciliationQuery>,
) -> ApiResult<web::Json<ReconciliationPage>> {
    let query = query.into_inner();
    let filter = reconciliation_filter(&user, query.organisation, query.region, query.parent, query.flag)?;
    let page = page_request(query.limit, query.cursor)?;
    let on = query.on.unwrap_or_else(today);
    let found =
        state.run(move |db| db.read(|conn| db::reconciliation::report(conn, &filter, on, &page))).await?;
    Ok(web::Json(ReconciliationPage { items: found.items, next_cursor: found.next_cursor }))
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationExportQuery {
    /// As for the report.
    pub organisation: Option<String>,
    pub region: Option<String>,
    pub parent: Option<String>,
    pub flag: Option<db::vocabulary::ReconciliationFlag>,
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub on: Option<NaiveDate>,
}

/// The export's columns, in order: every field of a reconciliation row (flags joined by `;`).
const RECONCILIATION_COLUMNS: [&str; 14] = [
    "organisation_code",
    "organisation_name",
    "product_id",
    "product",
    "running",
    "running_devices",
    "running_users",
    "unsupported_devices",
    "claimed",
    "purchased",
    "licensed_nationally",
    "shortfall",
    "surplus",
    "flags",
];

/// The whole reconciliation report as CSV, for a spreadsheet: the same rows and filters as
/// `GET /v1/reports/reconciliation`, every page at once; text that a spreadsheet would run as a
/// formula (a cell starting `=`, `+`, `-`, `@`, tab or carriage return) gets a leading apostrophe.
#[utoipa::path(
    tag = "reports",
    operation_id = "export_reconciliation_report",
    security(("bearer" = [])),
    params(ReconciliationExportQuery),
    responses(
        (status = 200, description = "The rows, by organisation and product", content((String = "text/csv"))),
        ReadErrors
    )
)]
#[get("/reports/reconciliation/export")]
pub async fn export_reconciliation_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<ReconciliationExportQuery>,
) -> ApiResult<actix_web::HttpResponse> {
    let query = query.into_inner();
    let filter = reconciliation_filter(&user, query.organisation, query.region, query.parent, query.flag)?;
    let on = query.on.unwrap_or_else(today);
    // The first chunk of organisations is read before answering, so that a failure is still a
    // problem response; the rest stream a chunk at a time (the national report at 10x is 600,000
    // rows, 70 MB of CSV) through a small bounded channel, which waits while the client is slow.
    let (mut walk, first) = state
        .run(move |db| {
            let mut walk = db::reconciliation::Walk::new(filter, on);
            let first = db.read(|conn| walk.next(conn))?;
            Ok((walk, first))
        })
        .await?;
    let head = reconciliation_csv(&first.unwrap_or_default(), true)?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(2);
    let db = state.db.clone();
    actix_web::rt::task::spawn_blocking(move || {
        if sender.blocking_send(Ok(web::Bytes::from(head))).is_err() {
            return;
        }
        loop {
            let chunk = db.read(|conn| walk.next(conn)).map_err(|e| e.to_string()).and_then(|rows| {
                rows.map(|rows| reconciliation_csv(&rows, false).map_err(|e| e.to_string())).transpose()
            });
            let sent = match chunk {
                Ok(Some(bytes)) => sender.blocking_send(Ok(web::Bytes::from(bytes))),
                Ok(None) => return,
                Err(error) => {
                    tracing::error!(%error, "reconciliation export failed");
                    let _ = sender.blocking_send(Err(std::io::Error::other("reconciliation export failed")));
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"reconciliation.csv\""))
        .streaming(stream))
}

/// Reconciliation rows as CSV lines, after the header row when asked.
fn reconciliation_csv(rows: &[db::reconciliation::ReconciliationRow], header: bool) -> ApiResult<Vec<u8>> {
    let mut writer =
        csv::WriterBuilder::new().has_headers(false).from_writer(Vec::with_capacity(rows.len() * 128 + 256));
    if header {
        let _ = writer.write_record(RECONCILIATION_COLUMNS);
    }
    for row in rows {
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(row) else { continue };
        let _ = writer.write_record(RECONCILIATION_COLUMNS.iter().map(|column| match fields.get(*column) {
            Some(serde_json::Value::Array(flags)) => {
                flags.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join(";")
            }
            Some(value) => crate::spreadsheet::cell(value),
            None => String::new(),
        }));
    }
    writer.into_inner().map_err(|e| ApiError::Internal(format!("reconciliation CSV: {e}")))
}
