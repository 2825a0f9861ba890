//! The two secrets of erasure: the HMAC secret that turns a subject into its
//! salted hash (and signs certificates), and the AES-256-GCM key that seals a
//! pending request's subjects while it waits in the ledger.
//!
//! Both come from the config (`[erasure] secret`, `key`); whichever is not
//! configured comes from `<warehouse>/_silt/erasure.key`, generated on first
//! use with mode 0600. A warehouse on an object store has no such file: there
//! both must be configured.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::error::{ErasureError, Result};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The relative path of the generated key file inside a local warehouse.
pub const KEY_FILE: &str = "_silt/erasure.key";

/// The erasure secrets. `Debug` shows nothing secret.
#[derive(Clone)]
pub struct Secrets {
    hmac_secret: Vec<u8>,
    seal_key: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

impl Secrets {
    /// From explicit values: `secret` (any non-empty text) and `key` (64 hex
    /// digits, 32 bytes).
    pub fn new(secret: &str, key: &str) -> Result<Self> {
        if secret.is_empty() {
            return Err(ErasureError::Keys("erasure.secret must not be empty".into()));
        }
        Ok(Self {
            hmac_secret: secret.as_bytes().to_vec(),
            seal_key: parse_key(key)?,
        })
    }

    /// The configured values, completed from `<local_warehouse>/_silt/erasure.key`
    /// (created if missing) when one is absent. `local_warehouse` is `None`
    /// for an object-store warehouse.
    pub fn load(secret: Option<&str>, key: Option<&str>, local_warehouse: Option<&Path>) -> Result<Self> {
        if let (Some(secret), Some(key)) = (secret, key) {
            return Self::new(secret, key);
        }
        let Some(dir) = local_warehouse else {
            return Err(ErasureError::Keys(
                "a warehouse on an object store needs [erasure] secret and key in the config".into(),
            ));
        };
        let generated = load_or_create_key_file(&dir.join(KEY_FILE))?;
        let hmac_secret = match secret {
            Some(secret) if !secret.is_empty() => secret.as_bytes().to_vec(),
            Some(_) => return Err(ErasureError::Keys("erasure.secret must not be empty".into())),
            None => generated[32..].to_vec(),
        };
        let seal_key = match key {
            Some(key) => parse_key(key)?,
            None => {
                let mut seal = [0u8; 32];
                seal.copy_from_slice(&generated[..32]);
                seal
            }
        };
        Ok(Self {
            hmac_secret,
            seal_key,
        })
    }

    /// The salted hash of a subject: hex HMAC-SHA256 under the secret.
    pub fn subject_hash(&self, subject: &str) -> String {
        hex::encode(self.mac(subject.as_bytes()))
    }

    /// Hex HMAC-SHA256 of `bytes` under the secret (certificate signatures).
    pub fn sign(&self, bytes: &[u8]) -> String {
        hex::encode(self.mac(bytes))
    }

    /// Whether `signature` (hex) is the HMAC of `bytes`, compared in constant time.
    pub fn verify(&self, bytes: &[u8], signature: &str) -> bool {
        let Ok(expected) = hex::decode(signature) else {
            return false;
        };
        let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(&self.hmac_secret) else {
            return false;
        };
        mac.update(bytes);
        mac.verify_slice(&expected).is_ok()
    }

    /// The HMAC state keyed with the secret, to clone per message (subject
    /// hashes of many cells without re-keying each time).
    pub(crate) fn keyed_mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        <HmacSha256 as KeyInit>::new_from_slice(&self.hmac_secret)
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"))
    }

    fn mac(&self, bytes: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.hmac_secret)
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"));
        mac.update(bytes);
        mac.finalize().into_bytes().to_vec()
    }

    /// Seals `plaintext` for request `id`: hex of nonce ‖ AES-256-GCM
    /// ciphertext, with the id as associated data so a sealed value cannot be
    /// moved to another request.
    pub fn seal(&self, id: &str, plaintext: &[u8]) -> Result<String> {
        let cipher = Aes256Gcm::new_from_slice(&self.seal_key)
            .map_err(|_| ErasureError::Keys("bad encryption key length".into()))?;
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| ErasureError::Keys("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(hex::encode(out))
    }

    /// Opens what [`Secrets::seal`] made for request `id`.
    pub fn open(&self, id: &str, sealed: &str) -> Result<Vec<u8>> {
        let fail = |reason: &str| ErasureError::Sealed {
            id: id.to_string(),
            reason: reason.to_string(),
        };
        let bytes = hex::decode(sealed).map_err(|_| fail("not hex"))?;
        if bytes.len() < 12 + 16 {
            return Err(fail("too short"));
        }
        let cipher = Aes256Gcm::new_from_slice(&self.seal_key).map_err(|_| fail("bad key length"))?;
        let (nonce, ciphertext) = bytes.split_at(12);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| fail("authentication failed: is [erasure] key the one it was sealed with?"))
    }
}

fn parse_key(key: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(key.trim())
        .map_err(|_| ErasureError::Keys("erasure.key must be 64 hex digits (32 bytes)".into()))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| ErasureError::Keys("erasure.key must be 64 hex digits (32 bytes)".into()))
}

/// Reads the 64-byte key file, or creates it with fresh random bytes (mode
/// 0600: only the server's user may read it).
fn load_or_create_key_file(path: &PathBuf) -> Result<Vec<u8>> {
    let keys = |e: std::io::Error| ErasureError::Keys(format!("key file '{}': {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|_| {
                ErasureError::Keys(format!("key file '{}' is not 128 hex digits", path.display()))
            })?;
            if bytes.len() != 64 {
                return Err(ErasureError::Keys(format!(
                    "key file '{}' is not 128 hex digits",
                    path.display()
                )));
            }
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(keys)?;
            }
            let mut bytes = vec![0u8; 64];
            rand::rng().fill_bytes(&mut bytes);
            write_private(path, hex::encode(&bytes).as_bytes()).map_err(keys)?;
            tracing::info!(path = %path.display(), "generated erasure key file");
            // Another process may have won the race; whatever is on disk now rules.
            let text = std::fs::read_to_string(path).map_err(keys)?;
            hex::decode(text.trim())
                .ok()
                .filter(|b| b.len() == 64)
                .ok_or_else(|| ErasureError::Keys(format!("key file '{}' is damaged", path.display())))
        }
        Err(e) => Err(keys(e)),
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(contents)?;
            file.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_is_bound_to_the_request() {
        let secrets = Secrets::new("s", &"ab".repeat(32)).expect("secrets");
        let sealed = secrets.seal("r1", b"[\"alice\"]").expect("seal");
        assert!(!sealed.contains("alice"));
        assert_eq!(secrets.open("r1", &sealed).expect("open"), b"[\"alice\"]");
        assert!(secrets.open("r2", &sealed).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Secrets::load(None, None, Some(dir.path())).expect("create");
        let b = Secrets::load(None, None, Some(dir.path())).expect("reuse");
        assert_eq!(a.subject_hash("x"), b.subject_hash("x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(Secrets::load(None, None, None).is_err());
    }

    #[test]
    fn signatures_verify_and_detect_edits() {
        let secrets = Secrets::new("s", &"00".repeat(32)).expect("secrets");
        let signature = secrets.sign(b"{\"a\":1}");
        assert!(secrets.verify(b"{\"a\":1}", &signature));
        assert!(!secrets.verify(b"{\"a\":2}", &signature));
        assert_eq!(secrets.subject_hash("alice").len(), 64);
    }
}
