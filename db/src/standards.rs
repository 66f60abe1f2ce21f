//! "Buy against" standards: drafted, versioned and published by exemplars (or the national
//! team), assessed against products. A version moves draft -> published -> superseded, or to
//! withdrawn; a published version never changes; at most one version of a standard is published
//! and at most one is a draft, both held by unique indexes as well as by this code.

use chrono::{Months, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::{Deserialize, Serialize};

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::organisations;
use crate::page::{Page, PageRequest, Precondition};
use crate::products::{self, Product};
use crate::schema::{assessments, requirements, standard_versions, standards};
use crate::stored::JsonText;
use crate::text_filter::{like_pattern, lower};
use crate::vocabulary::is_slug;

/// A check the service itself makes against a product record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Unknown fields inside a criterion are ignored rather than refused: the document cannot say
// `additionalProperties: false` for the variants of a tagged enum.
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Criterion {
    /// Support (extended, else mainstream) lasts at least this many years after the purchase
    /// date; a product with no announced end passes.
    MinExtendedSupportYears { years: u32 },
    /// The product is in this category.
    Category {
        #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9-]+$"))]
        category: String,
    },
    /// The supplier has passed DTAC for the product.
    DtacPassed,
    /// The supplier has supplied an MDS2 form for the product.
    Mds2Supplied,
}

impl Criterion {
    /// Whether `product` meets the criterion for a purchase on `on`.
    pub fn evaluate(&self, product: &Product, on: NaiveDate) -> bool {
        match self {
            Criterion::MinExtendedSupportYears { years } => match product.support_ends_on() {
                None => true,
                Some(end) => {
                    on.checked_add_months(Months::new(years * 12)).is_some_and(|needed| end >= needed)
                }
            },
            Criterion::Category { category } => &product.category == category,
            Criterion::DtacPassed => product.dtac_passed,
            Criterion::Mds2Supplied => product.mds2_supplied,
        }
    }
}

crate::vocabulary::text_enum!(Level { Must = "MUST", Should = "SHOULD", May = "MAY" });

#[derive(Clone, Debug, Serialize, PartialEq, Queryable, Selectable)]
#[diesel(table_name = requirements)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Requirement {
    pub id: i64,
    /// Stable within the standard across versions, e.g. `SEC-01`.
    pub code: String,
    pub text: String,
    pub level: Level,
    /// A machine-checkable criterion the service evaluates against the product, if any.
    #[diesel(deserialize_as = JsonText<Option<Criterion>>)]
    pub criterion: Option<Criterion>,
}

/// A requirement as written by an author.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RequirementInput {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 32, pattern = "[^\\s\\u0085]"))]
    pub code: String,
    #[cfg_attr(feature = "openapi", schema(pattern = "[^\\s\\u0085]"))]
    pub text: String,
    pub level: Level,
    pub criterion: Option<Criterion>,
}

crate::vocabulary::text_enum!(VersionStatus {
    Draft = "draft",
    Published = "published",
    Superseded = "superseded",
    Withdrawn = "withdrawn",
});

/// A version's own columns; `StandardVersion` adds its requirements, read from their table.
#[derive(Queryable, Selectable)]
#[diesel(table_name = standard_versions)]
struct VersionRow {
    id: i64,
    standard_id: i64,
    number: i32,
    status: VersionStatus,
    summary: Option<String>,
    published_at: Option<NaiveDateTime>,
    superseded_at: Option<NaiveDateTime>,
    withdrawn_at: Option<NaiveDateTime>,
    revision: i64,
    created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Serialize, PartialEq, Queryable, Selectable)]
#[diesel(table_name = standard_versions)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionSummary {
    pub number: i32,
    pub status: VersionStatus,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub published_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub superseded_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub withdrawn_at: Option<NaiveDateTime>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StandardVersion {
    pub id: i64,
    pub standard_id: i64,
    pub number: i32,
    pub status: VersionStatus,
    pub summary: Option<String>,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub published_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub superseded_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub withdrawn_at: Option<NaiveDateTime>,
    pub requirements: Vec<Requirement>,
    #[serde(skip)]
    pub revision: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Standard {
    pub id: i64,
    /// ODS code of the exemplar (or national body) that publishes it.
    pub publisher_code: String,
    pub category: String,
    pub title: String,
    pub source: Option<String>,
    /// The number of the published version, if one is.
    pub published_version: Option<i32>,
    pub versions: Vec<VersionSummary>,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
}

fn load_requirements(conn: &mut DbConnection, version_id: i64) -> DbResult<Vec<Requirement>> {
    Ok(requirements::table
        .filter(requirements::version_id.eq(version_id))
        .order((requirements::position, requirements::id))
        .select(Requirement::as_select())
        .load(conn)?)
}

fn to_version(conn: &mut DbConnection, row: VersionRow) -> DbResult<StandardVersion> {
    Ok(StandardVersion {
        requirements: load_requirements(conn, row.id)?,
        id: row.id,
        standard_id: row.standard_id,
        number: row.number,
        status: row.status,
        summary: row.summary,
        published_at: row.published_at,
        superseded_at: row.superseded_at,
        withdrawn_at: row.withdrawn_at,
        revision: row.revision,
        created_at: row.created_at,
    })
}

pub fn get_version(conn: &mut DbConnection, standard_id: i64, number: i32) -> DbResult<StandardVersion> {
    let row = standard_versions::table
        .filter(standard_versions::standard_id.eq(standard_id))
        .filter(standard_versions::number.eq(number))
        .select(VersionRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("standard version"))?;
    to_version(conn, row)
}

pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<Standard> {
    let (id, publisher_code, category, title, source, created_at): (
        i64,
        String,
        String,
        String,
        Option<String>,
        NaiveDateTime,
    ) = standards::table
        .find(id)
        .select((
            standards::id,
            standards::publisher_code,
            standards::category,
            standards::title,
            standards::source,
            standards::created_at,
        ))
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("standard"))?;
    let versions: Vec<VersionSummary> = standard_versions::table
        .filter(standard_versions::standard_id.eq(id))
        .order(standard_versions::number)
        .select(VersionSummary::as_select())
        .load(conn)?;
    let published_version = versions.iter().find(|v| v.status == VersionStatus::Published).map(|v| v.number);
    Ok(Standard { id, publisher_code, category, title, source, published_version, versions, created_at })
}

#[derive(Debug, Default)]
pub struct StandardFilter {
    pub category: Option<String>,
    pub publisher_code: Option<String>,
    /// Standards with at least one version in this status.
    pub status: Option<VersionStatus>,
    /// Case-insensitive text in the title.
    pub title: Option<String>,
    pub order: StandardOrder,
}

/// The order of a list of standards. Each pages by its own key with the id after it, so a page
/// never skips or repeats one, whatever the order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StandardOrder {
    /// By id, the order they were made in (the API's order): the cursor is the last id.
    #[default]
    Id,
    /// By title without regard to case, then id: the cursor is `id:title`.
    Title,
    /// Those last published most recently first (never-published ones last), then id, latest
    /// first: the cursor is `id:moment`.
    LastPublished,
}

impl StandardOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            StandardOrder::Id => "id",
            StandardOrder::Title => "title",
            StandardOrder::LastPublished => "published",
        }
    }

    pub fn parse(text: &str) -> Option<StandardOrder> {
        [StandardOrder::Id, StandardOrder::Title, StandardOrder::LastPublished]
            .into_iter()
            .find(|order| order.as_str() == text)
    }
}

/// When a standard was last published (any of its versions): the "last published" order's key,
/// 1 January 1970 for one never published, so that the key is never NULL and those come last.
fn last_published() -> diesel::expression::SqlLiteral<diesel::sql_types::Timestamp> {
    diesel::dsl::sql::<diesel::sql_types::Timestamp>(
        "COALESCE((SELECT MAX(v.published_at) FROM standard_versions v WHERE v.standard_id = standards.id), \
         '1970-01-01 00:00:00')",
    )
}

/// The form of a moment in a cursor.
const CURSOR_MOMENT: &str = "%Y-%m-%dT%H:%M:%S%.f";

pub fn list(
    conn: &mut DbConnection,
    filter: &StandardFilter,
    page: &PageRequest,
) -> DbResult<Page<Standard>> {
    let mut query = standards::table.select((standards::id, standards::title, last_published())).into_boxed();
    if let Some(category) = &filter.category {
        query = query.filter(standards::category.eq(category.clone()));
    }
    if let Some(publisher) = &filter.publisher_code {
        query = query.filter(standards::publisher_code.eq(publisher.to_uppercase()));
    }
    if let Some(status) = filter.status {
        query = query.filter(diesel::dsl::exists(
            standard_versions::table
                .filter(standard_versions::standard_id.eq(standards::id))
                .filter(standard_versions::status.eq(status)),
        ));
    }
    if let Some(title) = &filter.title {
        query = query.filter(lower(standards::title).like(like_pattern(title)).escape('\\'));
    }
    let split = |cursor: &str| -> DbResult<(i64, String)> {
        let (id, key) = cursor.split_once(':').ok_or(DbError::InvalidCursor)?;
        Ok((id.parse().map_err(|_| DbError::InvalidCursor)?, key.to_owned()))
    };
    query = match filter.order {
        StandardOrder::Id => {
            if let Some(after) = page.after_id()? {
                query = query.filter(standards::id.gt(after));
            }
            query.order(standards::id)
        }
        StandardOrder::Title => {
            if let Some(cursor) = &page.cursor {
                let (id, title) = split(cursor)?;
                // The database lowers both sides, as it orders (see organisations::list).
                query = query.filter(
                    lower(standards::title)
                        .gt(lower(title.clone()))
                        .or(lower(standards::title).eq(lower(title)).and(standards::id.gt(id))),
                );
            }
            query.order((lower(standards::title), standards::id))
        }
        StandardOrder::LastPublished => {
            if let Some(cursor) = &page.cursor {
                let (id, moment) = split(cursor)?;
                let moment = NaiveDateTime::parse_from_str(&moment, CURSOR_MOMENT)
                    .map_err(|_| DbError::InvalidCursor)?;
                query = query.filter(
                    last_published().lt(moment).or(last_published().eq(moment).and(standards::id.lt(id))),
                );
            }
            query.order((last_published().desc(), standards::id.desc()))
        }
    };
    let limit = page.limit();
    let rows: Vec<(i64, String, NaiveDateTime)> = query.limit(limit + 1).load(conn)?;
    let order = filter.order;
    let keys = Page::from_rows(rows, limit, |(id, title, moment)| match order {
        StandardOrder::Id => id.to_string(),
        StandardOrder::Title => format!("{id}:{title}"),
        StandardOrder::LastPublished => format!("{id}:{}", moment.format(CURSOR_MOMENT)),
    });
    let items = keys.items.into_iter().map(|(id, _, _)| get(conn, id)).collect::<DbResult<Vec<_>>>()?;
    Ok(Page { items, next_cursor: keys.next_cursor })
}

fn validate_requirements(requirements: &[RequirementInput]) -> DbResult<()> {
    let mut codes = std::collections::HashSet::new();
    for requirement in requirements {
        let code = requirement.code.trim();
        // Counted in characters, as the document's maxLength is (JSON Schema counts characters;
        // bytes refused a 32-character code of accented letters that the document allows).
        if code.is_empty() || requirement.code.chars().count() > 32 {
            return Err(DbError::Invalid("a requirement code must have 1 to 32 characters".into()));
        }
        if requirement.text.trim().is_empty() {
            return Err(DbError::Invalid(format!("requirement {code} needs text")));
        }
        if !codes.insert(code.to_owned()) {
            return Err(DbError::Invalid(format!("requirement code {code} appears twice")));
        }
        if let Some(Criterion::Category { category }) = &requirement.criterion
            && !is_slug(category)
        {
            return Err(DbError::Invalid(format!("requirement {code}: category must be a slug")));
        }
    }
    Ok(())
}

fn insert_requirements(conn: &mut DbConnection, version_id: i64, list: &[RequirementInput]) -> DbResult<()> {
    for (position, requirement) in list.iter().enumerate() {
        diesel::insert_into(requirements::table)
            .values((
                requirements::version_id.eq(version_id),
                requirements::code.eq(requirement.code.trim()),
                requirements::text.eq(requirement.text.trim()),
                requirements::level.eq(requirement.level),
                requirements::criterion.eq(requirement
                    .criterion
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|error| DbError::unwritable_json("a requirement's criterion", &error))?),
                requirements::position.eq(position as i32),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub struct NewStandard {
    pub publisher_code: String,
    pub category: String,
    pub title: String,
    pub source: Option<String>,
    pub summary: Option<String>,
    pub requirements: Vec<RequirementInput>,
}

/// Creates a standard with a draft version 1. The publisher must be an open exemplar
/// organisation or a national body.
pub fn create(db: &Database, actor: &Actor, new: NewStandard) -> DbResult<Standard> {
    db.write(actor, |conn| {
        let standard = create_in(conn, &new)?;
        let change = Change::new("standard.create", "standard", standard.id)
            .organisation(Some(&standard.publisher_code))
            .after(&standard);
        Ok(Audited::one(standard, change))
    })
}

/// [`create`] inside the caller's transaction, with the same checks: what seeding calls too, so
/// a shipped standard passes the rules an exemplar's does.
pub(crate) fn create_in(conn: &mut DbConnection, new: &NewStandard) -> DbResult<Standard> {
    if !is_slug(&new.category) {
        return Err(DbError::Invalid(
            "category must be a slug: lower-case letters, digits and hyphens".into(),
        ));
    }
    if new.title.trim().is_empty() {
        return Err(DbError::Invalid("title must not be empty".into()));
    }
    validate_requirements(&new.requirements)?;
    // The publisher is named in the body: one that does not exist is bad input (422), not the
    // missing resource of the path (404), as for a succession's successor.
    let publisher = organisations::get(conn, &new.publisher_code).map_err(|error| match error {
        DbError::NotFound(_) => {
            DbError::Invalid(format!("the publisher {} does not exist", new.publisher_code))
        }
        other => other,
    })?;
    let may_publish =
        publisher.exemplar || publisher.kind == crate::vocabulary::OrganisationKind::NationalBody;
    if !may_publish || publisher.closed {
        return Err(DbError::Invalid(format!("{} cannot publish standards", publisher.code)));
    }
    let stamp = now();
    let id: i64 = diesel::insert_into(standards::table)
        .values((
            standards::publisher_code.eq(&publisher.code),
            standards::category.eq(&new.category),
            standards::title.eq(new.title.trim()),
            standards::source.eq(&new.source),
            standards::created_at.eq(stamp),
            standards::updated_at.eq(stamp),
        ))
        .returning(standards::id)
        .get_result(conn)?;
    let version_id: i64 = diesel::insert_into(standard_versions::table)
        .values((
            standard_versions::standard_id.eq(id),
            standard_versions::number.eq(1),
            standard_versions::status.eq(VersionStatus::Draft),
            standard_versions::summary.eq(&new.summary),
            standard_versions::created_at.eq(stamp),
            standard_versions::updated_at.eq(stamp),
        ))
        .returning(standard_versions::id)
        .get_result(conn)?;
    insert_requirements(conn, version_id, &new.requirements)?;
    get(conn, id)
}

/// The organisation that publishes a standard (for authorisation).
/// The titles of the standards with these ids, in one query (an id that names none is left out):
/// for pages that name the standards several records were bought against.
pub fn titles(conn: &mut DbConnection, ids: &[i64]) -> DbResult<std::collections::BTreeMap<i64, String>> {
    let rows: Vec<(i64, String)> = standards::table
        .filter(standards::id.eq_any(ids))
        .select((standards::id, standards::title))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

pub fn publisher_of(conn: &mut DbConnection, standard_id: i64) -> DbResult<String> {
    standards::table
        .find(standard_id)
        .select(standards::publisher_code)
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("standard"))
}

fn version_change(action: &str, version: &StandardVersion, publisher: &str) -> Change {
    Change::new(action, "standard_version", version.id).organisation(Some(publisher))
}

/// Starts a new draft copied from the latest version. Only one draft at a time.
pub fn new_draft(db: &Database, actor: &Actor, standard_id: i64) -> DbResult<StandardVersion> {
    db.write(actor, |conn| {
        let publisher = publisher_of(conn, standard_id)?;
        let version = new_draft_in(conn, standard_id)?;
        let change = version_change("standard_version.create", &version, &publisher).after(&version);
        Ok(Audited::one(version, change))
    })
}

/// [`new_draft`] inside the caller's transaction (seeding writes a standard's history this way).
pub(crate) fn new_draft_in(conn: &mut DbConnection, standard_id: i64) -> DbResult<StandardVersion> {
    let latest = standard_versions::table
        .filter(standard_versions::standard_id.eq(standard_id))
        .order(standard_versions::number.desc())
        .select(VersionRow::as_select())
        .first(conn)?;
    if latest.status == VersionStatus::Draft {
        return Err(DbError::Conflict(format!("version {} is already a draft: edit it", latest.number)));
    }
    let copied: Vec<RequirementInput> = load_requirements(conn, latest.id)?
        .into_iter()
        .map(|r| RequirementInput { code: r.code, text: r.text, level: r.level, criterion: r.criterion })
        .collect();
    let stamp = now();
    let inserted = diesel::insert_into(standard_versions::table)
        .values((
            standard_versions::standard_id.eq(standard_id),
            standard_versions::number.eq(latest.number + 1),
            standard_versions::status.eq(VersionStatus::Draft),
            standard_versions::summary.eq(&latest.summary),
            standard_versions::created_at.eq(stamp),
            standard_versions::updated_at.eq(stamp),
        ))
        .returning(standard_versions::id)
        .get_result::<i64>(conn);
    let version_id = match inserted {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            return Err(DbError::Conflict("another draft was started at the same time".into()));
        }
        other => other?,
    };
    insert_requirements(conn, version_id, &copied)?;
    get_version(conn, standard_id, latest.number + 1)
}

pub struct DraftChanges {
    pub summary: Option<Option<String>>,
    /// Replaces every requirement of the draft.
    pub requirements: Option<Vec<RequirementInput>>,
}

/// Edits a draft. Any other version is immutable: 409.
pub fn edit_draft(
    db: &Database,
    actor: &Actor,
    standard_id: i64,
    number: i32,
    changes: DraftChanges,
    precondition: Precondition,
) -> DbResult<StandardVersion> {
    // Bad requirements are refused before anything is looked up, as they always were.
    if let Some(list) = &changes.requirements {
        validate_requirements(list)?;
    }
    db.write(actor, |conn| {
        let publisher = publisher_of(conn, standard_id)?;
        let before = get_version(conn, standard_id, number)?;
        precondition.check(before.revision)?;
        let after = edit_draft_in(conn, &before, &changes)?;
        let change =
            version_change("standard_version.update", &after, &publisher).before(&before).after(&after);
        Ok(Audited::one(after, change))
    })
}

/// [`edit_draft`] of the version `before` inside the caller's transaction.
pub(crate) fn edit_draft_in(
    conn: &mut DbConnection,
    before: &StandardVersion,
    changes: &DraftChanges,
) -> DbResult<StandardVersion> {
    if let Some(list) = &changes.requirements {
        validate_requirements(list)?;
    }
    if before.status != VersionStatus::Draft {
        return Err(DbError::Conflict(format!(
            "version {} is {}: only a draft can change",
            before.number,
            before.status.as_str()
        )));
    }
    if let Some(list) = &changes.requirements {
        diesel::delete(requirements::table.filter(requirements::version_id.eq(before.id))).execute(conn)?;
        insert_requirements(conn, before.id, list)?;
    }
    diesel::update(standard_versions::table.find(before.id))
        .set((
            standard_versions::summary.eq(changes.summary.clone().unwrap_or_else(|| before.summary.clone())),
            standard_versions::revision.eq(standard_versions::revision + 1),
            standard_versions::updated_at.eq(now()),
        ))
        .execute(conn)?;
    get_version(conn, before.standard_id, before.number)
}

/// Publishes a draft; the version published until now is superseded in the same transaction.
pub fn publish(db: &Database, actor: &Actor, standard_id: i64, number: i32) -> DbResult<StandardVersion> {
    db.write(actor, |conn| {
        let publisher = publisher_of(conn, standard_id)?;
        let (draft, after) = publish_in(conn, standard_id, number, now())?;
        let change =
            version_change("standard_version.publish", &after, &publisher).before(&draft).after(&after);
        Ok(Audited::one(after, change))
    })
}

/// [`publish`] inside the caller's transaction, as of `stamp` (seeding publishes a shipped
/// version on the day its source says): the draft as it was, and as published.
pub(crate) fn publish_in(
    conn: &mut DbConnection,
    standard_id: i64,
    number: i32,
    stamp: NaiveDateTime,
) -> DbResult<(StandardVersion, StandardVersion)> {
    let draft = get_version(conn, standard_id, number)?;
    if draft.status != VersionStatus::Draft {
        return Err(DbError::Conflict(format!(
            "version {number} is {}: only a draft can be published",
            draft.status.as_str()
        )));
    }
    if draft.requirements.is_empty() {
        return Err(DbError::Invalid("a version needs at least one requirement to be published".into()));
    }
    diesel::update(
        standard_versions::table
            .filter(standard_versions::standard_id.eq(standard_id))
            .filter(standard_versions::status.eq(VersionStatus::Published)),
    )
    .set((
        standard_versions::status.eq(VersionStatus::Superseded),
        standard_versions::superseded_at.eq(stamp),
        standard_versions::revision.eq(standard_versions::revision + 1),
        standard_versions::updated_at.eq(stamp),
    ))
    .execute(conn)?;
    // Conditional on still being a draft: of two concurrent publishes, one finds nothing to do.
    let published = diesel::update(
        standard_versions::table
            .filter(standard_versions::id.eq(draft.id))
            .filter(standard_versions::status.eq(VersionStatus::Draft)),
    )
    .set((
        standard_versions::status.eq(VersionStatus::Published),
        standard_versions::published_at.eq(stamp),
        standard_versions::revision.eq(standard_versions::revision + 1),
        standard_versions::updated_at.eq(stamp),
    ))
    .execute(conn);
    match published {
        Ok(0) => {
            return Err(DbError::Conflict(format!("version {number} was published by someone else")));
        }
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            return Err(DbError::Conflict("another version was published at the same time".into()));
        }
        other => {
            other?;
        }
    }
    let after = get_version(conn, standard_id, number)?;
    Ok((draft, after))
}

/// Withdraws a draft or the published version (no version is then published).
pub fn withdraw(db: &Database, actor: &Actor, standard_id: i64, number: i32) -> DbResult<StandardVersion> {
    db.write(actor, |conn| {
        let publisher = publisher_of(conn, standard_id)?;
        let (before, after) = withdraw_in(conn, standard_id, number, now())?;
        let change =
            version_change("standard_version.withdraw", &after, &publisher).before(&before).after(&after);
        Ok(Audited::one(after, change))
    })
}

/// [`withdraw`] inside the caller's transaction, as of `stamp`: the version before and after.
pub(crate) fn withdraw_in(
    conn: &mut DbConnection,
    standard_id: i64,
    number: i32,
    stamp: NaiveDateTime,
) -> DbResult<(StandardVersion, StandardVersion)> {
    let before = get_version(conn, standard_id, number)?;
    if !matches!(before.status, VersionStatus::Draft | VersionStatus::Published) {
        return Err(DbError::Conflict(format!(
            "version {number} is {}: it cannot be withdrawn",
            before.status.as_str()
        )));
    }
    diesel::update(standard_versions::table.find(before.id))
        .set((
            standard_versions::status.eq(VersionStatus::Withdrawn),
            standard_versions::withdrawn_at.eq(stamp),
            standard_versions::revision.eq(standard_versions::revision + 1),
            standard_versions::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    let after = get_version(conn, standard_id, number)?;
    Ok((before, after))
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outcome {
    /// The requirement's code.
    pub requirement: String,
    pub met: bool,
    /// For a machine-checkable requirement: what the service found (it overrides the assessor).
    #[serde(default)]
    pub evaluated: Option<bool>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assessment {
    pub id: i64,
    pub standard_id: i64,
    pub version: i32,
    pub product_id: i64,
    pub product: String,
    /// Every MUST requirement is met.
    pub conforms: bool,
    pub outcomes: Vec<Outcome>,
    pub evidence: Vec<String>,
    pub assessed_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
}

/// Judges outcomes against a version: every requirement needs an outcome; machine-checkable ones
/// are evaluated by the service. Returns the outcomes as recorded and whether all MUSTs are met.
pub fn judge(
    version: &StandardVersion,
    product: Option<&Product>,
    on: NaiveDate,
    given: &[Outcome],
    every_level: bool,
) -> DbResult<(Vec<Outcome>, bool)> {
    let mut recorded = Vec::new();
    let mut conforms = true;
    if let Some(unknown) =
        given.iter().find(|o| !version.requirements.iter().any(|r| r.code == o.requirement))
    {
        return Err(DbError::Invalid(format!(
            "{} is not a requirement of version {}",
            unknown.requirement, version.number
        )));
    }
    for requirement in &version.requirements {
        let outcome = given.iter().find(|o| o.requirement == requirement.code);
        let needed = every_level || requirement.level == Level::Must;
        let Some(outcome) = outcome else {
            if needed {
                return Err(DbError::Invalid(format!("requirement {} needs an outcome", requirement.code)));
            }
            continue;
        };
        let evaluated = match (&requirement.criterion, product) {
            (Some(criterion), Some(product)) => Some(criterion.evaluate(product, on)),
            _ => None,
        };
        let met = outcome.met && evaluated.unwrap_or(true);
        if requirement.level == Level::Must && !met {
            conforms = false;
        }
        recorded.push(Outcome {
            requirement: requirement.code.clone(),
            met,
            evaluated,
            note: outcome.note.clone(),
        });
    }
    Ok((recorded, conforms))
}

pub struct NewAssessment {
    pub product_id: i64,
    pub outcomes: Vec<Outcome>,
    pub evidence: Vec<String>,
}

/// Assesses a product against a published version (one assessment per product and version).
pub fn assess(
    db: &Database,
    actor: &Actor,
    standard_id: i64,
    number: i32,
    new: NewAssessment,
    today: NaiveDate,
) -> DbResult<Assessment> {
    db.write(actor, |conn| {
        let publisher = publisher_of(conn, standard_id)?;
        let version = get_version(conn, standard_id, number)?;
        if version.status != VersionStatus::Published {
            return Err(DbError::Conflict(format!(
                "version {number} is {}: assess against the published version",
                version.status.as_str()
            )));
        }
        let product = products::get(conn, new.product_id, today)
            .map_err(|_| DbError::Invalid(format!("product {} does not exist", new.product_id)))?;
        let (outcomes, conforms) = judge(&version, Some(&product), today, &new.outcomes, true)?;
        let outcomes_json = serde_json::to_string(&outcomes)
            .map_err(|error| DbError::unwritable_json("an assessment's outcomes", &error))?;
        let evidence_json = serde_json::to_string(&new.evidence)
            .map_err(|error| DbError::unwritable_json("an assessment's evidence", &error))?;
        let inserted = diesel::insert_into(assessments::table)
            .values((
                assessments::version_id.eq(version.id),
                assessments::product_id.eq(product.id),
                assessments::conforms.eq(conforms),
                assessments::outcomes.eq(outcomes_json),
                assessments::evidence.eq(evidence_json),
                assessments::assessed_by.eq(actor.user_id),
                assessments::created_at.eq(now()),
            ))
            .returning(assessments::id)
            .get_result::<i64>(conn);
        let id = match inserted {
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(DbError::Conflict(format!(
                    "{} has already been assessed against version {number}",
                    product.label()
                )));
            }
            other => other?,
        };
        let assessment = Assessment {
            id,
            standard_id,
            version: number,
            product_id: product.id,
            product: product.label(),
            conforms,
            outcomes,
            evidence: new.evidence.clone(),
            assessed_by: actor.user_id,
            created_at: now(),
        };
        let change = Change::new("assessment.create", "assessment", id)
            .organisation(Some(&publisher))
            .after(&assessment);
        Ok(Audited::one(assessment, change))
    })
}

/// Assessments of a version; only conforming ones unless `include_nonconforming`.
pub fn assessments_of(
    conn: &mut DbConnection,
    standard_id: i64,
    number: i32,
    include_nonconforming: bool,
) -> DbResult<Vec<Assessment>> {
    let version = get_version(conn, standard_id, number)?;
    let mut query = assessments::table
        .inner_join(crate::schema::products::table)
        .filter(assessments::version_id.eq(version.id))
        .order(assessments::id)
        .select((
            assessments::id,
            assessments::product_id,
            (
                crate::schema::products::name,
                crate::schema::products::edition,
                crate::schema::products::version,
            ),
            assessments::conforms,
            assessments::outcomes,
            assessments::evidence,
            assessments::assessed_by,
            assessments::created_at,
        ))
        .into_boxed();
    if !include_nonconforming {
        query = query.filter(assessments::conforms.eq(true));
    }
    type Row = (i64, i64, (String, String, String), bool, String, String, Option<i64>, NaiveDateTime);
    let rows: Vec<Row> = query.load(conn)?;
    rows.into_iter()
        .map(
            |(
                id,
                product_id,
                (name, edition, version_label),
                conforms,
                outcomes,
                evidence,
                assessed_by,
                created_at,
            )| {
                let record = || format!("assessment {id}");
                Ok(Assessment {
                    id,
                    standard_id,
                    version: number,
                    product_id,
                    product: products::label(&name, &edition, &version_label),
                    conforms,
                    outcomes: serde_json::from_str(&outcomes)
                        .map_err(|error| DbError::corrupt_json(record(), "outcomes", &error))?,
                    evidence: serde_json::from_str(&evidence)
                        .map_err(|error| DbError::corrupt_json(record(), "evidence", &error))?,
                    assessed_by,
                    created_at,
                })
            },
        )
        .collect()
}

/// The version of a standard that was published on `on`, if any.
pub fn published_on(
    conn: &mut DbConnection,
    standard_id: i64,
    on: NaiveDate,
) -> DbResult<Option<StandardVersion>> {
    let end_of_day = crate::time::end_of(on);
    let row = standard_versions::table
        .filter(standard_versions::standard_id.eq(standard_id))
        .filter(standard_versions::status.eq_any([VersionStatus::Published, VersionStatus::Superseded]))
        .filter(standard_versions::published_at.lt(end_of_day))
        .filter(
            standard_versions::superseded_at.is_null().or(standard_versions::superseded_at.ge(end_of_day)),
        )
        .order(standard_versions::number.desc())
        .select(VersionRow::as_select())
        .first(conn)
        .optional()?;
    row.map(|row| to_version(conn, row)).transpose()
}
