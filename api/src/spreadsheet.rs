//! Cells of CSV files that people open in spreadsheets. A cell that begins with `=`, `+`, `-`,
//! `@`, a tab or a carriage return is run as a formula by Excel, LibreOffice and Google Sheets
//! (CSV injection); text from users (an audit event's before and after states, names, references)
//! can begin with any of them. Such a cell gets a leading apostrophe, which spreadsheets show as
//! text and which OWASP recommends.

const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `text` as a spreadsheet will show it, never as a formula.
pub fn neutralised(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) { format!("'{text}").into() } else { text.into() }
}

/// A JSON value as one CSV cell: text neutralised, numbers and booleans as written, null empty.
pub fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => neutralised(text).into_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formula_starts_are_neutralised_and_other_text_is_not() {
        for dangerous in ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralised(dangerous), format!("'{dangerous}"));
        }
        for plain in ["RR8", "Leeds = good", "", "'quoted"] {
            assert_eq!(neutralised(plain), plain);
        }
    }

    #[test]
    fn numbers_stay_numbers() {
        assert_eq!(cell(&json!(-5)), "-5");
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!("=1+1")), "'=1+1");
    }
}
