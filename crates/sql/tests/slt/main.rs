//! Runs every `tests/slt/*.slt` file against a fresh warehouse with the real
//! engine. One feature per file; see DataFusion's sqllogictest for the format.
//!
//! Column types are checked, with DataFusion's own slt letters: `I`
//! integer, `R` float or decimal, `T` text, `B` boolean, `D` date or time,
//! `P` timestamp, `?` anything else (lists, structs, binary, intervals).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use silt_sql::{Engine, SqlError};
use silt_table::Warehouse;
use sqllogictest::{ColumnType, DBOutput, Runner};

/// A result column's type as an slt letter (DataFusion's convention).
#[derive(Debug, Clone, PartialEq, Eq)]
enum SltType {
    Integer,
    Float,
    Text,
    Boolean,
    DateTime,
    Timestamp,
    Other,
}

impl ColumnType for SltType {
    fn from_char(value: char) -> Option<Self> {
        // An unknown letter is a typo in the .slt file, not "any".
        Some(match value {
            'I' => SltType::Integer,
            'R' => SltType::Float,
            'T' => SltType::Text,
            'B' => SltType::Boolean,
            'D' => SltType::DateTime,
            'P' => SltType::Timestamp,
            '?' => SltType::Other,
            _ => return None,
        })
    }

    fn to_char(&self) -> char {
        match self {
            SltType::Integer => 'I',
            SltType::Float => 'R',
            SltType::Text => 'T',
            SltType::Boolean => 'B',
            SltType::DateTime => 'D',
            SltType::Timestamp => 'P',
            SltType::Other => '?',
        }
    }
}

impl SltType {
    fn of(data_type: &DataType) -> SltType {
        match data_type {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => SltType::Integer,
            DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal32(_, _)
            | DataType::Decimal64(_, _)
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _) => SltType::Float,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SltType::Text,
            DataType::Dictionary(_, value) => SltType::of(value),
            DataType::Boolean => SltType::Boolean,
            DataType::Date32 | DataType::Date64 | DataType::Time32(_) | DataType::Time64(_) => {
                SltType::DateTime
            }
            DataType::Timestamp(_, _) => SltType::Timestamp,
            _ => SltType::Other,
        }
    }
}

struct SiltDb {
    engine: Engine,
}

#[async_trait]
impl sqllogictest::AsyncDB for SiltDb {
    type Error = SqlError;
    type ColumnType = SltType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<SltType>, SqlError> {
        let mut outputs = self.engine.execute(sql).await?;
        let Some(output) = outputs.pop() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &output.batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SqlError::Execution(e.to_string()))?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| match f.value(row).to_string() {
                            s if s.is_empty() => "(empty)".to_string(),
                            s => s,
                        })
                        .collect(),
                );
            }
        }
        let types = output
            .schema
            .fields()
            .iter()
            .map(|f| SltType::of(f.data_type()))
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    async fn sleep(duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "slt"));
    files.sort();
    files
}

/// `query T` over an integer column, and `query I` over text, must fail;
/// the same queries with the right letters must pass.
async fn wrong_type_letter_fails() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let warehouse = Warehouse::open(&dir.path().to_string_lossy()).map_err(|e| e.to_string())?;
    let run = |script: &'static str| {
        let warehouse = warehouse.clone();
        async move {
            let mut runner = Runner::new(move || {
                let engine = Engine::new(warehouse.clone());
                async move { Ok::<_, SqlError>(SiltDb { engine }) }
            });
            runner.with_column_validator(sqllogictest::strict_column_validator);
            runner.run_script_async(script).await
        }
    };
    let right = "query ITRB\nSELECT 1, 'a', 1.5, true\n----\n1 a 1.5 true\n";
    run(right)
        .await
        .map_err(|e| format!("the right letters failed: {}", e.display(true)))?;
    for wrong in [
        "query T\nSELECT 1\n----\n1\n",
        "query I\nSELECT 'a'\n----\na\n",
        "query II\nSELECT 1, 1.5\n----\n1 1.5\n",
    ] {
        if run(wrong).await.is_ok() {
            return Err(format!("a wrong column type letter passed: {wrong:?}"));
        }
    }
    Ok(())
}

/// `SLT_FIX_TYPES=1`: runs `file` record by record and rewrites the type
/// letters of every `query` line whose columns have other types (results
/// are left alone: they still have to be checked by a person).
async fn fix_types(file: &Path) -> Result<usize, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let warehouse = Warehouse::open(&dir.path().to_string_lossy()).map_err(|e| e.to_string())?;
    let mut runner = Runner::new(move || {
        let engine = Engine::new(warehouse.clone());
        async move { Ok::<_, SqlError>(SiltDb { engine }) }
    });
    runner.with_column_validator(sqllogictest::strict_column_validator);
    let records = sqllogictest::parse_file::<SltType>(file).map_err(|e| e.to_string())?;
    let mut fixes = Vec::new();
    for record in records {
        if let Err(e) = runner.run_async(record).await
            && let sqllogictest::TestErrorKind::QueryResultColumnsMismatch { expected, actual, .. } = e.kind()
        {
            fixes.push((e.location().line() as usize, expected, actual));
        }
    }
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (line, expected, actual) in &fixes {
        let Some(text) = line.checked_sub(1).and_then(|i| lines.get_mut(i)) else {
            continue;
        };
        *text = text.replacen(&format!("query {expected}"), &format!("query {actual}"), 1);
    }
    std::fs::write(file, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
    Ok(fixes.len())
}

fn main() -> ExitCode {
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut passed, mut failed) = (0, 0);
    // The runner must catch a wrong type letter, or every `query` line's
    // letters are unchecked decoration again.
    if filter.is_none() {
        match runtime.block_on(wrong_type_letter_fails()) {
            Ok(()) => passed += 1,
            Err(e) => {
                println!("slt self-check ... FAILED\n{e}");
                failed += 1;
            }
        }
    }
    for file in slt_files() {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        if std::env::var_os("SLT_FIX_TYPES").is_some() {
            match runtime.block_on(fix_types(&file)) {
                Ok(n) => println!("slt {name}: {n} type letters rewritten"),
                Err(e) => println!("slt {name}: cannot fix types: {e}"),
            }
        }
        let result = runtime.block_on(async {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let warehouse = Warehouse::open(&dir.path().to_string_lossy()).map_err(|e| e.to_string())?;
            let mut runner = Runner::new(move || {
                let engine = Engine::new(warehouse.clone());
                async move { Ok::<_, SqlError>(SiltDb { engine }) }
            });
            runner.with_column_validator(sqllogictest::strict_column_validator);
            runner
                .run_file_async(&file)
                .await
                .map_err(|e| e.display(true).to_string())
        });
        match result {
            Ok(()) => {
                println!("slt {name} ... ok");
                passed += 1;
            }
            Err(e) => {
                println!("slt {name} ... FAILED\n{e}");
                failed += 1;
            }
        }
    }
    println!("slt: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
