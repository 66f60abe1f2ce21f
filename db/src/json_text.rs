//! JSON kept in a TEXT column (a list of kinds, an event's payload, an assessment's outcomes),
//! read by diesel straight into the field's type: `#[diesel(deserialize_as = JsonText<T>)]` on a
//! `Queryable` field. Text that is not the JSON the field expects is a deserialisation error
//! (a `DbError::Internal`), never an empty default that would hide the corruption.

use std::convert::Infallible;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, Queryable};
use diesel::sql_types::{Nullable, Text};
use serde::de::DeserializeOwned;

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
