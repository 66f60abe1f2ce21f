//! Organisations, keyed by ODS code. Codes are never reused; a closed organisation stays, marked
//! closed, pointing to its successor.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::page::{Page, PageRequest, Precondition};
use crate::schema::organisations;
use crate::text_filter::{like_pattern, lower};
use crate::vocabulary::{OrganisationKind, is_ods_code};

#[derive(Clone, Debug, Serialize, PartialEq, Queryable, Selectable)]
#[diesel(table_name = organisations)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organisation {
    /// ODS code.
    #[cfg_attr(feature = "openapi", schema(example = "RR8"))]
    pub code: String,
    pub name: String,
    pub kind: OrganisationKind,
    /// NHS England region.
    pub region: Option<String>,
    /// The region's ODS national grouping code (for example `Y56`, London).
    #[cfg_attr(feature = "openapi", schema(example = "Y63"))]
    pub region_code: Option<String>,
    /// The ODS code of the commissioning ICB or sub-ICB location (ODS "high level health geography").
    #[cfg_attr(feature = "openapi", schema(example = "QWO"))]
    pub parent_code: Option<String>,
    pub postcode: Option<String>,
    pub opened_on: Option<NaiveDate>,
    /// A Global Digital Exemplar, which may publish "buy against" standards.
    pub exemplar: bool,
    /// True once the organisation has closed (for example merged into its successor).
    #[diesel(select_expression = organisations::closed_on.is_not_null())]
    #[diesel(select_expression_type = diesel::dsl::IsNotNull<organisations::closed_on>)]
    pub closed: bool,
    pub closed_on: Option<NaiveDate>,
    /// The ODS code of the organisation that succeeded it.
    pub successor_code: Option<String>,
    /// Where the facts came from.
    pub source: Option<String>,
    /// The ODS file that owns this record (`etr`: NHS trusts), or null when it is kept by hand.
    /// ODS owns the name, region, parent, postcode and dates of such a record: they change
    /// by importing a newer file, never by hand.
    pub ods_file: Option<String>,
    #[serde(skip)]
    pub revision: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc")]
    pub updated_at: NaiveDateTime,
}

impl Organisation {
    /// Whether ODS owns this record's name and region, which then change only by importing a
    /// newer file ([`update`] refuses a hand edit of them).
    pub fn owned_by_ods(&self) -> bool {
        self.ods_file.is_some()
    }
}

/// Every region an organisation is in, by name, once each: what a list can be filtered by.
pub fn regions(conn: &mut DbConnection) -> DbResult<Vec<String>> {
    Ok(organisations::table
        .filter(organisations::region.is_not_null())
        .select(organisations::region.assume_not_null())
        .distinct()
        .order(organisations::region.assume_not_null())
        .load(conn)?)
}

/// Every organisation, ordered by code (the ODS import compares a whole file with them).
pub(crate) fn all(conn: &mut DbConnection) -> DbResult<Vec<Organisation>> {
    Ok(organisations::table.select(Organisation::as_select()).order(organisations::code).load(conn)?)
}

/// The organisations of `codes` that exist, by code (one query for a page of them).
pub(crate) fn by_codes(conn: &mut DbConnection, codes: &[String]) -> DbResult<Vec<Organisation>> {
    Ok(organisations::table
        .filter(organisations::code.eq_any(codes))
        .select(Organisation::as_select())
        .order(organisations::code)
        .load(conn)?)
}

#[derive(Debug, Default)]
pub struct OrganisationFilter {
    pub kind: Option<OrganisationKind>,
    /// The region's name or its ODS code.
    pub region: Option<String>,
    /// The commissioning ICB or sub-ICB location's ODS code.
    pub parent: Option<String>,
    pub exemplar: Option<bool>,
    /// Case-insensitive substring of the name (or the code).
    pub q: Option<String>,
    pub include_closed: bool,
    pub order: OrganisationOrder,
}

/// The order of a list of organisations. Each pages by its own key with the code after it, so a
/// page never skips or repeats one, whatever the order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OrganisationOrder {
    /// By ODS code (the API's order): the cursor is the last code.
    #[default]
    Code,
    /// By name, without regard to case, then code: the cursor is the last code and name, as
    /// `CODE:name` (a code never holds `:`).
    Name,
}

impl OrganisationOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            OrganisationOrder::Code => "code",
            OrganisationOrder::Name => "name",
        }
    }

    pub fn parse(text: &str) -> Option<OrganisationOrder> {
        [OrganisationOrder::Code, OrganisationOrder::Name].into_iter().find(|order| order.as_str() == text)
    }

    /// The cursor naming `organisation` as the last of a page.
    fn cursor(self, organisation: &Organisation) -> String {
        match self {
            OrganisationOrder::Code => organisation.code.clone(),
            OrganisationOrder::Name => format!("{}:{}", organisation.code, organisation.name),
        }
    }
}

pub fn list(
    conn: &mut DbConnection,
    filter: &OrganisationFilter,
    page: &PageRequest,
) -> DbResult<Page<Organisation>> {
    let mut query = organisations::table.select(Organisation::as_select()).into_boxed();
    if let Some(kind) = filter.kind {
        query = query.filter(organisations::kind.eq(kind));
    }
    if let Some(region) = &filter.region {
        query = query.filter(
            organisations::region.eq(region.clone()).or(organisations::region_code.eq(region.to_uppercase())),
        );
    }
    if let Some(parent) = &filter.parent {
        query = query.filter(organisations::parent_code.eq(parent.to_uppercase()));
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
    query = match filter.order {
        OrganisationOrder::Code => {
            if let Some(after) = &page.cursor {
                query = query.filter(organisations::code.gt(after.clone()));
            }
            query.order(organisations::code)
        }
        OrganisationOrder::Name => {
            if let Some(after) = &page.cursor {
                let (code, name) = after.split_once(':').ok_or(DbError::InvalidCursor)?;
                // The database lowers both sides, so that the comparison is the one it orders by
                // (SQLite's lower() changes ASCII letters only; Rust's would change more).
                query = query.filter(
                    lower(organisations::name).gt(lower(name.to_owned())).or(lower(organisations::name)
                        .eq(lower(name.to_owned()))
                        .and(organisations::code.gt(code.to_owned()))),
                );
            }
            query.order((lower(organisations::name), organisations::code))
        }
    };
    let limit = page.limit();
    let rows = query.limit(limit + 1).load(conn)?;
    Ok(Page::from_rows(rows, limit, |o| filter.order.cursor(o)))
}

pub fn get(conn: &mut DbConnection, code: &str) -> DbResult<Organisation> {
    organisations::table
        .find(code.to_uppercase())
        .select(Organisation::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("organisation"))
}

/// The names of the organisations with these codes, in one query (a code that names none is left
/// out): for pages that list records of several organisations by name.
pub fn names(conn: &mut DbConnection, codes: &[String]) -> DbResult<BTreeMap<String, String>> {
    let codes: Vec<String> = codes.iter().map(|code| code.to_uppercase()).collect();
    let rows: Vec<(String, String)> = organisations::table
        .filter(organisations::code.eq_any(&codes))
        .select((organisations::code, organisations::name))
        .load(conn)?;
    Ok(rows.into_iter().collect())
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

/// A rule an organisation's fields break, naming the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrganisationProblem {
    NotAnOdsCode,
    NoName,
}

impl OrganisationProblem {
    /// The refusal, in the API's words (which name its fields).
    pub fn detail(self) -> &'static str {
        match self {
            OrganisationProblem::NotAnOdsCode => "code must be an ODS code: 3 to 10 letters and digits",
            OrganisationProblem::NoName => "name must not be empty",
        }
    }
}

/// The rule of a name, new or changed.
pub fn name_problem(name: &str) -> Option<OrganisationProblem> {
    name.trim().is_empty().then_some(OrganisationProblem::NoName)
}

/// Every rule `new` breaks, in the fields' order: what [`create`] refuses with (the first), and what
/// the new-organisation page lists field by field. Whether the code is taken is checked when it is
/// written.
pub fn problems(new: &NewOrganisation) -> Vec<OrganisationProblem> {
    let code = (!is_ods_code(&new.code.trim().to_uppercase())).then_some(OrganisationProblem::NotAnOdsCode);
    code.into_iter().chain(name_problem(&new.name)).collect()
}

pub fn create(db: &Database, actor: &Actor, new: NewOrganisation) -> DbResult<Organisation> {
    db.write(actor, |conn| {
        let organisation = create_in(conn, &new)?;
        let change = Change::new("organisation.create", "organisation", &organisation.code)
            .organisation(Some(&organisation.code))
            .after(&organisation);
        Ok(Audited::one(organisation, change))
    })
}

/// [`create`] inside the caller's transaction, with the same checks: what seeding calls too, so
/// a shipped organisation passes the rules an admin's does.
pub(crate) fn create_in(conn: &mut DbConnection, new: &NewOrganisation) -> DbResult<Organisation> {
    let code = new.code.trim().to_uppercase();
    if let Some(problem) = problems(new).first() {
        return Err(DbError::Invalid(problem.detail().into()));
    }
    let exists: i64 = organisations::table.filter(organisations::code.eq(&code)).count().get_result(conn)?;
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
            organisations::kind.eq(new.kind),
            organisations::region.eq(&new.region),
            organisations::exemplar.eq(new.exemplar),
            organisations::source.eq(&new.source),
            organisations::created_at.eq(stamp),
            organisations::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    get(conn, &code)
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
        refuse_ods_owned(&before, &changes)?;
        let name = changes.name.clone().unwrap_or_else(|| before.name.clone());
        if let Some(problem) = name_problem(&name) {
            return Err(DbError::Invalid(problem.detail().into()));
        }
        diesel::update(organisations::table.find(&before.code))
            .set((
                organisations::name.eq(name.trim()),
                organisations::kind.eq(changes.kind.unwrap_or(before.kind)),
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

/// A hand edit may not change a field that ODS owns on an organisation imported from ODS (the
/// next import would silently undo it): it is refused, naming the field and the file.
fn refuse_ods_owned(before: &Organisation, changes: &OrganisationChanges) -> DbResult<()> {
    let Some(file) = &before.ods_file else {
        return Ok(());
    };
    let owned = [
        ("name", changes.name.as_ref().is_some_and(|name| name.trim() != before.name)),
        ("region", changes.region.as_ref().is_some_and(|region| *region != before.region)),
    ];
    match owned.iter().find(|(_, changed)| *changed) {
        Some((field, _)) => Err(DbError::Conflict(format!(
            "the {field} of {} is owned by the Organisation Data Service (the record comes from the ODS \
             {file} file): correct it in ODS and import the newer file (kind, exemplar and source are the \
             catalogue's own, and are edited here)",
            before.code
        ))),
        None => Ok(()),
    }
}
