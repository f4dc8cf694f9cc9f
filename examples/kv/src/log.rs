//! The store: a map in memory, and on the disk an append-only log of its changes.
//!
//! A record is `length: u32 LE | crc32: u32 LE | payload`, the payload
//! `op: u8 (1 put, 2 delete) | key length: u16 LE | key | value`, the checksum over the
//! payload. Replay stops at the first record that is cut short or fails its checksum (a
//! crash during an append leaves at most the last one torn) and cuts the log there.
//!
//! Compaction writes the live data to `log.new`, syncs it, then renames it over `log`. A
//! crash before the rename leaves `log` whole (and `log.new`, removed at the next boot);
//! the rename replaces `log` in two steps, so a crash between them leaves only `log.new`,
//! synced and whole, which the next boot takes.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use unikernel::disk::{Disk, Error, File, OpenOptions, Read, Write};
use unikernel::println;

const DIR: &str = "/kv";
const LOG: &str = "/kv/log";
const NEW_LOG: &str = "/kv/log.new";
const PUT: u8 = 1;
const DELETE: u8 = 2;
const HEADER: usize = 8;
/// Compact when the log is over this size and four times the live data.
const COMPACT_AT: u64 = 256 * 1024;

pub struct Store {
    disk: Disk,
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Open for appends; closed only while compaction replaces it (an open file cannot be
    /// renamed over).
    log: Option<File>,
    log_len: u64,
    live_len: u64,
}

impl Store {
    pub fn open(disk: &Disk) -> Result<Store, Error> {
        if !disk.exists(DIR) {
            disk.create_dir(DIR)?;
        }
        match (disk.exists(LOG), disk.exists(NEW_LOG)) {
            (true, true) => disk.remove_file(NEW_LOG)?,
            (false, true) => disk.rename(NEW_LOG, LOG)?,
            _ => {}
        }
        let replayed = if disk.exists(LOG) {
            replay_file(&mut File::open(disk, LOG)?)?
        } else {
            Replayed::default()
        };
        let Replayed {
            map,
            good,
            records,
            read,
        } = replayed;
        let mut log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(disk, LOG)?;
        if good < read {
            log.set_len(good as u64)?;
            log.sync_all()?;
        }
        println!(
            "kv: replayed {records} records, {} keys; dropped a torn tail of {} bytes",
            map.len(),
            read - good
        );
        // Appends go to the end (the file is reopened in append mode).
        drop(log);
        let log = OpenOptions::new().append(true).open(disk, LOG)?;
        let live_len = map.iter().map(|(k, v)| record_len(k, v)).sum();
        let mut store = Store {
            disk: disk.clone(),
            map,
            log: Some(log),
            log_len: good as u64,
            live_len,
        };
        store.compact_if_large()?;
        Ok(store)
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn log_len(&self) -> u64 {
        self.log_len
    }

    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.append(PUT, key, value)?;
        if let Some(old) = self.map.insert(key.to_vec(), value.to_vec()) {
            self.live_len -= record_len(key, &old);
        }
        self.live_len += record_len(key, value);
        self.compact_if_large()
    }

    pub fn delete(&mut self, key: &[u8]) -> Result<(), Error> {
        if !self.map.contains_key(key) {
            return Ok(());
        }
        self.append(DELETE, key, b"")?;
        if let Some(old) = self.map.remove(key) {
            self.live_len -= record_len(key, &old);
        }
        self.compact_if_large()
    }

    /// Appends one record and syncs it: when this returns, the change survives a crash.
    fn append(&mut self, op: u8, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let record = encode(op, key, value);
        let log = match &mut self.log {
            Some(log) => log,
            None => self
                .log
                .insert(OpenOptions::new().append(true).open(&self.disk, LOG)?),
        };
        log.write_all(&record)?;
        log.sync_all()?;
        self.log_len += record.len() as u64;
        Ok(())
    }

    fn compact_if_large(&mut self) -> Result<(), Error> {
        if self.log_len < COMPACT_AT || self.log_len < 4 * self.live_len {
            return Ok(());
        }
        let mut new = File::create(&self.disk, NEW_LOG)?;
        let mut bytes = Vec::new();
        for (key, value) in &self.map {
            bytes.extend(encode(PUT, key, value));
        }
        new.write_all(&bytes)?;
        new.sync_all()?;
        drop(new);
        self.log = None;
        self.disk.rename(NEW_LOG, LOG)?;
        self.disk.sync()?;
        println!(
            "kv: compacted the log from {} to {} bytes",
            self.log_len,
            bytes.len()
        );
        self.log = Some(OpenOptions::new().append(true).open(&self.disk, LOG)?);
        self.log_len = bytes.len() as u64;
        Ok(())
    }
}

fn record_len(key: &[u8], value: &[u8]) -> u64 {
    (HEADER + 3 + key.len() + value.len()) as u64
}

fn encode(op: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(3 + key.len() + value.len());
    payload.push(op);
    payload.extend_from_slice(&(key.len() as u16).to_le_bytes());
    payload.extend_from_slice(key);
    payload.extend_from_slice(value);
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

/// The map the log's whole records build, the length of those records, and their count.
/// What replaying the log found.
#[derive(Default)]
struct Replayed {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Where the last whole record ends: the log is cut there.
    good: usize,
    records: usize,
    /// How far the log was read (past `good` only for a torn or corrupt tail).
    read: usize,
}

/// The largest record a put can write (a datagram's key and value), with room to spare:
/// a longer length field is a torn or corrupt record, not a reason to read on.
const MAX_RECORD: usize = 64 * 1024;

/// Replays the log from `file` a chunk at a time, so that the memory it takes is the live
/// data's, never the file's: a crash can leave a file whose length says more than was ever
/// written.
fn replay_file(file: &mut File) -> Result<Replayed, Error> {
    let mut replayed = Replayed::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        replayed.read += n;
        pending.extend_from_slice(&chunk[..n]);
        let (map, used, records) = replay(&pending, core::mem::take(&mut replayed.map));
        replayed.map = map;
        replayed.records += records;
        replayed.good += used;
        pending.drain(..used);
        // A record that is whole but was not taken is corrupt, and one longer than any
        // put writes can never be whole: either way the log ends here.
        if pending.len() >= HEADER {
            let len = u32::from_le_bytes(pending[..4].try_into().unwrap()) as usize;
            if len > MAX_RECORD || pending.len() >= HEADER + len {
                break;
            }
        }
    }
    Ok(replayed)
}

/// Applies the whole records at the start of `bytes` to `map`; returns it, the bytes they
/// took and how many there were. Stops at a record cut short (more may come) or a bad one.
fn replay(
    bytes: &[u8],
    mut map: BTreeMap<Vec<u8>, Vec<u8>>,
) -> (BTreeMap<Vec<u8>, Vec<u8>>, usize, usize) {
    let mut at = 0;
    let mut records = 0;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let len = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().unwrap());
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if len < 3 || crc32fast::hash(payload) != crc {
            break;
        }
        let key_len = u16::from_le_bytes([payload[1], payload[2]]) as usize;
        let Some(key) = payload.get(3..3 + key_len) else {
            break;
        };
        let value = &payload[3 + key_len..];
        match payload[0] {
            PUT => {
                map.insert(key.to_vec(), value.to_vec());
            }
            DELETE => {
                map.remove(key);
            }
            _ => break,
        }
        at += HEADER + len;
        records += 1;
    }
    (map, at, records)
}
