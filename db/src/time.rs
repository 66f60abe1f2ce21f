//! Times are stored as UTC without an offset (the one timestamp type both engines share); they
//! are written out as RFC 3339 with `Z`, as the OpenAPI `date-time` format requires.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serializer;

/// The midnight that ends `day`: what happened on `day` happened before it. (`23:59:59` would
/// drop the times within that last second, which are stored to the microsecond.) Days from the
/// year 9999 on end at the last microsecond of 9999, the last time stored: SQLite compares
/// timestamps as text, and a five-digit year sorts before every four-digit one.
pub fn end_of(day: NaiveDate) -> NaiveDateTime {
    let last_stored = NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|last| last.and_hms_micro_opt(23, 59, 59, 999_999))
        .unwrap_or(NaiveDateTime::MAX);
    match day.succ_opt() {
        Some(next) if next.year() <= 9999 => next.and_time(NaiveTime::MIN),
        _ => last_stored,
    }
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
        let last_stored =
            NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default().and_hms_micro_opt(23, 59, 59, 999_999);
        assert_eq!(Some(end_of(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default())), last_stored);
        assert_eq!(Some(end_of(NaiveDate::MAX)), last_stored);
    }
}
