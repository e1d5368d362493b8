// The `realtime_frame` fuzz check, shared by the fuzz target and zt-chat-server's corpus replay.

/// What a client can send the server's realtime decoder: as the handshake's first message, as
/// transport frames of an established channel (split where the input says), and as a record
/// sealed properly. Never panics; a forged frame never opens; a sealed record round-trips.
#[allow(clippy::unwrap_used, reason = "the fuzz harness reports a broken invariant by panicking")]
fn check(data: &[u8]) {
    use zt_crypto::channel::{Initiator, Reassembler, Responder, StaticKeypair, MAX_RECORD};
    use zt_chat_protocol::realtime::ClientRecord;

    let server = StaticKeypair::from_parts(&[7; 32], &[0; 32]).unwrap();
    // A handshake's first message from an unknown client.
    let _ = Responder::new(&server).unwrap().respond(data);

    let server = StaticKeypair::generate().unwrap();
    let (initiator, msg1) = Initiator::start(&server.public()).unwrap();
    let mut responder = Responder::new(&server).unwrap();
    let msg2 = responder.respond(&msg1).unwrap();
    let (msg3, mut client) = initiator.finish(&msg2, b"{}").unwrap();
    let (_, mut transport) = responder.finish(&msg3).unwrap();

    // Raw frames, as a hostile client sends them: the first byte of each chunk is its length.
    let mut rest = data;
    let mut records = Reassembler::default();
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, next) = tail.split_at(usize::from(len).min(tail.len()));
        rest = next;
        // Only the client holds the key: nothing it did not seal opens, and a refused frame
        // leaves the channel as it was.
        assert!(transport.open(frame).is_err(), "a frame the client never sealed opened");
    }
    // A record the client sealed comes back whole, whatever its bytes.
    if data.len() <= MAX_RECORD {
        let mut got = None;
        for frame in client.seal_record(data).unwrap() {
            got = records.push(&transport.open(&frame).unwrap()).unwrap();
        }
        let record = got.unwrap();
        assert_eq!(record, data);
        let _ = serde_json::from_slice::<ClientRecord>(&record);
    }
}
