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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_table_name("events").is_ok());
        assert!(validate_table_name("_silt_dead_letters").is_ok());
        assert!(validate_table_name("t2").is_ok());
        for bad in ["", "2t", "a-b", "../x", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_table_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
