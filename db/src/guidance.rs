//! The "buy against" guidance that coverage gives for a category: each standard's published
//! version, its requirements, and the products assessed as conforming to it.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use crate::connection::DbConnection;
use crate::error::DbResult;
use crate::schema::{assessments, products, requirements, standard_versions, standards};

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequirementSummary {
    /// Stable within the standard, e.g. `SEC-01`.
    pub code: String,
    pub text: String,
    /// `MUST`, `SHOULD` or `MAY` (RFC 2119).
    // Stored from a requirement's `Level`, so its schema is the same.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::standards::Level))]
    pub level: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConformingProduct {
    pub product_id: i64,
    pub name: String,
    pub edition: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StandardGuidance {
    pub standard_id: i64,
    pub title: String,
    /// ODS code of the exemplar (or national body) that publishes it.
    pub publisher_code: String,
    pub category: String,
    /// The published version to buy against.
    pub version: i32,
    pub version_id: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub published_at: NaiveDateTime,
    pub summary: Option<String>,
    pub requirements: Vec<RequirementSummary>,
    pub conforming_products: Vec<ConformingProduct>,
}

/// standard id, title, publisher, category, version id, number, published at, summary.
type PublishedVersionRow = (i64, String, String, String, i64, i32, NaiveDateTime, Option<String>);

/// The published versions of the standards for `category`, as of `on`, newest first.
pub fn published_for_category(
    conn: &mut DbConnection,
    category: &str,
    on: NaiveDate,
) -> DbResult<Vec<StandardGuidance>> {
    published(conn, Some(category), on)
}

/// The published versions of every standard (or of one category's), as of `on`, newest first.
pub fn published(
    conn: &mut DbConnection,
    category: Option<&str>,
    on: NaiveDate,
) -> DbResult<Vec<StandardGuidance>> {
    let end_of_day = crate::time::end_of(on);
    let mut query = standards::table.inner_join(standard_versions::table).into_boxed();
    if let Some(category) = category {
        query = query.filter(standards::category.eq(category.to_owned()));
    }
    let versions: Vec<PublishedVersionRow> = query
        .filter(standard_versions::status.eq("published"))
        .filter(standard_versions::published_at.lt(end_of_day))
        .order(standard_versions::published_at.desc())
        .select((
            standards::id,
            standards::title,
            standards::publisher_code,
            standards::category,
            standard_versions::id,
            standard_versions::number,
            // Never null: the filter above leaves out versions with no publication time.
            standard_versions::published_at.assume_not_null(),
            standard_versions::summary,
        ))
        .load(conn)?;
    let mut guidance = Vec::with_capacity(versions.len());
    for (standard_id, title, publisher_code, category, version_id, number, published_at, summary) in versions
    {
        let requirements = requirements::table
            .filter(requirements::version_id.eq(version_id))
            .order((requirements::position, requirements::code))
            .select((requirements::code, requirements::text, requirements::level))
            .load::<(String, String, String)>(conn)?
            .into_iter()
            .map(|(code, text, level)| RequirementSummary { code, text, level })
            .collect();
        let conforming_products = assessments::table
            .inner_join(products::table)
            .filter(assessments::version_id.eq(version_id))
            .filter(assessments::conforms.eq(true))
            .order(products::id)
            .select((products::id, products::name, products::edition, products::version))
            .load::<(i64, String, String, String)>(conn)?
            .into_iter()
            .map(|(product_id, name, edition, version)| ConformingProduct {
                product_id,
                name,
                edition,
                version,
            })
            .collect();
        guidance.push(StandardGuidance {
            standard_id,
            title,
            publisher_code,
            category,
            version: number,
            version_id,
            published_at,
            summary,
            requirements,
            conforming_products,
        });
    }
    Ok(guidance)
}
