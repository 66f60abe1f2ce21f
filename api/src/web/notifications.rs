//! The Notifications page: what a signed-in user is told and how, managed without the API. It
//! lists the user's own subscriptions in plain words, adds one (email at once or in a daily
//! digest, or a signed webhook whose secret is shown once), shows a subscription's deliveries with
//! every attempt, and ends one after a confirmation page.
//!
//! Every rule is the API's (`routes::subscriptions`), called from the same place: whose
//! organisation a subscription may hear (`CurrentUser::subscription_scope`), who may see and end
//! a subscription (`ensure_can_see_subscription`, `ensure_can_change_subscription`), the webhook
//! URL checks (`notify::check_webhook_url`) and the shape `db::subscriptions`
//! checks when it stores one.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use db::PageRequest;
use db::deliveries::{Delivery, DeliveryStatus};
use db::outbox::EventKind;
use db::subscriptions::{Channel, EmailCadence, NewSubscription, Subscription};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::notify::check_webhook_url;
use crate::notify::webhook;
use crate::state::AppState;
use crate::web::{
    Chrome, NoFields, Refusal, Session, Submitted, WebError, WebResult, capitalised, render, see_other,
};

/// Deliveries shown on one page of a subscription's deliveries.
const DELIVERIES_PER_PAGE: i64 = 50;

/// What an event kind means, as a person would say it, for the page's list and checkboxes.
pub fn kind_label(kind: EventKind) -> &'static str {
    match kind {
        EventKind::AdvisoryPublished => "A security advisory is published",
        EventKind::AdvisoryChanged => "A published advisory is changed",
        EventKind::AcknowledgementDue => "An advisory must be acknowledged within 24 hours",
        EventKind::AcknowledgementOverdue => "An advisory's acknowledgement is overdue",
        EventKind::CapNearlyFull => "A national line's seats are 90% claimed",
        EventKind::CapFull => "A national line's seats are all claimed",
        EventKind::SupportEnding => "Software the organisation runs or holds leaves support within 3 months",
        EventKind::EntitlementEnding => "An entitlement line ends within 90 days",
        EventKind::AgreementEnding => "An agreement ends within 90 days",
        EventKind::ExtensionDecisionDue => "An agreement's extension must be decided within 30 days",
        EventKind::ObligationDue => "An obligation the organisation accepted falls due within 14 days",
        EventKind::StandardPublished => "A version of a standard to buy against is published",
        EventKind::StandardWithdrawn => "A published version of a standard is withdrawn",
        EventKind::RiskAcceptanceExpiring => "A risk acceptance expires within 30 days",
        EventKind::ApprovalRequested => "An organisation asks for seats on a line that needs approval",
        EventKind::ApprovalDecided => "A request for seats is approved or refused",
    }
}

/// How a subscription is told, in words: "Email at once", "Email, daily digest", "Webhook to …".
fn how(subscription: &Subscription) -> String {
    match (subscription.channel, subscription.email_cadence) {
        (Channel::Email, Some(EmailCadence::Immediate)) => "Email at once".to_owned(),
        (Channel::Email, Some(EmailCadence::Daily)) => "Email, daily digest".to_owned(),
        (Channel::Email, None) => "Email".to_owned(),
        (Channel::Webhook, _) => {
            format!("Webhook to {}", subscription.webhook_url.as_deref().unwrap_or("no address"))
        }
    }
}

/// A time as the pages write it, in UTC: 7 December 2026 at 14:05 UTC.
fn when(at: NaiveDateTime) -> String {
    at.format("%-d %B %Y at %H:%M UTC").to_string()
}

/// One subscription, as the page shows it.
pub struct SubscriptionView {
    pub id: i64,
    pub how: String,
    /// "Salford Royal NHS Foundation Trust (RM3)", or "Every organisation".
    pub organisation: String,
    pub hears: Vec<&'static str>,
    pub is_webhook: bool,
}

/// The organisations' names of these subscriptions, read in one query.
fn views(
    conn: &mut db::DbConnection,
    subscriptions: Vec<Subscription>,
) -> db::DbResult<Vec<SubscriptionView>> {
    let codes: Vec<String> = subscriptions.iter().filter_map(|s| s.organisation_code.clone()).collect();
    let names = db::organisations::names(conn, &codes)?;
    Ok(subscriptions
        .into_iter()
        .map(|mut s| {
            // In the form's order (the kinds' declared order), not the stored alphabetical one.
            s.kinds.sort_unstable_by_key(|kind| EventKind::ALL.iter().position(|k| k == kind));
            let organisation = match &s.organisation_code {
                None => "Every organisation".to_owned(),
                Some(code) => match names.get(code) {
                    Some(name) => format!("{name} ({code})"),
                    None => code.clone(),
                },
            };
            SubscriptionView {
                id: s.id,
                how: how(&s),
                organisation,
                hears: s.kinds.iter().map(|kind| kind_label(*kind)).collect(),
                is_webhook: s.channel == Channel::Webhook,
            }
        })
        .collect())
}

/// A subscription the signed-in user may see, with its organisation's name.
async fn visible(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> WebResult<(Subscription, SubscriptionView)> {
    let subscription = state.read(move |conn| db::subscriptions::get(conn, id)).await?;
    user.ensure_can_see_subscription(&subscription)?;
    let shown = subscription.clone();
    let view = state.read(move |conn| views(conn, vec![shown])).await?.pop().ok_or(WebError::NotFound)?;
    Ok((subscription, view))
}

/// The form's answers, kept to show again when something must be corrected. Read from the
/// form's pairs, because the kinds' checkboxes send one `kinds` pair each.
#[derive(Default)]
pub struct Answers {
    pub kinds: Vec<String>,
    pub channel: String,
    pub email_cadence: String,
    pub webhook_url: String,
    /// For those who choose: `every` organisation or `one`.
    pub organisation_scope: String,
    pub organisation_code: String,
}

impl Answers {
    fn from_pairs(pairs: Vec<(String, String)>) -> Answers {
        let mut answers = Answers::default();
        for (name, value) in pairs {
            match name.as_str() {
                "kinds" => answers.kinds.push(value),
                "channel" => answers.channel = value,
                "email_cadence" => answers.email_cadence = value,
                "webhook_url" => answers.webhook_url = value.trim().to_owned(),
                "organisation_scope" => answers.organisation_scope = value,
                "organisation_code" => answers.organisation_code = value.trim().to_uppercase(),
                _ => {}
            }
        }
        answers
    }
}

/// One checkbox of the kinds.
pub struct KindChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

/// A problem with the form: what to say, and the id of the field to correct.
type Problem = (String, &'static str);

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    subscriptions: Vec<SubscriptionView>,
    kinds: Vec<KindChoice>,
    answers: Answers,
    /// Admins and auditors choose the organisation (or every one); others hear their own.
    chooses_organisation: bool,
    /// The user's own organisation, named, for those who do not choose.
    own_organisation: String,
    error: Option<Problem>,
    notice: Option<String>,
    /// A new webhook's signing secret: shown on this page once, never again.
    secret: Option<String>,
}

impl NotificationsPage {
    /// The message to show beside field `field`, when it is the one to correct.
    fn problem(&self, field: &str) -> Option<&str> {
        self.error.as_ref().filter(|(_, f)| *f == field).map(|(message, _)| message.as_str())
    }
}

/// What the page shows beside the list and the form.
#[derive(Default)]
struct Shown {
    error: Option<Problem>,
    notice: Option<String>,
    secret: Option<String>,
}

async fn render_page(
    state: &AppState,
    session: &Session,
    answers: Answers,
    shown: Shown,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let user = &session.user;
    let (owner, own) = (user.id(), user.organisation().map(str::to_owned));
    let (subscriptions, own_name) = state
        .read(move |conn| {
            let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
            let found = db::subscriptions::list(conn, Some(owner), &page)?;
            let own_name = match own {
                Some(code) => {
                    let names = db::organisations::names(conn, std::slice::from_ref(&code))?;
                    names.get(&code).map_or(code.clone(), |name| format!("{name} ({code})"))
                }
                None => String::new(),
            };
            Ok((views(conn, found.items)?, own_name))
        })
        .await?;
    let kinds = EventKind::ALL
        .iter()
        .copied()
        .map(|kind| KindChoice {
            value: kind.as_str(),
            label: kind_label(kind),
            checked: answers.kinds.iter().any(|k| k == kind.as_str()),
        })
        .collect();
    let page = NotificationsPage {
        chrome: Chrome::for_session("Notifications", session, "/notifications"),
        subscriptions,
        kinds,
        answers,
        chooses_organisation: user.reads_every_subscription(),
        own_organisation: own_name,
        error: shown.error,
        notice: shown.notice,
        secret: shown.secret,
    };
    render(status, &page)
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// The user's subscriptions and the form to add one.
pub async fn notifications_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<NoticeQuery>,
) -> WebResult<HttpResponse> {
    let notice = match query.notice.as_deref() {
        Some("added") => Some("You will be told of what you chose.".to_owned()),
        Some("ended") => Some("That subscription has ended: you will no longer be told of it.".to_owned()),
        _ => None,
    };
    let shown = Shown { notice, ..Shown::default() };
    render_page(&state, &session, Answers::default(), shown, StatusCode::OK).await
}

/// A subscription as the form describes it, before its organisation is decided.
struct Chosen {
    kinds: Vec<EventKind>,
    channel: Channel,
    email_cadence: Option<EmailCadence>,
    webhook_url: Option<String>,
}

/// Reads the form, or says what to correct (and which field), in the order the form asks.
fn chosen(answers: &Answers) -> Result<Chosen, Problem> {
    let kinds: Vec<EventKind> = EventKind::ALL
        .iter()
        .copied()
        .filter(|kind| answers.kinds.iter().any(|k| k == kind.as_str()))
        .collect();
    if kinds.is_empty() {
        return Err(("Choose at least one thing to be told about".to_owned(), "kinds"));
    }
    let how = "Choose how to be told: by email or by webhook";
    match answers.channel.as_str() {
        "email" => {
            let email_cadence = match answers.email_cadence.as_str() {
                "immediate" => EmailCadence::Immediate,
                "daily" => EmailCadence::Daily,
                _ => {
                    return Err((
                        "Choose whether to be emailed at once or in a daily digest".to_owned(),
                        "email_cadence",
                    ));
                }
            };
            Ok(Chosen {
                kinds,
                channel: Channel::Email,
                email_cadence: Some(email_cadence),
                webhook_url: None,
            })
        }
        "webhook" if answers.webhook_url.is_empty() => {
            Err(("Enter the web address to send each event to".to_owned(), "webhook_url"))
        }
        "webhook" => Ok(Chosen {
            kinds,
            channel: Channel::Webhook,
            email_cadence: None,
            webhook_url: Some(answers.webhook_url.clone()),
        }),
        _ => Err((how.to_owned(), "channel")),
    }
}

/// Adds a subscription, as `POST /v1/subscriptions` does. A webhook's secret is shown on the
/// page that answers, once; an email subscription goes back to the list.
pub async fn subscribe(
    state: web::Data<AppState>,
    submitted: Submitted<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let (session, answers) = (submitted.session, Answers::from_pairs(submitted.form));
    let user = &session.user;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let refuse = |error: Problem| Shown { error: Some(error), ..Shown::default() };
    let chosen = match chosen(&answers) {
        Ok(chosen) => chosen,
        Err(error) => return render_page(&state, &session, answers, refuse(error), unprocessable).await,
    };
    // Those who choose pick every organisation or one; everyone else asks for nothing and hears
    // their own (the rule refuses another organisation and a user without one).
    let asked = match (user.reads_every_subscription(), answers.organisation_scope.as_str()) {
        (true, "one") if answers.organisation_code.is_empty() => {
            let error = ("Enter the organisation's ODS code, like RM3".to_owned(), "organisation_code");
            return render_page(&state, &session, answers, refuse(error), unprocessable).await;
        }
        (true, "one") => Some(answers.organisation_code.clone()),
        (true, "every") => None,
        (true, _) => {
            let error = ("Choose every organisation or one organisation".to_owned(), "organisation_scope");
            return render_page(&state, &session, answers, refuse(error), unprocessable).await;
        }
        (false, _) => None,
    };
    let organisation_code = user.subscription_scope(asked.as_deref())?;
    if let Some(code) = organisation_code.clone() {
        let names = state.read(move |conn| db::organisations::names(conn, &[code])).await?;
        if names.is_empty() {
            let error = (
                format!("No organisation has the ODS code {}: check the code", answers.organisation_code),
                "organisation_code",
            );
            return render_page(&state, &session, answers, refuse(error), unprocessable).await;
        }
    }
    let webhook_secret = match &chosen.webhook_url {
        Some(url) => match check_webhook_url(&state, url).await {
            Ok(()) => Some(webhook::new_secret()),
            Err(error) => {
                let refused = Refusal::of(error)?;
                let error = (capitalised(&refused.detail), "webhook_url");
                return render_page(&state, &session, answers, refuse(error), refused.status).await;
            }
        },
        None => None,
    };
    let new = NewSubscription {
        user_id: user.id(),
        organisation_code,
        kinds: chosen.kinds,
        channel: chosen.channel,
        email_cadence: chosen.email_cadence,
        webhook_url: chosen.webhook_url,
        webhook_secret: webhook_secret.clone(),
    };
    let actor = user.actor();
    state.run(move |db| db::subscriptions::create(db, &actor, new)).await?;
    match webhook_secret {
        None => Ok(see_other("/notifications?notice=added")),
        Some(secret) => {
            let shown = Shown {
                notice: Some("Each event you chose will be posted to your webhook, signed.".to_owned()),
                secret: Some(secret),
                error: None,
            };
            render_page(&state, &session, Answers::default(), shown, StatusCode::OK).await
        }
    }
}

/// One attempt at a delivery, as the deliveries page shows it.
pub struct AttemptView {
    pub at: String,
    pub status_code: String,
    pub error: String,
    pub took: String,
}

/// One delivery, as the deliveries page shows it.
pub struct DeliveryView {
    pub id: i64,
    pub summary: String,
    pub kind: &'static str,
    pub occurred: String,
    pub status: &'static str,
    /// The NHS.UK tag colour of the status.
    pub tag: &'static str,
    /// When it was delivered, or when it is tried next.
    pub detail: String,
    pub attempts: Vec<AttemptView>,
}

fn delivery_view(delivery: Delivery) -> DeliveryView {
    let (status, tag, detail) = match delivery.status {
        DeliveryStatus::Delivered => (
            "Delivered",
            "nhsuk-tag--green",
            delivery.delivered_at.map(|at| format!("Delivered {}", when(at))).unwrap_or_default(),
        ),
        DeliveryStatus::Pending => {
            ("Waiting", "nhsuk-tag--blue", format!("Next attempt {}", when(delivery.next_attempt_at)))
        }
        DeliveryStatus::Dead => (
            "Given up",
            "nhsuk-tag--red",
            "Retried for a day without success: it is not tried again unless redelivery is asked for \
             through the API"
                .to_owned(),
        ),
    };
    DeliveryView {
        id: delivery.id,
        summary: delivery.event.summary,
        kind: kind_label(delivery.event.kind),
        occurred: when(delivery.event.occurred_at),
        status,
        tag,
        detail,
        attempts: delivery
            .attempts
            .into_iter()
            .map(|attempt| AttemptView {
                at: when(attempt.attempted_at),
                status_code: attempt.status_code.map_or("No answer".to_owned(), |code| code.to_string()),
                error: attempt.error.unwrap_or_else(|| "None".to_owned()),
                took: format!("{} ms", attempt.duration_ms),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    chrome: Chrome,
    subscription: SubscriptionView,
    deliveries: Vec<DeliveryView>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct DeliveriesQuery {
    cursor: Option<String>,
}

/// A subscription's deliveries, oldest first, each with every attempt: its owner's, or anyone's
/// for admins and auditors (as the API); anyone else's is not found.
pub async fn deliveries_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<DeliveriesQuery>,
) -> WebResult<HttpResponse> {
    let (subscription, view) = visible(&state, &session.user, id.into_inner()).await?;
    let page = PageRequest { limit: Some(DELIVERIES_PER_PAGE), cursor: query.into_inner().cursor };
    let found = state.read(move |conn| db::deliveries::of_subscription(conn, subscription.id, &page)).await?;
    let next = found.next_cursor.map(|cursor| {
        format!("/notifications/{}/deliveries?cursor={}", view.id, super::query_value(&cursor))
    });
    let page = DeliveriesPage {
        chrome: Chrome::for_session("Deliveries", &session, ""),
        subscription: view,
        deliveries: found.items.into_iter().map(delivery_view).collect(),
        next,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "end_subscription.html")]
struct EndPage {
    chrome: Chrome,
    subscription: SubscriptionView,
}

/// Asks to confirm ending a subscription: its owner or an admin.
pub async fn end_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> WebResult<HttpResponse> {
    let (subscription, view) = visible(&state, &session.user, id.into_inner()).await?;
    session.user.ensure_can_change_subscription(&subscription)?;
    let page =
        EndPage { chrome: Chrome::for_session("End a subscription", &session, ""), subscription: view };
    render(StatusCode::OK, &page)
}

/// Ends a subscription once confirmed, as `DELETE /v1/subscriptions/{id}` does.
pub async fn end(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<NoFields>,
) -> WebResult<HttpResponse> {
    let (id, user) = (id.into_inner(), &submitted.session.user);
    let subscription = state.read(move |conn| db::subscriptions::get(conn, id)).await?;
    user.ensure_can_change_subscription(&subscription)?;
    let actor = user.actor();
    state.run(move |db| db::subscriptions::delete(db, &actor, id)).await?;
    Ok(see_other("/notifications?notice=ended"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(pairs: &[(&str, &str)]) -> Answers {
        Answers::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn every_kind_has_its_own_label() {
        let mut labels: Vec<&str> = EventKind::ALL.iter().copied().map(kind_label).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), EventKind::ALL.len());
    }

    #[test]
    fn the_form_is_read_in_the_order_it_asks() {
        let problem = |pairs: &[(&str, &str)]| chosen(&answers(pairs)).err().map(|(_, field)| field);
        assert_eq!(problem(&[("channel", "email"), ("email_cadence", "daily")]), Some("kinds"));
        assert_eq!(problem(&[("kinds", "cap.full")]), Some("channel"));
        assert_eq!(problem(&[("kinds", "cap.full"), ("channel", "email")]), Some("email_cadence"));
        assert_eq!(problem(&[("kinds", "cap.full"), ("channel", "webhook")]), Some("webhook_url"));
        assert_eq!(problem(&[("kinds", "nonsense"), ("channel", "email")]), Some("kinds"));
        let email = chosen(&answers(&[
            ("kinds", "cap.full"),
            ("kinds", "advisory.published"),
            ("channel", "email"),
            ("email_cadence", "daily"),
            ("webhook_url", "https://ignored.example"),
        ]));
        let Ok(email) = email else { panic!("an email subscription") };
        assert_eq!(email.kinds, vec![EventKind::AdvisoryPublished, EventKind::CapFull]);
        assert_eq!(email.email_cadence, Some(EmailCadence::Daily));
        assert_eq!(email.webhook_url, None);
    }

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(
            capitalised("the address must start with https://"),
            "The address must start with https://"
        );
        assert_eq!(capitalised(""), "");
    }
}
