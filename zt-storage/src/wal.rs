//! The write-ahead log of [`SledStore`](crate::SledStore): numbered segment files of group frames.
//!
//! A segment (`wal/<index as 16 hex digits>.log`) starts with a header: the magic
//! `ztwal\0\0\x02`, the version the store had reached when the segment began (u64 LE) and a
//! CRC-32 of those 16 bytes. Segments are created under a temporary name, synced and renamed, so
//! a segment that has its final name always has a whole header.
//!
//! After the header come frames, one per group of commits, each written with one `write` and
//! made durable with one `fdatasync`: the magic `ZTG1`, the payload length (u32 LE), the CRC-32
//! of the payload, then the payload. A payload is a run of records, one per commit in version
//! order: its version (u64 LE), its write count (u32 LE), then each write as a tag (0 put,
//! 1 delete), the stored key's length (u32 LE) and bytes, and for a put the value's length
//! (u32 LE) and bytes.
//!
//! A crash can tear only the frame that was being written, the last of the newest segment: a
//! frame is written only after the one before it was synced. So a bad frame with nothing valid
//! after it is a torn write, cut off on open, while a bad frame followed by a good one, or a
//! bad frame in an older segment, is damage to data that was acknowledged and a `Corrupt` error.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::types::Version;

/// The directory of the segments, inside the data directory.
pub(crate) const WAL_DIR: &str = "wal";
const SEGMENT_MAGIC: [u8; 8] = *b"ztwal\0\0\x02";
pub(crate) const SEGMENT_HEADER_LEN: usize = 8 + 8 + 4;
const FRAME_MAGIC: [u8; 4] = *b"ZTG1";
/// The bytes before a frame's payload.
pub(crate) const FRAME_HEADER_LEN: usize = 4 + 4 + 4;
const TAG_PUT: u8 = 0;
const TAG_DELETE: u8 = 1;

/// One write of a record, borrowed from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    /// Store the value under the stored key.
    Put(&'a [u8], &'a [u8]),
    /// Remove the stored key.
    Delete(&'a [u8]),
}

/// Appends one record to a group buffer.
pub(crate) fn push_record<'a>(
    out: &mut Vec<u8>,
    version: Version,
    ops: impl ExactSizeIterator<Item = Op<'a>>,
) {
    out.extend_from_slice(&version.to_le_bytes());
    // A batch holds at most MAX_BATCH_OPS writes, and keys and values are far below 4 GiB.
    out.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    for op in ops {
        match op {
            Op::Put(key, value) => {
                out.push(TAG_PUT);
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(key);
                out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                out.extend_from_slice(value);
            }
            Op::Delete(key) => {
                out.push(TAG_DELETE);
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(key);
            }
        }
    }
}

/// A new, empty group buffer: room for the frame header, which [`seal`] fills in.
pub(crate) fn new_group(mut reuse: Vec<u8>) -> Vec<u8> {
    reuse.clear();
    reuse.resize(FRAME_HEADER_LEN, 0);
    reuse
}

/// Fills in the frame header of a group buffer; returns `false` for a payload too large for one
/// frame (which commit limits rule out).
pub(crate) fn seal(group: &mut [u8]) -> bool {
    let Some((header, payload)) = group.split_at_mut_checked(FRAME_HEADER_LEN) else {
        return false;
    };
    let Ok(len) = u32::try_from(payload.len()) else {
        return false;
    };
    header[..4].copy_from_slice(&FRAME_MAGIC);
    header[4..8].copy_from_slice(&len.to_le_bytes());
    header[8..12].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    true
}

fn damaged(what: &str) -> Error {
    Error::corrupt(format!("the write-ahead log is damaged: {what}"), None)
}

/// Reads little-endian integers and byte strings off a payload.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.rest.split_at_checked(n) {
            Some((taken, rest)) => {
                self.rest = rest;
                Ok(taken)
            }
            None => Err(damaged("a record runs past its frame")),
        }
    }

    fn u32(&mut self) -> Result<u32> {
        let mut raw = [0u8; 4];
        raw.copy_from_slice(self.bytes(4)?);
        Ok(u32::from_le_bytes(raw))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(raw))
    }

    fn sized(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.bytes(len)
    }
}

/// Calls `each` for every write of every record in `payload`, in order, with the record's
/// version; returns the last version. Versions must grow.
pub(crate) fn for_each_op<'a>(
    payload: &'a [u8],
    each: impl FnMut(Version, Op<'a>) -> Result<()>,
) -> Result<Option<Version>> {
    walk(payload, |_| {}, each)
}

/// [`for_each_op`], also calling `record` with each record's version before its writes.
fn walk<'a>(
    payload: &'a [u8],
    mut record: impl FnMut(Version),
    mut each: impl FnMut(Version, Op<'a>) -> Result<()>,
) -> Result<Option<Version>> {
    let mut reader = Reader { rest: payload };
    let mut last: Option<Version> = None;
    while !reader.rest.is_empty() {
        let version = reader.u64()?;
        if last.is_some_and(|last| version <= last) {
            return Err(damaged("record versions do not grow"));
        }
        last = Some(version);
        record(version);
        for _ in 0..reader.u32()? {
            let tag = reader.bytes(1)?[0];
            let key = reader.sized()?;
            let op = match tag {
                TAG_PUT => Op::Put(key, reader.sized()?),
                TAG_DELETE => Op::Delete(key),
                _ => return Err(damaged("a write has an unknown tag")),
            };
            each(version, op)?;
        }
    }
    Ok(last)
}

/// The frame at the start of `bytes`, if it is whole and its checksum holds: its payload.
fn frame_at(bytes: &[u8]) -> Option<&[u8]> {
    let header = bytes.get(..FRAME_HEADER_LEN)?;
    if header[..4] != FRAME_MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    let payload = bytes.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN.checked_add(len)?)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// A segment read from disk.
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    /// The store's version when the segment began.
    pub(crate) base: Version,
    bytes: Vec<u8>,
    /// The frames' payload ranges within `bytes`.
    frames: Vec<std::ops::Range<usize>>,
    /// Where the valid frames end (a torn tail starts here).
    valid_len: usize,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The records are the store's data: never printed.
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("base", &self.base)
            .field("frames", &self.frames.len())
            .field("torn", &self.torn())
            .finish()
    }
}

impl Segment {
    /// Reads and checks the segment at `path`. Only the newest segment (`newest`) may end in a
    /// torn frame; it is reported by [`Segment::torn`], not cut off yet.
    pub(crate) fn read(path: PathBuf, newest: bool) -> Result<Segment> {
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::backend(format!("cannot read {}", path.display()), e))?;
        Segment::parse(path, bytes, newest)
    }

    /// Checks the bytes of the segment file at `path` (named in errors only).
    fn parse(path: PathBuf, bytes: Vec<u8>, newest: bool) -> Result<Segment> {
        let header = bytes
            .get(..SEGMENT_HEADER_LEN)
            .ok_or_else(|| damaged(&format!("{} has no header", path.display())))?;
        let crc = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
        if header[..8] != SEGMENT_MAGIC || crc32fast::hash(&header[..16]) != crc {
            return Err(damaged(&format!("{} has a bad header", path.display())));
        }
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&header[8..16]);
        let base = Version::from_le_bytes(raw);
        let mut frames = Vec::new();
        let mut at = SEGMENT_HEADER_LEN;
        while at < bytes.len() {
            let Some(payload) = frame_at(&bytes[at..]) else {
                break;
            };
            let start = at + FRAME_HEADER_LEN;
            frames.push(start..start + payload.len());
            at = start + payload.len();
        }
        // Segments are written into zeroed space, so zeros after the last frame are room not
        // yet used. Anything else is a torn write, which only the newest segment may end in;
        // a valid frame after it means a synced frame was damaged.
        let rest = &bytes[at..];
        if rest.iter().any(|&b| b != 0) {
            let later_frame = (1..rest.len())
                .filter(|&p| rest[p..].starts_with(&FRAME_MAGIC))
                .any(|p| frame_at(&rest[p..]).is_some());
            if !newest || later_frame {
                return Err(damaged(&format!(
                    "{} holds a damaged frame at byte {at}",
                    path.display()
                )));
            }
        }
        Ok(Segment {
            path,
            base,
            bytes,
            frames,
            valid_len: at,
        })
    }

    /// The payloads of the segment's valid frames, in order.
    pub(crate) fn payloads(&self) -> impl Iterator<Item = &[u8]> {
        self.frames.iter().map(|range| &self.bytes[range.clone()])
    }

    /// Whether the segment ends in a torn frame.
    pub(crate) fn torn(&self) -> bool {
        self.bytes[self.valid_len..].iter().any(|&b| b != 0)
    }

    /// Cuts a torn tail (and unused room) off the file and syncs it.
    pub(crate) fn cut_torn_tail(&self) -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new().write(true).open(&self.path)?;
        file.set_len(self.valid_len as u64)?;
        file.sync_all()
    }
}

/// The segment parser, open to the fuzz target (`fuzz/checks/wal_segment.rs`); not part of
/// the crate's API.
#[doc(hidden)]
pub mod fuzzing {
    use super::{FRAME_HEADER_LEN, Op, Segment};
    use crate::error::Result;
    use crate::types::Version;

    /// One write of a decoded record: the stored key, and the value for a put.
    pub type DecodedWrite = (Vec<u8>, Option<Vec<u8>>);

    /// What a segment file holds, as the store's open reads it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DecodedSegment {
        /// The version the store had when the segment began.
        pub base: Version,
        /// Per valid frame, its records: version and writes.
        pub frames: Vec<Vec<(Version, Vec<DecodedWrite>)>>,
        /// Where the valid frames end.
        pub valid_len: usize,
        /// Whether non-zero bytes follow the valid frames (a torn write).
        pub torn: bool,
    }

    /// Reads `bytes` as a segment file the way opening a store does: the header, every frame,
    /// every record of every frame. `newest` allows a torn tail.
    pub fn decode_segment(bytes: &[u8], newest: bool) -> Result<DecodedSegment> {
        let segment = Segment::parse("segment".into(), bytes.to_vec(), newest)?;
        let mut frames = Vec::new();
        for payload in segment.payloads() {
            let records = std::cell::RefCell::new(Vec::<(Version, Vec<DecodedWrite>)>::new());
            super::walk(
                payload,
                |version| records.borrow_mut().push((version, Vec::new())),
                |_, op| {
                    let write = match op {
                        Op::Put(key, value) => (key.to_vec(), Some(value.to_vec())),
                        Op::Delete(key) => (key.to_vec(), None),
                    };
                    if let Some((_, writes)) = records.borrow_mut().last_mut() {
                        writes.push(write);
                    }
                    Ok(())
                },
            )?;
            frames.push(records.into_inner());
        }
        Ok(DecodedSegment {
            base: segment.base,
            frames,
            valid_len: segment.valid_len,
            torn: segment.torn(),
        })
    }

    /// Writes a segment file's bytes (header and frames, no room) the way the store writes
    /// them.
    pub fn encode_segment(base: Version, frames: &[Vec<(Version, Vec<DecodedWrite>)>]) -> Vec<u8> {
        let mut out = super::segment_header(base);
        for records in frames {
            let mut group = super::new_group(Vec::with_capacity(FRAME_HEADER_LEN));
            for (version, writes) in records {
                let ops = writes.iter().map(|(key, value)| match value {
                    Some(value) => Op::Put(key, value),
                    None => Op::Delete(key),
                });
                super::push_record(&mut group, *version, ops);
            }
            super::seal(&mut group);
            out.extend_from_slice(&group);
        }
        out
    }
}

/// A segment's header: magic, base version, CRC-32 of both.
fn segment_header(base: Version) -> Vec<u8> {
    let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN);
    header.extend_from_slice(&SEGMENT_MAGIC);
    header.extend_from_slice(&base.to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header
}

fn segment_name(index: u64) -> String {
    format!("{index:016x}.log")
}

/// The segments in `dir`, oldest first, as (index, path). Files of other names are left alone.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::backend(format!("cannot read {}", dir.display()), e)),
    };
    let mut segments = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::backend(format!("cannot read {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        if stem.len() != 16 {
            continue;
        }
        if let Ok(index) = u64::from_str_radix(stem, 16) {
            segments.push((index, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|(index, _)| *index);
    Ok(segments)
}

/// Syncs a directory, so a file created, renamed or removed in it stays so after a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A zeroed file ready to become the next segment (see [`prepare_room`]).
const READY: &str = "ready.tmp";
const PREPARING: &str = "preparing.tmp";

/// Writes `len` zero bytes at the end of `file`, then syncs it.
fn zero_fill(file: &mut File, len: u64) -> std::io::Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

/// Prepares a zeroed, synced file of `len` bytes for the next segment, unless one is ready. A
/// segment written into zeroed space grows no file: its `fdatasync` then writes the data and
/// no metadata, which on ext4 is about a quarter faster than an append. Runs off the write path.
pub(crate) fn prepare_room(dir: &Path, len: u64) -> std::io::Result<()> {
    if dir.join(READY).exists() {
        return Ok(());
    }
    let preparing = dir.join(PREPARING);
    let mut file = File::create(&preparing)?;
    zero_fill(&mut file, len)?;
    drop(file);
    std::fs::rename(&preparing, dir.join(READY))?;
    sync_dir(dir)
}

/// A segment open for writing.
pub(crate) struct Open {
    pub(crate) file: File,
    /// Bytes of zeroed room from the start of the file; frames go in before it fills.
    pub(crate) room: u64,
}

/// Creates segment `index` in `dir` beginning at `base`, durably (file and directory synced),
/// in the ready zeroed file if there is one and `use_ready`, else with `room` zeroed bytes made
/// now; returns it positioned after its header.
pub(crate) fn create_segment(
    dir: &Path,
    index: u64,
    base: Version,
    room: u64,
    use_ready: bool,
) -> std::io::Result<Open> {
    use std::io::{Seek as _, SeekFrom};
    let header = segment_header(base);
    let ready = dir.join(READY);
    let opened = match use_ready {
        true => std::fs::OpenOptions::new().write(true).open(&ready),
        false => Err(std::io::ErrorKind::NotFound.into()),
    };
    let (temporary, mut file) = match opened {
        Ok(file) => (ready, file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let temporary = dir.join(format!("{}.tmp", segment_name(index)));
            let mut file = File::create(&temporary)?;
            zero_fill(&mut file, room)?;
            (temporary, file)
        }
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header)?;
    file.sync_all()?;
    let room = file.metadata()?.len().max(SEGMENT_HEADER_LEN as u64);
    let path = dir.join(segment_name(index));
    std::fs::rename(&temporary, &path)?;
    sync_dir(dir)?;
    file.seek(SeekFrom::Start(SEGMENT_HEADER_LEN as u64))?;
    Ok(Open { file, room })
}

/// Removes a ready file (when the store closes: it is only a head start).
pub(crate) fn remove_room(dir: &Path) -> std::io::Result<()> {
    for name in [READY, PREPARING] {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes the segments of `dir` below `index`, then syncs the directory.
pub(crate) fn remove_segments_below(dir: &Path, index: u64) -> Result<()> {
    for (older, path) in list_segments(dir)? {
        if older < index {
            std::fs::remove_file(&path)
                .map_err(|e| Error::backend(format!("cannot remove {}", path.display()), e))?;
        }
    }
    sync_dir(dir).map_err(|e| Error::backend(format!("cannot sync {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn group(records: &[(Version, Vec<Op<'_>>)]) -> Vec<u8> {
        let mut buf = new_group(Vec::new());
        for (version, ops) in records {
            push_record(&mut buf, *version, ops.iter().copied());
        }
        assert!(seal(&mut buf));
        buf
    }

    fn count_ops(payload: &[u8]) -> usize {
        let mut count = 0;
        for_each_op(payload, |_, _| {
            count += 1;
            Ok(())
        })
        .unwrap();
        count
    }

    #[test]
    fn records_round_trip_through_a_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = create_segment(dir.path(), 1, 41, 0, false).unwrap().file;
        let first = group(&[
            (42, vec![Op::Put(b"\x01ak", b"v1"), Op::Delete(b"\x01ab")]),
            (43, vec![Op::Put(b"\x01ac", b"")]),
        ]);
        let second = group(&[(44, vec![Op::Delete(b"\x01ak")])]);
        file.write_all(&first).unwrap();
        file.write_all(&second).unwrap();
        let segments = list_segments(dir.path()).unwrap();
        assert_eq!(segments.len(), 1);
        let segment = Segment::read(segments[0].1.clone(), true).unwrap();
        assert_eq!(segment.base, 41);
        assert!(!segment.torn());
        let mut seen = Vec::new();
        for payload in segment.payloads() {
            for_each_op(payload, |v, op| {
                seen.push(format!("{v} {op:?}"));
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(seen.len(), 4);
        assert!(seen[0].starts_with("42 Put"));
        assert!(seen[3].starts_with("44 Delete"));
        assert_eq!(count_ops(segment.payloads().next().unwrap()), 3);
    }

    #[test]
    fn a_torn_tail_is_cut_but_damage_before_a_good_frame_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = create_segment(dir.path(), 7, 0, 0, false).unwrap().file;
        let one = group(&[(1, vec![Op::Put(b"\x01ak", &[5u8; 100])])]);
        let two = group(&[(2, vec![Op::Put(b"\x01ak", &[6u8; 100])])]);
        file.write_all(&one).unwrap();
        file.write_all(&two[..two.len() - 10]).unwrap();
        let path = list_segments(dir.path()).unwrap()[0].1.clone();
        let torn = Segment::read(path.clone(), true).unwrap();
        assert!(torn.torn());
        assert_eq!(torn.payloads().count(), 1);
        // In an older segment the same tail is damage.
        let older = Segment::read(path.clone(), false).unwrap_err();
        assert_eq!(older.kind(), crate::ErrorKind::Corrupt);
        torn.cut_torn_tail().unwrap();
        assert!(!Segment::read(path.clone(), true).unwrap().torn());

        // A flipped byte in the first frame, with a good frame after it: corrupt.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&two).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SEGMENT_HEADER_LEN + FRAME_HEADER_LEN + 20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Segment::read(path, true).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
    }

    #[test]
    fn zeroed_room_after_the_frames_is_no_damage_but_a_torn_write_into_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let open = create_segment(dir.path(), 3, 9, 4096, false).unwrap();
        assert_eq!(open.room, 4096);
        let mut file = open.file;
        let one = group(&[(10, vec![Op::Put(b"\x01ak", b"v")])]);
        file.write_all(&one).unwrap();
        let path = list_segments(dir.path()).unwrap()[0].1.clone();
        // An older segment may end in unused room.
        let older = Segment::read(path.clone(), false).unwrap();
        assert_eq!((older.payloads().count(), older.torn()), (1, false));
        // Half a frame written into the room: torn in the newest, damage in an older one.
        file.write_all(&one[..one.len() / 2]).unwrap();
        assert!(Segment::read(path.clone(), true).unwrap().torn());
        assert!(Segment::read(path.clone(), false).is_err());
        // A prepared room is taken by the next segment.
        prepare_room(dir.path(), 8192).unwrap();
        let next = create_segment(dir.path(), 4, 10, 0, true).unwrap();
        assert_eq!(next.room, 8192);
        assert!(!dir.path().join(READY).exists());
        assert_eq!(list_segments(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        // Truncated record, unknown tag, versions that do not grow.
        let mut buf = Vec::new();
        push_record(&mut buf, 3, [Op::Put(b"k", b"value")].into_iter());
        for cut in 0..buf.len() {
            let r = for_each_op(&buf[..cut], |_, _| Ok(()));
            assert!(cut == 0 || r.is_err(), "cut at {cut}");
        }
        let mut bad_tag = buf.clone();
        bad_tag[12] = 9;
        assert!(for_each_op(&bad_tag, |_, _| Ok(())).is_err());
        let mut twice = buf.clone();
        twice.extend_from_slice(&buf);
        assert!(for_each_op(&twice, |_, _| Ok(())).is_err());
    }
}
