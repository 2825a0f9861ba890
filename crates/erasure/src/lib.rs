//! silt-erasure owns GDPR/CCPA erasure: requests recorded in the ledger
//! `_silt_erasures` (salted hashes only; a pending request's subjects sealed
//! with AES-256-GCM until it completes), one batched DELETE rewrite per table
//! with subject columns (`silt.erasure.subject_columns`) through a value-free
//! predicate, the purge of history (VACUUM full with zero retention,
//! checkpoint, log expiry), byte-level verification of every object under
//! each table root, and a certificate signed with HMAC-SHA256.
//!
//! ```text
//!  submit ─▶ ledger row {id, HMAC(subject)…, sealed subjects, pending}
//!  worker ─▶ per table: DELETE WHERE silt_erasure_match(col)   (one rewrite)
//!                        └▶ VACUUM (0 h, full) ─▶ checkpoint ─▶ expire older log entries
//!         ─▶ dead letters: DELETE WHERE silt_erasure_contains(raw) ─▶ purge
//!         ─▶ verify: every object under every root (Parquet decoded, logs as bytes)
//!         ─▶ certificate (signed) ─▶ ledger row {done|failed}, sealed subjects dropped,
//!            ledger compacted and purged
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
mod rewrite;
mod secrets;
mod service;
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
