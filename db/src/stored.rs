//! Lists kept in one TEXT column, read by diesel as the list itself: organisation kinds written
//! comma-separated (`trust,icb`) and lists kept as JSON (an agreement's notices). A row struct
//! names them with `#[diesel(deserialize_as = ...)]`. A stored value that does not read back is
//! a deserialisation error (and so a `DbError`), never an empty list or a shorter one: corrupt
//! data must show, not quietly change who is eligible.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::sql_types::Text;
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

/// A list kept as JSON text.
#[derive(Clone, Debug, PartialEq, FromSqlRow)]
pub struct JsonList<T>(pub Vec<T>);

impl<T, DB> FromSql<Text, DB> for JsonList<T>
where
    T: DeserializeOwned,
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let text = String::from_sql(bytes)?;
        let list = serde_json::from_str(&text).map_err(|e| format!("stored JSON list {text:?}: {e}"))?;
        Ok(JsonList(list))
    }
}

impl<T> From<JsonList<T>> for Vec<T> {
    fn from(list: JsonList<T>) -> Vec<T> {
        list.0
    }
}
