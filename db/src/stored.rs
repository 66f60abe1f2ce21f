//! Values kept in one TEXT column, read by diesel as the value itself: organisation kinds written
//! comma-separated (`trust,icb`), and JSON (an agreement's notices, an event's payload, an
//! assessment's outcomes) through `JsonText<T>`. A row struct names them with
//! `#[diesel(deserialize_as = ...)]`. A stored value that does not read back is
//! a deserialisation error (and so a `DbError`), never an empty list or a shorter one: corrupt
//! data must show, not quietly change who is eligible.

use diesel::backend::Backend;
use std::convert::Infallible;

use diesel::deserialize::{self, FromSql, FromSqlRow, Queryable};
use diesel::sql_types::{Nullable, Text};
use serde::de::DeserializeOwned;

use crate::vocabulary::OrganisationKind;

/// Organisation kinds as stored: comma-separated vocabulary words (`vocabulary::join_kinds`).
#[derive(Clone, Debug, PartialEq, FromSqlRow)]
pub struct KindList(pub Vec<OrganisationKind>);

impl<DB> FromSql<Text, DB> for KindList
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let text = String::from_sql(bytes)?;
        text.split(',')
            .map(str::trim)
            .filter(|kind| !kind.is_empty())
            .map(|kind| {
                OrganisationKind::parse(kind).ok_or_else(|| {
                    format!("stored organisation kinds {text:?}: {kind:?} is not a kind").into()
                })
            })
            .collect::<deserialize::Result<Vec<_>>>()
            .map(KindList)
    }
}

impl From<KindList> for Vec<OrganisationKind> {
    fn from(kinds: KindList) -> Vec<OrganisationKind> {
        kinds.0
    }
}

impl KindList {
    pub fn contains(&self, kind: &OrganisationKind) -> bool {
        self.0.contains(kind)
    }
}

/// A value read from its stored JSON text.
pub struct JsonText<T>(T);

impl<T> JsonText<T> {
    /// What `deserialize_as` calls: the orphan rule forbids `From<JsonText<T>> for T`, and the
    /// JSON was already checked when the row was read.
    pub fn try_into(self) -> Result<T, Infallible> {
        Ok(self.0)
    }
}

impl<T, DB> Queryable<Text, DB> for JsonText<T>
where
    T: DeserializeOwned,
    DB: Backend,
    String: FromSql<Text, DB>,
{
    type Row = String;

    fn build(text: String) -> deserialize::Result<Self> {
        Ok(JsonText(serde_json::from_str(&text)?))
    }
}

/// A nullable column: NULL is `None`; text that is not the JSON expected is still an error.
impl<T, DB> Queryable<Nullable<Text>, DB> for JsonText<Option<T>>
where
    T: DeserializeOwned,
    DB: Backend,
    String: FromSql<Text, DB>,
{
    type Row = Option<String>;

    fn build(text: Option<String>) -> deserialize::Result<Self> {
        Ok(JsonText(text.map(|text| serde_json::from_str(&text)).transpose()?))
    }
}
