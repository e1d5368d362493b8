//! The realtime channel's cryptography: Noise XK (`Noise_XK_25519_ChaChaPoly_BLAKE2b`, the
//! [`snow`] crate) with the prologue [`PROLOGUE`], and the framing of what travels inside it.
//!
//! - The client (initiator) knows the server's static X25519 key before it connects: it pinned it
//!   from `GET /api/v1/identity`, where the server's Ed25519 identity key signs it. A server
//!   without the matching private key cannot complete the handshake.
//! - Over a WebSocket each binary message is one Noise message: `msg1` (client), `msg2`
//!   (server), `msg3` (client, carrying the session token, encrypted), then transport messages.
//! - Inside a transport message, the first byte says whether more of the same record follows
//!   ([`MORE`]) or this is its last part ([`LAST`]); a record is one JSON document, at most
//!   [`MAX_RECORD`] bytes, so large events travel in several Noise messages.
//! - A transport message that does not decrypt under the next nonce (forged, replayed, reordered,
//!   or plaintext) is an error: the connection must close.
//!
//! It is also what the npm `noise-handshake` library speaks, so a browser can be a client.
//!
//! [`verify_channel_key`] is the client's check of what the server publishes: its identity key's
//! fingerprint, and the identity key's signature over the channel key. Feature `channel`.
//!
//! ```
//! use zt_crypto::channel::{Initiator, Reassembler, Responder, StaticKeypair};
//!
//! let server = StaticKeypair::generate()?;
//! let (initiator, msg1) = Initiator::start(&server.public())?;
//! let mut responder = Responder::new(&server)?;
//! let msg2 = responder.respond(&msg1)?;
//! let (msg3, mut client) = initiator.finish(&msg2, b"{\"token\":\"...\"}")?;
//! let (payload, mut server_side) = responder.finish(&msg3)?;
//! assert_eq!(&payload[..], b"{\"token\":\"...\"}");
//!
//! let frames = server_side.seal_record(b"{\"type\":\"ready\"}")?;
//! let mut records = Reassembler::default();
//! let mut got = None;
//! for frame in frames {
//!     got = records.push(&client.open(&frame)?)?;
//! }
//! assert_eq!(got.as_deref(), Some(&b"{\"type\":\"ready\"}"[..]));
//! # Ok::<(), zt_crypto::channel::ChannelError>(())
//! ```

use std::fmt;

use snow::{HandshakeState, TransportState};
use zeroize::Zeroizing;

/// The Noise protocol name.
pub const PROTOCOL: &str = "Noise_XK_25519_ChaChaPoly_BLAKE2b";
/// The prologue both sides mix in: the protocol's version. A client of another version fails the
/// handshake instead of misreading the records.
pub const PROLOGUE: &[u8] = b"zt-chat/1";
/// The largest Noise message.
pub const MAX_MESSAGE: usize = 65_535;
/// The authentication tag of every transport message.
const TAG: usize = 16;
/// The largest part of a record in one transport message (the flag byte aside).
pub const MAX_PART: usize = MAX_MESSAGE - TAG - 1;
/// The largest record, reassembled.
pub const MAX_RECORD: usize = 1024 * 1024;
/// The flag of a record's last part.
pub const LAST: u8 = 0;
/// The flag of a part that more of the same record follows.
pub const MORE: u8 = 1;

/// What the server's identity key signs to vouch for its channel key: this context, then the 32
/// key bytes.
pub const CHANNEL_KEY_CONTEXT: &[u8] = b"zt-chat realtime static key v1\n";

/// The message the identity key signs for `static_key`.
pub fn channel_key_message(static_key: &[u8; 32]) -> Vec<u8> {
    let mut message = CHANNEL_KEY_CONTEXT.to_vec();
    message.extend_from_slice(static_key);
    message
}

/// Checks what a server publishes about its channel before anyone pins it: that `fingerprint`
/// is `identity`'s ([`VerifyingKey::fingerprint`](crate::VerifyingKey::fingerprint)), and that
/// `identity` signed [`channel_key_message`] of `static_key`.
///
/// # Errors
/// [`ChannelError::Identity`] saying which check failed (none of them is secret).
pub fn verify_channel_key(
    identity: &crate::VerifyingKey,
    fingerprint: &str,
    static_key: &[u8; 32],
    signature: &[u8; 64],
) -> Result<(), ChannelError> {
    if identity.fingerprint() != fingerprint {
        return Err(ChannelError::Identity("the fingerprint is not the key's"));
    }
    identity
        .verify(&channel_key_message(static_key), signature)
        .map_err(|_| ChannelError::Identity("the identity key did not sign the channel key"))
}

/// Why the channel failed. None of these carries key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A message is larger than Noise allows.
    #[error("a Noise message is at most {MAX_MESSAGE} bytes; this one has {0}")]
    TooLarge(usize),
    /// The handshake failed: a wrong server key, another prologue, or a damaged message.
    #[error("the handshake failed: {0}")]
    Handshake(String),
    /// A transport message did not decrypt: forged, replayed, reordered, or plaintext.
    #[error("a frame is not a valid transport message of this channel")]
    Decrypt,
    /// A record's framing is wrong: an unknown flag, an empty message, or too large.
    #[error("bad record framing: {0}")]
    Framing(&'static str),
    /// A key has the wrong length, or no randomness was available.
    #[error("key: {0}")]
    Key(String),
    /// What a server publishes about its channel does not hold together.
    #[error("the server's identity is invalid: {0}")]
    Identity(&'static str),
}

fn params() -> Result<snow::params::NoiseParams, ChannelError> {
    PROTOCOL
        .parse()
        .map_err(|e: snow::Error| ChannelError::Key(e.to_string()))
}

/// A static X25519 key pair: the server's long-term channel key. `Debug` shows the public half
/// only; the private half is zeroed when dropped.
#[derive(Clone)]
pub struct StaticKeypair {
    private: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

fn key32(bytes: &[u8]) -> Result<[u8; 32], ChannelError> {
    bytes
        .try_into()
        .map_err(|_| ChannelError::Key(format!("expected 32 bytes, got {}", bytes.len())))
}

impl StaticKeypair {
    /// A fresh key pair from the OS random number generator.
    ///
    /// # Errors
    /// [`ChannelError::Key`] when no randomness is available.
    pub fn generate() -> Result<Self, ChannelError> {
        let pair = snow::Builder::new(params()?)
            .generate_keypair()
            .map_err(|e| ChannelError::Key(e.to_string()))?;
        let private = Zeroizing::new(key32(&pair.private)?);
        let public = key32(&pair.public)?;
        let mut secret = pair.private;
        zeroize::Zeroize::zeroize(&mut secret);
        Ok(StaticKeypair { private, public })
    }

    /// The pair from its stored halves.
    ///
    /// # Errors
    /// [`ChannelError::Key`] unless both are 32 bytes.
    pub fn from_parts(private: &[u8], public: &[u8]) -> Result<Self, ChannelError> {
        Ok(StaticKeypair {
            private: Zeroizing::new(key32(private)?),
            public: key32(public)?,
        })
    }

    /// The public half: what clients pin.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The private half, for storing it sealed.
    pub fn private(&self) -> &[u8; 32] {
        &self.private
    }
}

fn handshake(e: snow::Error) -> ChannelError {
    ChannelError::Handshake(e.to_string())
}

fn checked(message: &[u8]) -> Result<&[u8], ChannelError> {
    if message.len() > MAX_MESSAGE {
        Err(ChannelError::TooLarge(message.len()))
    } else {
        Ok(message)
    }
}

/// The server's side of a handshake.
pub struct Responder {
    state: HandshakeState,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder with the server's static key.
    ///
    /// # Errors
    /// [`ChannelError::Key`] when the handshake cannot be set up.
    pub fn new(key: &StaticKeypair) -> Result<Self, ChannelError> {
        let state = snow::Builder::new(params()?)
            .local_private_key(&key.private[..])
            .and_then(|b| b.prologue(PROLOGUE))
            .and_then(snow::Builder::build_responder)
            .map_err(|e| ChannelError::Key(e.to_string()))?;
        Ok(Responder { state })
    }

    /// Reads the client's first message and answers with the second.
    ///
    /// # Errors
    /// [`ChannelError::Handshake`]; [`ChannelError::TooLarge`].
    pub fn respond(&mut self, msg1: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut scratch = vec![0u8; MAX_MESSAGE];
        self.state
            .read_message(checked(msg1)?, &mut scratch)
            .map_err(handshake)?;
        let n = self
            .state
            .write_message(&[], &mut scratch)
            .map_err(handshake)?;
        scratch.truncate(n);
        Ok(scratch)
    }

    /// Reads the client's last message: its payload (the session token), and the channel.
    ///
    /// # Errors
    /// [`ChannelError::Handshake`] (also when called before [`Responder::respond`]);
    /// [`ChannelError::TooLarge`].
    pub fn finish(mut self, msg3: &[u8]) -> Result<(Zeroizing<Vec<u8>>, Transport), ChannelError> {
        let mut payload = Zeroizing::new(vec![0u8; MAX_MESSAGE]);
        let n = self
            .state
            .read_message(checked(msg3)?, &mut payload)
            .map_err(handshake)?;
        payload.truncate(n);
        let state = self.state.into_transport_mode().map_err(handshake)?;
        Ok((payload, Transport { state }))
    }
}

/// The client's side of a handshake.
pub struct Initiator {
    state: HandshakeState,
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator").finish_non_exhaustive()
    }
}

impl Initiator {
    /// Starts a handshake with the server whose static key is `server` (the pinned key), with a
    /// fresh client key; returns the first message to send.
    ///
    /// # Errors
    /// [`ChannelError::Key`]; [`ChannelError::Handshake`].
    pub fn start(server: &[u8; 32]) -> Result<(Self, Vec<u8>), ChannelError> {
        let own = StaticKeypair::generate()?;
        let mut state = snow::Builder::new(params()?)
            .local_private_key(&own.private[..])
            .and_then(|b| b.remote_public_key(server))
            .and_then(|b| b.prologue(PROLOGUE))
            .and_then(snow::Builder::build_initiator)
            .map_err(|e| ChannelError::Key(e.to_string()))?;
        let mut msg1 = vec![0u8; MAX_MESSAGE];
        let n = state.write_message(&[], &mut msg1).map_err(handshake)?;
        msg1.truncate(n);
        Ok((Initiator { state }, msg1))
    }

    /// Reads the server's answer and writes the last message, carrying `payload` encrypted.
    /// Fails when the server does not hold the pinned key.
    ///
    /// # Errors
    /// [`ChannelError::Handshake`]; [`ChannelError::TooLarge`].
    pub fn finish(
        mut self,
        msg2: &[u8],
        payload: &[u8],
    ) -> Result<(Vec<u8>, Transport), ChannelError> {
        let mut scratch = vec![0u8; MAX_MESSAGE];
        self.state
            .read_message(checked(msg2)?, &mut scratch)
            .map_err(handshake)?;
        let n = self
            .state
            .write_message(payload, &mut scratch)
            .map_err(handshake)?;
        scratch.truncate(n);
        let state = self.state.into_transport_mode().map_err(handshake)?;
        Ok((scratch, Transport { state }))
    }
}

/// An established channel: seals and opens transport messages in order.
pub struct Transport {
    state: TransportState,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Transport {
    /// Opens the next transport message. Any message but the next one sealed by the peer fails.
    ///
    /// # Errors
    /// [`ChannelError::Decrypt`]; [`ChannelError::TooLarge`].
    pub fn open(&mut self, message: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let message = checked(message)?;
        let mut plain = vec![0u8; message.len()];
        let n = self
            .state
            .read_message(message, &mut plain)
            .map_err(|_| ChannelError::Decrypt)?;
        plain.truncate(n);
        Ok(plain)
    }

    fn seal(&mut self, plain: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut message = vec![0u8; plain.len() + TAG];
        let n = self
            .state
            .write_message(plain, &mut message)
            .map_err(|e| ChannelError::Handshake(e.to_string()))?;
        message.truncate(n);
        Ok(message)
    }

    /// Seals one record as one or more transport messages, to send in order.
    ///
    /// # Errors
    /// [`ChannelError::Framing`] for a record larger than [`MAX_RECORD`].
    pub fn seal_record(&mut self, record: &[u8]) -> Result<Vec<Vec<u8>>, ChannelError> {
        if record.len() > MAX_RECORD {
            return Err(ChannelError::Framing("record too large"));
        }
        let mut parts = record.chunks(MAX_PART).peekable();
        let mut messages = Vec::new();
        if parts.peek().is_none() {
            return Ok(vec![self.seal(&[LAST])?]);
        }
        while let Some(part) = parts.next() {
            let mut plain = Vec::with_capacity(part.len() + 1);
            plain.push(if parts.peek().is_some() { MORE } else { LAST });
            plain.extend_from_slice(part);
            messages.push(self.seal(&plain)?);
        }
        Ok(messages)
    }
}

/// Joins the opened parts of records.
#[derive(Debug, Default)]
pub struct Reassembler {
    pending: Vec<u8>,
}

impl Reassembler {
    /// Takes the opened plaintext of one transport message; returns a record once its last part
    /// arrived.
    ///
    /// # Errors
    /// [`ChannelError::Framing`] for an empty message, an unknown flag, or a record over
    /// [`MAX_RECORD`].
    pub fn push(&mut self, plain: &[u8]) -> Result<Option<Vec<u8>>, ChannelError> {
        let (&flag, part) = plain
            .split_first()
            .ok_or(ChannelError::Framing("empty message"))?;
        if self.pending.len() + part.len() > MAX_RECORD {
            return Err(ChannelError::Framing("record too large"));
        }
        match flag {
            MORE => {
                self.pending.extend_from_slice(part);
                Ok(None)
            }
            LAST => {
                self.pending.extend_from_slice(part);
                Ok(Some(std::mem::take(&mut self.pending)))
            }
            _ => Err(ChannelError::Framing("unknown flag")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_key_verifies_only_when_the_identity_signed_it_and_the_fingerprint_is_its() {
        let identity = crate::SigningKey::from_seed(&[1; 32]);
        let public = identity.verifying_key();
        let key = StaticKeypair::generate().unwrap().public();
        let signature = identity.sign(&channel_key_message(&key));
        verify_channel_key(&public, &public.fingerprint(), &key, &signature).unwrap();
        // Another channel key under the same signature.
        let other = StaticKeypair::generate().unwrap().public();
        assert!(verify_channel_key(&public, &public.fingerprint(), &other, &signature).is_err());
        // A fingerprint that is not the key's.
        let stranger = crate::SigningKey::from_seed(&[2; 32]).verifying_key();
        assert!(verify_channel_key(&public, &stranger.fingerprint(), &key, &signature).is_err());
        // Another identity's signature.
        let forged = crate::SigningKey::from_seed(&[2; 32]).sign(&channel_key_message(&key));
        assert!(verify_channel_key(&public, &public.fingerprint(), &key, &forged).is_err());
    }

    fn pair() -> (Transport, Transport) {
        let server = StaticKeypair::generate().unwrap();
        let (initiator, msg1) = Initiator::start(&server.public()).unwrap();
        let mut responder = Responder::new(&server).unwrap();
        let msg2 = responder.respond(&msg1).unwrap();
        let (msg3, client) = initiator.finish(&msg2, b"hello").unwrap();
        let (payload, server) = responder.finish(&msg3).unwrap();
        assert_eq!(&payload[..], b"hello");
        (client, server)
    }

    #[test]
    fn a_client_pinning_another_key_fails_the_handshake() {
        let server = StaticKeypair::generate().unwrap();
        let impostor = StaticKeypair::generate().unwrap();
        let (initiator, msg1) = Initiator::start(&server.public()).unwrap();
        let mut responder = Responder::new(&impostor).unwrap();
        // The impostor cannot read msg1 (it is keyed to the pinned key)...
        let answered = responder.respond(&msg1);
        // ...and should it answer anyway, the client refuses the answer.
        if let Ok(msg2) = answered {
            assert!(matches!(
                initiator.finish(&msg2, b"token"),
                Err(ChannelError::Handshake(_))
            ));
        }
    }

    #[test]
    fn replayed_reordered_and_plaintext_frames_are_refused() {
        let (mut client, mut server) = pair();
        let first = client.seal_record(b"one").unwrap().remove(0);
        let second = client.seal_record(b"two").unwrap().remove(0);
        assert!(matches!(server.open(&second), Err(ChannelError::Decrypt)));
        let (mut client, mut server) = pair();
        let first_again = client.seal_record(b"one").unwrap().remove(0);
        assert_eq!(server.open(&first_again).unwrap(), b"\0one");
        assert!(matches!(
            server.open(&first_again),
            Err(ChannelError::Decrypt)
        ));
        assert!(matches!(
            server.open(b"{\"type\":\"ping\"}"),
            Err(ChannelError::Decrypt)
        ));
        drop(first);
    }

    #[test]
    fn large_records_travel_in_parts() {
        let (mut client, mut server) = pair();
        let record: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let frames = server.seal_record(&record).unwrap();
        assert_eq!(frames.len(), 200_000usize.div_ceil(MAX_PART));
        let mut joined = Reassembler::default();
        let mut out = None;
        for frame in &frames {
            assert!(frame.len() <= MAX_MESSAGE);
            assert!(out.is_none());
            out = joined.push(&client.open(frame).unwrap()).unwrap();
        }
        assert_eq!(out.unwrap(), record);
        assert_eq!(server.seal_record(&[]).unwrap().len(), 1);
        assert!(server.seal_record(&vec![0; MAX_RECORD + 1]).is_err());
    }

    #[test]
    fn bad_framing_is_refused() {
        let mut joined = Reassembler::default();
        assert!(joined.push(&[]).is_err());
        assert!(joined.push(&[7, 1, 2]).is_err());
        let part = vec![0u8; MAX_PART];
        let mut too_much = Reassembler::default();
        let mut result = Ok(None);
        for _ in 0..=(MAX_RECORD / MAX_PART) + 1 {
            let mut plain = vec![MORE];
            plain.extend_from_slice(&part);
            result = too_much.push(&plain);
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err());
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let key = StaticKeypair::generate().unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode(key.private())));
        assert!(shown.contains(&hex::encode(key.public())));
    }
}
