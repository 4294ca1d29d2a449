//! systemd journal → JSON lines (src/convert/journal): every journal under
//! images/journald/ (written by systemd-journal-remote, images/build-journald.py,
//! and by a real systemd-journald, images/build-journald-real.py)
//! converted by snapsift against journalctl 252's `-o json --all` reading of
//! it (images/expected/journald/), object by object; then damaged copies
//! (truncated, bit-flipped, a looping or escaping entry array chain, a
//! decompression bomb, a lying hash table): no panic, no hang, and a
//! truncated copy yields at least the entries journalctl shows for it.

use serde_json::{Map, Value};
use snapsift::convert::journal::{self, FIELD_MAX, TIMESTAMP_DESC};
use snapsift::convert::{Context, Converted, iso_micros};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

const NEEDLE: &str = "snapsift-needle: sshd accepted publickey for mallory from 203.0.113.66";
const ADDED: [&str; 5] = ["host", "source_path", "datetime", "timestamp_desc", "message"];
const CTX: Context = Context { host: "web\"01", source_path: "/var/log/journal/5eed/system.journal" };

fn gunzip(p: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap()).read_to_end(&mut v).unwrap();
    v
}

/// (name, uncompressed journal) for every fixture, unpacked once (the
/// tests run on threads of one process).
fn fixtures() -> Vec<(String, PathBuf)> {
    static ONCE: std::sync::OnceLock<Vec<(String, PathBuf)>> = std::sync::OnceLock::new();
    ONCE.get_or_init(unpack_fixtures).clone()
}

fn unpack_fixtures() -> Vec<(String, PathBuf)> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("journald");
    std::fs::create_dir_all(&dir).unwrap();
    let mut v: Vec<_> = std::fs::read_dir(crate::common::repo().join("images/journald"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.strip_suffix(".journal.gz")?.to_string();
            let dst = dir.join(format!("{name}.journal"));
            crate::common::unpack(&p, &dst);
            Some((name, dst))
        })
        .collect();
    v.sort();
    assert!(v.len() >= 7, "the journal fixtures are missing: {v:?}");
    v
}

fn expected(name: &str) -> Vec<Map<String, Value>> {
    let text = gunzip(&crate::common::repo().join(format!("images/expected/journald/{name}.json.gz")));
    text.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}

/// Converts `path` on a thread, failing after `secs` (a hang) or on a panic.
fn convert_within(path: &Path, secs: u64) -> (std::io::Result<Converted>, Vec<u8>) {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let r = journal::convert(&p, &CTX, &mut out);
        let _ = tx.send((r, out));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(x) => x,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{}: still converting after {secs} s (a hang)", path.display()),
        Err(_) => panic!("{}: the conversion panicked (message above)", path.display()),
    }
}

/// Every line is one JSON object whose added fields come first, in order,
/// with their types; returns the objects without them.
fn lines(out: &[u8]) -> Vec<Map<String, Value>> {
    let text = std::str::from_utf8(out).expect("the output is UTF-8");
    assert!(!text.bytes().any(|c| c < 0x20 && c != b'\n'), "no raw control characters");
    text.lines()
        .map(|line| {
            let head = r#"{"host":"web\"01","source_path":"/var/log/journal/5eed/system.journal","datetime":"#;
            assert!(line.starts_with(head), "the added fields first: {line}");
            let pos: Vec<_> = ["\"datetime\":", "\"timestamp_desc\":", "\"message\":", "\"__CURSOR\":"]
                .iter()
                .map(|k| line.find(k).unwrap_or_else(|| panic!("{k} missing: {line}")))
                .collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "added fields in order: {line}");
            let mut o: Map<String, Value> = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(o["host"], "web\"01");
            assert_eq!(o["timestamp_desc"], TIMESTAMP_DESC);
            let rt: u64 = o["__REALTIME_TIMESTAMP"].as_str().unwrap().parse().unwrap();
            assert_eq!(o["datetime"], iso_micros(rt), "datetime is the realtime");
            let message = o["message"].as_str().expect("message is a string");
            match &o.get("MESSAGE") {
                Some(Value::String(m)) => assert_eq!(message, m),
                Some(Value::Array(a)) if a.iter().all(Value::is_u64) => {
                    let bytes: Vec<u8> = a.iter().map(|b| b.as_u64().unwrap() as u8).collect();
                    assert_eq!(message, std::str::from_utf8(&bytes).unwrap_or(""), "message is the text, or empty");
                }
                Some(Value::Array(many)) => assert!(many.iter().any(|m| m.as_str() == Some(message)) || message.is_empty()),
                _ => assert_eq!(message, ""),
            }
            for k in ADDED {
                o.remove(k);
            }
            o
        })
        .collect()
}

#[test]
fn every_fixture_is_rendered_as_journalctl_renders_it() {
    for (name, path) in fixtures() {
        let (r, out) = convert_within(&path, 60);
        let c = r.unwrap();
        let got = lines(&out);
        let want = expected(&name);
        if name == "online-killed" || name == "real-online" {
            assert_eq!(std::fs::read(&path).unwrap()[16], 1, "{name}: left ONLINE (killed, or copied from a running journald)");
        }
        assert_eq!(got.len(), want.len(), "{name}: as many entries as journalctl");
        assert_eq!(c.entries as usize, want.len(), "{name}");
        assert_eq!(c.problem, None, "{name}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{name}: entry {i} differs from journalctl's");
        }
        let rt = |o: &Map<String, Value>| iso_micros(o["__REALTIME_TIMESTAMP"].as_str().unwrap().parse().unwrap());
        assert_eq!(c.first.as_deref(), Some(rt(&want[0]).as_str()));
        assert_eq!(c.last.as_deref(), Some(rt(want.last().unwrap()).as_str()));
        // The fixtures hold what they are meant to test (a real journald's
        // hold what it wrote: images/build-journald-real.py).
        if name.starts_with("real-") {
            continue;
        }
        assert!(
            want.iter().any(|o| o.values().any(|v| v.as_array().is_some_and(|a| a.iter().any(|x| !x.is_u64())))),
            "{name}: a repeated field"
        );
        assert!(
            want.iter().any(|o| o.values().any(|v| v.is_array() && v.as_array().unwrap().iter().all(Value::is_u64))),
            "{name}: a binary field"
        );
    }
}

#[test]
fn a_message_only_inside_a_compressed_field_is_greppable() {
    let mut compressed = 0;
    for (name, path) in fixtures().into_iter().filter(|(n, _)| n != "online-killed" && !n.starts_with("real-")) {
        let raw = std::fs::read(&path).unwrap();
        let in_file = memchr::memmem::find(&raw, NEEDLE.as_bytes()).is_some();
        compressed += usize::from(!in_file);
        let (r, out) = convert_within(&path, 60);
        r.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().filter(|l| l.contains(NEEDLE)).count(), 1, "{name}: the needle is found as text");
    }
    assert!(compressed >= 4, "the needle is compressed in the compressed fixtures ({compressed})");
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn scratch(name: &str, data: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("journald-damaged");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn journalctl_cursors(path: &Path) -> Option<Vec<String>> {
    let out = Command::new("journalctl").args(["--file"]).arg(path).args(["-o", "json", "--all", "--no-pager"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Some(
        text.lines()
            .filter_map(|l| serde_json::from_str::<Map<String, Value>>(l).ok())
            .filter_map(|o| o.get("__CURSOR").and_then(Value::as_str).map(str::to_string))
            .collect(),
    )
}

fn u64_at(d: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(d[off..off + 8].try_into().unwrap())
}

fn fixture(name: &str) -> Vec<u8> {
    let (_, p) = fixtures().into_iter().find(|(n, _)| n == name).unwrap();
    std::fs::read(p).unwrap()
}

/// The entry arrays of the main chain, in order.
fn arrays(d: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut at = u64_at(d, 176) as usize;
    while at != 0 {
        v.push(at);
        at = u64_at(d, at + 16) as usize;
    }
    v
}

/// The main chain's entries whose array, entry object and data objects all
/// end before `cut`: a truncated copy must yield each of them whole.
fn whole_before(d: &[u8], cut: usize) -> Vec<usize> {
    let compact = u32::from_le_bytes(d[12..16].try_into().unwrap()) & 16 != 0;
    let (asz, isz) = if compact { (4, 4) } else { (8, 16) };
    let item = |at: usize, size: usize| {
        if size == 4 { u32::from_le_bytes(d[at..at + 4].try_into().unwrap()) as usize } else { u64_at(d, at) as usize }
    };
    let end = |o: usize| o + u64_at(d, o + 8) as usize;
    let mut v = Vec::new();
    for a in arrays(d).into_iter().filter(|&a| end(a) <= cut) {
        for k in 0..(u64_at(d, a + 8) as usize - 24) / asz {
            let e = item(a + 24 + k * asz, asz);
            if e == 0 || end(e) > cut {
                continue;
            }
            let n = (u64_at(d, e + 8) as usize - 64) / isz;
            if (0..n).all(|i| end(item(e + 64 + i * isz, asz)) <= cut) {
                v.push(e);
            }
        }
    }
    v
}

#[test]
fn truncated_copies_yield_at_least_what_journalctl_shows() {
    let have = Command::new("journalctl").arg("--version").output().is_ok_and(|o| o.status.success());
    if !have {
        println!("journalctl not installed: truncated copies are checked against the entries wholly before the cut only");
    }
    let mut rng = Rng(0x5eed_0015);
    for name in ["compact-zstd", "regular-lz4", "regular-plain-jenkins"] {
        let d = fixture(name);
        let want = expected(name);
        let by_cursor: std::collections::HashMap<&str, &Map<String, Value>> =
            want.iter().map(|o| (o["__CURSOR"].as_str().unwrap(), o)).collect();
        // The hash tables come first (3.7 MB of them in these files): cut
        // among the objects, and once inside the header.
        let chain = arrays(&d);
        let (lo, hi) = (chain[0], chain.last().copied().unwrap() + 4096);
        for k in 0..7 {
            let cut = if k == 0 { 100 } else { lo + rng.below((hi - lo) as u64) as usize };
            let p = scratch(&format!("{name}-cut{k}.journal"), &d[..cut]);
            let (r, out) = convert_within(&p, 30);
            if cut < 208 {
                assert!(r.is_err(), "a cut header is no journal");
                continue;
            }
            let c = r.unwrap();
            let got = lines(&out);
            assert_eq!(got.len() as u64, c.entries);
            assert!(c.problem.as_deref().is_some_and(|p| p.contains("truncated")), "{name} cut at {cut}: {:?}", c.problem);
            let whole = whole_before(&d, cut).len();
            let mut complete = 0;
            for g in &got {
                let w = by_cursor[g["__CURSOR"].as_str().unwrap()];
                assert!(g.keys().all(|k| w.contains_key(k)), "{name} cut at {cut}: fields journalctl does not have");
                complete += usize::from(g == w);
            }
            assert!(complete >= whole, "{name} cut at {cut}: {complete} whole entries, {whole} are before the cut");
            if have && let Some(theirs) = journalctl_cursors(&p) {
                let ours: std::collections::HashSet<_> = got.iter().map(|o| o["__CURSOR"].as_str().unwrap().to_string()).collect();
                for cursor in &theirs {
                    assert!(ours.contains(cursor), "{name} cut at {cut}: journalctl shows {cursor}, snapsift does not");
                }
                println!(
                    "{name} cut at {cut}: snapsift {} entries ({complete} whole, {whole} wholly before the cut), journalctl {}",
                    got.len(),
                    theirs.len()
                );
            }
        }
    }
}

#[test]
fn bit_flips_never_panic_or_hang() {
    let mut rng = Rng(0xb17_f11b5);
    for name in ["compact-xz", "regular-zstd", "compact-lz4"] {
        let d = fixture(name);
        let end = arrays(&d).last().copied().unwrap() + 4096;
        for k in 0..8 {
            let mut m = d.clone();
            for _ in 0..1 + rng.below(200) {
                // Mostly the header and object headers' first bytes matter;
                // flip anywhere in the used part.
                let at = rng.below(end as u64) as usize;
                m[at] ^= 1 << rng.below(8);
            }
            let p = scratch(&format!("{name}-flip{k}.journal"), &m);
            let (r, out) = convert_within(&p, 30);
            if let Ok(c) = r {
                let text = std::str::from_utf8(&out).unwrap();
                assert_eq!(text.lines().count() as u64, c.entries);
                for l in text.lines() {
                    serde_json::from_str::<Map<String, Value>>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                }
            }
        }
    }
}

#[test]
fn a_looping_or_escaping_entry_array_chain_ends_the_reading() {
    let d = fixture("compact-zstd");
    let chain = arrays(&d);
    assert!(chain.len() >= 6, "the entries chain {} arrays deep", chain.len());
    // The last array points back at the first: a loop.
    let mut m = d.clone();
    m[chain.last().unwrap() + 16..][..8].copy_from_slice(&(chain[0] as u64).to_le_bytes());
    let (r, out) = convert_within(&scratch("loop.journal", &m), 30);
    let c = r.unwrap();
    assert_eq!(c.entries, 1500, "every entry, once");
    assert_eq!(lines(&out).len(), 1500);
    assert!(c.problem.as_deref().unwrap().contains("loop"), "{:?}", c.problem);
    // The third array's next is past the end of the file.
    let mut m = d.clone();
    m[chain[2] + 16..][..8].copy_from_slice(&((d.len() as u64 + 4096) & !7).to_le_bytes());
    let (r, _) = convert_within(&scratch("escape.journal", &m), 30);
    let c = r.unwrap();
    let items = |a: usize| (u64_at(&d, a + 8) - 24) / 4;
    assert_eq!(c.entries, items(chain[0]) + items(chain[1]) + items(chain[2]), "the entries of the first three arrays");
    assert!(c.problem.as_deref().unwrap().contains("past the end"), "{:?}", c.problem);
    // A header entry array offset that is not an entry array.
    let mut m = d.clone();
    m[176..184].copy_from_slice(&8u64.to_le_bytes());
    let (r, _) = convert_within(&scratch("noarray.journal", &m), 30);
    assert_eq!(r.unwrap().entries, 0);
}

/// The data objects (offset, flags, size) of a journal, by a linear walk.
fn data_objects(d: &[u8]) -> Vec<(usize, u8, usize)> {
    let mut v = Vec::new();
    let mut at = u64_at(d, 88) as usize;
    let end = at + u64_at(d, 96) as usize;
    while at + 16 <= end.min(d.len()) {
        let size = u64_at(d, at + 8) as usize;
        if size == 0 {
            break;
        }
        if d[at] == 1 {
            v.push((at, d[at + 1], size));
        }
        at += size.div_ceil(8) * 8;
    }
    v
}

#[test]
fn a_decompression_bomb_is_cut_at_the_cap() {
    // ZSTD: BOMB= and 20 MiB of zeros, in the largest compressed object.
    let d = fixture("compact-zstd");
    let (at, flags, size) = data_objects(&d).into_iter().filter(|o| o.1 == 4).max_by_key(|o| o.2).unwrap();
    assert_eq!(flags, 4);
    let mut plain = b"BOMB=".to_vec();
    plain.resize(FIELD_MAX + (4 << 20), 0);
    let bomb = ruzstd::encoding::compress_to_vec(&plain[..], ruzstd::encoding::CompressionLevel::Fastest);
    assert!(bomb.len() + 72 <= size, "the bomb ({} bytes) fits the object ({size})", bomb.len());
    let mut m = d.clone();
    m[at + 72..at + 72 + bomb.len()].copy_from_slice(&bomb);
    let (r, out) = convert_within(&scratch("bomb-zstd.journal", &m), 60);
    let c = r.unwrap();
    assert_eq!(c.entries, 1500);
    assert!(c.problem.as_deref().unwrap().contains("BOMB"), "{:?}", c.problem);
    let got = lines(&out);
    assert_eq!(got.iter().filter(|o| o.get("BOMB") == Some(&Value::Null)).count(), 1, "the bomb is null");

    // LZ4: a size prefix that claims 1 TiB.
    let d = fixture("compact-lz4");
    let (at, _, _) = data_objects(&d).into_iter().filter(|o| o.1 == 2).max_by_key(|o| o.2).unwrap();
    let mut m = d.clone();
    m[at + 72..at + 80].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let (r, out) = convert_within(&scratch("bomb-lz4.journal", &m), 30);
    let c = r.unwrap();
    assert_eq!(c.entries, 1500);
    assert!(c.problem.as_deref().unwrap().contains("over 16 MiB"), "{:?}", c.problem);
    assert_eq!(lines(&out).len(), 1500);
    // Memory stayed bounded (the whole test process, every test at once).
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    assert!(u.ru_maxrss < 1 << 20, "peak RSS {} KiB", u.ru_maxrss);
}

#[test]
fn a_lying_hash_table_changes_nothing() {
    let d = fixture("regular-zstd");
    let (ht, hs) = (u64_at(&d, 104) as usize, u64_at(&d, 112) as usize);
    let mut m = d.clone();
    m[ht..ht + hs].iter_mut().for_each(|b| *b = 0xff);
    let (_, clean) = fixtures().into_iter().find(|(n, _)| n == "regular-zstd").unwrap();
    let (a, out_a) = convert_within(&clean, 30);
    let (b, out_b) = convert_within(&scratch("hash.journal", &m), 30);
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(out_a, out_b);
}

#[test]
fn not_a_journal_is_an_error() {
    let p = scratch("empty.journal", b"");
    assert!(convert_within(&p, 5).0.is_err());
    let p = scratch("other.journal", &[b'x'; 4096]);
    assert!(convert_within(&p, 5).0.is_err());
}
