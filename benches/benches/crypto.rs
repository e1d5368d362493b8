//! Envelope encryption against the raw AEAD it is built on, side by side in one run: seal + open of
//! 256 B, 4 KiB and 1 MiB under XChaCha20-Poly1305, with a fresh random nonce per message in both.
//!
//! `cargo bench -p zt-benches --bench crypto`, then `python3 scripts/bench-ratios.py`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark stops on a failed set-up step; there is no caller to return an error to"
)]

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::Rng;
use zt_crypto::envelope::EnvelopeKey;
use zt_crypto::{DataKey, KeyId, KeyRef};

const CONTEXT: &[u8] = b"tenant=tnt_0190;ns=messages;key=chn_0190/msg_0191;v=7";

fn envelope_vs_raw(c: &mut Criterion) {
    let key = DataKey::generate();
    let envelope_key = EnvelopeKey::new(
        &key,
        KeyRef {
            id: KeyId::new("tenant-1/channel-42").unwrap(),
            version: 3,
        },
    )
    .unwrap();
    let raw = XChaCha20Poly1305::new_from_slice(key.expose()).unwrap();
    let mut group = c.benchmark_group("crypto/seal_open");
    for (label, size) in [("256B", 256usize), ("4KiB", 4096), ("1MiB", 1 << 20)] {
        let plaintext = vec![0x42u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 1 << 20 {
            group.sample_size(20);
        }
        group.bench_function(BenchmarkId::new("raw_xchacha20poly1305", label), |b| {
            b.iter(|| {
                let mut nonce = [0u8; 24];
                rand::rng().fill_bytes(&mut nonce);
                let nonce = XNonce::from(nonce);
                let sealed = raw
                    .encrypt(
                        &nonce,
                        Payload {
                            msg: &plaintext,
                            aad: CONTEXT,
                        },
                    )
                    .unwrap();
                raw.decrypt(
                    &nonce,
                    Payload {
                        msg: &sealed,
                        aad: CONTEXT,
                    },
                )
                .unwrap()
            })
        });
        // ring's ChaCha20-Poly1305 (IETF, 96-bit nonce): the fastest implementation here.
        let ring_key = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key.expose()).unwrap(),
        );
        group.bench_function(BenchmarkId::new("ring_chacha20poly1305", label), |b| {
            b.iter(|| {
                let mut nonce = [0u8; 12];
                rand::rng().fill_bytes(&mut nonce);
                ring_seal_open(&ring_key, nonce, &plaintext)
            })
        });
        // XChaCha20-Poly1305 over ring: HChaCha20 (RustCrypto) derives a subkey from the first
        // 16 nonce bytes, then ring seals with the last 8; the key is set up per message.
        group.bench_function(BenchmarkId::new("xchacha_over_ring", label), |b| {
            b.iter(|| {
                let mut nonce = [0u8; 24];
                rand::rng().fill_bytes(&mut nonce);
                let subkey = chacha20::hchacha::<chacha20::R20>(
                    key.expose().into(),
                    &<[u8; 16]>::try_from(&nonce[..16]).unwrap().into(),
                );
                let subkey = ring::aead::LessSafeKey::new(
                    ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &subkey).unwrap(),
                );
                let mut short = [0u8; 12];
                short[4..].copy_from_slice(&nonce[16..]);
                ring_seal_open(&subkey, short, &plaintext)
            })
        });
        group.bench_function(BenchmarkId::new("envelope", label), |b| {
            b.iter(|| {
                let sealed = envelope_key.seal(&plaintext, CONTEXT).unwrap();
                envelope_key.open(&sealed, CONTEXT).unwrap()
            })
        });
    }
    group.finish();
}

/// Seals `plaintext` with ring (into a new buffer, as the RustCrypto rows allocate), opens it.
fn ring_seal_open(key: &ring::aead::LessSafeKey, nonce: [u8; 12], plaintext: &[u8]) -> usize {
    use ring::aead::{Aad, Nonce};
    let mut buffer = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(CONTEXT),
        &mut buffer,
    )
    .unwrap();
    key.open_in_place(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(CONTEXT),
        &mut buffer,
    )
    .unwrap()
    .len()
}

/// A scope key from a warm keyring cache against the same lookup with caching off (a record read,
/// a KMS unwrap of the tenant key and an envelope open of the scope key, every time).
fn keyring_lookup(c: &mut Criterion) {
    use std::sync::Arc;
    use zt_crypto::{InsecureFixedKms, Keyring, KeyringConfig, Kms, MemoryKeyRecords};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let kms = Arc::new(InsecureFixedKms::new());
    let kms_key = KeyId::new("tenants").unwrap();
    rt.block_on(kms.create_key(&kms_key)).unwrap();
    let records = Arc::new(MemoryKeyRecords::default());
    let ring = |config| Keyring::new(kms.clone(), records.clone(), kms_key.clone(), config);
    let cached = ring(KeyringConfig::default());
    let uncached = ring(KeyringConfig::default().max_cached(0));
    rt.block_on(cached.scope_key("tenant-1", "channel-1"))
        .unwrap();
    let mut group = c.benchmark_group("crypto/keyring");
    group.bench_function("scope_key_cached", |b| {
        b.iter(|| {
            rt.block_on(cached.scope_key("tenant-1", "channel-1"))
                .unwrap()
        })
    });
    group.bench_function("scope_key_uncached", |b| {
        b.iter(|| {
            rt.block_on(uncached.scope_key("tenant-1", "channel-1"))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, envelope_vs_raw, keyring_lookup);
criterion_main!(benches);
