//! silt-erasure owns GDPR/CCPA erasure: requests recorded in the ledger
//! `_silt_erasures` (salted hashes only; a pending request's subjects sealed
//! with AES-256-GCM until it completes), pending requests batched into one
//! pass, one delete rewrite per table with subject columns
//! (`silt.erasure.subject_columns`) that reads only files whose statistics
//! and bloom filters allow a subject and commits no predicate, the purge of
//! history (VACUUM full with zero retention, checkpoint, log expiry) while
//! the table's writers wait, byte-level verification of every object under
//! each table root, and a certificate signed with HMAC-SHA256 per request.
//!
//! ```text
//!  submit ─▶ ledger row {id, HMAC(subject)…, sealed subjects, pending}
//!  worker ─▶ pass = pending requests with the same tables and purge
//!         ─▶ per table (write gate held alone):
//!              prune by stats + bloom ─▶ read subject columns ─▶ rewrite files with matches
//!              (one DELETE commit, no predicate)            rewrite.rs
//!              └▶ VACUUM (0 h, full) ─▶ checkpoint ─▶ expire older log entries   purge.rs
//!         ─▶ dead letters: same rewrite, `raw` searched for any subject (no pruning)
//!         ─▶ verify: every object under every root (Parquet decoded, logs as bytes)
//!         ─▶ certificate per request (signed) ─▶ ledger rows {done|failed}, sealed
//!            subjects dropped, ledger compacted and purged
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), silt_erasure::ErasureError> {
//! use silt_erasure::{Erasure, ErasureConfig, NewRequest};
//! let warehouse = silt_table::Warehouse::open("./silt-data")?;
//! let erasure = Erasure::open(warehouse, ErasureConfig::default())?;
//! let filed = erasure
//!     .submit(NewRequest { subjects: vec!["alice@example.com".into()], ..Default::default() })
//!     .await?;
//! erasure.run_pending().await?;
//! let done = erasure.get(&filed.id).await?;
//! let certificate = done.certificate.expect("finished");
//! assert!(silt_erasure::verify_certificate(&certificate, erasure.secrets()));
//! # Ok(()) }
//! ```

mod certificate;
mod error;
mod ledger;
mod matcher;
mod observer;
mod purge;
mod reading;
mod rewrite;
mod secrets;
mod service;
mod suppression;
mod verify;

pub use certificate::{Certificate, TableReport, Timings, Verification, canonical_json, verify_certificate};
pub use error::{ErasureError, Result};
pub use ledger::{LEDGER_TABLE, Status};
pub use observer::{ErasureObserver, NoObserver};
pub use secrets::{KEY_FILE, Secrets};
pub use service::{
    DEAD_LETTER_TABLE, DEADLINE_DAYS, Erasure, ErasureConfig, MAX_SUBJECTS, NewRequest,
    PURGED_BEFORE_PROPERTY, PURGED_BY_PROPERTY, RequestView, SUBJECT_COLUMNS_PROPERTY, Submitted,
    subject_columns,
};
