//! `$1`, `$2`, … in UPDATE, DELETE and MERGE (queries and INSERT bind them
//! through DataFusion's plan, `LogicalPlan::with_param_values`).
//!
//! These statements plan their expressions one by one (deltalake runs
//! them per file), so the values are bound per expression: each planned
//! expression's placeholders are typed from the columns they meet (as
//! DataFusion types a query's) and replaced by the sent value as a literal
//! of that type — a value, never text spliced into SQL. Planned without
//! values (a prepared statement being described), the placeholders stay and
//! their inferred types are collected for the client.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Mutex;

use arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ParamValues, ScalarValue};
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::sql::sqlparser::ast::{self, Statement, Value, visit_expressions};

use crate::ddl::sql_type_name;
use crate::error::{Result, SqlError};

/// The parameter values of one statement, and the types planning found.
/// The default binds no values: a `$n` met in planning is an error.
#[derive(Debug)]
pub(crate) struct Params {
    /// `None`: planned for its shape only (prepare); placeholders stay.
    values: Option<Vec<ScalarValue>>,
    /// `$n` → the type inferred for it, as planning meets it.
    inferred: Mutex<BTreeMap<usize, DataType>>,
}

impl Default for Params {
    fn default() -> Self {
        Self::bound(Vec::new())
    }
}

/// `$n`'s position, for an id DataFusion or sqlparser gives as `"$n"`.
fn position(id: &str) -> Option<usize> {
    id.strip_prefix('$')?.parse::<usize>().ok().filter(|n| *n > 0)
}

impl Params {
    /// Values to bind (possibly none: then no `$n` may occur).
    pub(crate) fn bound(values: Vec<ScalarValue>) -> Self {
        Self {
            values: Some(values),
            inferred: Mutex::default(),
        }
    }

    /// No values: plan to learn the parameters' types.
    pub(crate) fn describing() -> Self {
        Self {
            values: None,
            inferred: Mutex::default(),
        }
    }

    /// The types inferred so far, by position (`$1` first); a gap or an
    /// untyped parameter is `DataType::Null`.
    pub(crate) fn inferred(&self) -> Vec<(usize, DataType)> {
        self.inferred
            .lock()
            .map(|m| m.iter().map(|(n, t)| (*n, t.clone())).collect())
            .unwrap_or_default()
    }

    fn record(&self, id: &str, data_type: Option<&DataType>) {
        let (Some(n), Ok(mut inferred)) = (position(id), self.inferred.lock()) else {
            return;
        };
        match data_type {
            Some(t) if !matches!(t, DataType::Null) => {
                inferred.insert(n, t.clone());
            }
            _ => {
                inferred.entry(n).or_insert(DataType::Null);
            }
        }
    }

    /// `expr` (planned over `schema`) with its placeholders typed and, when
    /// values were sent, replaced by them. `target` is the column type an
    /// assigned value gets: a bare `SET c = $1` takes `c`'s type.
    pub(crate) fn bind(&self, expr: Expr, schema: &DFSchema, target: Option<&DataType>) -> Result<Expr> {
        let (mut expr, has_placeholder) = expr.infer_placeholder_types(schema)?;
        if !has_placeholder {
            return Ok(expr);
        }
        if let (Expr::Placeholder(Placeholder { field, .. }), Some(target)) = (&mut expr, target)
            && field.is_none()
        {
            *field = Some(std::sync::Arc::new(Field::new("", target.clone(), true)));
        }
        expr.apply(|e| {
            if let Expr::Placeholder(p) = e {
                self.record(&p.id, p.field.as_ref().map(|f| f.data_type()));
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let Some(values) = &self.values else {
            return Ok(expr);
        };
        let bound = expr.transform(|e| match e {
            Expr::Placeholder(Placeholder { id, field }) => {
                let literal = value_for(values, &id, field.as_ref().map(|f| f.data_type()))?;
                Ok(Transformed::yes(Expr::Literal(literal, None)))
            }
            other => Ok(Transformed::no(other)),
        });
        bound.map(|t| t.data).map_err(SqlError::from)
    }

    /// A planned query (a MERGE source) with its `$n` bound, or with their
    /// types recorded when there are no values.
    pub(crate) fn bind_plan(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        let types = plan.get_parameter_types()?;
        if types.is_empty() {
            return Ok(plan);
        }
        for (id, data_type) in &types {
            self.record(id, data_type.as_ref());
        }
        match &self.values {
            Some(values) => Ok(plan.with_param_values(ParamValues::List(
                values.iter().cloned().map(Into::into).collect(),
            ))?),
            None => Ok(plan),
        }
    }
}

/// The value sent for placeholder `id`, in `data_type` when one was
/// inferred. A value that does not convert is the caller's error (400).
fn value_for(
    values: &[ScalarValue],
    id: &str,
    data_type: Option<&DataType>,
) -> datafusion::error::Result<ScalarValue> {
    let invalid =
        |message: String| datafusion::error::DataFusionError::External(Box::new(SqlError::Invalid(message)));
    let value = position(id)
        .and_then(|n| values.get(n - 1))
        .ok_or_else(|| invalid(format!("no value sent for parameter {id}")))?;
    match data_type {
        Some(target)
            if !matches!(target, DataType::Null) && value.data_type() != *target && !value.is_null() =>
        {
            value.cast_to(target).map_err(|_| {
                invalid(format!(
                    "parameter {id}: the value does not convert to {}",
                    sql_type_name(target)
                ))
            })
        }
        Some(target) if value.is_null() => Ok(ScalarValue::try_from(target).unwrap_or(ScalarValue::Null)),
        _ => Ok(value.clone()),
    }
}

/// The highest `$n` in `statement` (0 when it has none), from its syntax
/// tree, so a count that does not match is refused before planning.
pub(crate) fn highest_placeholder(statement: &Statement) -> usize {
    let mut highest = 0;
    let _ = visit_expressions(statement, |expr| {
        if let ast::Expr::Value(value) = expr
            && let Value::Placeholder(id) = &value.value
            && let Some(n) = position(id)
        {
            highest = highest.max(n);
        }
        ControlFlow::<()>::Continue(())
    });
    highest
}

/// Refuses `sent` values for a statement whose highest placeholder is `used`.
pub(crate) fn check_count(sent: usize, used: usize) -> Result<()> {
    if sent != used {
        return Err(SqlError::Invalid(format!(
            "{sent} parameters sent, the statement uses {used} ($1…${used})"
        )));
    }
    Ok(())
}

/// Whether `expr` still holds a placeholder (planned without values).
pub(crate) fn has_placeholder(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::Placeholder(_))))
        .unwrap_or(false)
}
