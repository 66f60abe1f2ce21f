//! Adding and changing a security advisory, for the national team only (the API's `AdminOnly`),
//! through `db::advisories::create` and `db::advisories::update`, the calls `POST /v1/advisories`
//! and `PATCH /v1/advisories/{id}` make. The rules are the data layer's: `db::advisories::problems`
//! lists every one the form breaks, each against its field, and the write applies them again.
//! The page adds only what a form needs: a severity chosen, the date read from its three boxes,
//! one link a line.
//!
//! A change carries the advisory's revision from when the form was shown, in a hidden field, and
//! is written only at that revision (`Precondition::Revision`, the API's `If-Match`): when someone
//! changed the advisory meanwhile, nothing is written and the form says so, keeping what was typed
//! and now carrying the new revision, so that sending it again replaces the other change knowingly.
//!
//! The date of publication is a day: today's date publishes at the moment the form is sent,
//! another day at midnight (UTC) starting it, and a change that keeps the day keeps the time
//! stored (the 48-hour acknowledgement deadline of high and critical advisories counts from it).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{NaiveDate, NaiveDateTime};
use db::advisories::{Advisory, AdvisoryFields, FieldProblem, Severity};

use crate::auth::extractors::AdminOnly;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::date_input::{DateField, DateInput, date_field};
use crate::web::start::words;
use crate::web::{
    CHANGED_FIELD, Chrome, FieldError, Refusal, Session, Submitted, WebError, WebResult, capitalised,
    changed_meanwhile, error_for, optional_text, render, see_other, today,
};

/// The day the advisory was published.
const PUBLISHED_ON: DateField = date_field!("published_on", "date of publication");

/// What was typed into the form, kept to show again. Read from the form's pairs, because the
/// affected products' checkboxes send one `products` pair each.
#[derive(Default)]
pub struct Typed {
    pub reference: String,
    pub title: String,
    pub severity: String,
    pub published_on_day: String,
    pub published_on_month: String,
    pub published_on_year: String,
    pub remediation: String,
    /// One link a line.
    pub links: String,
    pub source: String,
    /// The ids of the products ticked.
    pub products: Vec<String>,
    /// What to find products by, to tick more of them.
    pub find: String,
    /// Sent by the "Find products" button: show the form again with what `find` names, and write
    /// nothing.
    pub finding: bool,
    /// The advisory's revision when the form was shown (a change only).
    pub revision: String,
}

impl Typed {
    fn from_pairs(pairs: Vec<(String, String)>) -> Typed {
        let mut typed = Typed::default();
        for (name, value) in pairs {
            match name.as_str() {
                "reference" => typed.reference = value,
                "title" => typed.title = value,
                "severity" => typed.severity = value,
                "published_on-day" => typed.published_on_day = value,
                "published_on-month" => typed.published_on_month = value,
                "published_on-year" => typed.published_on_year = value,
                "remediation" => typed.remediation = value,
                "links" => typed.links = value,
                "source" => typed.source = value,
                "products" => typed.products.push(value.trim().to_owned()),
                "find" => typed.find = value,
                "action" => typed.finding = value == "find",
                "revision" => typed.revision = value,
                _ => {}
            }
        }
        typed
    }

    /// The form filled in with an advisory as it stands.
    fn of(advisory: &Advisory) -> Typed {
        let published = DateInput::showing(PUBLISHED_ON, advisory.published_at.date());
        let [day, month, year] = published.fields().map(|(_, value)| value);
        Typed {
            reference: advisory.reference.clone(),
            title: advisory.title.clone(),
            severity: advisory.severity.as_str().to_owned(),
            published_on_day: day,
            published_on_month: month,
            published_on_year: year,
            remediation: advisory.remediation.clone(),
            links: advisory.links.join("\n"),
            source: advisory.source.clone().unwrap_or_default(),
            products: advisory.affected_products.iter().map(|p| p.product_id.to_string()).collect(),
            revision: advisory.revision.to_string(),
            ..Typed::default()
        }
    }

    fn published_on(&self) -> DateInput {
        DateInput::typed(
            PUBLISHED_ON,
            &self.published_on_day,
            &self.published_on_month,
            &self.published_on_year,
        )
    }

    fn links(&self) -> Vec<String> {
        self.links.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect()
    }

    fn product_ids(&self) -> Vec<i64> {
        self.products.iter().filter_map(|id| id.parse().ok()).collect()
    }
}

/// One radio of the severity.
pub struct SeverityChoice {
    pub value: &'static str,
    pub label: String,
    pub hint: String,
    pub checked: bool,
}

/// One checkbox of the affected products.
pub struct ProductChoice {
    pub id: i64,
    pub label: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "advisory_form.html")]
struct AdvisoryFormPage {
    chrome: Chrome,
    /// The advisory changed (its id and reference); `None` when adding one.
    editing: Option<(i64, String)>,
    typed: Typed,
    published_on: DateInput,
    severities: Vec<SeverityChoice>,
    products: Vec<ProductChoice>,
    errors: Vec<FieldError>,
    published_hint: String,
}

impl AdvisoryFormPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }

    /// Whether the advisory changed since the form was shown.
    fn changed_meanwhile(&self) -> bool {
        self.error_for(CHANGED_FIELD).is_some()
    }
}

fn severity_hint(severity: Severity) -> String {
    match severity {
        Severity::Critical | Severity::High => format!(
            "Every organisation holding an affected product must acknowledge it within {} hours",
            db::advisories::ACKNOWLEDGE_WITHIN_HOURS
        ),
        Severity::Medium | Severity::Low => "Acknowledged when organisations can; no deadline".into(),
    }
}

/// The most products one search offers to tick.
const MAX_FOUND: i64 = 20;

/// The products the form offers: those ticked, by label, then those that the search names and are
/// not ticked (at most [`MAX_FOUND`]), found as the start page finds them (typos and word order
/// forgiven). Only these are rendered: a catalogue holds tens of thousands of products.
async fn product_choices(state: &AppState, typed: &Typed) -> WebResult<Vec<ProductChoice>> {
    let ticked = typed.product_ids();
    let find = typed.find.clone();
    let model = state.read_model();
    let (ticked, found) = state
        .read(move |conn| {
            let on = today();
            let ticked = db::products::with_ids(conn, &ticked, on)?;
            let found = crate::hot_reads::product_search_on(model.as_deref(), conn, &find, on, MAX_FOUND)?;
            Ok((ticked, found))
        })
        .await?;
    let choice = |checked| {
        move |product: db::products::Product| ProductChoice {
            id: product.id,
            label: product.label(),
            checked,
        }
    };
    let ticked_ids: Vec<i64> = ticked.iter().map(|p| p.id).collect();
    let mut choices: Vec<ProductChoice> = ticked.into_iter().map(choice(true)).collect();
    choices.sort_by_key(|c| c.label.to_lowercase());
    choices.extend(found.into_iter().filter(|p| !ticked_ids.contains(&p.id)).map(choice(false)));
    Ok(choices)
}

async fn render_form(
    state: &AppState,
    session: &Session,
    editing: Option<(i64, String)>,
    typed: Typed,
    published_on: DateInput,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let heading = match &editing {
        Some((_, reference)) => format!("Change {reference}"),
        None => "Add an advisory".to_owned(),
    };
    let title = if errors.is_empty() { heading } else { format!("Error: {heading}") };
    let severities = Severity::ALL
        .iter()
        .rev()
        .map(|severity| SeverityChoice {
            value: severity.as_str(),
            label: words(severity.as_str()),
            hint: severity_hint(*severity),
            checked: typed.severity == severity.as_str(),
        })
        .collect();
    let products = product_choices(state, &typed).await?;
    let page = AdvisoryFormPage {
        chrome: Chrome::for_session(title, session, "/advisories"),
        editing,
        typed,
        published_on,
        severities,
        products,
        errors,
        published_hint: format!(
            "For example, {}. Today's date publishes it now; another day, from midnight (UTC) that day",
            today().format("%-d %-m %Y")
        ),
    };
    render(status, &page)
}

/// Reads the form into an advisory's fields (`reference` for a new one; a change keeps its own),
/// or says everything to correct, each against its field: what the form alone can tell (a
/// severity chosen, a real date), then every rule of `db::advisories::problems`.
fn fields_from(
    typed: &Typed,
    reference: &str,
    published_on: &mut DateInput,
) -> Result<(AdvisoryFields, NaiveDate), Vec<FieldError>> {
    let mut errors = Vec::new();
    let severity = Severity::parse(&typed.severity);
    let date = published_on.read(&mut errors);
    let fields = AdvisoryFields {
        reference: reference.trim().to_owned(),
        title: typed.title.trim().to_owned(),
        severity: severity.unwrap_or(Severity::Low),
        published_at: NaiveDateTime::default(),
        remediation: typed.remediation.trim().to_owned(),
        links: typed.links(),
        affected_product_ids: typed.product_ids(),
        source: optional_text(&typed.source),
    };
    for problem in db::advisories::problems(&fields) {
        let (field, message) = match problem {
            FieldProblem::NoReference => {
                ("reference", "Enter a reference for the advisory, like CC-2025-0001")
            }
            FieldProblem::NoTitle => ("title", "Enter a title for the advisory"),
            FieldProblem::NoRemediation => ("remediation", "Enter what organisations must do"),
            FieldProblem::NoAffectedProduct => {
                ("products", "Choose at least one product the advisory affects")
            }
        };
        errors.push(FieldError::new(field, message));
    }
    if severity.is_none() {
        errors.push(FieldError::new("severity", "Choose how severe the advisory is"));
    }
    // In the order the form asks: the summary lists problems top to bottom.
    let order = |field: &str| {
        let fields = [
            "reference",
            "title",
            "severity",
            PUBLISHED_ON.day,
            PUBLISHED_ON.month,
            PUBLISHED_ON.year,
            "remediation",
            "products",
        ];
        fields.iter().position(|f| *f == field)
    };
    errors.sort_by_key(|error| order(error.field));
    match date {
        Some(date) if errors.is_empty() => Ok((fields, date)),
        _ => Err(errors),
    }
}

/// The moment a new advisory is published on `date`: now when it is today, else the day's start.
fn published_at(date: NaiveDate) -> NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    if date == now.date() { now } else { date.and_time(chrono::NaiveTime::MIN) }
}

/// The form to add an advisory.
pub async fn new_advisory_page(state: web::Data<AppState>, session: Session) -> WebResult<HttpResponse> {
    session.require::<AdminOnly>()?;
    let typed = Typed::default();
    let published_on = typed.published_on();
    render_form(&state, &session, None, typed, published_on, Vec::new(), StatusCode::OK).await
}

/// Publishes the advisory, as `POST /v1/advisories` does; its page on success, else the form
/// again with every problem and what was typed.
pub async fn create_advisory(
    state: web::Data<AppState>,
    submitted: Submitted<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let session = submitted.session;
    let admin = session.require::<AdminOnly>()?;
    let typed = Typed::from_pairs(submitted.form);
    let mut published_on = typed.published_on();
    if typed.finding {
        return render_form(&state, &session, None, typed, published_on, Vec::new(), StatusCode::OK).await;
    }
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let (mut fields, date) = match fields_from(&typed, &typed.reference, &mut published_on) {
        Ok(read) => read,
        Err(errors) => {
            return render_form(&state, &session, None, typed, published_on, errors, unprocessable).await;
        }
    };
    fields.published_at = published_at(date);
    let reference = fields.reference.clone();
    let actor = admin.actor();
    let error = match state.run(move |db| db::advisories::create(db, &actor, fields)).await {
        Ok(advisory) => return Ok(see_other(&format!("/advisories/{}?notice=published", advisory.id))),
        Err(error) => error,
    };
    let refused = Refusal::of(error)?;
    let problem = if refused.status == StatusCode::CONFLICT {
        FieldError::new("reference", &format!("An advisory with the reference {reference} already exists"))
    } else {
        // An affected product gone since the form was shown.
        FieldError::new("products", &capitalised(&refused.detail))
    };
    render_form(&state, &session, None, typed, published_on, vec![problem], unprocessable).await
}

async fn advisory(state: &AppState, id: i64) -> WebResult<Advisory> {
    Ok(state.read(move |conn| db::advisories::get(conn, id)).await?)
}

/// The form to change an advisory, filled in as it stands, with its revision.
pub async fn edit_advisory_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> WebResult<HttpResponse> {
    session.require::<AdminOnly>()?;
    let advisory = advisory(&state, id.into_inner()).await?;
    let typed = Typed::of(&advisory);
    let published_on = typed.published_on();
    let editing = Some((advisory.id, advisory.reference));
    render_form(&state, &session, editing, typed, published_on, Vec::new(), StatusCode::OK).await
}

/// Changes the advisory at the revision the form was shown with, as `PATCH /v1/advisories/{id}`
/// with `If-Match` does; its page on success, else the form again with every problem and what
/// was typed.
pub async fn update_advisory(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let (id, session) = (id.into_inner(), submitted.session);
    let admin = session.require::<AdminOnly>()?;
    let mut typed = Typed::from_pairs(submitted.form);
    let revision: i64 =
        typed.revision.trim().parse().map_err(|_| WebError::BadRequest("the form is out of date".into()))?;
    let current = advisory(&state, id).await?;
    let editing = Some((current.id, current.reference.clone()));
    let mut published_on = typed.published_on();
    if typed.finding {
        return render_form(&state, &session, editing, typed, published_on, Vec::new(), StatusCode::OK).await;
    }
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let (fields, date) = match fields_from(&typed, &current.reference, &mut published_on) {
        Ok(read) => read,
        Err(errors) => {
            return render_form(&state, &session, editing, typed, published_on, errors, unprocessable).await;
        }
    };
    let change = move |stored: &mut AdvisoryFields| {
        // The same day keeps the moment stored; another day starts at its midnight.
        let published_at =
            if stored.published_at.date() == date { stored.published_at } else { published_at(date) };
        *stored = AdvisoryFields { reference: stored.reference.clone(), published_at, ..fields };
    };
    let actor = admin.actor();
    let precondition = db::Precondition::Revision(revision);
    let error = match state.run(move |db| db::advisories::update(db, &actor, id, change, precondition)).await
    {
        Ok(_) => return Ok(see_other(&format!("/advisories/{id}?notice=changed"))),
        Err(error) => error,
    };
    let (problem, status) = match error {
        ApiError::PreconditionFailed => {
            // The form now carries the advisory's revision as it is: sent again, it is a choice.
            typed.revision = advisory(&state, id).await?.revision.to_string();
            (changed_meanwhile("advisory"), StatusCode::CONFLICT)
        }
        other => {
            let refused = Refusal::of(other)?;
            (FieldError::new("products", &capitalised(&refused.detail)), refused.status)
        }
    };
    render_form(&state, &session, editing, typed, published_on, vec![problem], status).await
}
