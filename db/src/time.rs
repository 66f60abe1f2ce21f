//! Times are stored as UTC without an offset (the one timestamp type both engines share); they
//! are written out as RFC 3339 with `Z`, as the OpenAPI `date-time` format requires.

use chrono::NaiveDateTime;
use serde::Serializer;

pub fn utc<S: Serializer>(time: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

pub fn utc_option<S: Serializer>(time: &Option<NaiveDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => utc(time, serializer),
        None => serializer.serialize_none(),
    }
}
