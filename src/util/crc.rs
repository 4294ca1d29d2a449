//! CRC-32 (IEEE, for GPT) and CRC-32C (Castagnoli, for ext4 metadata_csum).
//!
//! Table-driven and dependency-free: only metadata (a few KiB per file) is
//! checksummed, so speed does not matter here.

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

/// Tables for slicing-by-8: `T[k][b]` is byte `b`'s CRC advanced by `k`
/// more zero bytes. A jbd2 replay checksums every journal block, megabytes
/// at a time, where one byte a step would cost a third of a second.
const fn slicing(base: [u32; 256]) -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    t[0] = base;
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ base[(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static CASTAGNOLI8: [[u32; 256]; 8] = slicing(table(0x82F6_3B78));

/// The Linux kernel's `crc32c_le(seed, data)`: no pre- or post-inversion.
/// ext4 chains it (`ext4_chksum`) starting from `!0` or a stored seed.
pub fn crc32c_raw(mut crc: u32, data: &[u8]) -> u32 {
    let t = &CASTAGNOLI8;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    update(&CASTAGNOLI, crc, chunks.remainder())
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
        // Slicing-by-8 agrees with the byte-wise table at every length.
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(crc32c_raw(0x1234_5678, &data[..n]), update(&CASTAGNOLI, 0x1234_5678, &data[..n]));
        }
        // CRC-32/MPEG-2 (MSB first, init !0, no final xor) check value.
        assert_eq!(crc32_be_raw(!0, b"123456789"), 0x0376_E6E7);
    }
}
