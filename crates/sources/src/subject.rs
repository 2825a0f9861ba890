//! NATS subject patterns: dot-separated tokens, `*` matching one token and
//! a final `>` matching one or more.

/// Why `pattern` is not a valid subject pattern, if it is not.
pub fn pattern_problem(pattern: &str) -> Option<&'static str> {
    if pattern.is_empty() {
        return Some("is empty");
    }
    if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("holds white space");
    }
    let tokens: Vec<&str> = pattern.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return Some("has an empty token (two dots, or a leading or trailing dot)");
        }
        if *token == ">" && index + 1 != tokens.len() {
            return Some("has '>' before its last token");
        }
        if token.len() > 1 && (token.contains('*') || token.contains('>')) {
            return Some("has '*' or '>' inside a token (wildcards stand alone)");
        }
    }
    None
}

/// Whether `subject` (a literal subject) matches `pattern`.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (literal, Some(actual)) if literal == actual => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_nats_defines() {
        assert!(matches("orders.*", "orders.eu"));
        assert!(!matches("orders.*", "orders.eu.paid"));
        assert!(!matches("orders.*", "orders"));
        assert!(matches("orders.>", "orders.eu.paid"));
        assert!(!matches("orders.>", "orders"));
        assert!(matches("orders.eu", "orders.eu"));
        assert!(!matches("orders.eu", "orders.us"));
        assert!(matches("*.eu", "orders.eu"));
        assert!(matches(">", "a.b.c"));
    }

    #[test]
    fn bad_patterns_are_named() {
        for bad in ["", "a..b", ".a", "a.", "a.>.b", "a.b*", "a b"] {
            assert!(pattern_problem(bad).is_some(), "{bad:?}");
        }
        for good in ["a", "a.*", "a.>", "*.b.>", ">"] {
            assert_eq!(pattern_problem(good), None, "{good:?}");
        }
    }
}
