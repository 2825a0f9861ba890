//! SQL text fit for a log line. Statements carry values — an e-mail address in
//! a `WHERE`, a name in an `INSERT`, a comment someone pasted a row into — and
//! server logs must not hold personal data (see docs/erasure.md: no log line
//! contains a subject value). [`redact_literals`] keeps the shape of a
//! statement (keywords, identifiers, operators, `$n` placeholders) and replaces
//! every literal with `?`, so a log still says which statement ran.

use datafusion::sql::sqlparser::dialect::DatabricksDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// What [`redact_literals`] answers for text the tokenizer rejects (an
/// unterminated string, say): a fixed text, never a piece of the input.
pub const UNTOKENIZABLE: &str = "<statement not tokenizable>";

/// `sql` with every literal replaced by `?` and every comment dropped.
///
/// Tokenizes with the dialect statements are parsed with (Databricks), then
/// writes the tokens back: string literals of every kind (single, double and
/// triple quoted, national, hex, escaped, unicode, byte, raw, dollar-quoted)
/// and numbers (with Spark's typed forms such as `7L`, so also an unquoted
/// identifier that starts with a digit) become `?`; comments become one space;
/// keywords, identifiers, operators, placeholders (`$1`, `?`, `:name`) and
/// whitespace stay as written.
/// When the text cannot be tokenized the answer is [`UNTOKENIZABLE`].
///
/// ```
/// let logged = silt_sql::redact_literals("SELECT * FROM t WHERE email = 'alice@example.com' AND n > $1");
/// assert_eq!(logged, "SELECT * FROM t WHERE email = ? AND n > $1");
/// ```
pub fn redact_literals(sql: &str) -> String {
    let dialect = DatabricksDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return UNTOKENIZABLE.to_string();
    };
    let mut redacted = String::with_capacity(sql.len());
    for token in &tokens {
        match token {
            Token::EOF => {}
            token if matches!(token, Token::Number(..)) || is_string_literal(token) => redacted.push('?'),
            Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => {
                redacted.push(' ')
            }
            // The dialect reads identifiers that start with a digit, so
            // Spark's typed numbers (`7L`, `1.5BD`, `2Y`) come as words.
            Token::Word(word)
                if word.quote_style.is_none() && word.value.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                redacted.push('?')
            }
            Token::Word(_) | Token::Placeholder(_) | Token::Whitespace(_) => {
                redacted.push_str(&token.to_string())
            }
            // Operators and punctuation. A token that is neither a literal
            // listed above nor free of letters and digits (a custom operator,
            // a kind a later sqlparser adds) is redacted too: unknown text is
            // not logged.
            other => {
                let text = other.to_string();
                if text.chars().any(char::is_alphanumeric) {
                    redacted.push('?');
                } else {
                    redacted.push_str(&text);
                }
            }
        }
    }
    collapse_lists(&redacted)
}

/// Whether `token` is a string literal of any kind (single, double and
/// triple quoted, national, hex, escaped, unicode, byte, raw, dollar-quoted).
pub(crate) fn is_string_literal(token: &Token) -> bool {
    matches!(
        token,
        Token::SingleQuotedString(_)
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
            | Token::HexStringLiteral(_)
    )
}

/// Literals a list keeps in the log before the rest are counted.
const LIST_KEPT: usize = 3;

/// `?, ?, ?, ?, ?` → `?, ?, ?, …(+2)`: a 10,000-value `IN` list logs as a
/// few bytes, not 20 KB.
fn collapse_lists(redacted: &str) -> String {
    let bytes = redacted.as_bytes();
    let mut out = String::with_capacity(redacted.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'?' {
            // Copy up to the next '?' (a char boundary: '?' is ASCII).
            let next = redacted[i..].find('?').map_or(bytes.len(), |n| i + n);
            out.push_str(&redacted[i..next]);
            i = next;
            continue;
        }
        // A run: ? (ws* , ws* ?)*
        let mut items = 1;
        let mut end = i + 1;
        loop {
            let mut j = end;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if j >= bytes.len() || bytes[j] != b',' {
                break;
            }
            j += 1;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if j >= bytes.len() || bytes[j] != b'?' {
                break;
            }
            items += 1;
            end = j + 1;
        }
        if items > LIST_KEPT {
            out.push_str(&["?"; LIST_KEPT].join(", "));
            out.push_str(&format!(", …(+{})", items - LIST_KEPT));
        } else {
            out.push_str(&redacted[i..end]);
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_strings_and_numbers() {
        let redacted = redact_literals("SELECT * FROM t WHERE email = 'alice@example.com' AND n > 42");
        assert_eq!(redacted, "SELECT * FROM t WHERE email = ? AND n > ?");
        assert!(!redacted.contains("alice"));
        assert!(!redacted.contains("42"));
    }

    #[test]
    fn redact_keeps_placeholders_identifiers_and_operators() {
        let sql = "UPDATE `my table` SET score = score * $2 WHERE email <> $1 AND id IN (?, ?)";
        assert_eq!(redact_literals(sql), sql);
    }

    #[test]
    fn redact_every_kind_of_string_literal() {
        let sql = "SELECT \"dq-secret\", N'national-secret', X'0badc0de', E'escaped\\nsecret', \
                   $$dollar-secret$$, $tag$tagged-secret$tag$, 1.5e3, 7L, -9 FROM t";
        let redacted = redact_literals(sql);
        // Databricks has no `E'…'` strings: `E` is read as a word before a
        // string. A run of more than three `?` is collapsed (see collapse_lists).
        assert_eq!(redacted, "SELECT ?, ?, ?, E?, ?, ?, …(+2), -? FROM t");
        for secret in ["secret", "0badc0de", "1.5", "7", "9"] {
            assert!(!redacted.contains(secret), "{secret} in {redacted}");
        }
    }

    #[test]
    fn redact_collapses_long_lists() {
        let values: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        let sql = format!(
            "SELECT count(*) FROM t WHERE id IN ({}) AND x = 'a'",
            values.join(", ")
        );
        let redacted = redact_literals(&sql);
        assert_eq!(
            redacted,
            "SELECT count(*) FROM t WHERE id IN (?, ?, ?, …(+9997)) AND x = ?"
        );
        assert_eq!(redact_literals("SELECT f(1, 2, 3)"), "SELECT f(?, ?, ?)");
        assert_eq!(
            redact_literals("INSERT INTO t VALUES (1,2,3,4), (5, 'e')"),
            "INSERT INTO t VALUES (?, ?, ?, …(+1)), (?, ?)"
        );
    }

    #[test]
    fn redact_drops_comments() {
        let sql = "SELECT id -- bob@example.com\nFROM t /* ssn 123-45-6789 */ WHERE id = 1";
        let redacted = redact_literals(sql);
        assert!(!redacted.contains("bob"), "{redacted}");
        assert!(!redacted.contains("123"), "{redacted}");
        assert_eq!(redacted, "SELECT id  FROM t   WHERE id = ?");
    }

    #[test]
    fn redact_answers_a_fixed_text_when_tokenizing_fails() {
        let redacted = redact_literals("SELECT * FROM t WHERE email = 'unterminated-secret");
        assert_eq!(redacted, UNTOKENIZABLE);
        assert_eq!(redact_literals("SELECT /* never closed secret"), UNTOKENIZABLE);
    }

    #[test]
    fn redact_keeps_silt_statements_readable() {
        assert_eq!(
            redact_literals("SELECT count(*) FROM t VERSION AS OF 12; VACUUM t RETAIN 0 HOURS"),
            "SELECT count(*) FROM t VERSION AS OF ?; VACUUM t RETAIN ? HOURS"
        );
        assert_eq!(
            redact_literals("SELECT * FROM t TIMESTAMP AS OF '2026-11-25T10:00:00Z'"),
            "SELECT * FROM t TIMESTAMP AS OF ?"
        );
    }
}
