//! The start page ("Can we use …?"): one search box; the coverage answer for the user's
//! organisation in plain words, from `db::coverage::answer`; and the seat claim and release forms,
//! which go through `db::ledger` with the API's authorisation rules.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use db::coverage::{Coverage, Decision, Subject};
use db::ledger::{Allocation, AllocationFilter, Claim, ClaimOutcome, IdempotencyKey};
use db::read_model::ReadModel;
use db::{DbConnection, DbError, DbResult, PageRequest};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::auth::extractors::AdminOrOfficer;
use crate::state::AppState;
use crate::web::{
    Chrome, Session, Submitted, WebError, WebResult, count, local_path, long_date, optional_text,
    query_value, render, see_other, today,
};

/// At most this many products are offered when a question matches several.
const MAX_CHOICES: i64 = 20;

pub struct CoverageView {
    /// What to do, first: the action's headline, reason and the date it rests on.
    pub action: ActionView,
    pub organisation_code: String,
    pub organisation_name: String,
    /// What was asked about, in words: a product's label or a category.
    pub subject: String,
    /// The same, to start a sentence with.
    pub subject_capitalised: String,
    pub product_id: Option<i64>,
    pub licensed: bool,
    pub buy_locally: bool,
    pub on: String,
    pub licences: Vec<LicenceView>,
    pub standards: Vec<StandardView>,
    pub warnings: Vec<String>,
    /// The user may claim and release seats for this organisation.
    pub can_claim: bool,
}

pub struct ActionView {
    pub code: &'static str,
    /// `stop` (red: unsupported), `caution` (paid updates only, no seats), or `go`.
    pub tone: &'static str,
    pub summary: String,
    pub reason: String,
    pub rests_on: Option<String>,
    /// The product to move to, with whether it is licensed nationally.
    pub successor: Option<(i64, String, bool)>,
}

impl ActionView {
    fn from_action(action: &db::action::Action) -> ActionView {
        use db::action::ActionCode::*;
        let (code, tone) = match action.code {
            DoNotBuyUnsupported => ("do_not_buy_unsupported", "stop"),
            MoveToSupported => ("move_to_supported", "stop"),
            ExtendedUpdatesOnly => ("extended_updates_only", "caution"),
            AskNationalTeam => ("ask_national_team", "caution"),
            ClaimNationalSeats => ("claim_national_seats", "go"),
            UseNationalProvision => ("use_national_provision", "go"),
            BuyAgainstStandard => ("buy_against_standard", "go"),
            NoGuidance => ("no_guidance", "go"),
        };
        ActionView {
            code,
            tone,
            summary: action.summary.clone(),
            reason: action.reason.clone(),
            rests_on: action.rests_on.map(long_date),
            successor: action
                .successor
                .as_ref()
                .map(|s| (s.product_id, s.product.clone(), s.licensed_nationally)),
        }
    }
}

pub struct LicenceView {
    pub agreement_id: i64,
    pub agreement_title: String,
    pub agreement_reference: String,
    pub framework_reference: Option<String>,
    pub entitlement_id: i64,
    pub product: String,
    pub tier: String,
    pub seats_left: String,
    pub ends_on: Option<String>,
    pub how_to_claim: Option<String>,
    /// What restricts a claim on the line (approval, a cap per organisation), in words.
    pub restrictions: Vec<String>,
    pub obligations: Vec<ObligationView>,
    /// The organisation's live allocations of this entitlement.
    pub held: Vec<AllocationView>,
}

pub struct ObligationView {
    pub description: String,
    pub due_on: Option<String>,
}

pub struct AllocationView {
    pub id: i64,
    pub entitlement_id: i64,
    pub product: String,
    pub agreement_id: i64,
    pub agreement_reference: String,
    pub quantity: String,
    pub reference: Option<String>,
    pub claimed_on: String,
}

pub struct RequirementView {
    pub code: String,
    pub text: String,
    pub level: String,
}

pub struct StandardView {
    pub standard_id: i64,
    pub title: String,
    pub version: i32,
    pub publisher_code: String,
    pub published_on: String,
    pub summary: Option<String>,
    pub must: Vec<RequirementView>,
    pub others: Vec<RequirementView>,
    pub conforming: Vec<ChoiceView>,
}

pub struct ChoiceView {
    pub product_id: i64,
    pub label: String,
}

/// One of several products a question matches, with whether it is licensed nationally and
/// supported for the organisation asking: the page asks which was meant, never answering for the
/// first match alone.
pub struct MatchView {
    pub product_id: i64,
    pub label: String,
    pub licensed: bool,
    pub supported: bool,
    pub summary: String,
}

/// Words for a vocabulary value: `national_provision` becomes "National provision".
pub fn words(slug: &str) -> String {
    capitalised(&slug.replace(['_', '-'], " "))
}

/// The text with its first letter a capital.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Words for an organisation kind, with the NHS's own capitals (ICB, GP practice, CSU).
pub fn kind_words(kind: &str) -> String {
    match kind {
        "icb" => "ICB".into(),
        "gp_practice" => "GP practice".into(),
        "csu" => "CSU".into(),
        other => words(other),
    }
}

/// Whether `user` may claim and release seats for `organisation`: the API's rule (the
/// `AdminOrOfficer` role set, and `ensure_can_act_for`).
pub fn can_act_for(session: &Session, organisation: &str) -> bool {
    session.require_acting_for::<AdminOrOfficer>(organisation).is_ok()
}

fn allocation_view(conn: &mut DbConnection, allocation: &Allocation) -> DbResult<AllocationView> {
    let entitlement = db::agreements::get_entitlement(conn, allocation.entitlement_id)?;
    let agreement = db::agreements::get(conn, entitlement.agreement_id)?;
    Ok(AllocationView {
        id: allocation.id,
        entitlement_id: allocation.entitlement_id,
        product: entitlement.product,
        agreement_id: agreement.id,
        agreement_reference: agreement.reference,
        quantity: count(allocation.quantity),
        reference: allocation.reference.clone(),
        claimed_on: long_date(allocation.created_at.date()),
    })
}

/// The organisation's live allocations, oldest first.
pub fn live_allocations(conn: &mut DbConnection, organisation: &str) -> DbResult<Vec<AllocationView>> {
    let filter = AllocationFilter {
        entitlement_id: None,
        organisation_code: Some(organisation.to_owned()),
        include_ended: false,
    };
    let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let live = db::ledger::list(conn, &filter, &page)?;
    live.items.iter().map(|allocation| allocation_view(conn, allocation)).collect()
}

/// The coverage answer for `organisation`, as words for the page.
pub fn coverage_view(
    conn: &mut DbConnection,
    model: Option<&ReadModel>,
    organisation: &str,
    subject: Subject,
    on: NaiveDate,
    can_claim: bool,
) -> DbResult<CoverageView> {
    let coverage: Coverage = crate::hot_reads::coverage_on(model, conn, organisation, subject, on)?;
    let held = live_allocations(conn, &coverage.organisation_code)?;
    let licences = coverage
        .licences
        .into_iter()
        .map(|licence| LicenceView {
            seats_left: match (licence.seats_remaining, licence.seat_cap) {
                (Some(left), Some(cap)) => format!("{} seats left of {}", count(left), count(cap)),
                _ => "No national cap".to_owned(),
            },
            held: held
                .iter()
                .filter(|a| a.entitlement_id == licence.entitlement_id)
                .map(clone_allocation)
                .collect(),
            agreement_id: licence.agreement_id,
            agreement_title: licence.agreement_title,
            agreement_reference: licence.agreement_reference,
            framework_reference: licence.framework_reference,
            entitlement_id: licence.entitlement_id,
            product: licence.product,
            tier: words(licence.tier.as_str()),
            ends_on: licence.ends_on.map(long_date),
            how_to_claim: licence.how_to_claim,
            restrictions: licence_restrictions(licence.requires_approval, licence.per_organisation_cap),
            obligations: licence
                .obligations
                .into_iter()
                .map(|o| ObligationView { description: o.description, due_on: o.due_on.map(long_date) })
                .collect(),
        })
        .collect();
    let standards = coverage
        .standards
        .into_iter()
        .map(|standard| {
            let (must, others) = standard
                .requirements
                .into_iter()
                .map(|r| RequirementView { code: r.code, text: r.text, level: r.level })
                .partition(|r| r.level == "MUST");
            StandardView {
                standard_id: standard.standard_id,
                title: standard.title,
                version: standard.version,
                publisher_code: standard.publisher_code,
                published_on: long_date(standard.published_at.date()),
                summary: standard.summary,
                must,
                others,
                conforming: standard
                    .conforming_products
                    .into_iter()
                    .map(|p| ChoiceView {
                        product_id: p.product_id,
                        label: db::products::label(&p.name, &p.edition, &p.version),
                    })
                    .collect(),
            }
        })
        .collect();
    let subject = match &coverage.product {
        Some(product) => product.label(),
        None => words(&coverage.category).to_lowercase(),
    };
    Ok(CoverageView {
        action: ActionView::from_action(&coverage.action),
        subject_capitalised: capitalised(&subject),
        subject,
        product_id: coverage.product.as_ref().map(|p| p.id),
        licensed: coverage.decision == Decision::NationallyLicensed,
        buy_locally: coverage.decision == Decision::BuyLocally,
        on: long_date(coverage.on),
        organisation_code: coverage.organisation_code,
        organisation_name: coverage.organisation_name,
        licences,
        standards,
        warnings: coverage.warnings.into_iter().map(|w| w.message).collect(),
        can_claim,
    })
}

fn clone_allocation(a: &AllocationView) -> AllocationView {
    AllocationView {
        id: a.id,
        entitlement_id: a.entitlement_id,
        product: a.product.clone(),
        agreement_id: a.agreement_id,
        agreement_reference: a.agreement_reference.clone(),
        quantity: a.quantity.clone(),
        reference: a.reference.clone(),
        claimed_on: a.claimed_on.clone(),
    }
}

/// What a question found.
enum Found {
    Answer(Box<CoverageView>),
    Choices(Vec<MatchView>),
    Nothing,
}

/// A product the question names (see [`crate::hot_reads::product_search_on`]: every word in its
/// name, edition, version, SKU, supplier or releases, forgiving typos and word order where the
/// read model keeps a search index): the only one, or the one whose full name, name and edition,
/// name or SKU is the question; else a category whose name is the question; else the products
/// to choose from.
fn answer_question(
    conn: &mut DbConnection,
    model: Option<&ReadModel>,
    organisation: &str,
    question: &str,
    on: NaiveDate,
    can_claim: bool,
) -> DbResult<Found> {
    let products = crate::hot_reads::product_search_on(model, conn, question, on, MAX_CHOICES)?;
    let chosen = match products.as_slice() {
        [only] => Some(only.id),
        several => {
            let asked = question.split_whitespace().collect::<Vec<_>>().join(" ");
            let named = |p: &db::products::Product| {
                [
                    p.label(),
                    format!("{} {}", p.name, p.edition),
                    p.name.clone(),
                    p.sku.clone().unwrap_or_default(),
                ]
                .iter()
                .any(|name| name.trim().eq_ignore_ascii_case(&asked))
            };
            // Only when the question names exactly one of them: "Windows 10" names both
            // Enterprise and Pro, and answering for the first would answer the wrong question.
            match several.iter().filter(|p| named(p)).collect::<Vec<_>>().as_slice() {
                [only] => Some(only.id),
                _ => None,
            }
        }
    };
    if let Some(id) = chosen {
        return Ok(Found::Answer(Box::new(coverage_view(
            conn,
            model,
            organisation,
            Subject::Product(id, None),
            on,
            can_claim,
        )?)));
    }
    if !products.is_empty() {
        let mut choices = Vec::with_capacity(products.len());
        for product in &products {
            let answer = crate::hot_reads::coverage_on(
                model,
                conn,
                organisation,
                Subject::Product(product.id, None),
                on,
            )?;
            let supported = !matches!(
                answer.action.code,
                db::action::ActionCode::DoNotBuyUnsupported
                    | db::action::ActionCode::MoveToSupported
                    | db::action::ActionCode::ExtendedUpdatesOnly
            );
            choices.push(MatchView {
                product_id: product.id,
                label: product.label(),
                licensed: answer.decision == Decision::NationallyLicensed,
                supported,
                summary: answer.action.summary,
            });
        }
        return Ok(Found::Choices(choices));
    }
    let category = question.split_whitespace().collect::<Vec<_>>().join("-").to_lowercase();
    match db::coverage::category_known(conn, &category) {
        Ok(()) => Ok(Found::Answer(Box::new(coverage_view(
            conn,
            model,
            organisation,
            Subject::Category(category),
            on,
            can_claim,
        )?))),
        Err(DbError::NotFound(_)) => Ok(Found::Nothing),
        Err(other) => Err(other),
    }
}

#[derive(Template)]
#[template(path = "start.html")]
struct StartPage {
    chrome: Chrome,
    question: String,
    /// Users without an organisation of their own (the national team, auditors) name one.
    ask_organisation: bool,
    organisation: String,
    answer: Option<Box<CoverageView>>,
    choices: Vec<MatchView>,
    nothing_found: bool,
    notice: Option<String>,
    error: Option<String>,
    /// A fresh idempotency key for the claim forms: submitting twice never claims twice.
    form_key: String,
    return_to: String,
}

fn licence_restrictions(requires_approval: bool, per_organisation_cap: Option<i64>) -> Vec<String> {
    let mut restrictions = Vec::new();
    if requires_approval {
        restrictions.push(
            "Needs the national team's approval: a claim is a request, and no seats are taken until it is approved"
                .to_owned(),
        );
    }
    if let Some(cap) = per_organisation_cap {
        restrictions.push(format!("An organisation may hold at most {} seats", count(cap)));
    }
    restrictions
}

#[derive(Deserialize)]
pub struct StartQuery {
    q: Option<String>,
    organisation: Option<String>,
    notice: Option<String>,
    n: Option<i64>,
}

fn notice_text(notice: Option<&str>, seats: Option<i64>) -> Option<String> {
    let seats = seats.map(count).unwrap_or_default();
    match notice? {
        "claimed" => {
            Some(format!("You claimed {seats} seats. Your organisation has taken on the obligations shown."))
        }
        "requested" => Some(format!(
            "You asked for {seats} seats. This line needs the national team's approval: no seats are taken until they approve your request."
        )),
        "released" => Some(format!("You released {seats} seats.")),
        _ => None,
    }
}

fn start_path(question: &str, organisation: Option<&str>) -> String {
    let mut path = format!("/?q={}", query_value(question));
    if let Some(code) = organisation {
        path.push_str(&format!("&organisation={}", query_value(code)));
    }
    path
}

struct Question {
    text: String,
    organisation: String,
}

async fn render_start(
    state: &AppState,
    session: &Session,
    question: Option<Question>,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let user: &CurrentUser = &session.user;
    let ask_organisation = user.organisation().is_none();
    let mut page = StartPage {
        chrome: Chrome::for_session("Can we use …?", session, "/"),
        question: String::new(),
        ask_organisation,
        organisation: user.organisation().unwrap_or_default().to_owned(),
        answer: None,
        choices: Vec::new(),
        nothing_found: false,
        notice,
        error,
        form_key: uuid::Uuid::new_v4().to_string(),
        return_to: "/".into(),
    };
    if let Some(Question { text, organisation }) = question {
        page.question = text.clone();
        page.organisation = organisation.clone();
        page.return_to = start_path(&text, ask_organisation.then_some(organisation.as_str()));
        if !organisation.is_empty() {
            user.ensure_can_read(&organisation)?;
            let can_claim = can_act_for(session, &organisation);
            let model = state.read_model();
            let found = state
                .run(move |db| {
                    db.read(|conn| {
                        answer_question(conn, model.as_deref(), &organisation, &text, today(), can_claim)
                    })
                })
                .await?;
            match found {
                Found::Answer(answer) => page.answer = Some(answer),
                Found::Choices(choices) => page.choices = choices,
                Found::Nothing => page.nothing_found = true,
            }
        } else if page.error.is_none() {
            page.error = Some("Enter the ODS code of the organisation the question is for".into());
        }
    }
    render(status, &page)
}

/// `/`, and `/?q=TEXT` for the answer.
pub async fn start_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<StartQuery>,
) -> WebResult<HttpResponse> {
    let query = query.into_inner();
    let question = query.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty()).map(|text| Question {
        text,
        organisation: match session.user.organisation() {
            Some(own) => own.to_owned(),
            None => query.organisation.unwrap_or_default().trim().to_uppercase(),
        },
    });
    let notice = notice_text(query.notice.as_deref(), query.n);
    render_start(&state, &session, question, notice, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct ClaimForm {
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    form_key: String,
    #[serde(default)]
    question: String,
}

/// Claims seats through `db::ledger::claim`, as `POST /v1/entitlements/{id}/allocations` does,
/// with the form's one-time key as the idempotency key.
pub async fn claim(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<ClaimForm>,
) -> WebResult<HttpResponse> {
    let (entitlement_id, session, form) = (id.into_inner(), submitted.session, submitted.form);
    let user = session.require::<AdminOrOfficer>()?;
    let organisation = form.organisation.trim().to_uppercase();
    user.ensure_can_act_for(&organisation)?;
    let question = Question { text: form.question.trim().to_owned(), organisation: organisation.clone() };
    let quantity = match form.quantity.trim().parse::<i64>() {
        Ok(quantity) if quantity >= 1 => quantity,
        _ => {
            let error = "Enter the number of seats to claim as a whole number, 1 or more".to_owned();
            return render_start(
                &state,
                &session,
                Some(question),
                None,
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let reference = optional_text(&form.reference);
    let claim = Claim { organisation: organisation.clone(), quantity, reference };
    let key = Some(form.form_key.trim().to_owned())
        .filter(|k| (1..=255).contains(&k.len()))
        .map(|key| IdempotencyKey::for_claim(user.id(), key, entitlement_id, &claim));
    let actor = user.actor();
    let render_body = crate::routes::allocations::render_claim;
    let outcome = state
        .run(move |db| db::ledger::claim(db, &actor, entitlement_id, claim, key, today(), render_body))
        .await;
    let organisation_param = user.organisation().is_none().then_some(organisation.as_str());
    match outcome {
        Ok(ClaimOutcome::Requested(_) | ClaimOutcome::Replayed { status: 202, .. }) => Ok(see_other(
            &format!("{}&notice=requested&n={quantity}", start_path(&question.text, organisation_param)),
        )),
        Ok(_) => Ok(see_other(&format!(
            "{}&notice=claimed&n={quantity}",
            start_path(&question.text, organisation_param)
        ))),
        Err(crate::error::ApiError::SeatsExhausted { remaining }) => {
            let error =
                format!("Only {} seats are left: claim {} or fewer", count(remaining), count(remaining));
            render_start(&state, &session, Some(question), None, Some(error), StatusCode::CONFLICT).await
        }
        Err(crate::error::ApiError::Unprocessable(detail) | crate::error::ApiError::Conflict(detail)) => {
            render_start(
                &state,
                &session,
                Some(question),
                None,
                Some(detail),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct ReleaseForm {
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    return_to: String,
}

/// Releases seats through `db::ledger::release`, as `POST /v1/allocations/{id}/release` does:
/// an allocation of another organisation answers 404.
pub async fn release(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<ReleaseForm>,
) -> WebResult<HttpResponse> {
    let (allocation_id, session, form) = (id.into_inner(), submitted.session, submitted.form);
    let user = session.require::<AdminOrOfficer>()?;
    let allocation =
        state.run(move |db| db.read(|conn| db::ledger::get_allocation(conn, allocation_id))).await?;
    user.ensure_can_act_for(&allocation.organisation_code).map_err(|_| WebError::NotFound)?;
    let quantity = match form.quantity.trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(quantity) if quantity >= 1 => Some(quantity),
            _ => {
                return Err(WebError::BadRequest(
                    "Enter the number of seats to release as a whole number, 1 or more".into(),
                ));
            }
        },
    };
    let actor = user.actor();
    let released = quantity.unwrap_or(allocation.quantity);
    state.run(move |db| db::ledger::release(db, &actor, allocation_id, quantity)).await?;
    let back = local_path(Some(&form.return_to));
    let back = back.split('#').next().unwrap_or("/").to_owned();
    let separator = if back.contains('?') { '&' } else { '?' };
    Ok(see_other(&format!("{back}{separator}notice=released&n={released}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_reads_as_words() {
        assert_eq!(words("national_provision"), "National provision");
        assert_eq!(words("medical-device-software"), "Medical device software");
        assert_eq!(words(""), "");
    }

    #[test]
    fn notices_are_fixed_sentences() {
        assert_eq!(notice_text(Some("released"), Some(1200)).as_deref(), Some("You released 1,200 seats."));
        assert_eq!(notice_text(Some("<script>"), Some(1)), None);
        assert_eq!(notice_text(None, Some(1)), None);
    }
}
