//! Table names silt accepts: they become directory names and SQL identifiers.

use crate::error::{Result, TableError};

/// Accepts `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters.
pub fn validate_table_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if first_ok && rest_ok && name.len() <= 128 {
        Ok(())
    } else {
        Err(TableError::InvalidName(name.to_string()))
    }
}

/// Prefix of silt's internal tables (`_silt_dead_letters`, `_silt_erasures`).
/// Users reach them only through their own APIs, never through SQL, Flight
/// SQL or ingest.
pub const INTERNAL_TABLE_PREFIX: &str = "_silt_";

/// Whether `name` is one of silt's internal tables (case-insensitive, as
/// unquoted SQL identifiers fold to lower case).
pub fn is_internal_table(name: &str) -> bool {
    name.len() >= INTERNAL_TABLE_PREFIX.len()
        && name.as_bytes()[..INTERNAL_TABLE_PREFIX.len()]
            .eq_ignore_ascii_case(INTERNAL_TABLE_PREFIX.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_table_name("events").is_ok());
        assert!(validate_table_name("_silt_dead_letters").is_ok());
        assert!(validate_table_name("t2").is_ok());
        assert!(is_internal_table("_silt_dead_letters"));
        assert!(is_internal_table("_SILT_Erasures"));
        assert!(!is_internal_table("silt_x") && !is_internal_table("_sil"));
        for bad in ["", "2t", "a-b", "../x", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_table_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
