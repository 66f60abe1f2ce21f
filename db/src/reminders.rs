//! Events that dates cause rather than writes: an acknowledgement falling due or overdue, support
//! ending for what an organisation runs or holds, lines and agreements ending, extension decisions
//! and obligations due, risk acceptances expiring. [`write_due`] finds each occasion and writes it
//! to the outbox once (its occasion key is unique), however often it runs; the worker runs it
//! every few minutes on one instance at a time.

use std::collections::HashSet;

use chrono::{Days, NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::advisories::{self, ResponseStatus};
use crate::connection::{Database, DbConnection};
use crate::error::DbResult;
use crate::outbox::{self, EventKind, NewEvent};
use crate::page::PageRequest;
use crate::risk::{self, UnsupportedFilter};
use crate::schema::{
    advisories as advisories_table, agreement_extensions, agreements, entitlements, obligation_acceptances,
    obligations, outbox_events, products, risk_acceptances,
};

/// How far ahead each kind of reminder looks.
pub const SUPPORT_ENDING_MONTHS: u32 = 3;
pub const LINE_ENDING_DAYS: u64 = 90;
pub const EXTENSION_DECISION_DAYS: u64 = 30;
pub const OBLIGATION_DUE_DAYS: u64 = 14;
pub const RISK_ACCEPTANCE_DAYS: u64 = 30;
/// Advisories older than this have had their deadlines long since.
const ADVISORY_LOOKBACK_DAYS: u64 = 14;

fn dated(
    kind: EventKind,
    organisation: Option<&str>,
    subject: String,
    summary: String,
    occasion: String,
) -> NewEvent {
    NewEvent {
        kind,
        organisation_code: organisation.map(str::to_owned),
        subject,
        summary,
        payload: serde_json::Value::Null,
        occasion: Some(occasion),
    }
}

/// Writes every reminder due at `now` that was not written before; returns how many it wrote.
/// What is due is read first, outside any write transaction (at national scale it reads the whole
/// unsupported-software report, and SQLite's single writer must not wait for that); only the new
/// events are then written, in one short transaction that checks each occasion again.
pub fn write_due(db: &Database, now: NaiveDateTime) -> DbResult<usize> {
    let due = db.read(|conn| {
        let seen: HashSet<String> = outbox_events::table
            .filter(outbox_events::occasion.is_not_null())
            .select(outbox_events::occasion.assume_not_null())
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let today = now.date();
        let mut due = acknowledgements(conn, now)?;
        due.extend(support_ending(conn, today)?);
        due.extend(lines_and_agreements_ending(conn, today)?);
        due.extend(extension_decisions(conn, today)?);
        due.extend(obligations_due(conn, today)?);
        due.extend(risk_acceptances_expiring(conn, today)?);
        due.retain(|event| event.occasion.as_ref().is_some_and(|occasion| !seen.contains(occasion)));
        Ok(due)
    })?;
    if due.is_empty() {
        return Ok(0);
    }
    db.transaction(|conn| {
        let mut written = 0;
        for event in &due {
            if outbox::record_once(conn, event)? {
                written += 1;
            }
        }
        Ok(written)
    })
}

pub(crate) fn within(today: NaiveDate, days: u64) -> NaiveDate {
    today.checked_add_days(Days::new(days)).unwrap_or(NaiveDate::MAX)
}

fn acknowledgements(conn: &mut DbConnection, now: NaiveDateTime) -> DbResult<Vec<NewEvent>> {
    let since = now - chrono::Duration::days(ADVISORY_LOOKBACK_DAYS as i64);
    let recent: Vec<i64> = advisories_table::table
        .filter(advisories_table::published_at.ge(since))
        .select(advisories_table::id)
        .load(conn)?;
    let mut due = Vec::new();
    for id in recent {
        let exposure = advisories::exposure(conn, id, now)?;
        for organisation in &exposure.organisations {
            let Some(deadline) = organisation.acknowledge_by else { continue };
            let code = &organisation.organisation_code;
            let subject = format!("advisory/{id}");
            match organisation.status {
                ResponseStatus::Overdue => due.push(dated(
                    EventKind::AcknowledgementOverdue,
                    Some(code),
                    subject,
                    format!(
                        "{code} has not acknowledged advisory {}; it was due by {} UTC.",
                        exposure.reference,
                        deadline.format("%-d %B %Y %H:%M")
                    ),
                    format!("acknowledgement.overdue:{id}:{code}"),
                )),
                ResponseStatus::NotAcknowledged if deadline - now <= chrono::Duration::hours(24) => {
                    due.push(dated(
                        EventKind::AcknowledgementDue,
                        Some(code),
                        subject,
                        format!(
                            "{code} must acknowledge advisory {} by {} UTC.",
                            exposure.reference,
                            deadline.format("%-d %B %Y %H:%M")
                        ),
                        format!("acknowledgement.due:{id}:{code}"),
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(due)
}

/// Products an organisation runs or holds whose support ends within three months (and has not
/// ended: that is the unsupported-software report's business), read a page at a time.
fn support_ending(conn: &mut DbConnection, today: NaiveDate) -> DbResult<Vec<NewEvent>> {
    let filter = UnsupportedFilter {
        on: today,
        within_months: SUPPORT_ENDING_MONTHS,
        status: None,
        organisation: None,
        region: None,
        only_ending: true,
    };
    let mut page = PageRequest { limit: Some(500), cursor: None };
    let mut due = Vec::new();
    loop {
        let found = risk::unsupported_holdings(conn, &filter, &page)?;
        for holding in &found.items {
            // `only_ending`: every holding's support ends in the window, so it has an end.
            let Some(ends) = holding.support_ends_on else { continue };
            let code = &holding.organisation_code;
            due.push(dated(
                EventKind::SupportEnding,
                Some(code),
                format!("product/{}", holding.product_id),
                format!(
                    "{} leaves support on {}; {code} runs or holds it.",
                    holding.product,
                    ends.format("%-d %B %Y")
                ),
                format!("support.ending:{code}:{}:{ends}", holding.product_id),
            ));
        }
        match found.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return Ok(due),
        }
    }
}

fn lines_and_agreements_ending(conn: &mut DbConnection, today: NaiveDate) -> DbResult<Vec<NewEvent>> {
    let horizon = within(today, LINE_ENDING_DAYS);
    let lines: Vec<(i64, NaiveDate, String)> = entitlements::table
        .inner_join(products::table)
        .filter(entitlements::ends_on.between(today, horizon))
        .select((entitlements::id, entitlements::ends_on.assume_not_null(), products::name))
        .load(conn)?;
    let ending: Vec<(i64, NaiveDate, String, String)> = agreements::table
        .filter(agreements::ends_on.between(today, horizon))
        .select((
            agreements::id,
            agreements::ends_on.assume_not_null(),
            agreements::reference,
            agreements::title,
        ))
        .load(conn)?;
    let lines = lines.into_iter().map(|(id, ends, product)| {
        dated(
            EventKind::EntitlementEnding,
            None,
            format!("entitlement/{id}"),
            format!("Entitlement line {id} ({product}) ends on {}.", ends.format("%-d %B %Y")),
            format!("entitlement.ending:{id}:{ends}"),
        )
    });
    let agreements = ending.into_iter().map(|(id, ends, reference, title)| {
        dated(
            EventKind::AgreementEnding,
            None,
            format!("agreement/{id}"),
            format!("Agreement {reference} ({title}) ends on {}.", ends.format("%-d %B %Y")),
            format!("agreement.ending:{id}:{ends}"),
        )
    });
    Ok(lines.chain(agreements).collect())
}

/// An extension option not yet decided, with its agreement.
pub(crate) struct DecisionDue {
    pub id: i64,
    pub agreement_id: i64,
    pub reference: String,
    pub months: i32,
    pub decide_by: NaiveDate,
}

/// The undecided extension options of agreements still running on `today` that must be decided
/// by `until`, from `from` on when given (the reminders tell of each once, as it falls due; the
/// start page lists the overdue ones too), soonest first.
pub(crate) fn extension_decisions_due(
    conn: &mut DbConnection,
    today: NaiveDate,
    from: Option<NaiveDate>,
    until: NaiveDate,
) -> DbResult<Vec<DecisionDue>> {
    let mut query = agreement_extensions::table
        .inner_join(agreements::table)
        .filter(agreement_extensions::decision.is_null())
        .filter(agreement_extensions::decide_by.le(until))
        .filter(agreements::ends_on.is_null().or(agreements::ends_on.ge(today)))
        .order((agreement_extensions::decide_by, agreement_extensions::id))
        .select((
            agreement_extensions::id,
            agreements::id,
            agreements::reference,
            agreement_extensions::months,
            agreement_extensions::decide_by,
        ))
        .into_boxed();
    if let Some(from) = from {
        query = query.filter(agreement_extensions::decide_by.ge(from));
    }
    let rows: Vec<(i64, i64, String, i32, NaiveDate)> = query.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, agreement_id, reference, months, decide_by)| DecisionDue {
            id,
            agreement_id,
            reference,
            months,
            decide_by,
        })
        .collect())
}

fn extension_decisions(conn: &mut DbConnection, today: NaiveDate) -> DbResult<Vec<NewEvent>> {
    let due = extension_decisions_due(conn, today, Some(today), within(today, EXTENSION_DECISION_DAYS))?;
    Ok(due
        .into_iter()
        .map(|option| {
            let DecisionDue { id, agreement_id, reference, months, decide_by } = option;
            dated(
                EventKind::ExtensionDecisionDue,
                None,
                format!("agreement/{agreement_id}"),
                format!(
                    "The {months}-month extension of agreement {reference} must be decided by {}.",
                    decide_by.format("%-d %B %Y")
                ),
                format!("extension.decision_due:{id}:{decide_by}"),
            )
        })
        .collect())
}

/// An obligation an organisation took on with seats, still open, with the day it is due.
pub(crate) struct ObligationDue {
    pub id: i64,
    pub organisation_code: String,
    pub description: String,
    pub due_on: NaiveDate,
}

/// Open obligations due by `until`, of one organisation when named, from `from` on when given,
/// soonest first.
pub(crate) fn open_obligations_due(
    conn: &mut DbConnection,
    organisation: Option<&str>,
    from: Option<NaiveDate>,
    until: NaiveDate,
) -> DbResult<Vec<ObligationDue>> {
    let mut query = obligation_acceptances::table
        .inner_join(obligations::table)
        .filter(obligation_acceptances::status.eq("open"))
        .filter(obligation_acceptances::due_on.le(until))
        .order((obligation_acceptances::due_on, obligation_acceptances::id))
        .select((
            obligation_acceptances::id,
            obligation_acceptances::organisation_code,
            obligations::description,
            obligation_acceptances::due_on.assume_not_null(),
        ))
        .into_boxed();
    if let Some(code) = organisation {
        query = query.filter(obligation_acceptances::organisation_code.eq(code.to_uppercase()));
    }
    if let Some(from) = from {
        query = query.filter(obligation_acceptances::due_on.ge(from));
    }
    let rows: Vec<(i64, String, String, NaiveDate)> = query.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, organisation_code, description, due_on)| ObligationDue {
            id,
            organisation_code,
            description,
            due_on,
        })
        .collect())
}

fn obligations_due(conn: &mut DbConnection, today: NaiveDate) -> DbResult<Vec<NewEvent>> {
    let due = open_obligations_due(conn, None, Some(today), within(today, OBLIGATION_DUE_DAYS))?;
    Ok(due
        .into_iter()
        .map(|ObligationDue { id, organisation_code: code, description, due_on }| {
            dated(
                EventKind::ObligationDue,
                Some(&code),
                format!("obligation_acceptance/{id}"),
                format!("{code} must meet an obligation by {}: {description}", due_on.format("%-d %B %Y")),
                format!("obligation.due:{id}:{due_on}"),
            )
        })
        .collect())
}

/// An organisation's acceptance of running an unsupported product, with the day it ends.
pub(crate) struct ExpiringAcceptance {
    pub id: i64,
    pub organisation_code: String,
    pub product_id: i64,
    /// The product's name, edition and version (`products::label`).
    pub product: String,
    pub expires_on: NaiveDate,
}

/// Risk acceptances that end between `today` and [`RISK_ACCEPTANCE_DAYS`] later, of one
/// organisation when named, soonest first.
pub(crate) fn risk_acceptances_ending(
    conn: &mut DbConnection,
    organisation: Option<&str>,
    today: NaiveDate,
) -> DbResult<Vec<ExpiringAcceptance>> {
    let mut query = risk_acceptances::table
        .inner_join(products::table)
        .filter(risk_acceptances::expires_on.between(today, within(today, RISK_ACCEPTANCE_DAYS)))
        .order((risk_acceptances::expires_on, risk_acceptances::id))
        .select((
            risk_acceptances::id,
            risk_acceptances::organisation_code,
            products::id,
            (products::name, products::edition, products::version),
            risk_acceptances::expires_on,
        ))
        .into_boxed();
    if let Some(code) = organisation {
        query = query.filter(risk_acceptances::organisation_code.eq(code.to_uppercase()));
    }
    type Row = (i64, String, i64, (String, String, String), NaiveDate);
    let rows: Vec<Row> = query.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, organisation_code, product_id, (name, edition, version), expires_on)| ExpiringAcceptance {
            id,
            organisation_code,
            product_id,
            product: crate::products::label(&name, &edition, &version),
            expires_on,
        })
        .collect())
}

fn risk_acceptances_expiring(conn: &mut DbConnection, today: NaiveDate) -> DbResult<Vec<NewEvent>> {
    Ok(risk_acceptances_ending(conn, None, today)?
        .into_iter()
        .map(|ExpiringAcceptance { id, organisation_code: code, product, expires_on, .. }| {
            dated(
                EventKind::RiskAcceptanceExpiring,
                Some(&code),
                format!("risk_acceptance/{id}"),
                format!(
                    "{code}'s risk acceptance for {product} expires on {}.",
                    expires_on.format("%-d %B %Y")
                ),
                format!("risk_acceptance.expiring:{id}:{expires_on}"),
            )
        })
        .collect())
}
