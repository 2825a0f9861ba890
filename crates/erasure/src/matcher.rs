//! The value-free predicate of the batched delete: a DataFusion scalar
//! function that closes over the subjects held in memory.
//!
//! deltalake writes a DELETE's predicate as SQL text into the commit's
//! `commitInfo.operationParameters`, and commit metadata cannot replace it. A
//! predicate like `email IN ('alice@…')` would put the subjects into the log;
//! `silt_erasure_match(email)` puts only the function's name there. One call
//! tests a whole batch of rows against every subject (a hash-set lookup for
//! subject columns, one Aho-Corasick pass for dead-letter text), so 10,000
//! subjects cost one rewrite, as one does.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use arrow::array::{ArrayRef, BooleanArray};
use arrow::datatypes::DataType;
use datafusion::common::{Column, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The subjects of one erasure, held in memory only.
pub(crate) struct Subjects {
    // aHash: one lookup per cell of every file read, where SipHash's
    // flooding resistance buys nothing (the keys are the operator's).
    values: HashSet<String, ahash::RandomState>,
    sorted: Vec<String>,
    finder: Option<AhoCorasick>,
}

impl Subjects {
    /// Builds the set and the substring automaton of `values`.
    pub(crate) fn new(values: &[String]) -> Self {
        let values: HashSet<String, ahash::RandomState> =
            values.iter().filter(|v| !v.is_empty()).cloned().collect();
        let finder = AhoCorasick::new(values.iter()).ok();
        let mut sorted: Vec<String> = values.iter().cloned().collect();
        sorted.sort_unstable();
        Self {
            values,
            sorted,
            finder,
        }
    }

    /// The subjects, sorted (for range checks against column statistics).
    pub(crate) fn sorted(&self) -> &[String] {
        &self.sorted
    }

    /// Whether `text` is one of the subjects.
    pub(crate) fn equals(&self, text: &str) -> bool {
        self.values.contains(text)
    }

    /// Whether `text` contains any subject.
    pub(crate) fn contained_in(&self, text: &[u8]) -> bool {
        self.finder.as_ref().is_some_and(|f| f.is_match(text))
    }

    /// Whether `text` matches per `mode`: is a subject, or contains one.
    pub(crate) fn matches(&self, mode: MatchMode, text: &str) -> bool {
        match mode {
            MatchMode::Equals => self.equals(text),
            MatchMode::Contains => self.contained_in(text.as_bytes()),
        }
    }

    /// How many times any subject occurs in `bytes`.
    pub(crate) fn count_in(&self, bytes: &[u8]) -> u64 {
        self.finder
            .as_ref()
            .map_or(0, |f| f.find_overlapping_iter(bytes).count() as u64)
    }
}

// Never print the subjects, whatever logs the expression.
impl std::fmt::Debug for Subjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subjects({} values)", self.values.len())
    }
}

/// How a cell is compared with the subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MatchMode {
    /// The whole cell (cast to text) equals a subject: subject columns.
    Equals,
    /// The cell's text contains a subject: the dead letters' `raw` JSON.
    Contains,
}

#[derive(Debug)]
struct SubjectMatch {
    name: &'static str,
    mode: MatchMode,
    subjects: Arc<Subjects>,
    signature: Signature,
}

impl PartialEq for SubjectMatch {
    fn eq(&self, other: &Self) -> bool {
        self.mode == other.mode && Arc::ptr_eq(&self.subjects, &other.subjects)
    }
}

impl Eq for SubjectMatch {}

impl Hash for SubjectMatch {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.mode.hash(state);
        (Arc::as_ptr(&self.subjects) as usize).hash(state);
    }
}

impl ScalarUDFImpl for SubjectMatch {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(input) = arrays.first() else {
            return Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(vec![
                false;
                args.number_rows
            ]))));
        };
        Ok(ColumnarValue::Array(Arc::new(self.evaluate(input)?)))
    }
}

impl SubjectMatch {
    fn evaluate(&self, input: &ArrayRef) -> DfResult<BooleanArray> {
        match_array(&self.subjects, self.mode, input)
    }
}

/// Which cells of `input` match the subjects, per `mode`. Nulls never match,
/// so the result has no nulls (a null would make deltalake keep or drop the
/// row by its own rules).
pub(crate) fn match_array(subjects: &Subjects, mode: MatchMode, input: &ArrayRef) -> DfResult<BooleanArray> {
    let marks = silt_table::text_marks(input, &|value: &str| subjects.matches(mode, value))?;
    Ok(BooleanArray::from(marks))
}

/// `silt_erasure_match(c1) OR silt_erasure_match(c2) …` over `columns`.
pub(crate) fn predicate(subjects: &Arc<Subjects>, columns: &[String], mode: MatchMode) -> Option<Expr> {
    let name = match mode {
        MatchMode::Equals => "silt_erasure_match",
        MatchMode::Contains => "silt_erasure_contains",
    };
    let udf = ScalarUDF::new_from_impl(SubjectMatch {
        name,
        mode,
        subjects: subjects.clone(),
        signature: Signature::any(1, Volatility::Immutable),
    });
    columns
        .iter()
        .map(|column| udf.call(vec![Expr::Column(Column::new_unqualified(column))]))
        .reduce(Expr::or)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn predicate_text_names_the_function_not_the_values() {
        let subjects = Arc::new(Subjects::new(&["alice@example.com".to_string()]));
        let expr = predicate(&subjects, &["email".into(), "alt".into()], MatchMode::Equals).expect("expr");
        let text = deltalake::delta_datafusion::expr::fmt_expr_to_sql(&expr).expect("sql");
        assert_eq!(text, "silt_erasure_match(email) OR silt_erasure_match(alt)");
        assert!(!format!("{expr:?}").contains("alice"));
    }

    #[test]
    fn matches_equal_cells_and_contained_text() {
        let subjects = Arc::new(Subjects::new(&["alice".to_string(), "42".to_string()]));
        let equals = SubjectMatch {
            name: "m",
            mode: MatchMode::Equals,
            subjects: subjects.clone(),
            signature: Signature::any(1, Volatility::Immutable),
        };
        let strings: ArrayRef = Arc::new(StringArray::from(vec![Some("alice"), Some("alicex"), None]));
        let got = equals.evaluate(&strings).expect("eval");
        assert_eq!(got, BooleanArray::from(vec![true, false, false]));
        let numbers: ArrayRef = Arc::new(Int64Array::from(vec![42, 7]));
        assert_eq!(
            equals.evaluate(&numbers).expect("eval"),
            BooleanArray::from(vec![true, false])
        );
        let contains = SubjectMatch {
            mode: MatchMode::Contains,
            ..equals
        };
        assert_eq!(
            contains.evaluate(&strings).expect("eval"),
            BooleanArray::from(vec![true, true, false])
        );
        assert_eq!(subjects.count_in(b"alice and alice, 42"), 3);
    }

    #[test]
    fn matches_dictionary_arrays_by_key() {
        use arrow::array::DictionaryArray;
        use arrow::datatypes::Int32Type;
        let subjects = Subjects::new(&["alice".to_string()]);
        let dictionary: DictionaryArray<Int32Type> =
            vec![Some("bob"), Some("alice"), None, Some("alice"), Some("carol")]
                .into_iter()
                .collect();
        let input: ArrayRef = Arc::new(dictionary);
        assert_eq!(
            match_array(&subjects, MatchMode::Equals, &input).expect("eval"),
            BooleanArray::from(vec![false, true, false, true, false])
        );
    }
}
