//! Erased subjects stay erased: the [`silt_table::Suppressor`] of this
//! warehouse, answering from the ledger's subject hashes (HMAC-SHA256 under
//! the server's secret). Every accepted request's subjects are suppressed
//! from the moment it is filed — also while it is still pending, so rows
//! that arrive between the request and its delete are not stored — in the
//! tables it names, or in every table when it names none.
//!
//! No subject value is kept: a cell is hashed and its hash looked up. Other
//! servers' requests are picked up when this server's worker next reads the
//! ledger (each round), so across servers suppression starts within one
//! worker round of the request being filed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use hmac::Mac;

use crate::ledger::ErasureRecord;
use crate::observer::ErasureObserver;
use crate::secrets::{HmacSha256, Secrets};

type Hash = [u8; 32];

#[derive(Default)]
struct Hashes {
    /// Subjects of requests that name no tables: suppressed everywhere.
    everywhere: HashSet<Hash>,
    /// Subjects of requests limited to tables, by table.
    by_table: HashMap<String, HashSet<Hash>>,
}

/// The suppressor registered for one warehouse (see the module docs).
pub(crate) struct Suppression {
    mac: HmacSha256,
    hashes: RwLock<Hashes>,
    observer: Arc<dyn ErasureObserver>,
}

fn decode(hex_hash: &str) -> Option<Hash> {
    let bytes = hex::decode(hex_hash).ok()?;
    bytes.try_into().ok()
}

impl Suppression {
    pub(crate) fn new(secrets: &Secrets, observer: Arc<dyn ErasureObserver>) -> Self {
        Self {
            mac: secrets.keyed_mac(),
            hashes: RwLock::new(Hashes::default()),
            observer,
        }
    }

    /// Adds the subjects of `records` (every request the ledger holds, open
    /// or finished: an erased subject stays erased).
    pub(crate) fn add(&self, records: &[ErasureRecord]) {
        let mut hashes = self.hashes.write().unwrap_or_else(|p| p.into_inner());
        for record in records {
            let decoded = record.subject_hashes.iter().filter_map(|h| decode(h));
            match &record.tables {
                None => hashes.everywhere.extend(decoded),
                Some(tables) => {
                    let decoded: Vec<Hash> = decoded.collect();
                    for table in tables {
                        hashes
                            .by_table
                            .entry(table.clone())
                            .or_default()
                            .extend(decoded.iter().copied());
                    }
                }
            }
        }
    }

    fn hash(&self, value: &str) -> Hash {
        // The keyed state is cloned, not rebuilt: one HMAC per cell.
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl silt_table::Suppressor for Suppression {
    fn covers(&self, table: &str) -> bool {
        let hashes = self.hashes.read().unwrap_or_else(|p| p.into_inner());
        !hashes.everywhere.is_empty() || hashes.by_table.get(table).is_some_and(|h| !h.is_empty())
    }

    fn is_suppressed(&self, table: &str, value: &str) -> bool {
        let hash = self.hash(value);
        let hashes = self.hashes.read().unwrap_or_else(|p| p.into_inner());
        hashes.everywhere.contains(&hash) || hashes.by_table.get(table).is_some_and(|h| h.contains(&hash))
    }

    fn dropped(&self, table: &str, rows: u64) {
        self.observer.suppressed(table, rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silt_table::Suppressor as _;

    #[test]
    fn a_subject_is_suppressed_where_its_request_applies_and_nowhere_else() {
        let secrets = Secrets::new("secret", &"00".repeat(32)).expect("secrets");
        let suppression = Suppression::new(&secrets, Arc::new(crate::observer::NoObserver));
        assert!(!suppression.covers("a"));
        let record = |hash: String, tables: Option<Vec<String>>| ErasureRecord {
            id: "r".into(),
            seq: 0,
            request_id: None,
            status: crate::ledger::Status::Pending,
            received_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            subject_hashes: vec![hash],
            tables,
            purge: true,
            sealed: None,
            results: None,
            error: None,
        };
        suppression.add(&[
            record(secrets.subject_hash("alice@example.com"), Some(vec!["a".into()])),
            record(secrets.subject_hash("bob@example.com"), None),
        ]);
        assert!(suppression.covers("a") && suppression.covers("b"));
        assert!(suppression.is_suppressed("a", "alice@example.com"));
        assert!(!suppression.is_suppressed("b", "alice@example.com"));
        assert!(suppression.is_suppressed("b", "bob@example.com"));
        assert!(!suppression.is_suppressed("a", "carol@example.com"));
        // The hash is keyed: another secret's hash of the same value differs.
        let other = Secrets::new("other", &"00".repeat(32)).expect("secrets");
        assert_ne!(
            other.subject_hash("alice@example.com"),
            secrets.subject_hash("alice@example.com")
        );
    }
}
