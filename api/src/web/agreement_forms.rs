//! Adding and changing an agreement, for the national team only (the API's `AdminOnly`), through
//! `db::agreements::create` and `db::agreements::update`, the calls `POST /v1/agreements` and
//! `PATCH /v1/agreements/{id}` make. The rules are the data layer's: `db::agreements::problems`
//! lists every one the fields break, each shown here against its field, and the write applies
//! them again (with what only the database can tell: a reference taken, a supplier gone, a move
//! between statuses that is not allowed). The page adds only what a form needs: the dates in
//! day, month and year boxes, the value typed in pounds (or the currency's major unit) with
//! separators, the notices one address a line, and the kinds of organisation ticked.
//!
//! A change that takes lines out of force (ending the agreement, or bringing its end date
//! forward) is shown on a "Check your answers" page first, and applied only when confirmed. A
//! change carries the agreement's revision from when the form was shown, and is written only at
//! that revision (the API's `If-Match`): when someone changed the agreement meanwhile, nothing is
//! written and the form says so (409), keeping what was typed and now carrying the new revision.
//!
//! The options to extend are not changed here: a change keeps them as they are (the API changes
//! them).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use db::agreements::{Agreement, AgreementFields, AgreementProblem, MAX_VALUE_MINOR};
use db::products::Supplier;
use db::vocabulary::{AgreementStatus, FundingModel, OrganisationKind};

use crate::auth::extractors::AdminOnly;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::Choice;
use crate::web::agreements::money;
use crate::web::date_input::{DateField, DateInput, date_field};
use crate::web::start::{kind_words, words};
use crate::web::{
    CHANGED_FIELD, Chrome, FieldError, Refusal, Session, Submitted, WebError, WebResult, capitalised,
    changed_meanwhile, count, error_for, long_date, optional_text, render, see_other,
};

const STARTS_ON: DateField = date_field!("starts_on", "start date");
const ENDS_ON: DateField = date_field!("ends_on", "end date");

/// The id of the first kind's checkbox, which the summary links to when none is ticked.
const KINDS_FIELD: &str = "kind-trust";

/// The fields the form sends that are not what was typed.
const NOT_TYPED: [&str; 3] = ["csrf_token", "confirmed", "change"];

/// What was typed into the form, as its fields came (in order), kept to show again and carried
/// through "Check your answers" in hidden fields.
pub struct Typed {
    pairs: Vec<(String, String)>,
}

impl Typed {
    fn from_pairs(pairs: Vec<(String, String)>) -> Typed {
        Typed { pairs: pairs.into_iter().filter(|(name, _)| !NOT_TYPED.contains(&name.as_str())).collect() }
    }

    /// The value of the field `name`, or nothing.
    pub fn get(&self, name: &str) -> &str {
        self.pairs.iter().find(|(n, _)| n == name).map_or("", |(_, value)| value.as_str())
    }

    fn set(&mut self, name: &str, value: String) {
        self.pairs.retain(|(n, _)| n != name);
        self.pairs.push((name.to_owned(), value));
    }

    /// Whether the kind's box is ticked.
    pub fn ticked(&self, kind: &OrganisationKind) -> bool {
        self.get(&kind_box(kind)) == "yes"
    }

    /// The form for a new agreement: paid for centrally, in pounds, open to every kind.
    fn new_agreement() -> Typed {
        let mut pairs =
            vec![("currency".to_owned(), "GBP".to_owned()), ("funding_model".into(), "central".into())];
        pairs.extend(OrganisationKind::ALL.iter().map(|kind| (kind_box(kind), "yes".to_owned())));
        Typed { pairs }
    }

    /// The form filled in with an agreement as it stands.
    fn of(agreement: &Agreement) -> Typed {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let mut pairs = vec![
            ("revision".to_owned(), agreement.revision.to_string()),
            ("title".into(), agreement.title.clone()),
            ("framework_reference".into(), text(&agreement.framework_reference)),
            ("framework_lot".into(), text(&agreement.framework_lot)),
            ("buyer".into(), text(&agreement.buyer)),
            ("funding_model".into(), agreement.funding_model.as_str().into()),
            ("status".into(), agreement.status.as_str().into()),
            (
                "value".into(),
                agreement.value_minor.map(|v| amount(v, &agreement.currency)).unwrap_or_default(),
            ),
            ("currency".into(), agreement.currency.clone()),
            ("reseller".into(), agreement.reseller_id.map(|id| id.to_string()).unwrap_or_default()),
            (
                "initial_term_months".into(),
                agreement.initial_term_months.map(|m| m.to_string()).unwrap_or_default(),
            ),
            ("notice_urls".into(), agreement.notice_urls.join("\n")),
            ("source".into(), text(&agreement.source)),
            ("commercial_source".into(), text(&agreement.commercial_source)),
        ];
        for (field, date) in [(STARTS_ON, Some(agreement.starts_on)), (ENDS_ON, agreement.ends_on)] {
            if let Some(date) = date {
                pairs.extend(DateInput::showing(field, date).fields());
            }
        }
        pairs.extend(agreement.eligible_kinds.iter().map(|kind| (kind_box(kind), "yes".to_owned())));
        Typed { pairs }
    }

    fn dates(&self) -> Dates {
        let date = |field: DateField| {
            DateInput::typed(field, self.get(field.day), self.get(field.month), self.get(field.year))
        };
        Dates { starts: date(STARTS_ON), ends: date(ENDS_ON) }
    }
}

/// The name of a kind's checkbox: `kind-trust`.
fn kind_box(kind: &OrganisationKind) -> String {
    format!("kind-{}", kind.as_str())
}

/// A value in minor units as the form shows it: 774,500,000 or 1,250.50, without the currency.
fn amount(value_minor: i64, currency: &str) -> String {
    let (major, rest) = db::agreements::major_units(value_minor, currency);
    let digits = db::agreements::minor_unit_digits(currency) as usize;
    if rest == 0 { count(major) } else { format!("{}.{rest:0digits$}", count(major)) }
}

/// A value typed in major units ("774,500,000", "£1,250.50") in `currency`'s minor unit;
/// `Err` when it is not an amount. One too large to hold reads as more than the most allowed.
fn value_minor(typed: &str, currency: &str) -> Result<Option<i64>, ()> {
    let text: String =
        typed.trim().trim_start_matches('£').chars().filter(|c| *c != ',' && *c != ' ').collect();
    if text.is_empty() {
        return Ok(None);
    }
    let digits = db::agreements::minor_unit_digits(currency) as usize;
    let (major, minor) = text.split_once('.').unwrap_or((&text, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if major.is_empty() || !all_digits(major) || !all_digits(minor) || minor.len() > digits {
        return Err(());
    }
    let minor = format!("{minor:0<digits$}");
    let scale = 10_i64.pow(digits as u32);
    let value = major
        .parse::<i64>()
        .ok()
        .and_then(|major| major.checked_mul(scale))
        .and_then(|value| value.checked_add(minor.parse::<i64>().unwrap_or(0)));
    Ok(Some(value.unwrap_or(i64::MAX)))
}

/// The agreement's two dates, each as typed and, once read, what is wrong with it.
pub struct Dates {
    pub starts: DateInput,
    pub ends: DateInput,
}

/// The agreement changed.
pub struct Editing {
    pub id: i64,
    pub reference: String,
    pub title: String,
    pub supplier: String,
    /// Its options to extend, in words (kept as they are).
    pub extensions: Vec<String>,
}

impl Editing {
    fn of(agreement: &Agreement) -> Editing {
        Editing {
            id: agreement.id,
            reference: agreement.reference.clone(),
            title: agreement.title.clone(),
            supplier: agreement.supplier.clone(),
            extensions: agreement
                .extension_options
                .iter()
                .map(|o| {
                    let decided = match o.decision {
                        Some(decision) => words(decision.as_str()),
                        None => "Not decided".into(),
                    };
                    format!("{} months, decide by {}: {decided}", o.months, long_date(o.decide_by))
                })
                .collect(),
        }
    }
}

/// One kind of organisation's checkbox.
pub struct KindBox {
    pub id: String,
    pub label: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "agreement_form.html")]
struct AgreementFormPage {
    chrome: Chrome,
    /// `None` when adding one.
    editing: Option<Editing>,
    typed: Typed,
    dates: Dates,
    suppliers: Vec<Choice>,
    resellers: Vec<Choice>,
    funding_models: Vec<Choice>,
    statuses: Vec<Choice>,
    kinds: Vec<KindBox>,
    errors: Vec<FieldError>,
}

impl AgreementFormPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }

    fn changed_meanwhile(&self) -> bool {
        self.error_for(CHANGED_FIELD).is_some()
    }

    fn submit_label(&self) -> &'static str {
        if self.editing.is_some() { "Continue" } else { "Add the agreement" }
    }

    fn cancel_href(&self) -> String {
        self.editing.as_ref().map_or_else(|| "/agreements".to_owned(), |e| format!("/agreements/{}", e.id))
    }
}

/// Every supplier, by name.
async fn suppliers(state: &AppState) -> WebResult<Vec<Supplier>> {
    Ok(state.read(crate::web::agreements::every_supplier).await?)
}

fn choices(first: &str, values: Vec<(String, String)>, chosen: &str) -> Vec<Choice> {
    std::iter::once((String::new(), first.to_owned()))
        .chain(values)
        .map(|(value, label)| Choice::new(&value, label, chosen.trim()))
        .collect()
}

/// The statuses an agreement may be given: any when adding one; when changing one, its own and
/// those it may move on to (forward only).
fn statuses(from: Option<AgreementStatus>) -> Vec<(String, String)> {
    AgreementStatus::ALL
        .iter()
        .filter(|to| from.is_none_or(|from| db::agreements::status_change_allowed(from, **to)))
        .map(|status| (status.as_str().to_owned(), words(status.as_str())))
        .collect()
}

async fn render_form(
    state: &AppState,
    session: &Session,
    editing: Option<(&Agreement, Editing)>,
    typed: Typed,
    dates: Dates,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let heading = match &editing {
        Some((_, editing)) => format!("Change {}", editing.title),
        None => "Add an agreement".to_owned(),
    };
    let title = if errors.is_empty() { heading } else { format!("Error: {heading}") };
    let every: Vec<(String, String)> =
        suppliers(state).await?.into_iter().map(|s| (s.id.to_string(), s.name)).collect();
    let from = editing.as_ref().map(|(agreement, _)| agreement.status);
    let page = AgreementFormPage {
        chrome: Chrome::for_session(title, session, ""),
        suppliers: choices("Choose the supplier", every.clone(), typed.get("supplier")),
        resellers: choices("None: awarded to the supplier", every, typed.get("reseller")),
        funding_models: choices(
            "Choose how it is paid for",
            FundingModel::ALL.iter().map(|f| (f.as_str().to_owned(), words(f.as_str()))).collect(),
            typed.get("funding_model"),
        ),
        statuses: choices("Choose its status", statuses(from), typed.get("status")),
        kinds: OrganisationKind::ALL
            .iter()
            .map(|kind| KindBox {
                id: kind_box(kind),
                label: kind_words(kind.as_str()),
                checked: typed.ticked(kind),
            })
            .collect(),
        editing: editing.map(|(_, editing)| editing),
        typed,
        dates,
        errors,
    };
    render(status, &page)
}

/// The form's fields in order: the summary lists problems top to bottom.
const ORDER: [&str; 23] = [
    "supplier",
    "reference",
    "title",
    "framework_reference",
    "framework_lot",
    "buyer",
    STARTS_ON.day,
    STARTS_ON.month,
    STARTS_ON.year,
    ENDS_ON.day,
    ENDS_ON.month,
    ENDS_ON.year,
    "funding_model",
    "status",
    KINDS_FIELD,
    "value",
    "currency",
    "reseller",
    "initial_term_months",
    "notice_urls",
    "extension-options",
    "source",
    CHANGED_FIELD,
];

/// The message beside a field for a rule of the data layer; the dates' rule marks the end date.
fn field_error(problem: AgreementProblem, currency: &str, dates: &mut Dates, errors: &mut Vec<FieldError>) {
    use AgreementProblem::*;
    let (field, message) = match problem {
        ValueOutOfRange => {
            let currency = if db::agreements::is_currency_code(currency) { currency } else { "GBP" };
            ("value", format!("The value must be {} or less", money(MAX_VALUE_MINOR, currency)))
        }
        NotACurrencyCode => {
            ("currency", "Enter the currency as its three-letter code, like GBP or EUR".into())
        }
        TermOutOfRange => (
            "initial_term_months",
            format!(
                "The initial term must be between 1 and {} months",
                count(db::agreements::MAX_TERM_MONTHS as i64)
            ),
        ),
        TooManyNotices => ("notice_urls", format!("List at most {} notices", db::agreements::MAX_NOTICES)),
        NotAnAddress(bad) => (
            "notice_urls",
            format!(
                "{bad} is not a web address: each notice starts with https:// or http:// and has no spaces"
            ),
        ),
        BuyerLength => (
            "buyer",
            format!("The buyer's name must be {} characters or fewer", db::agreements::MAX_BUYER_CHARS),
        ),
        TooManyExtensions | ExtensionMonthsOutOfRange | DecidedOnWithoutDecision => {
            ("extension-options", capitalised(&problem.detail()))
        }
        NoReference => ("reference", "Enter the agreement's reference, like CCS-RM6068-MS".into()),
        NoTitle => ("title", "Enter the agreement's title".into()),
        EndsBeforeStarts => {
            dates.ends.refuse("The end date must be the same as or after the start date", errors);
            return;
        }
        NoEligibleKinds => (KINDS_FIELD, "Choose at least one kind of organisation that may claim".into()),
    };
    errors.push(FieldError::new(field, &message));
}

/// Reads the form into an agreement's fields, or says everything to correct, each against its
/// field in the form's order: what the form alone can tell (choices made, real dates, an amount,
/// a number of months) and every rule of `db::agreements::problems`. `current` is the agreement
/// changed (its supplier, reference and options to extend are kept), `None` for a new one.
fn fields_from(
    typed: &Typed,
    current: Option<&Agreement>,
    dates: &mut Dates,
) -> Result<AgreementFields, Vec<FieldError>> {
    let mut errors = Vec::new();
    let supplier_id = match current {
        Some(agreement) => agreement.supplier_id,
        None => typed.get("supplier").trim().parse::<i64>().unwrap_or_else(|_| {
            errors.push(FieldError::new("supplier", "Choose the supplier"));
            0
        }),
    };
    let starts_on = dates.starts.read(&mut errors);
    let ends_on = if dates.ends.is_blank() { None } else { dates.ends.read(&mut errors) };
    let funding_model = FundingModel::parse(typed.get("funding_model").trim());
    if funding_model.is_none() {
        errors.push(FieldError::new("funding_model", "Choose how the agreement is paid for"));
    }
    let status = AgreementStatus::parse(typed.get("status").trim());
    match (status, current) {
        (None, _) => errors.push(FieldError::new("status", "Choose the agreement's status")),
        (Some(to), Some(agreement)) if !db::agreements::status_change_allowed(agreement.status, to) => errors
            .push(FieldError::new(
                "status",
                &format!(
                    "An agreement that is {} cannot become {}: choose one of the statuses listed",
                    agreement.status, to
                ),
            )),
        _ => {}
    }
    let currency = match typed.get("currency").trim() {
        "" => "GBP".to_owned(),
        typed => typed.to_uppercase(),
    };
    let value_minor = value_minor(typed.get("value"), &currency).unwrap_or_else(|()| {
        errors.push(FieldError::new("value", "Enter the value as an amount, like 774,500,000 or 1,250.50"));
        None
    });
    let reseller_id = match typed.get("reseller").trim() {
        "" => None,
        chosen => chosen.parse::<i64>().map(Some).unwrap_or_else(|_| {
            errors.push(FieldError::new("reseller", "Choose the reseller from the list"));
            None
        }),
    };
    let initial_term_months = match typed.get("initial_term_months").trim().replace(',', "").as_str() {
        "" => None,
        months => months.parse::<i32>().map(Some).unwrap_or_else(|_| {
            errors.push(FieldError::new(
                "initial_term_months",
                "Enter the initial term as a whole number of months, like 36",
            ));
            None
        }),
    };
    let fields = AgreementFields {
        supplier_id,
        reference: current.map_or_else(|| typed.get("reference").trim().to_owned(), |a| a.reference.clone()),
        title: typed.get("title").trim().to_owned(),
        framework_reference: optional_text(typed.get("framework_reference")),
        starts_on: starts_on.unwrap_or_default(),
        ends_on,
        funding_model: funding_model.unwrap_or(FundingModel::Central),
        status: status.unwrap_or(AgreementStatus::Draft),
        eligible_kinds: OrganisationKind::ALL.iter().filter(|kind| typed.ticked(kind)).copied().collect(),
        source: optional_text(typed.get("source")),
        value_minor,
        currency: currency.clone(),
        reseller_id,
        framework_lot: optional_text(typed.get("framework_lot")),
        initial_term_months,
        notice_urls: typed
            .get("notice_urls")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        commercial_source: optional_text(typed.get("commercial_source")),
        buyer: optional_text(typed.get("buyer")),
        extension_options: current.map(|a| AgreementFields::of(a).extension_options).unwrap_or_default(),
    };
    for problem in db::agreements::problems(&fields) {
        // The end date is compared only with a start date that reads.
        if problem == AgreementProblem::EndsBeforeStarts && starts_on.is_none() {
            continue;
        }
        field_error(problem, &currency, dates, &mut errors);
    }
    errors.sort_by_key(|error| ORDER.iter().position(|field| *field == error.field));
    match errors.is_empty() {
        true => Ok(fields),
        false => Err(errors),
    }
}

/// A refusal of the write the form could not foresee, against the field it concerns: a reference
/// already taken, a supplier or reseller gone, a status the agreement cannot move to.
fn refused(detail: &str) -> FieldError {
    let field = if detail.starts_with("an agreement with reference") {
        "reference"
    } else if detail.starts_with("supplier") {
        "supplier"
    } else if detail.starts_with("reseller") {
        "reseller"
    } else if detail.starts_with("an agreement cannot go") {
        "status"
    } else {
        "title"
    };
    let message = match detail.strip_suffix(" exists") {
        Some(taken) if field == "reference" => {
            format!("{} already exists: enter another reference", capitalised(taken))
        }
        _ => capitalised(detail),
    };
    FieldError::new(field, &message)
}

/// The form to add an agreement.
pub async fn new_agreement_page(state: web::Data<AppState>, session: Session) -> WebResult<HttpResponse> {
    session.require::<AdminOnly>()?;
    let typed = Typed::new_agreement();
    let dates = typed.dates();
    render_form(&state, &session, None, typed, dates, Vec::new(), StatusCode::OK).await
}

/// Adds the agreement, as `POST /v1/agreements` does; its page on success, else the form again
/// with every problem and what was typed.
pub async fn create_agreement(
    state: web::Data<AppState>,
    submitted: Submitted<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let session = submitted.session;
    let admin = session.require::<AdminOnly>()?;
    let typed = Typed::from_pairs(submitted.form);
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let mut dates = typed.dates();
    let fields = match fields_from(&typed, None, &mut dates) {
        Ok(fields) => fields,
        Err(errors) => return render_form(&state, &session, None, typed, dates, errors, unprocessable).await,
    };
    let actor = admin.actor();
    let error = match state.run(move |db| db::agreements::create(db, &actor, fields)).await {
        Ok(agreement) => return Ok(see_other(&format!("/agreements/{}?notice=added", agreement.id))),
        Err(error) => error,
    };
    let refusal = Refusal::of(error)?;
    render_form(&state, &session, None, typed, dates, vec![refused(&refusal.detail)], refusal.status).await
}

async fn agreement(state: &AppState, id: i64) -> WebResult<Agreement> {
    Ok(state.read(move |conn| db::agreements::get(conn, id)).await?)
}

/// The form to change an agreement, filled in as it stands, with its revision.
pub async fn edit_agreement_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> WebResult<HttpResponse> {
    session.require::<AdminOnly>()?;
    let agreement = agreement(&state, id.into_inner()).await?;
    let typed = Typed::of(&agreement);
    let dates = typed.dates();
    let editing = Some((&agreement, Editing::of(&agreement)));
    render_form(&state, &session, editing, typed, dates, Vec::new(), StatusCode::OK).await
}

/// One answer on "Check your answers": what it is, as typed, as it was, and the field to change.
pub struct Answer {
    pub key: &'static str,
    pub value: String,
    pub was: String,
    pub field: &'static str,
}

#[derive(Template)]
#[template(path = "agreement_check.html")]
struct CheckPage {
    chrome: Chrome,
    editing: Editing,
    answers: Vec<Answer>,
    /// The form as typed, sent again by "Confirm" or "Change".
    hidden: Vec<(String, String)>,
    /// How many lines the change takes out of force, in words.
    lines: String,
}

fn date_words(date: Option<NaiveDate>, none: &str) -> String {
    date.map_or_else(|| none.to_owned(), long_date)
}

/// What the change does, in the order of the form: each answer that differs from the agreement.
fn answers(before: &Agreement, after: &AgreementFields) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut add = |key, field, was: String, value: String| {
        if was != value {
            answers.push(Answer { key, value, was, field });
        }
    };
    add("Title", "title", before.title.clone(), after.title.clone());
    add("Start date", STARTS_ON.day, long_date(before.starts_on), long_date(after.starts_on));
    add("End date", ENDS_ON.day, date_words(before.ends_on, "None"), date_words(after.ends_on, "None"));
    add("Status", "status", words(before.status.as_str()), words(after.status.as_str()));
    add(
        "Funding",
        "funding_model",
        words(before.funding_model.as_str()),
        words(after.funding_model.as_str()),
    );
    let kinds = |kinds: &[OrganisationKind]| {
        kinds.iter().map(|k| kind_words(k.as_str())).collect::<Vec<_>>().join(", ")
    };
    add("Eligible", KINDS_FIELD, kinds(&before.eligible_kinds), kinds(&after.eligible_kinds));
    let value =
        |v: Option<i64>, currency: &str| v.map_or_else(|| "Not published".to_owned(), |v| money(v, currency));
    add(
        "Value",
        "value",
        value(before.value_minor, &before.currency),
        value(after.value_minor, &after.currency),
    );
    let text = |t: &Option<String>| t.clone().unwrap_or_else(|| "None".to_owned());
    add(
        "Framework",
        "framework_reference",
        text(&before.framework_reference),
        text(&after.framework_reference),
    );
    add("Framework lot", "framework_lot", text(&before.framework_lot), text(&after.framework_lot));
    add("Bought by", "buyer", text(&before.buyer), text(&after.buyer));
    add("Notices", "notice_urls", before.notice_urls.join(" "), after.notice_urls.join(" "));
    add("Source", "source", text(&before.source), text(&after.source));
    answers
}

/// Changes the agreement at the revision the form was shown with, as `PATCH /v1/agreements/{id}`
/// with `If-Match` does. A change that takes lines out of force is shown to check first; the
/// agreement's page on success, else the form again with every problem and what was typed.
pub async fn update_agreement(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let (id, session) = (id.into_inner(), submitted.session);
    let admin = session.require::<AdminOnly>()?;
    let sent = |name: &str| submitted.form.iter().any(|(n, v)| n == name && !v.is_empty());
    let (confirmed, change) = (sent("confirmed"), sent("change"));
    let mut typed = Typed::from_pairs(submitted.form);
    let revision: i64 = typed
        .get("revision")
        .trim()
        .parse()
        .map_err(|_| WebError::BadRequest("the form is out of date".into()))?;
    let current = agreement(&state, id).await?;
    let mut dates = typed.dates();
    if change {
        let editing = Some((&current, Editing::of(&current)));
        return render_form(&state, &session, editing, typed, dates, Vec::new(), StatusCode::OK).await;
    }
    let fields = match fields_from(&typed, Some(&current), &mut dates) {
        Ok(fields) => fields,
        Err(errors) => {
            let editing = Some((&current, Editing::of(&current)));
            let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
            return render_form(&state, &session, editing, typed, dates, errors, unprocessable).await;
        }
    };
    if fields.ends_sooner_than(&current) && !confirmed {
        let on = crate::web::today();
        let out_of_force = state
            .read(move |conn| {
                let page = db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
                Ok(db::agreements::entitlements_of(conn, id, &page)?.items)
            })
            .await?
            .iter()
            .filter(|line| line.in_force_on(on) || line.starts_on > on)
            .count();
        let page = CheckPage {
            chrome: Chrome::for_session("Check your answers", &session, ""),
            answers: answers(&current, &fields),
            lines: match out_of_force {
                0 => "It has no entitlement lines in force.".to_owned(),
                1 => "Its 1 entitlement line in force will end with it.".to_owned(),
                n => format!("Its {} entitlement lines in force will end with it.", count(n as i64)),
            },
            editing: Editing::of(&current),
            hidden: typed.pairs,
        };
        return render(StatusCode::OK, &page);
    }
    let actor = admin.actor();
    let precondition = db::Precondition::Revision(revision);
    let change = move |stored: &mut AgreementFields| *stored = fields;
    let written = state.run(move |db| db::agreements::update(db, &actor, id, change, precondition)).await;
    let (problem, status, shown) = match written {
        Ok(_) => return Ok(see_other(&format!("/agreements/{id}?notice=changed"))),
        Err(ApiError::PreconditionFailed) => {
            // The form now carries the agreement's revision as it is: sent again, it is a choice.
            let now = agreement(&state, id).await?;
            typed.set("revision", now.revision.to_string());
            (changed_meanwhile("agreement"), StatusCode::CONFLICT, now)
        }
        Err(other) => {
            let refusal = Refusal::of(other)?;
            (refused(&refusal.detail), refusal.status, current)
        }
    };
    let editing = Some((&shown, Editing::of(&shown)));
    render_form(&state, &session, editing, typed, dates, vec![problem], status).await
}
