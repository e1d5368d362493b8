//! Sealed archives: round trips, refusals of every kind of tampering by someone who holds a
//! recipient's identity (and so can write a new age file around altered content), the golden
//! layout, and interoperability with the `age` command (`ZT_TEST_AGE_BIN`).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers report failures by panicking"
)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::str::FromStr as _;

use proptest::prelude::*;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use zt_crypto::archive::{
    ArchiveIdentity, ArchiveReader, ArchiveRecipient, ArchiveWriter, Manifest, check_part_name,
    verify_archive,
};
use zt_crypto::{ErrorKind, SigningKey};

const CREATED: u64 = 1_765_000_000;

fn signer() -> SigningKey {
    SigningKey::from_seed(&[7; 32])
}

/// Parts of awkward sizes: empty, exactly a block, one over, and larger than age's 64 KiB chunk.
fn sample_parts() -> Vec<(String, Vec<u8>)> {
    vec![
        ("store/a.rows".into(), b"first".to_vec()),
        ("empty".into(), Vec::new()),
        ("store/block".into(), vec![0xab; 512]),
        ("store/block-and-one".into(), vec![0xcd; 513]),
        (
            "files/big.bin".into(),
            (0..200_000u32).map(|i| (i % 251) as u8).collect(),
        ),
    ]
}

fn write(identity: &ArchiveIdentity, parts: &[(String, Vec<u8>)]) -> (Vec<u8>, Manifest) {
    let mut writer =
        ArchiveWriter::new(Vec::new(), &[identity.recipient()], "backup", CREATED).unwrap();
    for (name, bytes) in parts {
        writer.append_bytes(name, bytes).unwrap();
    }
    let metadata = BTreeMap::from([("backup".to_string(), "b-1".to_string())]);
    writer.finish(metadata, &signer()).unwrap()
}

fn read_all(
    sealed: &[u8],
    identity: &ArchiveIdentity,
) -> zt_crypto::Result<Vec<(String, Vec<u8>)>> {
    let mut reader = ArchiveReader::open(sealed, std::slice::from_ref(identity))?;
    let mut parts = Vec::new();
    while let Some(mut part) = reader.next_part()? {
        let mut bytes = Vec::new();
        part.read_to_end(&mut bytes)
            .map_err(|e| zt_crypto::Error::Tampered(format!("reading: {e}")))?;
        assert_eq!(bytes.len() as u64, part.size());
        parts.push((part.name().to_string(), bytes));
    }
    reader.finish(&signer().verifying_key())?;
    Ok(parts)
}

/// The tar stream inside an archive, as someone holding the identity sees it.
fn plaintext(sealed: &[u8], identity: &ArchiveIdentity) -> Vec<u8> {
    let decryptor = age::Decryptor::new(sealed).unwrap();
    let identity =
        age::x25519::Identity::from_str(identity.to_secret_string().expose_secret()).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

/// A new age file around `plain`, to the identity's recipient: what a recipient can forge.
fn reseal(plain: &[u8], identity: &ArchiveIdentity) -> Vec<u8> {
    let recipient = age::x25519::Recipient::from_str(&identity.recipient().to_string()).unwrap();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    writer.write_all(plain).unwrap();
    writer.finish().unwrap();
    out
}

/// The tar members of a plaintext: (header offset, whole member length with padding).
fn members(plain: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= plain.len() && plain[at..at + 512].iter().any(|&b| b != 0) {
        let name = String::from_utf8(
            plain[at..at + 100]
                .split(|&b| b == 0)
                .next()
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        let size_text = std::str::from_utf8(&plain[at + 124..at + 135]).unwrap();
        let size = usize::from_str_radix(size_text, 8).unwrap();
        let len = 512 + size.div_ceil(512) * 512;
        out.push((name, at, len));
        at += len;
    }
    out
}

fn member(plain: &[u8], name: &str) -> (usize, usize) {
    let (_, at, len) = members(plain)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .unwrap();
    (at, len)
}

fn refusal(sealed: &[u8], identity: &ArchiveIdentity) -> String {
    let error = read_all(sealed, identity).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tampered, "{error}");
    let verified = verify_archive(
        sealed,
        std::slice::from_ref(identity),
        &signer().verifying_key(),
    )
    .unwrap_err();
    assert_eq!(verified.kind(), ErrorKind::Tampered, "{verified}");
    error.to_string()
}

#[test]
fn parts_come_back_in_order_with_a_signed_manifest() {
    let identity = ArchiveIdentity::generate();
    let parts = sample_parts();
    let (sealed, manifest) = write(&identity, &parts);
    assert_eq!(read_all(&sealed, &identity).unwrap(), parts);
    assert_eq!(manifest.kind, "backup");
    assert_eq!(manifest.created, CREATED);
    assert_eq!(manifest.metadata["backup"], "b-1");
    assert_eq!(
        manifest.total_size(),
        parts.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
    let names: Vec<_> = manifest.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "store/a.rows",
            "empty",
            "store/block",
            "store/block-and-one",
            "files/big.bin"
        ]
    );
    assert_eq!(
        manifest.parts[0].sha256,
        hex::encode(Sha256::digest(b"first"))
    );
    let verified =
        verify_archive(sealed.as_slice(), &[identity], &signer().verifying_key()).unwrap();
    assert_eq!(verified, manifest);
}

#[test]
fn a_part_read_halfway_is_finished_by_the_next_call() {
    let identity = ArchiveIdentity::generate();
    let (sealed, _) = write(&identity, &sample_parts());
    let mut reader = ArchiveReader::open(sealed.as_slice(), &[identity]).unwrap();
    let mut names = Vec::new();
    while let Some(mut part) = reader.next_part().unwrap() {
        let mut some = [0u8; 3];
        let _ = part.read(&mut some).unwrap();
        names.push(part.name().to_string());
    }
    assert_eq!(names.len(), 5);
    reader.finish(&signer().verifying_key()).unwrap();
}

#[test]
fn each_recipient_opens_it_alone_and_a_stranger_cannot() {
    let first = ArchiveIdentity::generate();
    let second = ArchiveIdentity::generate();
    let mut writer = ArchiveWriter::new(
        Vec::new(),
        &[first.recipient(), second.recipient()],
        "export",
        CREATED,
    )
    .unwrap();
    writer.append_bytes("a", b"x").unwrap();
    let (sealed, _) = writer.finish(BTreeMap::new(), &signer()).unwrap();
    for identity in [&first, &second] {
        assert_eq!(
            read_all(&sealed, identity).unwrap(),
            [("a".to_string(), b"x".to_vec())]
        );
    }
    let stranger = ArchiveIdentity::generate();
    let error = ArchiveReader::open(sealed.as_slice(), &[stranger]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Decrypt);
}

#[test]
fn an_archive_signed_by_another_key_is_refused_and_the_signer_named() {
    let identity = ArchiveIdentity::generate();
    let (sealed, _) = write(&identity, &sample_parts());
    let other = SigningKey::from_seed(&[9; 32]);
    let error = verify_archive(sealed.as_slice(), &[identity], &other.verifying_key()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tampered);
    assert!(
        error
            .to_string()
            .contains(&signer().verifying_key().fingerprint()),
        "{error}"
    );
}

#[test]
fn a_part_altered_by_a_recipient_is_named() {
    let identity = ArchiveIdentity::generate();
    let (sealed, _) = write(&identity, &sample_parts());
    let mut plain = plaintext(&sealed, &identity);
    let (at, _) = member(&plain, "store/block");
    plain[at + 512 + 10] ^= 1;
    let message = refusal(&reseal(&plain, &identity), &identity);
    assert!(
        message.contains("part store/block was altered"),
        "{message}"
    );
}

#[test]
fn reordered_parts_are_named() {
    let identity = ArchiveIdentity::generate();
    let (sealed, _) = write(&identity, &sample_parts());
    let plain = plaintext(&sealed, &identity);
    let (a, a_len) = member(&plain, "store/a.rows");
    let (e, e_len) = member(&plain, "empty");
    let mut swapped = plain[..a].to_vec();
    swapped.extend_from_slice(&plain[e..e + e_len]);
    swapped.extend_from_slice(&plain[a..a + a_len]);
    swapped.extend_from_slice(&plain[e + e_len..]);
    let message = refusal(&reseal(&swapped, &identity), &identity);
    assert!(message.contains("part empty is out of order"), "{message}");
}

#[test]
fn a_dropped_part_is_named() {
    let identity = ArchiveIdentity::generate();
    let (sealed, _) = write(&identity, &sample_parts());
    for dropped in ["store/block", "files/big.bin"] {
        let plain = plaintext(&sealed, &identity);
        let (at, len) = member(&plain, dropped);
        let mut cut = plain[..at].to_vec();
        cut.extend_from_slice(&plain[at + len..]);
        let message = refusal(&reseal(&cut, &identity), &identity);
        assert!(
            message.contains(&format!("part {dropped} is missing")),
            "{message}"
        );
    }
}

#[test]
fn an_added_part_is_named() {
    let identity = ArchiveIdentity::generate();
    let (sealed, _) = write(&identity, &sample_parts());
    let plain = plaintext(&sealed, &identity);
    let (at, len) = member(&plain, "store/a.rows");
    // The same member again under another name (its header rewritten with a valid checksum).
    let mut extra = plain[at..at + len].to_vec();
    extra[..100].fill(0);
    extra[..8].copy_from_slice(b"injected");
    extra[148..156].fill(b' ');
    let sum: u32 = extra[..512].iter().map(|&b| u32::from(b)).sum();
    extra[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut added = plain[..at + len].to_vec();
    added.extend_from_slice(&extra);
    added.extend_from_slice(&plain[at + len..]);
    let message = refusal(&reseal(&added, &identity), &identity);
    assert!(
        message.contains("part injected is not in the signed manifest"),
        "{message}"
    );
}

#[test]
fn a_manifest_rewritten_to_match_an_altered_part_fails_its_signature() {
    let identity = ArchiveIdentity::generate();
    let (sealed, manifest) = write(&identity, &sample_parts());
    let plain = plaintext(&sealed, &identity);
    let (at, len) = member(&plain, "MANIFEST.json");
    let text = String::from_utf8(plain[at + 512..at + len].to_vec()).unwrap();
    let forged = text.replacen(&manifest.parts[0].sha256, &"0".repeat(64), 1);
    assert_ne!(text, forged);
    let mut altered = plain.clone();
    altered[at + 512..at + len].copy_from_slice(forged.as_bytes());
    let message = refusal(&reseal(&altered, &identity), &identity);
    assert!(message.contains("signature does not verify"), "{message}");
}

#[test]
fn a_cut_archive_is_refused_wherever_it_is_cut() {
    let identity = ArchiveIdentity::generate();
    let (sealed, _) = write(&identity, &sample_parts());
    // The ciphertext cut: age finds the missing last chunk.
    for keep in [sealed.len() - 1, sealed.len() - 17, sealed.len() / 2, 300] {
        let error = read_all(&sealed[..keep], &identity).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Tampered, "cut at {keep}: {error}");
    }
    // The plaintext cut by a recipient and sealed again: the manifest is missing.
    let plain = plaintext(&sealed, &identity);
    let (at, _) = member(&plain, "MANIFEST.json");
    let mut cut = plain[..at].to_vec();
    cut.extend_from_slice(&[0u8; 1024]);
    let message = refusal(&reseal(&cut, &identity), &identity);
    assert!(message.contains("ends without its manifest"), "{message}");
    // Cut inside a part.
    let (big, _) = member(&plain, "files/big.bin");
    let message = refusal(&reseal(&plain[..big + 512 + 1000], &identity), &identity);
    assert!(message.contains("part files/big.bin"), "{message}");
}

#[test]
fn a_flipped_ciphertext_byte_is_refused() {
    let identity = ArchiveIdentity::generate();
    let (sealed, _) = write(&identity, &sample_parts());
    let mut flipped = sealed.clone();
    let at = sealed.len() - 100;
    flipped[at] ^= 0x40;
    refusal(&flipped, &identity);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every byte of the tar stream is covered: changing any one of them (and sealing the
    /// result again, as a recipient can) is refused as tampering.
    #[test]
    fn any_changed_byte_of_the_content_is_refused(position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let identity = shared_identity();
        let parts = vec![("a".to_string(), b"alpha".to_vec()), ("b/c".to_string(), vec![1u8; 700])];
        let (sealed, _) = write(&identity, &parts);
        let mut plain = plaintext(&sealed, &identity);
        let at = position.index(plain.len());
        plain[at] ^= 1 << bit;
        let error = read_all(&reseal(&plain, &identity), &identity).unwrap_err();
        prop_assert_eq!(error.kind(), ErrorKind::Tampered, "byte {}: {}", at, error);
    }

    #[test]
    fn any_parts_round_trip(parts in prop::collection::vec((0usize..3000, any::<u8>()), 0..6)) {
        let identity = shared_identity();
        let parts: Vec<(String, Vec<u8>)> = parts
            .into_iter()
            .enumerate()
            .map(|(i, (len, byte))| (format!("p/{i}"), vec![byte; len]))
            .collect();
        let (sealed, _) = write(&identity, &parts);
        prop_assert_eq!(read_all(&sealed, &identity).unwrap(), parts);
    }
}

/// One identity for every case (so cases differ only in what they test).
fn shared_identity() -> ArchiveIdentity {
    static IDENTITY: std::sync::OnceLock<ArchiveIdentity> = std::sync::OnceLock::new();
    IDENTITY.get_or_init(ArchiveIdentity::generate).clone()
}

#[test]
fn part_names_that_could_escape_or_collide_are_refused() {
    for bad in [
        "",
        "/etc/passwd",
        "../up",
        "a/../b",
        "a//b",
        "a/",
        "./a",
        "MANIFEST.json",
        "MANIFEST.sig",
        "a b",
        "a\nb",
        "é",
        &"x".repeat(101),
    ] {
        let error = check_part_name(bad).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    check_part_name(&"x".repeat(100)).unwrap();
    check_part_name("store/chat.messages/000001.rows").unwrap();
    let identity = ArchiveIdentity::generate();
    let mut writer = ArchiveWriter::new(Vec::new(), &[identity.recipient()], "k", 0).unwrap();
    writer.append_bytes("same", b"1").unwrap();
    assert_eq!(
        writer.append_bytes("same", b"2").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // A source shorter than promised leaves the writer unusable (no half part gets signed).
    let error = writer.append("short", 10, &mut &b"abc"[..]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        writer
            .finish(BTreeMap::new(), &signer())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        ArchiveWriter::new(Vec::new(), &[], "k", 0)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn identities_print_no_secret_and_parse_from_an_age_key_file() {
    let identity = ArchiveIdentity::generate();
    let shown = format!("{identity:?}");
    let secret = identity.to_secret_string();
    assert!(!shown.contains(secret.expose_secret()), "{shown}");
    assert!(
        !shown.to_ascii_uppercase().contains("AGE-SECRET-KEY"),
        "{shown}"
    );
    assert!(shown.contains(&identity.recipient().to_string()));
    let file = format!(
        "# created: 2026-12-07\n# public key: {}\n{}\n",
        identity.recipient(),
        secret.expose_secret()
    );
    let parsed = ArchiveIdentity::parse(&SecretString::from(file)).unwrap();
    assert_eq!(parsed.recipient(), identity.recipient());
    assert_eq!(
        ArchiveIdentity::parse(&SecretString::from("# nothing\n"))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let recipient = ArchiveRecipient::from_str(&identity.recipient().to_string()).unwrap();
    assert_eq!(recipient, identity.recipient());
    assert_eq!(
        ArchiveRecipient::from_str("age1notakey")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

/// The tar layout is a format: this pins it (the age layer is random, the tar stream is not).
/// The `age` test below checks the same layout with the system's `tar`.
#[test]
fn the_tar_layout_matches_its_golden_digest() {
    let identity = ArchiveIdentity::generate();
    let parts = vec![
        ("store/a.rows".to_string(), b"first".to_vec()),
        ("empty".to_string(), Vec::new()),
        ("z".to_string(), vec![0x5a; 1000]),
    ];
    let (sealed, _) = write(&identity, &parts);
    let plain = plaintext(&sealed, &identity);
    let names: Vec<_> = members(&plain).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        names,
        [
            "store/a.rows",
            "empty",
            "z",
            "MANIFEST.json",
            "MANIFEST.sig"
        ]
    );
    assert_eq!(plain.len() % 512, 0);
    assert!(plain[plain.len() - 1024..].iter().all(|&b| b == 0));
    assert_eq!(
        hex::encode(Sha256::digest(&plain)),
        GOLDEN_LAYOUT,
        "the tar layout changed"
    );
}

const GOLDEN_LAYOUT: &str = "2f3cc8717ea48539445dd086d74446d0f169060ed3380fedb32c6e4fd421a0be";

/// `ZT_TEST_AGE_BIN` (the Debian `age` command; `.ci/run` sets it): `age -d` opens what we write and
/// the system `tar` reads the parts out; and what `age -e` seals around our tar stream verifies
/// here.
#[test]
fn the_age_command_and_tar_open_an_archive() {
    let Ok(age_bin) = std::env::var("ZT_TEST_AGE_BIN") else {
        println!(
            "skipped: set ZT_TEST_AGE_BIN to the age command to run the interoperability test"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let identity = ArchiveIdentity::generate();
    let key_file = dir.path().join("key.txt");
    std::fs::write(
        &key_file,
        format!("{}\n", identity.to_secret_string().expose_secret()),
    )
    .unwrap();
    let parts = sample_parts();
    let (sealed, _) = write(&identity, &parts);
    let archive = dir.path().join("a.age");
    std::fs::write(&archive, &sealed).unwrap();

    let plain = dir.path().join("a.tar");
    let status = std::process::Command::new(&age_bin)
        .args(["--decrypt", "--identity"])
        .arg(&key_file)
        .arg("--output")
        .arg(&plain)
        .arg(&archive)
        .status()
        .unwrap();
    assert!(status.success(), "age --decrypt failed");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&plain)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "tar -x failed");
    for (name, bytes) in &parts {
        assert_eq!(&std::fs::read(out.join(name)).unwrap(), bytes, "{name}");
    }
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(out.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest.parts.len(), parts.len());

    // The other way: `age -e` to our recipient around the same tar stream.
    let resealed = dir.path().join("b.age");
    let status = std::process::Command::new(&age_bin)
        .args(["--encrypt", "--recipient"])
        .arg(identity.recipient().to_string())
        .arg("--output")
        .arg(&resealed)
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success(), "age --encrypt failed");
    let bytes = std::fs::read(&resealed).unwrap();
    assert_eq!(read_all(&bytes, &identity).unwrap(), parts);
}
