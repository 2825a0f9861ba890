//! CREATE TABLE (with columns, or AS SELECT) and DROP TABLE, translated to silt-table calls.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::sql::sqlparser::ast::{
    ColumnDef, ColumnOption, CreateTable, CreateTableOptions, DataType as SqlType, ExactNumberInfo, Expr,
    HiveDistributionStyle, ObjectName, Query, SqlOption, Value,
};
use silt_table::{CommitOptions, TableError, TableSpec, Warehouse, WriteMode};

use crate::error::{Result, SqlError};

/// The table name of a (possibly qualified) object name; qualifiers must be
/// absent or the default ones.
pub(crate) fn table_name(name: &ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| {
            if i.quote_style.is_some() {
                i.value.clone()
            } else {
                i.value.to_lowercase()
            }
        })
        .collect();
    let table = match parts.as_slice() {
        [table] => table.clone(),
        [schema, table] if schema == "public" => table.clone(),
        [catalog, schema, table] if catalog == "silt" && schema == "public" => table.clone(),
        _ => {
            return Err(SqlError::Invalid(format!(
                "table name '{name}' must be a plain name, e.g. events"
            )));
        }
    };
    user_table(table)
}

/// `name`, unless it is one of silt's internal tables.
pub(crate) fn user_table(name: String) -> Result<String> {
    if silt_table::is_internal_table(&name) {
        return Err(crate::error::internal_table(&name));
    }
    Ok(name)
}

/// Refuses clauses of `CREATE TABLE` that silt would otherwise ignore: a
/// table always lives at `<warehouse>/<name>` as a Delta table.
pub(crate) fn refuse_ignored_clauses(create: &CreateTable) -> Result<()> {
    let location = create.location.is_some()
        || create
            .hive_formats
            .as_ref()
            .is_some_and(|formats| formats.location.is_some());
    let refused = if create.external {
        Some("CREATE EXTERNAL TABLE")
    } else if location {
        Some("LOCATION")
    } else if create.temporary {
        Some("CREATE TEMPORARY TABLE")
    } else if create.like.is_some() {
        Some("CREATE TABLE … LIKE")
    } else if create.clone.is_some() {
        Some("CREATE TABLE … CLONE")
    } else {
        None
    };
    if create.or_replace && create.if_not_exists {
        return Err(SqlError::Invalid(
            "CREATE OR REPLACE TABLE and IF NOT EXISTS contradict each other; use one".to_string(),
        ));
    }
    if create.comment.is_some() {
        return Err(SqlError::Invalid(
            "a table COMMENT is not supported yet: create the table without it".to_string(),
        ));
    }
    if create.query.is_some() && !create.constraints.is_empty() {
        return Err(SqlError::Invalid(
            "a constraint in CREATE TABLE … AS SELECT is not supported: create the table, \
             then ALTER TABLE … ADD CONSTRAINT name CHECK (…)"
                .to_string(),
        ));
    }
    match refused {
        Some(clause) => Err(SqlError::Invalid(format!(
            "{clause} is not supported: silt tables live in the warehouse as <warehouse>/<table>; \
             create the table without it (or read a Delta table elsewhere with its own reader)"
        ))),
        None => Ok(()),
    }
}

/// The spec of `CREATE TABLE name (cols) [PARTITIONED BY (..)] [TBLPROPERTIES (..)]`.
pub(crate) fn create_table_spec(create: &CreateTable) -> Result<(String, TableSpec)> {
    let name = table_name(&create.name)?;
    let mut checks = Vec::new();
    let mut fields = Vec::with_capacity(create.columns.len());
    for column in &create.columns {
        let (plain, column_checks) = split_checks(column);
        fields.push(column_field(&plain)?);
        checks.extend(column_checks);
    }
    for (index, constraint) in create.constraints.iter().enumerate() {
        checks.push(table_check(&name, constraint, index + 1)?);
    }
    let mut partition_columns = Vec::new();
    if let HiveDistributionStyle::PARTITIONED { columns } = &create.hive_distribution {
        for column in columns {
            let column_name = column.name.value.clone();
            // Hive style declares the partition column here with its type.
            if !fields.iter().any(|f| f.name() == &column_name) {
                if matches!(column.data_type, SqlType::Unspecified) {
                    return Err(SqlError::Invalid(format!(
                        "partition column '{column_name}' is not a column of table '{name}'"
                    )));
                }
                fields.push(column_field(column)?);
            }
            partition_columns.push(column_name);
        }
    }
    let mut properties = create_properties(create)?;
    for (constraint, expression) in checks {
        let constraint = silt_table::validate_constraint_name(&name, &constraint)?;
        let key = format!("{}{constraint}", silt_table::CONSTRAINT_PREFIX);
        if properties.insert(key, expression).is_some() {
            return Err(SqlError::Invalid(format!(
                "table '{name}' has two constraints named '{constraint}'; rename one"
            )));
        }
    }
    let spec = TableSpec {
        schema: Arc::new(Schema::new(fields)),
        partition_columns,
        properties,
        if_not_exists: create.if_not_exists,
    };
    Ok((name, spec))
}

/// `column` without its `CHECK (…)` options, and those checks as (name,
/// expression): an unnamed one is called `<column>_check`, as Postgres
/// does.
fn split_checks(column: &ColumnDef) -> (ColumnDef, Vec<(String, String)>) {
    let mut plain = column.clone();
    let mut checks = Vec::new();
    plain.options.retain(|option| match &option.option {
        ColumnOption::Check(check) => {
            let name = option
                .name
                .as_ref()
                .or(check.name.as_ref())
                .map(|n| n.value.clone())
                .unwrap_or_else(|| format!("{}_check", column.name.value));
            checks.push((name, check.expr.to_string()));
            false
        }
        _ => true,
    });
    (plain, checks)
}

/// A table-level constraint of CREATE TABLE: only `[CONSTRAINT name]
/// CHECK (…)` is honoured (an unnamed one is called `check_<n>`); keys and
/// indexes are refused, since silt would not enforce them.
fn table_check(
    table: &str,
    constraint: &datafusion::sql::sqlparser::ast::TableConstraint,
    position: usize,
) -> Result<(String, String)> {
    use datafusion::sql::sqlparser::ast::TableConstraint;
    match constraint {
        TableConstraint::Check(check) => {
            let name = check
                .name
                .as_ref()
                .map(|n| n.value.clone())
                .unwrap_or_else(|| format!("check_{position}"));
            Ok((name, check.expr.to_string()))
        }
        other => Err(SqlError::Invalid(format!(
            "constraint '{other}' of table '{table}' is not supported: silt does not enforce PRIMARY KEY, UNIQUE, FOREIGN KEY or indexes, \
             so it does not accept them; use CHECK constraints and NOT NULL columns"
        ))),
    }
}

/// Column options silt honours: `NULL`, `NOT NULL` (and `CHECK`, taken out
/// by CREATE TABLE before). Anything else is refused by name rather than
/// accepted and ignored.
fn refuse_column_options(column: &ColumnDef) -> Result<()> {
    for option in &column.options {
        let what = match &option.option {
            ColumnOption::Null | ColumnOption::NotNull => continue,
            ColumnOption::Check(_) => "CHECK (here: only in CREATE TABLE; use ALTER TABLE … ADD CONSTRAINT)",
            ColumnOption::Default(_) => "DEFAULT (column defaults are not supported yet)",
            ColumnOption::Generated { .. } | ColumnOption::Materialized(_) | ColumnOption::Alias(_) => {
                "GENERATED ALWAYS AS (generated columns are not supported yet; compute the value in the INSERT)"
            }
            ColumnOption::Identity(_) => "an identity column (not supported yet)",
            ColumnOption::PrimaryKey(_) | ColumnOption::Unique(_) => {
                "PRIMARY KEY / UNIQUE (silt does not enforce keys; use NOT NULL, and MERGE or APPLY CHANGES to keep keys unique)"
            }
            ColumnOption::ForeignKey(_) => "REFERENCES (silt does not enforce foreign keys)",
            ColumnOption::Comment(_) => "COMMENT (column comments are not supported yet)",
            _ => "this column option (not supported)",
        };
        return Err(SqlError::Invalid(format!(
            "column '{}': not supported: {what}",
            column.name.value
        )));
    }
    Ok(())
}

/// The `TBLPROPERTIES (..)` of a CREATE TABLE.
fn create_properties(create: &CreateTable) -> Result<HashMap<String, String>> {
    let options = match &create.table_options {
        CreateTableOptions::TableProperties(options) | CreateTableOptions::Options(options) => {
            options.as_slice()
        }
        CreateTableOptions::None => &[],
        other => {
            return Err(SqlError::Unsupported(format!(
                "table options {other}; use TBLPROPERTIES (..)"
            )));
        }
    };
    property_map(options)
}

/// Characters Delta does not allow in column names without column mapping.
const INVALID_COLUMN_CHARS: &[char] = &[' ', ',', ';', '{', '}', '(', ')', '\n', '\t', '='];

/// `CREATE TABLE name [PARTITIONED BY (..)] [TBLPROPERTIES (..)] AS <query>`.
///
/// The query runs to completion before anything is created, so a failing
/// query changes nothing; then the table is created with the query's
/// columns (all nullable, as Spark does: a later INSERT must be able to
/// leave them empty) and the rows are written in the next commit. If that
/// write fails the new table is dropped again. Returns the table, its
/// version and the number of rows written.
///
/// `plan` plans the query (the engine's planner, passed in so this module
/// does not import the engine).
pub(crate) async fn create_table_as<F, Fut>(
    warehouse: &Warehouse,
    mut create: CreateTable,
    plan: F,
) -> Result<(String, u64, i64)>
where
    F: FnOnce(Box<Query>) -> Fut,
    Fut: std::future::Future<Output = Result<DataFrame>>,
{
    let name = table_name(&create.name)?;
    let Some(query) = create.query.take() else {
        return Err(SqlError::Invalid(format!("CREATE TABLE {name} AS needs a query")));
    };
    if !create.columns.is_empty() {
        return Err(SqlError::Unsupported(format!(
            "a column list in CREATE TABLE {name} … AS SELECT; the query's columns define the table, rename them with AS"
        )));
    }
    let mut partition_names = Vec::new();
    if let HiveDistributionStyle::PARTITIONED { columns } = &create.hive_distribution {
        for column in columns {
            if !matches!(column.data_type, SqlType::Unspecified) {
                return Err(SqlError::Invalid(format!(
                    "PARTITIONED BY of CREATE TABLE {name} … AS SELECT takes column names only: the query gives the types"
                )));
            }
            partition_names.push(column.name.value.clone());
        }
    }
    let properties = create_properties(&create)?;
    if !create.or_replace && warehouse.exists(&name).await? {
        if create.if_not_exists {
            let version = warehouse.table(&name).await?.version();
            return Ok((name, version, 0));
        }
        return Err(TableError::AlreadyExists(name).into());
    }

    let frame = plan(query).await?;
    let query_schema = frame.schema().as_arrow().clone();
    let mut fields = Vec::with_capacity(query_schema.fields().len());
    for field in query_schema.fields() {
        if field.name().is_empty() || field.name().contains(INVALID_COLUMN_CHARS) {
            return Err(SqlError::Invalid(format!(
                "column '{}' of the query for table '{name}' needs a name: add AS <name> (Delta column names cannot contain spaces or ,;{{}}()=)",
                field.name()
            )));
        }
        if fields
            .iter()
            .any(|f: &Field| f.name().eq_ignore_ascii_case(field.name()))
        {
            return Err(SqlError::Invalid(format!(
                "the query for table '{name}' has two columns named '{}'; rename one with AS",
                field.name()
            )));
        }
        fields.push(field.as_ref().clone().with_nullable(true));
    }
    let mut partition_columns = Vec::with_capacity(partition_names.len());
    for wanted in &partition_names {
        let found = fields
            .iter()
            .find(|f| f.name() == wanted)
            .or_else(|| fields.iter().find(|f| f.name().eq_ignore_ascii_case(wanted)));
        match found {
            Some(field) => partition_columns.push(field.name().clone()),
            None => {
                return Err(SqlError::Invalid(format!(
                    "partition column '{wanted}' is not a column of the query for table '{name}'"
                )));
            }
        }
    }
    let batches: Vec<RecordBatch> = frame
        .collect()
        .await?
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .collect();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();

    let spec = TableSpec {
        schema: Arc::new(Schema::new(fields)),
        partition_columns,
        properties,
        if_not_exists: false,
    };
    if create.or_replace {
        // One commit replaces definition and rows, keeping the history
        // (DESCRIBE HISTORY, VERSION AS OF an older version).
        let target = silt_table::types::delta_compatible_schema(&spec.schema)
            .map_err(|reason| SqlError::Invalid(format!("CREATE OR REPLACE TABLE {name}: {reason}")))?;
        let batches = batches
            .iter()
            .map(|batch| conform(batch, &target, &name))
            .collect::<Result<Vec<_>>>()?;
        let table = warehouse.replace_table(&name, spec, batches).await?;
        return Ok((name, table.version(), i64::try_from(rows).unwrap_or(i64::MAX)));
    }
    let mut table = warehouse.create_table(&name, spec).await?;
    if rows == 0 {
        return Ok((name, table.version(), 0));
    }
    let written = async {
        let target = table.schema()?;
        let batches = batches
            .iter()
            .map(|batch| conform(batch, &target, &name))
            .collect::<Result<Vec<_>>>()?;
        table
            .write(batches, WriteMode::Append, CommitOptions::default())
            .await
            .map_err(SqlError::from)
    }
    .await;
    match written {
        Ok(version) => Ok((name, version, i64::try_from(rows).unwrap_or(i64::MAX))),
        Err(error) => {
            // No half-created table: the statement either made the table
            // with its rows or left nothing behind.
            if let Err(drop_error) = warehouse.drop_table(&name).await {
                tracing::warn!(table = %name, error = %drop_error, "cannot drop the table of a failed CREATE TABLE AS");
            }
            Err(error)
        }
    }
}

/// Casts a query batch to the stored schema (e.g. `Utf8View` to `Utf8`).
/// `batch` in the table's schema: silt-table's one strict cast (a value
/// that does not fit is an error naming the column, never a silent NULL).
fn conform(batch: &RecordBatch, target: &SchemaRef, table: &str) -> Result<RecordBatch> {
    silt_table::cast_to_schema(batch, target)
        .map_err(|e| SqlError::Invalid(format!("CREATE TABLE {table} AS SELECT: {e}")))
}

/// `TBLPROPERTIES ('k' = 'v', …)` as a map.
pub(crate) fn property_map(options: &[SqlOption]) -> Result<HashMap<String, String>> {
    let mut properties = HashMap::new();
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(SqlError::Invalid(format!(
                "TBLPROPERTIES entry '{option}' must be 'key' = 'value'"
            )));
        };
        properties.insert(key.value.clone(), literal_text(value)?);
    }
    Ok(properties)
}

fn literal_text(value: &Expr) -> Result<String> {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Ok(s.clone()),
            Value::Number(n, _) => Ok(n.clone()),
            Value::Boolean(b) => Ok(b.to_string()),
            other => Err(SqlError::Invalid(format!(
                "property value {other} must be a string"
            ))),
        },
        other => Err(SqlError::Invalid(format!(
            "property value {other} must be a string"
        ))),
    }
}

pub(crate) fn column_field(column: &ColumnDef) -> Result<Field> {
    refuse_column_options(column)?;
    let data_type = arrow_type(&column.data_type)
        .map_err(|reason| SqlError::Invalid(format!("column '{}': {reason}", column.name.value)))?;
    let not_null = column
        .options
        .iter()
        .any(|o| matches!(o.option, ColumnOption::NotNull));
    Ok(Field::new(column.name.value.clone(), data_type, !not_null))
}

/// SQL type names (Spark/Databricks and common ANSI spellings) to Arrow.
pub(crate) fn arrow_type(sql: &SqlType) -> std::result::Result<DataType, String> {
    Ok(match sql {
        SqlType::BigInt(_) | SqlType::Int8(_) | SqlType::Int64 => DataType::Int64,
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::Int4(_) | SqlType::Int32 => DataType::Int32,
        SqlType::SmallInt(_) | SqlType::Int2(_) | SqlType::Int16 => DataType::Int16,
        SqlType::TinyInt(_) => DataType::Int8,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float8 | SqlType::Float64 => {
            DataType::Float64
        }
        SqlType::Float(_) | SqlType::Real | SqlType::Float4 | SqlType::Float32 => DataType::Float32,
        SqlType::Boolean | SqlType::Bool => DataType::Boolean,
        SqlType::Varchar(_)
        | SqlType::Char(_)
        | SqlType::Character(_)
        | SqlType::CharVarying(_)
        | SqlType::CharacterVarying(_)
        | SqlType::Text
        | SqlType::String(_)
        | SqlType::Nvarchar(_) => DataType::Utf8,
        SqlType::Binary(_) | SqlType::Varbinary(_) | SqlType::Bytea | SqlType::Blob(_) => DataType::Binary,
        SqlType::Date => DataType::Date32,
        SqlType::Timestamp(_, _) | SqlType::Datetime(_) | SqlType::TimestampNtz(_) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        SqlType::Decimal(info) | SqlType::Numeric(info) | SqlType::Dec(info) => match info {
            ExactNumberInfo::PrecisionAndScale(p, s) => DataType::Decimal128(
                u8::try_from(*p).map_err(|_| "precision above 38".to_string())?,
                i8::try_from(*s).map_err(|_| "scale out of range".to_string())?,
            ),
            ExactNumberInfo::Precision(p) => {
                DataType::Decimal128(u8::try_from(*p).map_err(|_| "precision above 38".to_string())?, 0)
            }
            ExactNumberInfo::None => DataType::Decimal128(10, 0),
        },
        SqlType::Unspecified => return Err("a type is required".to_string()),
        other => return Err(format!("type {other} is not supported")),
    })
}

/// Parses a SQL type name (`BIGINT`, `DECIMAL(10,2)`, `TIMESTAMP`, …) into
/// the Arrow type silt stores it as.
pub fn parse_data_type(text: &str) -> Result<DataType> {
    use datafusion::sql::sqlparser::dialect::DatabricksDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let invalid = |reason: String| SqlError::Invalid(format!("type '{text}': {reason}"));
    let dialect = DatabricksDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| invalid(e.to_string()))?;
    let sql_type = parser.parse_data_type().map_err(|e| invalid(e.to_string()))?;
    if parser.peek_token().token != datafusion::sql::sqlparser::tokenizer::Token::EOF {
        return Err(invalid("unexpected text after the type".to_string()));
    }
    arrow_type(&sql_type).map_err(invalid)
}

/// The SQL name of an Arrow type (silt-table's, re-exported here so
/// `parse_data_type` and its inverse sit together).
pub use silt_table::sql_type_name;

#[cfg(test)]
mod type_name_tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for text in [
            "BIGINT",
            "INT",
            "DOUBLE",
            "STRING",
            "DATE",
            "TIMESTAMP",
            "DECIMAL(10,2)",
            "BOOLEAN",
        ] {
            let parsed = parse_data_type(text).expect(text);
            assert_eq!(sql_type_name(&parsed), text);
        }
        assert_eq!(parse_data_type("varchar").expect("varchar"), DataType::Utf8);
        assert!(parse_data_type("BIGINT; DROP").is_err());
        assert!(parse_data_type("nonsense").is_err());
    }
}
