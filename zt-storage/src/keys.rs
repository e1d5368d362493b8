//! How the embedded backends lay namespaced keys out in one ordered keyspace.
//!
//! A stored key is `len(namespace) as u8 ‖ namespace ‖ key`. Because namespace names are at most
//! 64 bytes, the length byte never collides with another name's bytes, and all keys of one
//! namespace are contiguous and ordered as their user keys are. Keys starting with a zero byte
//! (an empty namespace, which users cannot name) hold the backend's own bookkeeping.

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::types::{KeyRange, Namespace, prefix_successor};

fn namespace_prefix(namespace: &Namespace) -> Vec<u8> {
    let name = namespace.as_str().as_bytes();
    let mut prefix = Vec::with_capacity(1 + name.len());
    // Namespace::new caps names at 64 bytes, so the length fits one byte.
    prefix.push(name.len() as u8);
    prefix.extend_from_slice(name);
    prefix
}

/// The stored form of `key` in `namespace`.
pub(crate) fn encode(namespace: &Namespace, key: &[u8]) -> Vec<u8> {
    let mut out = namespace_prefix(namespace);
    out.extend_from_slice(key);
    out
}

/// The user key of a stored key known to be in `namespace`.
pub(crate) fn decode<'a>(namespace: &Namespace, stored: &'a [u8]) -> Result<&'a [u8]> {
    let skip = 1 + namespace.as_str().len();
    stored
        .get(skip..)
        .ok_or_else(|| Error::corrupt("stored key is shorter than its namespace prefix", None))
}

/// The namespace and user key of a stored key, or `None` for the backend's own bookkeeping
/// (keys of the empty namespace).
pub(crate) fn split(stored: &[u8]) -> Result<Option<(Namespace, &[u8])>> {
    let damaged = || Error::corrupt("a stored key does not name a namespace", None);
    let (&len, rest) = stored.split_first().ok_or_else(damaged)?;
    if len == 0 {
        return Ok(None);
    }
    let name = rest.get(..usize::from(len)).ok_or_else(damaged)?;
    let name = std::str::from_utf8(name).map_err(|_| damaged())?;
    let namespace = Namespace::new(name).map_err(|_| damaged())?;
    Ok(Some((namespace, &rest[usize::from(len)..])))
}

/// The stored-key bounds of `range` within `namespace`.
pub(crate) fn bounds(namespace: &Namespace, range: &KeyRange) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let prefix = namespace_prefix(namespace);
    let with = |k: &Vec<u8>| {
        let mut out = prefix.clone();
        out.extend_from_slice(k);
        out
    };
    let start = match &range.start {
        Bound::Unbounded => Bound::Included(prefix.clone()),
        Bound::Included(k) => Bound::Included(with(k)),
        Bound::Excluded(k) => Bound::Excluded(with(k)),
    };
    let end = match &range.end {
        Bound::Unbounded => match prefix_successor(&prefix) {
            Some(next) => Bound::Excluded(next),
            None => Bound::Unbounded,
        },
        Bound::Included(k) => Bound::Included(with(k)),
        Bound::Excluded(k) => Bound::Excluded(with(k)),
    };
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_that_prefix_each_other_stay_apart() {
        let a = Namespace::new("a").unwrap();
        let ab = Namespace::new("ab").unwrap();
        // Key "b..." in namespace "a" must not fall inside namespace "ab", nor the reverse.
        let in_a = encode(&a, b"b-key");
        let (start, end) = bounds(&ab, &KeyRange::all());
        let inside = |k: &[u8]| {
            (match &start {
                Bound::Included(s) => k >= s.as_slice(),
                _ => unreachable!(),
            }) && (match &end {
                Bound::Excluded(e) => k < e.as_slice(),
                _ => unreachable!(),
            })
        };
        assert!(!inside(&in_a));
        assert!(inside(&encode(&ab, b"")));
        assert!(inside(&encode(&ab, b"\xff\xff")));
        assert_eq!(decode(&ab, &encode(&ab, b"xyz")).unwrap(), b"xyz");
    }
}
