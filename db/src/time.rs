//! Times are stored as UTC without an offset (the one timestamp type both engines share); they
//! are written out as RFC 3339 with `Z`, as the OpenAPI `date-time` format requires.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serializer;

/// The midnight that ends `day`: what happened on `day` happened before it. (`23:59:59` would
/// drop the times within that last second, which are stored to the microsecond.) The last day
/// chrono can represent has no next day; it ends at the end of time.
pub fn end_of(day: NaiveDate) -> NaiveDateTime {
    day.succ_opt().map_or(NaiveDateTime::MAX, |next| next.and_time(NaiveTime::MIN))
}

pub fn utc<S: Serializer>(time: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

pub fn utc_option<S: Serializer>(time: &Option<NaiveDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => utc(time, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_ends_at_the_next_midnight() {
        let day = NaiveDate::from_ymd_opt(2020, 1, 14).unwrap_or_default();
        let last_instant = day.and_hms_micro_opt(23, 59, 59, 999_999).unwrap_or_default();
        let next_day = NaiveDate::from_ymd_opt(2020, 1, 15).unwrap_or_default();
        assert!(last_instant < end_of(day), "the day's last microsecond is on the day");
        assert_eq!(end_of(day), next_day.and_time(NaiveTime::MIN));
        assert_eq!(end_of(NaiveDate::MAX), NaiveDateTime::MAX);
    }
}
