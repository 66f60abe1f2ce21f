//! The NHSmail service an organisation takes, over time. From January 2024 the national
//! Microsoft provision depends on it: Standard Service organisations get the Standard tier
//! (Microsoft 365 F3 without Windows, Entra ID P2, Exchange Online, Defender for Office 365),
//! Enhanced Service organisations the Enhanced tier (Microsoft 365 E3 Frontline Restricted, F5
//! Security & Compliance). A line marked with a service is offered only to organisations taking
//! it on the day asked about.
//!
//! What an organisation records wins. Where it has recorded nothing, the service is the one NHS
//! England names for its kind: the Enhanced Service "for NHS trusts, ICBs, CSUs, arm's-length
//! bodies and DHSC" (https://support.nhs.net/?p=39558), the Standard Service for the rest, from
//! 2024-01-01. The answer says which of the two it rests on.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit::{Actor, Audited, Change};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::organisations;
use crate::schema::nhsmail_service_periods as periods;
use crate::vocabulary::{NhsmailService, OrganisationKind};

/// The day the two services began ("from January 2024"; the first day is assumed).
pub fn services_began() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// At most this many periods per organisation: more would be a mistake, not a history.
pub const MAX_PERIODS: usize = 50;

/// One period in which an organisation took one NHSmail service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = periods)]
pub struct ServicePeriod {
    pub service: NhsmailService,
    pub starts_on: NaiveDate,
    /// Inclusive; null while it lasts.
    pub ends_on: Option<NaiveDate>,
    /// The document or message that records it (for example the NHSmail onboarding confirmation).
    pub source: Option<String>,
}

impl ServicePeriod {
    fn covers(&self, on: NaiveDate) -> bool {
        self.starts_on <= on && self.ends_on.is_none_or(|end| on <= end)
    }
}

/// What the service on a day rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ServiceBasis {
    /// A period the organisation (or the national team) recorded.
    Recorded,
    /// Nothing is recorded: the service NHS England names for the organisation's kind.
    ByKind,
}

/// The service an organisation takes on a day, and what that rests on; `None` before the
/// services began, or when a recorded history leaves the day uncovered.
pub fn service_on(
    recorded: &[ServicePeriod],
    kind: OrganisationKind,
    on: NaiveDate,
) -> Option<(NhsmailService, ServiceBasis)> {
    if !recorded.is_empty() {
        return recorded
            .iter()
            .find(|period| period.covers(on))
            .map(|period| (period.service, ServiceBasis::Recorded));
    }
    (on >= services_began()).then(|| (service_for_kind(kind), ServiceBasis::ByKind))
}

/// The service NHS England names for a kind of organisation (see the module's comment).
pub fn service_for_kind(kind: OrganisationKind) -> NhsmailService {
    match kind {
        OrganisationKind::Trust
        | OrganisationKind::Icb
        | OrganisationKind::Csu
        | OrganisationKind::ArmsLengthBody
        | OrganisationKind::NationalBody => NhsmailService::Enhanced,
        OrganisationKind::GpPractice | OrganisationKind::Other => NhsmailService::Standard,
    }
}

/// An organisation's recorded periods, earliest first.
pub fn periods_of(conn: &mut DbConnection, organisation_code: &str) -> DbResult<Vec<ServicePeriod>> {
    Ok(periods::table
        .filter(periods::organisation_code.eq(organisation_code))
        .order((periods::starts_on, periods::id))
        .select(ServicePeriod::as_select())
        .load(conn)?)
}

/// Every organisation's recorded periods (for the read model).
pub fn all_periods(conn: &mut DbConnection) -> DbResult<HashMap<String, Vec<ServicePeriod>>> {
    let rows: Vec<(String, ServicePeriod)> = periods::table
        .order((periods::organisation_code, periods::starts_on, periods::id))
        .select((periods::organisation_code, ServicePeriod::as_select()))
        .load(conn)?;
    Ok(by_organisation(rows))
}

/// The recorded periods of each of `codes` (at most `BINDS_PER_QUERY` of them) in one query,
/// earliest first; an organisation that recorded none is absent.
pub fn periods_of_each(
    conn: &mut DbConnection,
    codes: &[String],
) -> DbResult<HashMap<String, Vec<ServicePeriod>>> {
    let rows: Vec<(String, ServicePeriod)> = periods::table
        .filter(periods::organisation_code.eq_any(codes))
        .order((periods::organisation_code, periods::starts_on, periods::id))
        .select((periods::organisation_code, ServicePeriod::as_select()))
        .load(conn)?;
    Ok(by_organisation(rows))
}

fn by_organisation(rows: Vec<(String, ServicePeriod)>) -> HashMap<String, Vec<ServicePeriod>> {
    let mut by_organisation: HashMap<String, Vec<ServicePeriod>> = HashMap::new();
    for (code, period) in rows {
        by_organisation.entry(code).or_default().push(period);
    }
    by_organisation
}

/// An organisation's NHSmail service history, as recorded, with the service on a day.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceHistory {
    pub organisation_code: String,
    pub periods: Vec<ServicePeriod>,
    /// The service on `on`: recorded, or by the organisation's kind when nothing is recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<NhsmailService>))]
    pub service: Option<NhsmailService>,
    pub basis: Option<ServiceBasis>,
    pub on: NaiveDate,
}

pub fn history(conn: &mut DbConnection, organisation_code: &str, on: NaiveDate) -> DbResult<ServiceHistory> {
    let organisation = organisations::get(conn, organisation_code)?;
    let recorded = periods_of(conn, &organisation.code)?;
    let found = service_on(&recorded, organisation.kind, on);
    Ok(ServiceHistory {
        organisation_code: organisation.code,
        periods: recorded,
        service: found.map(|(service, _)| service),
        basis: found.map(|(_, basis)| basis),
        on,
    })
}

/// Checks a history: known services, each period's dates in order and after the services began,
/// no two periods overlapping.
fn validate(new_periods: &mut [ServicePeriod]) -> DbResult<()> {
    if new_periods.len() > MAX_PERIODS {
        return Err(DbError::Invalid(format!("at most {MAX_PERIODS} periods may be recorded")));
    }
    for (index, period) in new_periods.iter().enumerate() {
        if period.ends_on.is_some_and(|end| end < period.starts_on) {
            return Err(DbError::Invalid(format!("periods[{index}]: ends_on is before starts_on")));
        }
        if period.starts_on < services_began() {
            return Err(DbError::Invalid(format!(
                "periods[{index}]: the NHSmail Standard and Enhanced Services began on {}",
                services_began()
            )));
        }
    }
    new_periods.sort_by_key(|period| period.starts_on);
    for pair in new_periods.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        if earlier.ends_on.is_none_or(|end| end >= later.starts_on) {
            return Err(DbError::Invalid(format!(
                "the period starting {} overlaps the one starting {}",
                later.starts_on, earlier.starts_on
            )));
        }
    }
    Ok(())
}

/// Replaces an organisation's recorded history, in one audited transaction, answering with the
/// service on `on`. An empty list clears it (the service is then the one for its kind).
pub fn replace(
    db: &Database,
    actor: &Actor,
    organisation_code: &str,
    mut new_periods: Vec<ServicePeriod>,
    on: NaiveDate,
) -> DbResult<ServiceHistory> {
    validate(&mut new_periods)?;
    for period in &mut new_periods {
        period.source = period.source.take().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    }
    db.write(actor, |conn| {
        let organisation = organisations::get(conn, organisation_code)?;
        let before = periods_of(conn, &organisation.code)?;
        if before == new_periods {
            return Ok(Audited::unchanged(history(conn, &organisation.code, on)?));
        }
        diesel::delete(periods::table.filter(periods::organisation_code.eq(&organisation.code)))
            .execute(conn)?;
        for period in &new_periods {
            diesel::insert_into(periods::table)
                .values((periods::organisation_code.eq(&organisation.code), period))
                .execute(conn)?;
        }
        let after = history(conn, &organisation.code, on)?;
        let change = Change::new("nhsmail_service.replace", "nhsmail_service", &organisation.code)
            .organisation(Some(&organisation.code))
            .before(&before)
            .after(&after.periods);
        Ok(Audited::one(after, change))
    })
}
