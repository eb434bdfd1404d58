//! Segment files: one per log per JST month (`YYYY-MM.seg`), an anchor
//! followed by blocks. Layout in docs/audit-format.md; this file builds and
//! parses them. A block is one batch of records written at once; records
//! are chained one by one with HMAC-SHA256:
//!
//! `h[i] = HMAC(K_chain, "smbvault-audit-rec" || h[i-1] || seq || len || clear || len || names)`
//!
//! where `h[-1]` of a segment is its anchor hash, which in turn covers the
//! previous segment's last hash (or the purge checkpoint's, or zeros).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use hmac::Mac;

use super::codec::{Corrupt, Dec, Put, PutLe};
use super::jst::Month;
use super::keys::{LogId, LogKeys};

pub(crate) type Hash = [u8; 32];
pub(crate) const ZERO_HASH: Hash = [0; 32];

const SEG_MAGIC: &[u8; 8] = b"SVAUDSG1";
pub(crate) const ANCHOR_LEN: u64 = 8 + 9 + 4 + 8 + 32 + 32;
const BLK_MAGIC: u32 = 0x314b_4241; // "ABK1"
const END_MAGIC: u32 = 0x454b_4241; // "ABKE"
pub(crate) const HDR_LEN: usize = 4 + 4 + 8 + 4 + 8 + 8 + 32 + 4 + 16 + 4;
pub(crate) const TRL_LEN: usize = 8 + 32 + 4 + 4;
/// Largest block accepted when reading (the writer cuts blocks at 256 KiB
/// plus one record, and a record is at most a few hundred KiB).
pub(crate) const MAX_BLOCK: u32 = 64 * 1024 * 1024;
const HASH_LEN: usize = 32;

/// The start of a segment: where its chain continues from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) log_tag: [u8; 9],
    pub(crate) month: Month,
    pub(crate) first_seq: u64,
    pub(crate) prev_hash: Hash,
    pub(crate) hash: Hash,
}

impl Anchor {
    pub(crate) fn new(keys: &LogKeys, month: Month, first_seq: u64, prev_hash: Hash) -> Self {
        let log_tag = keys.log.tag();
        let hash = anchor_hash(keys, &log_tag, month, first_seq, &prev_hash);
        Self { log_tag, month, first_seq, prev_hash, hash }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(ANCHOR_LEN as usize);
        b.extend_from_slice(SEG_MAGIC);
        b.extend_from_slice(&self.log_tag);
        b.put_u32(self.month.0);
        b.put_u64(self.first_seq);
        b.extend_from_slice(&self.prev_hash);
        b.extend_from_slice(&self.hash);
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, Corrupt> {
        let mut d = Dec::new(b);
        if d.bytes(8)? != SEG_MAGIC {
            return Err(Corrupt);
        }
        Ok(Self {
            log_tag: d.array()?,
            month: Month(d.u32()?),
            first_seq: d.u64()?,
            prev_hash: d.array()?,
            hash: d.array()?,
        })
    }

    /// Whether the stored hash is the keyed hash of the fields.
    pub(crate) fn authentic(&self, keys: &LogKeys) -> bool {
        let h = anchor_hash(keys, &self.log_tag, self.month, self.first_seq, &self.prev_hash);
        super::keys::mac_eq(&h, &self.hash)
    }
}

fn anchor_hash(keys: &LogKeys, tag: &[u8; 9], month: Month, seq: u64, prev: &Hash) -> Hash {
    let mut m = keys.chain();
    m.update(b"smbvault-audit-anchor");
    m.update(tag);
    m.update(&month.0.to_le_bytes());
    m.update(&seq.to_le_bytes());
    m.update(prev);
    m.finalize().into_bytes().into()
}

/// The chain hash of one record.
pub(crate) fn record_hash(keys: &LogKeys, prev: &Hash, seq: u64, clear: &[u8], names: &[u8]) -> Hash {
    let mut m = keys.chain();
    m.update(b"smbvault-audit-rec");
    m.update(prev);
    m.update(&seq.to_le_bytes());
    m.update(&(clear.len() as u32).to_le_bytes());
    m.update(clear);
    m.update(&(names.len() as u32).to_le_bytes());
    m.update(names);
    m.finalize().into_bytes().into()
}

/// Accumulates records into one block.
pub(crate) struct BlockBuilder {
    first_seq: u64,
    prev_hash: Hash,
    last_hash: Hash,
    count: u32,
    min_ms: i64,
    max_ms: i64,
    clear: Vec<u8>,
    names: Vec<u8>,
}

impl BlockBuilder {
    pub(crate) fn new(first_seq: u64, prev_hash: Hash) -> Self {
        Self {
            first_seq,
            prev_hash,
            last_hash: prev_hash,
            count: 0,
            min_ms: i64::MAX,
            max_ms: i64::MIN,
            clear: Vec::with_capacity(16 * 1024),
            names: Vec::with_capacity(16 * 1024),
        }
    }

    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    pub(crate) fn bytes(&self) -> usize {
        self.clear.len() + self.names.len()
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count)
    }

    /// Chains and appends one encoded record (clear part below 64 KiB).
    pub(crate) fn push(&mut self, keys: &LogKeys, time_ms: i64, clear: &[u8], names: &[u8]) {
        // Clear fields are clipped at encoding (record.rs), so a clear record
        // is a few KiB at most and its length fits the u16 prefix.
        debug_assert!(clear.len() <= usize::from(u16::MAX));
        let seq = self.next_seq();
        let h = record_hash(keys, &self.last_hash, seq, clear, names);
        self.clear.put_u16(clear.len() as u16);
        self.clear.extend_from_slice(clear);
        self.clear.extend_from_slice(&h);
        self.names.put_u32(names.len() as u32);
        self.names.extend_from_slice(names);
        self.last_hash = h;
        self.count += 1;
        self.min_ms = self.min_ms.min(time_ms);
        self.max_ms = self.max_ms.max(time_ms);
    }

    /// Earliest and latest record time in the block (Unix ms).
    pub(crate) fn time_range(&self) -> (i64, i64) {
        (self.min_ms, self.max_ms)
    }

    /// The block's bytes (names encrypted under a fresh random IV), its
    /// last sequence number and last hash.
    pub(crate) fn finish(mut self, keys: &LogKeys) -> (Vec<u8>, u64, Hash) {
        let mut iv = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut iv);
        keys.names_xor(&iv, &mut self.names);
        let total = HDR_LEN + self.clear.len() + self.names.len() + TRL_LEN;
        let last_seq = self.first_seq + u64::from(self.count) - 1;
        let mut b = Vec::with_capacity(total);
        b.put_u32(BLK_MAGIC);
        b.put_u32(total as u32);
        b.put_u64(self.first_seq);
        b.put_u32(self.count);
        b.put_i64(self.min_ms);
        b.put_i64(self.max_ms);
        b.extend_from_slice(&self.prev_hash);
        b.put_u32(self.clear.len() as u32);
        b.extend_from_slice(&iv);
        b.put_u32(self.names.len() as u32);
        b.extend_from_slice(&self.clear);
        b.extend_from_slice(&self.names);
        b.put_u64(last_seq);
        b.extend_from_slice(&self.last_hash);
        b.put_u32(total as u32);
        b.put_u32(END_MAGIC);
        (b, last_seq, self.last_hash)
    }
}

/// The fixed header of a block.
#[derive(Debug, Clone)]
pub(crate) struct BlockHeader {
    pub(crate) total_len: u32,
    pub(crate) first_seq: u64,
    pub(crate) count: u32,
    pub(crate) min_ms: i64,
    pub(crate) max_ms: i64,
    pub(crate) prev_hash: Hash,
    clear_len: u32,
    iv: [u8; 16],
    names_len: u32,
}

/// Parses a block header and checks that its lengths add up.
pub(crate) fn parse_header(b: &[u8]) -> Result<BlockHeader, Corrupt> {
    let mut d = Dec::new(b);
    if d.u32()? != BLK_MAGIC {
        return Err(Corrupt);
    }
    let h = BlockHeader {
        total_len: d.u32()?,
        first_seq: d.u64()?,
        count: d.u32()?,
        min_ms: d.i64()?,
        max_ms: d.i64()?,
        prev_hash: d.array()?,
        clear_len: d.u32()?,
        iv: d.array()?,
        names_len: d.u32()?,
    };
    let want = (HDR_LEN + TRL_LEN) as u64 + u64::from(h.clear_len) + u64::from(h.names_len);
    if h.count == 0 || h.total_len > MAX_BLOCK || u64::from(h.total_len) != want {
        return Err(Corrupt);
    }
    Ok(h)
}

/// Decrypted names of a block and each record's byte range in them.
pub(crate) type Names = (Vec<u8>, Vec<(usize, usize)>);

/// The next block of a segment: offset and bytes, or why it is unreadable.
pub(crate) type NextBlock<'a> = Option<Result<(u64, &'a [u8]), ReadErr>>;

/// A whole block in memory, structurally checked.
pub(crate) struct BlockRef<'a> {
    pub(crate) hdr: BlockHeader,
    pub(crate) clear: &'a [u8],
    names_ct: &'a [u8],
    pub(crate) last_seq: u64,
    pub(crate) last_hash: Hash,
}

/// One record's clear part and stored hash.
pub(crate) struct RecRef<'a> {
    pub(crate) clear: &'a [u8],
    pub(crate) hash: Hash,
}

pub(crate) fn parse_block(b: &[u8]) -> Result<BlockRef<'_>, Corrupt> {
    let hdr = parse_header(b.get(..HDR_LEN).ok_or(Corrupt)?)?;
    if b.len() != hdr.total_len as usize {
        return Err(Corrupt);
    }
    let mut d = Dec::new(b);
    d.bytes(HDR_LEN)?;
    let clear = d.bytes(hdr.clear_len as usize)?;
    let names_ct = d.bytes(hdr.names_len as usize)?;
    let last_seq = d.u64()?;
    let last_hash = d.array()?;
    if d.u32()? != hdr.total_len || d.u32()? != END_MAGIC {
        return Err(Corrupt);
    }
    Ok(BlockRef { hdr, clear, names_ct, last_seq, last_hash })
}

impl<'a> BlockRef<'a> {
    /// The records' clear parts, in order; fails if the section is malformed
    /// or does not hold exactly `count` records.
    pub(crate) fn records(&self) -> Result<Vec<RecRef<'a>>, Corrupt> {
        let mut out = Vec::with_capacity(self.hdr.count as usize);
        let mut d = Dec::new(self.clear);
        while !d.is_empty() {
            let n = d.u16()? as usize;
            let clear = d.bytes(n)?;
            let hash = d.array::<HASH_LEN>()?;
            out.push(RecRef { clear, hash });
        }
        if out.len() != self.hdr.count as usize {
            return Err(Corrupt);
        }
        Ok(out)
    }

    /// Decrypts the names section; returns the plaintext and each record's
    /// byte range in it. The plaintext is unauthenticated until the
    /// records' chain hashes have been checked.
    pub(crate) fn names(&self, keys: &LogKeys) -> Result<Names, Corrupt> {
        let mut plain = self.names_ct.to_vec();
        keys.names_xor(&self.hdr.iv, &mut plain);
        let mut ranges = Vec::with_capacity(self.hdr.count as usize);
        let mut d = Dec::new(&plain);
        while !d.is_empty() {
            let n = d.u32()? as usize;
            let start = d.pos();
            d.bytes(n)?;
            ranges.push((start, start + n));
        }
        if ranges.len() != self.hdr.count as usize {
            return Err(Corrupt);
        }
        Ok((plain, ranges))
    }
}

/// Sequential reader of one segment file, block by block.
pub(crate) struct SegReader {
    file: BufReader<File>,
    pos: u64,
    len: u64,
    buf: Vec<u8>,
}

/// Why a block could not be read at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadErr {
    /// The file ends inside the block.
    Truncated,
    /// The bytes are not a well-formed block.
    Malformed,
}

impl SegReader {
    /// Opens a segment and reads its anchor (the inner result says whether
    /// the anchor is there and well-formed).
    pub(crate) fn open(path: &Path) -> Result<(Self, Result<Anchor, ReadErr>), std::io::Error> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut r = Self { file: BufReader::with_capacity(1 << 20, file), pos: 0, len, buf: Vec::new() };
        if len < ANCHOR_LEN {
            return Ok((r, Err(ReadErr::Truncated)));
        }
        let mut a = [0u8; ANCHOR_LEN as usize];
        r.file.read_exact(&mut a)?;
        r.pos = ANCHOR_LEN;
        let anchor = Anchor::decode(&a).map_err(|_| ReadErr::Malformed);
        Ok((r, anchor))
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    pub(crate) fn seek(&mut self, off: u64) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(off))?;
        self.pos = off;
        Ok(())
    }

    /// Skips a block whose header was read with [`SegReader::next_header`].
    pub(crate) fn skip(&mut self, hdr: &BlockHeader) -> std::io::Result<()> {
        let rest = i64::from(hdr.total_len) - HDR_LEN as i64;
        self.file.seek_relative(rest)?;
        self.pos += u64::from(hdr.total_len);
        Ok(())
    }

    /// Reads the next block header, leaving the body unread.
    /// `Ok(None)` at the end of the file.
    pub(crate) fn next_header(&mut self) -> std::io::Result<Option<Result<BlockHeader, ReadErr>>> {
        if self.pos >= self.len {
            return Ok(None);
        }
        if self.len - self.pos < HDR_LEN as u64 {
            return Ok(Some(Err(ReadErr::Truncated)));
        }
        self.buf.resize(HDR_LEN, 0);
        self.file.read_exact(&mut self.buf)?;
        let hdr = match parse_header(&self.buf) {
            Ok(h) => h,
            Err(_) => {
                self.file.seek_relative(-(HDR_LEN as i64))?;
                return Ok(Some(Err(ReadErr::Malformed)));
            }
        };
        if self.len - self.pos < u64::from(hdr.total_len) {
            self.file.seek_relative(-(HDR_LEN as i64))?;
            return Ok(Some(Err(ReadErr::Truncated)));
        }
        Ok(Some(Ok(hdr)))
    }

    /// Reads the body of a block whose header was just read and returns the
    /// whole block's bytes.
    pub(crate) fn read_body(&mut self, hdr: &BlockHeader) -> std::io::Result<&[u8]> {
        let total = hdr.total_len as usize;
        self.buf.resize(total, 0);
        self.file.read_exact(&mut self.buf[HDR_LEN..])?;
        self.pos += total as u64;
        Ok(&self.buf)
    }

    /// The next whole block: `Ok(None)` at the end of the file.
    pub(crate) fn next_block(&mut self) -> std::io::Result<NextBlock<'_>> {
        let off = self.pos;
        let hdr = match self.next_header()? {
            None => return Ok(None),
            Some(Err(e)) => return Ok(Some(Err(e))),
            Some(Ok(h)) => h,
        };
        let b = self.read_body(&hdr)?;
        Ok(Some(Ok((off, b))))
    }
}

/// `YYYY-MM.seg` for a month.
pub(crate) fn seg_name(m: Month) -> String {
    format!("{m}.seg")
}

/// `YYYY-MM.idx` for a month.
pub(crate) fn idx_name(m: Month) -> String {
    format!("{m}.idx")
}

/// The months that have a segment file in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> std::io::Result<Vec<Month>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for ent in rd {
        let name = ent?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(m) = name.strip_suffix(".seg").and_then(Month::parse) {
            out.push(m);
        }
    }
    out.sort();
    Ok(out)
}

/// Checks a block's chain: every record's stored hash against the keyed
/// hash of its content, starting from the block's `prev_hash`. Returns the
/// sequence numbers of the records that do not match, or `Err` if the block
/// is malformed.
pub(crate) fn check_block(keys: &LogKeys, b: &BlockRef<'_>) -> Result<Vec<u64>, Corrupt> {
    let recs = b.records()?;
    let (plain, ranges) = b.names(keys)?;
    let mut bad = Vec::new();
    let mut prev = b.hdr.prev_hash;
    for (i, (r, (s, e))) in recs.iter().zip(ranges).enumerate() {
        let seq = b.hdr.first_seq + i as u64;
        let names = plain.get(s..e).ok_or(Corrupt)?;
        if !super::keys::mac_eq(&record_hash(keys, &prev, seq, r.clear, names), &r.hash) {
            bad.push(seq);
        }
        prev = r.hash;
    }
    Ok(bad)
}

/// The log a segment's anchor claims to belong to.
pub(crate) fn anchor_matches(a: &Anchor, log: LogId, month: Month) -> bool {
    a.log_tag == log.tag() && a.month == month
}
