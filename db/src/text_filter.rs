//! What the lists' text filters are made of, shared by every list that filters or orders by text
//! (organisations, products, agreements, standards, users): SQL's `lower()`, which both engines
//! have (SQLite's changes ASCII letters only, so comparisons and orders lower both sides in the
//! database rather than in Rust), and a `LIKE` pattern for a part of a text.

diesel::define_sql_function!(fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// `%text%` for LIKE (with `ESCAPE '\'`), lower case, the wildcard characters of the text itself
/// escaped.
pub(crate) fn like_pattern(text: &str) -> String {
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn a_pattern_escapes_the_wildcards_it_is_given() {
        assert_eq!(like_pattern("Win_10 100%"), "%win\\_10 100\\%%");
        assert_eq!(like_pattern("a\\b"), "%a\\\\b%");
    }
}
