//! The server package's shape: its modules import one another without a cycle, and it stays a
//! thin server (at most 8,900 lines of non-test Rust), the rules living in the libraries. (7,000
//! until SCIM: `/scim/v2` maps HTTP to `Workspace::scim` and back, and four key routes, in 150;
//! 7,150 until retention and legal holds: eight routes of one library call each, about 30 lines
//! apiece with their OpenAPI annotations, their views, the `[retention]` settings and the
//! schedule, in 350; 7,500 until two-person approval: its two routes, in 100; 7,600 until user
//! deletion, wipe and storage: seven routes of one library call each and their views, in 250;
//! 7,900 until backups: five routes of one library call each with their annotations (140), the
//! `[backups]` settings, and the offline `backup` commands (590): their output, and a restore
//! that lays out a new data directory through either key path, checks the restored identity
//! against the backup's signer and records the restore in the restored deployment's log; and
//! three encryption routes, the recovery status and two key rotations, in 100; and the backup
//! schedule's two routes and its task, in 50; and the update check, its `[updates]` settings and
//! one route, in 80.)
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code reports failures by panicking"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The non-test lines of a source file: everything before its `#[cfg(test)]` module.
fn code(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .filter(|l| !l.trim_start().starts_with("//"))
}

/// Every `.rs` file under `dir`, with its path relative to `src/`.
fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The top-level module a file belongs to (`api/admin.rs` → `api`).
fn module(file: &str) -> String {
    file.split('/')
        .next()
        .unwrap()
        .trim_end_matches(".rs")
        .to_owned()
}

#[test]
fn the_server_modules_import_one_another_without_a_cycle_and_stay_small() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut lines = 0;
    for (file, text) in &files {
        let from = module(file);
        for line in code(text) {
            lines += 1;
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let to: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let is_module = files.iter().any(|(f, _)| module(f) == to);
                if is_module && to != from {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    assert!(
        lines <= 8_900,
        "the server has {lines} lines of non-test Rust"
    );
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("import cycle: {} -> {node}", path[at..].join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done);
    }
    assert!(
        edges.contains_key("server"),
        "the scan found the modules: {edges:?}"
    );
}

/// The handlers reach a workspace only through zt-chat's Caller-taking methods: no raw handle,
/// and no audit trail of their own.
#[test]
fn no_handler_reaches_past_zt_chat() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files = Vec::new();
    sources(&api, &api, &mut files);
    assert!(files.len() > 5, "{files:?}");
    for (file, text) in &files {
        for line in code(text) {
            for door in [
                ".sessions()",
                ".authz()",
                ".users()",
                ".authenticator()",
                "AuditTrail",
                "zt_audit",
            ] {
                assert!(!line.contains(door), "api/{file} reaches {door}: {line}");
            }
        }
    }
}
