//! Split raw images: `disk.001, disk.002, …` or `xaa, xab, …` (split(1)).

use super::{ReadAt, Source};
use std::io;
use std::path::{Path, PathBuf};

pub struct SplitRaw {
    /// (start offset in the whole image, segment)
    parts: Vec<(u64, Source)>,
    len: u64,
}

impl SplitRaw {
    pub fn open(paths: &[PathBuf]) -> io::Result<Self> {
        let mut parts = Vec::with_capacity(paths.len());
        let mut len = 0u64;
        for p in paths {
            let f = super::open_file(p)?;
            let l = f.len();
            parts.push((len, f));
            len += l;
        }
        Ok(SplitRaw { parts, len })
    }

    pub fn segments(&self) -> usize {
        self.parts.len()
    }
}

impl ReadAt for SplitRaw {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            if pos >= self.len {
                break;
            }
            // Last segment starting at or before pos.
            let i = self.parts.partition_point(|(start, _)| *start <= pos) - 1;
            let (start, part) = &self.parts[i];
            let n = part.read_at(pos - start, &mut buf[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// The ordered segments of a split image whose first segment is `first`, or
/// None when `first` is not named like the first of a set (`.001`, `.000`,
/// `…aa`) or has no second segment beside it.
pub fn segments_of(first: &Path) -> Option<Vec<PathBuf>> {
    let name = first.file_name()?.to_str()?;
    let dir = first.parent().unwrap_or(Path::new(""));
    let mut out = vec![first.to_path_buf()];
    if let Some(stem) = name.strip_suffix(".001").or_else(|| name.strip_suffix(".000")) {
        let start = if name.ends_with(".000") { 1 } else { 2 };
        for i in start.. {
            let p = dir.join(format!("{stem}.{i:03}"));
            if !p.is_file() {
                break;
            }
            out.push(p);
        }
    } else if let Some(stem) = name.strip_suffix("aa") {
        // split(1) suffixes: aa, ab, …, az, ba, … zz.
        for i in 1..26 * 26 {
            let s = [b'a' + (i / 26) as u8, b'a' + (i % 26) as u8];
            let p = dir.join(format!("{stem}{}", std::str::from_utf8(&s).ok()?));
            if !p.is_file() {
                break;
            }
            out.push(p);
        }
    }
    (out.len() > 1).then_some(out)
}
