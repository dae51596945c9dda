//! The bytes of the log file.
//!
//! ```text
//! header:  "SCIMLOG1" | generation: u64
//! record:  payload length: u32 | CRC-32 of the payload: u32 | payload
//! payload: kind: u8 | version: u64 | count: u32 | items
//!   kind 1, a commit: every item  key | 0 (delete) or 1 value   -- all at `version`
//!   kind 2, a snapshot: every item  key | item version: u64 | value
//! key, value: length: u32 | bytes
//! ```
//!
//! Integers are little-endian. A commit record holds only writes whose
//! preconditions held when it was appended under the lock, so replaying
//! the log never re-checks anything. A snapshot (written by compaction into
//! a new file of a new generation) carries every record with its own
//! version, and in `version` the store's counter, which may be higher than
//! any record's when the newest records were deleted.

use std::collections::BTreeMap;

pub const MAGIC: &[u8; 8] = b"SCIMLOG1";
pub const HEADER_LEN: u64 = 16;
/// Length and checksum in front of every payload.
pub const FRAME_LEN: usize = 8;
/// The smallest payload: kind, version, count.
const MIN_PAYLOAD: usize = 13;
/// A payload longer than this is damage, not a record: the core's largest
/// commit (10,000 writes of at most a request body each) stays far below.
pub const MAX_PAYLOAD: usize = 1 << 30;

const COMMIT: u8 = 1;
const SNAPSHOT: u8 = 2;

/// A record as stored: its value and the version it was written at.
pub type Slot = (Vec<u8>, u64);

pub fn header(generation: u64) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&generation.to_le_bytes());
    out
}

/// The generation of a file that starts with a header, `None` for anything else.
pub fn read_header(bytes: &[u8]) -> Option<u64> {
    let (magic, rest) = bytes.split_first_chunk::<8>()?;
    let generation = rest.first_chunk::<8>()?;
    (magic == MAGIC).then(|| u64::from_le_bytes(*generation))
}

/// Frames a payload: length, checksum, bytes.
fn frame(payload: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A commit's record: `writes` are (key, new value or `None` to delete).
pub fn commit_record<'a>(version: u64, writes: impl ExactSizeIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Vec<u8> {
    let mut payload = vec![COMMIT];
    payload.extend_from_slice(&version.to_le_bytes());
    payload.extend_from_slice(&(writes.len() as u32).to_le_bytes());
    for (key, value) in writes {
        put_bytes(&mut payload, key.as_bytes());
        match value {
            None => payload.push(0),
            Some(value) => {
                payload.push(1);
                put_bytes(&mut payload, value);
            }
        }
    }
    frame(payload)
}

/// Snapshot records of `records`, each payload about `chunk` bytes, the
/// store's counter `version` in every one. At least one record, so that the
/// counter survives compaction of an empty store.
pub fn snapshot_records(version: u64, records: &BTreeMap<String, Slot>, chunk: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut items: Vec<u8> = Vec::new();
    let mut count = 0u32;
    let finish = |items: &mut Vec<u8>, count: &mut u32| {
        let mut payload = vec![SNAPSHOT];
        payload.extend_from_slice(&version.to_le_bytes());
        payload.extend_from_slice(&count.to_le_bytes());
        payload.append(items);
        *count = 0;
        frame(payload)
    };
    for (key, (value, v)) in records {
        put_bytes(&mut items, key.as_bytes());
        items.extend_from_slice(&v.to_le_bytes());
        put_bytes(&mut items, value);
        count += 1;
        if items.len() >= chunk {
            out.push(finish(&mut items, &mut count));
        }
    }
    if count > 0 || out.is_empty() {
        out.push(finish(&mut items, &mut count));
    }
    out
}

/// What reading the next record found.
pub enum Next {
    /// A whole record, applied; this many bytes long.
    Record(usize),
    /// The bytes end before the record does: an append still under way, or
    /// one a crash cut short.
    Incomplete,
    /// The bytes are there but are no record (a checksum or a structure
    /// that does not hold): damage, or an append a crash cut short after the
    /// file had grown.
    Bad(&'static str),
}

/// What a record takes in a snapshot, roughly: compaction compares the
/// log's length with the sum over the records.
pub fn slot_size(key: &str, slot: Option<&Slot>) -> u64 {
    slot.map_or(0, |(value, _)| (key.len() + value.len() + 16) as u64)
}

/// The records a store holds, as replayed from its log.
#[derive(Default)]
pub struct Records {
    pub map: BTreeMap<String, Slot>,
    /// The store's counter: the highest version ever given.
    pub version: u64,
    /// The sum of [`slot_size`] over `map`.
    pub live: u64,
}

impl Records {
    /// Sets or removes one record, keeping `live`.
    pub fn set(&mut self, key: String, slot: Option<Slot>) {
        let new = slot_size(&key, slot.as_ref());
        let old = match slot {
            Some(slot) => self.map.insert(key.clone(), slot),
            None => self.map.remove(&key),
        };
        self.live = self.live + new - slot_size(&key, old.as_ref());
    }
}

/// Whether `rest`, which starts with a record that is not good, is what an
/// append that did not finish leaves: zeros (the file grew before its data
/// reached the disk), or one record whose frame ends exactly where the file
/// does. Anything else is damage inside the log, which no writer may cut.
pub fn is_unfinished_append(rest: &[u8]) -> bool {
    if rest.iter().all(|&b| b == 0) {
        return true;
    }
    match rest.first_chunk::<4>() {
        Some(len) => FRAME_LEN.checked_add(u32::from_le_bytes(*len) as usize) == Some(rest.len()),
        None => true,
    }
}

/// Reads the record at the start of `bytes` and applies it to `records`.
/// Nothing is applied unless the whole record is good.
pub fn apply_next(bytes: &[u8], records: &mut Records) -> Next {
    let Some((len, rest)) = bytes.split_first_chunk::<4>() else { return Next::Incomplete };
    let Some((crc, rest)) = rest.split_first_chunk::<4>() else { return Next::Incomplete };
    let len = u32::from_le_bytes(*len) as usize;
    if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
        return Next::Bad("a record length out of range");
    }
    let Some(payload) = rest.get(..len) else { return Next::Incomplete };
    if crc32fast::hash(payload) != u32::from_le_bytes(*crc) {
        return Next::Bad("a record whose checksum does not match");
    }
    match decode(payload) {
        Some((v, items)) => {
            for (key, slot) in items {
                records.set(key, slot);
            }
            records.version = records.version.max(v);
            Next::Record(FRAME_LEN + len)
        }
        None => Next::Bad("a record whose checksum matches but whose structure does not"),
    }
}

type Items = Vec<(String, Option<Slot>)>;

fn decode(payload: &[u8]) -> Option<(u64, Items)> {
    let mut r = Reader(payload);
    let kind = r.u8()?;
    let version = r.u64()?;
    let count = r.u32()? as usize;
    let mut items = Vec::with_capacity(count.min(payload.len() / 5));
    for _ in 0..count {
        let key = String::from_utf8(r.bytes()?.to_vec()).ok()?;
        let slot = match kind {
            COMMIT => match r.u8()? {
                0 => None,
                1 => Some((r.bytes()?.to_vec(), version)),
                _ => return None,
            },
            SNAPSHOT => {
                let v = r.u64()?;
                Some((r.bytes()?.to_vec(), v))
            }
            _ => return None,
        };
        items.push((key, slot));
    }
    r.0.is_empty().then_some((version, items))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        let (head, rest) = (self.0.get(..len)?, self.0.get(len..)?);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(mut bytes: &[u8]) -> (BTreeMap<String, Slot>, u64, Vec<&'static str>) {
        let (mut records, mut bad) = (Records::default(), Vec::new());
        while !bytes.is_empty() {
            match apply_next(bytes, &mut records) {
                Next::Record(n) => bytes = &bytes[n..],
                Next::Incomplete => break,
                Next::Bad(why) => {
                    bad.push(why);
                    break;
                }
            }
        }
        let live = records.map.iter().map(|(k, slot)| slot_size(k, Some(slot))).sum::<u64>();
        assert_eq!(records.live, live, "live size kept while replaying");
        (records.map, records.version, bad)
    }

    #[test]
    fn commits_and_snapshots_replay_to_the_same_records() {
        let mut log = commit_record(1, [("a", Some(&b"1"[..])), ("b", Some(&b""[..]))].into_iter());
        log.extend(commit_record(2, [("a", None), ("c", Some(&b"3"[..]))].into_iter()));
        let (records, version, bad) = replay(&log);
        assert!(bad.is_empty());
        assert_eq!(version, 2);
        assert_eq!(records.get("b"), Some(&(vec![], 1)));
        assert_eq!(records.get("c"), Some(&(b"3".to_vec(), 2)));
        assert!(!records.contains_key("a"));

        // A counter above every record's version survives a snapshot, in
        // however many chunks.
        let snapshot: Vec<u8> = snapshot_records(7, &records, 1).concat();
        assert_eq!(replay(&snapshot), (records.clone(), 7, vec![]));
        assert_eq!(replay(&snapshot_records(9, &BTreeMap::new(), 1).concat()), (BTreeMap::new(), 9, vec![]));
    }

    #[test]
    fn a_cut_or_damaged_record_applies_nothing() {
        let one = commit_record(1, [("a", Some(&b"1"[..]))].into_iter());
        let two = commit_record(2, [("b", Some(&b"2"[..])), ("a", None)].into_iter());
        let log = [one.clone(), two.clone()].concat();
        for cut in one.len()..log.len() {
            let (records, version, bad) = replay(&log[..cut]);
            assert_eq!((records.len(), version, bad.len()), (1, 1, 0), "cut at {cut}");
        }
        for flip in one.len()..log.len() {
            let mut damaged = log.clone();
            damaged[flip] ^= 0x40;
            let (records, version, _) = replay(&damaged);
            assert_eq!((records.len(), version), (1, 1), "damage at {flip}");
        }
        // A zero-filled tail (a file that grew before its data reached the disk).
        let zeros = [one.clone(), vec![0; 64]].concat();
        assert_eq!(replay(&zeros).2, vec!["a record length out of range"]);
        assert!(is_unfinished_append(&zeros[one.len()..]));

        // Damage in the last record is an unfinished append; in one that
        // others follow it is not.
        let mut last = two.clone();
        last[FRAME_LEN] ^= 1;
        assert!(is_unfinished_append(&last));
        assert!(!is_unfinished_append(&[last.clone(), one.clone()].concat()));
    }

    #[test]
    fn a_header_names_its_generation() {
        assert_eq!(read_header(&header(42)), Some(42));
        assert_eq!(read_header(b"SCIMLOG2\0\0\0\0\0\0\0\0"), None);
        assert_eq!(read_header(b"SCIMLOG1"), None);
    }
}
