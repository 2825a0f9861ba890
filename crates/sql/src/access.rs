//! Which role a statement needs: read, write (DML) or admin (DDL and
//! maintenance). The server checks it before running anything.

use datafusion::sql::sqlparser::ast::Statement;

use crate::error::Result;
use crate::maintenance::Maintenance;
use crate::statement::{Parsed, parse};

/// What a statement does to the warehouse, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// SELECT, EXPLAIN, SHOW, DESCRIBE: changes nothing.
    Read,
    /// INSERT, UPDATE, DELETE, MERGE: changes rows.
    Write,
    /// CREATE, DROP, ALTER, OPTIMIZE, VACUUM, RESTORE and anything else.
    Admin,
}

/// The access every statement of `sql` needs together (the highest).
/// Unknown statement kinds count as [`Access::Admin`], so a new statement
/// type is never readable by accident.
pub fn required_access(sql: &str) -> Result<Access> {
    crate::limits::check_text(sql, &crate::limits::StatementLimits::default())?;
    Ok(script_access(&parse(sql)?))
}

/// The access every one of `statements` needs together (the highest).
pub(crate) fn script_access(statements: &[Parsed]) -> Access {
    let mut needed = Access::Read;
    for statement in statements {
        let access = match statement {
            Parsed::DescribeHistory { .. } => Access::Read,
            Parsed::Maintenance(Maintenance::DescribeDetail { .. }) => Access::Read,
            Parsed::Maintenance(_) => Access::Admin,
            Parsed::Alter(_) => Access::Admin,
            Parsed::Apply(_) => Access::Write,
            Parsed::Sql(statement) => statement_access(statement),
        };
        needed = needed.max(access);
    }
    needed
}

fn statement_access(statement: &Statement) -> Access {
    match statement {
        Statement::Query(_)
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ExplainTable { .. } => Access::Read,
        Statement::Explain {
            statement, analyze, ..
        } => {
            // EXPLAIN ANALYZE runs the statement.
            if *analyze {
                statement_access(statement)
            } else {
                Access::Read
            }
        }
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_) => {
            Access::Write
        }
        _ => Access::Admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_need_the_expected_access() {
        let cases = [
            ("SELECT 1", Access::Read),
            ("EXPLAIN SELECT 1", Access::Read),
            ("SHOW TABLES", Access::Read),
            ("DESCRIBE HISTORY t", Access::Read),
            ("INSERT INTO t VALUES (1)", Access::Write),
            ("UPDATE t SET a = 1", Access::Write),
            ("DELETE FROM t WHERE a = 1", Access::Write),
            (
                "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
                Access::Write,
            ),
            ("EXPLAIN ANALYZE DELETE FROM t", Access::Write),
            ("CREATE TABLE t (a INT)", Access::Admin),
            ("DROP TABLE t", Access::Admin),
            ("SELECT 1; DROP TABLE t", Access::Admin),
            ("DESCRIBE DETAIL t", Access::Read),
            ("CREATE TABLE t2 AS SELECT * FROM t", Access::Admin),
            ("ALTER TABLE t ADD COLUMNS (b INT, c STRING)", Access::Admin),
            ("ALTER TABLE t ADD COLUMN b INT", Access::Admin),
            ("ALTER TABLE t SET TBLPROPERTIES ('a' = 'b')", Access::Admin),
            ("OPTIMIZE t", Access::Admin),
            (
                "OPTIMIZE t WHERE day = '2026-01-01' ZORDER BY (id)",
                Access::Admin,
            ),
            ("VACUUM t RETAIN 0 HOURS DRY RUN", Access::Admin),
            ("RESTORE TABLE t TO VERSION AS OF 1", Access::Admin),
            ("EXPLAIN ANALYZE SELECT 1", Access::Read),
            ("DESCRIBE DETAIL t; VACUUM t", Access::Admin),
            ("CREATE VIEW v AS SELECT * FROM t", Access::Admin),
            ("CREATE OR REPLACE VIEW v AS SELECT 1", Access::Admin),
            ("DROP VIEW IF EXISTS v", Access::Admin),
        ];
        for (sql, expected) in cases {
            assert_eq!(required_access(sql).expect(sql), expected, "{sql}");
        }
    }
}
