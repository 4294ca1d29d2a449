//! Volume Shadow Copies (VSS) of an NTFS volume: each store, read as the
//! volume was when the shadow copy was made.
//!
//! Own reader, written from Joachim Metz's "Volume Shadow Snapshot (VSS)
//! format" (libvshadow's documentation); no Rust crate reads VSS, and
//! libvshadow is C under the LGPL. Everything is found from the volume's
//! bytes alone, below any filesystem: the VSS volume header at 0x1e00 (in
//! NTFS's boot area) gives the catalog, whose entries give each store's
//! block list (16 KiB blocks of the volume as they were, copied before
//! being overwritten), its bitmaps, and its creation time.
//!
//! Reading store N at an offset: the store's block list says where the old
//! block was copied (or, a *forwarder*, that the next store holds it at
//! another offset); an *overlay* descriptor covers only some 512-byte
//! sectors and counts for the store being read only. A block no store
//! copied is read from the next newer store, and from the live volume after
//! the newest. A block the newest store's bitmaps mark as not in use (free
//! when the copy was made, so no file of the copy refers to it) reads as
//! zeros, as libvshadow returns it: Windows leaves such a read undefined.
//!
//! Stores are numbered 1… oldest first, as `vshadowinfo` shows them. Every
//! list of blocks is bounded by the volume and checked for loops; a damaged
//! store is reported and left out, the others still read.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use crate::evidence::{ReadAt, Source};
use crate::util::bytes::{guid, u32_at, u64_at};
use crate::util::corrupt;
use crate::util::time::Timestamp;
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, OnceLock};

/// `{3808876b-c176-4e48-b7ae-04046e6cc752}` as stored (a little-endian GUID).
const VSS_ID: [u8; 16] = [0x6b, 0x87, 0x08, 0x38, 0x76, 0xc1, 0x48, 0x4e, 0xb7, 0xae, 0x04, 0x04, 0x6e, 0x6c, 0xc7, 0x52];
const HEADER_AT: u64 = 0x1e00;
/// Catalog, block list, bitmap and store data blocks are all this size.
const BLOCK: u64 = 0x4000;
const BLOCK_HEADER: usize = 128;
const SECTOR: u64 = 512;
const MAX_STORES: usize = 512;

const TYPE_VOLUME_HEADER: u32 = 1;
const TYPE_CATALOG: u32 = 2;
const TYPE_BLOCK_LIST: u32 = 3;
const TYPE_STORE_HEADER: u32 = 4;
const TYPE_BITMAP: u32 = 6;

const FLAG_FORWARDER: u32 = 0x1;
const FLAG_OVERLAY: u32 = 0x2;
const FLAG_NOT_USED: u32 = 0x4;

/// What the catalog says about one shadow copy.
#[derive(Clone, Debug)]
pub struct StoreInfo {
    /// 1… oldest first.
    pub number: usize,
    pub created: Timestamp,
    /// The store's GUID (its file's name in `System Volume Information`).
    pub store_id: String,
    /// The shadow copy's own id (`vssadmin list shadows`), when the store
    /// header could be read.
    pub copy_id: Option<String>,
    /// The volume's size when the copy was made.
    pub size: u64,
}

/// The shadow copies found on a volume: each store as a readable volume,
/// and the problems met (a damaged store is one of them, not an error).
pub struct Shadows {
    pub stores: Vec<(StoreInfo, Source)>,
    pub warnings: Vec<String>,
}

/// Catalog entry type 3: where a store's lists are.
#[derive(Clone, Debug, Default)]
struct Location {
    block_list: u64,
    header: u64,
    bitmap: u64,
    previous_bitmap: u64,
}

/// Finds the shadow copies of `vol`, an NTFS volume (None: no VSS header,
/// or no catalog: shadow copies were never made or all were deleted).
pub fn find(vol: &Source) -> Option<Shadows> {
    let mut b = [0u8; 128];
    vol.read_exact_at(HEADER_AT, &mut b).ok()?;
    if b[..16] != VSS_ID || u32_at(&b, 20) != TYPE_VOLUME_HEADER {
        return None;
    }
    let catalog = u64_at(&b, 48);
    if catalog == 0 {
        return None;
    }
    let mut warnings = Vec::new();
    let entries = match read_catalog(vol, catalog) {
        Ok(e) => e,
        Err(e) => {
            return Some(Shadows { stores: Vec::new(), warnings: vec![format!("shadow copies: the catalog cannot be read: {e}")] });
        }
    };
    let mut found: Vec<(StoreInfo, Location)> = Vec::new();
    for (id, (info, loc)) in entries {
        match loc {
            Some(loc) => found.push((info, loc)),
            // Windows 2003 kept no store on the volume.
            None => warnings.push(format!("shadow copy {id}: listed in the catalog without a store on this volume; not read")),
        }
    }
    found.sort_by_key(|(i, _)| i.created);
    // Windows keeps at most 512 shadow copies of a volume (64 before
    // Windows Server 2008); more is a damaged catalog.
    if found.len() > MAX_STORES {
        warnings.push(format!("shadow copies: the catalog lists {} stores; only the {MAX_STORES} newest are read", found.len()));
        found.drain(..found.len() - MAX_STORES);
    }
    let stores: Vec<Arc<Store>> =
        found.iter().map(|(info, loc)| Arc::new(Store { id: info.store_id.clone(), loc: loc.clone(), map: OnceLock::new() })).collect();
    let chain: Arc<[Arc<Store>]> = stores.into();
    let mut out = Vec::new();
    for (k, (mut info, loc)) in found.into_iter().enumerate() {
        info.number = k + 1;
        info.copy_id = store_header(vol, loc.header).ok().flatten();
        if info.size > vol.len() {
            warnings.push(format!(
                "shadow copy {} ({}): the catalog gives a volume of {} bytes, larger than the volume ({}); read up to the volume's end",
                info.number,
                info.created,
                info.size,
                vol.len()
            ));
            info.size = vol.len();
        }
        // A store whose lists are damaged is left out, with the reason.
        if let Err(e) = chain[k].map(vol) {
            warnings.push(format!("shadow copy {} ({}): not read: {e}", info.number, info.created));
            continue;
        }
        let view = Shadow { base: vol.clone(), chain: chain.clone(), active: k, size: info.size };
        out.push((info, Arc::new(view) as Source));
    }
    Some(Shadows { stores: out, warnings })
}

/// Reads one 16 KiB metadata block of `kind` at `at`, checking its header.
fn meta_block(vol: &Source, at: u64, kind: u32, seen: &mut HashSet<u64>) -> io::Result<Vec<u8>> {
    if !at.is_multiple_of(SECTOR) || at.checked_add(BLOCK).is_none_or(|end| end > vol.len()) {
        return Err(corrupt(format!("a block at offset {at} lies outside the volume ({} bytes)", vol.len())));
    }
    if !seen.insert(at) {
        return Err(corrupt(format!("the list of blocks loops back to offset {at}")));
    }
    let mut b = vec![0u8; BLOCK as usize];
    vol.read_exact_at(at, &mut b)?;
    if b[..16] != VSS_ID || u32_at(&b, 20) != kind {
        return Err(corrupt(format!("the block at offset {at} is not a VSS block of type {kind}")));
    }
    Ok(b)
}

/// Follows a list of metadata blocks (each names the next), calling `each`
/// with the data after each header.
fn each_block(vol: &Source, first: u64, kind: u32, mut each: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut seen = HashSet::new();
    let mut at = first;
    while at != 0 {
        let b = meta_block(vol, at, kind, &mut seen)?;
        each(b.get(BLOCK_HEADER..).unwrap_or_default())?;
        at = u64_at(&b, 40);
    }
    Ok(())
}

type Catalog = Vec<(String, (StoreInfo, Option<Location>))>;

fn read_catalog(vol: &Source, first: u64) -> io::Result<Catalog> {
    let mut stores: Catalog = Vec::new();
    each_block(vol, first, TYPE_CATALOG, |data| {
        for e in data.chunks_exact(128) {
            let id = guid(&e[16..32]).to_lowercase();
            match u64_at(e, 0) {
                2 => stores.push((
                    id.clone(),
                    (
                        StoreInfo {
                            number: 0,
                            created: Timestamp::from_filetime(u64_at(e, 48)),
                            store_id: id,
                            copy_id: None,
                            size: u64_at(e, 8),
                        },
                        None,
                    ),
                )),
                3 => {
                    let loc =
                        Location { block_list: u64_at(e, 8), header: u64_at(e, 32), bitmap: u64_at(e, 48), previous_bitmap: u64_at(e, 72) };
                    // Type 2 comes first for a store; a type 3 without one
                    // has no time or size and is left out.
                    if let Some((_, (_, l))) = stores.iter_mut().find(|(i, _)| *i == id) {
                        *l = Some(loc);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    })?;
    Ok(stores)
}

/// The shadow copy id from the store header's information block.
fn store_header(vol: &Source, at: u64) -> io::Result<Option<String>> {
    if at == 0 {
        return Ok(None);
    }
    let b = meta_block(vol, at, TYPE_STORE_HEADER, &mut HashSet::new())?;
    Ok(b.get(BLOCK_HEADER + 16..BLOCK_HEADER + 32).map(|g| guid(g).to_lowercase()))
}

/// Where one store keeps the old content of a 16 KiB block.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    /// The old block: at this volume offset, or (`forwarder`) at this
    /// offset of the next newer store.
    base: Option<(u64, bool)>,
    /// Old sectors kept for this store alone: where, and which (bit n:
    /// sector n of the block).
    overlay: Option<(u64, u32)>,
}

/// A store's block list and bitmaps, parsed.
#[derive(Default)]
struct Map {
    blocks: HashMap<u64, Entry>,
    /// Forwarders: the offset in the next store → the block it is for.
    reverse: HashMap<u64, u64>,
    /// Bit set: the block was not in use (free) for this store.
    bitmap: Vec<u8>,
    previous: Option<Vec<u8>>,
}

struct Store {
    id: String,
    loc: Location,
    map: OnceLock<Result<Map, String>>,
}

impl Store {
    fn map(&self, vol: &Source) -> Result<&Map, String> {
        self.map.get_or_init(|| read_map(vol, &self.loc).map_err(|e| e.to_string())).as_ref().map_err(|e| format!("store {}: {e}", self.id))
    }
}

fn read_map(vol: &Source, loc: &Location) -> io::Result<Map> {
    let mut m = Map::default();
    each_block(vol, loc.block_list, TYPE_BLOCK_LIST, |data| {
        for d in data.chunks_exact(32) {
            if d.iter().all(|&b| b == 0) {
                continue;
            }
            let (original, relative, offset, flags, bitmap) = (u64_at(d, 0), u64_at(d, 8), u64_at(d, 16), u32_at(d, 24), u32_at(d, 28));
            if flags & FLAG_FORWARDER != 0 && offset != 0 {
                return Err(corrupt(format!("a forwarder descriptor for offset {original} also names a store offset")));
            }
            m.insert(original, relative, offset, flags, bitmap);
        }
        Ok(())
    })?;
    let bits = |first: u64| -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        each_block(vol, first, TYPE_BITMAP, |data| {
            v.extend_from_slice(data);
            Ok(())
        })?;
        Ok(v)
    };
    m.bitmap = bits(loc.bitmap)?;
    if loc.previous_bitmap != 0 {
        m.previous = Some(bits(loc.previous_bitmap)?);
    }
    Ok(m)
}

impl Map {
    /// Adds one descriptor of the block list, which is read front to back
    /// and where later descriptors refine earlier ones.
    fn insert(&mut self, original: u64, relative: u64, offset: u64, flags: u32, bitmap: u32) {
        if flags & FLAG_NOT_USED != 0 {
            return;
        }
        let mut original = original;
        if flags & FLAG_OVERLAY != 0 {
            let e = self.blocks.entry(original).or_default();
            match &mut e.overlay {
                // Overlays of one block add up.
                Some((_, bits)) => *bits |= bitmap,
                None => e.overlay = Some((offset, bitmap)),
            }
            return;
        }
        // A descriptor for the offset a forwarder named in the next store
        // stands for the block that forwarder was for.
        if let Some(orig) = self.reverse.remove(&original) {
            original = orig;
        }
        let forwarder = flags & FLAG_FORWARDER != 0;
        if forwarder && original == relative {
            return;
        }
        let base = if forwarder { (relative, true) } else { (offset, false) };
        self.blocks.entry(original).or_default().base = Some(base);
        if forwarder {
            self.reverse.insert(relative, original);
        }
    }

    fn free(&self, block: u64) -> bool {
        let bit = |m: &[u8]| m.get((block / 8) as usize).is_some_and(|b| b & (1 << (block % 8)) != 0);
        bit(&self.bitmap) && self.previous.as_deref().is_none_or(bit)
    }
}

/// One store read as a volume: `chain` holds every store of the volume,
/// oldest first; reading store `active` falls through to newer stores
/// and then to the live volume.
struct Shadow {
    base: Source,
    chain: Arc<[Arc<Store>]>,
    active: usize,
    size: u64,
}

impl Shadow {
    /// Reads at `at` of the active store, at most to the end of the 16 KiB
    /// block or of the run of sectors that reads the same way, following
    /// the block to the newer store or the live volume that holds it.
    /// Returns the bytes read.
    fn read_block(&self, at: u64, buf: &mut [u8]) -> io::Result<usize> {
        let block = at - at % BLOCK;
        let within = at - block;
        let mut want = (BLOCK - within).min(buf.len() as u64);
        // Where the bytes are: `at` of store `k`, or of the live volume
        // once `k` is past the newest store.
        let (mut k, mut from) = (self.active, at);
        while let Some(store) = self.chain.get(k) {
            let map = store.map(&self.base).map_err(corrupt)?;
            let entry = map.blocks.get(&(from - from % BLOCK)).copied().unwrap_or_default();
            let inside = from % BLOCK;
            // (A forwarder's offset need not be block-aligned.)
            want = want.min(BLOCK - inside);
            if let Some((old, bits)) = entry.overlay
                && k == self.active
            {
                // The run of sectors from `at` the overlay does or does not cover.
                let first = (inside / SECTOR) as u32;
                let covered = bits >> first & 1 != 0;
                let mut n = 1;
                while first + n < 32 && (bits >> (first + n) & 1 != 0) == covered {
                    n += 1;
                }
                want = want.min(u64::from(first + n) * SECTOR - inside);
                if covered {
                    let buf = &mut buf[..want as usize];
                    self.base.read_exact_at(old + inside, buf)?;
                    return Ok(buf.len());
                }
            }
            let last = k + 1 == self.chain.len();
            match entry.base {
                // Forwarded: at another offset of the next store.
                Some((at_next, true)) if !last => from = at_next + inside,
                Some((offset, _)) => {
                    let buf = &mut buf[..want as usize];
                    self.base.read_exact_at(offset + inside, buf)?;
                    return Ok(buf.len());
                }
                None if !last => {}
                None if k == self.active && !map.reverse.contains_key(&(from - inside)) && map.free(from / BLOCK) => {
                    buf[..want as usize].fill(0);
                    return Ok(want as usize);
                }
                None => {}
            }
            k += 1;
        }
        let buf = &mut buf[..want as usize];
        self.base.read_exact_at(from, buf)?;
        Ok(buf.len())
    }
}

impl ReadAt for Shadow {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let end = self.size.min(offset.saturating_add(buf.len() as u64));
        let mut done = 0usize;
        let mut at = offset;
        while at < end {
            let n = self.read_block(at, &mut buf[done..(end - offset) as usize])?;
            if n == 0 {
                break;
            }
            done += n;
            at += n as u64;
        }
        Ok(done)
    }

    fn len(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    //! The descriptor kinds the Windows-made specimen (tests/it/vss.rs)
    //! lacks, on a volume laid out here by the format document: a
    //! forwarder, an overlay read from an older store, the newest store's
    //! free-block bitmap.
    use super::*;

    const K: u64 = BLOCK;

    fn block_header(v: &mut [u8], at: u64, kind: u32) {
        let at = at as usize;
        v[at..at + 16].copy_from_slice(&VSS_ID);
        v[at + 16..at + 20].copy_from_slice(&1u32.to_le_bytes());
        v[at + 20..at + 24].copy_from_slice(&kind.to_le_bytes());
        v[at + 32..at + 40].copy_from_slice(&(at as u64).to_le_bytes());
    }

    fn put(v: &mut [u8], at: u64, words: &[u64]) {
        for (i, w) in words.iter().enumerate() {
            let o = at as usize + i * 8;
            v[o..o + 8].copy_from_slice(&w.to_le_bytes());
        }
    }

    /// Store descriptor: original, relative, store offset, flags | bitmap << 32.
    fn descriptor(v: &mut [u8], at: u64, original: u64, relative: u64, offset: u64, flags: u32, bitmap: u32) {
        put(v, at, &[original, relative, offset, u64::from(flags) | u64::from(bitmap) << 32]);
    }

    fn volume() -> Source {
        let mut v = vec![0u8; 64 * K as usize];
        for b in 0..64u64 {
            // Every live block filled with its own number.
            v[(b * K) as usize..((b + 1) * K) as usize].fill(b as u8);
        }
        let vol_header = HEADER_AT as usize;
        v[vol_header..vol_header + 128].fill(0);
        block_header(&mut v, HEADER_AT, TYPE_VOLUME_HEADER);
        put(&mut v, HEADER_AT + 48, &[K]);
        // Catalog at block 1: store A (older), then store B.
        v[K as usize..2 * K as usize].fill(0);
        block_header(&mut v, K, TYPE_CATALOG);
        let size = 64 * K;
        let e = K + 128;
        put(&mut v, e, &[2, size, 0xA, 0, 0, 0, 100]);
        put(&mut v, e + 128, &[3, 2 * K, 0xA, 0, 0, 0, 4 * K, 0, 0, 0]);
        put(&mut v, e + 256, &[2, size, 0xB, 0, 0, 0, 200]);
        put(&mut v, e + 384, &[3, 3 * K, 0xB, 0, 0, 0, 5 * K, 0, 0, 0]);
        for (b, kind) in [(2, TYPE_BLOCK_LIST), (3, TYPE_BLOCK_LIST), (4, TYPE_BITMAP), (5, TYPE_BITMAP)] {
            v[(b * K) as usize..((b + 1) * K) as usize].fill(0);
            block_header(&mut v, b * K, kind);
        }
        let d = BLOCK_HEADER as u64;
        // A: block 20 then held what block 21 holds in B's view (a forwarder).
        descriptor(&mut v, 2 * K + d, 20 * K, 21 * K, 0, FLAG_FORWARDER, 0);
        // B: block 21's old content is at block 40; sector 1 of block 22
        // has an overlay at block 41; block 23 was free (bitmap of B).
        descriptor(&mut v, 3 * K + d, 21 * K, 0, 40 * K, 0, 0);
        descriptor(&mut v, 3 * K + d + 32, 22 * K, 1, 41 * K, FLAG_OVERLAY, 0b10);
        v[(5 * K) as usize + BLOCK_HEADER + 2] = 1 << (23 - 16);
        Arc::new(v)
    }

    fn byte(s: &Source, at: u64) -> u8 {
        let mut b = [0u8; 1];
        s.read_exact_at(at, &mut b).unwrap_or_else(|e| panic!("{e}"));
        b[0]
    }

    #[test]
    fn forwarders_overlays_and_free_blocks_read_as_the_format_says() {
        let found = find(&volume()).expect("a catalog");
        assert!(found.warnings.is_empty(), "{:?}", found.warnings);
        let [(a_info, a), (b_info, b)] = &found.stores[..] else { panic!("two stores") };
        assert_eq!((a_info.number, a_info.store_id.as_str()), (1, "0000000a-0000-0000-0000-000000000000"));
        assert_eq!(b_info.number, 2);
        // B: its own copy of block 21; an unchanged block from the live volume.
        assert_eq!(byte(b, 21 * K + 5), 40);
        assert_eq!(byte(b, 30 * K), 30);
        // A: block 20 forwarded to B's block 21, which B copied to 40.
        assert_eq!(byte(a, 20 * K + 7), 40);
        // A has nothing for 21: B's view of it.
        assert_eq!(byte(a, 21 * K), 40);
        // The overlay counts for B alone, and only its sector 1.
        assert_eq!(byte(b, 22 * K + 512), 41);
        assert_eq!(byte(b, 22 * K), 22);
        assert_eq!(byte(b, 22 * K + 1024), 22);
        assert_eq!(byte(a, 22 * K + 512), 22);
        // Block 23 was free for B, the newest store: zeros (read through A,
        // the live volume's bytes).
        assert_eq!(byte(b, 23 * K + 100), 0);
        assert_eq!(byte(a, 23 * K + 100), 23);
        // A read across several blocks and kinds at once.
        let mut buf = vec![0u8; (3 * K) as usize];
        assert_eq!(a.read_at(20 * K, &mut buf).unwrap(), buf.len());
        assert!(buf[..K as usize].iter().all(|&x| x == 40) && buf[(2 * K) as usize..].iter().all(|&x| x == 22));
    }
}
