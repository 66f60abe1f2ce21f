//! Every organisation, for every signed-in role (the API's `list_organisations` is `AnyRole`):
//! filtered on the server by name or code, kind, region and whether an exemplar, closed ones left
//! out unless asked for, 50 a page, ordered by name or code (`?sort=name`), and the whole
//! selection as one CSV file. The form is a GET, so the filters are the address, which the next
//! page, the column headings and the download repeat.
//!
//! Each row links to the organisation's page where the user may read it: officers and exemplars
//! see every organisation listed (as the API lists them) but only their own page (others answer
//! 404, as the API does), so a link there would lead nowhere.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::PageRequest;
use db::organisations::{Organisation, OrganisationFilter, OrganisationOrder};
use db::vocabulary::OrganisationKind;
use serde::Deserialize;

use crate::auth::extractors::{AdminOnly, AnyRole};
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::start::kind_words;
use crate::web::{
    Choice, Chrome, FieldError, Session, SortHeading, WebError, WebResult, error_for, long_date,
    optional_text, query_value, render,
};

/// Organisations on one page of the list.
const PAGE_SIZE: i64 = 50;

#[derive(Deserialize)]
pub struct OrganisationListQuery {
    /// Part of the name or the code.
    #[serde(default)]
    q: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    region: String,
    /// `yes`, `no`, or empty for either.
    #[serde(default)]
    exemplar: String,
    /// `yes` to list closed organisations too.
    #[serde(default)]
    include_closed: String,
    /// `name` or `code` (the default).
    #[serde(default)]
    sort: String,
    cursor: Option<String>,
    /// `csv`: the whole selection as a file (the page's "Download CSV").
    format: Option<String>,
}

/// The filters as typed, to show back and to repeat in the addresses the page links to.
struct Filters {
    q: String,
    kind: String,
    region: String,
    exemplar: String,
    include_closed: bool,
}

impl Filters {
    fn of(query: &OrganisationListQuery) -> Filters {
        Filters {
            q: query.q.trim().to_owned(),
            kind: query.kind.trim().to_owned(),
            region: query.region.trim().to_owned(),
            exemplar: query.exemplar.trim().to_owned(),
            include_closed: query.include_closed == "yes",
        }
    }

    /// The data layer's filter, or every problem with what was typed, each against its field.
    fn read(&self, order: OrganisationOrder) -> Result<OrganisationFilter, Vec<FieldError>> {
        let mut errors = Vec::new();
        let kind = match self.kind.as_str() {
            "" => None,
            kind => OrganisationKind::parse(kind).or_else(|| {
                errors.push(FieldError::new("kind", "Choose a kind of organisation from the list"));
                None
            }),
        };
        let exemplar = match self.exemplar.as_str() {
            "" => None,
            "yes" => Some(true),
            "no" => Some(false),
            _ => {
                errors.push(FieldError::new("exemplar", "Choose exemplars, others, or either"));
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(OrganisationFilter {
            kind,
            region: optional_text(&self.region),
            parent: None,
            exemplar,
            q: optional_text(&self.q),
            include_closed: self.include_closed,
            order,
        })
    }

    /// The list's address for these filters in `order`, with `extra` after them (a cursor, the
    /// format): only what was typed, so that the address stays short.
    fn address(&self, order: OrganisationOrder, extra: &[(&str, &str)]) -> String {
        let typed = [
            ("q", self.q.as_str()),
            ("kind", self.kind.as_str()),
            ("region", self.region.as_str()),
            ("exemplar", self.exemplar.as_str()),
            ("include_closed", if self.include_closed { "yes" } else { "" }),
            ("sort", if order == OrganisationOrder::Name { "name" } else { "" }),
        ];
        let pairs: Vec<String> = typed
            .iter()
            .chain(extra)
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={}", query_value(value)))
            .collect();
        match pairs.is_empty() {
            true => "/organisations".to_owned(),
            false => format!("/organisations?{}", pairs.join("&")),
        }
    }
}

pub struct OrganisationRow {
    pub code: String,
    pub name: String,
    /// Whether the user may open the organisation's page.
    pub linked: bool,
    pub kind: String,
    pub region: String,
    pub exemplar: bool,
    /// "Closed 1 April 2023, succeeded by RX1", when closed.
    pub closed: Option<String>,
}

fn row(session: &Session, organisation: Organisation) -> OrganisationRow {
    OrganisationRow {
        linked: session.user.ensure_can_read(&organisation.code).is_ok(),
        kind: kind_words(organisation.kind.as_str()),
        region: organisation.region.unwrap_or_default(),
        exemplar: organisation.exemplar,
        closed: organisation.closed.then(|| {
            let on = organisation.closed_on.map(|day| format!(" {}", long_date(day))).unwrap_or_default();
            match organisation.successor_code {
                Some(successor) => format!("Closed{on}, succeeded by {successor}"),
                None => format!("Closed{on}"),
            }
        }),
        code: organisation.code,
        name: organisation.name,
    }
}

#[derive(Template)]
#[template(path = "organisations.html")]
struct OrganisationListPage {
    chrome: Chrome,
    filters: Filters,
    kinds: Vec<Choice>,
    regions: Vec<Choice>,
    /// The order shown, to keep when the filters change.
    sort: &'static str,
    /// The headings of the name and code columns.
    sort_headings: [SortHeading; 2],
    organisations: Vec<OrganisationRow>,
    first_page: Option<String>,
    next_page: Option<String>,
    /// The whole selection (every page) as a CSV file.
    download: String,
    errors: Vec<FieldError>,
    /// Whether to offer "Add an organisation" (the national team).
    can_add: bool,
}

impl OrganisationListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

pub async fn organisations_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<OrganisationListQuery>,
) -> WebResult<HttpResponse> {
    session.require::<AnyRole>()?;
    let query = query.into_inner();
    let order = match query.sort.trim() {
        "" => OrganisationOrder::Code,
        sort => OrganisationOrder::parse(sort)
            .ok_or_else(|| WebError::BadRequest("The list is sorted by name or by code".into()))?,
    };
    let filters = Filters::of(&query);
    let (organisations, next_cursor, errors) = match filters.read(order) {
        Ok(filter) if query.format.as_deref() == Some("csv") => {
            let every = PageRequest::default();
            return Ok(spreadsheet::list(&state, true, "organisations", every, move |conn, page| {
                db::organisations::list(conn, &filter, page)
            })
            .await?);
        }
        Ok(filter) => {
            let page = PageRequest { limit: Some(PAGE_SIZE), cursor: query.cursor.clone() };
            let found = state.read(move |conn| db::organisations::list(conn, &filter, &page)).await?;
            (found.items, found.next_cursor, Vec::new())
        }
        Err(errors) => (Vec::new(), None, errors),
    };
    let regions = state.read(db::organisations::regions).await?;
    let listed = Listed { organisations, after: query.cursor, next_cursor };
    render_list(&session, filters, order, regions, listed, errors)
}

/// A page of the list as read: its rows, the cursor it started after and the next page's.
struct Listed {
    organisations: Vec<Organisation>,
    after: Option<String>,
    next_cursor: Option<String>,
}

fn render_list(
    session: &Session,
    filters: Filters,
    order: OrganisationOrder,
    regions: Vec<String>,
    listed: Listed,
    errors: Vec<FieldError>,
) -> WebResult<HttpResponse> {
    let sort_heading =
        |label, by: OrganisationOrder| SortHeading::ascending(label, filters.address(by, &[]), by == order);
    let (status, title) = match errors.is_empty() {
        true => (StatusCode::OK, "Organisations"),
        false => (StatusCode::UNPROCESSABLE_ENTITY, "Error: Organisations"),
    };
    let view = OrganisationListPage {
        chrome: Chrome::for_session(title, session, "/organisations"),
        kinds: std::iter::once(("", "Any kind".to_owned()))
            .chain(OrganisationKind::ALL.iter().map(|kind| (kind.as_str(), kind_words(kind.as_str()))))
            .map(|(value, label)| Choice::new(value, label, &filters.kind))
            .collect(),
        regions: regions
            .into_iter()
            .map(|region| Choice::new(&region, region.clone(), &filters.region))
            .collect(),
        sort: order.as_str(),
        sort_headings: [
            sort_heading("Name", OrganisationOrder::Name),
            sort_heading("Code", OrganisationOrder::Code),
        ],
        organisations: listed.organisations.into_iter().map(|o| row(session, o)).collect(),
        first_page: listed.after.is_some().then(|| filters.address(order, &[])),
        next_page: listed.next_cursor.map(|cursor| filters.address(order, &[("cursor", &cursor)])),
        download: filters.address(order, &[("format", "csv")]),
        can_add: session.require::<AdminOnly>().is_ok(),
        filters,
        errors,
    };
    render(status, &view)
}
