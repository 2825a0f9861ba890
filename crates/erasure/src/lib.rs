//! silt-erasure will own GDPR/CCPA erasure: the `_silt_erasures` ledger
//! (salted hashes only), one batched DELETE rewrite per table with subject
//! columns (`silt.erasure.subject_columns`), the purge of history (VACUUM,
//! checkpoint, log expiry), byte-level verification of every object under the
//! table root, and signed certificates.
//!
//! Not built yet: this crate is a placeholder so the workspace has the layout
//! of `DESIGN.md`. See the erasure issue and `docs/ARCHITECTURE.md`.
//!
//! ```
//! // Nothing to call yet; the crate links so dependents can be wired early.
//! ```
