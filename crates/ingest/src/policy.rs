//! A table's ingest policy: silt's `silt.ingest.*` table properties, read
//! once per commit so `ALTER TABLE … SET TBLPROPERTIES` takes effect without
//! a restart.

use std::collections::HashMap;
use std::time::Duration;

/// Property: milliseconds the committer waits for more requests after the
/// first one of a group arrives (default 0: commit as soon as the previous
/// commit is done; requests that arrive meanwhile still group).
pub const LINGER_MS: &str = "silt.ingest.linger_ms";
/// Property: a group stops taking requests once it holds this many bytes.
pub const MAX_COMMIT_BYTES: &str = "silt.ingest.max_commit_bytes";
/// Property: `true` lets requests add new nullable columns (as `?evolve=true`).
pub const EVOLVE: &str = "silt.ingest.evolve";
/// Property: `true` routes rows that cannot be made valid to
/// `_silt_dead_letters` instead of rejecting the whole request.
pub const DEAD_LETTERS: &str = "silt.ingest.dead_letters";

/// The dead-letter table every table with the policy on shares.
pub const DEAD_LETTER_TABLE: &str = "_silt_dead_letters";

/// How one table's ingest behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// See [`LINGER_MS`].
    pub linger: Duration,
    /// See [`MAX_COMMIT_BYTES`].
    pub max_commit_bytes: u64,
    /// See [`EVOLVE`].
    pub evolve: bool,
    /// See [`DEAD_LETTERS`].
    pub dead_letters: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            linger: Duration::ZERO,
            max_commit_bytes: 256 * 1024 * 1024,
            evolve: false,
            dead_letters: false,
        }
    }
}

impl Policy {
    /// The policy the table's properties give; unknown or unparsable values
    /// keep the default.
    pub fn from_properties(properties: &HashMap<String, String>) -> Self {
        let default = Policy::default();
        let flag = |key: &str| {
            properties
                .get(key)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        let number = |key: &str| properties.get(key).and_then(|v| v.trim().parse::<u64>().ok());
        Self {
            linger: number(LINGER_MS)
                .map(Duration::from_millis)
                .unwrap_or(default.linger),
            max_commit_bytes: number(MAX_COMMIT_BYTES)
                .filter(|n| *n > 0)
                .unwrap_or(default.max_commit_bytes),
            evolve: flag(EVOLVE),
            dead_letters: flag(DEAD_LETTERS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_override_defaults() {
        let props = HashMap::from([
            (LINGER_MS.to_string(), "5".to_string()),
            (DEAD_LETTERS.to_string(), "TRUE".to_string()),
            (MAX_COMMIT_BYTES.to_string(), "junk".to_string()),
        ]);
        let policy = Policy::from_properties(&props);
        assert_eq!(policy.linger, Duration::from_millis(5));
        assert!(policy.dead_letters);
        assert!(!policy.evolve);
        assert_eq!(policy.max_commit_bytes, Policy::default().max_commit_bytes);
    }
}
