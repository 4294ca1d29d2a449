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

/// The Linux kernel's `crc32c_le(seed, data)`: no pre- or post-inversion.
/// ext4 chains it (`ext4_chksum`) starting from `!0` or a stored seed.
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    update(&CASTAGNOLI, seed, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        // Standard CRC-32C check value, via the raw form.
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
    }
}
