//! A date typed into a page in the NHS.UK date input pattern: three boxes, Day, Month and Year,
//! instead of one box that wants `YYYY-MM-DD`, which people outside IT do not write and which
//! every form here refused with one message whatever was wrong. [`DateInput`] keeps what was
//! typed (to show it back), reads it into a date with the NHS.UK messages ("Date of purchase must
//! include a month"), and says which of the three boxes to mark, so that the error summary links
//! to the first wrong box and only the wrong ones are red. The template half is the `date_input`
//! macro in `templates/components.html`.
//!
//! Every part arrives as a string (the forms' structs rename `{id}-day` and so on onto `String`
//! fields), so the extractor never refuses a form for what was typed in a date: the page says
//! what to correct instead.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use crate::web::{FieldError, capitalised};

/// Which date a form asks for: the ids (and names) of its three boxes, and how messages call it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateField {
    /// The group's id: `purchased_on`.
    pub id: &'static str,
    /// The boxes' ids and names: `purchased_on-day`, `purchased_on-month`, `purchased_on-year`
    /// (made by [`date_field!`] at compile time, since a `FieldError` links to a `&'static str`).
    pub day: &'static str,
    pub month: &'static str,
    pub year: &'static str,
    /// The date in a sentence, lower case: "date of purchase" ("Enter the date of purchase").
    pub name: &'static str,
}

/// A [`DateField`] whose boxes are named after its id: `date_field!("purchased_on", "date of
/// purchase")` has the boxes `purchased_on-day`, `purchased_on-month` and `purchased_on-year`.
macro_rules! date_field {
    ($id:literal, $name:literal) => {
        $crate::web::date_input::DateField {
            id: $id,
            day: concat!($id, "-day"),
            month: concat!($id, "-month"),
            year: concat!($id, "-year"),
            name: $name,
        }
    };
}
pub(crate) use date_field;

/// Which boxes hold the problem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parts {
    pub day: bool,
    pub month: bool,
    pub year: bool,
}

impl Parts {
    const ALL: Parts = Parts { day: true, month: true, year: true };
    const DAY: Parts = Parts { day: true, month: false, year: false };
    const YEAR: Parts = Parts { day: false, month: false, year: true };
}

/// What is wrong with a typed date: the message and the boxes to mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub wrong: Parts,
}

/// One box, as the template draws it.
pub struct PartView<'a> {
    pub id: &'static str,
    pub label: &'static str,
    /// The NHS.UK width class: 2 characters for day and month, 4 for the year.
    pub width: u8,
    pub value: &'a str,
    pub wrong: bool,
}

/// A date as typed into the three boxes, and, once read, what is wrong with it.
pub struct DateInput {
    pub field: DateField,
    day: String,
    month: String,
    year: String,
    problem: Option<Problem>,
}

impl DateInput {
    /// What was typed, kept as it came (trimmed) to show back.
    pub fn typed(field: DateField, day: &str, month: &str, year: &str) -> DateInput {
        DateInput {
            field,
            day: day.trim().to_owned(),
            month: month.trim().to_owned(),
            year: year.trim().to_owned(),
            problem: None,
        }
    }

    /// The three boxes of a form read as a map of its fields (a form whose fields vary).
    pub fn from_form(field: DateField, form: &HashMap<String, String>) -> DateInput {
        let value = |name: &str| form.get(name).map_or("", String::as_str);
        DateInput::typed(field, value(field.day), value(field.month), value(field.year))
    }

    /// A date written year-month-day in an address (`on=2020-01-14`), split into the three boxes;
    /// what is not in that form reads as a date with parts missing, and says so.
    pub fn from_iso(field: DateField, text: &str) -> DateInput {
        let mut parts = text.trim().splitn(3, '-');
        let (year, month, day) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        DateInput::typed(field, day, month, year)
    }

    /// The boxes as typed or, when all three are empty, the date an older address wrote in one
    /// parameter (`on=2020-01-14`, [`DateInput::from_iso`]): the report's and audit log's links
    /// from before the boxes still work.
    pub fn typed_or_iso(field: DateField, day: &str, month: &str, year: &str, old: &str) -> DateInput {
        match DateInput::typed(field, day, month, year) {
            typed if typed.is_blank() => DateInput::from_iso(field, old),
            typed => typed,
        }
    }

    /// The three boxes filled in with `date`, as a person would type it: 27 3 2027.
    pub fn showing(field: DateField, date: NaiveDate) -> DateInput {
        DateInput::typed(field, &date.day().to_string(), &date.month().to_string(), &date.year().to_string())
    }

    /// The three boxes as form fields, to fill in a form's map of fields.
    pub fn fields(&self) -> [(String, String); 3] {
        [
            (self.field.day.to_owned(), self.day.clone()),
            (self.field.month.to_owned(), self.month.clone()),
            (self.field.year.to_owned(), self.year.clone()),
        ]
    }

    /// Whether nothing was typed in any box (an optional date left out).
    pub fn is_blank(&self) -> bool {
        self.day.is_empty() && self.month.is_empty() && self.year.is_empty()
    }

    /// The date typed, or what is wrong with it; nothing is recorded.
    pub fn date(&self) -> Result<NaiveDate, Problem> {
        parse(self.field.name, &self.day, &self.month, &self.year)
    }

    /// Reads the date; when it is not one, marks the wrong boxes and adds the problem to `errors`,
    /// linked to the first wrong box.
    pub fn read(&mut self, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
        match self.date() {
            Ok(date) => Some(date),
            Err(problem) => {
                self.record(problem, errors);
                None
            }
        }
    }

    /// A date that reads but breaks a rule of the form (an expiry in the past): the whole date is
    /// marked, and the summary links to its first box.
    pub fn refuse(&mut self, message: &str, errors: &mut Vec<FieldError>) {
        self.record(Problem { message: message.to_owned(), wrong: Parts::ALL }, errors);
    }

    fn record(&mut self, problem: Problem, errors: &mut Vec<FieldError>) {
        let first = match problem.wrong {
            Parts { day: true, .. } => self.field.day,
            Parts { month: true, .. } => self.field.month,
            _ => self.field.year,
        };
        errors.push(FieldError::new(first, &problem.message));
        self.problem = Some(problem);
    }

    /// The message beside the boxes, when there is a problem.
    pub fn error(&self) -> Option<&str> {
        self.problem.as_ref().map(|problem| problem.message.as_str())
    }

    /// The three boxes in order, for the template.
    pub fn parts(&self) -> [PartView<'_>; 3] {
        let wrong = self.problem.as_ref().map(|problem| problem.wrong).unwrap_or_default();
        [
            PartView { id: self.field.day, label: "Day", width: 2, value: &self.day, wrong: wrong.day },
            PartView {
                id: self.field.month,
                label: "Month",
                width: 2,
                value: &self.month,
                wrong: wrong.month,
            },
            PartView { id: self.field.year, label: "Year", width: 4, value: &self.year, wrong: wrong.year },
        ]
    }
}

/// A day or month as typed: digits, leading zeros allowed.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A month as a number (3, 03) or a name, in full or its first three letters (March, mar, Sept).
fn month(text: &str) -> Option<u32> {
    if let Some(n) = number(text) {
        return Some(n).filter(|n| (1..=12).contains(n));
    }
    const NAMES: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let typed = text.trim_end_matches('.').to_lowercase();
    let position = NAMES.iter().position(|name| {
        *name == typed
            || (typed.len() >= 3 && name.starts_with(&typed))
            || (typed == "sept" && *name == "september")
    })?;
    u32::try_from(position + 1).ok()
}

/// The parts missing, in words: "a month", "a day and year".
fn missing_words(missing: Parts) -> String {
    let named: Vec<&str> = [(missing.day, "day"), (missing.month, "month"), (missing.year, "year")]
        .into_iter()
        .filter_map(|(gone, name)| gone.then_some(name))
        .collect();
    format!("a {}", named.join(" and "))
}

/// Reads a date typed as day, month and year (each trimmed) with the NHS.UK pattern's messages.
/// `name` is the date in a sentence, lower case: "date of purchase".
pub fn parse(name: &str, day: &str, month_text: &str, year: &str) -> Result<NaiveDate, Problem> {
    let (day, month_text, year) = (day.trim(), month_text.trim(), year.trim());
    let missing = Parts { day: day.is_empty(), month: month_text.is_empty(), year: year.is_empty() };
    if missing == Parts::ALL {
        return Err(Problem { message: format!("Enter the {name}"), wrong: Parts::ALL });
    }
    if missing != Parts::default() {
        let message = format!("{} must include {}", capitalised(name), missing_words(missing));
        return Err(Problem { message, wrong: missing });
    }
    let real_date = || format!("{} must be a real date", capitalised(name));
    let day_number = number(day).filter(|d| (1..=31).contains(d));
    let month_number = month(month_text);
    // Four digits once leading zeros are gone: years 1000 to 9999, which the service can compare
    // (`crate::dates`); "27" is not taken to mean 2027.
    let digits = year.trim_start_matches('0');
    let year_is_number = !year.is_empty() && year.bytes().all(|b| b.is_ascii_digit());
    let year_number = (year_is_number && digits.len() == 4).then(|| digits.parse::<i32>().ok()).flatten();
    let (Some(d), Some(m), Some(y)) = (day_number, month_number, year_number) else {
        let wrong =
            Parts { day: day_number.is_none(), month: month_number.is_none(), year: year_number.is_none() };
        let message = if wrong == Parts::YEAR && year_is_number {
            "Year must include 4 numbers".to_owned()
        } else {
            real_date()
        };
        return Err(Problem { message, wrong });
    };
    // Each part reads, but not together: 31 2 2027, or 29 February outside a leap year.
    NaiveDate::from_ymd_opt(y, m, d)
        .filter(|date| crate::dates::comparable(*date))
        .ok_or_else(|| Problem { message: real_date(), wrong: Parts::DAY })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    fn read(day: &str, month: &str, year: &str) -> Result<NaiveDate, Problem> {
        parse("date of purchase", day, month, year)
    }

    fn problem(day: &str, month: &str, year: &str) -> (String, Parts) {
        match read(day, month, year) {
            Err(problem) => (problem.message, problem.wrong),
            Ok(date) => panic!("{day} {month} {year} read as {date}"),
        }
    }

    const NONE: Parts = Parts { day: false, month: false, year: false };

    #[test]
    fn real_dates_read_with_leading_zeros_and_spaces() {
        assert_eq!(read("27", "3", "2027"), Ok(date(2027, 3, 27)));
        assert_eq!(read("07", "03", "2027"), Ok(date(2027, 3, 7)));
        assert_eq!(read(" 7 ", " 3", "2027 "), Ok(date(2027, 3, 7)));
        assert_eq!(read("31", "12", "9999"), Ok(date(9999, 12, 31)));
        assert_eq!(read("1", "1", "1000"), Ok(date(1000, 1, 1)));
    }

    #[test]
    fn months_may_be_named() {
        assert_eq!(read("27", "March", "2027"), Ok(date(2027, 3, 27)));
        assert_eq!(read("27", "mar", "2027"), Ok(date(2027, 3, 27)));
        assert_eq!(read("27", "Sept", "2027"), Ok(date(2027, 9, 27)));
        assert_eq!(read("27", "DEC.", "2027"), Ok(date(2027, 12, 27)));
        assert_eq!(problem("27", "ma", "2027").1, Parts { month: true, ..NONE }, "too short to tell");
        assert_eq!(problem("27", "Marchy", "2027").1, Parts { month: true, ..NONE });
    }

    #[test]
    fn the_29th_of_february_is_real_only_in_a_leap_year() {
        assert_eq!(read("29", "2", "2028"), Ok(date(2028, 2, 29)));
        assert_eq!(read("29", "2", "2000"), Ok(date(2000, 2, 29)));
        let not_leap = ("Date of purchase must be a real date".to_owned(), Parts { day: true, ..NONE });
        assert_eq!(problem("29", "2", "2027"), not_leap);
        assert_eq!(problem("29", "2", "2100"), not_leap, "centuries are leap years only every 400");
        assert_eq!(problem("31", "2", "2027"), not_leap);
        assert_eq!(problem("31", "4", "2027"), not_leap);
    }

    #[test]
    fn missing_parts_are_named() {
        assert_eq!(problem("", "", ""), ("Enter the date of purchase".to_owned(), Parts::ALL));
        assert_eq!(
            problem("  ", " ", ""),
            ("Enter the date of purchase".to_owned(), Parts::ALL),
            "spaces only"
        );
        assert_eq!(
            problem("27", "", "2027"),
            ("Date of purchase must include a month".to_owned(), Parts { month: true, ..NONE })
        );
        assert_eq!(
            problem("", "3", ""),
            (
                "Date of purchase must include a day and year".to_owned(),
                Parts { day: true, year: true, ..NONE }
            )
        );
        assert_eq!(
            problem("27", "3", ""),
            ("Date of purchase must include a year".to_owned(), Parts { year: true, ..NONE })
        );
    }

    #[test]
    fn parts_that_are_not_numbers_or_out_of_range_are_marked() {
        let real = "Date of purchase must be a real date".to_owned();
        assert_eq!(problem("twenty", "3", "2027"), (real.clone(), Parts { day: true, ..NONE }));
        assert_eq!(problem("32", "3", "2027"), (real.clone(), Parts { day: true, ..NONE }));
        assert_eq!(problem("0", "3", "2027"), (real.clone(), Parts { day: true, ..NONE }));
        assert_eq!(problem("-1", "3", "2027"), (real.clone(), Parts { day: true, ..NONE }));
        assert_eq!(problem("27", "13", "2027"), (real.clone(), Parts { month: true, ..NONE }));
        assert_eq!(problem("1.5", "3", "2027"), (real.clone(), Parts { day: true, ..NONE }));
        assert_eq!(problem("27", "3", "next"), (real.clone(), Parts { year: true, ..NONE }));
        assert_eq!(
            problem("32", "13", "27"),
            (real, Parts::ALL),
            "several wrong parts: a real date, each marked"
        );
    }

    #[test]
    fn a_year_needs_four_numbers() {
        let four = "Year must include 4 numbers".to_owned();
        assert_eq!(problem("27", "3", "27"), (four.clone(), Parts { year: true, ..NONE }), "2-digit years");
        assert_eq!(problem("27", "3", "202"), (four.clone(), Parts { year: true, ..NONE }));
        assert_eq!(problem("27", "3", "20270"), (four.clone(), Parts { year: true, ..NONE }));
        assert_eq!(problem("27", "3", "0999"), (four, Parts { year: true, ..NONE }), "year 999");
        assert_eq!(read("27", "3", "02027"), Ok(date(2027, 3, 27)), "a leading zero");
    }

    const FIELD: DateField = date_field!("purchased_on", "date of purchase");

    #[test]
    fn the_summary_links_to_the_first_wrong_box_and_only_wrong_boxes_are_marked() {
        let mut errors = Vec::new();
        let mut typed = DateInput::typed(FIELD, " 27 ", "", "27");
        assert_eq!(typed.read(&mut errors), None);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "purchased_on-month");
        assert_eq!(errors[0].message, "Date of purchase must include a month");
        assert_eq!(typed.error(), Some("Date of purchase must include a month"));
        let marked: Vec<(&str, &str, bool)> =
            typed.parts().iter().map(|p| (p.id, p.value, p.wrong)).collect();
        assert_eq!(
            marked,
            [
                ("purchased_on-day", "27", false),
                ("purchased_on-month", "", true),
                ("purchased_on-year", "27", false)
            ]
        );

        let mut past = DateInput::showing(FIELD, date(2020, 1, 1));
        assert_eq!(past.read(&mut errors), Some(date(2020, 1, 1)));
        past.refuse("expires_on must be in the future", &mut errors);
        assert_eq!(errors[1].field, "purchased_on-day");
        assert!(past.parts().iter().all(|p| p.wrong));
        assert_eq!(past.fields()[0], ("purchased_on-day".to_owned(), "1".to_owned()));
        assert!(DateInput::typed(FIELD, " ", "", "").is_blank());
        assert_eq!(DateInput::from_iso(FIELD, "2020-01-14").date(), Ok(date(2020, 1, 14)));
        assert!(DateInput::from_iso(FIELD, "").is_blank());
        let written = DateInput::from_iso(FIELD, "14/01/2020");
        assert_eq!(
            written.date().map_err(|p| p.message),
            Err("Date of purchase must include a day and month".into())
        );
    }
}
