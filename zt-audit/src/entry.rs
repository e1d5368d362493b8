//! The canonical encoding of an audit entry: the bytes the Merkle tree hashes.
//!
//! Each event has exactly one encoding, and decoding is strict (it refuses anything `encode`
//! would not produce), so an accepted entry re-encodes to the same bytes and the same leaf
//! hash. The writer and the verifier share this module and nothing else.
//!
//! ```text
//! u8      format version (1)
//! str     kind name ("login.failed", ...)
//! opt     tenant: 0, or 1 and 16 id bytes
//! actor   0 and 16 user id bytes | 1 and str (system component) | 2 (anonymous)
//! opt     target: 0, or 1 and str
//! u8      outcome: 0 success, 1 failure, 2 denied
//! source  0 (none) | 4 and 4 bytes (IPv4) | 6 and 16 bytes (IPv6)
//! i64     time, milliseconds since the Unix epoch
//! u32     detail count, then per detail in strictly ascending name order:
//!         str name, then 0 and str (text) | 1 and i64 (number) | 2 and u8 0/1 (flag)
//! ```
//!
//! `str` is a u32 length and UTF-8 bytes; integers are big endian. Nothing may follow.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zt_core::{Actor, AuditEvent, AuditEventKind, Detail, Outcome, TenantId, Timestamp, UserId};

use crate::error::{Error, Result};

const FORMAT_V1: u8 = 1;

fn put_str(out: &mut Vec<u8>, text: &str) {
    // Strings longer than 4 GiB cannot be built in memory here; cap rather than panic.
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..len as usize]);
}

/// The canonical bytes of `event`.
pub fn encode(event: &AuditEvent) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    put_str(&mut out, event.kind.name());
    match &event.tenant {
        None => out.push(0),
        Some(tenant) => {
            out.push(1);
            out.extend_from_slice(&tenant.to_bytes());
        }
    }
    match &event.actor {
        Actor::User(user) => {
            out.push(0);
            out.extend_from_slice(&user.to_bytes());
        }
        Actor::System(component) => {
            out.push(1);
            put_str(&mut out, component);
        }
        Actor::Anonymous => out.push(2),
    }
    match &event.target {
        None => out.push(0),
        Some(target) => {
            out.push(1);
            put_str(&mut out, target);
        }
    }
    out.push(match event.outcome {
        Outcome::Success => 0,
        Outcome::Failure => 1,
        Outcome::Denied => 2,
    });
    match event.source {
        None => out.push(0),
        Some(IpAddr::V4(v4)) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&event.at.unix_millis().to_be_bytes());
    let count = u32::try_from(event.details.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    // A BTreeMap iterates in ascending name order: the canonical order.
    for (name, value) in event.details.iter().take(count as usize) {
        put_str(&mut out, name);
        match value {
            Detail::Text(text) => {
                out.push(0);
                put_str(&mut out, text);
            }
            Detail::Number(n) => {
                out.push(1);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Detail::Flag(flag) => {
                out.push(2);
                out.push(u8::from(*flag));
            }
        }
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Parse<&'a [u8]> {
        if self.0.len() < n {
            return Err(malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Parse<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| malformed("truncated"))
    }

    fn u8(&mut self) -> Parse<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn str(&mut self) -> Parse<&'a str> {
        let (len, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or_else(|| malformed("truncated"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(malformed("truncated"));
        }
        let (bytes, tail) = rest.split_at(len);
        self.0 = tail;
        std::str::from_utf8(bytes).map_err(|_| malformed("text is not UTF-8"))
    }
}

/// Why bytes are not a canonical entry. Kept small so the parser's results fit in registers;
/// it becomes an [`Error`] at the public functions.
type Parse<T> = std::result::Result<T, &'static str>;

fn malformed(why: &'static str) -> &'static str {
    why
}

/// An actor as parsed, borrowing the entry's bytes.
enum ActorRef<'a> {
    User([u8; 16]),
    System(&'a str),
    Anonymous,
}

/// A detail value as parsed, borrowing the entry's bytes.
enum DetailRef<'a> {
    Text(&'a str),
    Number(i64),
    Flag(bool),
}

/// Every field of an entry, checked and borrowing its bytes; the details stay encoded (they were
/// checked) and are read again by [`details`].
struct Fields<'a> {
    kind: AuditEventKind,
    tenant: Option<TenantId>,
    actor: ActorRef<'a>,
    target: Option<&'a str>,
    outcome: Outcome,
    source: Option<IpAddr>,
    at: Timestamp,
    count: u32,
    details: &'a [u8],
}

fn read_detail<'a>(r: &mut Reader<'a>) -> Parse<(&'a str, DetailRef<'a>)> {
    let name = r.str()?;
    let value = match r.u8()? {
        0 => DetailRef::Text(r.str()?),
        1 => DetailRef::Number(i64::from_be_bytes(r.array()?)),
        2 => match r.u8()? {
            0 => DetailRef::Flag(false),
            1 => DetailRef::Flag(true),
            _ => return Err(malformed("bad flag")),
        },
        _ => return Err(malformed("bad detail tag")),
    };
    Ok((name, value))
}

/// Parses and checks canonical bytes without copying anything out of them.
fn parse(bytes: &[u8]) -> Parse<Fields<'_>> {
    let mut r = Reader(bytes);
    if r.u8()? != FORMAT_V1 {
        return Err(malformed("unknown format version"));
    }
    let kind = AuditEventKind::from_name(r.str()?).ok_or_else(|| malformed("unknown kind"))?;
    let tenant = match r.u8()? {
        0 => None,
        1 => Some(TenantId::from_bytes(r.array()?)),
        _ => return Err(malformed("bad tenant tag")),
    };
    let actor = match r.u8()? {
        0 => ActorRef::User(r.array()?),
        1 => ActorRef::System(r.str()?),
        2 => ActorRef::Anonymous,
        _ => return Err(malformed("bad actor tag")),
    };
    let target = match r.u8()? {
        0 => None,
        1 => Some(r.str()?),
        _ => return Err(malformed("bad target tag")),
    };
    let outcome = match r.u8()? {
        0 => Outcome::Success,
        1 => Outcome::Failure,
        2 => Outcome::Denied,
        _ => return Err(malformed("bad outcome")),
    };
    let source = match r.u8()? {
        0 => None,
        4 => Some(IpAddr::V4(Ipv4Addr::from(r.array::<4>()?))),
        6 => Some(IpAddr::V6(Ipv6Addr::from(r.array::<16>()?))),
        _ => return Err(malformed("bad source tag")),
    };
    let at = Timestamp::from_unix_millis(i64::from_be_bytes(r.array()?));
    let count = u32::from_be_bytes(r.array()?);
    let details = r.0;
    let mut previous: Option<&str> = None;
    for _ in 0..count {
        let (name, _) = read_detail(&mut r)?;
        if previous.is_some_and(|p| p >= name) {
            return Err(malformed("detail names out of order or repeated"));
        }
        previous = Some(name);
    }
    if !r.0.is_empty() {
        return Err(malformed("trailing bytes"));
    }
    Ok(Fields {
        kind,
        tenant,
        actor,
        target,
        outcome,
        source,
        at,
        count,
        details,
    })
}

/// Checks that `bytes` are a canonical entry, as [`decode`] would, without building the event.
///
/// # Errors
/// [`Error::MalformedEntry`] for anything [`encode`] would not have produced.
pub fn validate(bytes: &[u8]) -> Result<()> {
    parse(bytes).map(|_| ()).map_err(to_error)
}

fn to_error(why: &'static str) -> Error {
    Error::MalformedEntry(why.into())
}

/// Reads canonical bytes back.
///
/// # Errors
/// [`Error::MalformedEntry`] for anything [`encode`] would not have produced.
pub fn decode(bytes: &[u8]) -> Result<AuditEvent> {
    let fields = parse(bytes).map_err(to_error)?;
    let mut details = BTreeMap::new();
    let mut r = Reader(fields.details);
    for _ in 0..fields.count {
        let (name, value) = read_detail(&mut r).map_err(to_error)?;
        let value = match value {
            DetailRef::Text(text) => Detail::Text(text.to_owned()),
            DetailRef::Number(n) => Detail::Number(n),
            DetailRef::Flag(flag) => Detail::Flag(flag),
        };
        details.insert(name.to_owned(), value);
    }
    Ok(AuditEvent {
        kind: fields.kind,
        tenant: fields.tenant,
        actor: match fields.actor {
            ActorRef::User(id) => Actor::User(UserId::from_bytes(id)),
            ActorRef::System(component) => Actor::System(component.to_owned()),
            ActorRef::Anonymous => Actor::Anonymous,
        },
        target: fields.target.map(str::to_owned),
        outcome: fields.outcome,
        source: fields.source,
        at: fields.at,
        details,
    })
}
