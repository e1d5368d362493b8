// The `wal_segment` fuzz check, shared by the fuzz target and zt-storage's corpus replay.

/// Reading any bytes as a write-ahead log segment (as opening a sled store does) never panics;
/// what reads writes back to the same bytes; a torn tail is allowed in the newest segment only.
fn check(data: &[u8]) {
    use zt_storage::wal_fuzzing::{decode_segment, encode_segment};
    let newest = decode_segment(data, true);
    let older = decode_segment(data, false);
    let Ok(segment) = newest else {
        assert!(older.is_err(), "an older segment is held to the stricter rule");
        return;
    };
    assert_eq!(
        encode_segment(segment.base, &segment.frames),
        data[..segment.valid_len],
        "what reads writes back the same"
    );
    assert_eq!(
        segment.torn,
        data[segment.valid_len..].iter().any(|&b| b != 0),
        "a torn tail is anything but zeroed room"
    );
    match older {
        Ok(older) => {
            assert!(!segment.torn, "an older segment may not end torn");
            assert_eq!(older, segment);
        }
        Err(_) => assert!(segment.torn, "only a torn tail tells the two apart"),
    }
}
