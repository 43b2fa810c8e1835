//! Provider credentials sealed at rest with AES-256-GCM.
//!
//! The 256-bit key is the SHA-256 of `TOLLGATE_SECRET_KEY` (surrounding whitespace ignored),
//! so any long random string works as the variable's value (`openssl rand -hex 32`). A
//! password-hashing KDF would add nothing: the value is a machine secret, not a password.
//! Without the variable, a random value is generated once into `TOLLGATE_DATA_DIR/secret.key`
//! (mode 0600) and read from there on every start; copying that file's content into
//! `TOLLGATE_SECRET_KEY` later keeps every stored credential readable.
//!
//! Each value gets a fresh random 96-bit nonce, and its associated data is
//! `provider/owner` ([`credential_id`]), so a ciphertext copied onto another owner's row does
//! not open.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{CredentialRecord, NewCredential, StoreError, credential_id};

/// Name of the generated key file in the data directory.
pub const SECRET_KEY_FILE: &str = "secret.key";

/// AES-GCM's standard nonce length.
const NONCE_LEN: usize = 12;
/// Random bytes in a generated key (hex-encoded into the file).
const GENERATED_KEY_BYTES: usize = 32;
/// Shorter `TOLLGATE_SECRET_KEY` values are accepted with a warning.
const SHORT_KEY_CHARS: usize = 16;

/// Seals and opens provider credentials with the process's secret key. Cheap to share behind
/// an `Arc`; `Debug` never shows the key.
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox { .. }")
    }
}

impl SecretBox {
    /// The box for a `TOLLGATE_SECRET_KEY` value: the AES key is SHA-256 of the trimmed value.
    pub fn from_env_value(key: &str) -> Result<SecretBox, StoreError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(StoreError::Crypto(
                "TOLLGATE_SECRET_KEY is empty; set it to a long random value \
                 (e.g. the output of `openssl rand -hex 32`)"
                    .to_owned(),
            ));
        }
        if key.chars().count() < SHORT_KEY_CHARS {
            tracing::warn!(
                "TOLLGATE_SECRET_KEY is shorter than {SHORT_KEY_CHARS} characters; \
                 use a long random value such as `openssl rand -hex 32`"
            );
        }
        let digest = Sha256::digest(key.as_bytes());
        Ok(SecretBox { cipher: Aes256Gcm::new(&digest) })
    }

    /// The box for `TOLLGATE_SECRET_KEY` when it is set (and not blank); otherwise for the key
    /// kept in `data_dir/secret.key`, generated there on first use. The latter logs a warning:
    /// in production the key should be set explicitly and backed up.
    pub fn load_or_create(
        env_value: Option<&str>,
        data_dir: &Path,
    ) -> Result<SecretBox, StoreError> {
        if let Some(value) = env_value.filter(|v| !v.trim().is_empty()) {
            return SecretBox::from_env_value(value);
        }
        let path = data_dir.join(SECRET_KEY_FILE);
        let value = read_or_create_key_file(data_dir, &path)?;
        tracing::warn!(
            path = %path.display(),
            "TOLLGATE_SECRET_KEY is not set: provider credentials are encrypted with the key \
             kept in this file. In production set TOLLGATE_SECRET_KEY (for example to this \
             file's content) and back it up; without it, stored credentials cannot be read"
        );
        SecretBox::from_env_value(&value)
    }

    /// Encrypts `plaintext` bound to `associated`; returns `(ciphertext with tag, nonce)`.
    /// Fails only for inputs far beyond any credential's size (AES-GCM's 64 GiB limit).
    pub fn seal(
        &self,
        plaintext: &[u8],
        associated: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: associated })
            .map_err(|_| StoreError::Crypto("cannot encrypt the credential".to_owned()))?;
        Ok((ciphertext, nonce.to_vec()))
    }

    /// Decrypts what [`SecretBox::seal`] returned for the same `associated` data.
    pub fn open(
        &self,
        ciphertext: &[u8],
        nonce: &[u8],
        associated: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        if nonce.len() != NONCE_LEN {
            return Err(StoreError::Crypto(format!(
                "the stored credential is corrupt: its nonce has {} bytes, expected {NONCE_LEN}",
                nonce.len()
            )));
        }
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: associated })
            .map_err(|_| {
                StoreError::Crypto(
                    "cannot decrypt a stored credential: the secret key changed since it was \
                     stored (TOLLGATE_SECRET_KEY, or secret.key in the data directory when the \
                     variable is unset). Restore the previous key, or link the account again"
                        .to_owned(),
                )
            })
    }

    /// A credential ready for [`crate::StoreApi::put_credential`]: `secret` sealed with
    /// `provider/owner` as associated data.
    pub fn seal_credential(
        &self,
        provider: &str,
        owner: &str,
        label: Option<String>,
        secret: &str,
    ) -> Result<NewCredential, StoreError> {
        let aad = credential_id(provider, owner);
        let (ciphertext, nonce) = self.seal(secret.as_bytes(), aad.as_bytes())?;
        Ok(NewCredential {
            provider: provider.to_owned(),
            owner: owner.to_owned(),
            label,
            ciphertext,
            nonce,
        })
    }

    /// The plaintext of a stored credential sealed by [`SecretBox::seal_credential`].
    pub fn open_credential(&self, record: &CredentialRecord) -> Result<String, StoreError> {
        let aad = credential_id(&record.provider, &record.owner);
        let plain = self.open(&record.ciphertext, &record.nonce, aad.as_bytes())?;
        String::from_utf8(plain).map_err(|_| {
            StoreError::Crypto("the stored credential is corrupt: it is not UTF-8".to_owned())
        })
    }
}

/// The key file's (trimmed) content, creating the file with a random value when missing.
fn read_or_create_key_file(data_dir: &Path, path: &Path) -> Result<String, StoreError> {
    match read_key_file(path) {
        Ok(value) => return Ok(value),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(key_file_error(path, &e)),
    }
    std::fs::create_dir_all(data_dir).map_err(|e| key_file_error(data_dir, &e))?;
    let mut bytes = [0u8; GENERATED_KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let value = hex::encode(bytes);
    match publish_key_file(data_dir, path, &value) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a secret key for provider credentials");
            Ok(value)
        }
        // Another process (e.g. the proxy and the auth helper starting together) won the race.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            read_key_file(path).map_err(|e| key_file_error(path, &e))
        }
        Err(e) => Err(key_file_error(path, &e)),
    }
}

fn read_key_file(path: &Path) -> io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    warn_if_readable_by_others(path);
    let value = text.trim();
    if value.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "the file is empty"));
    }
    Ok(value.to_owned())
}

/// Writes the key to a private temporary file, then hard-links it into place, so no reader
/// ever sees a half-written key and two racing processes agree on one. Where hard links are
/// unsupported, falls back to creating the file exclusively.
fn publish_key_file(data_dir: &Path, path: &Path, value: &str) -> io::Result<()> {
    let mut suffix = [0u8; 8];
    rand::rng().fill_bytes(&mut suffix);
    let temp = data_dir.join(format!(".{SECRET_KEY_FILE}.{}.tmp", hex::encode(suffix)));
    write_private(&temp, value)?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => write_private(path, value),
        other => other,
    }
}

/// Creates `path` (failing if it exists) readable by its owner only, with `value` in it.
fn write_private(path: &Path, value: &str) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(value.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the secret key file is readable by other users; restrict it with `chmod 600`"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

fn key_file_error(path: &Path, e: &io::Error) -> StoreError {
    let path: PathBuf = path.to_owned();
    StoreError::Crypto(format!(
        "cannot use the secret key file {}: {e}. Set TOLLGATE_SECRET_KEY, or fix or remove the \
         file (removing it makes stored credentials unreadable)",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(key: &str) -> SecretBox {
        SecretBox::from_env_value(key).unwrap()
    }

    #[test]
    fn seals_and_opens_with_the_same_key_and_associated_data() {
        let sb = boxed("a long enough test secret key");
        let (ciphertext, nonce) = sb.seal(b"ghu_token", b"github_copilot/default").unwrap();
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_ne!(ciphertext, b"ghu_token");
        assert!(!ciphertext.windows(9).any(|w| w == b"ghu_token"));
        let plain = sb.open(&ciphertext, &nonce, b"github_copilot/default").unwrap();
        assert_eq!(plain, b"ghu_token");
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let sb = boxed("a long enough test secret key");
        let (c1, n1) = sb.seal(b"same", b"aad").unwrap();
        let (c2, n2) = sb.seal(b"same", b"aad").unwrap();
        assert_ne!(n1, n2);
        assert_ne!(c1, c2);
    }

    #[test]
    fn another_owner_cannot_open_it() {
        let sb = boxed("a long enough test secret key");
        let (ciphertext, nonce) = sb.seal(b"ghu_token", b"github_copilot/default").unwrap();
        assert!(sb.open(&ciphertext, &nonce, b"github_copilot/key:abc").is_err());
    }

    #[test]
    fn a_changed_key_is_named_in_the_error() {
        let (ciphertext, nonce) =
            boxed("the first secret key value").seal(b"ghu_token", b"aad").unwrap();
        let err = boxed("another secret key value!").open(&ciphertext, &nonce, b"aad").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("secret key changed"), "{text}");
        assert!(!text.contains("ghu_token"));
    }

    #[test]
    fn corrupt_nonces_are_reported() {
        let sb = boxed("a long enough test secret key");
        let (ciphertext, _) = sb.seal(b"x", b"aad").unwrap();
        let err = sb.open(&ciphertext, &[0; 5], b"aad").unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn whitespace_is_ignored_and_empty_values_refused() {
        let (ciphertext, nonce) = boxed("  padded secret key value \n").seal(b"v", b"a").unwrap();
        assert_eq!(boxed("padded secret key value").open(&ciphertext, &nonce, b"a").unwrap(), b"v");
        assert!(SecretBox::from_env_value("   ").is_err());
    }

    #[test]
    fn credentials_round_trip_bound_to_provider_and_owner() {
        let sb = boxed("a long enough test secret key");
        let new = sb.seal_credential("github_copilot", "default", None, "ghu_secret").unwrap();
        let mut record = CredentialRecord {
            provider: new.provider,
            owner: new.owner,
            label: None,
            ciphertext: new.ciphertext,
            nonce: new.nonce,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        assert_eq!(sb.open_credential(&record).unwrap(), "ghu_secret");
        record.owner = "key:other".to_owned();
        assert!(sb.open_credential(&record).is_err());
    }

    #[test]
    fn the_variable_wins_and_no_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let sb =
            SecretBox::load_or_create(Some("a long enough test secret key"), dir.path()).unwrap();
        assert!(!dir.path().join(SECRET_KEY_FILE).exists());
        let (c, n) = sb.seal(b"v", b"a").unwrap();
        assert_eq!(boxed("a long enough test secret key").open(&c, &n, b"a").unwrap(), b"v");
    }

    #[test]
    fn without_the_variable_a_private_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nested");
        let first = SecretBox::load_or_create(None, &data_dir).unwrap();
        let path = data_dir.join(SECRET_KEY_FILE);
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(content.trim().len(), GENERATED_KEY_BYTES * 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (c, n) = first.seal(b"v", b"a").unwrap();
        // A blank variable counts as unset; the file is reused, not replaced.
        let second = SecretBox::load_or_create(Some("  "), &data_dir).unwrap();
        assert_eq!(second.open(&c, &n, b"a").unwrap(), b"v");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        // Moving the file's value into the variable keeps credentials readable.
        let from_env = SecretBox::load_or_create(Some(content.trim()), dir.path()).unwrap();
        assert_eq!(from_env.open(&c, &n, b"a").unwrap(), b"v");
        // No temporary files are left behind.
        let names: Vec<_> =
            std::fs::read_dir(&data_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [SECRET_KEY_FILE]);
    }

    #[test]
    fn an_empty_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SECRET_KEY_FILE), "\n").unwrap();
        let err = SecretBox::load_or_create(None, dir.path()).unwrap_err();
        assert!(err.to_string().contains("secret key file"), "{err}");
    }

    #[test]
    fn debug_does_not_show_the_key() {
        assert_eq!(format!("{:?}", boxed("a long enough test secret key")), "SecretBox { .. }");
    }
}
