//! The in-process write gate of each table. Writers (ingest commits, DML,
//! OPTIMIZE) hold it shared from the moment they write a data file until
//! their commit lands; an erasure purge holds it alone. Without it, the
//! purge's zero-retention VACUUM would delete the data file of a write that
//! has not committed yet (it is referenced by no version), and that commit
//! would then point at a missing file.
//!
//! The gate is per process: two servers on one warehouse must not purge
//! while the other writes (see docs/erasure.md).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// Held by a writer until its commit lands.
pub type SharedWriteGuard = OwnedRwLockReadGuard<()>;
/// Held by a purge: no writer of this process is between file and commit.
pub type ExclusiveWriteGuard = OwnedRwLockWriteGuard<()>;

static GATES: LazyLock<Mutex<HashMap<String, Arc<RwLock<()>>>>> = LazyLock::new(Default::default);

/// The gate of the table at `location` (its URL).
pub(crate) fn gate(location: &str) -> Arc<RwLock<()>> {
    // A poisoned map only means another thread panicked mid-insert; the
    // map itself is still usable.
    let mut gates = GATES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    gates.entry(location.to_string()).or_default().clone()
}
