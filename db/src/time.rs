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
    let mut buffer = [0; RFC3339_MICROS_LEN];
    match rfc3339_micros(time, &mut buffer) {
        Some(text) => serializer.serialize_str(text),
        None => {
            serializer.serialize_str(&time.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        }
    }
}

/// The length of `2026-12-07T21:56:23.123456Z`.
const RFC3339_MICROS_LEN: usize = 27;

/// `time` as chrono's `to_rfc3339_opts(SecondsFormat::Micros, true)` writes it, written into
/// `buffer` rather than a new `String`: every row of every list carries timestamps, and perf put
/// the product search's allocations at a fifth of its time. `None` for what chrono writes
/// differently (a year outside 0 to 9999, which the database never holds; a leap second).
fn rfc3339_micros<'b>(time: &NaiveDateTime, buffer: &'b mut [u8; RFC3339_MICROS_LEN]) -> Option<&'b str> {
    use chrono::Timelike;
    let year = u32::try_from(time.year()).ok().filter(|year| *year <= 9999)?;
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut at = 0;
    let mut put = |value: u32, digits: u32, then: Option<u8>| {
        for place in (0..digits).rev() {
            // A digit: always an ASCII byte.
            buffer[at] = b'0' + (value / 10u32.pow(place) % 10) as u8;
            at += 1;
        }
        if let Some(separator) = then {
            buffer[at] = separator;
            at += 1;
        }
    };
    put(year, 4, Some(b'-'));
    put(time.month(), 2, Some(b'-'));
    put(time.day(), 2, Some(b'T'));
    put(time.hour(), 2, Some(b':'));
    put(time.minute(), 2, Some(b':'));
    put(time.second(), 2, Some(b'.'));
    put(nanos / 1_000, 6, Some(b'Z'));
    std::str::from_utf8(buffer).ok()
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
    fn timestamps_are_written_as_chrono_writes_them() {
        use chrono::{DateTime, Duration};
        let chrono_text =
            |time: NaiveDateTime| time.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let ours = |time: NaiveDateTime| {
            let mut buffer = [0; RFC3339_MICROS_LEN];
            rfc3339_micros(&time, &mut buffer).map(str::to_owned)
        };
        let start = NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default().and_time(NaiveTime::MIN);
        let mut time = start;
        // Every field's edges and a spread of values between, 0001 to 9999, to the microsecond.
        for step in 0..200_000_i64 {
            assert_eq!(ours(time).as_deref(), Some(chrono_text(time).as_str()), "{time:?}");
            time +=
                Duration::seconds(1_577_923 + step % 997) + Duration::microseconds(step * 7_919 % 1_000_000);
            if time.year() > 9999 {
                time = start + Duration::microseconds(step);
            }
        }
        let edges = [
            "0000-01-01T00:00:00.000000Z",
            "1999-12-31T23:59:59.999999Z",
            "2026-02-28T09:05:07.000001Z",
            "9999-12-31T23:59:59.999999Z",
        ];
        for text in edges {
            let time = DateTime::parse_from_rfc3339(text).map(|t| t.naive_utc()).unwrap_or_default();
            assert_eq!(ours(time).as_deref(), Some(text));
        }
        let beyond = NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap_or_default().and_time(NaiveTime::MIN);
        assert_eq!(ours(beyond), None, "left to chrono");
        let leap =
            NaiveDate::from_ymd_opt(2016, 12, 31).and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_500_000));
        assert_eq!(leap.and_then(ours), None, "a leap second is left to chrono");
    }

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
