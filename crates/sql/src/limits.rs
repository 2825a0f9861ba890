//! Bounds on a statement's text, checked before anything recursive runs.
//!
//! sqlparser reads `1 + 1 + … + 1` in a loop, but the tree it builds is as
//! deep as the chain is long, and everything after it — dropping the tree,
//! visiting it, DataFusion's planner, optimizer and physical planner —
//! recurses once per level. A 60 KB statement made a 30,000-level tree that
//! overflowed a worker's stack and aborted the server. [`check_text`] bounds
//! the length and estimates the depth from the tokens alone (no tree is built),
//! and statements run on threads with [`QUERY_STACK_BYTES`] of stack, which
//! the depth limit leaves ample room on (see the tests in
//! `tests/slt/limits.slt` and the server's hardening tests).

use datafusion::sql::sqlparser::dialect::DatabricksDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Result, SqlError};

/// Stack of every thread that parses, plans or runs a statement. Only the
/// pages a statement touches are committed; the rest is address space.
pub const QUERY_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Limits on the text of one request's SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementLimits {
    /// Longest SQL text accepted, in bytes.
    pub max_statement_bytes: usize,
    /// Deepest expression accepted, as estimated by [`check_text`]: the
    /// operators chained without a comma between them, plus the brackets
    /// around them. DuckDB's `max_expression_depth` defaults to 1,000 too.
    pub max_expression_depth: usize,
}

impl Default for StatementLimits {
    fn default() -> Self {
        Self {
            max_statement_bytes: 1024 * 1024,
            max_expression_depth: 1000,
        }
    }
}

/// Refuses `sql` when it is longer or (by its tokens) deeper than `limits`
/// allow. Runs in time and stack independent of the depth.
///
/// The estimate is an upper bound of the parse tree's depth: each bracket
/// opens a level, and at each level every operator (`+`, `AND`, `NOT`, `IS`,
/// `CASE`, `UNION`, `::`, …) since the last comma may nest one deeper. A list
/// (`IN (1, 2, …)`, `VALUES (…), (…)`, select items) is wide, not deep, and
/// costs nothing per element.
pub fn check_text(sql: &str, limits: &StatementLimits) -> Result<()> {
    if sql.len() > limits.max_statement_bytes {
        return Err(SqlError::Invalid(format!(
            "statement is {} bytes long; the limit is {} bytes: send smaller statements or \
             load large value lists as a table",
            sql.len(),
            limits.max_statement_bytes
        )));
    }
    let dialect = DatabricksDialect {};
    // Text that does not tokenize is refused by the parser with its own
    // message; the tokenizer itself is a loop, not a recursion.
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return Ok(());
    };
    // operators[i]: operators seen since the last comma at bracket level i.
    let mut operators: Vec<usize> = vec![0];
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for token in &tokens {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                operators.push(0);
                depth += 1;
            }
            Token::RParen | Token::RBracket | Token::RBrace if operators.len() > 1 => {
                let inner = operators.pop().unwrap_or(0);
                depth = depth.saturating_sub(inner + 1);
            }
            Token::Comma | Token::SemiColon => {
                if let Some(level) = operators.last_mut() {
                    depth = depth.saturating_sub(*level);
                    *level = 0;
                }
            }
            token if nests(token) => {
                if let Some(level) = operators.last_mut() {
                    *level += 1;
                    depth += 1;
                }
            }
            _ => {}
        }
        deepest = deepest.max(depth);
        if deepest > limits.max_expression_depth {
            return Err(SqlError::Invalid(format!(
                "statement is nested too deeply (more than {} levels of operators and brackets): \
                 split long chains of AND/OR/+ or UNION, or use IN (…) for lists of values",
                limits.max_expression_depth
            )));
        }
    }
    Ok(())
}

/// Whether a token may make the tree one level deeper than its neighbours.
fn nests(token: &Token) -> bool {
    match token {
        Token::Word(word) if word.quote_style.is_none() => matches!(
            word.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::XOR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::RLIKE
                | Keyword::REGEXP
                | Keyword::SIMILAR
                | Keyword::BETWEEN
                | Keyword::IN
                | Keyword::CASE
                | Keyword::WHEN
                | Keyword::UNION
                | Keyword::INTERSECT
                | Keyword::EXCEPT
                | Keyword::MINUS
                | Keyword::JOIN
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::DIV
                | Keyword::MOD
                | Keyword::OVERLAPS
        ),
        Token::Word(_)
        | Token::Number(..)
        | Token::Char(_)
        | Token::Whitespace(_)
        | Token::EOF
        | Token::Placeholder(_)
        | Token::Period
        | Token::Colon => false,
        // Every other punctuation token is an operator of some dialect
        // (arithmetic, comparison, concatenation, casts, JSON access …),
        // except string literals, which are leaves.
        other => !crate::redact::is_string_literal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(op: &str, n: usize) -> String {
        format!("SELECT {}", vec!["1"; n].join(op))
    }

    #[test]
    fn long_operator_chains_are_refused_before_parsing() {
        let limits = StatementLimits::default();
        for op in [" + ", " - ", " * ", " || ", " = "] {
            assert!(check_text(&chain(op, 900), &limits).is_ok(), "{op}");
            let err = check_text(&chain(op, 30_000), &limits).expect_err(op);
            assert!(err.to_string().contains("nested too deeply"), "{err}");
        }
        let ors = format!("SELECT 1 FROM t WHERE {}", vec!["a = 1"; 600].join(" OR "));
        assert!(
            check_text(&ors, &limits).is_err(),
            "600 ORs and 600 = nest 1,200 deep"
        );
        let nots = format!("SELECT {} true", "NOT ".repeat(2000));
        assert!(check_text(&nots, &limits).is_err());
        let unions = vec!["SELECT 1"; 2000].join(" UNION ALL ");
        assert!(check_text(&unions, &limits).is_err());
        let parens = format!("SELECT {}1{}", "(".repeat(1500), ")".repeat(1500));
        assert!(check_text(&parens, &limits).is_err());
    }

    #[test]
    fn wide_lists_are_not_deep() {
        let limits = StatementLimits::default();
        let list: Vec<String> = (0..50_000).map(|i| i.to_string()).collect();
        let in_list = format!("SELECT count(*) FROM t WHERE id IN ({})", list.join(", "));
        assert!(check_text(&in_list, &limits).is_ok());
        let rows: Vec<String> = (0..10_000).map(|i| format!("({i}, 'x' || 'y', -{i})")).collect();
        let values = format!("INSERT INTO t VALUES {}", rows.join(", "));
        assert!(check_text(&values, &limits).is_ok());
        let wide = format!("SELECT {} FROM t", vec!["a + b * c"; 5_000].join(", "));
        assert!(check_text(&wide, &limits).is_ok());
    }

    #[test]
    fn long_text_is_refused() {
        let limits = StatementLimits {
            max_statement_bytes: 100,
            ..StatementLimits::default()
        };
        let err = check_text(&"x".repeat(101), &limits).expect_err("too long");
        assert!(err.to_string().contains("101 bytes"), "{err}");
    }
}
