//! Agreements: the list, and one agreement with its entitlement lines. The national team and
//! auditors also see a utilisation chart per entitlement, from `db::reports::utilisation` (the
//! API's `AdminOrAuditor` report).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::PageRequest;
use db::agreements::{AgreementFilter, AgreementOrder};
use db::products::Supplier;
use db::vocabulary::AgreementStatus;
use serde::Deserialize;

use crate::auth::extractors::{AdminOnly, AdminOrAuditor, AnyRole};
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::chart::utilisation_svg;
use crate::web::start::{kind_words, words};
use crate::web::{Choice, SortHeading};
use crate::web::{
    Chrome, FieldError, Session, WebError, WebResult, count, error_for, long_date, optional_text,
    query_value, render, today,
};

/// Agreements on one page of the list.
const PAGE_SIZE: i64 = 50;

#[derive(Deserialize)]
pub struct AgreementListQuery {
    /// Part of the reference or the title.
    #[serde(default)]
    q: String,
    /// A supplier's id, or empty for any.
    #[serde(default)]
    supplier: String,
    #[serde(default)]
    status: String,
    /// `yes` to list expired and terminated agreements too.
    #[serde(default)]
    include_ended: String,
    /// `title`, `end_date`, or `reference` (the default).
    #[serde(default)]
    sort: String,
    cursor: Option<String>,
    /// `csv`: the whole selection as a file (the page's "Download CSV").
    format: Option<String>,
}

/// The filters as typed, to show back and to repeat in the addresses the page links to.
struct Filters {
    q: String,
    supplier: String,
    status: String,
    include_ended: bool,
}

impl Filters {
    fn of(query: &AgreementListQuery) -> Filters {
        Filters {
            q: query.q.trim().to_owned(),
            supplier: query.supplier.trim().to_owned(),
            status: query.status.trim().to_owned(),
            include_ended: query.include_ended == "yes",
        }
    }

    /// The data layer's filter, or every problem with what was typed, each against its field.
    fn read(
        &self,
        order: AgreementOrder,
        suppliers: &[Supplier],
    ) -> Result<AgreementFilter, Vec<FieldError>> {
        let mut errors = Vec::new();
        let supplier_id = match self.supplier.as_str() {
            "" => None,
            typed => {
                typed.parse::<i64>().ok().filter(|id| suppliers.iter().any(|s| s.id == *id)).or_else(|| {
                    errors.push(FieldError::new("supplier", "Choose a supplier from the list"));
                    None
                })
            }
        };
        let status = match self.status.as_str() {
            "" => None,
            typed => AgreementStatus::parse(typed).or_else(|| {
                errors.push(FieldError::new("status", "Choose a status from the list"));
                None
            }),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AgreementFilter {
            supplier_id,
            status,
            include_ended: self.include_ended,
            q: optional_text(&self.q),
            order,
            ..AgreementFilter::default()
        })
    }

    /// The list's address for these filters in `order`, with `extra` after them (a cursor, the
    /// format): only what was typed, so that the address stays short.
    fn address(&self, order: AgreementOrder, extra: &[(&str, &str)]) -> String {
        let typed = [
            ("q", self.q.as_str()),
            ("supplier", self.supplier.as_str()),
            ("status", self.status.as_str()),
            ("include_ended", if self.include_ended { "yes" } else { "" }),
            ("sort", if order == DEFAULT_ORDER { "" } else { order.as_str() }),
        ];
        let pairs: Vec<String> = typed
            .iter()
            .chain(extra)
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={}", query_value(value)))
            .collect();
        match pairs.is_empty() {
            true => "/agreements".to_owned(),
            false => format!("/agreements?{}", pairs.join("&")),
        }
    }
}

/// The list's order when none is asked for.
const DEFAULT_ORDER: AgreementOrder = AgreementOrder::Reference;

pub struct AgreementRow {
    pub id: i64,
    pub reference: String,
    pub title: String,
    pub supplier: String,
    pub status: String,
    pub dates: String,
}

#[derive(Template)]
#[template(path = "agreements.html")]
struct AgreementsPage {
    chrome: Chrome,
    filters: Filters,
    suppliers: Vec<Choice>,
    statuses: Vec<Choice>,
    /// The order shown, to keep when the filters change.
    sort: &'static str,
    /// Words for the order shown, for the table's caption.
    sorted_by: &'static str,
    sort_headings: [SortHeading; 3],
    agreements: Vec<AgreementRow>,
    first_page: Option<String>,
    next_page: Option<String>,
    /// The whole selection (every page) as a CSV file.
    download: String,
    errors: Vec<FieldError>,
    /// Whether to offer "Add an agreement" (the national team).
    can_add: bool,
}

impl AgreementsPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

fn dates(starts_on: chrono::NaiveDate, ends_on: Option<chrono::NaiveDate>) -> String {
    match ends_on {
        Some(end) => format!("{} to {}", long_date(starts_on), long_date(end)),
        None => format!("From {}", long_date(starts_on)),
    }
}

/// The agreements, filtered and ordered on the server, 50 a page; ended ones only when asked
/// for (they are kept for history). Every signed-in role reads them, as the API lets them.
pub async fn agreements_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<AgreementListQuery>,
) -> WebResult<HttpResponse> {
    session.require::<AnyRole>()?;
    let query = query.into_inner();
    let order = match query.sort.trim() {
        "" => DEFAULT_ORDER,
        sort => {
            AgreementOrder::parse(sort).filter(|order| *order != AgreementOrder::Id).ok_or_else(|| {
                WebError::BadRequest("The list is sorted by reference, title or end date".into())
            })?
        }
    };
    let suppliers = state.read(every_supplier).await?;
    let filters = Filters::of(&query);
    let (agreements, next_cursor, errors) = match filters.read(order, &suppliers) {
        Ok(filter) if query.format.as_deref() == Some("csv") => {
            let every = PageRequest::default();
            return Ok(spreadsheet::list(&state, true, "agreements", every, move |conn, page| {
                db::agreements::list(conn, &filter, page)
            })
            .await?);
        }
        Ok(filter) => {
            let page = PageRequest { limit: Some(PAGE_SIZE), cursor: query.cursor.clone() };
            let found = state.read(move |conn| db::agreements::list(conn, &filter, &page)).await?;
            (found.items, found.next_cursor, Vec::new())
        }
        Err(errors) => (Vec::new(), None, errors),
    };
    let sort_heading =
        |label, by: AgreementOrder| SortHeading::ascending(label, filters.address(by, &[]), by == order);
    let (status, title) = match errors.is_empty() {
        true => (StatusCode::OK, "Agreements"),
        false => (StatusCode::UNPROCESSABLE_ENTITY, "Error: Agreements"),
    };
    let choice = |value: String, label: String, typed: &str| Choice::new(&value, label, typed);
    let view = AgreementsPage {
        chrome: Chrome::for_session(title, &session, "/agreements"),
        suppliers: std::iter::once(choice(String::new(), "Any supplier".into(), &filters.supplier))
            .chain(suppliers.into_iter().map(|s| choice(s.id.to_string(), s.name, &filters.supplier)))
            .collect(),
        statuses: std::iter::once(choice(String::new(), "Any status".into(), &filters.status))
            .chain(
                AgreementStatus::ALL
                    .iter()
                    .map(|s| choice(s.as_str().to_owned(), words(s.as_str()), &filters.status)),
            )
            .collect(),
        sort: order.as_str(),
        sorted_by: match order {
            AgreementOrder::Title => "title",
            AgreementOrder::EndDate => "end date, the soonest first",
            _ => "reference",
        },
        sort_headings: [
            sort_heading("Agreement", AgreementOrder::Title),
            sort_heading("Reference", AgreementOrder::Reference),
            sort_heading("Dates", AgreementOrder::EndDate),
        ],
        agreements: agreements
            .into_iter()
            .map(|a| AgreementRow {
                dates: dates(a.starts_on, a.ends_on),
                id: a.id,
                reference: a.reference,
                title: a.title,
                supplier: a.supplier,
                status: words(a.status.as_str()),
            })
            .collect(),
        first_page: query.cursor.is_some().then(|| filters.address(order, &[])),
        next_page: next_cursor.map(|cursor| filters.address(order, &[("cursor", &cursor)])),
        download: filters.address(order, &[("format", "csv")]),
        can_add: session.require::<AdminOnly>().is_ok(),
        filters,
        errors,
    };
    render(status, &view)
}

/// Every supplier, by name, for the filter's choices.
pub(crate) fn every_supplier(conn: &mut db::DbConnection) -> db::DbResult<Vec<Supplier>> {
    let mut suppliers: Vec<Supplier> = Vec::new();
    let mut page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    loop {
        let found = db::products::list_suppliers(conn, &page)?;
        suppliers.extend(found.items);
        match found.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => break,
        }
    }
    suppliers.sort_by_key(|supplier| supplier.name.to_lowercase());
    Ok(suppliers)
}

pub struct EntitlementRow {
    pub id: i64,
    pub product_id: i64,
    pub product: String,
    pub tier: String,
    pub metric: String,
    pub cap: String,
    pub allocated: String,
    pub remaining: String,
    pub over_cap: String,
    pub dates: String,
    pub obligations: Vec<String>,
}

pub struct ChartView {
    pub entitlement_id: i64,
    pub product: String,
    pub svg: String,
    pub by_kind: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "agreement.html")]
struct AgreementPage {
    chrome: Chrome,
    reference: String,
    title: String,
    supplier: String,
    framework_reference: Option<String>,
    status: String,
    dates: String,
    funding_model: String,
    eligible: String,
    entitlements: Vec<EntitlementRow>,
    charts: Option<Vec<ChartView>>,
    on: String,
    commercial: Commercial,
    id: i64,
    /// Whether to offer "Change" (the national team).
    can_change: bool,
    notice: Option<&'static str>,
}

/// The commercial record as the page shows it: each fact in words, or `None` to leave its row out.
struct Commercial {
    value: Option<String>,
    buyer: Option<String>,
    reseller: Option<String>,
    framework_lot: Option<String>,
    initial_term: Option<String>,
    notices: Vec<String>,
    source: Option<String>,
    /// Undecided options, the soonest first: (what, decide by, how soon).
    coming_up: Vec<(String, String, String, bool)>,
    /// Decided options: (what, decision).
    decided: Vec<(String, String)>,
}

/// A value in its currency's major units with thousands separators: £774,500,000, or
/// EUR 1,250.50 (pence shown only when there are some).
pub fn money(value_minor: i64, currency: &str) -> String {
    let (major, rest) = db::agreements::major_units(value_minor, currency);
    let digits = db::agreements::minor_unit_digits(currency) as usize;
    let amount = if rest == 0 { count(major) } else { format!("{}.{rest:0digits$}", count(major)) };
    match currency {
        "GBP" => format!("£{amount}"),
        other => format!("{other} {amount}"),
    }
}

fn months(n: i32) -> String {
    if n == 1 { "1 month".into() } else { format!("{n} months") }
}

fn commercial(agreement: &db::agreements::Agreement, on: chrono::NaiveDate) -> Commercial {
    use db::vocabulary::ExtensionDecision;
    let mut coming_up = Vec::new();
    let mut decided = Vec::new();
    for option in &agreement.extension_options {
        let what = format!("Extend by {}", months(option.months));
        match option.decision {
            None => {
                let days = (option.decide_by - on).num_days();
                let when = match days {
                    d if d < 0 => format!("Overdue by {} days: no decision recorded", -d),
                    0 => "Due today".into(),
                    1 => "Due tomorrow".into(),
                    d => format!("Due in {d} days"),
                };
                coming_up.push((what, long_date(option.decide_by), when, days < 0));
            }
            Some(decision) => {
                let verb = match decision {
                    ExtensionDecision::Taken => "Taken",
                    ExtensionDecision::Declined => "Declined",
                };
                let when = match option.decided_on {
                    Some(date) => format!("{verb} on {}", long_date(date)),
                    None => format!("{verb} (date not published)"),
                };
                decided.push((what, when));
            }
        }
    }
    Commercial {
        value: agreement.value_minor.map(|v| money(v, &agreement.currency)),
        buyer: agreement.buyer.clone(),
        reseller: agreement.reseller.clone(),
        framework_lot: agreement.framework_lot.clone(),
        initial_term: agreement.initial_term_months.map(months),
        notices: agreement.notice_urls.clone(),
        source: agreement.commercial_source.clone(),
        coming_up,
        decided,
    }
}

#[derive(Deserialize)]
pub struct AgreementQuery {
    /// `added` or `changed`, after the form that did it.
    notice: Option<String>,
}

pub async fn agreement_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<AgreementQuery>,
) -> WebResult<HttpResponse> {
    let id = id.into_inner();
    let sees_report = session.require::<AdminOrAuditor>().is_ok();
    let on = today();
    let (agreement, entitlements, report) = state
        .run(move |db| {
            db.read(|conn| {
                let agreement = db::agreements::get(conn, id)?;
                let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
                let entitlements = db::agreements::entitlements_of(conn, id, &page)?;
                let report = if sees_report {
                    Some(db::reports::utilisation(conn, Some(id), true, on)?)
                } else {
                    None
                };
                Ok((agreement, entitlements.items, report))
            })
        })
        .await?;
    let charts = report.map(|report| {
        report
            .agreements
            .into_iter()
            .flat_map(|a| a.entitlements)
            .map(|line| ChartView {
                svg: utilisation_svg(&line),
                entitlement_id: line.entitlement_id,
                product: line.product.clone(),
                by_kind: line
                    .by_kind
                    .iter()
                    .map(|g| (kind_words(&g.key), count(g.seats), count(g.organisations)))
                    .collect(),
            })
            .collect()
    });
    let page = AgreementPage {
        commercial: commercial(&agreement, on),
        chrome: Chrome::for_session(agreement.title.clone(), &session, ""),
        dates: dates(agreement.starts_on, agreement.ends_on),
        reference: agreement.reference,
        title: agreement.title,
        supplier: agreement.supplier,
        framework_reference: agreement.framework_reference,
        status: words(agreement.status.as_str()),
        funding_model: words(agreement.funding_model.as_str()),
        eligible: agreement
            .eligible_kinds
            .iter()
            .map(|k| kind_words(k.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
        entitlements: entitlements
            .into_iter()
            .map(|e| EntitlementRow {
                dates: dates(e.starts_on, e.ends_on),
                id: e.id,
                product_id: e.product_id,
                product: e.product,
                tier: words(e.tier.as_str()),
                metric: words(e.metric.as_str()),
                cap: e.seat_cap.map(count).unwrap_or_else(|| "No cap".into()),
                allocated: count(e.seats_allocated),
                remaining: e.seats_remaining.map(count).unwrap_or_else(|| "Unlimited".into()),
                over_cap: count(e.seats_over_cap),
                obligations: e
                    .obligations
                    .into_iter()
                    .map(|o| match o.due_on {
                        Some(due) => format!("{} (by {})", o.description, long_date(due)),
                        None => o.description,
                    })
                    .collect(),
            })
            .collect(),
        charts,
        on: long_date(on),
        id,
        can_change: session.require::<AdminOnly>().is_ok(),
        notice: match query.notice.as_deref() {
            Some("added") => Some("The agreement is added."),
            Some("changed") => Some("Your changes to the agreement are saved."),
            _ => None,
        },
    };
    render(StatusCode::OK, &page)
}
