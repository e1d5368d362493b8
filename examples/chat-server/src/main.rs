//! `zt-chat-server`: the zt reference chat server.

#![warn(
    clippy::wildcard_enum_match_arm,
    clippy::match_wildcard_for_single_variants,
    reason = "a wildcard arm over zt's own enums hides the variants added later"
)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use zt_chat_server::config::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "zt-chat-server",
    version,
    about = "The zt reference chat server"
)]
struct Cli {
    /// Log lines as `text` (key=value fields) or `json` (one object per line), on stderr.
    #[arg(
        long,
        env = "ZT_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server until SIGINT or SIGTERM (creating the deployment on first start: data
    /// directory, local KMS, passphrase file, identity key).
    Serve(ServeArgs),
    /// Work with the audit logs of a data directory (offline: the server must be stopped).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Work with the stored messages and files of a data directory (offline: the server must be
    /// stopped).
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Backups of the whole deployment: create, list, verify, restore, rotate the backup key,
    /// make a recovery identity (offline: the server must be stopped; while it runs, use the
    /// admin API).
    Backup {
        #[command(subcommand)]
        command: zt_chat_server::backup::BackupCommand,
    },
    /// Work with the server identity (offline: the server must be stopped).
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
}

#[derive(Debug, Subcommand)]
enum IdentityCommand {
    /// Print the identity key's fingerprint, public key and audit checkpoint key.
    Show(zt_chat_server::config::DataArgs),
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Check that every stored record opens and every file's chunks add up to it: prints OK per
    /// workspace or each damaged record; exits 1 when anything is damaged, 2 when the check
    /// cannot run.
    Verify(zt_chat_server::config::DataArgs),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify every audit log: prints OK with size and root, or the first bad index and why;
    /// exits 1 when a log fails, 2 when verification cannot run.
    Verify(zt_chat_server::audit::VerifyArgs),
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
    match cli.command {
        Command::Identity {
            command: IdentityCommand::Show(args),
        } => match zt_chat_server::identity::show(&args, &mut std::io::stdout().lock()).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Backup { command } => {
            let json = !std::io::IsTerminal::is_terminal(&std::io::stdout());
            match zt_chat_server::backup::run(&command, &mut std::io::stdout().lock(), json).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Data {
            command: DataCommand::Verify(args),
        } => match zt_chat_server::data::verify(&args, &mut std::io::stdout().lock()).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => match zt_chat_server::audit::verify(&args, &mut std::io::stdout().lock()).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve(args) => {
            let settings = match args.resolve() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if args.print_config {
                print!("{}", settings.to_toml());
                return ExitCode::SUCCESS;
            }
            let scheme = if settings.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let on_listening = move |addr| {
                // The one line on stdout, for people and for scripts that wait for it.
                println!("zt-chat-server listening on {scheme}://{addr}");
                tracing::info!(%addr, "listening");
            };
            match zt_chat_server::serve(settings, on_listening, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
