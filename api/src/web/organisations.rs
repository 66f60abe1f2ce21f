//! An organisation's page: its live allocations (with release forms), its open obligations and
//! their deadlines, its local purchases (with a link to correct each) and its risk acceptances. Officers and exemplars see only their own organisation's page; any other
//! answers 404, as the API does.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::PageRequest;
use db::advisories::ResponseStatus;
use serde::Deserialize;

use crate::auth::extractors::{AdminOnly, ReadsOrganisation};
use crate::state::AppState;
use crate::web::advisories::status_tag;
use crate::web::session::PageOrganisation;
use crate::web::start::{AllocationView, can_act_for, kind_words, live_allocations};
use crate::web::{Chrome, WebResult, date_time, long_date, render, today};

pub struct PurchaseRow {
    pub id: i64,
    /// This purchase corrects an earlier one.
    pub corrects: bool,
    pub what: String,
    pub product_id: Option<i64>,
    pub standard_id: i64,
    /// The standard's title ("Standard 3" when it cannot be read).
    pub standard: String,
    pub version: i32,
    pub purchased_on: String,
    pub quantity: String,
    pub order_reference: String,
    pub compliant: bool,
}

pub struct AdvisoryRow {
    pub id: i64,
    pub reference: String,
    pub status: &'static str,
    pub status_colour: &'static str,
    pub acknowledge_by: Option<String>,
    pub needs_acknowledging: bool,
}

pub struct AcceptanceRow {
    pub product_id: i64,
    pub product: String,
    pub compensating_controls: String,
    pub mds2_reference: Option<String>,
    pub expires_on: String,
    pub recorded_on: String,
}

pub struct ObligationRow {
    pub description: String,
    pub due_on: Option<String>,
    pub overdue: bool,
    pub entitlement_id: i64,
}

#[derive(Template)]
#[template(path = "organisation.html")]
struct OrganisationPage {
    chrome: Chrome,
    code: String,
    name: String,
    kind: String,
    region: Option<String>,
    exemplar: bool,
    closed_on: Option<String>,
    successor_code: Option<String>,
    allocations: Vec<AllocationView>,
    obligations: Vec<ObligationRow>,
    purchases: Vec<PurchaseRow>,
    acceptances: Vec<AcceptanceRow>,
    advisories: Vec<AdvisoryRow>,
    can_release: bool,
    /// Whether to offer "Change" (the national team).
    can_change: bool,
    notice: Option<String>,
    return_to: String,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
    n: Option<i64>,
}

pub async fn organisation_page(
    state: web::Data<AppState>,
    page: PageOrganisation<ReadsOrganisation>,
    query: web::Query<NoticeQuery>,
) -> WebResult<HttpResponse> {
    let PageOrganisation { session, code, .. } = page;
    let lookup = code.clone();
    let (organisation, allocations, obligations, purchases, acceptances, advisories) = state
        .run(move |db| {
            db.read(|conn| {
                let organisation = db::organisations::get(conn, &lookup)?;
                let allocations = live_allocations(conn, &organisation.code)?;
                let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
                let obligations =
                    db::reports::open_obligations(conn, Some(&organisation.code), today(), &page)?;
                let purchases = db::purchases::list(conn, &organisation.code, false, &page)?.items;
                let standard_ids: Vec<i64> = purchases.iter().map(|p| p.standard_id).collect();
                let titles = db::standards::titles(conn, &standard_ids)?;
                let purchases = purchases
                    .into_iter()
                    .map(|p| {
                        let what = match p.product_id {
                            Some(id) => db::products::get(conn, id, today())?.label(),
                            None => p.description.clone().unwrap_or_default(),
                        };
                        Ok(PurchaseRow {
                            id: p.id,
                            corrects: p.supersedes_id.is_some(),
                            what,
                            product_id: p.product_id,
                            standard_id: p.standard_id,
                            standard: titles
                                .get(&p.standard_id)
                                .cloned()
                                .unwrap_or_else(|| format!("Standard {}", p.standard_id)),
                            version: p.version,
                            purchased_on: long_date(p.purchased_on),
                            quantity: crate::web::count(p.quantity),
                            order_reference: p.order_reference,
                            compliant: p.compliant,
                        })
                    })
                    .collect::<db::DbResult<Vec<_>>>()?;
                let acceptances = db::risk::acceptances_of(conn, &organisation.code)?
                    .into_iter()
                    .map(|a| {
                        Ok(AcceptanceRow {
                            product: db::products::get(conn, a.product_id, today())?.label(),
                            product_id: a.product_id,
                            compensating_controls: a.compensating_controls,
                            mds2_reference: a.mds2_reference,
                            expires_on: long_date(a.expires_on),
                            recorded_on: long_date(a.created_at.date()),
                        })
                    })
                    .collect::<db::DbResult<Vec<_>>>()?;
                let advisories =
                    db::advisories::report(conn, Some(&organisation.code), chrono::Utc::now().naive_utc())?;
                Ok((organisation, allocations, obligations.items, purchases, acceptances, advisories))
            })
        })
        .await?;
    let notice = match (query.notice.as_deref(), query.n) {
        (Some("released"), Some(n)) => Some(format!("You released {}.", crate::web::counted(n, "seat", "seats"))),
        (Some("added"), _) => Some("The organisation is added.".to_owned()),
        (Some("changed"), _) => Some("Your changes to the organisation are saved.".to_owned()),
        (Some("acknowledged"), _) => Some("The advisory is acknowledged.".to_owned()),
        (Some("purchased"), _) => {
            Some("The purchase is recorded: it meets every MUST requirement.".to_owned())
        }
        (Some("purchased-non-compliant"), _) => Some(
            "The purchase is recorded, marked non-compliant: it does not meet every MUST requirement."
                .to_owned(),
        ),
        (Some("corrected"), _) => Some(
            "The correction is recorded and replaces the earlier purchase: it meets every MUST requirement."
                .to_owned(),
        ),
        (Some("corrected-non-compliant"), _) => Some(
            "The correction is recorded and replaces the earlier purchase, marked non-compliant: it does not \
             meet every MUST requirement."
                .to_owned(),
        ),
        (Some("risk-accepted"), _) => Some("The risk acceptance is recorded.".to_owned()),
        (Some("seat-changes"), Some(1)) => Some("The seat change in the file is made.".to_owned()),
        (Some("seat-changes"), Some(n)) => {
            Some(format!("All {} seat changes in the file are made.", crate::web::count(n)))
        }
        _ => None,
    };
    let page = OrganisationPage {
        chrome: Chrome::for_session(organisation.name.clone(), &session, &format!("/organisations/{code}")),
        can_release: can_act_for(&session, &organisation.code),
        can_change: session.require::<AdminOnly>().is_ok(),
        return_to: format!("/organisations/{}", organisation.code),
        code: organisation.code,
        name: organisation.name,
        kind: kind_words(organisation.kind.as_str()),
        region: organisation.region,
        exemplar: organisation.exemplar,
        closed_on: organisation.closed_on.map(long_date),
        successor_code: organisation.successor_code,
        allocations,
        obligations: obligations
            .into_iter()
            .map(|o| ObligationRow {
                description: o.description,
                due_on: o.due_on.map(long_date),
                overdue: o.overdue,
                entitlement_id: o.entitlement_id,
            })
            .collect(),
        purchases,
        acceptances,
        advisories: advisories
            .into_iter()
            .filter(|a| a.status != ResponseStatus::Closed)
            .map(|a| {
                let (status, status_colour) = status_tag(a.status);
                AdvisoryRow {
                    id: a.advisory_id,
                    reference: a.reference,
                    status,
                    status_colour,
                    acknowledge_by: a.acknowledge_by.map(date_time),
                    needs_acknowledging: matches!(
                        a.status,
                        ResponseStatus::Overdue | ResponseStatus::NotAcknowledged
                    ),
                }
            })
            .collect(),
        notice,
    };
    render(StatusCode::OK, &page)
}
