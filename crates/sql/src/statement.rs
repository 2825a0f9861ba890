//! Splitting SQL text into statements and recognising silt's own ones.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::DatabricksDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::alter::Alter;
use crate::ddl::table_name;
use crate::error::{Result, SqlError};
use crate::maintenance::{Maintenance, RestoreTarget, partition_filters};

/// One statement to run.
#[derive(Debug, Clone)]
pub(crate) enum Parsed {
    /// Standard SQL, parsed with the Databricks dialect.
    Sql(Box<Statement>),
    /// `DESCRIBE HISTORY t [LIMIT n]`.
    DescribeHistory { table: String, limit: Option<usize> },
    /// `DESCRIBE DETAIL`, `OPTIMIZE`, `VACUUM`, `RESTORE`.
    Maintenance(Maintenance),
    /// `ALTER TABLE … ADD COLUMN[S]` / `SET TBLPROPERTIES`.
    Alter(Alter),
    /// `APPLY CHANGES INTO …` (CDC apply).
    Apply(Box<crate::apply::ApplyStatement>),
}

/// Splits `sql` on top-level `;` and parses each statement.
pub(crate) fn parse(sql: &str) -> Result<Vec<Parsed>> {
    Ok(parse_located(sql)?
        .into_iter()
        .map(|(parsed, _)| parsed)
        .collect())
}

/// [`parse`], giving each statement with the line (1-based) its first token
/// is on. In a text of several statements, a statement that does not parse
/// fails as [`SqlError::InStatement`], naming which one.
pub(crate) fn parse_located(sql: &str) -> Result<Vec<(Parsed, usize)>> {
    let dialect = DatabricksDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::Syntax(e.to_string()))?;
    let chunks: Vec<(&[TokenWithSpan], Vec<&TokenWithSpan>)> = tokens
        .split(|t| t.token == Token::SemiColon)
        .map(|chunk| {
            let significant: Vec<&TokenWithSpan> = chunk
                .iter()
                .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
                .collect();
            (chunk, significant)
        })
        .filter(|(_, significant)| !significant.is_empty())
        .collect();
    let several = chunks.len() > 1;
    let mut statements = Vec::new();
    for (index, (chunk, significant)) in chunks.iter().enumerate() {
        let line = significant
            .first()
            .map_or(1, |t| usize::try_from(t.span.start.line).unwrap_or(usize::MAX));
        let parsed = parse_chunk(&dialect, chunk, significant).map_err(|error| match several {
            true => error.in_statement(index + 1, line),
            false => error,
        })?;
        statements.push((parsed, line));
    }
    if statements.is_empty() {
        return Err(SqlError::Syntax("no statement".to_string()));
    }
    Ok(statements)
}

/// Parses one statement's tokens (`significant`: those of `chunk` that are
/// neither whitespace nor the end).
fn parse_chunk(
    dialect: &DatabricksDialect,
    chunk: &[TokenWithSpan],
    significant: &[&TokenWithSpan],
) -> Result<Parsed> {
    if let Some(history) = describe_history(significant)? {
        return Ok(history);
    }
    if let Some(own) = own_statement(dialect, chunk, significant)? {
        return Ok(own);
    }
    let mut chunk = chunk.to_vec();
    crate::merge::rewrite_star_actions(&mut chunk);
    drop_describe_table_keyword(&mut chunk, significant);
    let mut parser = Parser::new(dialect).with_tokens_with_locations(chunk);
    let end = significant.last().map(|t| t.span.end);
    let statement = parser.parse_statement().map_err(|e| {
        let message = e.to_string();
        // sqlparser gives no position when the text ends too early.
        match end {
            Some(end) if message.contains("found: EOF") => SqlError::Syntax(format!(
                "{message} at end of input (Line: {}, Column: {})",
                end.line, end.column
            )),
            _ => SqlError::Syntax(message),
        }
    })?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(SqlError::Syntax(format!(
            "expected end of statement, found '{}' at {}",
            next.token, next.span.start
        )));
    }
    Ok(match statement {
        Statement::AlterTable(alter) => Parsed::Alter(Alter::from_statement(&alter)?),
        statement => Parsed::Sql(Box::new(statement)),
    })
}

/// The text of each top-level `;`-separated statement of `sql`, as written
/// (for clients that send statements one by one, such as `silt sql --server`).
///
/// Each statement is cut out of `sql` at its tokens' positions, never
/// rebuilt from tokens: a rebuilt `'a'' OR ''1''=''1'` lost its escaping and
/// became live SQL.
pub fn split_statements(sql: &str) -> Result<Vec<String>> {
    Ok(split_script(sql)?
        .into_iter()
        .map(|statement| statement.text)
        .collect())
}

/// One statement of a script, cut out of the script's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementText {
    /// The statement as written, without the `;` and surrounding blanks.
    pub text: String,
    /// The line (1-based) of the script the statement starts on.
    pub line: usize,
}

/// [`split_statements`], with the line each statement starts on (for
/// error messages that say where in a script a statement failed).
pub fn split_script(sql: &str) -> Result<Vec<StatementText>> {
    let dialect = DatabricksDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::Syntax(e.to_string()))?;
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |location: datafusion::sql::sqlparser::tokenizer::Location| -> usize {
        let line = usize::try_from(location.line).unwrap_or(usize::MAX);
        let column = usize::try_from(location.column).unwrap_or(usize::MAX);
        let Some(start) = line.checked_sub(1).and_then(|l| line_starts.get(l)).copied() else {
            return sql.len();
        };
        sql[start..]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(sql.len(), |(i, _)| start + i)
    };
    let statements: Vec<StatementText> = tokens
        .split(|t| t.token == Token::SemiColon)
        .filter_map(|chunk| {
            let significant: Vec<&TokenWithSpan> = chunk
                .iter()
                .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
                .collect();
            let (first, last) = (significant.first()?, significant.last()?);
            let (start, end) = (offset(first.span.start), offset(last.span.end));
            let line = usize::try_from(first.span.start.line).unwrap_or(usize::MAX);
            sql.get(start..end.max(start)).map(|text| StatementText {
                text: text.trim().to_string(),
                line,
            })
        })
        .filter(|statement| !statement.text.is_empty())
        .collect();
    if statements.is_empty() {
        return Err(SqlError::Syntax("no statement".to_string()));
    }
    Ok(statements)
}

/// Whether `sql` ends with a `;` that ends a statement — not one inside a
/// string, a quoted name or a comment, and not in text that is cut off
/// inside one (an interactive shell reads lines until this holds).
pub fn ends_statement(sql: &str) -> bool {
    let Ok(tokens) = Tokenizer::new(&DatabricksDialect {}, sql).tokenize() else {
        return false;
    };
    tokens
        .iter()
        .rev()
        .find(|t| !matches!(t, Token::Whitespace(_) | Token::EOF))
        .is_some_and(|t| *t == Token::SemiColon)
}

/// `DESCRIBE TABLE t` (Databricks) is `DESCRIBE t`: the optional TABLE
/// keyword is dropped before sqlparser, which reads it only for other
/// dialects. `DESCRIBE table` alone still names a table called table.
fn drop_describe_table_keyword(chunk: &mut Vec<TokenWithSpan>, significant: &[&TokenWithSpan]) {
    let describe = significant
        .first()
        .is_some_and(|t| keyword(t, Keyword::DESCRIBE) || keyword(t, Keyword::DESC));
    if !(describe && significant.len() > 2 && is_word(&significant[1].token, "table")) {
        return;
    }
    let at = significant[1].span;
    if let Some(index) = chunk
        .iter()
        .position(|t| t.span == at && is_word(&t.token, "table"))
    {
        chunk.remove(index);
    }
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
    let table = crate::ddl::user_table(table)?;
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

/// Whether `token` is the (unquoted) word `word`, keyword or not.
fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// Consumes the next token if it is the word `word`.
pub(crate) fn eat(parser: &mut Parser, word: &str) -> bool {
    if is_word(&parser.peek_token().token, word) {
        parser.next_token();
        true
    } else {
        false
    }
}

fn syntax(usage: &str) -> impl Fn(datafusion::sql::sqlparser::parser::ParserError) -> SqlError + '_ {
    move |e| SqlError::Syntax(format!("{usage}: {e}"))
}

pub(crate) fn expect_word(parser: &mut Parser, word: &str, usage: &str) -> Result<()> {
    if eat(parser, word) {
        return Ok(());
    }
    let found = parser.peek_token();
    Err(SqlError::Syntax(format!(
        "{usage}: expected {}, found '{}' at {}",
        word.to_uppercase(),
        found.token,
        found.span.start
    )))
}

fn parse_table(parser: &mut Parser, usage: &str) -> Result<String> {
    let name = parser.parse_object_name(false).map_err(syntax(usage))?;
    table_name(&name)
}

fn expect_end(parser: &Parser, usage: &str) -> Result<()> {
    let next = parser.peek_token();
    if next.token == Token::EOF {
        return Ok(());
    }
    Err(SqlError::Syntax(format!(
        "{usage}: unexpected '{}' at {}",
        next.token, next.span.start
    )))
}

/// silt's statements that sqlparser does not read (or reads for another
/// dialect): `DESCRIBE DETAIL`, `OPTIMIZE`, `VACUUM`, `RESTORE` and the
/// Databricks list form `ALTER TABLE t ADD COLUMNS (…)`. `None`: not one of them.
fn own_statement(
    dialect: &DatabricksDialect,
    chunk: &[TokenWithSpan],
    tokens: &[&TokenWithSpan],
) -> Result<Option<Parsed>> {
    let word = |i: usize, w: &str| tokens.get(i).is_some_and(|t| is_word(&t.token, w));
    // `DESCRIBE detail` alone describes a table named detail.
    let detail = (word(0, "describe") || word(0, "desc")) && word(1, "detail") && tokens.len() > 2;
    let alter = word(0, "alter") && word(1, "table");
    let apply = word(0, "apply") && word(1, "changes");
    if !(detail || alter || apply || word(0, "optimize") || word(0, "vacuum") || word(0, "restore")) {
        return Ok(None);
    }
    let mut parser = Parser::new(dialect).with_tokens_with_locations(chunk.to_vec());
    let (parsed, usage) = if detail {
        let usage = "expected DESCRIBE DETAIL <table>";
        parser.next_token();
        parser.next_token();
        let table = parse_table(&mut parser, usage)?;
        (Parsed::Maintenance(Maintenance::DescribeDetail { table }), usage)
    } else if word(0, "optimize") {
        (parse_optimize(&mut parser)?, OPTIMIZE_USAGE)
    } else if word(0, "vacuum") {
        (parse_vacuum(&mut parser)?, VACUUM_USAGE)
    } else if word(0, "restore") {
        (parse_restore(&mut parser)?, RESTORE_USAGE)
    } else if apply {
        let statement = crate::apply::parse_apply(&mut parser)?;
        (Parsed::Apply(Box::new(statement)), crate::apply::APPLY_USAGE)
    } else {
        match parse_add_columns(&mut parser)? {
            Some(parsed) => (parsed, ADD_COLUMNS_USAGE),
            None => return Ok(None),
        }
    };
    expect_end(&parser, usage)?;
    Ok(Some(parsed))
}

const OPTIMIZE_USAGE: &str =
    "expected OPTIMIZE <table> [WHERE <partition predicate>] [ZORDER BY (<column>, …)]";
const VACUUM_USAGE: &str = "expected VACUUM <table> [LITE | FULL] [RETAIN <n> HOURS] [DRY RUN]";
const RESTORE_USAGE: &str =
    "expected RESTORE [TABLE] <table> [TO] VERSION AS OF <n> | TIMESTAMP AS OF '<instant>'";
const ADD_COLUMNS_USAGE: &str = "expected ALTER TABLE <table> ADD COLUMNS (<name> <type>, …)";

fn parse_optimize(parser: &mut Parser) -> Result<Parsed> {
    let usage = OPTIMIZE_USAGE;
    expect_word(parser, "optimize", usage)?;
    let table = parse_table(parser, usage)?;
    let filters = if eat(parser, "where") {
        partition_filters(&parser.parse_expr().map_err(syntax(usage))?)?
    } else {
        Vec::new()
    };
    let zorder = if eat(parser, "zorder") {
        expect_word(parser, "by", usage)?;
        parser
            .parse_parenthesized_column_list(datafusion::sql::sqlparser::parser::IsOptional::Mandatory, false)
            .map_err(syntax(usage))?
            .into_iter()
            .map(|ident| ident.value)
            .collect()
    } else {
        Vec::new()
    };
    Ok(Parsed::Maintenance(Maintenance::Optimize {
        table,
        filters,
        zorder,
    }))
}

fn parse_vacuum(parser: &mut Parser) -> Result<Parsed> {
    let usage = VACUUM_USAGE;
    expect_word(parser, "vacuum", usage)?;
    let table = parse_table(parser, usage)?;
    let (mut retain_hours, mut dry_run, mut mode) = (None, false, None);
    // Databricks takes the clauses in any order, each once.
    loop {
        if mode.is_none() && eat(parser, "lite") {
            mode = Some(true);
        } else if mode.is_none() && eat(parser, "full") {
            mode = Some(false);
        } else if retain_hours.is_none() && eat(parser, "retain") {
            let number = parser.next_token();
            let hours = match &number.token {
                Token::Number(n, _) => n.parse::<f64>().ok().filter(|h| h.is_finite() && *h >= 0.0),
                _ => None,
            };
            let Some(hours) = hours else {
                return Err(SqlError::Syntax(format!(
                    "{usage}: RETAIN needs a non-negative number of hours, found '{}' at {}",
                    number.token, number.span.start
                )));
            };
            expect_word(parser, "hours", usage)?;
            retain_hours = Some(hours);
        } else if !dry_run && eat(parser, "dry") {
            expect_word(parser, "run", usage)?;
            dry_run = true;
        } else {
            break;
        }
    }
    Ok(Parsed::Maintenance(Maintenance::Vacuum {
        table,
        retain_hours,
        dry_run,
        lite: mode.unwrap_or(false),
    }))
}

fn parse_restore(parser: &mut Parser) -> Result<Parsed> {
    let usage = RESTORE_USAGE;
    expect_word(parser, "restore", usage)?;
    eat(parser, "table");
    let table = parse_table(parser, usage)?;
    eat(parser, "to");
    let to = if eat(parser, "version") {
        expect_word(parser, "as", usage)?;
        expect_word(parser, "of", usage)?;
        let number = parser.next_token();
        match &number.token {
            Token::Number(n, _) => RestoreTarget::Version(n.parse::<u64>().map_err(|_| {
                SqlError::Syntax(format!(
                    "{usage}: VERSION AS OF needs a non-negative integer, got {n}"
                ))
            })?),
            other => {
                return Err(SqlError::Syntax(format!(
                    "{usage}: VERSION AS OF needs a non-negative integer, found '{other}' at {}",
                    number.span.start
                )));
            }
        }
    } else if eat(parser, "timestamp") {
        expect_word(parser, "as", usage)?;
        expect_word(parser, "of", usage)?;
        use datafusion::sql::sqlparser::ast::{Expr, Value};
        // A quoted instant, or (as for SELECT … TIMESTAMP AS OF) an
        // expression that gives one.
        match parser.parse_expr().map_err(syntax(usage))? {
            Expr::Value(v) => match v.value {
                Value::SingleQuotedString(text) | Value::DoubleQuotedString(text) => {
                    RestoreTarget::Timestamp(text)
                }
                other => RestoreTarget::Expression(other.to_string()),
            },
            other => RestoreTarget::Expression(other.to_string()),
        }
    } else {
        let found = parser.peek_token();
        return Err(SqlError::Syntax(format!(
            "{usage}: found '{}' at {}",
            found.token, found.span.start
        )));
    };
    Ok(Parsed::Maintenance(Maintenance::Restore { table, to }))
}

/// `ALTER TABLE t ADD COLUMNS (…)` or `ADD COLUMN (…)`; `None` for any
/// other ALTER TABLE, which sqlparser reads.
fn parse_add_columns(parser: &mut Parser) -> Result<Option<Parsed>> {
    let usage = ADD_COLUMNS_USAGE;
    expect_word(parser, "alter", usage)?;
    expect_word(parser, "table", usage)?;
    let Ok(name) = parser.parse_object_name(false) else {
        return Ok(None);
    };
    let list = is_word(&parser.peek_nth_token(0).token, "add")
        && (is_word(&parser.peek_nth_token(1).token, "columns")
            || (is_word(&parser.peek_nth_token(1).token, "column")
                && parser.peek_nth_token(2).token == Token::LParen));
    if !list {
        return Ok(None);
    }
    let table = table_name(&name)?;
    parser.next_token();
    parser.next_token();
    parser.expect_token(&Token::LParen).map_err(syntax(usage))?;
    let columns = parser
        .parse_comma_separated(Parser::parse_column_def)
        .map_err(syntax(usage))?;
    parser.expect_token(&Token::RParen).map_err(syntax(usage))?;
    Ok(Some(Parsed::Alter(Alter::AddColumns { table, columns })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_cut_short_names_where_it_ends() {
        let err = parse("SELECT 1 +").expect_err("incomplete").to_string();
        assert!(err.contains("at end of input (Line: 1, Column: 11)"), "{err}");
    }

    #[test]
    fn a_version_after_the_alias_is_a_syntax_error_not_ignored() {
        assert!(parse("SELECT count(*) FROM t AS x VERSION AS OF 1").is_err());
        assert!(parse("SELECT count(*) FROM t VERSION AS OF 1 AS x").is_ok());
    }

    #[test]
    fn split_cuts_the_text_and_keeps_escapes() {
        let parts =
            split_statements("SELECT 'a'' OR ''1''=''1' AS x; SELECT 'it''s', \"q\"\"d\"").expect("splits");
        assert_eq!(
            parts,
            ["SELECT 'a'' OR ''1''=''1' AS x", "SELECT 'it''s', \"q\"\"d\""]
        );
        let parts = split_statements("SELECT 1 -- note; not a split\n; SELECT 'é;ü' AS ü").expect("splits");
        assert_eq!(parts, ["SELECT 1", "SELECT 'é;ü' AS ü"]);
        let parts = split_statements("SELECT `quoted id`, '''triple''' FROM t").expect("splits");
        assert_eq!(parts, ["SELECT `quoted id`, '''triple''' FROM t"]);
    }

    #[test]
    fn split_keeps_each_statement_text() {
        let parts = split_statements("SELECT 'a;b' AS x;\n DESCRIBE HISTORY t LIMIT 2 ;").expect("splits");
        assert_eq!(parts, ["SELECT 'a;b' AS x", "DESCRIBE HISTORY t LIMIT 2"]);
    }

    #[test]
    fn split_script_gives_each_statement_its_line() {
        let parts = split_script("-- setup\nSELECT 1;\n\nSELECT\n  'a;\nb';  SELECT 3").expect("splits");
        let lines: Vec<usize> = parts.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 4, 6]);
        assert_eq!(parts[1].text, "SELECT\n  'a;\nb'");
    }

    #[test]
    fn a_statement_ends_at_a_semicolon_outside_strings_and_comments() {
        assert!(ends_statement("SELECT 1;"));
        assert!(ends_statement("SELECT 1\n  ;  \n"));
        assert!(ends_statement("SELECT ';' AS x; -- done\n"));
        assert!(!ends_statement("SELECT 1"));
        assert!(!ends_statement("SELECT 'a;"));
        assert!(!ends_statement("SELECT 1 /* ; */"));
        assert!(!ends_statement("SELECT 1 /* still open;"));
        assert!(!ends_statement("SELECT 1 -- ;"));
        assert!(!ends_statement(""));
    }

    #[test]
    fn a_bad_statement_of_several_is_named_by_position() {
        let err = parse("SELECT 1;\n\nSELEC 2;").expect_err("fails");
        assert!(
            matches!(
                err,
                SqlError::InStatement {
                    index: 2,
                    line: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("statement 2 (line 3): syntax error"),
            "{err}"
        );
        assert_eq!(err.kind(), silt_table::ErrorKind::InvalidInput);
        let alone = parse("SELEC 2").expect_err("fails");
        assert!(matches!(alone, SqlError::Syntax(_)), "{alone:?}");
    }

    #[test]
    fn splits_and_recognises_history() {
        let parsed = parse_located("SELECT 1;\n describe history Events limit 3;").expect("parses");
        assert_eq!(parsed.len(), 2);
        assert!(
            matches!(&parsed[1], (Parsed::DescribeHistory { table, limit: Some(3) }, 2) if table == "events")
        );
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
