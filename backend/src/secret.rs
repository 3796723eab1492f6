//! Sealing of stored XMPP passwords.
//!
//! Scheme (see `doc/security.rst`): a 256-bit key, generated at first start from the
//! OS's CSPRNG, lives in `<data dir>/secret.key` (mode 0600). Each password is sealed
//! with ChaCha20-Poly1305 under a fresh random 96-bit nonce, and stored as `v1:` +
//! base64(nonce ‖ ciphertext ‖ tag). The associated data binds the password to the
//! profile's connection settings (name, JID, server, CA file, insecure flag): someone
//! who can write the database but not read the key cannot move a password to another
//! profile, nor point a profile at their own server or turn verification off and have
//! perchd hand them the password — the password no longer opens.
//!
//! What it protects against: the database leaking on its own (a backup, a synced
//! folder, a bug report with the .db attached) reveals no password. What it does not:
//! someone who can read both files as the user — the daemon must be able to log in
//! unattended, so the key has to be where the daemon can read it.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// A password in memory; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {0} is not a 32-byte key")]
    BadKey(String),
    #[error(
        "the stored password of profile {0:?} does not open: it was sealed with another key \
         (secret.key lost or replaced) or the profile's settings were changed behind perchd's back; \
         set the password again"
    )]
    Open(String),
    #[error("the system random generator failed")]
    Random,
}

/// The daemon's sealing key.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(***)")
    }
}

const PREFIX: &str = "v1:";

fn aad(binding: &str) -> Vec<u8> {
    let mut a = b"perch profile password\0".to_vec();
    a.extend_from_slice(binding.as_bytes());
    a
}

fn secret_aad(binding: &str) -> Vec<u8> {
    let mut a = b"perch plugin secret\0".to_vec();
    a.extend_from_slice(binding.as_bytes());
    a
}

impl Sealer {
    /// Loads the key from `path`, creating it (0600) on first use.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let err = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        let rng = SystemRandom::new();
        let bytes = match std::fs::read(path) {
            Ok(b) => {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path).map_err(err)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(key = %path.display(), mode = format!("{:o}", mode & 0o777), "key file readable by others; restricting it to its owner");
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                        .map_err(err)?;
                }
                b
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = [0u8; 32];
                rng.fill(&mut k).map_err(|_| SecretError::Random)?;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(err)?;
                f.write_all(&k).map_err(err)?;
                f.sync_all().map_err(err)?;
                k.to_vec()
            }
            Err(e) => return Err(err(e)),
        };
        Self::from_bytes(&bytes).ok_or_else(|| SecretError::BadKey(path.display().to_string()))
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).ok()?;
        (bytes.len() == 32).then(|| Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// Seals `password` for the profile whose settings are summed up in `binding`.
    pub fn seal(&self, binding: &str, password: &Password) -> Result<String, SecretError> {
        self.seal_with(aad(binding), password.expose().as_bytes().to_vec())
    }

    /// Seals a plugin's secret (an OMEMO identity key), bound to `binding` (the
    /// plugin and the profile) under associated data of its own: a sealed secret
    /// never opens as a password, nor a password as a secret.
    pub fn seal_secret(&self, binding: &str, secret: &[u8]) -> Result<String, SecretError> {
        self.seal_with(secret_aad(binding), secret.to_vec())
    }

    /// Opens what `seal_secret` produced for the same binding.
    pub fn open_secret(
        &self,
        profile: &str,
        binding: &str,
        sealed: &str,
    ) -> Result<Vec<u8>, SecretError> {
        self.open_with(profile, secret_aad(binding), sealed)
    }

    fn seal_with(&self, aad: Vec<u8>, mut data: Vec<u8>) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SecretError::Random)?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut data,
            )
            .map_err(|_| SecretError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        data.fill(0);
        Ok(format!("{PREFIX}{}", B64.encode(out)))
    }

    /// Opens what `seal` produced for the same binding; `profile` names it in errors.
    pub fn open(
        &self,
        profile: &str,
        binding: &str,
        sealed: &str,
    ) -> Result<Password, SecretError> {
        let plain = self.open_with(profile, aad(binding), sealed)?;
        String::from_utf8(plain)
            .map(Password)
            .map_err(|_| SecretError::Open(profile.to_owned()))
    }

    fn open_with(&self, profile: &str, aad: Vec<u8>, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let fail = || SecretError::Open(profile.to_owned());
        let raw = sealed.strip_prefix(PREFIX).ok_or_else(fail)?;
        let mut bytes = B64.decode(raw).map_err(|_| fail())?;
        if bytes.len() < NONCE_LEN {
            return Err(fail());
        }
        let mut data = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| fail())?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut data)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let s = Sealer::load_or_create(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let pw = Password::new("correct horse".into());
        let sealed = s.seal("alice", &pw).unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("correct"));
        // Two seals of the same password differ (fresh nonce).
        assert_ne!(sealed, s.seal("alice", &pw).unwrap());
        // The key file is reused on the next start.
        let s2 = Sealer::load_or_create(&path).unwrap();
        assert_eq!(s2.open("alice", "alice", &sealed).unwrap(), pw);
        // Bound to the profile's settings, and tamper-evident.
        assert!(s2.open("alice", "bob", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(s2.open("alice", "alice", &tampered).is_err());
        assert!(s2.open("alice", "alice", "plain").is_err());
    }

    #[test]
    fn secrets_and_passwords_never_open_as_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sealer::load_or_create(&dir.path().join("secret.key")).unwrap();
        let sealed = s.seal_secret("XEP-0384\0p1", b"\x01\x02seed").unwrap();
        assert_eq!(
            s.open_secret("p", "XEP-0384\0p1", &sealed).unwrap(),
            b"\x01\x02seed"
        );
        assert!(s.open_secret("p", "XEP-0384\0p2", &sealed).is_err());
        assert!(s.open("p", "XEP-0384\0p1", &sealed).is_err());
        let pw = s.seal("XEP-0384\0p1", &Password::new("pw".into())).unwrap();
        assert!(s.open_secret("p", "XEP-0384\0p1", &pw).is_err());
    }

    #[test]
    fn debug_never_shows_password() {
        let pw = Password::new("hunter2".into());
        assert!(!format!("{pw:?}").contains("hunter2"));
    }

    #[test]
    fn short_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            Sealer::load_or_create(&path),
            Err(SecretError::BadKey(_))
        ));
    }
}
