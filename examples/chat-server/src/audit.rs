//! `zt-chat-server audit verify`: checks every audit log in a data directory, offline.
//!
//! For each log the registry lists, it rebuilds the tree from the entries with the independent
//! verifier of zt-audit and prints one line: `OK <log>: size N, root <hex>`, or
//! `FAILED <log>: first bad index N: <why>`. A checkpoint the operator kept from before (a signed
//! note) can be given to catch truncation and rollback. The exit status is non-zero when any
//! log fails. A progress bar is drawn on stderr when it is a terminal, and never otherwise.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use zt_audit::checkpoint::NoteVerifier;
use zt_audit::trail::AuditTrail;
use zt_audit::verify::{TrustedHead, Verdict, VerifyOptions, verify_log};
use zt_storage::{ErrorKind, KvStore};

use crate::config::{ConfigError, DataArgs};
use crate::deployment::{Deployment, DeploymentError, OpenMode};

/// The arguments of `audit verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The deployment (the server must not be running on it).
    #[command(flatten)]
    pub data: DataArgs,
    /// Only this log (its namespace, such as `audit/system/security`).
    #[arg(long, value_name = "NAMESPACE")]
    pub log: Option<String>,
    /// The checkpoint key to trust instead of the one the data directory lists (a signed-note
    /// verifier key).
    #[arg(long, value_name = "VKEY")]
    pub key: Option<String>,
    /// A signed checkpoint kept from before; the log with its origin must still extend it.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
}

/// Why `audit verify` could not run at all (as opposed to finding a bad log).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The settings are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The deployment cannot be opened (missing, not a deployment, wrong passphrase, in use).
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The audit records or a given key or checkpoint are unusable.
    #[error("audit: {0}")]
    Audit(#[from] zt_audit::Error),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// A bar that stays hidden until [`show_on_terminal`] (once its length is known), and for good
/// when stderr is not a terminal.
fn progress_bar(name: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {human_pos}/{human_len} entries, {eta} left")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_owned());
    bar
}

fn show_on_terminal(bar: &ProgressBar) {
    if bar.is_hidden() && std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
}

/// Runs `audit verify`, writing the report to `out`. Returns whether every log verified.
///
/// # Errors
/// When the verification cannot run: see [`VerifyError`].
pub async fn verify(args: &VerifyArgs, out: &mut dyn Write) -> Result<bool, VerifyError> {
    let settings = args.data.resolve()?;
    let held = match &args.checkpoint {
        None => None,
        Some(path) => Some(
            std::fs::read_to_string(path).map_err(|source| VerifyError::Read {
                path: path.clone(),
                source,
            })?,
        ),
    };
    let deployment =
        Deployment::open(&settings.data_dir, &settings.passphrase, OpenMode::ReadOnly).await?;
    let store = deployment.system_store();
    let outcome = verify_store(&*store, &settings.data_dir, args, held.as_deref(), out).await;
    drop(store);
    let closed = deployment.close().await;
    let all_ok = outcome?;
    closed?;
    Ok(all_ok)
}

async fn verify_store(
    store: &dyn KvStore,
    data_dir: &Path,
    args: &VerifyArgs,
    held: Option<&str>,
    out: &mut dyn Write,
) -> Result<bool, VerifyError> {
    let logs: Vec<_> = AuditTrail::listed(store)
        .await?
        .into_iter()
        .filter(|(ns, _, _)| args.log.as_deref().is_none_or(|only| ns.as_str() == only))
        .collect();
    if logs.is_empty() {
        writeln!(out, "no audit logs in {}", data_dir.display())?;
        return Ok(args.log.is_none() && held.is_none());
    }
    let mut all_ok = true;
    let mut held_used = false;
    for (namespace, origin, listed_key) in logs {
        let key = NoteVerifier::from_verifier_key(args.key.as_deref().unwrap_or(&listed_key))?;
        let trusted = match held {
            Some(note) => {
                let checkpoint = key.verify(note).ok().filter(|c| c.origin == origin);
                held_used |= checkpoint.is_some();
                checkpoint.as_ref().map(TrustedHead::from)
            }
            None => None,
        };
        let options = VerifyOptions {
            key: Some(key),
            trusted,
            through: None,
            threads: 0,
        };
        let bar = progress_bar(namespace.as_str());
        let verdict = verify_log(store, &namespace, &options, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
            show_on_terminal(&bar);
        })
        .await;
        bar.finish_and_clear();
        let verdict = match verdict {
            Ok(verdict) => verdict,
            // A record that does not decrypt was altered, moved or damaged on disk: the log
            // fails, and the other logs are still checked.
            Err(zt_audit::Error::Storage(e)) if e.kind() == ErrorKind::Corrupt => {
                all_ok = false;
                writeln!(out, "FAILED {}: {e}", namespace.as_str())?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match verdict {
            Verdict::Valid(report) => writeln!(
                out,
                "OK {}: size {}, root {}{}",
                namespace.as_str(),
                report.size,
                hex::encode(report.root),
                if report.first > 0 {
                    format!(", entries below {} pruned", report.first)
                } else {
                    String::new()
                }
            )?,
            Verdict::Invalid(finding) => {
                all_ok = false;
                writeln!(out, "FAILED {}: {finding}", namespace.as_str())?;
            }
        }
    }
    if held.is_some() && !held_used {
        all_ok = false;
        writeln!(
            out,
            "FAILED: the checkpoint given matches no log's origin and key"
        )?;
    }
    Ok(all_ok)
}
