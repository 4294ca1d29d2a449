//! CRC-32 (IEEE, for GPT) and CRC-32C (Castagnoli, for ext4 metadata_csum).
//!
//! CRC-32 and the MSB-first CRC are table-driven (only metadata, a few KiB,
//! is checksummed with them); CRC-32C, which log replays run over whole
//! logs, uses the CPU's instruction through the `crc32c` crate.

const fn table(poly: u32) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static IEEE: [u32; 256] = table(0xEDB8_8320);
/// The byte-wise CRC-32C, to check the crate against.
#[cfg(test)]
static CASTAGNOLI: [u32; 256] = table(0x82F6_3B78);

fn update(table: &[u32; 256], mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

/// Standard CRC-32 (as in zlib, GPT headers).
pub fn crc32(data: &[u8]) -> u32 {
    !update(&IEEE, !0, data)
}

/// CRC-32 (IEEE) update with no pre- or post-inversion: LVM2's `calc_crc`
/// (seeded with 0xf597a6cf).
pub fn crc32_raw(seed: u32, data: &[u8]) -> u32 {
    update(&IEEE, seed, data)
}

/// The Linux kernel's `crc32c_le(seed, data)`: no pre- or post-inversion.
/// ext4 chains it (`ext4_chksum`) starting from `!0` or a stored seed.
///
/// Through the `crc32c` crate, which uses the CPU's CRC32 instruction
/// (SSE 4.2, ARMv8) when there is one: a jbd2 or XFS log replay checksums
/// every block of the log, up to hundreds of MiB, where a table would take
/// most of the replay's time. Its API inverts before and after; undone here.
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

/// Most-significant-bit-first CRC-32 table (polynomial 0x04C11DB7).
const fn table_msb() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 { (c << 1) ^ 0x04C1_1DB7 } else { c << 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static MSB: [u32; 256] = table_msb();

/// The Linux kernel's `crc32_be(seed, data)`, no inversions: jbd2's v1
/// commit checksum (`JBD2_FEATURE_COMPAT_CHECKSUM`) over a transaction.
pub fn crc32_be_raw(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = MSB[((crc >> 24) ^ u32::from(b)) as usize] ^ (crc << 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        // Standard CRC-32C check value, via the raw form.
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
        // The crate agrees with the byte-wise table at every length and seed.
        let data: Vec<u8> = (0..300u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            for seed in [0, !0, 0x1234_5678] {
                assert_eq!(crc32c_raw(seed, &data[..n]), update(&CASTAGNOLI, seed, &data[..n]));
            }
        }
        // CRC-32/MPEG-2 (MSB first, init !0, no final xor) check value.
        assert_eq!(crc32_be_raw(!0, b"123456789"), 0x0376_E6E7);
    }
}
