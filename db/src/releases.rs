//! Releases: a product is what is licensed (Windows 11 Enterprise); its releases (24H2, LTSC
//! 2024) carry the lifecycle dates, as the supplier publishes them per release. Support status at
//! a date is decided per release; entitlements stay per product.

use std::collections::HashMap;

use chrono::{Months, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use crate::connection::DbConnection;
use crate::error::DbResult;
use crate::schema::{products, releases};
use crate::vocabulary::{ReleaseStatus, SupportStatus};

/// How far ahead an end of support counts as "ending".
pub const ENDING_WITHIN_MONTHS: u32 = 12;

#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = releases)]
pub struct Release {
    pub id: i64,
    pub product_id: i64,
    /// The release's name in the catalogue, e.g. `22H2` or `LTSC 2024`.
    #[cfg_attr(feature = "openapi", schema(example = "22H2"))]
    pub name: String,
    pub released_on: Option<NaiveDate>,
    /// The end of active (mainstream) support: features and non-security fixes.
    pub active_support_ends_on: Option<NaiveDate>,
    /// The last day of security updates included in the licence.
    pub security_support_ends_on: Option<NaiveDate>,
    /// The last day of paid extended security updates, where the supplier sells them.
    pub extended_updates_end_on: Option<NaiveDate>,
    pub source: Option<String>,
    #[serde(skip)]
    pub revision: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc")]
    pub updated_at: NaiveDateTime,
}

impl Release {
    /// The release's support at `on`. An end date is the last day of that support.
    pub fn status(&self, on: NaiveDate) -> ReleaseStatus {
        release_status(
            self.active_support_ends_on,
            self.security_support_ends_on,
            self.extended_updates_end_on,
            on,
        )
    }

    /// The last day anything (paid or not) covers the release, if an end is known.
    pub fn last_day_covered(&self) -> Option<NaiveDate> {
        self.extended_updates_end_on.or(self.security_support_ends_on)
    }
}

/// [`Release::status`] from the dates alone.
pub fn release_status(
    active_ends: Option<NaiveDate>,
    security_ends: Option<NaiveDate>,
    extended_updates_end: Option<NaiveDate>,
    on: NaiveDate,
) -> ReleaseStatus {
    let security_ends = security_ends.or(active_ends);
    match (security_ends, extended_updates_end) {
        (Some(end), Some(paid_end)) if on > end && on <= paid_end => ReleaseStatus::ExtendedUpdatesOnly,
        (Some(end), _) if on > end => ReleaseStatus::Unsupported,
        (Some(end), _) if ending_soon(end, on) => ReleaseStatus::Ending,
        _ => ReleaseStatus::Supported,
    }
}

fn ending_soon(end: NaiveDate, on: NaiveDate) -> bool {
    on.checked_add_months(Months::new(ENDING_WITHIN_MONTHS)).is_some_and(|horizon| end <= horizon)
}

/// A product's own status (from its product-level dates) as a release status: the answer for a
/// product with no releases.
pub fn from_product_status(
    status: SupportStatus,
    support_ends_on: Option<NaiveDate>,
    on: NaiveDate,
) -> ReleaseStatus {
    match status {
        SupportStatus::Unsupported => ReleaseStatus::Unsupported,
        _ if support_ends_on.is_some_and(|end| ending_soon(end, on)) => ReleaseStatus::Ending,
        _ => ReleaseStatus::Supported,
    }
}

/// How good a status is for the officer: the release that keeps a product supported longest wins.
fn rank(status: ReleaseStatus) -> u8 {
    match status {
        ReleaseStatus::Supported => 3,
        ReleaseStatus::Ending => 2,
        ReleaseStatus::ExtendedUpdatesOnly => 1,
        ReleaseStatus::Unsupported => 0,
    }
}

/// The release a question about the product as a whole is answered for: the best supported at
/// `on` among those already released, then the one covered longest (an unknown end counts as
/// longest), then the newest.
pub fn best_at(releases: &[Release], on: NaiveDate) -> Option<&Release> {
    releases.iter().filter(|r| r.released_on.is_none_or(|day| day <= on)).max_by_key(|r| {
        (rank(r.status(on)), r.last_day_covered().map_or((1, NaiveDate::MIN), |day| (0, day)), r.released_on)
    })
}

/// A product's releases, newest first.
pub fn for_product(conn: &mut DbConnection, product_id: i64) -> DbResult<Vec<Release>> {
    Ok(releases::table
        .filter(releases::product_id.eq(product_id))
        .select(Release::as_select())
        .order((releases::released_on.desc(), releases::name))
        .load(conn)?)
}

/// Every release, keyed by product (the read model's load).
pub fn all(conn: &mut DbConnection) -> DbResult<HashMap<i64, Vec<Release>>> {
    let rows: Vec<Release> = releases::table
        .select(Release::as_select())
        .order((releases::product_id, releases::released_on.desc(), releases::name))
        .load(conn)?;
    let mut by_product: HashMap<i64, Vec<Release>> = HashMap::new();
    for release in rows {
        by_product.entry(release.product_id).or_default().push(release);
    }
    Ok(by_product)
}

/// Every product's successor link, as (product, successor).
pub fn successors(conn: &mut DbConnection) -> DbResult<HashMap<i64, i64>> {
    let rows: Vec<(i64, Option<i64>)> = products::table
        .filter(products::successor_id.is_not_null())
        .select((products::id, products::successor_id))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(id, successor)| Some((id, successor?))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn the_end_day_is_the_last_day_of_support() {
        let (security, paid) = (Some(day(2025, 10, 14)), Some(day(2028, 10, 10)));
        assert_eq!(release_status(None, security, paid, day(2025, 10, 14)), ReleaseStatus::Ending);
        assert_eq!(
            release_status(None, security, paid, day(2025, 10, 15)),
            ReleaseStatus::ExtendedUpdatesOnly
        );
        assert_eq!(
            release_status(None, security, paid, day(2028, 10, 10)),
            ReleaseStatus::ExtendedUpdatesOnly
        );
        assert_eq!(release_status(None, security, paid, day(2028, 10, 11)), ReleaseStatus::Unsupported);
        assert_eq!(release_status(None, security, None, day(2024, 10, 14)), ReleaseStatus::Ending);
        assert_eq!(release_status(None, security, None, day(2024, 10, 13)), ReleaseStatus::Supported);
        assert_eq!(release_status(None, None, None, day(2024, 10, 13)), ReleaseStatus::Supported);
        // Without a security end, the end of active support is the end.
        assert_eq!(release_status(security, None, None, day(2026, 1, 1)), ReleaseStatus::Unsupported);
    }
}
