//! Settings: flags over `ZT_*` environment variables over a TOML file over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The address the server listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The data directory unless told otherwise, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "zt-data";

/// The settings of `serve`, as given on the command line or in the environment (clap reads both;
/// the flag wins).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// A TOML file with settings; flags and environment variables override it.
    #[arg(long, env = "ZT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the store keeps its files (created if missing, mode 0700).
    #[arg(long, env = "ZT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address to listen on, such as 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, env = "ZT_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// The settings a TOML file may hold. Unknown keys are an error, so a typo is not ignored.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// See [`ServeArgs::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`ServeArgs::listen`].
    pub listen: Option<SocketAddr>,
}

/// The settings the server runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the store keeps its files.
    pub data_dir: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
}

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

impl ServeArgs {
    /// Merges flags and environment (already merged by clap) over the settings file over
    /// defaults.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let file = match &self.config {
            None => FileSettings::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_file(path, &text)?
            }
        };
        Ok(self.merge(file))
    }

    fn merge(&self, file: FileSettings) -> Settings {
        let default_listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        Settings {
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen: self.listen.or(file.listen).unwrap_or(default_listen),
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
            none.merge(file.clone()),
            Settings {
                data_dir: "/srv/zt".into(),
                listen: "0.0.0.0:9000".parse().unwrap()
            }
        );
        let flags = ServeArgs {
            listen: Some("127.0.0.1:1".parse().unwrap()),
            ..ServeArgs::default()
        };
        let merged = flags.merge(file);
        assert_eq!(merged.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(merged.data_dir, PathBuf::from("/srv/zt"));
        let defaults = none.merge(FileSettings::default());
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(defaults.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let typo = parse_file(Path::new("t.toml"), "lsten = \"127.0.0.1:1\"").unwrap_err();
        assert!(typo.to_string().contains("lsten"), "{typo}");
        let bad_addr = parse_file(Path::new("t.toml"), "listen = \"nowhere\"").unwrap_err();
        assert!(matches!(bad_addr, ConfigError::Parse { .. }));
        let missing = ServeArgs {
            config: Some("/nonexistent/zt.toml".into()),
            ..ServeArgs::default()
        };
        assert!(matches!(missing.resolve(), Err(ConfigError::Read { .. })));
    }
}
