//! Fuzzes the SQL entry points the server runs on text from the network
//! before any planning: the access check (`required_access`, which parses),
//! the statement split the CLI sends scripts with (`split_statements`), log
//! redaction (`redact_literals`) and column types (`parse_data_type`, for
//! `POST /v1/tables`).
//!
//! Besides "no panic, no overflow", it checks three properties:
//! - a script that parses splits into statements that each parse, and the
//!   most any of them needs is what the whole script needs (the CLI sends a
//!   script statement by statement);
//! - redacted text holds no literal: tokenized again, it has no string or
//!   number token (a literal in a log line may be personal data);
//! - redaction is idempotent.
#![no_main]

use datafusion::sql::sqlparser::dialect::DatabricksDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use libfuzzer_sys::fuzz_target;
use silt_sql::{UNTOKENIZABLE, redact_literals, required_access, split_statements};

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };

    let whole = required_access(sql);
    let split = split_statements(sql);
    if let (Ok(needed), Ok(statements)) = (&whole, &split) {
        let mut most = None;
        for statement in statements {
            let access = required_access(statement).unwrap_or_else(|e| {
                panic!("{sql:?} parses, but its statement {statement:?} from split_statements does not: {e}")
            });
            most = most.max(Some(access));
        }
        assert_eq!(
            most,
            Some(*needed),
            "{sql:?} needs {needed:?}, its split statements {statements:?} need {most:?}"
        );
    }

    let redacted = redact_literals(sql);
    if redacted != UNTOKENIZABLE {
        if let Ok(tokens) = Tokenizer::new(&DatabricksDialect {}, &redacted).tokenize() {
            for token in &tokens {
                assert!(
                    !is_literal(token),
                    "redact_literals({sql:?}) = {redacted:?} still holds the literal {token:?}"
                );
            }
        }
        assert_eq!(
            redact_literals(&redacted),
            redacted,
            "redact_literals is not idempotent on {sql:?}"
        );
    }

    let _ = silt_sql::parse_data_type(sql);
});

/// Tokens that carry a value written in the text.
fn is_literal(token: &Token) -> bool {
    match token {
        // A character the tokenizer does not know (a control character, say)
        // is kept by redaction unless it is a letter or digit: it carries no
        // value.
        Token::Char(c) => c.is_alphanumeric(),
        Token::Number(..)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::QuoteDelimitedStringLiteral(_)
        | Token::NationalQuoteDelimitedStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_) => true,
        Token::Word(word) => {
            word.quote_style.is_none() && word.value.starts_with(|c: char| c.is_ascii_digit())
        }
        Token::Whitespace(w) => !matches!(
            w,
            datafusion::sql::sqlparser::tokenizer::Whitespace::Space
                | datafusion::sql::sqlparser::tokenizer::Whitespace::Newline
                | datafusion::sql::sqlparser::tokenizer::Whitespace::Tab
        ),
        _ => false,
    }
}
