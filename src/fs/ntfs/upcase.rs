//! `$UpCase` (MFT record 10): the volume's table of the upper case of every
//! UTF-16 code unit. Windows compares names on the volume through it, so
//! `ärger` and `ÄRGER`, `σ` and `Σ`, `ж` and `Ж` are one name, not only
//! ASCII letters.

use super::filename::{bytes_to_utf16, utf16_to_bytes};
use super::record::AT_DATA;
use super::{Ntfs, corrupt};
use std::io;

const RECORD: u64 = 10;
/// One entry per UTF-16 code unit.
const UNITS: usize = 65536;

impl Ntfs {
    /// The table, read on first use. None (with one warning) when it is
    /// missing or damaged: names are then folded as ASCII only.
    fn upcase(&self) -> Option<&[u16]> {
        self.upcase
            .get_or_init(|| {
                self.load_upcase()
                    .inspect_err(|e| self.warn(format!("$UpCase is unusable ({e}); names are compared with ASCII case folding only")))
                    .ok()
            })
            .as_deref()
    }

    fn load_upcase(&self) -> io::Result<Vec<u16>> {
        let f = self.file(RECORD)?;
        let a = f.attr(AT_DATA, &[]).ok_or_else(|| corrupt("record 10 has no data"))?;
        let b = self.attr_bytes(a, UNITS as u64 * 2)?;
        if b.len() != UNITS * 2 {
            return Err(corrupt(format!("{} bytes instead of {}", b.len(), UNITS * 2)));
        }
        let t: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        // Every table maps ASCII as ASCII does; one that does not is not a
        // table (zeroed or overwritten clusters).
        let ascii_ok = (0u16..0x80).all(|c| {
            let up = if (0x61..=0x7A).contains(&c) { c - 0x20 } else { c };
            t[usize::from(c)] == up
        });
        if !ascii_ok {
            return Err(corrupt("it does not map ASCII letters to their capitals"));
        }
        Ok(t)
    }

    /// `name` in upper case as this volume defines it; None without a
    /// usable table, or for bytes that are not a name this reader makes.
    pub fn fold_case(&self, name: &[u8]) -> Option<Vec<u8>> {
        let t = self.upcase()?;
        let units: Vec<u16> = bytes_to_utf16(name)?.into_iter().map(|u| t[usize::from(u)]).collect();
        Some(utf16_to_bytes(&units))
    }
}
