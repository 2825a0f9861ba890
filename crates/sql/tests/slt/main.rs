//! Runs every `tests/slt/*.slt` file against a fresh warehouse with the real
//! engine. One feature per file; see DataFusion's sqllogictest for the format.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use silt_sql::{Engine, SqlError};
use silt_table::Warehouse;
use sqllogictest::{DBOutput, DefaultColumnType, Runner};

struct SiltDb {
    engine: Engine,
}

#[async_trait]
impl sqllogictest::AsyncDB for SiltDb {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
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
        let types = vec![DefaultColumnType::Any; output.schema.fields().len()];
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
    for file in slt_files() {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let result = runtime.block_on(async {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let warehouse = Warehouse::open(&dir.path().to_string_lossy()).map_err(|e| e.to_string())?;
            let mut runner = Runner::new(move || {
                let engine = Engine::new(warehouse.clone());
                async move { Ok::<_, SqlError>(SiltDb { engine }) }
            });
            runner.with_column_validator(|_, _| true);
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
