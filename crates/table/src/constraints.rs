//! CHECK constraints and NOT NULL columns, as Delta defines them: a
//! constraint is the table configuration `delta.constraints.<name>` = a SQL
//! boolean expression (writer version 3, or the `checkConstraints` feature),
//! and every row written must make it true — NULL counts as a violation, as
//! in Delta and delta-rs.
//!
//! deltalake enforces both on every write it makes (its `DataValidationExec`
//! in the writer of WRITE, UPDATE and MERGE), but its error quotes up to five
//! offending rows and does not say which constraint failed. So silt checks
//! first, naming the constraint or column and never a value:
//!
//! - rows in hand (`Table::write`, the ingest committer per request) are
//!   checked here, constraint by constraint ([`Table::check_rows`]);
//! - rows a plan produces (INSERT, UPDATE, MERGE, CDC apply) pass through
//!   [`Enforcer`], a scalar function that evaluates each check in the plan
//!   itself and records which one failed in a slot the operation reads when
//!   deltalake hands back its (flattened, text-only) error.
//!
//! deltalake's own check stays as the backstop for anything silt misses,
//! except on appends of batches, which silt stages itself (`append.rs`):
//! there [`Table::check_rows`] is the only check.
//!
//! ```no_run
//! # async fn demo(table: silt_table::Table) -> silt_table::Result<()> {
//! for constraint in table.check_constraints()? {
//!     println!("CONSTRAINT {} CHECK ({})", constraint.name, constraint.expression);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::{DataType, Schema as ArrowSchema};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::common::tree_node::{Transformed, TreeNode};
use deltalake::datafusion::common::{Column, DFSchema, ScalarValue};
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::context::SessionState;
use deltalake::datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use deltalake::datafusion::prelude::SessionContext;

use crate::error::{Result, TableError};

/// The table configuration prefix of Delta's CHECK constraints.
pub const CONSTRAINT_PREFIX: &str = "delta.constraints.";

/// One CHECK constraint of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConstraint {
    /// Its name (lowercase, as Spark stores it).
    pub name: String,
    /// The SQL boolean expression every row must satisfy.
    pub expression: String,
}

/// What a refused row violated: named, never with the row's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A CHECK constraint, by name.
    Check(String),
    /// A NOT NULL column, by name.
    NotNull(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Check(name) => write!(f, "CHECK constraint '{name}'"),
            Violation::NotNull(column) => write!(f, "NOT NULL column '{column}'"),
        }
    }
}

/// The CHECK constraints in a table configuration, sorted by name.
pub fn constraints_of(configuration: &HashMap<String, String>) -> Vec<CheckConstraint> {
    let mut constraints: Vec<CheckConstraint> = configuration
        .iter()
        .filter_map(|(key, value)| {
            key.strip_prefix(CONSTRAINT_PREFIX).map(|name| CheckConstraint {
                name: name.to_string(),
                expression: value.clone(),
            })
        })
        .collect();
    constraints.sort_by(|a, b| a.name.cmp(&b.name));
    constraints
}

/// A constraint name Delta and Spark accept: letters, digits and `_`.
pub fn validate_constraint_name(table: &str, name: &str) -> Result<String> {
    let valid =
        !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(TableError::InvalidDefinition {
            table: table.to_string(),
            reason: format!("invalid constraint name '{name}': use letters, digits and '_'"),
        });
    }
    Ok(name.to_ascii_lowercase())
}

/// A session to plan constraint expressions in (deltalake parses them with
/// DataFusion's SQL planner against the rows' schema).
fn session() -> SessionState {
    SessionContext::new().state()
}

/// `expression` planned against `schema`; it must be boolean.
pub(crate) fn plan_check(
    table: &str,
    constraint: &CheckConstraint,
    schema: &DFSchema,
    session: &SessionState,
) -> Result<Expr> {
    let invalid = |reason: String| TableError::InvalidDefinition {
        table: table.to_string(),
        reason: format!(
            "CHECK constraint '{}' ({}): {reason}",
            constraint.name, constraint.expression
        ),
    };
    let expr = deltalake::delta_datafusion::expr::parse_predicate_expression(
        schema,
        &constraint.expression,
        session,
    )
    .map_err(|e| invalid(e.to_string()))?;
    match expr.get_type(schema) {
        Ok(DataType::Boolean) => Ok(expr),
        Ok(other) => Err(invalid(format!("the expression is {other}, not a boolean"))),
        Err(e) => Err(invalid(e.to_string())),
    }
}

/// Checks that every constraint in `configuration` is a boolean expression
/// over `schema`'s columns (before a table is created with them).
pub(crate) fn validate_constraints(
    table: &str,
    schema: &ArrowSchema,
    configuration: &HashMap<String, String>,
) -> Result<()> {
    let constraints = constraints_of(configuration);
    if constraints.is_empty() {
        return Ok(());
    }
    let df_schema = DFSchema::try_from(schema.clone()).map_err(|e| TableError::InvalidDefinition {
        table: table.to_string(),
        reason: e.to_string(),
    })?;
    let session = session();
    for constraint in &constraints {
        validate_constraint_name(table, &constraint.name)?;
        plan_check(table, constraint, &df_schema, &session)?;
    }
    Ok(())
}

/// Whether a boolean result lets every row through (no false, no NULL).
fn holds(value: &ColumnarValue) -> bool {
    match value {
        ColumnarValue::Array(array) => {
            let Some(booleans) = array.as_boolean_opt() else {
                return false;
            };
            booleans.null_count() == 0 && booleans.true_count() == booleans.len()
        }
        ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => true,
        ColumnarValue::Scalar(_) => false,
    }
}

impl crate::Table {
    /// The table's CHECK constraints (`delta.constraints.*`), by name.
    pub fn check_constraints(&self) -> Result<Vec<CheckConstraint>> {
        Ok(constraints_of(&self.properties()?))
    }

    /// Refuses `batches` (already of the table's schema) when a row has a
    /// NULL in a NOT NULL column or violates a CHECK constraint, naming
    /// the first one violated.
    pub fn check_rows(&self, batches: &[RecordBatch]) -> Result<()> {
        check_batches(
            self.name(),
            self.schema()?.as_ref(),
            &self.check_constraints()?,
            batches,
        )
    }

    /// Whether a row of this version violates `constraint` (false or NULL).
    pub(crate) async fn violates(&self, constraint: &CheckConstraint) -> Result<bool> {
        let failed = |e: DataFusionError| TableError::operation("ALTER TABLE", self.name(), e.into());
        let ctx = SessionContext::new();
        let provider = self.table_provider(&Arc::new(ctx.state())).await?;
        let frame = ctx.read_table(provider).map_err(failed)?;
        let df_schema = frame.schema().clone();
        let check = plan_check(self.name(), constraint, &df_schema, &ctx.state())?;
        let violating = frame
            .filter(Expr::Not(Box::new(check.clone())).or(check.is_null()))
            .and_then(|f| f.limit(0, Some(1)))
            .map_err(failed)?
            .count()
            .await
            .map_err(failed)?;
        Ok(violating > 0)
    }

    /// The checks of an operation whose new rows a plan computes: NOT NULL
    /// columns and CHECK constraints, planned against the table's columns
    /// (unqualified). See [`Enforcer`].
    pub(crate) fn planned_checks(&self) -> Result<Vec<(Violation, Expr)>> {
        let schema = self.schema()?;
        let mut checks: Vec<(Violation, Expr)> = schema
            .fields()
            .iter()
            .filter(|f| !f.is_nullable())
            .map(|f| {
                (
                    Violation::NotNull(f.name().clone()),
                    Expr::Column(Column::new_unqualified(f.name())).is_not_null(),
                )
            })
            .collect();
        let constraints = self.check_constraints()?;
        if !constraints.is_empty() {
            let df_schema =
                DFSchema::try_from(schema.as_ref().clone()).map_err(|e| TableError::InvalidData {
                    table: self.name().to_string(),
                    reason: e.to_string(),
                })?;
            let session = session();
            for constraint in &constraints {
                let expr = plan_check(self.name(), constraint, &df_schema, &session)?;
                checks.push((Violation::Check(constraint.name.clone()), expr));
            }
        }
        Ok(checks)
    }
}

/// `check` with each table column `c` replaced by `value(c)` (the new value
/// an UPDATE or MERGE clause gives it).
pub(crate) fn substitute(check: Expr, value: &dyn Fn(&str) -> Expr) -> Expr {
    check
        .transform(|expr| match expr {
            Expr::Column(column) if column.relation.is_none() => Ok(Transformed::yes(value(&column.name))),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
        // The closure never fails.
        .unwrap_or_else(|e| Expr::Literal(ScalarValue::Utf8(Some(e.to_string())), None))
}

/// Which check a plan's rows violated, filled by [`Enforcer`]'s function.
pub(crate) type ViolationSlot = Arc<Mutex<Option<Violation>>>;

/// Wraps an expression of an operation's new rows so that, when the rows
/// are computed, each check is evaluated and the first one violated is
/// recorded (then the plan fails). The function passes its first argument
/// through: `silt_enforce(value, check_1, …, check_n)`.
#[derive(Debug, Clone)]
pub(crate) struct Enforcer {
    slot: ViolationSlot,
}

impl Enforcer {
    pub(crate) fn new() -> Self {
        Self {
            slot: Arc::new(Mutex::new(None)),
        }
    }

    /// `value`, evaluated only after `checks` held for its rows.
    pub(crate) fn wrap(&self, value: Expr, checks: Vec<(Violation, Expr)>) -> Expr {
        if checks.is_empty() {
            return value;
        }
        let (labels, exprs): (Vec<Violation>, Vec<Expr>) = checks.into_iter().unzip();
        let udf = ScalarUDF::new_from_impl(EnforceUdf {
            labels,
            slot: self.slot.clone(),
            signature: Signature::variadic_any(Volatility::Volatile),
        });
        let mut args = vec![value];
        args.extend(exprs);
        udf.call(args)
    }

    /// The violation recorded while the plan ran, if any.
    pub(crate) fn violation(&self) -> Option<Violation> {
        self.slot.lock().ok().and_then(|slot| slot.clone())
    }

    /// `error` of operation `op`, replaced by a named violation when one
    /// was recorded.
    pub(crate) fn classify(
        &self,
        op: &'static str,
        table: &str,
        error: deltalake::DeltaTableError,
    ) -> TableError {
        match self.violation() {
            Some(violation) => TableError::ConstraintViolated {
                table: table.to_string(),
                violation,
            },
            None => TableError::operation(op, table, error),
        }
    }
}

#[derive(Debug)]
struct EnforceUdf {
    labels: Vec<Violation>,
    slot: ViolationSlot,
    signature: Signature,
}

impl PartialEq for EnforceUdf {
    fn eq(&self, other: &Self) -> bool {
        self.labels == other.labels && Arc::ptr_eq(&self.slot, &other.slot)
    }
}

impl Eq for EnforceUdf {}

impl std::hash::Hash for EnforceUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for label in &self.labels {
            label.to_string().hash(state);
        }
    }
}

impl ScalarUDFImpl for EnforceUdf {
    fn name(&self) -> &str {
        "silt_enforce"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> deltalake::datafusion::error::Result<DataType> {
        arg_types
            .first()
            .cloned()
            .ok_or_else(|| DataFusionError::Plan("silt_enforce needs a value".to_string()))
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> deltalake::datafusion::error::Result<ColumnarValue> {
        let mut values = args.args.into_iter();
        let Some(value) = values.next() else {
            return Err(DataFusionError::Plan("silt_enforce needs a value".to_string()));
        };
        if args.number_rows > 0 {
            for (label, check) in self.labels.iter().zip(values) {
                if !holds(&check) {
                    if let Ok(mut slot) = self.slot.lock()
                        && slot.is_none()
                    {
                        *slot = Some(label.clone());
                    }
                    return Err(DataFusionError::Execution(format!("a row violates {label}")));
                }
            }
        }
        Ok(value)
    }
}

/// Refuses `batches` (of `schema`) when a row has a NULL in a NOT NULL
/// column of `schema` or violates one of `constraints`, naming the first.
pub(crate) fn check_batches(
    table: &str,
    schema: &ArrowSchema,
    constraints: &[CheckConstraint],
    batches: &[RecordBatch],
) -> Result<()> {
    let violated = |violation: Violation| TableError::ConstraintViolated {
        table: table.to_string(),
        violation,
    };
    for batch in batches {
        for field in schema.fields().iter().filter(|f| !f.is_nullable()) {
            if let Some(column) = batch.column_by_name(field.name())
                && column.null_count() > 0
            {
                return Err(violated(Violation::NotNull(field.name().clone())));
            }
        }
    }
    if constraints.is_empty() {
        return Ok(());
    }
    let session = session();
    let mut planned: Option<(Arc<ArrowSchema>, Vec<_>)> = None;
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        if planned.as_ref().is_none_or(|(s, _)| *s != batch.schema()) {
            let df_schema =
                DFSchema::try_from(batch.schema().as_ref().clone()).map_err(|e| TableError::InvalidData {
                    table: table.to_string(),
                    reason: e.to_string(),
                })?;
            let mut checks = Vec::with_capacity(constraints.len());
            for constraint in constraints {
                let expr = plan_check(table, constraint, &df_schema, &session)?;
                let physical = session.create_physical_expr(expr, &df_schema).map_err(|e| {
                    TableError::InvalidDefinition {
                        table: table.to_string(),
                        reason: format!("CHECK constraint '{}': {e}", constraint.name),
                    }
                })?;
                checks.push((constraint.name.clone(), physical));
            }
            planned = Some((batch.schema(), checks));
        }
        let Some((_, checks)) = &planned else { continue };
        for (name, check) in checks {
            let passes = check.evaluate(batch).map(|v| holds(&v)).unwrap_or(false);
            if !passes {
                return Err(violated(Violation::Check(name.clone())));
            }
        }
    }
    Ok(())
}
