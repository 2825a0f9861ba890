//! Erased subjects stay erased: rows whose subject column holds a subject
//! that an erasure request covers are not stored by the writes of this
//! process, from the moment the request is accepted.
//!
//! silt-table knows no subjects. silt-erasure registers a [`Suppressor`] for
//! its warehouse ([`register_suppressor`]) that answers from keyed hashes
//! (the ledger's), so no subject value is ever held for this. Every write of
//! batches ([`crate::Table::write`]), every INSERT of a plan and the source
//! of every MERGE and CDC apply pass through it; dropped rows are counted
//! ([`Suppressor::dropped`]) and never written anywhere else (not to dead
//! letters, which would keep the value).

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, RwLock, Weak};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::DataType;
use deltalake::datafusion::common::{Column, Result as DfResult};
use deltalake::datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use deltalake::datafusion::prelude::DataFrame;

use crate::error::{Result, TableError};

/// Decides which subject values must not be stored (see the module docs).
pub trait Suppressor: Send + Sync {
    /// Whether any erased subject applies to `table`; when not, its writes
    /// skip every check.
    fn covers(&self, table: &str) -> bool;
    /// Whether `value` (a subject column's cell as text) is an erased
    /// subject of `table`.
    fn is_suppressed(&self, table: &str, value: &str) -> bool;
    /// `rows` rows of `table` were not stored.
    fn dropped(&self, _table: &str, _rows: u64) {}
}

type Registry = Vec<(String, Weak<dyn Suppressor>)>;

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(Default::default);

/// Makes `suppressor` answer for every table under `warehouse_root` (a URL)
/// while it is alive: the registry holds it weakly, so dropping the owner
/// ends suppression. A second registration for the same root replaces the
/// first.
pub fn register_suppressor(warehouse_root: &str, suppressor: &Arc<dyn Suppressor>) {
    let root = with_slash(warehouse_root);
    let mut registry = REGISTRY.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.retain(|(r, s)| *r != root && s.strong_count() > 0);
    registry.push((root, Arc::downgrade(suppressor)));
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// The suppressor of the table at `location`, when one covers its name.
fn suppressor_of(location: &str, table: &str) -> Option<Arc<dyn Suppressor>> {
    let location = with_slash(location);
    let registry = REGISTRY.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    registry
        .iter()
        .filter(|(root, _)| location.starts_with(root.as_str()))
        .max_by_key(|(root, _)| root.len())
        .and_then(|(_, s)| s.upgrade())
        .filter(|s| s.covers(table))
}

/// What a write of `table` checks: the suppressor and the subject columns.
pub(crate) struct Check {
    suppressor: Arc<dyn Suppressor>,
    table: String,
    columns: Vec<String>,
}

impl Check {
    /// The check for `table`, or None when nothing can be suppressed there
    /// (no suppressor, none of its requests covers the table, or the table
    /// names no subject columns).
    pub(crate) fn of(table: &crate::Table) -> Result<Option<Check>> {
        Self::with_properties(table, &table.properties()?)
    }

    /// The check for `table` once its properties are `properties` (CREATE
    /// OR REPLACE: the new definition names the subject columns).
    pub(crate) fn with_properties(
        table: &crate::Table,
        properties: &std::collections::HashMap<String, String>,
    ) -> Result<Option<Check>> {
        let Some(suppressor) = suppressor_of(table.location().as_str(), table.name()) else {
            return Ok(None);
        };
        let columns = crate::subject_columns(properties);
        if columns.is_empty() {
            return Ok(None);
        }
        Ok(Some(Check {
            suppressor,
            table: table.name().to_string(),
            columns,
        }))
    }

    /// Which rows of `batch` hold an erased subject in any subject column.
    fn mask(
        &self,
        batch: &RecordBatch,
    ) -> std::result::Result<Option<BooleanArray>, arrow::error::ArrowError> {
        let mut hit: Option<Vec<bool>> = None;
        for column in &self.columns {
            let Some(array) = batch.column_by_name(column) else {
                continue;
            };
            let marks = self.marks(array)?;
            hit = Some(match hit {
                None => marks,
                Some(mut acc) => {
                    acc.iter_mut().zip(marks).for_each(|(a, m)| *a |= m);
                    acc
                }
            });
        }
        Ok(hit.filter(|h| h.iter().any(|b| *b)).map(BooleanArray::from))
    }

    fn marks(&self, array: &ArrayRef) -> std::result::Result<Vec<bool>, arrow::error::ArrowError> {
        text_marks(array, &|v| self.suppressor.is_suppressed(&self.table, v))
    }

    /// `batches` without the rows of erased subjects.
    pub(crate) fn batches(&self, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
        let mut dropped = 0u64;
        let mut kept = Vec::with_capacity(batches.len());
        for batch in batches {
            let mask = self.mask(&batch).map_err(|e| self.error(e))?;
            match mask {
                None => kept.push(batch),
                Some(mask) => {
                    dropped += mask.true_count() as u64;
                    let keep = arrow::compute::not(&mask).map_err(|e| self.error(e))?;
                    kept.push(filter_record_batch(&batch, &keep).map_err(|e| self.error(e))?);
                }
            }
        }
        self.report(dropped);
        Ok(kept)
    }

    fn report(&self, dropped: u64) {
        if dropped > 0 {
            // The table and a count only: never a value.
            tracing::info!(table = %self.table, rows = dropped, "rows of erased subjects not stored");
            self.suppressor.dropped(&self.table, dropped);
        }
    }

    fn error(&self, e: arrow::error::ArrowError) -> TableError {
        TableError::InvalidData {
            table: self.table.clone(),
            reason: format!("cannot check the subject columns for erased subjects: {e}"),
        }
    }

    /// `NOT silt_erased_subject(c1, c2, …)` over the subject columns that
    /// `has` says the input has; None when it has none of them.
    ///
    /// With `counting`, each row it marks is reported as dropped: right for
    /// an INSERT's plan, which runs once; a MERGE or CDC source may be read
    /// more than once, so its rows are dropped without being counted.
    fn keep_expr(&self, has: impl Fn(&str) -> bool, counting: bool) -> Option<Expr> {
        let args: Vec<Expr> = self
            .columns
            .iter()
            .filter(|c| has(c))
            .map(|c| Expr::Column(Column::new_unqualified(c)))
            .collect();
        if args.is_empty() {
            return None;
        }
        let udf = ScalarUDF::new_from_impl(ErasedSubject {
            check: Arc::new(Check {
                suppressor: self.suppressor.clone(),
                table: self.table.clone(),
                columns: self.columns.clone(),
            }),
            signature: Signature::variadic_any(Volatility::Volatile),
            counting,
        });
        Some(Expr::Not(Box::new(udf.call(args))))
    }

    /// `plan` without the rows of erased subjects (INSERT … SELECT/VALUES;
    /// the plan's columns are the table's).
    pub(crate) fn plan(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        let names: Vec<String> = plan.schema().fields().iter().map(|f| f.name().clone()).collect();
        let Some(keep) = self.keep_expr(|c| names.iter().any(|n| n == c), true) else {
            return Ok(plan);
        };
        LogicalPlanBuilder::from(plan)
            .filter(keep)
            .and_then(|b| b.build())
            .map_err(|e| TableError::InvalidData {
                table: self.table.clone(),
                reason: e.to_string(),
            })
    }

    /// `source` without the rows of erased subjects, judged by its columns
    /// named like the table's subject columns (MERGE and CDC sources).
    pub(crate) fn frame(&self, source: DataFrame) -> Result<DataFrame> {
        let names: Vec<String> = source
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let Some(keep) = self.keep_expr(|c| names.iter().any(|n| n == c), false) else {
            return Ok(source);
        };
        source.filter(keep).map_err(|e| TableError::InvalidData {
            table: self.table.clone(),
            reason: e.to_string(),
        })
    }
}

/// For each cell of `array`, whether its text form makes `hit` true (a
/// null never does): string columns as they are, a dictionary's distinct
/// values once, anything else (numbers, dates) cast to text. The one
/// reading of "a cell as text" that suppression and the erasure's matcher
/// share.
pub fn text_marks(
    array: &ArrayRef,
    hit: &dyn Fn(&str) -> bool,
) -> std::result::Result<Vec<bool>, arrow::error::ArrowError> {
    let mark = |v: Option<&str>| v.is_some_and(hit);
    Ok(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().map(mark).collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().map(mark).collect(),
        DataType::Utf8View => array.as_string_view().iter().map(mark).collect(),
        DataType::Dictionary(_, _) => {
            let dictionary = array.as_any_dictionary();
            let values = text_marks(dictionary.values(), hit)?;
            let keys = dictionary.normalized_keys();
            (0..array.len())
                .map(|i| array.is_valid(i) && values[keys[i]])
                .collect()
        }
        _ => {
            let text = cast(array, &DataType::Utf8)?;
            text.as_string::<i32>().iter().map(mark).collect()
        }
    })
}

/// `silt_erased_subject(c1, …)`: true where any argument is an erased
/// subject of the table. Its name, not a value,
/// is what a plan or log shows.
struct ErasedSubject {
    check: Arc<Check>,
    signature: Signature,
    /// Report the rows it marks (see [`Check::keep_expr`]).
    counting: bool,
}

impl std::fmt::Debug for ErasedSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("silt_erased_subject")
    }
}

impl PartialEq for ErasedSubject {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.check, &other.check)
    }
}

impl Eq for ErasedSubject {}

impl Hash for ErasedSubject {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.check).hash(state);
    }
}

impl ScalarUDFImpl for ErasedSubject {
    fn name(&self) -> &str {
        "silt_erased_subject"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut hit = vec![false; args.number_rows];
        for array in &arrays {
            let marks = self.check.marks(array)?;
            hit.iter_mut().zip(marks).for_each(|(h, m)| *h |= m);
        }
        if self.counting {
            self.check.report(hit.iter().filter(|h| **h).count() as u64);
        }
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(hit))))
    }
}
