//! `MERGE INTO t USING s ON … WHEN …`, translated to deltalake's merge
//! (copy-on-write).
//!
//! The source — a table (time travel allowed) or a subquery — is planned by
//! DataFusion over the statement's catalog and handed to deltalake as a
//! DataFrame, so it sees the same pinned snapshots as the rest of the
//! statement. Clause expressions are planned here, against the columns each
//! clause may see (source and target when matched, the source only for
//! INSERT, the target only for NOT MATCHED BY SOURCE), and type-checked on
//! empty inputs before deltalake writes anything.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::{Column, DFSchema, TableReference};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    self as ast, Assignment, AssignmentTarget, Ident, Merge, MergeAction, MergeClause, MergeClauseKind,
    MergeInsertKind, ObjectNamePart, Statement, TableAlias, TableFactor,
};
use datafusion::sql::sqlparser::dialect::DatabricksDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::catalog::StatementSchema;
use crate::ddl::table_name;
use silt_table::Table;

use crate::dml::{
    Change, Check, Role, RowCounts, assignment_column, column_type, dml_session, plan_expr, target_factor,
    target_table, validate,
};
use crate::error::{Result, SqlError};
use crate::time_travel::pin_versions;

/// The column name `UPDATE SET *` and `INSERT *` are rewritten to: a quoted
/// `*`, which no real column of a silt table is named.
const STAR: &str = "*";
const STAR_QUOTE: char = '`';

/// Rewrites Databricks' `UPDATE SET *` and `INSERT *` in a MERGE statement,
/// which sqlparser does not parse, into `SET `*` = `*`` and
/// `INSERT (`*`) VALUES (`*`)`; [`merge`] expands them to every column.
pub(crate) fn rewrite_star_actions(tokens: &mut Vec<TokenWithSpan>) {
    let significant = |t: &TokenWithSpan| !matches!(t.token, Token::Whitespace(_) | Token::EOF);
    let is_merge = tokens
        .iter()
        .find(|t| significant(t))
        .is_some_and(|t| matches!(&t.token, Token::Word(w) if w.value.eq_ignore_ascii_case("merge")));
    if !is_merge {
        return;
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut previous: Option<String> = None;
    for token in tokens.drain(..) {
        if token.token == Token::Mul {
            let star = || TokenWithSpan::new(Token::make_word(STAR, Some(STAR_QUOTE)), token.span);
            let plain = |t: Token| TokenWithSpan::new(t, token.span);
            match previous.as_deref() {
                Some("SET") => {
                    out.extend([star(), plain(Token::Eq), star()]);
                    previous = None;
                    continue;
                }
                Some("INSERT") => {
                    out.extend([
                        plain(Token::LParen),
                        star(),
                        plain(Token::RParen),
                        plain(Token::make_keyword("VALUES")),
                        plain(Token::LParen),
                        star(),
                        plain(Token::RParen),
                    ]);
                    previous = None;
                    continue;
                }
                _ => {}
            }
        }
        if significant(&token) {
            previous = match &token.token {
                Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_uppercase()),
                _ => None,
            };
        }
        out.push(token);
    }
    *tokens = out;
}

fn is_star(ident: &Ident) -> bool {
    ident.value == STAR && ident.quote_style == Some(STAR_QUOTE)
}

fn star_target(target: &AssignmentTarget) -> bool {
    matches!(target, AssignmentTarget::ColumnName(name)
        if matches!(name.0.as_slice(), [ObjectNamePart::Identifier(i)] if is_star(i)))
}

/// One planned WHEN clause (silt-table runs them).
use silt_table::MergeClause as Clause;

/// Everything clause planning needs to know about the two sides.
struct Sides<'a> {
    state: &'a SessionState,
    /// The statement's `$n` values.
    params: &'a crate::params::Params,
    table: &'a str,
    target_alias: &'a str,
    source_alias: &'a str,
    target: &'a Schema,
    source: &'a Schema,
    target_df: &'a DFSchema,
    source_df: &'a DFSchema,
    both_df: &'a DFSchema,
}

impl Sides<'_> {
    /// The source column feeding target column `column` in `* ` actions.
    fn source_column(&self, column: &str, action: &str) -> Result<Expr> {
        let field = self
            .source
            .fields()
            .iter()
            .find(|f| f.name() == column)
            .or_else(|| {
                self.source
                    .fields()
                    .iter()
                    .find(|f| f.name().eq_ignore_ascii_case(column))
            })
            .ok_or_else(|| {
                SqlError::Invalid(format!(
                    "MERGE into table '{}': {action} needs column '{column}' in the source",
                    self.table
                ))
            })?;
        Ok(Expr::Column(Column::new(
            Some(TableReference::bare(self.source_alias)),
            field.name(),
        )))
    }

    fn condition(
        &self,
        expr: &ast::Expr,
        schema: &DFSchema,
        place: String,
        checks: &mut Vec<Check>,
    ) -> Result<Expr> {
        let planned = plan_expr(self.state, self.params, expr, schema, &place, None)?;
        checks.push(Check {
            place,
            role: Role::Condition,
            expr: planned.clone(),
        });
        Ok(planned)
    }

    fn assign(
        &self,
        column: String,
        value: Expr,
        place: String,
        checks: &mut Vec<Check>,
        sets: &mut Vec<(String, Expr)>,
    ) -> Result<()> {
        if sets.iter().any(|(c, _)| *c == column) {
            return Err(SqlError::Invalid(format!(
                "{place}: column '{column}' of table '{}' is assigned twice",
                self.table
            )));
        }
        let data_type = column_type(self.target, &column, self.table)?;
        checks.push(Check {
            place,
            role: Role::Assign {
                column: column.clone(),
                data_type: data_type.clone(),
            },
            expr: value.clone(),
        });
        // As UPDATE does: the value in the column's type (see dml.rs).
        sets.push((column, datafusion::logical_expr::cast(value, data_type)));
        Ok(())
    }

    /// `UPDATE SET …` / `UPDATE SET *` of a clause whose expressions see `schema`.
    fn updates(
        &self,
        assignments: &[Assignment],
        schema: &DFSchema,
        place: &str,
        checks: &mut Vec<Check>,
    ) -> Result<Vec<(String, Expr)>> {
        let mut sets = Vec::new();
        for assignment in assignments {
            if star_target(&assignment.target) {
                if !std::ptr::eq(schema, self.both_df) {
                    return Err(SqlError::Invalid(format!(
                        "{place}: UPDATE SET * is only allowed in WHEN MATCHED"
                    )));
                }
                for field in self.target.fields() {
                    let value = self.source_column(field.name(), "UPDATE SET *")?;
                    let at = format!("{place}: SET {}", field.name());
                    self.assign(field.name().clone(), value, at, checks, &mut sets)?;
                }
                continue;
            }
            let column = assignment_column(&assignment.target, self.target, self.table, self.target_alias)?;
            let at = format!("{place}: SET {column}");
            let target = column_type(self.target, &column, self.table)?;
            let value = plan_expr(
                self.state,
                self.params,
                &assignment.value,
                schema,
                &at,
                Some(&target),
            )?;
            self.assign(column, value, at, checks, &mut sets)?;
        }
        Ok(sets)
    }

    fn clause(&self, clause: &MergeClause, checks: &mut Vec<Check>) -> Result<Clause> {
        let kind = match clause.clause_kind {
            MergeClauseKind::Matched => "WHEN MATCHED",
            MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget => "WHEN NOT MATCHED",
            MergeClauseKind::NotMatchedBySource => "WHEN NOT MATCHED BY SOURCE",
        };
        let place = format!("{kind} clause of MERGE into table '{}'", self.table);
        // Matched clauses see both sides, INSERT only the source, NOT
        // MATCHED BY SOURCE only the target (as in Databricks).
        let schema = match clause.clause_kind {
            MergeClauseKind::Matched => self.both_df,
            MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget => self.source_df,
            MergeClauseKind::NotMatchedBySource => self.target_df,
        };
        let predicate = clause
            .predicate
            .as_ref()
            .map(|p| self.condition(p, schema, format!("{place}: AND condition"), checks))
            .transpose()?;
        let by_source = matches!(clause.clause_kind, MergeClauseKind::NotMatchedBySource);
        Ok(match &clause.action {
            MergeAction::Update(update) => {
                if update.update_predicate.is_some() || update.delete_predicate.is_some() {
                    return Err(SqlError::Unsupported(
                        "UPDATE … WHERE / DELETE WHERE inside a MERGE clause; use WHEN … AND <condition>"
                            .to_string(),
                    ));
                }
                let sets = self.updates(&update.assignments, schema, &place, checks)?;
                if by_source {
                    Clause::SourceUpdate(predicate, sets)
                } else {
                    Clause::MatchedUpdate(predicate, sets)
                }
            }
            MergeAction::Delete { .. } if by_source => Clause::SourceDelete(predicate),
            MergeAction::Delete { .. } => Clause::MatchedDelete(predicate),
            MergeAction::Insert(insert) => {
                if insert.insert_predicate.is_some() {
                    return Err(SqlError::Unsupported(
                        "INSERT … WHERE inside a MERGE clause; use WHEN NOT MATCHED AND <condition>"
                            .to_string(),
                    ));
                }
                let MergeInsertKind::Values(values) = &insert.kind else {
                    return Err(SqlError::Unsupported(
                        "INSERT ROW in MERGE; use INSERT (cols) VALUES (…) or INSERT *".to_string(),
                    ));
                };
                let [row] = values.rows.as_slice() else {
                    return Err(SqlError::Invalid(format!(
                        "{place}: INSERT takes exactly one row of VALUES"
                    )));
                };
                let row = &row.content;
                let mut sets = Vec::new();
                let star = matches!(insert.columns.as_slice(), [c] if matches!(c.0.as_slice(), [ObjectNamePart::Identifier(i)] if is_star(i)));
                if star {
                    for field in self.target.fields() {
                        let value = self.source_column(field.name(), "INSERT *")?;
                        let at = format!("{place}: INSERT {}", field.name());
                        self.assign(field.name().clone(), value, at, checks, &mut sets)?;
                    }
                    return Ok(Clause::Insert(predicate, sets));
                }
                let columns: Vec<String> = if insert.columns.is_empty() {
                    self.target.fields().iter().map(|f| f.name().clone()).collect()
                } else {
                    insert
                        .columns
                        .iter()
                        .map(|c| {
                            assignment_column(
                                &AssignmentTarget::ColumnName(c.clone()),
                                self.target,
                                self.table,
                                self.target_alias,
                            )
                        })
                        .collect::<Result<_>>()?
                };
                if columns.len() != row.len() {
                    return Err(SqlError::Invalid(format!(
                        "{place}: INSERT names {} columns but gives {} values",
                        columns.len(),
                        row.len()
                    )));
                }
                for (column, value) in columns.into_iter().zip(row) {
                    let at = format!("{place}: INSERT {column}");
                    let target = column_type(self.target, &column, self.table)?;
                    let value = plan_expr(self.state, self.params, value, schema, &at, Some(&target))?;
                    self.assign(column, value, at, checks, &mut sets)?;
                }
                Clause::Insert(predicate, sets)
            }
        })
    }
}

fn normalized(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The source as a query and the name its columns are qualified with.
pub(crate) fn source_query(source: &TableFactor) -> Result<(Statement, String)> {
    let (alias, default) = match source {
        TableFactor::Table { name, alias, .. } => (alias, table_name(name)?),
        TableFactor::Derived {
            alias,
            lateral: false,
            ..
        } => (alias, "source".to_string()),
        other => {
            return Err(SqlError::Unsupported(format!(
                "MERGE source {other}; use a table or a (subquery)"
            )));
        }
    };
    let name = alias.as_ref().map(|a| normalized(&a.name)).unwrap_or(default);
    // Plan `SELECT * FROM <source>` so DataFusion resolves tables, time
    // travel and column aliases (`AS s(a, b)`) as in any query.
    let mut factor = source.clone();
    let columns = alias.as_ref().map(|a| a.columns.clone()).unwrap_or_default();
    let renamed = Some(TableAlias {
        explicit: true,
        name: Ident::with_quote('`', "__silt_source"),
        columns,
        at: None,
    });
    match &mut factor {
        TableFactor::Table { alias, .. } | TableFactor::Derived { alias, .. } => *alias = renamed,
        _ => {}
    }
    // Built from the AST, not re-rendered text: sqlparser displays a
    // table's alias before its VERSION AS OF, which it then cannot read back.
    let mut statement = Parser::new(&DatabricksDialect {})
        .try_with_sql("SELECT * FROM __silt_source")
        .and_then(|mut p| p.parse_statement())
        .map_err(|e| SqlError::Syntax(format!("MERGE source: {e}")))?;
    let from = match &mut statement {
        Statement::Query(query) => match query.body.as_mut() {
            ast::SetExpr::Select(select) => select.from.first_mut(),
            _ => None,
        },
        _ => None,
    };
    match from {
        Some(from) => from.relation = factor,
        None => {
            return Err(SqlError::Execution(
                "cannot build the MERGE source query".to_string(),
            ));
        }
    }
    Ok((statement, name))
}

/// A MERGE planned and type-checked against its target and source:
/// nothing read or written yet.
pub(crate) struct PlannedMerge {
    name: String,
    table: Table,
    state: SessionState,
    source: DataFrame,
    on: Expr,
    source_alias: String,
    target_alias: String,
    clauses: Vec<Clause>,
}

/// Plans `MERGE INTO t [AS a] USING s [AS b] ON … WHEN …` (see [`PlannedMerge::run`]).
pub(crate) async fn plan_merge(
    base: &SessionState,
    schema: &Arc<StatementSchema>,
    merge: Merge,
) -> Result<PlannedMerge> {
    if merge.output.is_some() {
        return Err(SqlError::Unsupported("MERGE … OUTPUT".to_string()));
    }
    if merge.clauses.is_empty() {
        return Err(SqlError::Invalid(
            "MERGE needs at least one WHEN clause".to_string(),
        ));
    }
    let (name, alias) = target_factor(&merge.table, "MERGE")?;
    let target_alias = alias.unwrap_or_else(|| name.clone());
    let (mut source_statement, source_alias) = source_query(&merge.source)?;
    if source_alias == target_alias {
        return Err(SqlError::Invalid(format!(
            "MERGE into table '{name}': source and target are both called '{target_alias}'; give one an alias (… AS s)"
        )));
    }
    let state = dml_session(base, schema)?;
    // The target is pinned first, so a source that reads the same table
    // without time travel sees the same snapshot.
    let table = target_table(schema, &name).await?;
    pin_versions(&mut source_statement, schema).await?;
    let plan = state
        .statement_to_plan(DfStatement::Statement(Box::new(source_statement)))
        .await?;
    let plan = schema.params().bind_plan(plan)?;
    let source = SessionContext::new_with_state(state.clone())
        .execute_logical_plan(plan)
        .await?;
    let source_arrow: SchemaRef = Arc::new(source.schema().as_arrow().clone());
    let target_arrow = table.schema()?;
    let target_df =
        DFSchema::try_from_qualified_schema(TableReference::bare(target_alias.as_str()), &target_arrow)?;
    let source_df =
        DFSchema::try_from_qualified_schema(TableReference::bare(source_alias.as_str()), &source_arrow)?;
    let both_df = target_df.join(&source_df)?;
    let sides = Sides {
        state: &state,
        params: schema.params(),
        table: &name,
        target_alias: &target_alias,
        source_alias: &source_alias,
        target: &target_arrow,
        source: &source_arrow,
        target_df: &target_df,
        source_df: &source_df,
        both_df: &both_df,
    };

    let mut checks = Vec::new();
    let on = sides.condition(
        &merge.on,
        &both_df,
        format!("ON clause of MERGE into table '{name}'"),
        &mut checks,
    )?;
    let clauses = merge
        .clauses
        .iter()
        .map(|c| sides.clause(c, &mut checks))
        .collect::<Result<Vec<_>>>()?;
    validate(
        &state,
        &[
            (target_alias.clone(), target_arrow.clone()),
            (source_alias.clone(), source_arrow.clone()),
        ],
        &checks,
    )
    .await?;

    Ok(PlannedMerge {
        name,
        table,
        state,
        source,
        on,
        source_alias,
        target_alias,
        clauses,
    })
}

impl PlannedMerge {
    /// Joins the source with the target, rewrites the files with matched
    /// rows, and commits.
    pub(crate) async fn run(self) -> Result<Change> {
        let (merged, counts) = self
            .table
            .change()
            .with_session(Arc::new(self.state))
            .merge(
                self.source,
                self.on,
                &self.source_alias,
                &self.target_alias,
                self.clauses,
            )
            .await?;
        Ok(Change {
            version: merged.version(),
            table: self.name,
            counts: RowCounts {
                inserted: counts.inserted as i64,
                updated: counts.updated as i64,
                deleted: counts.deleted.unwrap_or(0) as i64,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn rewritten(sql: &str) -> String {
        let mut tokens = Tokenizer::new(&DatabricksDialect {}, sql)
            .tokenize_with_location()
            .expect("tokenizes");
        rewrite_star_actions(&mut tokens);
        tokens.iter().map(|t| t.token.to_string()).collect()
    }

    #[test]
    fn star_actions_become_marker_columns() {
        assert_eq!(
            rewritten(
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
            ),
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET `*`=`*` WHEN NOT MATCHED THEN INSERT (`*`)VALUES(`*`)"
        );
        assert_eq!(rewritten("SELECT * FROM t"), "SELECT * FROM t");
    }
}
