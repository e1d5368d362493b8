//! Typed, time-ordered ids.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::clock::{Clock, Timestamp};
use crate::error::Error;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        ///
        /// Printed as
        #[doc = concat!("`", $prefix, "_` followed by 32 lowercase hex digits of a UUIDv7;")]
        /// parsing accepts only that form. Ids order by creation time (to the millisecond), and
        /// [`to_bytes`](Self::to_bytes) keeps that order for storage keys.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// The type prefix of this id's text form.
            pub const PREFIX: &'static str = $prefix;

            /// A new id for the current time of `clock`, with 74 random bits from the thread's
            /// CSPRNG.
            pub fn generate(clock: &dyn Clock) -> Self {
                Self::generate_with(clock.now(), &mut rand::rng())
            }

            /// A new id for `now`, drawing its random bits from `rng` (seed it to reproduce ids).
            pub fn generate_with<R: Rng + ?Sized>(now: Timestamp, rng: &mut R) -> Self {
                let mut random = [0u8; 10];
                rng.fill_bytes(&mut random);
                // UUIDv7 holds 48 bits of milliseconds; times before the epoch clamp to it.
                let millis = u64::try_from(now.unix_millis()).unwrap_or(0);
                $name(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
            }

            /// The id with these 16 bytes.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(Uuid::from_bytes(bytes))
            }

            /// The 16 bytes of the id, in an order that sorts like the ids.
            pub const fn to_bytes(self) -> [u8; 16] {
                self.0.into_bytes()
            }

            /// The millisecond the id was made at (its first 48 bits).
            pub fn made_at(self) -> Timestamp {
                let b = self.to_bytes();
                let millis = u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]);
                Timestamp::from_unix_millis(i64::try_from(millis).unwrap_or(i64::MAX))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self, Error> {
                parse_id(text, $prefix, stringify!($name)).map($name)
            }
        }

        /// Its text form in human-readable formats (JSON), its 16 bytes in binary ones (the
        /// CBOR of stored records). Reading a binary format takes either form, so records
        /// written with text ids still read; that needs a self-describing format, as CBOR is.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(self)
                } else {
                    serializer.serialize_bytes(&self.to_bytes())
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let visitor = IdVisitor {
                    prefix: $prefix,
                    expected: stringify!($name),
                };
                let id = if deserializer.is_human_readable() {
                    deserializer.deserialize_str(visitor)
                } else {
                    deserializer.deserialize_any(visitor)
                }?;
                Ok($name(id))
            }
        }
    };
}

/// Reads an id as its text form or, in binary formats, as its 16 bytes.
struct IdVisitor {
    prefix: &'static str,
    expected: &'static str,
}

impl serde::de::Visitor<'_> for IdVisitor {
    type Value = Uuid;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {} (\"{}_\" and 32 hex digits, or 16 bytes)",
            self.expected, self.prefix
        )
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Uuid, E> {
        parse_id(text, self.prefix, self.expected).map_err(E::custom)
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Uuid, E> {
        <[u8; 16]>::try_from(bytes)
            .map(Uuid::from_bytes)
            .map_err(|_| E::invalid_length(bytes.len(), &self))
    }
}

fn parse_id(text: &str, prefix: &str, expected: &'static str) -> Result<Uuid, Error> {
    let invalid = |reason: String| Error::InvalidId { expected, reason };
    let Some((found, hex)) = text.split_once('_') else {
        return Err(invalid(format!("expected \"{prefix}_\" and 32 hex digits")));
    };
    if found != prefix {
        return Err(invalid(format!(
            "prefix is {:?}, expected {prefix:?}",
            found.chars().take(16).collect::<String>()
        )));
    }
    if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid(
            "expected 32 lowercase hex digits after the prefix".into(),
        ));
    }
    Uuid::try_parse(hex).map_err(|e| invalid(e.to_string()))
}

typed_id!(
    /// A tenant: one organisation, with its own keys, roles and data.
    TenantId, "tnt"
);
typed_id!(
    /// A user account.
    UserId, "usr"
);
typed_id!(
    /// A group of users.
    GroupId, "grp"
);
typed_id!(
    /// A chat channel.
    ChannelId, "chn"
);
typed_id!(
    /// A role: a named set of permissions.
    RoleId, "rol"
);
typed_id!(
    /// An authenticated session.
    SessionId, "ses"
);
typed_id!(
    /// A chat message.
    MessageId, "msg"
);
typed_id!(
    /// An uploaded file.
    FileId, "fil"
);
typed_id!(
    /// A legal hold on content.
    HoldId, "hld"
);
typed_id!(
    /// A request for a second person's approval.
    ApprovalId, "apr"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn known_answer() {
        let mut rng = StdRng::seed_from_u64(7);
        let id = UserId::generate_with(Timestamp::from_unix_millis(0x0123_4567_89ab), &mut rng);
        let text = id.to_string();
        // 48-bit millisecond time first, then the version nibble 7.
        assert!(text.starts_with("usr_0123456789ab7"), "{text}");
        assert_eq!(text.len(), 4 + 32);
        assert_eq!(text.parse::<UserId>().unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("UserId({text})"));
    }

    #[test]
    fn malformed_text_is_a_typed_error() {
        let good = "usr_0123456789ab7def8123456789abcdef";
        assert!(good.parse::<UserId>().is_ok());
        for bad in [
            "",
            "usr",
            "usr_",
            "chn_0123456789ab7def8123456789abcdef",
            "USR_0123456789ab7def8123456789abcdef",
            "usr_0123456789AB7DEF8123456789ABCDEF",
            "usr_0123456789ab7def8123456789abcde",
            "usr_0123456789ab7def8123456789abcdeff",
            "usr_0123456789ab-def8123456789abcdef",
            "usr_01234567-89ab-7def-8123-456789abcdef",
            "usr_0123456789ab7def8123456789abcdeé",
        ] {
            let err = bad.parse::<UserId>().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidId {
                        expected: "UserId",
                        ..
                    }
                ),
                "{bad:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn serde_uses_the_text_form() {
        let id = ChannelId::generate(&ManualClock::default());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ChannelId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<UserId>(&json).is_err());
        assert!(serde_json::from_str::<ChannelId>("42").is_err());
    }

    /// Stored records (zt's CBOR codec) hold ids as 16 bytes; records written when ids were
    /// stored as text still read, a wrong-length byte string or another type's text does not.
    #[test]
    fn stored_records_hold_bytes_and_still_read_text() {
        use zt_storage::codec;
        let id = MessageId::generate(&ManualClock::default());
        let stored = codec::encode(&id).unwrap();
        // Tag, CBOR byte-string header (major type 2, length 16), the bytes.
        assert_eq!(stored[1..], [&[0x50][..], &id.to_bytes()].concat());
        assert_eq!(codec::decode::<MessageId>(&stored).unwrap(), id);
        let legacy = codec::encode(&id.to_string()).unwrap();
        assert_eq!(codec::decode::<MessageId>(&legacy).unwrap(), id);
        let other = codec::encode(&UserId::from_bytes(id.to_bytes()).to_string()).unwrap();
        assert!(codec::decode::<MessageId>(&other).is_err());
        let short = codec::encode(&serde_bytes_of(&id.to_bytes()[..15])).unwrap();
        assert!(codec::decode::<MessageId>(&short).is_err());
        assert!(codec::decode::<MessageId>(&codec::encode(&7u32).unwrap()).is_err());
        // In a record beside other fields, in a map key, in an option.
        let record = (id, Some(id), std::collections::BTreeMap::from([(id, 1u8)]));
        let back: (
            MessageId,
            Option<MessageId>,
            std::collections::BTreeMap<MessageId, u8>,
        ) = codec::decode(&codec::encode(&record).unwrap()).unwrap();
        assert_eq!(back, record);
    }

    /// A CBOR byte string of `bytes` (serde's `Vec<u8>` would be an array).
    fn serde_bytes_of(bytes: &[u8]) -> impl serde::Serialize + '_ {
        struct Bytes<'a>(&'a [u8]);
        impl serde::Serialize for Bytes<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Bytes(bytes)
    }

    #[test]
    fn ids_sort_by_time() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000));
        let first = MessageId::generate(&clock);
        clock.advance(std::time::Duration::from_millis(1));
        let second = MessageId::generate(&clock);
        assert!(first < second);
        assert!(first.to_bytes() < second.to_bytes());
    }

    proptest! {
        #[test]
        fn text_and_bytes_round_trip(bytes in any::<[u8; 16]>()) {
            let id = GroupId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<GroupId>().unwrap(), id);
            prop_assert_eq!(GroupId::from_bytes(id.to_bytes()), id);
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}") {
            let _ = text.parse::<TenantId>();
        }
    }
}

/// Who acts: a user, within the tenant the request is for. Every authorization question names
/// one; anything of another tenant is denied as if it did not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Principal {
    /// The tenant.
    pub tenant: TenantId,
    /// The user.
    pub user: UserId,
}
