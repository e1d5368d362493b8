//! `zt-chat`: the command-line client of the zt reference server.
//!
//! ```text
//! zt-chat --server http://127.0.0.1:8080 login --user admin --password-file zt-data.admin-password
//! zt-chat channels
//! zt-chat send general "hello"
//! zt-chat tail
//! ```
//!
//! On first contact it shows the server's fingerprint and pins it in `known_servers` (trust on
//! first use); a changed identity is refused until the pin is removed with `forget-server`. The
//! session token is kept in the OS keyring where this process may use it (on Linux the kernel
//! keyring, keyutils), else in a file of mode 0600 in the client's directory (`$ZT_CHAT_HOME`,
//! else `$XDG_CONFIG_HOME/zt-chat`, else `~/.config/zt-chat`).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use zt_chat_client::{
    ChannelUpdateRequest, ChannelView, Client, ClientError, KnownServers, Pin,
    ProfileUpdateRequest, ServerRecord, UserView, Visibility, printable as p, write_private,
};

#[derive(Debug, Parser)]
#[command(
    name = "zt-chat",
    version,
    about = "Client of the zt reference chat server"
)]
struct Cli {
    /// The server [default: the one signed in to, else http://127.0.0.1:8080].
    #[arg(long, env = "ZT_SERVER", global = true)]
    server: Option<String>,
    /// A PEM file of certificates to trust for an https:// server besides the public web PKI
    /// (a server with a self-signed certificate).
    #[arg(long, env = "ZT_CA_CERT", global = true, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// The client's directory (pins and session).
    #[arg(long, env = "ZT_CHAT_HOME", global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Signs in and keeps the session: with a password, or through the workspace's identity
    /// provider by a device code (`--sso PROVIDER`).
    Login {
        /// The username.
        #[arg(long, required_unless_present = "sso")]
        user: Option<String>,
        /// Sign in through this single sign-on provider: the command shows a URL and a code to
        /// enter there in any browser, and waits.
        #[arg(long, value_name = "PROVIDER", conflicts_with_all = ["user", "password_file"])]
        sso: Option<String>,
        /// The workspace id [default: the server's default workspace].
        #[arg(long)]
        workspace: Option<String>,
        /// A file holding the password [default: ZT_PASSWORD, else read from standard input].
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Signs out and forgets the session, once the server confirmed the sign-out.
    Logout {
        /// Forget the session here even when the server cannot confirm it.
        #[arg(long)]
        forget: bool,
    },
    /// Shows who is signed in.
    Whoami,
    /// Lists the channels you can see.
    Channels,
    /// Sends a message to a channel (name or id).
    Send {
        /// The channel.
        channel: String,
        /// The text.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Shows a channel's latest messages.
    History {
        /// The channel.
        channel: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Follows messages as they are posted (optionally in one channel), until interrupted or
    /// the session ends.
    Tail {
        /// Only this channel.
        channel: Option<String>,
    },
    /// Joins a public channel.
    Join {
        /// The channel.
        channel: String,
    },
    /// Lists your sessions.
    Sessions,
    /// Removes the pinned identity of the server, to accept a new one on the next connection.
    ForgetServer,
    /// Changes your password (the current one first); your other sessions end. Each password
    /// comes from its file, else from standard input (one line each: current, then new).
    Password {
        /// A file holding the current password.
        #[arg(long, value_name = "FILE")]
        current_file: Option<PathBuf>,
        /// A file holding the new password.
        #[arg(long, value_name = "FILE")]
        new_file: Option<PathBuf>,
    },
    /// Changes the name others see.
    SetName {
        /// The new display name.
        name: String,
    },
    /// Administration.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Debug, Subcommand)]
enum Admin {
    /// Creates a user (`manage_users`); the password comes from a file or ZT_PASSWORD.
    CreateUser {
        /// The username.
        username: String,
        /// The name shown to others.
        #[arg(long)]
        display_name: Option<String>,
        /// A file holding the password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Creates a channel.
    CreateChannel {
        /// Its name.
        name: String,
        /// Private instead of public.
        #[arg(long)]
        private: bool,
        /// Its topic.
        #[arg(long, default_value = "")]
        topic: String,
    },
    /// Adds a user (by username) to a channel.
    AddMember {
        /// The channel.
        channel: String,
        /// The username.
        username: String,
    },
    /// Removes a user (by username) from a channel.
    RemoveMember {
        /// The channel.
        channel: String,
        /// The username.
        username: String,
    },
    /// Deactivates a user (by username): their sessions end at once.
    Deactivate {
        /// The username.
        username: String,
    },
    /// Deletes a user for good (by username, or by id to finish a deletion cut short): roles,
    /// sessions, sign-in links, password and profile go, their content by the workspace's
    /// policy (see authored-content); held content stays.
    DeleteUser {
        /// The username, or the user's id (usr_...).
        user: String,
        /// Confirms the deletion (it cannot be undone).
        #[arg(long)]
        yes: bool,
    },
    /// Shows, or with a value sets, what deleting a user does with their messages and files:
    /// keep (the author pseudonymised) or delete.
    AuthoredContent {
        /// keep or delete.
        #[arg(value_parser = ["keep", "delete"])]
        policy: Option<String>,
    },
    /// Shows the workspace's wipe; with --in-days schedules one (a second administrator
    /// approves it with `approve`), with --cancel cancels it.
    Wipe {
        /// Schedules the wipe this many days from now.
        #[arg(long, conflicts_with = "cancel")]
        in_days: Option<u64>,
        /// Cancels the scheduled wipe.
        #[arg(long)]
        cancel: bool,
        /// Confirms the scheduling (once approved and due, nothing of the workspace remains).
        #[arg(long)]
        yes: bool,
    },
    /// Shows what the workspace's data takes; with --clean-up, removes what deletions left
    /// (shredded rows of deleted channels, abandoned upload chunks, old tombstones).
    Storage {
        /// Clean up first.
        #[arg(long)]
        clean_up: bool,
    },
    /// Reactivates a deactivated user (by username).
    Reactivate {
        /// The username.
        username: String,
    },
    /// Lifts a user's sign-in lockout (by username).
    Unlock {
        /// The username.
        username: String,
    },
    /// Sets a user's password (by username); their sessions end.
    ResetPassword {
        /// The username.
        username: String,
        /// A file holding the new password [default: ZT_PASSWORD, else standard input].
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Ends every session of a user (by username).
    EndSessions {
        /// The username.
        username: String,
    },
    /// Renames a channel.
    RenameChannel {
        /// The channel (name or id).
        channel: String,
        /// Its new name.
        name: String,
    },
    /// Sets a channel's topic.
    SetTopic {
        /// The channel (name or id).
        channel: String,
        /// The topic.
        topic: String,
    },
    /// Archives a channel (read-only), or unarchives it with --undo.
    Archive {
        /// The channel (name or id).
        channel: String,
        /// Unarchive instead.
        #[arg(long)]
        undo: bool,
    },
    /// Deletes a channel for good: its key is destroyed and nothing of it can be read again.
    DeleteChannel {
        /// The channel (name or id).
        channel: String,
        /// Confirms the deletion (it cannot be undone).
        #[arg(long)]
        yes: bool,
    },
    /// Shows the workspace's retention of messages and files (`manage_privacy_and_data`).
    Retention,
    /// Sets how long messages and files are kept, workspace-wide or in one channel; a period
    /// left out keeps them for ever.
    SetRetention {
        /// Only this channel (name or id): its own policy replaces the workspace's.
        #[arg(long)]
        channel: Option<String>,
        /// Days messages are kept.
        #[arg(long)]
        messages_days: Option<u64>,
        /// Days files are kept.
        #[arg(long)]
        files_days: Option<u64>,
        /// With --channel: remove the channel's own policy (it follows the workspace's again).
        #[arg(long, conflicts_with_all = ["messages_days", "files_days"])]
        inherit: bool,
    },
    /// Runs retention now and shows what it removed and what holds spared.
    RunRetention,
    /// Lists the legal holds in force.
    Holds,
    /// Places a legal hold on a user's content, a channel, or the audit logs.
    Hold {
        /// Everything this user (username) wrote.
        #[arg(long, group = "scope")]
        custodian: Option<String>,
        /// Everything in this channel (name or id).
        #[arg(long, group = "scope")]
        channel: Option<String>,
        /// Both audit logs (no pruning).
        #[arg(long, group = "scope")]
        audit_logs: bool,
        /// Why: a matter or case.
        #[arg(long)]
        reason: String,
    },
    /// Asks for a hold's release; another administrator approves it.
    ReleaseHold {
        /// The hold's id (`hld_…`).
        hold: String,
    },
    /// Lists the requests waiting for a second administrator.
    Approvals,
    /// Approves another administrator's request (never one's own).
    Approve {
        /// The request's id (`apr_…`).
        approval: String,
    },
    /// Shows the newest events of the workspace's audit log (`view_audit_logs`).
    Audit {
        /// `security` or `compliance`.
        #[arg(long, default_value = "security")]
        log: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// The kept session: which server, and the token itself only when no OS keyring holds it.
#[derive(Serialize, Deserialize)]
struct Saved {
    server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// Whether the token is in the OS keyring.
    #[serde(default)]
    in_keyring: bool,
}

/// The OS keyring's entry for the session with `server`.
#[cfg(target_os = "linux")]
mod os_keyring {
    use std::sync::OnceLock;

    /// The kernel keyring (keyutils), if this process may use it (containers often may not).
    fn entry(server: &str) -> Option<keyring_core::Entry> {
        static STORE: OnceLock<bool> = OnceLock::new();
        let ready = *STORE.get_or_init(|| match linux_keyutils_keyring_store::Store::new() {
            Ok(store) => {
                keyring_core::set_default_store(store);
                true
            }
            Err(_) => false,
        });
        if !ready {
            return None;
        }
        keyring_core::Entry::new("zt-chat", server).ok()
    }

    /// Stores `token`; whether the keyring took it.
    pub(super) fn store(server: &str, token: &str) -> bool {
        entry(server).is_some_and(|e| e.set_password(token).is_ok())
    }

    /// The stored token.
    pub(super) fn load(server: &str) -> Option<String> {
        entry(server)?.get_password().ok()
    }

    /// Forgets the stored token.
    pub(super) fn forget(server: &str) {
        if let Some(e) = entry(server) {
            let _ = e.delete_credential();
        }
    }
}

/// No OS keyring is wired on this platform yet: the token stays in the 0600 file.
#[cfg(not(target_os = "linux"))]
mod os_keyring {
    pub(super) fn store(_: &str, _: &str) -> bool {
        false
    }
    pub(super) fn load(_: &str) -> Option<String> {
        None
    }
    pub(super) fn forget(_: &str) {}
}

struct Home {
    dir: PathBuf,
}

impl Home {
    fn new(given: Option<PathBuf>) -> Result<Self, String> {
        let dir = given
            .or_else(|| {
                std::env::var_os("XDG_CONFIG_HOME").map(|d| PathBuf::from(d).join("zt-chat"))
            })
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/zt-chat")))
            .ok_or("no client directory: set ZT_CHAT_HOME or HOME")?;
        Ok(Home { dir })
    }

    fn known(&self) -> KnownServers {
        KnownServers::new(self.dir.join("known_servers"))
    }

    fn session_file(&self) -> PathBuf {
        self.dir.join("session.json")
    }

    fn saved(&self) -> Option<Saved> {
        let text = std::fs::read_to_string(self.session_file()).ok()?;
        serde_json::from_str(&text).ok()
    }
}

fn read_password(file: Option<&Path>) -> Result<String, String> {
    if file.is_none()
        && let Ok(password) = std::env::var("ZT_PASSWORD")
    {
        return Ok(password);
    }
    read_secret(file, "password")
}

/// A secret from `file`, else one line of standard input (prompting for `what` on a terminal).
fn read_secret(file: Option<&Path>, what: &str) -> Result<String, String> {
    if let Some(file) = file {
        return std::fs::read_to_string(file)
            .map(|t| t.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| format!("{}: {e}", file.display()));
    }
    if std::io::stdin().is_terminal() {
        eprint!("{what} (shown as typed): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the {what}: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Fetches the server's identity (nothing else is sent), checks it against the pin (pinning it
/// on first use) and binds the client to it: every later call goes only to the holder of that key.
async fn trusted(client: &Client, home: &Home) -> Result<Client, ClientError> {
    let (client, pin) = client.clone().verify(&home.known()).await?;
    if pin == Pin::New
        && let Some(identity) = client.server_identity()
    {
        eprintln!(
            "New server {}\n  fingerprint {}\nPinned it in {} (trust on first use). Compare the \
             fingerprint with `zt-chat-server identity show` on the server.",
            client.base(),
            p(&identity.view.fingerprint),
            home.dir.join("known_servers").display()
        );
    }
    Ok(client)
}

/// The kept token for `client`'s server.
fn kept_token(client: &Client, saved: Option<&Saved>) -> Result<String, String> {
    let token = match saved {
        Some(s) if s.server.trim_end_matches('/') == client.base() => {
            if s.in_keyring {
                os_keyring::load(&s.server)
            } else {
                s.token.clone()
            }
        }
        _ => None,
    };
    token.ok_or_else(|| format!("not signed in to {}; run `zt-chat login`", client.base()))
}

/// Forgets the kept session of `client`'s server.
fn forget_session(client: &Client, home: &Home) {
    os_keyring::forget(client.base());
    let _ = std::fs::remove_file(home.session_file());
}

fn print_record(record: &ServerRecord, only: Option<&str>) {
    if let ServerRecord::Removed { channel, messages } = record {
        if only.is_none_or(|c| c == channel) {
            println!(
                "{} (removed {} messages for good)",
                p(channel),
                messages.len()
            );
        }
        return;
    }
    let (verb, message) = match record {
        ServerRecord::Posted { message } => ("", message),
        ServerRecord::Edited { message } => ("(edited) ", message),
        ServerRecord::Deleted { message } => ("(deleted) ", message),
        _ => return,
    };
    if only.is_some_and(|c| c != message.channel) {
        return;
    }
    println!(
        "{} {} {verb}{}",
        p(&message.channel),
        p(&message.author),
        p(&message.body)
    );
}

/// Adds or removes `username` in `channel`.
/// The user named `username` among everyone holding a role, deactivated users too.
async fn any_user(client: &Client, username: &str) -> Result<UserView, String> {
    let users = client.admin_users().await.map_err(|e| e.to_string())?;
    users
        .into_iter()
        .find(|u| u.username == username)
        .ok_or_else(|| format!("no user {username}"))
}

/// Applies `update` to the channel named or numbered `channel`.
async fn change_channel(
    client: &Client,
    channel: &str,
    update: &ChannelUpdateRequest,
) -> Result<ChannelView, String> {
    let e = |e: ClientError| e.to_string();
    let channel = client.resolve_channel(channel).await.map_err(e)?;
    client.update_channel(&channel.id, update).await.map_err(e)
}

fn days(days: Option<u64>) -> Option<u64> {
    days.map(|d| d.saturating_mul(24 * 3600))
}

fn shown(seconds: Option<u64>) -> String {
    match seconds {
        Some(s) if s % (24 * 3600) == 0 => format!("{} days", s / (24 * 3600)),
        Some(s) => format!("{s} s"),
        None => "for ever".to_owned(),
    }
}

/// The data lifecycle commands: retention, legal holds, approvals.
async fn lifecycle(client: &Client, admin: Admin) -> Result<(), String> {
    let e = |e: ClientError| e.to_string();
    let policies = |view: &zt_chat_protocol::lifecycle::RetentionView| {
        println!(
            "workspace: messages {}, files {} (floor {})",
            shown(view.workspace.messages_seconds),
            shown(view.workspace.files_seconds),
            shown(Some(view.floor_seconds))
        );
        for (channel, policy) in &view.channels {
            println!(
                "{}: messages {}, files {}",
                p(channel),
                shown(policy.messages_seconds),
                shown(policy.files_seconds)
            );
        }
    };
    match admin {
        Admin::Retention => policies(&client.retention().await.map_err(e)?),
        Admin::SetRetention {
            channel,
            messages_days,
            files_days,
            inherit,
        } => {
            let channel = match channel {
                Some(c) => Some(client.resolve_channel(&c).await.map_err(e)?.id),
                None if inherit => return Err("--inherit needs --channel".into()),
                None => None,
            };
            let policy = zt_chat_protocol::lifecycle::RetentionPolicyView {
                messages_seconds: days(messages_days),
                files_seconds: days(files_days),
            };
            let policy = (!inherit).then_some(policy);
            let view = client
                .set_retention(channel.as_deref(), policy.as_ref())
                .await
                .map_err(e)?;
            policies(&view);
        }
        Admin::DeleteUser { user, yes } => {
            let id = if user.starts_with("usr_") {
                user.clone()
            } else {
                any_user(client, &user).await?.id
            };
            if !yes {
                return Err(format!(
                    "deleting {} cannot be undone: add --yes to confirm",
                    p(&user)
                ));
            }
            let done = client.delete_user(&id).await.map_err(e)?;
            println!(
                "deleted {} ({}): content {:?}; removed {} messages ({} earlier texts) and {} files; \
                 {} kept by legal holds; {} sessions ended, {} sign-in links removed",
                p(&user),
                p(&id),
                done.content,
                done.messages,
                done.revisions,
                done.files,
                done.spared,
                done.sessions,
                done.links
            );
        }
        Admin::Wipe {
            in_days,
            cancel,
            yes,
        } => {
            let wipe = match (in_days, cancel) {
                (Some(_), _) if !yes => {
                    return Err(
                        "a wipe leaves nothing of the workspace once it runs: add --yes to confirm"
                            .into(),
                    );
                }
                (Some(days), _) => client
                    .schedule_wipe(days.saturating_mul(24 * 3600))
                    .await
                    .map_err(e)?,
                (None, true) => client.cancel_wipe().await.map_err(e)?,
                (None, false) => client.wipe().await.map_err(e)?,
            };
            println!(
                "wipe of {} {}: not before {}, approval {} ({})",
                p(&wipe.workspace),
                if cancel {
                    "cancelled"
                } else {
                    wipe.phase.as_str()
                },
                wipe.not_before,
                p(&wipe.approval),
                wipe.approved_by.as_deref().map_or_else(
                    || "not approved yet".to_owned(),
                    |by| format!("approved by {}", p(by))
                )
            );
        }
        Admin::Storage { clean_up } => {
            if clean_up {
                let done = client.clean_up_storage().await.map_err(e)?;
                println!(
                    "removed {} shredded rows, {} abandoned upload chunks and {} old tombstones \
                     ({} bytes)",
                    done.shredded, done.abandoned_chunks, done.tombstones, done.bytes
                );
            }
            let used = client.storage().await.map_err(e)?;
            for (what, u) in [
                ("messages", used.messages),
                ("history", used.history),
                ("files", used.files),
                ("file content", used.file_content),
                ("other", used.other),
                ("total", used.total),
            ] {
                println!("{what}: {} rows, {} bytes", u.rows, u.bytes);
            }
        }
        Admin::AuthoredContent { policy } => {
            use zt_chat_protocol::lifecycle::AuthoredContentView as V;
            let view = match policy.as_deref() {
                None => client.authored_content().await.map_err(e)?,
                Some("delete") => client.set_authored_content(V::Delete).await.map_err(e)?,
                Some(_) => client.set_authored_content(V::Keep).await.map_err(e)?,
            };
            let shown = match view.policy {
                V::Keep => "keep (the author pseudonymised)",
                V::Delete => "delete (held content stays)",
            };
            println!("a deleted user's messages and files: {shown}");
        }
        Admin::RunRetention => {
            let report = client.run_retention().await.map_err(e)?;
            let t = report.totals;
            println!(
                "removed {} messages ({} earlier texts) and {} files; {} kept by legal holds{}",
                t.messages,
                t.revisions,
                t.files,
                t.spared,
                if report.resumed {
                    "; finished an earlier run"
                } else {
                    ""
                }
            );
        }
        Admin::Holds => {
            for hold in client.legal_holds().await.map_err(e)? {
                println!(
                    "{} {:?} {} by {} at {}: {}",
                    p(&hold.id),
                    hold.kind,
                    p(hold.subject.as_deref().unwrap_or("-")),
                    p(&hold.owner),
                    hold.started,
                    p(&hold.reason)
                );
            }
        }
        Admin::Hold {
            custodian,
            channel,
            audit_logs,
            reason,
        } => {
            use zt_chat_protocol::lifecycle::HoldKind;
            let (kind, subject) = match (custodian, channel) {
                (Some(username), _) => {
                    let user = client
                        .find_user(&username)
                        .await
                        .map_err(e)?
                        .ok_or_else(|| format!("no active user {username}"))?;
                    (HoldKind::Custodian, Some(user.id))
                }
                (None, Some(c)) => (
                    HoldKind::Channel,
                    Some(client.resolve_channel(&c).await.map_err(e)?.id),
                ),
                (None, None) if audit_logs => (HoldKind::AuditLogs, None),
                (None, None) => {
                    return Err("name what to hold: --custodian, --channel or --audit-logs".into());
                }
            };
            let hold = client
                .place_legal_hold(&zt_chat_protocol::lifecycle::NewLegalHold {
                    kind,
                    subject,
                    reason,
                })
                .await
                .map_err(e)?;
            println!("placed {}", p(&hold.id));
        }
        Admin::ReleaseHold { hold } => {
            let request = client.request_hold_release(&hold).await.map_err(e)?;
            println!(
                "asked: another administrator approves with `zt-chat admin approve {}` before {}",
                p(&request.id),
                request.expires
            );
        }
        Admin::Approvals => {
            for a in client.approvals().await.map_err(e)? {
                println!(
                    "{} {} {} asked by {} (expires {})",
                    p(&a.id),
                    p(&a.action),
                    p(&a.subject),
                    p(&a.requested_by),
                    a.expires
                );
            }
        }
        Admin::Approve { approval } => {
            let done = client.approve(&approval).await.map_err(e)?;
            match done.hold {
                Some(hold) => println!("approved: hold {} released", p(&hold.id)),
                None => println!("approved: {}", p(&done.action)),
            }
        }
        _ => {}
    }
    Ok(())
}

async fn membership(
    client: &Client,
    channel: &str,
    username: &str,
    add: bool,
) -> Result<(), String> {
    let e = |e: ClientError| e.to_string();
    let channel = client.resolve_channel(channel).await.map_err(e)?;
    let user = client
        .find_user(username)
        .await
        .map_err(e)?
        .ok_or_else(|| format!("no active user {username}"))?;
    if add {
        client.add_member(&channel.id, &user.id).await.map_err(e)?;
        println!("added {username} to #{}", p(&channel.name));
    } else {
        client
            .remove_member(&channel.id, &user.id)
            .await
            .map_err(e)?;
        println!("removed {username} from #{}", p(&channel.name));
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<(), String> {
    let home = Home::new(cli.home)?;
    let saved = home.saved();
    let server = cli
        .server
        .or_else(|| saved.as_ref().map(|s| s.server.clone()))
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let client = Client::with_ca(&server, cli.ca_cert.as_deref()).map_err(|e| e.to_string())?;
    let e = |e: ClientError| e.to_string();
    // Every command but forgetting the pin first verifies the server against it; the token is
    // added only to a client bound to the verified identity.
    let signed_in = async || -> Result<Client, String> {
        let token = kept_token(&client, saved.as_ref())?;
        Ok(trusted(&client, &home).await.map_err(e)?.with_token(token))
    };
    match cli.command {
        Command::Login {
            user,
            sso,
            workspace,
            password_file,
        } => {
            let client = trusted(&client, &home).await.map_err(e)?;
            let login = match (sso, user) {
                (Some(provider), _) => {
                    let workspace = workspace.as_deref().unwrap_or("default");
                    client
                        .sso_login_device(workspace, &provider, |start| {
                            let url = start
                                .verification_uri_complete
                                .as_deref()
                                .unwrap_or(&start.verification_uri);
                            println!(
                                "to sign in, open {} and enter the code {}",
                                p(url),
                                p(&start.user_code)
                            );
                            eprintln!("waiting for the sign-in to finish ...");
                        })
                        .await
                        .map_err(e)?
                }
                (None, Some(user)) => {
                    let password = read_password(password_file.as_deref())?;
                    client
                        .login(workspace.as_deref(), &user, &password)
                        .await
                        .map_err(e)?
                }
                (None, None) => return Err("give --user or --sso".into()),
            };
            // The OS keyring when it answers, else the 0600 file.
            let in_keyring = os_keyring::store(client.base(), &login.token);
            let saved = Saved {
                server: client.base().to_owned(),
                token: (!in_keyring).then_some(login.token),
                in_keyring,
            };
            let json = serde_json::to_vec(&saved).map_err(|e| e.to_string())?;
            write_private(&home.session_file(), &json).map_err(e)?;
            println!(
                "signed in as {} ({}) to workspace {}",
                p(&login.user.username),
                p(&login.user.id),
                p(&login.workspace)
            );
            eprintln!(
                "session kept in {}",
                if in_keyring {
                    "the OS keyring".to_owned()
                } else {
                    home.session_file().display().to_string()
                }
            );
        }
        Command::Logout { forget } => {
            kept_token(&client, saved.as_ref())?;
            let outcome = match signed_in().await {
                Ok(client) => client.logout().await.map_err(e),
                Err(why) => Err(why),
            };
            match outcome {
                Ok(()) => {
                    forget_session(&client, &home);
                    println!("signed out");
                }
                Err(why) if forget => {
                    forget_session(&client, &home);
                    return Err(format!(
                        "the server did not confirm the sign-out ({why}); the session was \
                         forgotten here anyway (--forget) and may still be valid at the server"
                    ));
                }
                Err(why) => {
                    return Err(format!(
                        "the server did not confirm the sign-out: {why}\nthe session is still \
                         kept here; try again, or `zt-chat logout --forget` to drop it without \
                         the server"
                    ));
                }
            }
        }
        Command::Whoami => {
            let me = signed_in().await?.me().await.map_err(e)?;
            println!(
                "{} ({}) {}",
                p(&me.username),
                p(&me.id),
                p(&me.display_name)
            );
        }
        Command::Channels => {
            for c in signed_in().await?.channels().await.map_err(e)? {
                let visibility = match c.visibility {
                    Visibility::Public => "public",
                    Visibility::Private => "private",
                };
                println!("{} #{} {visibility} {}", p(&c.id), p(&c.name), p(&c.topic));
            }
        }
        Command::Send { channel, text } => {
            let client = signed_in().await?;
            let channel = client.resolve_channel(&channel).await.map_err(e)?;
            let message = client
                .post_message(&channel.id, &text.join(" "))
                .await
                .map_err(e)?;
            println!("{}", p(&message.id));
        }
        Command::History { channel, limit } => {
            let client = signed_in().await?;
            let channel = client.resolve_channel(&channel).await.map_err(e)?;
            let page = client.messages(&channel.id, limit).await.map_err(e)?;
            for m in &page.messages {
                println!("{} {} {}", p(&m.id), p(&m.author), p(&m.body));
            }
        }
        Command::Tail { channel } => {
            let client = signed_in().await?;
            let only = match channel {
                Some(c) => Some(client.resolve_channel(&c).await.map_err(e)?.id),
                None => None,
            };
            let mut stream = client.realtime().await.map_err(e)?;
            eprintln!("following; interrupt to stop");
            loop {
                tokio::select! {
                    record = stream.next() => match record.map_err(e)? {
                        Some(ServerRecord::Closed { reason }) => {
                            return Err(format!("the server ended the stream: {reason}"));
                        }
                        Some(record) => print_record(&record, only.as_deref()),
                        None => return Err("the server closed the connection".into()),
                    },
                    _ = tokio::signal::ctrl_c() => {
                        stream.close().await;
                        return Ok(());
                    }
                }
            }
        }
        Command::Join { channel } => {
            let client = signed_in().await?;
            let channel = client.resolve_channel(&channel).await.map_err(e)?;
            let me = client.me().await.map_err(e)?;
            client.add_member(&channel.id, &me.id).await.map_err(e)?;
            println!("joined #{}", p(&channel.name));
        }
        Command::Sessions => {
            for s in signed_in().await?.sessions().await.map_err(e)? {
                let current = if s.current { " (this one)" } else { "" };
                println!(
                    "{} {} last seen {}{current}",
                    p(&s.id),
                    p(&s.kind),
                    s.last_seen
                );
            }
        }
        Command::Password {
            current_file,
            new_file,
        } => {
            let client = signed_in().await?;
            let current = read_secret(current_file.as_deref(), "current password")?;
            let new = read_secret(new_file.as_deref(), "new password")?;
            let ended = client.change_password(&current, &new).await.map_err(e)?;
            println!("password changed; {} other sessions ended", ended.ended);
        }
        Command::SetName { name } => {
            let update = ProfileUpdateRequest {
                display_name: Some(name),
                email: None,
            };
            let me = signed_in()
                .await?
                .update_profile(&update)
                .await
                .map_err(e)?;
            println!("you are shown as {}", p(&me.display_name));
        }
        Command::ForgetServer => {
            if home.known().forget(client.base()).map_err(e)? {
                println!("forgot the identity of {}", client.base());
            } else {
                println!("no identity was pinned for {}", client.base());
            }
        }
        Command::Admin(admin) => {
            let client = signed_in().await?;
            match admin {
                Admin::CreateUser {
                    username,
                    display_name,
                    password_file,
                } => {
                    let password = read_password(password_file.as_deref())?;
                    let display = display_name.unwrap_or_else(|| username.clone());
                    let user = client
                        .create_user(&username, &display, &password)
                        .await
                        .map_err(e)?;
                    println!("created {} ({})", p(&user.username), p(&user.id));
                }
                Admin::CreateChannel {
                    name,
                    private,
                    topic,
                } => {
                    let visibility = if private {
                        Visibility::Private
                    } else {
                        Visibility::Public
                    };
                    let channel = client
                        .create_channel(&name, visibility, &topic)
                        .await
                        .map_err(e)?;
                    println!("created #{} ({})", p(&channel.name), p(&channel.id));
                }
                Admin::AddMember { channel, username } => {
                    membership(&client, &channel, &username, true).await?;
                }
                Admin::RemoveMember { channel, username } => {
                    membership(&client, &channel, &username, false).await?;
                }
                Admin::Deactivate { username } => {
                    let user = client
                        .find_user(&username)
                        .await
                        .map_err(e)?
                        .ok_or_else(|| format!("no active user {username}"))?;
                    client.deactivate_user(&user.id).await.map_err(e)?;
                    println!("deactivated {username}; their sessions ended");
                }
                Admin::Reactivate { username } => {
                    let user = any_user(&client, &username).await?;
                    client.reactivate_user(&user.id).await.map_err(e)?;
                    println!("reactivated {username}");
                }
                Admin::Unlock { username } => {
                    let user = any_user(&client, &username).await?;
                    client.unlock_user(&user.id).await.map_err(e)?;
                    println!("unlocked {username}");
                }
                Admin::ResetPassword {
                    username,
                    password_file,
                } => {
                    let user = any_user(&client, &username).await?;
                    let password = read_password(password_file.as_deref())?;
                    let ended = client
                        .reset_password(&user.id, &password)
                        .await
                        .map_err(e)?;
                    println!(
                        "set the password of {username}; {} sessions ended",
                        ended.ended
                    );
                }
                Admin::EndSessions { username } => {
                    let user = any_user(&client, &username).await?;
                    let ended = client.end_sessions(&user.id).await.map_err(e)?;
                    println!("ended {} sessions of {username}", ended.ended);
                }
                Admin::RenameChannel { channel, name } => {
                    let update = ChannelUpdateRequest {
                        name: Some(name),
                        topic: None,
                        archived: None,
                    };
                    let channel = change_channel(&client, &channel, &update).await?;
                    println!("renamed to #{}", p(&channel.name));
                }
                Admin::SetTopic { channel, topic } => {
                    let update = ChannelUpdateRequest {
                        name: None,
                        topic: Some(topic),
                        archived: None,
                    };
                    let channel = change_channel(&client, &channel, &update).await?;
                    println!("#{} topic: {}", p(&channel.name), p(&channel.topic));
                }
                Admin::Archive { channel, undo } => {
                    let update = ChannelUpdateRequest {
                        name: None,
                        topic: None,
                        archived: Some(!undo),
                    };
                    let channel = change_channel(&client, &channel, &update).await?;
                    let state = if channel.archived {
                        "archived"
                    } else {
                        "unarchived"
                    };
                    println!("#{} {state}", p(&channel.name));
                }
                Admin::DeleteChannel { channel, yes } => {
                    let channel = client.resolve_channel(&channel).await.map_err(e)?;
                    if !yes {
                        return Err(format!(
                            "deleting #{} cannot be undone: add --yes to confirm",
                            channel.name
                        ));
                    }
                    client.delete_channel(&channel.id).await.map_err(e)?;
                    println!("deleted #{}; its key is destroyed", p(&channel.name));
                }
                Admin::Retention
                | Admin::DeleteUser { .. }
                | Admin::Wipe { .. }
                | Admin::Storage { .. }
                | Admin::AuthoredContent { .. }
                | Admin::SetRetention { .. }
                | Admin::RunRetention
                | Admin::Holds
                | Admin::Hold { .. }
                | Admin::ReleaseHold { .. }
                | Admin::Approvals
                | Admin::Approve { .. } => lifecycle(&client, admin).await?,
                Admin::Audit { log, limit } => {
                    let page = client.audit(&log, limit).await.map_err(e)?;
                    for event in &page.events {
                        println!(
                            "{:>6} {} {} {} {} {}",
                            event.index,
                            event.at,
                            p(&event.kind),
                            p(&event.outcome),
                            p(&event.actor),
                            p(event.target.as_deref().unwrap_or("-"))
                        );
                    }
                    match &page.checkpoint {
                        Some(note) => {
                            eprintln!("{} events in the log; its newest checkpoint:", page.size);
                            for line in note.lines() {
                                eprintln!("{}", p(line));
                            }
                        }
                        None => eprintln!("{} events in the log; no checkpoint yet", page.size),
                    }
                }
            }
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // Each line made printable: a server's words may be in it.
            for (i, line) in message.lines().enumerate() {
                let lead = if i == 0 { "zt-chat: " } else { "" };
                eprintln!("{lead}{}", p(line));
            }
            ExitCode::from(2)
        }
    }
}
