//! What needs someone's attention today, for the start page (issue 22): for an organisation,
//! advisories to acknowledge, obligations and risk acceptances falling due, and its seat requests
//! waiting for a decision; for the national team, the requests it must decide, lines nearly
//! full, and extension decisions due. The reminders (`reminders`) tell people of each occasion
//! once, as it arises; this is the list as it stands, whether or not anyone was told.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::advisories::{self, ResponseStatus};
use crate::connection::DbConnection;
use crate::error::DbResult;
use crate::products::label;
use crate::reminders::{EXTENSION_DECISION_DAYS, OBLIGATION_DUE_DAYS, RISK_ACCEPTANCE_DAYS, within};
use crate::schema::{
    agreement_extensions, agreements, entitlements, obligation_acceptances, obligations, products,
    risk_acceptances, seat_requests,
};
use crate::vocabulary::{AgreementStatus, SeatRequestStatus};

/// A product's name, edition and version, as [`label`] joins them.
type ProductWords = (String, String, String);
const PRODUCT_WORDS: (products::name, products::edition, products::version) =
    (products::name, products::edition, products::version);

/// Advisories published longer ago than this are not looked at: reading an advisory's exposure
/// walks every organisation that holds what it names, and the start page is read often. Their
/// 48-hour deadlines passed long before; the organisation page still lists every one.
pub const ADVISORY_LOOKBACK_DAYS: i64 = 90;

/// A line is nearly full when this share of its cap (in tenths) is allocated.
pub const NEARLY_FULL_TENTHS: i64 = 9;

/// One thing to attend to, most pressing kinds first (the order [`for_organisation`] and
/// [`for_the_national_team`] return them in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attention {
    /// An advisory the organisation should have acknowledged by `due`.
    AcknowledgementOverdue { advisory_id: i64, reference: String, due: NaiveDateTime },
    /// An advisory the organisation must acknowledge by `due`.
    AcknowledgementDue { advisory_id: i64, reference: String, due: NaiveDateTime },
    /// An obligation the organisation took on with seats, due by `due_on`; `overdue` once that
    /// day has passed.
    ObligationDue { description: String, due_on: NaiveDate, overdue: bool },
    /// The organisation's acceptance of running an unsupported product ends on `expires_on`.
    RiskAcceptanceExpiring { product_id: i64, product: String, expires_on: NaiveDate },
    /// Requests for seats on lines that need approval, not yet decided.
    SeatRequestsWaiting { count: i64 },
    /// A capped line with at least nine tenths of its seats allocated.
    LineNearlyFull { agreement_id: i64, product: String, allocated: i64, cap: i64 },
    /// An agreement's extension option must be taken up or let go by `decide_by`; `overdue`
    /// once that day has passed with nothing decided.
    ExtensionDecisionDue {
        agreement_id: i64,
        reference: String,
        months: i32,
        decide_by: NaiveDate,
        overdue: bool,
    },
}

/// What organisation `code` must attend to at `now`.
pub fn for_organisation(conn: &mut DbConnection, code: &str, now: NaiveDateTime) -> DbResult<Vec<Attention>> {
    let code = code.to_uppercase();
    let today = now.date();
    let mut found = Vec::new();
    let since = now - chrono::Duration::days(ADVISORY_LOOKBACK_DAYS);
    for standing in advisories::report_since(conn, Some(&code), Some(since), now)? {
        let Some(due) = standing.acknowledge_by else { continue };
        let (advisory_id, reference) = (standing.advisory_id, standing.reference);
        match standing.status {
            ResponseStatus::Overdue => {
                found.push(Attention::AcknowledgementOverdue { advisory_id, reference, due })
            }
            ResponseStatus::NotAcknowledged => {
                found.push(Attention::AcknowledgementDue { advisory_id, reference, due })
            }
            ResponseStatus::Acknowledged | ResponseStatus::Closed => {}
        }
    }
    let obligations: Vec<(String, NaiveDate)> = obligation_acceptances::table
        .inner_join(obligations::table)
        .filter(obligation_acceptances::organisation_code.eq(&code))
        .filter(obligation_acceptances::status.eq("open"))
        .filter(obligation_acceptances::due_on.le(within(today, OBLIGATION_DUE_DAYS)))
        .order(obligation_acceptances::due_on)
        .select((obligations::description, obligation_acceptances::due_on.assume_not_null()))
        .load(conn)?;
    found.extend(obligations.into_iter().map(|(description, due_on)| Attention::ObligationDue {
        description,
        due_on,
        overdue: due_on < today,
    }));
    let expiring: Vec<(i64, ProductWords, NaiveDate)> = risk_acceptances::table
        .inner_join(products::table)
        .filter(risk_acceptances::organisation_code.eq(&code))
        .filter(risk_acceptances::expires_on.between(today, within(today, RISK_ACCEPTANCE_DAYS)))
        .order(risk_acceptances::expires_on)
        .select((products::id, PRODUCT_WORDS, risk_acceptances::expires_on))
        .load(conn)?;
    found.extend(expiring.into_iter().map(|(product_id, (name, edition, version), expires_on)| {
        let product = label(&name, &edition, &version);
        Attention::RiskAcceptanceExpiring { product_id, product, expires_on }
    }));
    let waiting: i64 = seat_requests::table
        .filter(seat_requests::organisation_code.eq(&code))
        .filter(seat_requests::status.eq(SeatRequestStatus::Pending))
        .count()
        .get_result(conn)?;
    if waiting > 0 {
        found.push(Attention::SeatRequestsWaiting { count: waiting });
    }
    Ok(found)
}

/// What the national team must attend to at `now`.
pub fn for_the_national_team(conn: &mut DbConnection, now: NaiveDateTime) -> DbResult<Vec<Attention>> {
    let today = now.date();
    let mut found = Vec::new();
    let waiting: i64 = seat_requests::table
        .filter(seat_requests::status.eq(SeatRequestStatus::Pending))
        .count()
        .get_result(conn)?;
    if waiting > 0 {
        found.push(Attention::SeatRequestsWaiting { count: waiting });
    }
    // Caps are at most MAX_SEATS_PER_LINE (10^9), and a line never holds more than its cap
    // allows, so neither product can overflow. A cap of 0 is a line closed to claims, not one
    // nearly full.
    let nearly_full: Vec<(i64, ProductWords, i64, i64)> = entitlements::table
        .inner_join(products::table)
        .inner_join(agreements::table)
        .filter(agreements::status.eq(AgreementStatus::Active))
        .filter(entitlements::seat_cap.gt(0))
        .filter(entitlements::ends_on.is_null().or(entitlements::ends_on.ge(today)))
        .filter(
            (entitlements::seats_allocated * 10)
                .ge(entitlements::seat_cap.assume_not_null() * NEARLY_FULL_TENTHS),
        )
        .order(entitlements::id)
        .select((
            entitlements::agreement_id,
            PRODUCT_WORDS,
            entitlements::seats_allocated,
            entitlements::seat_cap.assume_not_null(),
        ))
        .load(conn)?;
    found.extend(nearly_full.into_iter().map(|(agreement_id, (name, edition, version), allocated, cap)| {
        Attention::LineNearlyFull { agreement_id, product: label(&name, &edition, &version), allocated, cap }
    }));
    let decisions: Vec<(i64, String, i32, NaiveDate)> = agreement_extensions::table
        .inner_join(agreements::table)
        .filter(agreement_extensions::decision.is_null())
        .filter(agreement_extensions::decide_by.le(within(today, EXTENSION_DECISION_DAYS)))
        .filter(agreements::ends_on.is_null().or(agreements::ends_on.ge(today)))
        .order(agreement_extensions::decide_by)
        .select((
            agreements::id,
            agreements::reference,
            agreement_extensions::months,
            agreement_extensions::decide_by,
        ))
        .load(conn)?;
    found.extend(decisions.into_iter().map(|(agreement_id, reference, months, decide_by)| {
        Attention::ExtensionDecisionDue {
            agreement_id,
            reference,
            months,
            decide_by,
            overdue: decide_by < today,
        }
    }));
    Ok(found)
}
