//! The start page ("Can we use …?"): one search box; the coverage answer for the user's
//! organisation in plain words, from `db::coverage::answer`; and the seat claim form, which goes
//! through `db::ledger` with the API's authorisation rules (releasing is `web::allocations`).

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
use crate::auth::extractors::{AdminOnly, AdminOrOfficer, Requesters};
use crate::state::AppState;
use crate::web::attention::{AttentionView, attention_for};
use crate::web::product_requests::ask_href;
use crate::web::{
    Chrome, Refusal, Session, Submitted, WebResult, capitalised, count, counted, long_date, named,
    optional_text, query_value, render, see_other, today, whole_number,
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

#[derive(Clone)]
pub struct AllocationView {
    pub id: i64,
    pub entitlement_id: i64,
    pub product: String,
    pub agreement_id: i64,
    pub agreement_reference: String,
    /// The seats as a number (a table's column).
    pub quantity: String,
    /// The seats in words: "1 seat", "1,200 seats".
    pub seats: String,
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
    /// The publishing trust's name with its code.
    pub publisher: String,
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
        seats: counted(allocation.quantity, "seat", "seats"),
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
            held: held.iter().filter(|a| a.entitlement_id == licence.entitlement_id).cloned().collect(),
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
    let publisher_codes: Vec<String> = coverage.standards.iter().map(|s| s.publisher_code.clone()).collect();
    let publishers = db::organisations::names(conn, &publisher_codes)?;
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
                publisher: named(&standard.publisher_code, &publishers),
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
    /// What needs the user's attention, shown until a question is asked; none for those who get
    /// no list.
    attention: Option<Vec<AttentionView>>,
    /// Whether to offer "Add a product" (the national team): products are found here.
    can_add_product: bool,
    /// Where to ask for a product the catalogue does not list, keeping the question; none for
    /// auditors, who ask for nothing.
    ask_href: Option<String>,
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

/// The sentence a notice in the address stands for. `acting_for` names the organisation when the
/// user claimed for one that is not their own (an admin), so the sentence says who took on what.
fn notice_text(notice: Option<&str>, seats: Option<i64>, acting_for: Option<&str>) -> Option<String> {
    let seats = counted(seats.unwrap_or_default(), "seat", "seats");
    let holder = acting_for.map_or_else(|| "Your organisation".to_owned(), str::to_owned);
    match notice? {
        "claimed" => Some(format!("You claimed {seats}. {holder} has taken on the obligations shown.")),
        "requested" => Some(format!(
            "You asked for {seats}. This line needs the national team's approval: no seats are taken until they approve your request."
        )),
        "released" => Some(format!("You released {seats}.")),
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
        attention: None,
        can_add_product: session.require::<AdminOnly>().is_ok(),
        ask_href: None,
    };
    if let Some(Question { text, organisation }) = question {
        page.question = text.clone();
        page.organisation = organisation.clone();
        page.return_to = start_path(&text, ask_organisation.then_some(organisation.as_str()));
        if session.require::<Requesters>().is_ok() {
            page.ask_href = Some(ask_href(&text, ask_organisation.then_some(organisation.as_str())));
        }
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
    } else {
        page.attention = attention_for(state, user, chrono::Utc::now().naive_utc()).await?;
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
    let acting_for = match (&question, session.user.organisation()) {
        (Some(question), None) if !question.organisation.is_empty() => Some(question.organisation.as_str()),
        _ => None,
    };
    let notice = notice_text(query.notice.as_deref(), query.n, acting_for);
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
    let quantity = match whole_number(&form.quantity).filter(|quantity| *quantity >= 1) {
        Some(quantity) => quantity,
        None => {
            let error = "Enter the number of seats to claim as a whole number, like 5 or 1,200".to_owned();
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
    let outcome =
        state.run(move |db| db::ledger::claim(db, &actor, entitlement_id, claim, key, today())).await;
    let organisation_param = user.organisation().is_none().then_some(organisation.as_str());
    match outcome.map(|claimed| claimed.outcome) {
        Ok(ClaimOutcome::Requested(_)) => Ok(see_other(&format!(
            "{}&notice=requested&n={quantity}",
            start_path(&question.text, organisation_param)
        ))),
        Ok(_) => Ok(see_other(&format!(
            "{}&notice=claimed&n={quantity}",
            start_path(&question.text, organisation_param)
        ))),
        Err(error) => {
            let refused = Refusal::of(error)?;
            render_start(&state, &session, Some(question), None, Some(refused.detail), refused.status).await
        }
    }
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
        assert_eq!(
            notice_text(Some("released"), Some(1200), None).as_deref(),
            Some("You released 1,200 seats.")
        );
        assert_eq!(notice_text(Some("released"), Some(1), None).as_deref(), Some("You released 1 seat."));
        assert_eq!(notice_text(Some("<script>"), Some(1), None), None);
        assert_eq!(notice_text(None, Some(1), None), None);
        let for_a_trust = notice_text(Some("claimed"), Some(5), Some("RR8")).unwrap_or_default();
        assert!(for_a_trust.contains("RR8 has taken on the obligations"), "{for_a_trust}");
    }
}
