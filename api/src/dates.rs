//! Dates the service can compare. SQLite stores a date as text (`2026-12-03`) and compares it as
//! text, so a year past 9999 (`+10000-01-01`) or before year 1 sorts wrongly there and the two
//! engines answer differently (a security test filtered products `on=+10000-01-01`). Every date in
//! a request goes through these, and one outside years 1 to 9999 is refused as bad input.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer};

/// Today's date (UTC), the default for questions asked "at a date", on the API and the pages.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

pub const FIRST_YEAR: i32 = 1;
pub const LAST_YEAR: i32 = 9999;

/// Whether `date` lies in the years the service can compare.
pub fn comparable(date: NaiveDate) -> bool {
    (FIRST_YEAR..=LAST_YEAR).contains(&date.year())
}

fn checked<E: serde::de::Error>(date: NaiveDate) -> Result<NaiveDate, E> {
    if comparable(date) {
        Ok(date)
    } else {
        Err(E::custom(format!("dates must lie in the years {FIRST_YEAR} to {LAST_YEAR}")))
    }
}

/// For a `NaiveDate` field: `#[serde(deserialize_with = "crate::dates::required")]`.
pub fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    checked(NaiveDate::deserialize(deserializer)?)
}

/// For an `Option<NaiveDate>` field: `#[serde(default, deserialize_with = "crate::dates::optional")]`.
pub fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDate>, D::Error> {
    Option::<NaiveDate>::deserialize(deserializer)?.map(checked).transpose()
}

/// For an `Option<Option<NaiveDate>>` field of an update (absent, null, or a date).
pub fn double_optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<NaiveDate>>, D::Error> {
    Ok(Some(optional(deserializer)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Query {
        #[serde(default, deserialize_with = "optional")]
        on: Option<NaiveDate>,
    }

    #[test]
    fn years_past_9999_are_refused_and_others_pass() {
        let parse_query = |q: &str| serde_urlencoded::from_str::<Query>(q);
        assert!(parse_query("on=%2B10000-01-01").is_err());
        assert!(parse_query("on=9999-12-31").is_ok_and(|q| q.on.is_some()));
        assert!(parse_query("").is_ok_and(|q| q.on.is_none()));
        assert!(serde_json::from_str::<Query>(r#"{"on":"+10000-01-01"}"#).is_err());
        assert!(serde_json::from_str::<Query>(r#"{"on":"-0001-01-01"}"#).is_err());
    }
}
