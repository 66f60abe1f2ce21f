//! Adding and changing an organisation, for the national team only (the API's `AdminOnly`),
//! through `db::organisations::create` and `db::organisations::update`, the calls
//! `POST /v1/organisations` and `PATCH /v1/organisations/{code}` make. The rules are the data
//! layer's: `db::organisations::problems` (and `name_problem` for a change) lists every one the
//! form breaks, each against its field, and the write applies them again. The page adds only
//! what a form needs: a kind chosen.
//!
//! On an organisation imported from ODS, ODS owns the name and region (`refuse_ods_owned` in the
//! data layer refuses a hand edit of them): the change page shows them as they are, not as fields,
//! and sends no change to them.
//!
//! A change carries the organisation's revision from when the form was shown, in a hidden field,
//! and is written only at that revision (`Precondition::Revision`, the API's `If-Match`): when
//! someone changed the organisation meanwhile, nothing is written and the form says so, keeping
//! what was typed and now carrying the new revision, so that sending it again replaces the other
//! change knowingly.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::organisations::{NewOrganisation, Organisation, OrganisationChanges, OrganisationProblem};
use db::vocabulary::OrganisationKind;
use serde::Deserialize;

use crate::auth::extractors::AdminOnly;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::start::kind_words;
use crate::web::{
    CHANGED_FIELD, Chrome, FieldError, Refusal, Session, Submitted, WebError, WebResult, capitalised,
    changed_meanwhile, error_for, optional_text, render, see_other,
};

/// What was typed into the form, kept to show again.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Typed {
    /// A new organisation only: a change keeps its code.
    pub code: String,
    pub name: String,
    pub kind: String,
    pub region: String,
    /// `yes` when ticked.
    pub exemplar: String,
    pub source: String,
    /// The organisation's revision when the form was shown (a change only).
    pub revision: String,
}

impl Typed {
    /// The form filled in with an organisation as it stands.
    fn of(organisation: &Organisation) -> Typed {
        Typed {
            code: organisation.code.clone(),
            name: organisation.name.clone(),
            kind: organisation.kind.as_str().to_owned(),
            region: organisation.region.clone().unwrap_or_default(),
            exemplar: if organisation.exemplar { "yes".into() } else { String::new() },
            source: organisation.source.clone().unwrap_or_default(),
            revision: organisation.revision.to_string(),
        }
    }

    fn exemplar(&self) -> bool {
        self.exemplar == "yes"
    }
}

/// One radio of the kind.
pub struct KindChoice {
    pub value: &'static str,
    pub label: String,
    pub checked: bool,
}

/// The organisation changed: its code, and what ODS owns of it when it comes from ODS.
pub struct Editing {
    pub code: String,
    /// The ODS file the record comes from, when ODS owns its name and region.
    pub ods_file: Option<String>,
    /// The name and region as stored, shown instead of fields when ODS owns them.
    pub name: String,
    pub region: Option<String>,
}

impl Editing {
    fn of(organisation: &Organisation) -> Editing {
        Editing {
            code: organisation.code.clone(),
            ods_file: organisation.owned_by_ods().then(|| organisation.ods_file.clone()).flatten(),
            name: organisation.name.clone(),
            region: organisation.region.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "organisation_form.html")]
struct OrganisationFormPage {
    chrome: Chrome,
    /// `None` when adding one.
    editing: Option<Editing>,
    typed: Typed,
    kinds: Vec<KindChoice>,
    errors: Vec<FieldError>,
}

impl OrganisationFormPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }

    /// Whether the name and region are fields: not when ODS owns them.
    fn offers_name_and_region(&self) -> bool {
        self.editing.as_ref().is_none_or(|editing| editing.ods_file.is_none())
    }

    /// Whether the organisation changed since the form was shown.
    fn changed_meanwhile(&self) -> bool {
        self.error_for(CHANGED_FIELD).is_some()
    }
}

fn render_form(
    session: &Session,
    editing: Option<Editing>,
    typed: Typed,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let heading = match &editing {
        Some(editing) => format!("Change {}", editing.name),
        None => "Add an organisation".to_owned(),
    };
    let title = if errors.is_empty() { heading } else { format!("Error: {heading}") };
    let kinds = OrganisationKind::ALL
        .iter()
        .map(|kind| KindChoice {
            value: kind.as_str(),
            label: kind_words(kind.as_str()),
            checked: typed.kind == kind.as_str(),
        })
        .collect();
    let page = OrganisationFormPage {
        chrome: Chrome::for_session(title, session, "/organisations"),
        editing,
        typed,
        kinds,
        errors,
    };
    render(status, &page)
}

/// The message beside a field for a rule of the data layer.
fn field_error(problem: OrganisationProblem) -> FieldError {
    match problem {
        OrganisationProblem::NotAnOdsCode => {
            FieldError::new("code", "Enter the ODS code: 3 to 10 letters and digits, like RR8")
        }
        OrganisationProblem::NoName => FieldError::new("name", "Enter the organisation's name"),
    }
}

/// The kind chosen, or the problem against its field.
fn kind_from(typed: &Typed, errors: &mut Vec<FieldError>) -> Option<OrganisationKind> {
    let kind = OrganisationKind::parse(typed.kind.trim());
    if kind.is_none() {
        errors.push(FieldError::new("kind", "Choose what kind of organisation it is"));
    }
    kind
}

/// Reads the form into a new organisation, or says everything to correct, each against its field,
/// in the form's order: every rule of `db::organisations::problems`, and a kind chosen.
fn new_from(typed: &Typed) -> Result<NewOrganisation, Vec<FieldError>> {
    let mut errors = Vec::new();
    let kind = kind_from(typed, &mut errors);
    let new = NewOrganisation {
        code: typed.code.trim().to_owned(),
        name: typed.name.trim().to_owned(),
        kind: kind.unwrap_or(OrganisationKind::Other),
        region: optional_text(&typed.region),
        exemplar: typed.exemplar(),
        source: optional_text(&typed.source),
    };
    let mut found: Vec<FieldError> = db::organisations::problems(&new).into_iter().map(field_error).collect();
    found.append(&mut errors);
    match found.is_empty() {
        true => Ok(new),
        false => Err(found),
    }
}

/// Reads the form into the changes to `editing`, or says everything to correct: the name's rule
/// (`db::organisations::name_problem`) and a kind chosen. What ODS owns is not changed.
fn changes_from(typed: &Typed, editing: &Editing) -> Result<OrganisationChanges, Vec<FieldError>> {
    let owned_by_ods = editing.ods_file.is_some();
    let mut errors: Vec<FieldError> = match owned_by_ods {
        true => Vec::new(),
        false => db::organisations::name_problem(&typed.name).into_iter().map(field_error).collect(),
    };
    let kind = kind_from(typed, &mut errors);
    match kind {
        Some(kind) if errors.is_empty() => Ok(OrganisationChanges {
            name: (!owned_by_ods).then(|| typed.name.trim().to_owned()),
            kind: Some(kind),
            region: (!owned_by_ods).then(|| optional_text(&typed.region)),
            exemplar: Some(typed.exemplar()),
            source: Some(optional_text(&typed.source)),
        }),
        _ => Err(errors),
    }
}

/// The form to add an organisation.
pub async fn new_organisation_page(session: Session) -> WebResult<HttpResponse> {
    session.require::<AdminOnly>()?;
    render_form(&session, None, Typed::default(), Vec::new(), StatusCode::OK)
}

/// Adds the organisation, as `POST /v1/organisations` does; its page on success, else the form
/// again with every problem and what was typed.
pub async fn create_organisation(
    state: web::Data<AppState>,
    submitted: Submitted<Typed>,
) -> WebResult<HttpResponse> {
    let (session, typed) = (submitted.session, submitted.form);
    let admin = session.require::<AdminOnly>()?;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let new = match new_from(&typed) {
        Ok(new) => new,
        Err(errors) => return render_form(&session, None, typed, errors, unprocessable),
    };
    let actor = admin.actor();
    let error = match state.run(move |db| db::organisations::create(db, &actor, new)).await {
        Ok(organisation) => {
            return Ok(see_other(&format!("/organisations/{}?notice=added", organisation.code)));
        }
        Err(error) => error,
    };
    let refused = Refusal::of(error)?;
    let problem = match refused.status {
        StatusCode::CONFLICT => FieldError::new(
            "code",
            &format!(
                "An organisation with the code {} already exists: ODS codes are never reused",
                typed.code.trim().to_uppercase()
            ),
        ),
        _ => FieldError::new("code", &capitalised(&refused.detail)),
    };
    render_form(&session, None, typed, vec![problem], unprocessable)
}

async fn organisation(state: &AppState, code: String) -> WebResult<Organisation> {
    Ok(state.read(move |conn| db::organisations::get(conn, &code)).await?)
}

/// The form to change an organisation, filled in as it stands, with its revision.
pub async fn edit_organisation_page(
    state: web::Data<AppState>,
    session: Session,
    code: web::Path<String>,
) -> WebResult<HttpResponse> {
    session.require::<AdminOnly>()?;
    let organisation = organisation(&state, code.into_inner()).await?;
    let typed = Typed::of(&organisation);
    render_form(&session, Some(Editing::of(&organisation)), typed, Vec::new(), StatusCode::OK)
}

/// Changes the organisation at the revision the form was shown with, as
/// `PATCH /v1/organisations/{code}` with `If-Match` does; its page on success, else the form again
/// with every problem and what was typed.
pub async fn update_organisation(
    state: web::Data<AppState>,
    code: web::Path<String>,
    submitted: Submitted<Typed>,
) -> WebResult<HttpResponse> {
    let (session, mut typed) = (submitted.session, submitted.form);
    let admin = session.require::<AdminOnly>()?;
    let revision: i64 =
        typed.revision.trim().parse().map_err(|_| WebError::BadRequest("the form is out of date".into()))?;
    let current = organisation(&state, code.into_inner()).await?;
    let editing = Editing::of(&current);
    let changes = match changes_from(&typed, &editing) {
        Ok(changes) => changes,
        Err(errors) => {
            return render_form(&session, Some(editing), typed, errors, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let (actor, code) = (admin.actor(), current.code.clone());
    let precondition = db::Precondition::Revision(revision);
    let written =
        state.run(move |db| db::organisations::update(db, &actor, &code, changes, precondition)).await;
    let error = match written {
        Ok(_) => return Ok(see_other(&format!("/organisations/{}?notice=changed", current.code))),
        Err(error) => error,
    };
    if let ApiError::PreconditionFailed = error {
        // The form now carries the organisation's revision as it is: sent again, it is a choice.
        let now = organisation(&state, current.code).await?;
        typed.revision = now.revision.to_string();
        let problem = changed_meanwhile("organisation");
        return render_form(&session, Some(Editing::of(&now)), typed, vec![problem], StatusCode::CONFLICT);
    }
    // What is left is a rule broken meanwhile (ODS taking the record over changes its revision
    // too, so that is answered above).
    let refused = Refusal::of(error)?;
    let problem = FieldError::new("name", &capitalised(&refused.detail));
    render_form(&session, Some(editing), typed, vec![problem], refused.status)
}
