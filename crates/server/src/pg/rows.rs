//! Answers on the wire: Arrow batches become DataRows through `arrow-pg`
//! (text or binary per column, as the client asked), and statements that
//! change something answer the command tag Postgres would (`INSERT 0 n`,
//! `UPDATE n`, `DELETE n`, `MERGE n`, `CREATE TABLE`).

use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use silt_table::ErrorKind;

use crate::error::ApiError;
use futures::{StreamExt, stream};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use super::error::wire;
use crate::sql_service::Answer;

/// What a statement is, by its first words: what its answer looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// INSERT, UPDATE, DELETE, MERGE: a tag with the row count.
    Change(&'static str),
    /// CREATE/DROP/ALTER …: a tag only.
    Definition(String),
    /// Everything else: rows.
    Rows,
}

/// The leading keywords of `sql`, past comments and brackets.
fn leading_words(sql: &str, count: usize) -> Vec<String> {
    let mut rest = sql;
    loop {
        let trimmed = rest.trim_start().trim_start_matches('(');
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            rest = trimmed;
            break;
        }
    }
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .take(count)
        .map(str::to_ascii_uppercase)
        .collect()
}

impl Kind {
    pub(crate) fn of(sql: &str) -> Self {
        let words = leading_words(sql, 4);
        let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
        match word(0) {
            "INSERT" => Kind::Change("INSERT"),
            "UPDATE" => Kind::Change("UPDATE"),
            "DELETE" => Kind::Change("DELETE"),
            "MERGE" => Kind::Change("MERGE"),
            "CREATE" | "DROP" | "ALTER" => {
                let object = if word(1) == "OR" && word(2) == "REPLACE" {
                    word(3)
                } else {
                    word(1)
                };
                let object = match object {
                    "EXTERNAL" | "TEMPORARY" | "TEMP" => "TABLE",
                    "" => "TABLE",
                    other => other,
                };
                Kind::Definition(format!("{} {object}", word(0)))
            }
            _ => Kind::Rows,
        }
    }
}

/// The column descriptions of `schema`, each in the format the client asked.
pub(crate) fn fields(schema: &Schema, format: &Format) -> PgWireResult<Arc<Vec<FieldInfo>>> {
    Ok(Arc::new(arrow_pg::datatypes::arrow_schema_to_pg_fields(
        schema, format, None,
    )?))
}

/// The change counts in a change statement's one-row answer.
fn count(batch: Option<&RecordBatch>, column: &str) -> usize {
    batch
        .and_then(|b| b.column_by_name(column))
        .and_then(|c| {
            c.as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| (!a.is_empty()).then(|| a.value(0)))
        })
        .flatten()
        .map_or(0, |n| usize::try_from(n).unwrap_or(0))
}

/// The command tag of a change statement.
pub(crate) fn change_tag(command: &'static str, batch: Option<&RecordBatch>) -> Tag {
    match command {
        "INSERT" => Tag::new("INSERT")
            .with_oid(0)
            .with_rows(count(batch, "num_inserted_rows")),
        "UPDATE" => Tag::new("UPDATE").with_rows(count(batch, "num_updated_rows")),
        "DELETE" => Tag::new("DELETE").with_rows(count(batch, "num_deleted_rows")),
        other => Tag::new(other).with_rows(count(batch, "num_affected_rows")),
    }
}

/// The columns a described statement promised: a column whose type was
/// unknown when it was planned (`SELECT $1`) is sent as text.
pub(crate) fn promised(described: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        described
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Null => Field::new(f.name(), DataType::Utf8, true),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    ))
}

/// `batch` with the column types of `target` (the ones a Describe promised
/// before the parameters' values were known).
fn conform(batch: RecordBatch, target: &SchemaRef) -> PgWireResult<RecordBatch> {
    if batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type())
        .eq(target.fields().iter().map(|f| f.data_type()))
    {
        return Ok(batch);
    }
    if batch.num_columns() != target.fields().len() {
        return Err(wire(ApiError::new(
            ErrorKind::Internal,
            "the statement's columns changed between Describe and Execute; prepare it again",
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| wire(ApiError::new(ErrorKind::Internal, e.to_string())))?;
    RecordBatch::try_new(target.clone(), columns)
        .map_err(|e| wire(ApiError::new(ErrorKind::Internal, e.to_string())))
}

/// Streams the rows of `answer` (first batch, then the rest as they come;
/// an error after the first — the timeout's — ends the answer with it),
/// in the column types of `target` when a Describe already promised them.
pub(crate) fn stream_rows(
    answer: Answer,
    format: &Format,
    target: Option<SchemaRef>,
) -> PgWireResult<Response> {
    let schema = target.clone().unwrap_or_else(|| answer.schema.clone());
    let fields = fields(&schema, format)?;
    let Answer { first, rest, .. } = answer;
    let encode = {
        let fields = fields.clone();
        move |batch: RecordBatch| -> Vec<PgWireResult<DataRow>> {
            let batch = match &target {
                Some(target) => match conform(batch, target) {
                    Ok(batch) => batch,
                    Err(error) => return vec![Err(error)],
                },
                None => batch,
            };
            arrow_pg::datatypes::encode_recordbatch(fields.clone(), batch).collect()
        }
    };
    let head = stream::iter(first.map(&encode).unwrap_or_default());
    let tail = rest.flat_map(move |item| match item {
        Ok(batch) => stream::iter(encode(batch)),
        Err(error) => stream::iter(vec![Err(wire(error))]),
    });
    Ok(Response::Query(QueryResponse::new(fields, head.chain(tail))))
}

/// Rows computed here (catalog answers).
pub(crate) fn local_rows(batch: RecordBatch, format: &Format) -> PgWireResult<Response> {
    let fields = fields(batch.schema().as_ref(), format)?;
    let rows: Vec<PgWireResult<DataRow>> =
        arrow_pg::datatypes::encode_recordbatch(fields.clone(), batch).collect();
    Ok(Response::Query(QueryResponse::new(fields, stream::iter(rows))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_leading_words() {
        assert_eq!(Kind::of("  insert into t values (1)"), Kind::Change("INSERT"));
        assert_eq!(Kind::of("-- c\nMERGE INTO t USING s ON …"), Kind::Change("MERGE"));
        assert_eq!(
            Kind::of("CREATE OR REPLACE TABLE t (a INT)"),
            Kind::Definition("CREATE TABLE".into())
        );
        assert_eq!(Kind::of("drop view v"), Kind::Definition("DROP VIEW".into()));
        assert_eq!(Kind::of("(SELECT 1)"), Kind::Rows);
        assert_eq!(Kind::of("DESCRIBE HISTORY t"), Kind::Rows);
    }
}
