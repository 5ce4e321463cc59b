//! Quoting for statements built as text (identifiers cannot be
//! parameters).

/// `name` as a quoted identifier: `` `a``b` ``.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `s` as a quoted string literal for statements that cannot take
/// parameters (trigger bodies, `SIGNAL … MESSAGE_TEXT`).
pub fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_strings_are_quoted() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(quote_ident("plain"), "`plain`");
        assert_eq!(quote_str(r"it's a \ back"), r"'it''s a \\ back'");
    }
}
