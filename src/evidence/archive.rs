//! Streams that cannot be read at random offsets: gzip (`disk.raw.gz`) and
//! tar (GCP exports `disk.raw` inside a `.tar.gz`). They are inflated once,
//! in one pass, into a sparse temporary file beside the case folder; the
//! caller opens that file as evidence (any format: a VMDK inside a tar works
//! too) and removes it at once.
//!
//! Own tar reader: the `tar` crate silently mis-reads PAX sparse members
//! (GNU tar `--format=pax --sparse`); here GNU old sparse (type `S`, what
//! GCP uses) and PAX sparse 0.0, 0.1 and 1.0 are all handled.

use anyhow::{Context, Result, bail};
use flate2::read::MultiGzDecoder;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::util::tar::{self, BLOCK, MAX_META, number, padded};

const CHUNK: usize = 1 << 20;
/// Sparse maps and metadata records are bounded before allocating.
const MAX_MAP_ENTRIES: usize = 1 << 20;

pub struct Inflated {
    pub path: PathBuf,
    /// What was inside: `gzip`, `tar member disk.raw`, `gzip, tar member …`.
    pub what: String,
    pub size: u64,
}

/// Counts bytes read from the underlying file, for progress.
struct Counted<'a, R> {
    inner: R,
    read: u64,
    total: u64,
    progress: &'a dyn Fn(u64, u64),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.progress)(self.read, self.total);
        Ok(n)
    }
}

/// Inflates a gzip and/or tar stream at `path` into a new file in `temp_dir`.
pub fn inflate(path: &Path, temp_dir: &Path, progress: &dyn Fn(u64, u64)) -> Result<Inflated> {
    let f = File::open(path)?;
    let total = f.metadata()?.len();
    let counted = Counted { inner: BufReader::with_capacity(CHUNK, f), read: 0, total, progress };
    let mut head = [0u8; 2];
    File::open(path)?.read_exact(&mut head).ok();
    let gz = head == [0x1f, 0x8b];
    let mut stream: Box<dyn Read> = if gz { Box::new(MultiGzDecoder::new(counted)) } else { Box::new(counted) };
    // Peek one block to tell a tar from a plain compressed disk.
    let mut first = vec![0u8; BLOCK];
    let n = crate::util::read_full(&mut stream, &mut first)?;
    first.truncate(n);
    std::fs::create_dir_all(temp_dir).with_context(|| format!("cannot create {}", temp_dir.display()))?;
    let tmp = temp_dir.join(format!(".snapsift-{}-{}.img", std::process::id(), unique()));
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("cannot create a temporary file in {}", temp_dir.display()))?;
    let result = if n >= 262 && &first[257..262] == b"ustar" {
        let mut chained = io::Cursor::new(first).chain(stream);
        extract_member(&mut chained, &mut out).map(|(name, size)| {
            let what = if gz { format!("gzip-compressed tar member {name}") } else { format!("tar member {name}") };
            (what, size)
        })
    } else if gz {
        let mut chained = io::Cursor::new(first).chain(stream);
        copy_sparse(&mut chained, &mut out, u64::MAX).map(|size| ("gzip".to_string(), size))
    } else {
        Err(anyhow::anyhow!("not a gzip or tar stream"))
    };
    match result {
        Ok((what, size)) => {
            out.set_len(size)?;
            Ok(Inflated { path: tmp, what, size })
        }
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            Err(e.context(format!("cannot unpack {}", path.display())))
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Copies up to `limit` bytes, leaving holes for all-zero chunks. Returns
/// the number of bytes copied.
fn copy_sparse(r: &mut dyn Read, out: &mut File, limit: u64) -> Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    while total < limit {
        let want = (limit - total).min(CHUNK as u64) as usize;
        let n = crate::util::read_full(r, &mut buf[..want]).with_context(|| format!("stream damaged after {total} bytes"))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            out.seek(SeekFrom::Current(n as i64))?;
        } else {
            out.write_all(&buf[..n])?;
        }
        total += n as u64;
    }
    Ok(total)
}

fn skip(r: &mut dyn Read, n: u64) -> Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied < n {
        bail!("tar archive ends inside a member");
    }
    Ok(())
}

fn text(f: &[u8]) -> String {
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..end]).into_owned()
}

/// Does this member look like the disk? GCP names it `disk.raw`; other
/// exports carry a disk image extension; else the first large file.
fn is_disk(name: &str, size: u64) -> bool {
    let lower = name.to_lowercase();
    let base = lower.rsplit('/').next().unwrap_or(&lower);
    base == "disk.raw"
        || [".raw", ".img", ".dd", ".vmdk", ".vhd", ".vhdx", ".qcow2", ".e01"].iter().any(|e| base.ends_with(e))
        || size >= 1 << 20
}

/// Finds the disk member and writes it (holes as holes) to `out`.
fn extract_member(r: &mut dyn Read, out: &mut File) -> Result<(String, u64)> {
    let mut long_name: Option<String> = None;
    let mut pax: HashMap<String, String> = HashMap::new();
    let mut pax_map: Vec<(u64, u64)> = Vec::new();
    let mut h = [0u8; BLOCK];
    loop {
        let n = crate::util::read_full(r, &mut h)?;
        if n < BLOCK || h.iter().all(|&b| b == 0) {
            bail!("no disk image found in the tar archive (looked for disk.raw or an image file)");
        }
        let kind = h[156];
        let size = number(&h[124..136])?;
        match kind {
            b'L' => {
                if size > MAX_META {
                    bail!("tar long name of {size} bytes");
                }
                let mut b = vec![0u8; padded(size) as usize];
                crate::util::read_full(r, &mut b)?;
                long_name = Some(text(&b[..size as usize]));
                continue;
            }
            b'x' => {
                if size > MAX_META {
                    bail!("tar PAX header of {size} bytes");
                }
                let mut b = vec![0u8; padded(size) as usize];
                crate::util::read_full(r, &mut b)?;
                parse_pax(&b[..size as usize], &mut pax, &mut pax_map)?;
                continue;
            }
            b'0' | 0 | b'7' | b'S' => {}
            _ => {
                skip(r, padded(size))?;
                long_name = None;
                pax.clear();
                pax_map.clear();
                continue;
            }
        }
        let ustar_prefix = if &h[257..262] == b"ustar" { text(&h[345..500]) } else { String::new() };
        let mut name = long_name.take().or_else(|| pax.get("path").cloned()).unwrap_or_else(|| {
            let n = text(&h[0..100]);
            if ustar_prefix.is_empty() || kind == b'S' { n } else { format!("{ustar_prefix}/{n}") }
        });
        if let Some(n) = pax.get("GNU.sparse.name") {
            name = n.clone();
        }
        let real_size = pax.get("GNU.sparse.realsize").or_else(|| pax.get("GNU.sparse.size")).and_then(|v| v.parse().ok());
        let logical = if kind == b'S' { number(&h[483..495])? } else { real_size.unwrap_or(size) };
        if !is_disk(&name, logical) {
            skip(r, padded(size))?;
            pax.clear();
            pax_map.clear();
            continue;
        }
        let map = if kind == b'S' {
            Some(gnu_sparse_map(&h, r)?)
        } else if pax.get("GNU.sparse.major").map(String::as_str) == Some("1") {
            Some(pax1_map(r)?)
        } else if !pax_map.is_empty() {
            Some(std::mem::take(&mut pax_map))
        } else {
            None
        };
        let stored = match &map {
            None => copy_sparse(r, out, size)?,
            Some(map) => {
                let mut copied = 0u64;
                for &(off, len) in map {
                    if off.checked_add(len).is_none_or(|end| end > logical) {
                        bail!("tar sparse map entry {off}+{len} lies past the file's size {logical}");
                    }
                    out.seek(SeekFrom::Start(off))?;
                    let n = copy_sparse(r, out, len)?;
                    if n < len {
                        bail!("tar archive ends inside sparse member {name}");
                    }
                    copied += n;
                }
                copied
            }
        };
        if map.is_none() && stored < size {
            bail!("tar archive ends inside member {name} ({stored} of {size} bytes)");
        }
        return Ok((name, logical));
    }
}

/// PAX records `"<len> key=value\n"`; GNU sparse 0.0 repeats
/// `GNU.sparse.offset`/`GNU.sparse.numbytes`, 0.1 has `GNU.sparse.map`.
fn parse_pax(b: &[u8], pax: &mut HashMap<String, String>, map: &mut Vec<(u64, u64)>) -> Result<()> {
    let mut pending_offset = None;
    for (k, v) in tar::pax_records(b)? {
        let (k, v) = (String::from_utf8_lossy(k), String::from_utf8_lossy(v).into_owned());
        match k.as_ref() {
            "GNU.sparse.offset" => pending_offset = v.parse().ok(),
            "GNU.sparse.numbytes" => {
                if let (Some(o), Ok(n)) = (pending_offset.take(), v.parse()) {
                    map.push((o, n));
                }
            }
            "GNU.sparse.map" => {
                let nums: Vec<u64> = v.split(',').filter_map(|x| x.parse().ok()).collect();
                map.extend(nums.chunks_exact(2).map(|c| (c[0], c[1])));
            }
            _ => {
                pax.insert(k.into_owned(), v);
            }
        }
        if map.len() > MAX_MAP_ENTRIES {
            bail!("tar sparse map has more than {MAX_MAP_ENTRIES} entries");
        }
    }
    Ok(())
}

/// GNU old sparse: 4 (offset, size) pairs in the header, more in extension
/// blocks of 21 while `isextended` is set.
fn gnu_sparse_map(h: &[u8], r: &mut dyn Read) -> Result<Vec<(u64, u64)>> {
    fn push(map: &mut Vec<(u64, u64)>, e: &[u8]) -> Result<()> {
        let (o, n) = (number(&e[0..12])?, number(&e[12..24])?);
        if o != 0 || n != 0 {
            map.push((o, n));
        }
        Ok(())
    }
    let mut map = Vec::new();
    for i in 0..4 {
        push(&mut map, &h[386 + i * 24..410 + i * 24])?;
    }
    let mut extended = h[482] != 0;
    let mut ext = [0u8; BLOCK];
    while extended {
        // At the end of the data the block would keep its old contents, flag
        // included: a loop.
        if crate::util::read_full(r, &mut ext)? < BLOCK {
            bail!("tar archive ends inside a sparse map");
        }
        for i in 0..21 {
            push(&mut map, &ext[i * 24..24 + i * 24])?;
        }
        extended = ext[504] != 0;
        if map.len() > MAX_MAP_ENTRIES {
            bail!("tar sparse map has more than {MAX_MAP_ENTRIES} entries");
        }
    }
    Ok(map)
}

/// One decimal line of a PAX 1.0 sparse map; counts the bytes consumed.
fn map_number(r: &mut dyn Read, consumed: &mut u64) -> Result<u64> {
    let mut line = Vec::new();
    let mut c = [0u8; 1];
    loop {
        r.read_exact(&mut c).context("tar archive ends inside a sparse map")?;
        *consumed += 1;
        if c[0] == b'\n' {
            break;
        }
        if line.len() > 24 {
            bail!("bad number in tar sparse map");
        }
        line.push(c[0]);
    }
    std::str::from_utf8(&line)?.parse::<u64>().context("bad number in tar sparse map")
}

/// PAX sparse 1.0: the map is at the start of the member data as decimal
/// lines (count, then offset/size pairs), padded to a block.
fn pax1_map(r: &mut dyn Read) -> Result<Vec<(u64, u64)>> {
    let mut consumed = 0u64;
    let count = map_number(r, &mut consumed)? as usize;
    if count > MAX_MAP_ENTRIES {
        bail!("tar sparse map has {count} entries");
    }
    let mut map = Vec::with_capacity(count);
    for _ in 0..count {
        let o = map_number(r, &mut consumed)?;
        let n = map_number(r, &mut consumed)?;
        map.push((o, n));
    }
    skip(r, padded(consumed) - consumed)?;
    Ok(map)
}
