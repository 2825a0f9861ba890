//! The erasure certificate: what was erased where, with what evidence, signed
//! with HMAC-SHA256 so an auditor holding the secret can tell it was not
//! edited. Its JSON Schema is `schemas/certificate.schema.json`.
//!
//! The signature covers the canonical JSON of the certificate without its
//! `signature` field: object keys sorted, no insignificant whitespace, as
//! `serde_json` writes numbers and strings.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secrets::Secrets;

/// The certificate of one finished erasure request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Certificate {
    /// Schema version of this document (1).
    pub certificate_version: u32,
    /// The erasure request id.
    pub request_id: String,
    /// The caller's idempotency key, if one was given.
    pub client_request_id: Option<String>,
    /// `done` (no occurrence left) or `failed`.
    pub status: String,
    /// How subjects were hashed: `HMAC-SHA256`.
    pub hash_algorithm: String,
    /// The salted hash of each subject (hex), never a value.
    pub subject_hashes: Vec<String>,
    /// Whether history was purged (VACUUM, checkpoint, log expiry).
    pub purge: bool,
    /// When the request was received (RFC 3339).
    pub received_at: String,
    /// When the worker started it.
    pub started_at: String,
    /// When verification finished.
    pub completed_at: String,
    /// Every request erased in the same pass, this one included, when the
    /// worker batched several (their subjects were deleted, purged and
    /// verified together; the table counts are the pass's); empty otherwise.
    #[serde(default)]
    pub batch: Vec<String>,
    /// One entry per table erased (the dead-letter table included).
    pub tables: Vec<TableReport>,
    /// Verification of the ledger `_silt_erasures` itself.
    pub ledger: Verification,
    /// Verification of the stored view definitions
    /// (`_silt/views/<name>.json`; a path names a view, never a value): a
    /// view's query text can quote a subject, and no delete rewrites it.
    /// Absent from certificates written before views were verified.
    #[serde(default)]
    pub views: Verification,
    /// `HMAC-SHA256` over the canonical JSON of the rest.
    pub signature_algorithm: String,
    /// Hex HMAC-SHA256 signature; empty until signed.
    pub signature: String,
}

/// What happened to one table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TableReport {
    /// Table name.
    pub table: String,
    /// Columns searched (subject columns, or `raw` for dead letters).
    pub columns: Vec<String>,
    /// `equals` (subject columns) or `contains` (dead-letter raw text).
    pub match_mode: String,
    /// Latest version before the erasure.
    pub version_before: u64,
    /// Latest version after delete and purge.
    pub version_after: u64,
    /// The version of the delete commit, if rows matched.
    pub delete_version: Option<u64>,
    /// Rows removed.
    pub rows_deleted: u64,
    /// Data files in the version the delete started from.
    #[serde(default)]
    pub files_live: u64,
    /// Files skipped on column statistics or bloom filters, unread.
    #[serde(default)]
    pub files_pruned: u64,
    /// Files whose subject columns were read to find matching rows.
    #[serde(default)]
    pub files_read: u64,
    /// Data files rewritten (removed by the delete).
    pub files_rewritten: u64,
    /// Data files the delete wrote in their place.
    pub files_added: u64,
    /// Files VACUUM deleted.
    pub files_purged: u64,
    /// Log entries (commits, old checkpoints) expired.
    pub log_entries_expired: u64,
    /// The checkpoint written by the purge.
    pub checkpoint_version: Option<u64>,
    /// Byte-level verification of every object under the table root.
    pub verification: Verification,
    /// Milliseconds per step.
    pub timings_ms: Timings,
}

/// The result of reading every object under a root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Verification {
    /// Objects read.
    pub objects_scanned: u64,
    /// Their bytes.
    pub bytes_scanned: u64,
    /// Parquet files decoded.
    pub parquet_files_decoded: u64,
    /// Occurrences of any subject found (raw bytes and decoded strings).
    pub occurrences_found: u64,
    /// Paths (relative to the root) that held an occurrence.
    pub paths_with_occurrences: Vec<String>,
}

/// Step timings in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Timings {
    /// The batched delete.
    pub delete_ms: u64,
    /// VACUUM, checkpoint and log expiry.
    pub purge_ms: u64,
    /// Verification.
    pub verify_ms: u64,
}

/// Serialises `value` with object keys sorted at every level.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&map[key]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The bytes a certificate's signature covers: the canonical JSON of the
/// document without `signature`.
pub fn signed_bytes(document: &Value) -> Vec<u8> {
    let mut unsigned = document.clone();
    if let Value::Object(map) = &mut unsigned {
        map.remove("signature");
    }
    canonical_json(&unsigned).into_bytes()
}

impl Certificate {
    /// For a `failed` certificate, what it found where (paths, never a
    /// value); `None` otherwise.
    pub(crate) fn failure_summary(&self) -> Option<String> {
        if self.status != "failed" {
            return None;
        }
        let found: u64 = self
            .tables
            .iter()
            .map(|t| t.verification.occurrences_found)
            .sum::<u64>()
            + self.ledger.occurrences_found
            + self.views.occurrences_found;
        let paths: Vec<String> = self
            .tables
            .iter()
            .flat_map(|t| {
                t.verification
                    .paths_with_occurrences
                    .iter()
                    .map(move |p| format!("{}/{p}", t.table))
            })
            .chain(
                self.ledger
                    .paths_with_occurrences
                    .iter()
                    .map(|p| format!("{}/{p}", crate::ledger::LEDGER_TABLE)),
            )
            .chain(self.views.paths_with_occurrences.iter().map(|p| view_label(p)))
            .collect();
        Some(format!(
            "verification found {found} occurrence(s) of the subjects in: {}",
            paths.join(", ")
        ))
    }

    /// Signs the certificate in place.
    pub fn sign(&mut self, secrets: &Secrets) {
        self.signature.clear();
        let document = serde_json::to_value(&*self).unwrap_or(Value::Null);
        self.signature = secrets.sign(&signed_bytes(&document));
    }
}

/// How a failure summary names a view definition that holds a subject:
/// by the view's name (what the operator replaces or drops), with its path.
fn view_label(path: &str) -> String {
    match path
        .rsplit('/')
        .next()
        .and_then(|file| file.strip_suffix(".json"))
    {
        Some(view) => format!("view '{view}' ({path}; replace or drop the view)"),
        None => path.to_string(),
    }
}

/// Whether a certificate document (as JSON, e.g. from `GET /v1/erasures/{id}`)
/// carries a valid signature under `secrets`.
pub fn verify_certificate(document: &Value, secrets: &Secrets) -> bool {
    let Some(signature) = document.get("signature").and_then(Value::as_str) else {
        return false;
    };
    secrets.verify(&signed_bytes(document), signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate() -> Certificate {
        Certificate {
            certificate_version: 1,
            request_id: "r".into(),
            client_request_id: None,
            status: "done".into(),
            hash_algorithm: "HMAC-SHA256".into(),
            subject_hashes: vec!["ab".into()],
            purge: true,
            received_at: "2026-11-25T10:00:00Z".into(),
            started_at: "2026-11-25T10:00:00Z".into(),
            completed_at: "2026-11-25T10:00:01Z".into(),
            batch: vec![],
            tables: vec![TableReport {
                table: "t".into(),
                rows_deleted: 2,
                ..TableReport::default()
            }],
            ledger: Verification::default(),
            views: Verification::default(),
            signature_algorithm: "HMAC-SHA256".into(),
            signature: String::new(),
        }
    }

    #[test]
    fn signed_certificates_verify_and_edits_break_them() {
        let secrets = Secrets::new("secret", &"11".repeat(32)).expect("secrets");
        let mut cert = certificate();
        cert.sign(&secrets);
        let mut doc = serde_json::to_value(&cert).expect("json");
        assert!(verify_certificate(&doc, &secrets));
        doc["tables"][0]["rows_deleted"] = 3.into();
        assert!(!verify_certificate(&doc, &secrets));
        let other = Secrets::new("other", &"11".repeat(32)).expect("secrets");
        assert!(!verify_certificate(
            &serde_json::to_value(&cert).expect("json"),
            &other
        ));
    }

    /// Top-level fields later versions added: written always, not required.
    const OPTIONAL_FIELDS: [&str; 1] = ["views"];

    /// Every field the code writes is one the schema lists as required and
    /// allowed, at every level, so the two cannot drift apart.
    #[test]
    fn schema_lists_exactly_the_fields_the_code_writes() {
        let schema: Value = serde_json::from_str(include_str!("../../../schemas/certificate.schema.json"))
            .expect("schema is JSON");
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            k.sort();
            k
        };
        let listed = |node: &Value| -> (Vec<String>, Vec<String>) {
            let mut required: Vec<String> = node["required"]
                .as_array()
                .expect("required")
                .iter()
                .map(|r| r.as_str().unwrap_or_default().to_string())
                .collect();
            required.sort();
            (keys(&node["properties"]), required)
        };
        let mut cert = certificate();
        cert.sign(&Secrets::new("s", &"11".repeat(32)).expect("secrets"));
        let doc = serde_json::to_value(&cert).expect("json");
        for (written, node) in [
            (&doc, &schema),
            (&doc["tables"][0], &schema["$defs"]["table"]),
            (&doc["ledger"], &schema["$defs"]["verification"]),
            (&doc["views"], &schema["$defs"]["verification"]),
            (
                &doc["tables"][0]["timings_ms"],
                &schema["$defs"]["table"]["properties"]["timings_ms"],
            ),
        ] {
            let (properties, mut required) = listed(node);
            assert_eq!(keys(written), properties);
            // Fields added after certificates were first stored are
            // optional in the schema, so those certificates still validate.
            if std::ptr::eq(node, &schema) {
                required.extend(OPTIONAL_FIELDS.iter().map(|f| f.to_string()));
                required.sort();
            }
            assert_eq!(keys(written), required);
        }
        assert!(doc["signature"].as_str().is_some_and(|s| s.len() == 64));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": null}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }
}
