//! What sort of work a statement is, for metrics: a fixed word per kind,
//! never anything from the statement's text.

use datafusion::sql::sqlparser::ast::Statement;

use crate::maintenance::Maintenance;
use crate::statement::Parsed;

/// The sort of a statement, as operators chart them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum StatementKind {
    /// SELECT, EXPLAIN, SHOW, DESCRIBE [HISTORY | DETAIL]: reads only.
    Query,
    /// INSERT, UPDATE, DELETE, MERGE, APPLY CHANGES: changes rows.
    Dml,
    /// CREATE, DROP, ALTER: changes tables.
    Ddl,
    /// OPTIMIZE, VACUUM, RESTORE: rewrites or prunes a table's files.
    Maintenance,
    /// Anything else (SET, transactions…).
    Other,
}

impl StatementKind {
    /// The kind's label word: `query`, `dml`, `ddl`, `maintenance`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Query => "query",
            StatementKind::Dml => "dml",
            StatementKind::Ddl => "ddl",
            StatementKind::Maintenance => "maintenance",
            StatementKind::Other => "other",
        }
    }
}

/// The kind of one parsed statement.
pub(crate) fn statement_kind(statement: &Parsed) -> StatementKind {
    match statement {
        Parsed::DescribeHistory { .. } | Parsed::Maintenance(Maintenance::DescribeDetail { .. }) => {
            StatementKind::Query
        }
        Parsed::Maintenance(_) => StatementKind::Maintenance,
        Parsed::Alter(_) => StatementKind::Ddl,
        Parsed::Apply(_) => StatementKind::Dml,
        Parsed::Sql(sql) => match sql.as_ref() {
            Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowFunctions { .. } => StatementKind::Query,
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_) => {
                StatementKind::Dml
            }
            Statement::CreateTable(_)
            | Statement::CreateView(_)
            | Statement::CreateSchema { .. }
            | Statement::Drop { .. }
            | Statement::AlterTable(_)
            | Statement::Truncate(_) => StatementKind::Ddl,
            _ => StatementKind::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::parse;

    fn kind(sql: &str) -> StatementKind {
        statement_kind(&parse(sql).expect("parses")[0])
    }

    #[test]
    fn statements_are_sorted_into_kinds() {
        assert_eq!(kind("SELECT 1"), StatementKind::Query);
        assert_eq!(kind("EXPLAIN SELECT 1"), StatementKind::Query);
        assert_eq!(kind("DESCRIBE HISTORY t"), StatementKind::Query);
        assert_eq!(kind("DESCRIBE DETAIL t"), StatementKind::Query);
        assert_eq!(kind("INSERT INTO t VALUES (1)"), StatementKind::Dml);
        assert_eq!(kind("DELETE FROM t WHERE id = 1"), StatementKind::Dml);
        assert_eq!(kind("CREATE TABLE t (id BIGINT)"), StatementKind::Ddl);
        assert_eq!(kind("DROP TABLE t"), StatementKind::Ddl);
        assert_eq!(kind("ALTER TABLE t ADD COLUMN c INT"), StatementKind::Ddl);
        assert_eq!(kind("OPTIMIZE t"), StatementKind::Maintenance);
        assert_eq!(kind("VACUUM t"), StatementKind::Maintenance);
        assert_eq!(
            kind("RESTORE TABLE t TO VERSION AS OF 1"),
            StatementKind::Maintenance
        );
        assert_eq!(
            kind("SET datafusion.execution.batch_size = 10"),
            StatementKind::Other
        );
    }
}
