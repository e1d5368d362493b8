//! The `zt-chat` binary as the client tests run it.
#![allow(dead_code, unreachable_pub, reason = "shared by several test files")]

use std::path::Path;
use std::process::{Command, Stdio};

/// `zt-chat` with its home in `home`, talking to `server`, with no password from the
/// environment and no standard input.
pub fn cli(home: &Path, server: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zt-chat"));
    command
        .env("ZT_CHAT_HOME", home)
        .env("ZT_SERVER", server)
        .env_remove("ZT_PASSWORD")
        .stdin(Stdio::null());
    command
}
