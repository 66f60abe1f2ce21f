//! Organisations, keyed by ODS code. Codes are never reused; a closed organisation stays, marked
//! closed, pointing to its successor.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::page::{Page, PageRequest, Precondition};
use crate::schema::organisations;
use crate::vocabulary::{OrganisationKind, is_ods_code};

diesel::define_sql_function!(fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text);

#[derive(Queryable, Selectable)]
#[diesel(table_name = organisations)]
struct OrganisationRow {
    code: String,
    name: String,
    kind: String,
    region: Option<String>,
    exemplar: bool,
    closed_on: Option<NaiveDate>,
    successor_code: Option<String>,
    source: Option<String>,
    revision: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organisation {
    /// ODS code.
    #[cfg_attr(feature = "openapi", schema(example = "RR8"))]
    pub code: String,
    pub name: String,
    pub kind: OrganisationKind,
    /// NHS England region.
    pub region: Option<String>,
    /// A Global Digital Exemplar, which may publish "buy against" standards.
    pub exemplar: bool,
    /// True once the organisation has closed (for example merged into its successor).
    pub closed: bool,
    pub closed_on: Option<NaiveDate>,
    /// The ODS code of the organisation that succeeded it.
    pub successor_code: Option<String>,
    /// Where the facts came from.
    pub source: Option<String>,
    #[serde(skip)]
    pub revision: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc")]
    pub updated_at: NaiveDateTime,
}

impl From<OrganisationRow> for Organisation {
    fn from(row: OrganisationRow) -> Organisation {
        Organisation {
            closed: row.closed_on.is_some(),
            code: row.code,
            name: row.name,
            kind: OrganisationKind::parse(&row.kind).unwrap_or(OrganisationKind::Other),
            region: row.region,
            exemplar: row.exemplar,
            closed_on: row.closed_on,
            successor_code: row.successor_code,
            source: row.source,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Default)]
pub struct OrganisationFilter {
    pub kind: Option<OrganisationKind>,
    pub region: Option<String>,
    pub exemplar: Option<bool>,
    /// Case-insensitive substring of the name (or the code).
    pub q: Option<String>,
    pub include_closed: bool,
}

/// `%text%` for LIKE, with the wildcard characters of the text itself escaped.
pub(crate) fn like_pattern(text: &str) -> String {
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

pub fn list(
    conn: &mut DbConnection,
    filter: &OrganisationFilter,
    page: &PageRequest,
) -> DbResult<Page<Organisation>> {
    let mut query =
        organisations::table.select(OrganisationRow::as_select()).order(organisations::code).into_boxed();
    if let Some(kind) = filter.kind {
        query = query.filter(organisations::kind.eq(kind.as_str()));
    }
    if let Some(region) = &filter.region {
        query = query.filter(organisations::region.eq(region.clone()));
    }
    if let Some(exemplar) = filter.exemplar {
        query = query.filter(organisations::exemplar.eq(exemplar));
    }
    if let Some(q) = &filter.q {
        let pattern = like_pattern(q);
        query = query.filter(
            lower(organisations::name)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(organisations::code).like(pattern).escape('\\')),
        );
    }
    if !filter.include_closed {
        query = query.filter(organisations::closed_on.is_null());
    }
    if let Some(after) = &page.cursor {
        query = query.filter(organisations::code.gt(after.clone()));
    }
    let limit = page.limit();
    let rows = query.limit(limit + 1).load(conn)?;
    Ok(Page::from_rows(rows.into_iter().map(Organisation::from).collect(), limit, |o| o.code.clone()))
}

pub fn get(conn: &mut DbConnection, code: &str) -> DbResult<Organisation> {
    organisations::table
        .find(code.to_uppercase())
        .select(OrganisationRow::as_select())
        .first(conn)
        .optional()?
        .map(Organisation::from)
        .ok_or(DbError::NotFound("organisation"))
}

#[derive(Debug, Deserialize)]
pub struct NewOrganisation {
    pub code: String,
    pub name: String,
    pub kind: OrganisationKind,
    pub region: Option<String>,
    pub exemplar: bool,
    pub source: Option<String>,
}

pub fn create(db: &Database, actor: &Actor, new: NewOrganisation) -> DbResult<Organisation> {
    let code = new.code.trim().to_uppercase();
    if !is_ods_code(&code) {
        return Err(DbError::Invalid("code must be an ODS code: 3 to 10 letters and digits".into()));
    }
    if new.name.trim().is_empty() {
        return Err(DbError::Invalid("name must not be empty".into()));
    }
    db.write(actor, |conn| {
        let exists: i64 =
            organisations::table.filter(organisations::code.eq(&code)).count().get_result(conn)?;
        if exists > 0 {
            return Err(DbError::Conflict(format!(
                "organisation {code} already exists (ODS codes are never reused)"
            )));
        }
        let stamp = now();
        diesel::insert_into(organisations::table)
            .values((
                organisations::code.eq(&code),
                organisations::name.eq(new.name.trim()),
                organisations::kind.eq(new.kind.as_str()),
                organisations::region.eq(&new.region),
                organisations::exemplar.eq(new.exemplar),
                organisations::source.eq(&new.source),
                organisations::created_at.eq(stamp),
                organisations::updated_at.eq(stamp),
            ))
            .execute(conn)?;
        let organisation = get(conn, &code)?;
        let change = Change::new("organisation.create", "organisation", &code)
            .organisation(Some(&code))
            .after(&organisation);
        Ok(Audited::one(organisation, change))
    })
}

#[derive(Debug, Default)]
pub struct OrganisationChanges {
    pub name: Option<String>,
    pub kind: Option<OrganisationKind>,
    pub region: Option<Option<String>>,
    pub exemplar: Option<bool>,
    pub source: Option<Option<String>>,
}

pub fn update(
    db: &Database,
    actor: &Actor,
    code: &str,
    changes: OrganisationChanges,
    precondition: Precondition,
) -> DbResult<Organisation> {
    db.write(actor, |conn| {
        let before = get(conn, code)?;
        precondition.check(before.revision)?;
        let name = changes.name.clone().unwrap_or_else(|| before.name.clone());
        if name.trim().is_empty() {
            return Err(DbError::Invalid("name must not be empty".into()));
        }
        diesel::update(organisations::table.find(&before.code))
            .set((
                organisations::name.eq(name.trim()),
                organisations::kind.eq(changes.kind.unwrap_or(before.kind).as_str()),
                organisations::region.eq(changes.region.clone().unwrap_or_else(|| before.region.clone())),
                organisations::exemplar.eq(changes.exemplar.unwrap_or(before.exemplar)),
                organisations::source.eq(changes.source.clone().unwrap_or_else(|| before.source.clone())),
                organisations::revision.eq(organisations::revision + 1),
                organisations::updated_at.eq(now()),
            ))
            .execute(conn)?;
        let after = get(conn, &before.code)?;
        let change = Change::new("organisation.update", "organisation", &after.code)
            .organisation(Some(&after.code))
            .before(&before)
            .after(&after);
        Ok(Audited::one(after, change))
    })
}
