//! The known-servers pin store: trust on first use of a server's identity key, and a refusal,
//! naming both fingerprints, when the server later presents another. Feature `channel`.
//!
//! The file holds one line per server: its address, the pinned fingerprint and the public key
//! (hex). It is written through a temporary file of mode 0600 renamed over it, in a directory of
//! mode 0700.
//!
//! ```
//! use zt_crypto::pins::{KnownServers, Pin, PinError};
//!
//! let dir = tempfile::tempdir()?;
//! let known = KnownServers::new(dir.path().join("known_servers"));
//! assert_eq!(known.check("http://chat.example", "SHA256:first", "aa")?, Pin::New);
//! known.pin("http://chat.example", "SHA256:first", "aa")?;
//! assert_eq!(known.check("http://chat.example", "SHA256:first", "aa")?, Pin::Matches);
//! // Another identity for the same server is refused, naming both fingerprints.
//! let refused = known.check("http://chat.example", "SHA256:other", "bb");
//! assert!(matches!(refused, Err(PinError::Mismatch { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why the pin store refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The server presents another identity than the one pinned for it.
    #[error("{server} presents {presented}, but {pinned} is pinned for it")]
    Mismatch {
        /// The server.
        server: String,
        /// The pinned fingerprint.
        pinned: String,
        /// The presented fingerprint.
        presented: String,
    },
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What [`KnownServers::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// Nothing is pinned for the server yet.
    New,
    /// The pin matches.
    Matches,
}

/// The pins of a file (see the module docs).
#[derive(Debug, Clone)]
pub struct KnownServers {
    path: PathBuf,
}

impl KnownServers {
    /// The pins in `path` (a missing file has none).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        KnownServers { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lines(&self) -> Result<Vec<String>, PinError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(PinError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Compares the identity a server presents (`fingerprint`, `public_key` in hex) with its pin.
    ///
    /// # Errors
    /// [`PinError::Mismatch`] when another key is pinned; [`PinError::Io`].
    pub fn check(
        &self,
        server: &str,
        fingerprint: &str,
        public_key: &str,
    ) -> Result<Pin, PinError> {
        for line in self.lines()? {
            let mut parts = line.split_whitespace();
            if parts.next() != Some(server) {
                continue;
            }
            let pinned = parts.next().unwrap_or_default();
            let key = parts.next().unwrap_or_default();
            if key == public_key && pinned == fingerprint {
                return Ok(Pin::Matches);
            }
            return Err(PinError::Mismatch {
                server: server.to_owned(),
                pinned: pinned.to_owned(),
                presented: fingerprint.to_owned(),
            });
        }
        Ok(Pin::New)
    }

    /// Pins an identity for `server`, replacing any pin it had.
    ///
    /// # Errors
    /// [`PinError::Io`].
    pub fn pin(&self, server: &str, fingerprint: &str, public_key: &str) -> Result<(), PinError> {
        let mut lines = self.lines()?;
        lines.retain(|l| l.split_whitespace().next() != Some(server));
        lines.push(format!("{server} {fingerprint} {public_key}"));
        self.write(&lines)
    }

    /// Removes the pin of `server`; whether there was one.
    ///
    /// # Errors
    /// [`PinError::Io`].
    pub fn forget(&self, server: &str) -> Result<bool, PinError> {
        let mut lines = self.lines()?;
        let before = lines.len();
        lines.retain(|l| l.split_whitespace().next() != Some(server));
        if lines.len() == before {
            return Ok(false);
        }
        self.write(&lines)?;
        Ok(true)
    }

    fn write(&self, lines: &[String]) -> Result<(), PinError> {
        let mut text = lines.join("\n");
        text.push('\n');
        write_private(&self.path, text.as_bytes()).map_err(|source| PinError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Writes `bytes` to `path` through a temporary file of mode 0600 renamed over it, creating the
/// directory (mode 0700) if needed: for pins, session tokens and other client secrets.
///
/// # Errors
/// The file system's.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes).and_then(|()| file.sync_all())?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_kept_per_server_and_a_change_is_refused_with_both_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownServers::new(dir.path().join("sub/known_servers"));
        let (first, second) = (("SHA256:one", "01"), ("SHA256:two", "02"));
        assert_eq!(known.check("http://a", first.0, first.1).unwrap(), Pin::New);
        known.pin("http://a", first.0, first.1).unwrap();
        known.pin("http://b", second.0, second.1).unwrap();
        assert_eq!(
            known.check("http://a", first.0, first.1).unwrap(),
            Pin::Matches
        );
        match known.check("http://a", second.0, second.1).unwrap_err() {
            PinError::Mismatch {
                pinned, presented, ..
            } => {
                assert_eq!(pinned, first.0);
                assert_eq!(presented, second.0);
            }
            other => panic!("{other}"),
        }
        // The same fingerprint with another key is no match either.
        assert!(known.check("http://a", first.0, second.1).is_err());
        assert!(known.forget("http://a").unwrap());
        assert!(!known.forget("http://a").unwrap());
        assert_eq!(
            known.check("http://a", second.0, second.1).unwrap(),
            Pin::New
        );
        assert_eq!(
            known.check("http://b", second.0, second.1).unwrap(),
            Pin::Matches
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("sub/known_servers"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(dir.path().join("sub"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
    }
}
