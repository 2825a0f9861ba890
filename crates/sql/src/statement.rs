//! Splitting SQL text into statements and recognising silt's own ones.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::DatabricksDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Result, SqlError};

/// One statement to run.
#[derive(Debug, Clone)]
pub(crate) enum Parsed {
    /// Standard SQL, parsed with the Databricks dialect.
    Sql(Box<Statement>),
    /// `DESCRIBE HISTORY t [LIMIT n]`.
    DescribeHistory { table: String, limit: Option<usize> },
}

/// Splits `sql` on top-level `;` and parses each statement.
pub(crate) fn parse(sql: &str) -> Result<Vec<Parsed>> {
    let dialect = DatabricksDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::Syntax(e.to_string()))?;
    let mut statements = Vec::new();
    for chunk in tokens.split(|t| t.token == Token::SemiColon) {
        let significant: Vec<&TokenWithSpan> = chunk
            .iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
            .collect();
        if significant.is_empty() {
            continue;
        }
        if let Some(history) = describe_history(&significant)? {
            statements.push(history);
            continue;
        }
        let mut parser = Parser::new(&dialect).with_tokens_with_locations(chunk.to_vec());
        let statement = parser
            .parse_statement()
            .map_err(|e| SqlError::Syntax(e.to_string()))?;
        let next = parser.peek_token();
        if next.token != Token::EOF {
            return Err(SqlError::Syntax(format!(
                "expected end of statement, found '{}' at {}",
                next.token, next.span.start
            )));
        }
        statements.push(Parsed::Sql(Box::new(statement)));
    }
    if statements.is_empty() {
        return Err(SqlError::Syntax("no statement".to_string()));
    }
    Ok(statements)
}

/// The text of each top-level `;`-separated statement of `sql`, as written
/// (for clients that send statements one by one, such as `silt sql --server`).
pub fn split_statements(sql: &str) -> Result<Vec<String>> {
    let dialect = DatabricksDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::Syntax(e.to_string()))?;
    let statements: Vec<String> = tokens
        .split(|t| t.token == Token::SemiColon)
        .map(|chunk| chunk.iter().map(|t| t.token.to_string()).collect::<String>())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .collect();
    if statements.is_empty() {
        return Err(SqlError::Syntax("no statement".to_string()));
    }
    Ok(statements)
}

fn keyword(token: &TokenWithSpan, expected: Keyword) -> bool {
    matches!(&token.token, Token::Word(w) if w.keyword == expected)
}

fn describe_history(tokens: &[&TokenWithSpan]) -> Result<Option<Parsed>> {
    if tokens.len() < 2 || !(keyword(tokens[0], Keyword::DESCRIBE) || keyword(tokens[0], Keyword::DESC)) {
        return Ok(None);
    }
    if !matches!(&tokens[1].token, Token::Word(w) if w.value.eq_ignore_ascii_case("history")) {
        return Ok(None);
    }
    let usage = || SqlError::Syntax("expected DESCRIBE HISTORY <table> [LIMIT n]".to_string());
    let table = match tokens.get(2).map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_some() => w.value.clone(),
        Some(Token::Word(w)) => w.value.to_lowercase(),
        _ => return Err(usage()),
    };
    let limit = match &tokens[3..] {
        [] => None,
        [l, n] if keyword(l, Keyword::LIMIT) => match &n.token {
            Token::Number(n, _) => Some(n.parse::<usize>().map_err(|_| usage())?),
            _ => return Err(usage()),
        },
        _ => return Err(usage()),
    };
    Ok(Some(Parsed::DescribeHistory { table, limit }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_each_statement_text() {
        let parts = split_statements("SELECT 'a;b' AS x;\n DESCRIBE HISTORY t LIMIT 2 ;").expect("splits");
        assert_eq!(parts, ["SELECT 'a;b' AS x", "DESCRIBE HISTORY t LIMIT 2"]);
    }

    #[test]
    fn splits_and_recognises_history() {
        let parsed = parse("SELECT 1; describe history Events limit 3;").expect("parses");
        assert_eq!(parsed.len(), 2);
        assert!(matches!(&parsed[1], Parsed::DescribeHistory { table, limit: Some(3) } if table == "events"));
    }

    #[test]
    fn syntax_error_has_a_position() {
        let err = parse("SELEC 1").expect_err("fails").to_string();
        assert!(err.contains("Line: 1"), "{err}");
    }

    #[test]
    fn parses_time_travel_and_tblproperties() {
        parse("SELECT * FROM t VERSION AS OF 3 JOIN t TIMESTAMP AS OF '2026-01-01' ON true").expect("parses");
        parse(
            "CREATE TABLE t (id BIGINT NOT NULL, day DATE) PARTITIONED BY (day) TBLPROPERTIES ('a.b' = 'c')",
        )
        .expect("parses");
    }
}
