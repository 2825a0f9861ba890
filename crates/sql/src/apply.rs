//! `APPLY CHANGES INTO`: CDC apply (SCD type 1) from a table or query of
//! change events, in the shape of Databricks' `APPLY CHANGES` / `AUTO CDC`:
//!
//! ```sql
//! APPLY CHANGES INTO customers
//! FROM changes            -- a table (time travel allowed) or (a query) [AS alias]
//! KEYS (id)
//! [APPLY AS DELETE WHEN op = 'd']
//! SEQUENCE BY seq
//! [COLUMNS (id, name, seq) | COLUMNS * EXCEPT (op)]
//! [STORED AS SCD TYPE 1]
//! ```
//!
//! Each key ends up as its highest-sequence change says; older, duplicate
//! and late changes change nothing, and a deleted key stays deleted against
//! changes at or below its delete (see `silt_table::ApplyChanges`). The
//! sequence column must be a column of the target.

use std::sync::Arc;

use datafusion::common::DFSchema;
use datafusion::execution::context::SessionState;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self as ast, TableFactor};
use datafusion::sql::sqlparser::parser::{IsOptional, Parser};
use datafusion::sql::sqlparser::tokenizer::Token;
use silt_table::ApplyChanges;

use crate::catalog::StatementSchema;
use crate::dml::{Change, Check, Role, RowCounts, dml_session, plan_expr, target_table, validate};
use crate::error::{Result, SqlError};
use crate::time_travel::pin_versions;

/// The statement's usage, in syntax errors.
pub(crate) const APPLY_USAGE: &str = "expected APPLY CHANGES INTO <table> FROM <table or (query)> KEYS (<column>, …) \
     [APPLY AS DELETE WHEN <condition>] SEQUENCE BY <column> [COLUMNS (<column>, …) | COLUMNS * EXCEPT (<column>, …)] \
     [STORED AS SCD TYPE 1]";

/// Which source columns an apply writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Columns {
    /// Every target column the source has.
    All,
    /// These.
    Only(Vec<String>),
    /// Every target column the source has, but these.
    Except(Vec<String>),
}

/// A parsed `APPLY CHANGES INTO`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApplyStatement {
    pub(crate) target: String,
    pub(crate) source: TableFactor,
    pub(crate) keys: Vec<String>,
    pub(crate) delete_when: Option<ast::Expr>,
    pub(crate) sequence: String,
    pub(crate) columns: Columns,
}

fn ident_name(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

fn column_list(parser: &mut Parser) -> Result<Vec<String>> {
    Ok(parser
        .parse_parenthesized_column_list(IsOptional::Mandatory, false)
        .map_err(|e| SqlError::Syntax(format!("{APPLY_USAGE}: {e}")))?
        .iter()
        .map(ident_name)
        .collect())
}

/// Parses the statement; the parser is at `APPLY`.
pub(crate) fn parse_apply(parser: &mut Parser) -> Result<ApplyStatement> {
    use crate::statement::{eat, expect_word};
    let usage = APPLY_USAGE;
    let syntax =
        |e: datafusion::sql::sqlparser::parser::ParserError| SqlError::Syntax(format!("{usage}: {e}"));
    expect_word(parser, "apply", usage)?;
    expect_word(parser, "changes", usage)?;
    expect_word(parser, "into", usage)?;
    let name = parser.parse_object_name(false).map_err(syntax)?;
    let target = crate::ddl::user_table(crate::ddl::table_name(&name)?)?;
    expect_word(parser, "from", usage)?;
    let mut source = parser.parse_table_factor().map_err(syntax)?;
    // `FROM changes KEYS (id)`: sqlparser reads `KEYS (id)` as the source's
    // alias with a column list; take it back as the KEYS clause.
    let mut taken = None;
    if let TableFactor::Table { alias, .. } | TableFactor::Derived { alias, .. } = &mut source
        && alias
            .as_ref()
            .is_some_and(|a| a.name.quote_style.is_none() && a.name.value.eq_ignore_ascii_case("keys"))
    {
        taken = alias
            .take()
            .map(|a| a.columns.iter().map(|c| ident_name(&c.name)).collect::<Vec<_>>());
    }
    let keys = match taken {
        Some(keys) if !keys.is_empty() => keys,
        Some(_) => column_list(parser)?,
        None => {
            expect_word(parser, "keys", usage)?;
            column_list(parser)?
        }
    };
    let mut delete_when = None;
    let mut sequence = None;
    let mut columns = None;
    let mut stored = false;
    loop {
        if delete_when.is_none() && eat(parser, "apply") {
            expect_word(parser, "as", usage)?;
            expect_word(parser, "delete", usage)?;
            expect_word(parser, "when", usage)?;
            delete_when = Some(parser.parse_expr().map_err(syntax)?);
        } else if sequence.is_none() && eat(parser, "sequence") {
            expect_word(parser, "by", usage)?;
            let ident = parser.parse_identifier().map_err(syntax)?;
            sequence = Some(ident_name(&ident));
        } else if columns.is_none() && eat(parser, "columns") {
            columns = Some(if parser.consume_token(&Token::Mul) {
                if eat(parser, "except") {
                    Columns::Except(column_list(parser)?)
                } else {
                    Columns::All
                }
            } else {
                Columns::Only(column_list(parser)?)
            });
        } else if !stored && eat(parser, "stored") {
            expect_word(parser, "as", usage)?;
            expect_word(parser, "scd", usage)?;
            expect_word(parser, "type", usage)?;
            let kind = parser.next_token();
            match &kind.token {
                Token::Number(n, _) if n == "1" => {}
                Token::Number(n, _) if n == "2" => {
                    return Err(SqlError::Unsupported(
                        "APPLY CHANGES … STORED AS SCD TYPE 2 (history rows); SCD type 1 is supported"
                            .to_string(),
                    ));
                }
                other => {
                    return Err(SqlError::Syntax(format!(
                        "{usage}: SCD TYPE must be 1, found '{other}' at {}",
                        kind.span.start
                    )));
                }
            }
            stored = true;
        } else {
            break;
        }
    }
    let Some(sequence) = sequence else {
        return Err(SqlError::Syntax(format!(
            "{usage}: SEQUENCE BY is required (the column that orders a key's changes)"
        )));
    };
    if keys.is_empty() {
        return Err(SqlError::Syntax(format!("{usage}: KEYS needs a column")));
    }
    Ok(ApplyStatement {
        target,
        source,
        keys,
        delete_when,
        sequence,
        columns: columns.unwrap_or(Columns::All),
    })
}

/// An apply planned against its target and source: nothing read yet.
pub(crate) struct PlannedApply {
    table: silt_table::Table,
    name: String,
    state: SessionState,
    source: datafusion::prelude::DataFrame,
    spec: ApplyChanges,
}

/// Plans `statement`: the source query, the delete condition (type-checked
/// on empty input) and the columns written.
pub(crate) async fn plan_apply(
    base: &SessionState,
    schema: &Arc<StatementSchema>,
    statement: ApplyStatement,
) -> Result<PlannedApply> {
    let ApplyStatement {
        target,
        source,
        keys,
        delete_when,
        sequence,
        columns,
    } = statement;
    let state = dml_session(base, schema)?;
    let table = target_table(schema, &target).await?;
    let (mut source_statement, source_alias) = crate::merge::source_query(&source)?;
    pin_versions(&mut source_statement, schema).await?;
    let plan = state
        .statement_to_plan(DfStatement::Statement(Box::new(source_statement)))
        .await?;
    let frame = SessionContext::new_with_state(state.clone())
        .execute_logical_plan(plan)
        .await?;
    let source_arrow = Arc::new(frame.schema().as_arrow().clone());
    let target_arrow = table.schema()?;
    let delete_when = match &delete_when {
        Some(condition) => {
            let place = format!("APPLY AS DELETE WHEN of APPLY CHANGES into table '{target}'");
            // Columns may be written `alias.op` or `op`; the planned
            // condition is applied unqualified to the source's rows.
            let df_schema = DFSchema::try_from_qualified_schema(
                datafusion::common::TableReference::bare(source_alias.as_str()),
                source_arrow.as_ref(),
            )?;
            let expr = plan_expr(&state, schema.params(), condition, &df_schema, &place, None)?;
            let check = Check {
                place,
                role: Role::Condition,
                expr: expr.clone(),
            };
            validate(&state, &[(source_alias, source_arrow.clone())], &[check]).await?;
            Some(datafusion::logical_expr::expr_rewriter::unnormalize_col(expr))
        }
        None => None,
    };
    let find = |name: &str, side: &arrow::datatypes::Schema, what: &str| -> Result<String> {
        side.fields()
            .iter()
            .find(|f| f.name() == name)
            .or_else(|| side.fields().iter().find(|f| f.name().eq_ignore_ascii_case(name)))
            .map(|f| f.name().clone())
            .ok_or_else(|| {
                SqlError::Invalid(format!(
                    "APPLY CHANGES into table '{target}': column '{name}' is not in the {what}"
                ))
            })
    };
    let keys = keys
        .iter()
        .map(|k| find(k, &target_arrow, "table"))
        .collect::<Result<Vec<_>>>()?;
    let sequence = find(&sequence, &target_arrow, "table")?;
    let written: Vec<String> = match columns {
        Columns::All => target_arrow
            .fields()
            .iter()
            .filter(|f| source_arrow.field_with_name(f.name()).is_ok())
            .map(|f| f.name().clone())
            .collect(),
        Columns::Only(only) => only
            .iter()
            .map(|c| find(c, &target_arrow, "table"))
            .collect::<Result<Vec<_>>>()?,
        Columns::Except(except) => target_arrow
            .fields()
            .iter()
            .filter(|f| source_arrow.field_with_name(f.name()).is_ok())
            .filter(|f| !except.iter().any(|e| e.eq_ignore_ascii_case(f.name())))
            .map(|f| f.name().clone())
            .collect(),
    };
    Ok(PlannedApply {
        table,
        name: target,
        state,
        source: frame,
        spec: ApplyChanges {
            keys,
            sequence: Some(sequence),
            delete_when,
            columns: Some(written),
            transactions: Vec::new(),
        },
    })
}

impl PlannedApply {
    /// Applies the changes in one commit to the table (after one to its
    /// tombstones when the changes delete).
    pub(crate) async fn run(self) -> Result<Change> {
        let (after, counts) = self
            .table
            .change()
            .with_session(Arc::new(self.state))
            .apply_changes(self.source, &self.spec)
            .await?;
        Ok(Change {
            version: after.version(),
            table: self.name,
            counts: RowCounts {
                inserted: counts.inserted as i64,
                updated: counts.updated as i64,
                deleted: counts.deleted as i64,
            },
        })
    }
}
