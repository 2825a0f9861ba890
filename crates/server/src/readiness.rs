//! Readiness: whether the warehouse's storage answers, as `GET /readyz`
//! reports it to load balancers and orchestrators.
//!
//! The probe is one LIST of the warehouse root. `/readyz` needs no token,
//! so an anonymous caller must not be able to turn it into a stream of
//! requests to the object store: one probe runs at a time and its answer is
//! reused for [`REUSE`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use silt_table::{ErrorKind, Warehouse};
use tokio::sync::Mutex;

/// How long a probe's answer is reused.
pub const REUSE: Duration = Duration::from_secs(1);
/// How long a probe waits for the storage.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A probe's time and answer.
type Probe = (Instant, Result<(), ErrorKind>);

/// The last probe of the warehouse's storage.
#[derive(Debug, Clone)]
pub struct Readiness {
    warehouse: Warehouse,
    last: Arc<Mutex<Option<Probe>>>,
}

impl Readiness {
    /// Readiness of `warehouse`; nothing is probed until asked.
    pub fn new(warehouse: Warehouse) -> Self {
        Self {
            warehouse,
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// Whether the storage answered a probe made at most [`REUSE`] ago.
    /// Any failure (refused, timed out, denied) is not ready:
    /// [`ErrorKind::Unavailable`].
    pub async fn check(&self) -> Result<(), ErrorKind> {
        // Held across the probe: concurrent callers wait for its answer
        // instead of probing themselves.
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = *last
            && at.elapsed() < REUSE
        {
            return answer;
        }
        let answer = self.warehouse.probe(PROBE_TIMEOUT).await.map_err(|error| {
            // The location is the operator's own configuration, not data.
            tracing::warn!(warehouse = self.warehouse.display_location(), %error, "readiness probe failed");
            ErrorKind::Unavailable
        });
        *last = Some((Instant::now(), answer));
        answer
    }
}
