//! "Adding an event kind without classifying it fails to compile": compiles the kinds and their
//! classification (src/audit_kinds.rs, which has no dependencies) with rustc, as it is and with
//! one more kind added to the list but not to the classification.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers report failures by panicking"
)]

use std::process::Command;

fn compile(source: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kinds.rs");
    std::fs::write(&file, source).unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "lib",
            "--emit",
            "metadata",
            "-o",
        ])
        .arg(dir.path().join("out.rmeta"))
        .arg(&file)
        .output()
        .unwrap()
}

#[test]
fn an_unclassified_kind_does_not_compile() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/audit_kinds.rs"))
            .unwrap();
    let control = compile(&source);
    assert!(
        control.status.success(),
        "the kinds file must compile on its own: {}",
        String::from_utf8_lossy(&control.stderr)
    );
    let anchor = "LoginSucceeded = \"login.succeeded\",";
    assert!(source.contains(anchor));
    let with_new_kind = source.replacen(
        anchor,
        &format!("{anchor}\n    /// A kind nobody classified.\n    ProbeUnclassified = \"probe.unclassified\","),
        1,
    );
    let output = compile(&with_new_kind);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an unclassified kind compiled");
    assert!(
        stderr.contains("E0004"),
        "not a non-exhaustive match error: {stderr}"
    );
    assert!(stderr.contains("ProbeUnclassified"), "{stderr}");
}
