//! Settings: flags over `ZT_*` environment variables over a TOML file over defaults. The KMS
//! passphrase is never a flag or a file setting: it comes from `ZT_KMS_PASSPHRASE` or from the
//! file named by `--kms-passphrase-file` (see [`crate::deployment`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::connections::Connections;
use crate::deployment::Passphrase;
use crate::limits::Limits;

/// The address the server listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The data directory unless told otherwise, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "zt-data";

/// Where a deployment's data and KMS passphrase are, as given on the command line or in the
/// environment (clap reads both; the flag wins). Every command that opens a data directory takes
/// these.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct DataArgs {
    /// A TOML file with settings; flags and environment variables override it.
    #[arg(long, env = "ZT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the deployment keeps its files (created if missing, mode 0700).
    #[arg(long, env = "ZT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The file holding the KMS passphrase [default: DIR.kms-passphrase beside the data
    /// directory]. `ZT_KMS_PASSPHRASE`, when set, is the passphrase itself and wins.
    #[arg(long, env = "ZT_KMS_PASSPHRASE_FILE", value_name = "FILE")]
    pub kms_passphrase_file: Option<PathBuf>,
}

/// The settings of `serve`: [`DataArgs`] and the address.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// The data directory and passphrase.
    #[command(flatten)]
    pub data: DataArgs,
    /// The address to listen on, such as 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, env = "ZT_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// A PEM file with the TLS certificate chain; with --tls-key, the server answers HTTPS only.
    #[arg(long, env = "ZT_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM file with the certificate's private key.
    #[arg(long, env = "ZT_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Print the settings that would be used, as a settings file, and exit (opens nothing).
    #[arg(long)]
    pub print_config: bool,
}

/// The settings a TOML file may hold. Unknown keys are an error, so a typo is not ignored. The
/// passphrase itself is never read from this file.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// See [`DataArgs::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`DataArgs::kms_passphrase_file`].
    pub kms_passphrase_file: Option<PathBuf>,
    /// See [`ServeArgs::listen`].
    pub listen: Option<SocketAddr>,
    /// The API's rate limits (`[limits]`).
    pub limits: Option<Limits>,
    /// Connection limits and deadlines (`[connections]`).
    pub connections: Option<Connections>,
    /// The retention schedule and floor (`[retention]`).
    pub retention: Option<Retention>,
    /// See [`ServeArgs::tls_cert`].
    pub tls_cert: Option<PathBuf>,
    /// See [`ServeArgs::tls_key`].
    pub tls_key: Option<PathBuf>,
    /// Backups (`[backups]`); off without recovery recipients.
    pub backups: Option<BackupsFile>,
    /// Update checks (`[updates]`).
    pub updates: Option<UpdatesFile>,
}

/// `[updates]` in the settings file.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpdatesFile {
    /// The release key manifests must be signed with: its 32 bytes in hex (pinned here).
    pub release_key: String,
    /// The release manifest file (JSON); its signature is the file beside it with `.sig` added.
    pub manifest: PathBuf,
}

/// Update checks as the server runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatesConfig {
    /// The pinned release key.
    pub release_key: zt_crypto::VerifyingKey,
    /// The manifest file.
    pub manifest: PathBuf,
}

impl UpdatesFile {
    /// The pinned key parsed.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when `release_key` is not a hex Ed25519 public key.
    pub fn resolve(&self) -> Result<UpdatesConfig, ConfigError> {
        let bad = || ConfigError::Invalid("updates: release_key is not a hex Ed25519 key".into());
        let bytes = hex::decode(self.release_key.trim()).map_err(|_| bad())?;
        let bytes = <[u8; 32]>::try_from(bytes).map_err(|_| bad())?;
        Ok(UpdatesConfig {
            release_key: zt_crypto::VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?,
            manifest: self.manifest.clone(),
        })
    }
}

/// `[backups]` in the settings file.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackupsFile {
    /// The backup directory [default: DIR.backups beside the data directory].
    pub dir: Option<PathBuf>,
    /// The recovery recipients (`age1…`), public halves of identities kept offline (made with
    /// `zt-chat-server backup recovery-identity`). Backups are on when there is at least one.
    #[serde(default)]
    pub recovery_recipients: Vec<String>,
}

/// Backups as the server takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfig {
    /// The backup directory.
    pub dir: PathBuf,
    /// The recovery recipients.
    pub recovery: Vec<zt_crypto::archive::ArchiveRecipient>,
}

impl BackupsFile {
    /// The backups these settings turn on, for the deployment in `data_dir`; `None` without
    /// recovery recipients.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a recipient that is not an age X25519 public key.
    pub fn resolve(&self, data_dir: &Path) -> Result<Option<BackupConfig>, ConfigError> {
        if self.recovery_recipients.is_empty() {
            return Ok(None);
        }
        let recovery = self
            .recovery_recipients
            .iter()
            .map(|text| {
                text.parse()
                    .map_err(|e| ConfigError::Invalid(format!("backups: recovery_recipients: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(BackupConfig {
            dir: self
                .dir
                .clone()
                .unwrap_or_else(|| crate::deployment::beside(data_dir, "backups")),
            recovery,
        }))
    }
}

/// How retention of messages and files runs (`[retention]` in the settings file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Seconds between the runs over every workspace (60 to 604,800).
    pub interval_secs: u64,
    /// The shortest period a workspace or channel policy may set, in seconds: what this
    /// deployment keeps at least.
    pub floor_secs: u64,
    /// The shortest delay a workspace wipe may be scheduled with, in seconds (wipes that are
    /// due run on the same schedule as retention).
    pub wipe_delay_floor_secs: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            interval_secs: 3600,
            floor_secs: 24 * 3600,
            wipe_delay_floor_secs: 24 * 3600,
        }
    }
}

/// The certificate and key files of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The PEM certificate chain.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

/// Where a deployment is and how to unlock it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSettings {
    /// Where the deployment keeps its files.
    pub data_dir: PathBuf,
    /// Where the KMS passphrase comes from.
    pub passphrase: Passphrase,
}

/// The settings the server runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The deployment.
    pub data: DataSettings,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The API's rate limits.
    pub limits: Limits,
    /// Connection limits and deadlines.
    pub connections: Connections,
    /// The retention schedule and floor.
    pub retention: Retention,
    /// TLS, when configured: then the server answers HTTPS only.
    pub tls: Option<TlsFiles>,
    /// Backups, when recovery recipients are configured.
    pub backups: Option<BackupConfig>,
    /// Update checks, when a release key is pinned.
    pub updates: Option<UpdatesConfig>,
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Settings {
    /// The settings as a settings file: what `serve --print-config` prints. The passphrase
    /// itself never appears; when it comes from `ZT_KMS_PASSPHRASE` a comment says so.
    pub fn to_toml(&self) -> String {
        let passphrase = match &self.data.passphrase {
            Passphrase::File(file) => format!(
                "kms_passphrase_file = {}\n",
                toml_string(&file.to_string_lossy())
            ),
            Passphrase::Given(_) => format!("# the KMS passphrase comes from {PASSPHRASE_ENV}\n"),
        };
        let l = &self.limits;
        let c = &self.connections;
        let tls = match &self.tls {
            Some(files) => format!(
                "tls_cert = {}\ntls_key = {}\n",
                toml_string(&files.cert.to_string_lossy()),
                toml_string(&files.key.to_string_lossy())
            ),
            None => String::new(),
        };
        let backups = match &self.backups {
            Some(b) => format!(
                "\n[backups]\ndir = {}\nrecovery_recipients = [{}]\n",
                toml_string(&b.dir.to_string_lossy()),
                b.recovery
                    .iter()
                    .map(|r| toml_string(&r.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        let updates = match &self.updates {
            Some(u) => format!(
                "\n[updates]\nrelease_key = {}\nmanifest = {}\n",
                toml_string(&hex::encode(u.release_key.to_bytes())),
                toml_string(&u.manifest.to_string_lossy())
            ),
            None => String::new(),
        };
        let text = format!(
            "data_dir = {}\n{passphrase}listen = \"{}\"\n{tls}\n[limits]\n\
             per_address_per_second = {:?}\nper_address_burst = {:?}\n\
             per_user_per_second = {:?}\nper_user_burst = {:?}\n\
             per_scim_key_per_second = {:?}\nper_scim_key_burst = {:?}\n\n[connections]\n\
             per_address = {}\ntotal = {}\nheader_timeout_secs = {}\nbody_timeout_secs = {}\n\n\
             [retention]\ninterval_secs = {}\nfloor_secs = {}\nwipe_delay_floor_secs = {}\n",
            toml_string(&self.data.data_dir.to_string_lossy()),
            self.listen,
            l.per_address_per_second,
            l.per_address_burst,
            l.per_user_per_second,
            l.per_user_burst,
            l.per_scim_key_per_second,
            l.per_scim_key_burst,
            c.per_address,
            c.total,
            c.header_timeout_secs,
            c.body_timeout_secs,
            self.retention.interval_secs,
            self.retention.floor_secs,
            self.retention.wipe_delay_floor_secs,
        );
        text + &backups + &updates
    }
}

/// The environment variable holding the KMS passphrase itself.
pub const PASSPHRASE_ENV: &str = "ZT_KMS_PASSPHRASE";

/// A settings file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read settings file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An environment variable is unusable.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong (never its value).
        message: String,
    },
    /// A value out of its range.
    #[error("{0}")]
    Invalid(String),
    /// Only one of the TLS certificate and key is given.
    #[error("TLS needs both a certificate (tls_cert) and a key (tls_key), or neither")]
    TlsHalf,
    /// The file is not valid settings TOML.
    #[error("settings file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        message: String,
    },
}

/// Parses settings TOML.
pub fn parse_file(path: &Path, text: &str) -> Result<FileSettings, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `ZT_KMS_PASSPHRASE`, unless unset or empty.
fn passphrase_from_env() -> Result<Option<SecretString>, ConfigError> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(SecretString::from(value))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::Env {
            name: PASSPHRASE_ENV,
            message: "not valid UTF-8".into(),
        }),
    }
}

impl DataArgs {
    fn file(&self) -> Result<FileSettings, ConfigError> {
        match &self.config {
            None => Ok(FileSettings::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_file(path, &text)
            }
        }
    }

    /// Merges flags and environment (already merged by clap) over the settings file over
    /// defaults.
    pub fn resolve(&self) -> Result<DataSettings, ConfigError> {
        Ok(self.merge(&self.file()?, passphrase_from_env()?))
    }

    fn merge(&self, file: &FileSettings, env_passphrase: Option<SecretString>) -> DataSettings {
        let data_dir = self
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let passphrase = match env_passphrase {
            Some(secret) => Passphrase::Given(secret),
            None => Passphrase::File(
                self.kms_passphrase_file
                    .clone()
                    .or_else(|| file.kms_passphrase_file.clone())
                    .unwrap_or_else(|| Passphrase::default_file(&data_dir)),
            ),
        };
        DataSettings {
            data_dir,
            passphrase,
        }
    }
}

impl ServeArgs {
    /// Merges flags and environment (already merged by clap) over the settings file over
    /// defaults.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let file = self.data.file()?;
        self.merge(&file, passphrase_from_env()?)
    }

    fn merge(
        &self,
        file: &FileSettings,
        env_passphrase: Option<SecretString>,
    ) -> Result<Settings, ConfigError> {
        let default_listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        let cert = self.tls_cert.clone().or_else(|| file.tls_cert.clone());
        let key = self.tls_key.clone().or_else(|| file.tls_key.clone());
        let tls = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => return Err(ConfigError::TlsHalf),
        };
        Ok(Settings {
            data: self.data.merge(file, env_passphrase),
            listen: self.listen.or(file.listen).unwrap_or(default_listen),
            limits: file.limits.unwrap_or_default(),
            connections: {
                let connections = file.connections.unwrap_or_default();
                connections.check().map_err(ConfigError::Invalid)?;
                connections
            },
            retention: {
                let retention = file.retention.unwrap_or_default();
                if !(60..=7 * 24 * 3600).contains(&retention.interval_secs) {
                    return Err(ConfigError::Invalid(
                        "retention: interval_secs is 60 to 604800".into(),
                    ));
                }
                retention
            },
            tls,
            backups: match &file.backups {
                Some(b) => b.resolve(&self.data.merge(file, None).data_dir)?,
                None => None,
            },
            updates: file
                .updates
                .as_ref()
                .map(UpdatesFile::resolve)
                .transpose()?,
        })
    }
}

impl DataArgs {
    /// The backups the settings file turns on, for the offline `backup` commands.
    ///
    /// # Errors
    /// As [`DataArgs::resolve`]; [`ConfigError::Invalid`] for a bad recipient.
    pub fn backups(&self) -> Result<Option<BackupConfig>, ConfigError> {
        let file = self.file()?;
        let data_dir = self.merge(&file, None).data_dir;
        match &file.backups {
            Some(b) => b.resolve(&data_dir),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file = parse_file(
            Path::new("t.toml"),
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/zt\"\n",
        )
        .unwrap();
        let none = ServeArgs::default();
        assert_eq!(
            none.merge(&file, None).unwrap(),
            Settings {
                data: DataSettings {
                    data_dir: "/srv/zt".into(),
                    passphrase: Passphrase::File("/srv/zt.kms-passphrase".into()),
                },
                listen: "0.0.0.0:9000".parse().unwrap(),
                limits: Limits::default(),
                connections: Connections::default(),
                retention: Retention::default(),
                tls: None,
                backups: None,
                updates: None,
            }
        );
        let flags = ServeArgs {
            listen: Some("127.0.0.1:1".parse().unwrap()),
            data: DataArgs {
                kms_passphrase_file: Some("/run/secrets/zt".into()),
                ..DataArgs::default()
            },
            ..ServeArgs::default()
        };
        let merged = flags.merge(&file, None).unwrap();
        assert_eq!(merged.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(merged.data.data_dir, PathBuf::from("/srv/zt"));
        assert_eq!(
            merged.data.passphrase,
            Passphrase::File("/run/secrets/zt".into())
        );
        let defaults = none.merge(&FileSettings::default(), None).unwrap();
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(defaults.data.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(
            defaults.data.passphrase,
            Passphrase::File("zt-data.kms-passphrase".into())
        );
    }

    #[test]
    fn the_passphrase_from_the_environment_wins_over_any_file() {
        let file = parse_file(Path::new("t.toml"), "kms_passphrase_file = \"/x\"\n").unwrap();
        let args = DataArgs {
            kms_passphrase_file: Some("/y".into()),
            ..DataArgs::default()
        };
        let secret = SecretString::from("from the environment");
        assert_eq!(
            args.merge(&file, Some(secret.clone())).passphrase,
            Passphrase::Given(secret)
        );
        assert_eq!(
            args.merge(&file, None).passphrase,
            Passphrase::File("/y".into())
        );
    }

    #[test]
    fn printed_settings_read_back_as_the_same_settings() {
        let settings = ServeArgs {
            listen: Some("0.0.0.0:9443".parse().unwrap()),
            data: DataArgs {
                data_dir: Some("/srv/zt \"data\"\\x".into()),
                ..DataArgs::default()
            },
            tls_cert: Some("/etc/zt/cert.pem".into()),
            tls_key: Some("/etc/zt/key.pem".into()),
            ..ServeArgs::default()
        }
        .merge(&FileSettings::default(), None)
        .unwrap();
        let text = settings.to_toml();
        let file = parse_file(Path::new("printed.toml"), &text).unwrap();
        assert_eq!(ServeArgs::default().merge(&file, None).unwrap(), settings);
        let from_env = ServeArgs::default()
            .merge(
                &FileSettings::default(),
                Some(SecretString::from("a secret passphrase")),
            )
            .unwrap();
        let text = from_env.to_toml();
        assert!(text.contains("ZT_KMS_PASSPHRASE") && !text.contains("a secret passphrase"));
    }

    #[test]
    fn the_annotated_sample_is_valid_and_shows_the_defaults() {
        let sample = include_str!("../zt-chat-server.sample.toml");
        let file = parse_file(Path::new("sample.toml"), sample).unwrap();
        let defaults = ServeArgs::default()
            .merge(&FileSettings::default(), None)
            .unwrap();
        assert_eq!(ServeArgs::default().merge(&file, None).unwrap(), defaults);
        // Every setting the file may hold is in the sample.
        for key in [
            "data_dir",
            "kms_passphrase_file",
            "listen",
            "[limits]",
            "per_address_per_second",
            "per_address_burst",
            "per_user_per_second",
            "per_user_burst",
            "[connections]",
            "per_address =",
            "total",
            "header_timeout_secs",
            "body_timeout_secs",
            "tls_cert",
            "tls_key",
        ] {
            assert!(sample.contains(key), "{key}");
        }
    }

    #[test]
    fn connection_limits_are_read_and_checked() {
        let file = parse_file(
            Path::new("t.toml"),
            "[connections]\nper_address = 8\nheader_timeout_secs = 3\n",
        )
        .unwrap();
        let merged = ServeArgs::default().merge(&file, None).unwrap();
        assert_eq!(merged.connections.per_address, 8);
        assert_eq!(merged.connections.header_timeout_secs, 3);
        assert_eq!(merged.connections.total, Connections::default().total);
        let round_trip = parse_file(Path::new("t.toml"), &merged.to_toml()).unwrap();
        assert_eq!(round_trip.connections, Some(merged.connections));
        let none = parse_file(Path::new("t.toml"), "[connections]\ntotal = 0\n").unwrap();
        assert!(matches!(
            ServeArgs::default().merge(&none, None),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn tls_needs_both_files() {
        let half = parse_file(Path::new("t.toml"), "tls_cert = \"/c.pem\"\n").unwrap();
        assert!(matches!(
            ServeArgs::default().merge(&half, None),
            Err(ConfigError::TlsHalf)
        ));
        let flags = ServeArgs {
            tls_key: Some("/k.pem".into()),
            ..ServeArgs::default()
        };
        let both = flags.merge(&half, None).unwrap();
        assert_eq!(
            both.tls,
            Some(TlsFiles {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            })
        );
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let typo = parse_file(Path::new("t.toml"), "lsten = \"127.0.0.1:1\"").unwrap_err();
        assert!(typo.to_string().contains("lsten"), "{typo}");
        let bad_addr = parse_file(Path::new("t.toml"), "listen = \"nowhere\"").unwrap_err();
        assert!(matches!(bad_addr, ConfigError::Parse { .. }));
        // The passphrase itself has no place in the file.
        let secret = parse_file(Path::new("t.toml"), "kms_passphrase = \"abc\"").unwrap_err();
        assert!(matches!(secret, ConfigError::Parse { .. }));
        let missing = ServeArgs {
            data: DataArgs {
                config: Some("/nonexistent/zt.toml".into()),
                ..DataArgs::default()
            },
            ..ServeArgs::default()
        };
        assert!(matches!(missing.resolve(), Err(ConfigError::Read { .. })));
    }
}
