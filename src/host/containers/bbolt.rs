//! A read-only reader for bbolt (BoltDB) files, the store containerd keeps
//! its metadata in (`meta.db`, the snapshotter's `metadata.db`). Written
//! from bbolt's on-disk layout (page.go, bucket.go, db.go): no crate reads
//! these files without the Go library.
//!
//! Layout: fixed-size pages; pages 0 and 1 are meta pages (the valid one
//! with the higher transaction id wins, checked by its FNV-1a checksum);
//! the meta names the root bucket's B+tree. Branch pages hold (key, child
//! page); leaf pages hold (flags, key, value), where flag 1 marks a nested
//! bucket whose value is its header (root page, sequence) — root 0 means
//! an inline bucket whose page follows the header inside the value. A page
//! may span `overflow` further pages.
//!
//! Every page reference is checked (in range, the page's own id matches,
//! the expected kind) and each walk keeps a visited set and a depth bound,
//! so a corrupt file gives an error, never a loop.

use std::collections::HashSet;
use std::io;

const MAGIC: u32 = 0xED0C_DAED;
const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
const BUCKET_FLAG: u32 = 0x01;
const MAX_DEPTH: usize = 64;

fn bad(msg: String) -> io::Error {
    crate::util::corrupt(format!("bbolt: {msg}"))
}

fn le32(b: &[u8], o: usize) -> u32 {
    crate::util::bytes::u32_at(b, o)
}
fn le64(b: &[u8], o: usize) -> u64 {
    crate::util::bytes::u64_at(b, o)
}
fn le16(b: &[u8], o: usize) -> u16 {
    crate::util::bytes::u16_at(b, o)
}

pub struct Db {
    data: Vec<u8>,
    page_size: usize,
    root: u64,
    /// Problems worked around (a damaged meta page).
    pub warnings: Vec<String>,
}

/// A bucket: its B+tree root page, or an inline page inside a value.
#[derive(Clone, Copy, Debug)]
pub enum Bucket<'a> {
    Page(u64),
    Inline(&'a [u8]),
}

#[derive(Debug)]
pub enum Item<'a> {
    Value(&'a [u8]),
    Bucket(Bucket<'a>),
}

impl Db {
    pub fn parse(data: Vec<u8>) -> io::Result<Db> {
        let mut warnings = Vec::new();
        let meta_at = |off: usize| -> Result<(u64, usize, u64), String> {
            let p = data.get(off..).ok_or("the file ends before the meta page")?;
            let m = p.get(PAGE_HEADER..PAGE_HEADER + 64).ok_or("the meta page is truncated")?;
            if le16(p, 8) & META == 0 || le32(m, 0) != MAGIC {
                return Err("not a bbolt meta page".into());
            }
            let sum = m[..56].iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
            if sum != le64(m, 56) {
                return Err("meta page checksum mismatch".into());
            }
            Ok((le64(m, 48), le32(m, 8) as usize, le64(m, 16)))
        };
        let first = meta_at(0);
        // The second meta page sits one page in; its size comes from the
        // first, or bbolt's usual 4096 when the first is damaged.
        let size = first.as_ref().map(|m| m.1).unwrap_or(4096);
        let second = if (512..=65536).contains(&size) { meta_at(size) } else { Err("bad page size".into()) };
        let (txid, page_size, root) = match (first, second) {
            (Ok(a), Ok(b)) => {
                if b.0 > a.0 {
                    b
                } else {
                    a
                }
            }
            (Ok(a), Err(e)) | (Err(e), Ok(a)) => {
                warnings.push(format!("one meta page is damaged ({e}); the other was used"));
                a
            }
            (Err(e), Err(_)) => return Err(bad(format!("no valid meta page ({e})"))),
        };
        let _ = txid;
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(bad(format!("page size {page_size}")));
        }
        Ok(Db { data, page_size, root, warnings })
    }

    pub fn root(&self) -> Bucket<'_> {
        Bucket::Page(self.root)
    }

    /// The bytes of page `id` (with its overflow pages), checked.
    fn page(&self, id: u64) -> io::Result<&[u8]> {
        let off = (id as usize).checked_mul(self.page_size).filter(|&o| o < self.data.len());
        let off = off.ok_or_else(|| bad(format!("page {id} is past the end of the file")))?;
        let head = &self.data[off..];
        if le64(head, 0) != id {
            return Err(bad(format!("page {id} is damaged (it records id {})", le64(head, 0))));
        }
        let len = (le32(head, 12) as usize + 1).saturating_mul(self.page_size);
        head.get(..len).ok_or_else(|| bad(format!("page {id} overflows past the end of the file")))
    }

    /// Every (key, item) of a bucket, in key order.
    pub fn entries<'a>(&'a self, b: Bucket<'a>) -> io::Result<Vec<(&'a [u8], Item<'a>)>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        match b {
            Bucket::Page(id) => self.walk(id, 0, &mut seen, &mut out)?,
            Bucket::Inline(p) => leaf(p, &mut out)?,
        }
        Ok(out)
    }

    fn walk<'a>(&'a self, id: u64, depth: usize, seen: &mut HashSet<u64>, out: &mut Vec<(&'a [u8], Item<'a>)>) -> io::Result<()> {
        if depth > MAX_DEPTH || !seen.insert(id) {
            return Err(bad(format!("page {id} is reached twice (a loop)")));
        }
        let p = self.page(id)?;
        match le16(p, 8) {
            f if f & LEAF != 0 => leaf(p, out),
            f if f & BRANCH != 0 => {
                for i in 0..usize::from(le16(p, 10)) {
                    let e = PAGE_HEADER + i * ELEMENT;
                    if e + ELEMENT > p.len() {
                        return Err(bad(format!("branch page {id} is truncated")));
                    }
                    self.walk(le64(p, e + 8), depth + 1, seen, out)?;
                }
                Ok(())
            }
            f => Err(bad(format!("page {id} has kind {f:#x}, not a branch or leaf"))),
        }
    }

    pub fn get<'a>(&'a self, b: Bucket<'a>, key: &[u8]) -> io::Result<Option<Item<'a>>> {
        Ok(self.entries(b)?.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// A nested bucket by key, if it exists and is a bucket.
    pub fn bucket<'a>(&'a self, b: Bucket<'a>, key: &[u8]) -> io::Result<Option<Bucket<'a>>> {
        Ok(match self.get(b, key)? {
            Some(Item::Bucket(b)) => Some(b),
            _ => None,
        })
    }

    /// A value by key, if it exists and is not a bucket.
    pub fn value<'a>(&'a self, b: Bucket<'a>, key: &[u8]) -> io::Result<Option<&'a [u8]>> {
        Ok(match self.get(b, key)? {
            Some(Item::Value(v)) => Some(v),
            _ => None,
        })
    }

    /// Follows a path of bucket names from the root.
    pub fn path<'a>(&'a self, names: &[&[u8]]) -> io::Result<Option<Bucket<'a>>> {
        let mut b = self.root();
        for n in names {
            match self.bucket(b, n)? {
                Some(x) => b = x,
                None => return Ok(None),
            }
        }
        Ok(Some(b))
    }
}

/// The elements of a leaf page (a file page or an inline bucket's page).
fn leaf<'a>(p: &'a [u8], out: &mut Vec<(&'a [u8], Item<'a>)>) -> io::Result<()> {
    if le16(p, 8) & LEAF == 0 {
        return Err(bad("an inline bucket's page is not a leaf".into()));
    }
    for i in 0..usize::from(le16(p, 10)) {
        let e = PAGE_HEADER + i * ELEMENT;
        let (flags, pos, ksize, vsize) = (le32(p, e), le32(p, e + 4) as usize, le32(p, e + 8) as usize, le32(p, e + 12) as usize);
        let k0 = e.checked_add(pos).ok_or_else(|| bad("element position overflows".into()))?;
        let key = p.get(k0..k0.saturating_add(ksize)).ok_or_else(|| bad(format!("leaf element {i} points past its page")))?;
        let v0 = k0 + ksize;
        let value = p.get(v0..v0.saturating_add(vsize)).ok_or_else(|| bad(format!("leaf element {i}'s value is past its page")))?;
        let item = if flags & BUCKET_FLAG != 0 {
            if value.len() < 16 {
                return Err(bad(format!("bucket header of {} bytes", value.len())));
            }
            match le64(value, 0) {
                0 => Bucket::Inline(&value[16..]),
                root => Bucket::Page(root),
            }
            .into()
        } else {
            Item::Value(value)
        };
        out.push((key, item));
    }
    Ok(())
}

impl<'a> From<Bucket<'a>> for Item<'a> {
    fn from(b: Bucket<'a>) -> Self {
        Item::Bucket(b)
    }
}

/// A Go `binary.PutUvarint` number (containerd's snapshot ids).
pub fn uvarint(b: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: usize = 4096;

    /// A file of `pages` pages whose meta pages name `root`.
    fn file(pages: usize, root: u64) -> Vec<u8> {
        let mut d = vec![0u8; pages * PS];
        for (p, txid) in [(0usize, 1u64), (1, 2)] {
            let b = &mut d[p * PS..];
            b[..8].copy_from_slice(&(p as u64).to_le_bytes());
            b[8..10].copy_from_slice(&META.to_le_bytes());
            let m = &mut b[PAGE_HEADER..PAGE_HEADER + 64];
            m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
            m[4..8].copy_from_slice(&2u32.to_le_bytes());
            m[8..12].copy_from_slice(&(PS as u32).to_le_bytes());
            m[16..24].copy_from_slice(&root.to_le_bytes());
            m[48..56].copy_from_slice(&txid.to_le_bytes());
            let sum = m[..56].iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
            m[56..64].copy_from_slice(&sum.to_le_bytes());
        }
        d
    }

    fn header(d: &mut [u8], page: usize, flags: u16, count: u16) {
        let b = &mut d[page * PS..];
        b[..8].copy_from_slice(&(page as u64).to_le_bytes());
        b[8..10].copy_from_slice(&flags.to_le_bytes());
        b[10..12].copy_from_slice(&count.to_le_bytes());
    }

    #[test]
    fn a_leaf_is_read_and_damage_is_an_error_not_a_loop() {
        // Page 2: a leaf with one value "k" = "v".
        let mut d = file(4, 2);
        header(&mut d, 2, LEAF, 1);
        let e = 2 * PS + PAGE_HEADER;
        d[e + 4..e + 8].copy_from_slice(&16u32.to_le_bytes()); // pos: right after the element
        d[e + 8..e + 12].copy_from_slice(&1u32.to_le_bytes());
        d[e + 12..e + 16].copy_from_slice(&1u32.to_le_bytes());
        d[e + 16..e + 18].copy_from_slice(b"kv");
        let db = Db::parse(d.clone()).unwrap();
        assert_eq!(db.value(db.root(), b"k").unwrap(), Some(&b"v"[..]));

        // A branch page pointing at itself: a loop, reported.
        let mut l = file(4, 3);
        header(&mut l, 3, BRANCH, 1);
        let e = 3 * PS + PAGE_HEADER;
        l[e + 8..e + 16].copy_from_slice(&3u64.to_le_bytes());
        let db = Db::parse(l).unwrap();
        assert!(db.entries(db.root()).unwrap_err().to_string().contains("twice"));

        // A page whose header names another id; an element past its page.
        let mut bad = d.clone();
        bad[2 * PS..2 * PS + 8].copy_from_slice(&9u64.to_le_bytes());
        let db = Db::parse(bad).unwrap();
        assert!(db.entries(db.root()).unwrap_err().to_string().contains("damaged"));
        let mut past = d.clone();
        past[2 * PS + PAGE_HEADER + 4..2 * PS + PAGE_HEADER + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let db = Db::parse(past).unwrap();
        assert!(db.entries(db.root()).is_err());

        // Both meta pages damaged: not a database; one damaged: the other, with a warning.
        let mut m = d.clone();
        m[PAGE_HEADER + 20] ^= 1;
        assert_eq!(Db::parse(m.clone()).unwrap().warnings.len(), 1);
        m[PS + PAGE_HEADER + 20] ^= 1;
        assert!(Db::parse(m).is_err());
        assert!(Db::parse(vec![0u8; 100]).is_err());
    }
}
