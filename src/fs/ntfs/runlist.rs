//! Runlists (mapping pairs) and reading a non-resident stream through one:
//! sparse runs and bytes past `initialized_size` read as zeros, and
//! LZNT1-compressed attributes are inflated one compression unit at a time.

use super::{Ntfs, corrupt, lznt1};
use crate::evidence::ReadAt;
use crate::util::bytes::u8_at;
use std::io::{self, Read};

/// `len` clusters from `vcn`, stored at `lcn` (`None`: a sparse run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub vcn: u64,
    pub len: u64,
    pub lcn: Option<u64>,
}

/// Runs per attribute piece: a 64 KiB record cannot hold more.
const MAX_RUNS_PER_PIECE: usize = 32768;

/// Decodes mapping pairs: a header byte (low nibble: bytes of length, high
/// nibble: bytes of LCN delta), the length, then a signed delta from the
/// previous run's LCN; no delta bytes means a sparse run.
pub fn decode_runs(mp: &[u8], lowest_vcn: u64) -> Result<Vec<Run>, String> {
    let mut runs = Vec::new();
    let (mut off, mut vcn, mut lcn) = (0usize, lowest_vcn, 0i64);
    loop {
        let h = u8_at(mp, off);
        if h == 0 {
            break;
        }
        let (nl, no) = (usize::from(h & 0xF), usize::from(h >> 4));
        if nl == 0 || nl > 8 || no > 8 || off + 1 + nl + no > mp.len() {
            return Err(format!("bad runlist header {h:#04x} at {off}"));
        }
        let len = le_uint(&mp[off + 1..off + 1 + nl]);
        if len == 0 || (len as i64) < 0 {
            return Err(format!("runlist: run of {len} clusters"));
        }
        let run_lcn = if no == 0 {
            None
        } else {
            let delta = le_int(&mp[off + 1 + nl..off + 1 + nl + no]);
            lcn = lcn.checked_add(delta).filter(|l| *l >= 0).ok_or("runlist: negative cluster number")?;
            Some(lcn as u64)
        };
        runs.push(Run { vcn, len, lcn: run_lcn });
        vcn = vcn.checked_add(len).ok_or("runlist: VCN overflows")?;
        off += 1 + nl + no;
        if runs.len() > MAX_RUNS_PER_PIECE {
            return Err("runlist: too many runs".into());
        }
    }
    Ok(runs)
}

fn le_uint(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |a, &x| a << 8 | u64::from(x))
}

fn le_int(b: &[u8]) -> i64 {
    let v = le_uint(b);
    let bits = b.len() * 8;
    if bits < 64 && v >> (bits - 1) & 1 == 1 { (v | (!0u64 << bits)) as i64 } else { v as i64 }
}

/// A non-resident stream, ready to read.
#[derive(Clone, Debug)]
pub struct Stream {
    /// Sorted by VCN, contiguous from VCN 0.
    pub runs: Vec<Run>,
    pub data_size: u64,
    pub initialized_size: u64,
    /// Compression unit in clusters (0: not compressed).
    pub cu_clusters: u64,
}

impl Stream {
    /// The run holding `vcn`, if any.
    fn run_at(&self, vcn: u64) -> Option<&Run> {
        let i = self.runs.partition_point(|r| r.vcn + r.len <= vcn);
        self.runs.get(i).filter(|r| r.vcn <= vcn)
    }

    /// Reads raw clusters `[vcn, vcn + n)` (not past one run) into `buf`.
    fn read_clusters(&self, fs: &Ntfs, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let cs = fs.boot.cluster_size;
        let vcn = pos / cs;
        let Some(r) = self.run_at(vcn) else {
            // Streams are built to cover their size (sparse runs are
            // explicit), so a gap is damage: reported, never read as zeros.
            return Err(corrupt(format!("unreadable: no run maps cluster {vcn} (byte {pos})")));
        };
        let run_end = (r.vcn + r.len).saturating_mul(cs);
        let n = (buf.len() as u64).min(run_end - pos) as usize;
        match r.lcn {
            None => buf[..n].fill(0),
            Some(lcn) => {
                if lcn.saturating_add(r.len) > fs.boot.total_clusters {
                    return Err(corrupt(format!(
                        "unreadable: run at cluster {lcn} (+{}) is past the end of the volume ({} clusters)",
                        r.len, fs.boot.total_clusters
                    )));
                }
                let off = (lcn + (vcn - r.vcn)) * cs + pos % cs;
                fs.dev.read_exact_at(off, &mut buf[..n])?;
            }
        }
        Ok(n)
    }

    /// Reads at `pos` (uncompressed streams), up to `buf.len()` bytes.
    pub fn read_at(&self, fs: &Ntfs, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        if pos >= self.data_size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.data_size - pos) as usize;
        let buf = &mut buf[..want];
        if pos >= self.initialized_size {
            // Allocated but never written: the disk holds stale data.
            let n = want.min((self.data_size - pos) as usize);
            buf[..n].fill(0);
            return Ok(n);
        }
        let want = want.min((self.initialized_size - pos) as usize);
        self.read_clusters(fs, pos, &mut buf[..want])
    }

    /// The decompressed bytes of compression unit `unit`.
    pub fn read_unit(&self, fs: &Ntfs, unit: u64) -> io::Result<Vec<u8>> {
        let cs = fs.boot.cluster_size;
        let unit_bytes = (self.cu_clusters * cs) as usize;
        let first = unit * self.cu_clusters;
        // Allocated clusters of this unit (they come first) and sparse ones.
        // A compressed unit always ends in a sparse run; a unit with none
        // is stored raw, including a file's last unit when the runlist
        // stops at the end of the data instead of a unit boundary.
        let (mut allocated, mut sparse) = (0u64, 0u64);
        let mut vcn = first;
        while vcn < first + self.cu_clusters {
            match self.run_at(vcn) {
                Some(r) => {
                    let n = (r.vcn + r.len).min(first + self.cu_clusters) - vcn;
                    if r.lcn.is_some() {
                        allocated += n;
                    } else {
                        sparse += n;
                    }
                    vcn += n;
                }
                None => break,
            }
        }
        let mut raw = vec![0u8; (allocated * cs) as usize];
        let mut done = 0;
        while done < raw.len() {
            let n = self.read_clusters(fs, first * cs + done as u64, &mut raw[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        if allocated == 0 || sparse == 0 {
            // All sparse (zeros) or stored uncompressed.
            raw.resize(unit_bytes, 0);
            return Ok(raw);
        }
        lznt1::decompress(&raw, unit_bytes).map_err(|e| corrupt(format!("unreadable: compression unit {unit}: {e}")))
    }
}

/// A reader over a stream, decompressing unit by unit when compressed.
pub struct StreamReader<'a> {
    fs: &'a Ntfs,
    stream: Stream,
    pos: u64,
    /// The last decompressed unit.
    unit: Option<(u64, Vec<u8>)>,
}

impl<'a> StreamReader<'a> {
    pub fn new(fs: &'a Ntfs, stream: Stream) -> Self {
        StreamReader { fs, stream, pos: 0, unit: None }
    }
}

impl Read for StreamReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = &self.stream;
        if s.cu_clusters == 0 {
            let n = s.read_at(self.fs, self.pos, buf)?;
            self.pos += n as u64;
            return Ok(n);
        }
        if self.pos >= s.data_size || buf.is_empty() {
            return Ok(0);
        }
        let unit_bytes = s.cu_clusters * self.fs.boot.cluster_size;
        let unit = self.pos / unit_bytes;
        if self.unit.as_ref().map(|u| u.0) != Some(unit) {
            self.unit = Some((unit, s.read_unit(self.fs, unit)?));
        }
        let data = &self.unit.as_ref().map_or(&[][..], |u| &u.1[..]);
        let at = (self.pos - unit * unit_bytes) as usize;
        let end = (unit_bytes.min(s.data_size - unit * unit_bytes)) as usize;
        let init_end = s.initialized_size.saturating_sub(unit * unit_bytes).min(end as u64) as usize;
        let n = buf.len().min(end - at);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let p = at + i;
            *b = if p < init_end { data.get(p).copied().unwrap_or(0) } else { 0 };
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_runs_with_negative_deltas_and_holes() {
        // 0x20 clusters at 0x1000; 0x10 sparse; 8 at 0x1000-0x100 = 0xF00.
        let mp = [0x21, 0x20, 0x00, 0x10, 0x01, 0x10, 0x21, 0x08, 0x00, 0xFF, 0x00];
        let r = decode_runs(&mp, 0).unwrap();
        assert_eq!(
            r,
            vec![
                Run { vcn: 0, len: 0x20, lcn: Some(0x1000) },
                Run { vcn: 0x20, len: 0x10, lcn: None },
                Run { vcn: 0x30, len: 8, lcn: Some(0xF00) },
            ]
        );
        assert!(decode_runs(&[0x21, 0x20], 0).is_err());
        assert!(decode_runs(&[0x11, 0x01, 0x80], 0).is_err()); // below cluster 0
    }
}
