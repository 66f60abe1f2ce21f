//! Lifecycle sync: releases and their dates from endoflife.date product documents (API v1), by a
//! mapping kept in the catalogue (`lifecycle_sources`) from a catalogue product's release names
//! to an endoflife.date product's release cycles. Fetching is the caller's business (the command
//! line reads the API or files); this module parses, plans and applies, in one transaction.
//!
//! A date that moves by more than a year is not applied: it is held for an admin to confirm,
//! because a mistaken upstream edit must not silently turn unsupported software supported.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::releases::Release;
use crate::schema::{lifecycle_holds, lifecycle_sources, products, releases};
use crate::vocabulary::HoldStatus;

/// A date moving by more than this many days is held for an admin, not applied.
pub const HOLD_WHEN_MOVED_MORE_THAN_DAYS: i64 = 365;

/// An endoflife.date product document, as `GET /api/v1/products/{name}` serves it (only the
/// fields the catalogue reads; the rest are ignored).
#[derive(Debug, Deserialize)]
pub struct EolDocument {
    pub schema_version: String,
    pub result: EolProduct,
}

#[derive(Debug, Deserialize)]
pub struct EolProduct {
    pub name: String,
    pub releases: Vec<EolRelease>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EolRelease {
    pub name: String,
    pub release_date: Option<NaiveDate>,
    pub eoas_from: Option<NaiveDate>,
    pub eol_from: Option<NaiveDate>,
    #[serde(default)]
    pub eoes_from: Option<NaiveDate>,
}

impl EolDocument {
    /// Parses a document and checks it is the product asked for.
    pub fn parse(product: &str, text: &str) -> DbResult<EolDocument> {
        let document: EolDocument = serde_json::from_str(text).map_err(|e| {
            DbError::Invalid(format!("the endoflife.date document for {product} is malformed: {e}"))
        })?;
        if document.result.name != product {
            return Err(DbError::Invalid(format!(
                "the endoflife.date document for {product} describes {:?} instead",
                document.result.name
            )));
        }
        if !document.schema_version.starts_with("1.") {
            return Err(DbError::Invalid(format!(
                "the endoflife.date document for {product} has schema version {}, not 1.x",
                document.schema_version
            )));
        }
        Ok(document)
    }
}

/// A document with where and when it was read: what a synced date's source names.
pub struct Fetched {
    pub document: EolDocument,
    /// The address or file it was read from.
    pub location: String,
    pub fetched_at: DateTime<Utc>,
}

impl Fetched {
    fn source(&self, release: &str) -> String {
        format!(
            "endoflife.date {} release {release}, read from {} at {}",
            self.document.result.name,
            self.location,
            self.fetched_at.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

/// One mapping: the catalogue product's release `release_name` is `eol_release` of endoflife.date's
/// `eol_product`.
#[derive(Clone, Debug, Serialize, Deserialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = lifecycle_sources)]
pub struct LifecycleSource {
    #[serde(skip_deserializing)]
    pub id: i64,
    #[serde(skip_deserializing)]
    pub product_id: i64,
    /// The release's name in the catalogue.
    #[cfg_attr(feature = "openapi", schema(example = "22H2"))]
    pub release_name: String,
    /// The endoflife.date product, e.g. `windows`.
    #[cfg_attr(feature = "openapi", schema(example = "windows"))]
    pub eol_product: String,
    /// The endoflife.date release cycle, e.g. `10-22h2`.
    #[cfg_attr(feature = "openapi", schema(example = "10-22h2"))]
    pub eol_release: String,
}

/// Every mapping, or one product's.
pub fn sources(conn: &mut DbConnection, product_id: Option<i64>) -> DbResult<Vec<LifecycleSource>> {
    let mut query = lifecycle_sources::table.select(LifecycleSource::as_select()).into_boxed();
    if let Some(product_id) = product_id {
        query = query.filter(lifecycle_sources::product_id.eq(product_id));
    }
    Ok(query.order((lifecycle_sources::product_id, lifecycle_sources::release_name)).load(conn)?)
}

/// The endoflife.date products the mapping names: the documents a sync needs.
pub fn products_to_fetch(conn: &mut DbConnection) -> DbResult<Vec<String>> {
    Ok(lifecycle_sources::table
        .select(lifecycle_sources::eol_product)
        .distinct()
        .order(lifecycle_sources::eol_product)
        .load(conn)?)
}

fn check_source(source: &LifecycleSource) -> DbResult<()> {
    let slug = |text: &str| {
        !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    };
    let too_long = |text: &str| text.chars().count() > 100;
    if too_long(&source.release_name) || too_long(&source.eol_product) || too_long(&source.eol_release) {
        return Err(DbError::Invalid(
            "release_name, eol_product and eol_release take at most 100 characters".into(),
        ));
    }
    // PostgreSQL cannot store a NUL, and SQLite's length() stops at one, so that its CHECK on a
    // non-empty name would refuse a name that starts with one: refused alike on both engines.
    if [&source.release_name, &source.eol_product, &source.eol_release].iter().any(|t| t.contains('\0')) {
        return Err(DbError::Invalid("text must not contain NUL characters".into()));
    }
    if source.release_name.trim().is_empty() {
        return Err(DbError::Invalid("release_name must not be empty".into()));
    }
    if !slug(&source.eol_product) {
        return Err(DbError::Invalid(
            "eol_product must be an endoflife.date product name (a-z, 0-9, '.', '-')".into(),
        ));
    }
    if source.eol_release.trim().is_empty() {
        return Err(DbError::Invalid("eol_release must not be empty".into()));
    }
    Ok(())
}

/// Replaces one product's mapping (what an admin edits), in one audited write.
pub fn set_sources(
    db: &Database,
    actor: &Actor,
    product_id: i64,
    wanted: Vec<LifecycleSource>,
) -> DbResult<Vec<LifecycleSource>> {
    for source in &wanted {
        check_source(source)?;
    }
    db.write(actor, |conn| {
        let before = replace_sources(conn, product_id, &wanted)?;
        let after = sources(conn, Some(product_id))?;
        let change =
            Change::new("product.lifecycle_sources", "product", product_id).before(&before).after(&after);
        Ok(Audited::one(after, change))
    })
}

/// [`set_sources`] inside a transaction the caller holds (seeding); gives back the old mapping.
pub fn replace_sources(
    conn: &mut DbConnection,
    product_id: i64,
    wanted: &[LifecycleSource],
) -> DbResult<Vec<LifecycleSource>> {
    let exists: i64 = products::table.filter(products::id.eq(product_id)).count().get_result(conn)?;
    if exists == 0 {
        return Err(DbError::NotFound("product"));
    }
    let before = sources(conn, Some(product_id))?;
    diesel::delete(lifecycle_sources::table.filter(lifecycle_sources::product_id.eq(product_id)))
        .execute(conn)?;
    for source in wanted {
        diesel::insert_into(lifecycle_sources::table)
            .values((
                lifecycle_sources::product_id.eq(product_id),
                lifecycle_sources::release_name.eq(source.release_name.trim()),
                lifecycle_sources::eol_product.eq(&source.eol_product),
                lifecycle_sources::eol_release.eq(source.eol_release.trim()),
            ))
            .execute(conn)
            .map_err(|e| match e {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => DbError::Invalid(format!(
                    "release {} or endoflife.date release {} is mapped twice",
                    source.release_name, source.eol_release
                )),
                other => other.into(),
            })?;
    }
    Ok(before)
}

/// A release's dates, as a document gives them.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseDates {
    pub released_on: Option<NaiveDate>,
    pub active_support_ends_on: Option<NaiveDate>,
    pub security_support_ends_on: Option<NaiveDate>,
    pub extended_updates_end_on: Option<NaiveDate>,
}

impl ReleaseDates {
    fn of(release: &Release) -> ReleaseDates {
        ReleaseDates {
            released_on: release.released_on,
            active_support_ends_on: release.active_support_ends_on,
            security_support_ends_on: release.security_support_ends_on,
            extended_updates_end_on: release.extended_updates_end_on,
        }
    }

    fn from_document(release: &EolRelease) -> ReleaseDates {
        ReleaseDates {
            released_on: release.release_date,
            active_support_ends_on: release.eoas_from,
            security_support_ends_on: release.eol_from,
            extended_updates_end_on: release.eoes_from,
        }
    }

    fn fields(&self) -> [(&'static str, Option<NaiveDate>); 4] {
        [
            ("released_on", self.released_on),
            ("active_support_ends_on", self.active_support_ends_on),
            ("security_support_ends_on", self.security_support_ends_on),
            ("extended_updates_end_on", self.extended_updates_end_on),
        ]
    }

    /// The order the database checks: active support ends before security support, and paid
    /// updates after it.
    fn in_order(&self) -> bool {
        let ordered = |a: Option<NaiveDate>, b: Option<NaiveDate>| a.zip(b).is_none_or(|(a, b)| a <= b);
        ordered(self.active_support_ends_on, self.security_support_ends_on)
            && ordered(self.security_support_ends_on, self.extended_updates_end_on)
    }
}

/// What a sync would do to one release.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlannedChange {
    /// A release the catalogue does not hold yet.
    Add { product_id: i64, release: String, dates: ReleaseDates, source: String },
    /// A date that moved by a year or less, or was unknown: applied.
    Update {
        product_id: i64,
        release: String,
        field: String,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        source: String,
    },
    /// A date that moved by more than a year, or was withdrawn: held for an admin.
    Hold {
        product_id: i64,
        release: String,
        field: String,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        source: String,
    },
}

/// What a sync would do (a dry run) or did.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncPlan {
    pub changes: Vec<PlannedChange>,
    /// Mapped releases whose dates already match the documents.
    pub unchanged: usize,
}

impl SyncPlan {
    pub fn count(&self, kind: &str) -> usize {
        self.changes
            .iter()
            .filter(|change| {
                matches!(
                    (kind, change),
                    ("add", PlannedChange::Add { .. })
                        | ("update", PlannedChange::Update { .. })
                        | ("hold", PlannedChange::Hold { .. })
                )
            })
            .count()
    }
}

fn moved_too_far(from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
    match (from, to) {
        (Some(from), Some(to)) => (to - from).num_days().abs() > HOLD_WHEN_MOVED_MORE_THAN_DAYS,
        // An end date withdrawn would make the release supported forever: an admin decides.
        (Some(_), None) => true,
        _ => false,
    }
}

/// Plans a sync of every mapped release against the documents. Refuses the whole sync (changing
/// nothing) when a document the mapping needs is missing or lacks a mapped release.
pub fn plan(conn: &mut DbConnection, documents: &[Fetched]) -> DbResult<SyncPlan> {
    let mapping = sources(conn, None)?;
    let mut plan = SyncPlan::default();
    for source in &mapping {
        let fetched =
            documents.iter().find(|f| f.document.result.name == source.eol_product).ok_or_else(|| {
                DbError::Invalid(format!("no endoflife.date document for {} was read", source.eol_product))
            })?;
        let upstream = fetched
            .document
            .result
            .releases
            .iter()
            .find(|r| r.name == source.eol_release)
            .ok_or_else(|| {
                DbError::Invalid(format!(
                    "the endoflife.date document for {} has no release {} (mapped to product {} release {})",
                    source.eol_product, source.eol_release, source.product_id, source.release_name
                ))
            })?;
        let wanted = ReleaseDates::from_document(upstream);
        if !wanted.in_order() {
            return Err(DbError::Invalid(format!(
                "the endoflife.date document for {} gives release {} dates out of order",
                source.eol_product, source.eol_release
            )));
        }
        let held: Option<Release> = releases::table
            .filter(releases::product_id.eq(source.product_id).and(releases::name.eq(&source.release_name)))
            .select(Release::as_select())
            .first(conn)
            .optional()?;
        let source_text = fetched.source(&source.eol_release);
        let Some(held) = held else {
            plan.changes.push(PlannedChange::Add {
                product_id: source.product_id,
                release: source.release_name.clone(),
                dates: wanted,
                source: source_text,
            });
            continue;
        };
        let current = ReleaseDates::of(&held);
        let mut changed = false;
        for ((field, from), (_, to)) in current.fields().into_iter().zip(wanted.fields()) {
            if from == to {
                continue;
            }
            changed = true;
            let (product_id, release, field, source) =
                (source.product_id, source.release_name.clone(), field.to_owned(), source_text.clone());
            if moved_too_far(from, to) {
                plan.changes.push(PlannedChange::Hold { product_id, release, field, from, to, source });
            } else {
                plan.changes.push(PlannedChange::Update { product_id, release, field, from, to, source });
            }
        }
        if !changed {
            plan.unchanged += 1;
        }
    }
    Ok(plan)
}

/// Applies a plan inside the caller's transaction, giving back the audit changes.
pub fn apply_plan(conn: &mut DbConnection, plan: &SyncPlan) -> DbResult<Vec<Change>> {
    let mut changes = Vec::new();
    let stamp = now();
    for change in &plan.changes {
        match change {
            PlannedChange::Add { product_id, release, dates, source } => {
                let id: i64 = diesel::insert_into(releases::table)
                    .values((
                        releases::product_id.eq(product_id),
                        releases::name.eq(release),
                        releases::released_on.eq(dates.released_on),
                        releases::active_support_ends_on.eq(dates.active_support_ends_on),
                        releases::security_support_ends_on.eq(dates.security_support_ends_on),
                        releases::extended_updates_end_on.eq(dates.extended_updates_end_on),
                        releases::source.eq(source),
                        releases::created_at.eq(stamp),
                        releases::updated_at.eq(stamp),
                    ))
                    .returning(releases::id)
                    .get_result(conn)?;
                let after = get(conn, id)?;
                changes.push(Change::new("release.create", "release", id).after(&after));
            }
            PlannedChange::Update { product_id, release, field, to, source, .. } => {
                let before = by_name(conn, *product_id, release)?;
                set_date(conn, before.id, field, *to, source, stamp)?;
                let after = get(conn, before.id)?;
                changes
                    .push(Change::new("release.update", "release", before.id).before(&before).after(&after));
            }
            PlannedChange::Hold { product_id, release, field, from, to, source } => {
                let held = by_name(conn, *product_id, release)?;
                let mut pending = lifecycle_holds::table
                    .filter(lifecycle_holds::release_id.eq(held.id))
                    .filter(lifecycle_holds::field.eq(field))
                    .filter(lifecycle_holds::status.eq(HoldStatus::Pending))
                    .into_boxed();
                pending = match to {
                    Some(day) => pending.filter(lifecycle_holds::proposed_value.eq(*day)),
                    None => pending.filter(lifecycle_holds::proposed_value.is_null()),
                };
                // The same proposal already waiting for an admin is not held twice.
                let already: i64 = pending.count().get_result(conn)?;
                if already > 0 {
                    continue;
                }
                let id: i64 = diesel::insert_into(lifecycle_holds::table)
                    .values((
                        lifecycle_holds::release_id.eq(held.id),
                        lifecycle_holds::field.eq(field),
                        lifecycle_holds::current_value.eq(*from),
                        lifecycle_holds::proposed_value.eq(*to),
                        lifecycle_holds::source.eq(source),
                        lifecycle_holds::created_at.eq(stamp),
                    ))
                    .returning(lifecycle_holds::id)
                    .get_result(conn)?;
                let hold = get_hold(conn, id)?;
                changes.push(Change::new("lifecycle_hold.create", "lifecycle_hold", id).after(&hold));
            }
        }
    }
    Ok(changes)
}

/// Plans and applies a sync in one audited transaction; with `dry_run`, only plans.
pub fn sync(db: &Database, actor: &Actor, documents: &[Fetched], dry_run: bool) -> DbResult<SyncPlan> {
    if dry_run {
        return db.read(|conn| plan(conn, documents));
    }
    db.write(actor, |conn| {
        let plan = plan(conn, documents)?;
        let changes = apply_plan(conn, &plan)?;
        if changes.is_empty() { Ok(Audited::unchanged(plan)) } else { Ok(Audited::many(plan, changes)) }
    })
}

fn get(conn: &mut DbConnection, id: i64) -> DbResult<Release> {
    releases::table
        .find(id)
        .select(Release::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("release"))
}

fn by_name(conn: &mut DbConnection, product_id: i64, name: &str) -> DbResult<Release> {
    releases::table
        .filter(releases::product_id.eq(product_id).and(releases::name.eq(name)))
        .select(Release::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("release"))
}

fn set_date(
    conn: &mut DbConnection,
    release_id: i64,
    field: &str,
    value: Option<NaiveDate>,
    source: &str,
    stamp: NaiveDateTime,
) -> DbResult<()> {
    let target = releases::table.find(release_id);
    let common = (
        releases::source.eq(source),
        releases::revision.eq(releases::revision + 1),
        releases::updated_at.eq(stamp),
    );
    let updated = match field {
        "released_on" => {
            diesel::update(target).set((releases::released_on.eq(value), common)).execute(conn)?
        }
        "active_support_ends_on" => {
            diesel::update(target).set((releases::active_support_ends_on.eq(value), common)).execute(conn)?
        }
        "security_support_ends_on" => diesel::update(target)
            .set((releases::security_support_ends_on.eq(value), common))
            .execute(conn)?,
        "extended_updates_end_on" => {
            diesel::update(target).set((releases::extended_updates_end_on.eq(value), common)).execute(conn)?
        }
        other => return Err(DbError::Internal(format!("no release date field {other}"))),
    };
    if updated == 0 {
        return Err(DbError::NotFound("release"));
    }
    Ok(())
}

/// A held date: what the release says, what the document proposed, and the admin's decision.
#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = lifecycle_holds)]
pub struct HoldRow {
    pub id: i64,
    pub release_id: i64,
    pub field: String,
    pub current_value: Option<NaiveDate>,
    pub proposed_value: Option<NaiveDate>,
    pub source: String,
    // The document has always described the status as a plain string.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: HoldStatus,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub decided_at: Option<NaiveDateTime>,
}

fn get_hold(conn: &mut DbConnection, id: i64) -> DbResult<HoldRow> {
    lifecycle_holds::table
        .find(id)
        .select(HoldRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("lifecycle hold"))
}

/// Held dates, pending ones only unless `all`.
pub fn holds(conn: &mut DbConnection, all: bool) -> DbResult<Vec<HoldRow>> {
    let mut query =
        lifecycle_holds::table.select(HoldRow::as_select()).order(lifecycle_holds::id).into_boxed();
    if !all {
        query = query.filter(lifecycle_holds::status.eq(HoldStatus::Pending));
    }
    Ok(query.load(conn)?)
}

/// An admin's decision on a held date: confirming applies the proposed date (if the release still
/// has the date the hold was made against), rejecting keeps the release as it is.
pub fn decide_hold(db: &Database, actor: &Actor, id: i64, confirm: bool) -> DbResult<HoldRow> {
    db.write(actor, |conn| {
        let hold = get_hold(conn, id)?;
        if hold.status != HoldStatus::Pending {
            return Err(DbError::Conflict(format!("lifecycle hold {id} was already {}", hold.status)));
        }
        let mut release_change = None;
        let stamp = now();
        if confirm {
            let before = get(conn, hold.release_id)?;
            let current = ReleaseDates::of(&before)
                .fields()
                .into_iter()
                .find(|(field, _)| *field == hold.field)
                .map(|(_, value)| value);
            if current != Some(hold.current_value) {
                return Err(DbError::Conflict(format!(
                    "release {} has changed since the hold was made: sync again",
                    before.name
                )));
            }
            let source = format!("{} (confirmed by {})", hold.source, actor.label);
            set_date(conn, hold.release_id, &hold.field, hold.proposed_value, &source, stamp)?;
            let after = get(conn, hold.release_id)?;
            if !ReleaseDates::of(&after).in_order() {
                return Err(DbError::Conflict(
                    "the proposed date would put the release's dates out of order".into(),
                ));
            }
            release_change = Some((before, after));
        }
        let status = if confirm { HoldStatus::Confirmed } else { HoldStatus::Rejected };
        diesel::update(lifecycle_holds::table.find(id))
            .set((lifecycle_holds::status.eq(status), lifecycle_holds::decided_at.eq(stamp)))
            .execute(conn)?;
        let decided = get_hold(conn, id)?;
        // One event per decision: a confirmation is a change to the release (which the read
        // model refreshes), recording the hold it came from; a rejection changes only the hold.
        let change = match release_change {
            Some((before, after)) => {
                let mut after = serde_json::to_value(&after).map_err(|e| DbError::Internal(e.to_string()))?;
                after["confirmed_hold"] =
                    serde_json::to_value(&decided).map_err(|e| DbError::Internal(e.to_string()))?;
                let mut change = Change::new("release.confirm_hold", "release", before.id).before(&before);
                change.after = Some(after);
                change
            }
            None => Change::new("lifecycle_hold.reject", "lifecycle_hold", id).before(&hold).after(&decided),
        };
        Ok(Audited::one(decided, change))
    })
}
