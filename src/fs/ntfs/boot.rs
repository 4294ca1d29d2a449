//! The NTFS boot sector ($Boot, sector 0; a backup copy in the volume's last
//! sector): geometry and where $MFT starts.

use super::corrupt;
use crate::util::bytes::{u8_at, u16_at, u64_at};
use std::io;

#[derive(Clone, Debug)]
pub struct Boot {
    pub cluster_size: u64,
    pub total_clusters: u64,
    pub mft_lcn: u64,
    pub record_size: u64,
    pub index_block_size: u64,
    pub serial: u64,
}

/// Record and index-block sizes: a positive byte is a count of clusters, a
/// negative one `-n` means 2^n bytes (used when the record is smaller than
/// a cluster, e.g. 1 KiB records with 4 KiB or 64 KiB clusters).
fn size_field(v: u8, cluster: u64) -> Option<u64> {
    let v = v as i8;
    if v > 0 {
        cluster.checked_mul(v as u64)
    } else {
        let shift = u32::from(v.unsigned_abs());
        (shift < 32).then(|| 1u64 << shift)
    }
}

impl Boot {
    pub fn parse(b: &[u8]) -> io::Result<Boot> {
        if !crate::util::magic::Magic::Ntfs.in_head(b) {
            return Err(corrupt("not an NTFS boot sector (no \"NTFS    \" signature)"));
        }
        let sector_size = u64::from(u16_at(b, 0x0B));
        if !(256..=4096).contains(&sector_size) || !sector_size.is_power_of_two() {
            return Err(corrupt(format!("boot sector: {sector_size} bytes per sector")));
        }
        // Sectors per cluster; above 0x80 it is a negative power of two
        // (Windows 10 writes 0xF4 for 2 MiB clusters on 512-byte sectors).
        let spc = u8_at(b, 0x0D);
        let cluster_size = if spc <= 0x80 {
            sector_size * u64::from(spc)
        } else {
            let shift = 256 - u32::from(spc);
            if shift > 20 { 0 } else { sector_size << shift }
        };
        if !(512..=2 << 20).contains(&cluster_size) || !cluster_size.is_power_of_two() {
            return Err(corrupt(format!("boot sector: cluster size {cluster_size} (sectors per cluster byte {spc:#x})")));
        }
        let record_size = size_field(u8_at(b, 0x40), cluster_size).unwrap_or(0);
        let index_block_size = size_field(u8_at(b, 0x44), cluster_size).unwrap_or(0);
        // Fixups protect every 512 bytes, so both must be whole multiples.
        for (what, v) in [("MFT record", record_size), ("index block", index_block_size)] {
            if !(512..=65536).contains(&v) || !v.is_power_of_two() {
                return Err(corrupt(format!("boot sector: {what} size {v}")));
            }
        }
        let total_sectors = u64_at(b, 0x28);
        // Every cluster's byte offset must fit in a u64 (runs are checked
        // against `total_clusters`, and their offsets computed from it);
        // NTFS itself stops at 2^64 - 1 clusters, real volumes at 8 PiB.
        if total_sectors.checked_mul(sector_size).is_none_or(|bytes| bytes > i64::MAX as u64) {
            return Err(corrupt(format!("boot sector: {total_sectors} sectors of {sector_size} bytes is beyond any disk")));
        }
        let total_clusters = total_sectors / (cluster_size / sector_size);
        let mft_lcn = u64_at(b, 0x30);
        if mft_lcn == 0 || mft_lcn >= total_clusters {
            return Err(corrupt(format!("boot sector: $MFT at cluster {mft_lcn} of {total_clusters}")));
        }
        Ok(Boot { cluster_size, total_clusters, mft_lcn, record_size, index_block_size, serial: u64_at(b, 0x48) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(bps: u16, spc: u8, rec: u8) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[3..11].copy_from_slice(b"NTFS    ");
        b[0x0B..0x0D].copy_from_slice(&bps.to_le_bytes());
        b[0x0D] = spc;
        b[0x28..0x30].copy_from_slice(&1_000_000u64.to_le_bytes());
        b[0x30..0x38].copy_from_slice(&4u64.to_le_bytes());
        b[0x40] = rec;
        b[0x44] = 0xF4;
        b
    }

    #[test]
    fn cluster_and_record_encodings() {
        let b = Boot::parse(&boot(512, 8, 0xF6)).unwrap();
        assert_eq!((b.cluster_size, b.record_size, b.index_block_size), (4096, 1024, 4096));
        let b = Boot::parse(&boot(512, 128, 0xF6)).unwrap();
        assert_eq!((b.cluster_size, b.record_size, b.index_block_size), (65536, 1024, 4096));
        let mut one = boot(512, 2, 0xF6);
        one[0x44] = 4; // four 1 KiB clusters per index block
        assert_eq!(Boot::parse(&one).unwrap().index_block_size, 4096);
        let b = Boot::parse(&boot(512, 0xF4, 0xF6)).unwrap();
        assert_eq!(b.cluster_size, 2 << 20);
        let b = Boot::parse(&boot(4096, 1, 0xF4)).unwrap();
        assert_eq!((b.cluster_size, b.record_size), (4096, 4096));
        let b = Boot::parse(&boot(512, 1, 2)).unwrap();
        assert_eq!((b.cluster_size, b.record_size), (512, 1024));
        assert!(Boot::parse(&boot(512, 0, 0xF6)).is_err());
        assert!(Boot::parse(&boot(512, 8, 0x7F)).is_err());
        assert!(Boot::parse(&boot(513, 8, 0xF6)).is_err());
    }

    /// A size whose byte offsets overflow (found by the fs_ntfs fuzz target:
    /// a run below `total_clusters` then overflowed its byte offset).
    #[test]
    fn a_volume_larger_than_any_byte_offset_is_refused() {
        for sectors in [u64::MAX, 1 << 55] {
            let mut b = boot(512, 8, 0xF6);
            b[0x28..0x30].copy_from_slice(&sectors.to_le_bytes());
            let err = Boot::parse(&b).unwrap_err().to_string();
            assert!(err.contains("beyond any disk"), "{err}");
        }
        let mut b = boot(512, 8, 0xF6);
        b[0x28..0x30].copy_from_slice(&(1u64 << 50).to_le_bytes()); // 512 PiB: refused by nothing here
        assert_eq!(Boot::parse(&b).unwrap().total_clusters, 1 << 47);
    }
}
