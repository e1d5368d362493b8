//! The Merkle tree against the shared vectors (../shared/testdata/merkle): the RFC 6962 known
//! answers, and every transparency-dev inclusion and consistency vector, which must pass or fail
//! exactly as its `wantErr` says. Then properties: generated proofs verify, mutated ones do not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::Value;
use zt_audit::merkle::{
    self, Hash, consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency,
    verify_inclusion,
};

/// The shared test data, beside the project (`../shared/testdata/merkle`).
fn testdata() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/merkle");
    assert!(
        dir.is_dir(),
        "the shared Merkle vectors are missing: expected {} (shared/ beside the project)",
        dir.display()
    );
    dir
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A base64 hash; `None` for null or a value that is not 32 bytes (which must then fail).
fn hash(value: &Value) -> Option<Hash> {
    let text = value.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
}

/// A root from a vector. A few vectors use placeholder roots that are not 32 bytes, to test
/// rules that only compare roots for equality; our roots are typed as 32-byte hashes, so map
/// such a value to its SHA-256, which keeps equal roots equal and different ones different.
fn root_of(value: &Value) -> Option<Hash> {
    use sha2::Digest as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str()?)
        .ok()?;
    Some(match <Hash>::try_from(bytes.as_slice()) {
        Ok(hash) => hash,
        Err(_) => sha2::Sha256::digest(&bytes).into(),
    })
}

/// The proof's hashes; `None` if any element is not a 32-byte hash.
fn proof(value: &Value) -> Option<Vec<Hash>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        _ => None,
    }
}

#[test]
fn rfc6962_known_answers() {
    let kat: Value = serde_json::from_str(
        &std::fs::read_to_string(testdata().join("rfc6962-kat.json")).unwrap(),
    )
    .unwrap();
    let leaves: Vec<Hash> = kat["leaf_inputs_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| leaf_hash(&hex_decode(h.as_str().unwrap())))
        .collect();
    let roots = kat["root_hashes_hex_by_size"].as_array().unwrap();
    assert!(roots.len() >= 9);
    for (size, expected) in roots.iter().enumerate() {
        let got = root(&leaves, size as u64);
        assert_eq!(hex_encode(&got), expected.as_str().unwrap(), "size {size}");
    }
    assert_eq!(root(&leaves, 0), merkle::empty_root());
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn inclusion_vectors() {
    let files = json_files(&testdata().join("inclusion"));
    assert!(files.len() > 20, "found {} inclusion vectors", files.len());
    for file in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let outcome = match (
            hash(&v["leafHash"]),
            root_of(&v["root"]),
            proof(&v["proof"]),
        ) {
            (Some(leaf), Some(root), Some(proof)) => verify_inclusion(
                v["leafIdx"].as_u64().unwrap(),
                v["treeSize"].as_u64().unwrap(),
                &leaf,
                &proof,
                &root,
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(outcome, !want_err, "{}: {}", file.display(), v["desc"]);
    }
}

#[test]
fn consistency_vectors() {
    let files = json_files(&testdata().join("consistency"));
    assert!(
        files.len() > 20,
        "found {} consistency vectors",
        files.len()
    );
    for file in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let outcome = match (
            root_of(&v["root1"]),
            root_of(&v["root2"]),
            proof(&v["proof"]),
        ) {
            (Some(root1), Some(root2), Some(proof)) => verify_consistency(
                v["size1"].as_u64().unwrap(),
                v["size2"].as_u64().unwrap(),
                &proof,
                &root1,
                &root2,
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(outcome, !want_err, "{}: {}", file.display(), v["desc"]);
    }
}

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every inclusion proof we generate verifies; one flipped bit, a wrong index or a wrong
    /// size makes it fail.
    #[test]
    fn inclusion_proofs_verify_and_mutations_fail(
        size in 1u64..200,
        index_seed in any::<u64>(),
        flip in any::<(usize, u8)>(),
    ) {
        let all = leaves(size);
        let index = index_seed % size;
        let tree_root = root(&all, size);
        let proof = inclusion_proof(&all, index, size).unwrap();
        prop_assert!(verify_inclusion(index, size, &all[index as usize], &proof, &tree_root).is_ok());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let (i, bit) = flip;
            bad[i % proof.len()][(bit as usize) % 32] ^= 1 << (bit % 8);
            prop_assert!(verify_inclusion(index, size, &all[index as usize], &bad, &tree_root).is_err());
            let mut short = proof.clone();
            short.pop();
            prop_assert!(verify_inclusion(index, size, &all[index as usize], &short, &tree_root).is_err());
        }
        if size > 1 {
            let other = (index + 1) % size;
            prop_assert!(verify_inclusion(other, size, &all[index as usize], &proof, &tree_root).is_err());
        }
        let mut long = proof.clone();
        long.push([0; 32]);
        prop_assert!(verify_inclusion(index, size, &all[index as usize], &long, &tree_root).is_err());
    }

    /// Every consistency proof we generate verifies; any mutation, a wrong old root or a
    /// rewritten history makes it fail.
    #[test]
    fn consistency_proofs_verify_and_mutations_fail(
        new_size in 1u64..200,
        old_seed in any::<u64>(),
        flip in any::<(usize, u8)>(),
    ) {
        let all = leaves(new_size);
        let old_size = old_seed % (new_size + 1);
        let (old_root, new_root) = (root(&all, old_size), root(&all, new_size));
        let proof = consistency_proof(&all, old_size, new_size).unwrap();
        let verified = verify_consistency(old_size, new_size, &proof, &old_root, &new_root);
        // From the empty tree there is nothing to prove, and the verifier says so.
        prop_assert_eq!(verified.is_ok(), old_size > 0);
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let (i, bit) = flip;
            bad[i % proof.len()][(bit as usize) % 32] ^= 1 << (bit % 8);
            prop_assert!(verify_consistency(old_size, new_size, &bad, &old_root, &new_root).is_err());
        }
        if old_size > 0 && old_size < new_size {
            // A history where an old entry was changed is not consistent with the new tree.
            let mut rewritten = all.clone();
            rewritten[(old_seed % old_size) as usize] = leaf_hash(b"forged");
            let forged_old = root(&rewritten, old_size);
            prop_assert!(verify_consistency(old_size, new_size, &proof, &forged_old, &new_root).is_err());
        }
    }
}
