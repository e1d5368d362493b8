// The `codec` fuzz check, shared by the fuzz target and zt-storage's corpus replay (`include!`).

/// A record shaped like what zt stores: strings, lists, options, maps, bytes.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Record {
    name: String,
    tags: Vec<String>,
    quota: Option<u64>,
    nested: std::collections::BTreeMap<String, Vec<i64>>,
    blob: Vec<u8>,
}

/// Decoding any bytes returns, never panics.
fn check(data: &[u8]) {
    let _ = zt_storage::codec::decode::<Record>(data);
    let _ = zt_storage::codec::decode::<Vec<Option<String>>>(data);
}
