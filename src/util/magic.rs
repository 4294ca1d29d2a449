//! Every signature (magic number) snapsift recognises, in one table: disk
//! image containers (evidence detection), filesystems and volume headers
//! (filesystem probing, and volume discovery, which must tell a bare
//! filesystem at the start of a disk from a partition table, and looks for
//! shadow copies only on NTFS). A format with more than one signature (FAT12/16 and
//! FAT32, LVM's label in sector 0 or 1) lists them all; any one is a match.
//! Only the bytes are checked here: each reader then validates the
//! structure.

/// What a signature identifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    // Containers (offsets from the start of the file).
    Gzip,
    Tar,
    /// Sparse or streamOptimized extent (`KDMV`) or a descriptor file.
    Vmdk,
    /// ESX 2/3 `COWD` sparse extent, which snapsift does not read.
    VmdkCowd,
    Vhdx,
    Qcow,
    /// EWF v1 (E01) or v2 (Ex01).
    Ewf,
    /// The VHD footer's cookie (also at the end of a fixed VHD).
    Vhd,
    // Filesystems and volume headers (offsets from the start of the volume).
    Ext,
    Xfs,
    Btrfs,
    Ntfs,
    /// FAT12/16 (`FAT` in the extended boot record) or FAT32.
    Fat,
    Exfat,
    Lvm2,
    Swap,
    BitLocker,
    Luks,
    Apfs,
    HfsPlus,
    Hfsx,
    /// HFS+ wrapped in an HFS volume.
    HfsWrapped,
    Refs,
    F2fs,
    Squashfs,
    Iso9660,
    Udf,
    Jfs,
    ReiserFs,
}

/// `bytes` at `offset`.
#[derive(Debug)]
pub struct Signature {
    pub offset: usize,
    pub bytes: &'static [u8],
}

/// A table row (a struct literal, so that the slices are promoted to
/// statics).
macro_rules! at {
    ($offset:expr, $bytes:expr) => {
        Signature { offset: $offset, bytes: $bytes }
    };
}

impl Magic {
    /// The table.
    pub fn signatures(self) -> &'static [Signature] {
        use Magic::*;
        match self {
            Gzip => &[at!(0, &[0x1f, 0x8b])],
            Tar => &[at!(257, b"ustar")],
            Vmdk => &[at!(0, b"KDMV"), at!(0, b"# Disk DescriptorFile")],
            VmdkCowd => &[at!(0, b"COWD")],
            Vhdx => &[at!(0, b"vhdxfile")],
            Qcow => &[at!(0, b"QFI\xfb")],
            Ewf => &[at!(0, b"EVF\x09\x0d\x0a\xff\x00"), at!(0, b"EVF2\x0d\x0a\x81\x00")],
            Vhd => &[at!(0, b"conectix")],
            Ext => &[at!(1080, &[0x53, 0xEF])],
            Xfs => &[at!(0, b"XFSB")],
            Btrfs => &[at!(0x10040, b"_BHRfS_M")],
            Ntfs => &[at!(3, b"NTFS    ")],
            Fat => &[at!(54, b"FAT"), at!(82, b"FAT32   ")],
            Exfat => &[at!(3, b"EXFAT   ")],
            Lvm2 => &[at!(512, b"LABELONE"), at!(0, b"LABELONE")],
            Swap => &[at!(4086, b"SWAPSPACE2"), at!(4086, b"SWAP-SPACE")],
            BitLocker => &[at!(0, b"-FVE-FS-"), at!(3, b"-FVE-FS-")],
            Luks => &[at!(0, b"LUKS\xba\xbe")],
            Apfs => &[at!(32, b"NXSB")],
            HfsPlus => &[at!(1024, b"H+\x00\x04")],
            Hfsx => &[at!(1024, b"HX\x00\x05")],
            HfsWrapped => &[at!(1024, b"BD"), at!(1024 + 0x7c, b"H+")],
            Refs => &[at!(3, b"ReFS\0\0\0\0")],
            // F2FS_SUPER_MAGIC 0xF2F52010, little-endian.
            F2fs => &[at!(1024, &[0x10, 0x20, 0xF5, 0xF2])],
            Squashfs => &[at!(0, b"hsqs")],
            Iso9660 => &[at!(0x8001, b"CD001")],
            Udf => &[at!(0x8001, b"BEA01")],
            Jfs => &[at!(0x8000, b"JFS1")],
            ReiserFs => &[at!(0x10034, b"ReIsEr")],
        }
    }

    /// Whether `head` (bytes from the start) shows the signature. HFS+
    /// wrapped in HFS needs both of its signatures; every other format
    /// any one of its own.
    pub fn in_head(self, head: &[u8]) -> bool {
        self.found_by(|off, buf| head.get(off as usize..).and_then(|h| h.get(..buf.len())).map(|h| buf.copy_from_slice(h)).is_some())
    }

    /// Whether the signature is there, reading each one through `read`
    /// (`read(offset, buf)`: true when `buf` was filled), for signatures
    /// past the bytes read first (Btrfs at 64 KiB).
    pub fn found_by(self, read: impl Fn(u64, &mut [u8]) -> bool) -> bool {
        let here = |s: &Signature| {
            let mut b = vec![0u8; s.bytes.len()];
            read(s.offset as u64, &mut b) && b == s.bytes
        };
        match self {
            Magic::HfsWrapped => self.signatures().iter().all(here),
            _ => self.signatures().iter().any(here),
        }
    }

    /// How many bytes from the start hold all of its signatures.
    pub fn reach(self) -> usize {
        self.signatures().iter().map(|s| s.offset + s.bytes.len()).max().unwrap_or(0)
    }

    /// The first of `kinds` whose signature `head` shows.
    pub fn first_in(head: &[u8], kinds: &[Magic]) -> Option<Magic> {
        kinds.iter().copied().find(|m| m.in_head(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_signature_of_a_format_matches_and_both_of_wrapped_hfs() {
        let mut b = vec![0u8; 2048];
        b[82..90].copy_from_slice(b"FAT32   ");
        assert!(Magic::Fat.in_head(&b));
        assert!(!Magic::Fat.in_head(&b[..60]), "a head too short to hold it");
        b[1024..1026].copy_from_slice(b"BD");
        assert!(!Magic::HfsWrapped.in_head(&b), "BD alone is plain HFS");
        b[1024 + 0x7c..1024 + 0x7e].copy_from_slice(b"H+");
        assert!(Magic::HfsWrapped.in_head(&b));
        assert_eq!(Magic::first_in(&b, &[Magic::Ntfs, Magic::Fat, Magic::HfsWrapped]), Some(Magic::Fat));
    }

    #[test]
    fn signatures_past_the_head_are_read() {
        let mut v = vec![0u8; 0x10048];
        v[0x10040..].copy_from_slice(b"_BHRfS_M");
        let read = |off: u64, buf: &mut [u8]| {
            let o = off as usize;
            v.get(o..o + buf.len()).map(|s| buf.copy_from_slice(s)).is_some()
        };
        assert!(Magic::Btrfs.found_by(read));
        assert!(!Magic::Iso9660.found_by(read));
        assert!(!Magic::Btrfs.in_head(&v[..8192]));
        assert_eq!(Magic::Btrfs.reach(), 0x10048);
    }
}
