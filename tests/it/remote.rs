//! Evidence read in place over HTTP (issue #18, the `https://` path): a
//! server started by the test on the loopback interface serves committed
//! images with byte ranges, and misbehaves on purpose (throttling, cut
//! bodies, `Range` ignored, a link that expires mid-run). What the grep
//! folder gets must be what extracting the same image from a file gives
//! (manifest hashes), the location's signature must appear nowhere (case
//! folder, run.json, manifest, messages), and a failure is an error naming
//! the evidence, never zeros.

use crate::common::*;
use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

const SECRET: &str = "sig=Zm9vYmFyU0VDUkVU";

#[derive(Clone, Copy)]
enum Mode {
    Ranges,
    /// Every 4th request: 503 with Retry-After 0; every 5th: a body cut in half.
    Flaky,
    /// A plain server: 200 and the whole object whatever the request.
    IgnoresRange,
    /// 403 from request N on (a SAS link that expires mid-run).
    ExpiresAfter(usize),
    /// An Azure page blob: `x-ms-blob-type: PageBlob`, and `comp=pagelist`
    /// lists the 512-byte pages that are not all zeros, 50 ranges an
    /// answer (paged by marker); with `false`, the list is refused (403,
    /// a link without that permission).
    PageBlob(bool),
}

struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
    /// Every byte range asked for, `[start, end]`.
    ranges: Arc<std::sync::Mutex<Vec<(u64, u64)>>>,
}

fn serve(data: Vec<u8>, mode: Mode) -> Server {
    let requests = Arc::new(AtomicUsize::new(0));
    let ranges = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (data, count, asked) = (Arc::new(data), requests.clone(), ranges.clone());
    let addr = listen(move |s| handle(s, &data, mode, &count, &asked));
    let url = format!("http://{addr}/disks/vm-01.img?sv=2024-05-04&sr=b&{SECRET}");
    Server { url, requests, ranges }
}

/// The pages of `data` that are not all zeros, as inclusive byte ranges
/// (adjacent pages joined), as Azure lists a page blob's written pages.
fn written_pages(data: &[u8]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, page) in data.chunks(512).enumerate() {
        if page.iter().all(|&b| b == 0) {
            continue;
        }
        let (a, b) = (i as u64 * 512, i as u64 * 512 + page.len() as u64 - 1);
        match out.last_mut() {
            Some(last) if last.1 + 1 == a => last.1 = b,
            _ => out.push((a, b)),
        }
    }
    out
}

/// One page of a `Get Page Ranges` answer: 50 ranges from the one the
/// marker (an index) names.
fn page_list(data: &[u8], line: &str) -> String {
    let pages = written_pages(data);
    let from: usize =
        line.split("marker=").nth(1).and_then(|m| m.split([' ', '&']).next()?.strip_prefix("at%21")?.parse().ok()).unwrap_or(0);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><PageList>");
    for (a, b) in pages.iter().skip(from).take(50) {
        xml.push_str(&format!("<PageRange><Start>{a}</Start><End>{b}</End></PageRange>"));
    }
    if from + 50 < pages.len() {
        xml.push_str(&format!("<NextMarker>at!{}</NextMarker>", from + 50));
    }
    xml + "</PageList>"
}

/// HTTP/1.1 with keep-alive: one request after another on a connection.
fn handle(s: TcpStream, data: &[u8], mode: Mode, count: &AtomicUsize, asked: &std::sync::Mutex<Vec<(u64, u64)>>) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    while let Some((line, headers)) = next_request(&mut r)? {
        let range = headers.iter().find_map(|h| h.strip_prefix("range: bytes=")).map(|v| {
            let (a, b) = v.split_once('-').unwrap();
            (a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap())
        });
        let n = count.fetch_add(1, SeqCst) + 1;
        let len = data.len() as u64;
        if line.contains("comp=pagelist") {
            match mode {
                Mode::PageBlob(true) => {
                    let xml = page_list(data, &line);
                    write!(w, "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{xml}", xml.len())?;
                }
                _ => write!(w, "HTTP/1.1 403 This request is not authorized\r\nContent-Length: 0\r\n\r\n")?,
            }
            continue;
        }
        if let Some(r) = range {
            asked.lock().unwrap().push(r);
        }
        let blob_type = if matches!(mode, Mode::PageBlob(_)) { "x-ms-blob-type: PageBlob\r\n" } else { "" };
        match mode {
            Mode::ExpiresAfter(k) if n > k => {
                write!(w, "HTTP/1.1 403 Server failed to authenticate the request\r\nContent-Length: 0\r\n\r\n")?;
                continue;
            }
            Mode::Flaky if n.is_multiple_of(4) => {
                write!(w, "HTTP/1.1 503 Server Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n")?;
                continue;
            }
            Mode::IgnoresRange => {
                write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")?;
                w.write_all(data)?;
                continue;
            }
            _ => {}
        }
        let (a, b) = range.unwrap();
        let b = b.min(len - 1);
        let body = &data[a as usize..=b as usize];
        write!(
            w,
            "HTTP/1.1 206 Partial Content\r\n{blob_type}Content-Range: bytes {a}-{b}/{len}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        if matches!(mode, Mode::Flaky) && n.is_multiple_of(5) && body.len() > 1 {
            // Half the body, then the connection drops.
            w.write_all(&body[..body.len() / 2])?;
            return Ok(());
        }
        w.write_all(body)?;
    }
    Ok(())
}

/// What the grep folder got: (volume, path, status, sha256) of every file row.
pub(crate) fn files(case: &Path) -> BTreeSet<(String, String, String, String)> {
    manifest(case)
        .into_iter()
        .filter(|r| r["type"] == "file")
        .map(|r| (r["volume"].clone(), r["image_path"].clone(), r["status"].clone(), r["sha256"].clone()))
        .collect()
}

/// No file in the case folder holds `secret` (nor any file's name).
pub(crate) fn no_secret_in(case: &Path, secret: &str) {
    let mut stack = vec![case.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            assert!(!p.to_string_lossy().contains(secret), "{}", p.display());
            if p.is_dir() {
                stack.push(p);
            } else {
                seen += 1;
                let b = std::fs::read(&p).unwrap();
                assert!(!b.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is in {}", p.display());
            }
        }
    }
    assert!(seen > 3);
}

/// `extract` without `--quiet`: the messages are what is checked.
pub(crate) fn extract_loud(evidence: &str, case: &Path) -> Output {
    snapsift(&["extract".as_ref(), evidence.as_ref(), "-o".as_ref(), case.as_os_str()])
}

pub(crate) fn image_bytes(name: &str) -> Vec<u8> {
    std::fs::read(image(name)).unwrap()
}

#[test]
fn a_location_reads_as_the_same_image_from_a_file() {
    let local = tempfile::tempdir().unwrap();
    let out = extract(&[&image("linux-gpt")], local.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let want = files(local.path());
    let size = image_bytes("linux-gpt").len() as u64;
    for mode in [Mode::Ranges, Mode::Flaky] {
        let server = serve(image_bytes("linux-gpt"), mode);
        let case = tempfile::tempdir().unwrap();
        let out = extract_loud(&server.url, case.path());
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(files(case.path()), want);
        assert!(!out.stderr.contains("Zm9vYmFy") && !out.stdout.contains("Zm9vYmFy"), "{}", out.stderr);
        assert!(out.stderr.contains("read in place"), "{}", out.stderr);
        no_secret_in(case.path(), "Zm9vYmFy");
        let j = run_json(&runs(case.path())[0]);
        let remote = &j["evidence"][0]["remote"];
        assert_eq!(remote["size"].as_u64(), Some(size));
        let fetched = remote["bytes_fetched"].as_u64().unwrap();
        // Only what is read: the tables, metadata and the files (not the
        // whole 48 MiB disk).
        assert!(fetched > 0 && fetched < size / 2, "{fetched} of {size}");
        assert!(remote["requests"].as_u64().unwrap() as usize <= server.requests.load(SeqCst));
        if matches!(mode, Mode::Flaky) {
            assert!(remote["retries"].as_u64().unwrap() > 0, "{remote}");
        }
        assert!(j["evidence"][0]["path"].as_str().unwrap().contains("sig=REDACTED"), "{}", j["evidence"][0]["path"]);
    }
}

/// Container formats work on a location as on a file: the same volumes and
/// files as extracting the file.
#[test]
fn disk_formats_read_in_place() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["plain.qcow2", "dynamic.vhd", "fixed.vhd", "default.vhdx", "sparse.vmdk"] {
        let file = dir.path().join(name);
        unpack(&repo().join(format!("images/formats/{name}.gz")), &file);
        let local = tempfile::tempdir().unwrap();
        let out = extract(&[&file], local.path());
        assert!(matches!(out.code, Some(0 | 1)), "{name}: {}", out.stderr);
        let server = serve(std::fs::read(&file).unwrap(), Mode::Ranges);
        let case = tempfile::tempdir().unwrap();
        let remote = extract(&[Path::new(&server.url)], case.path());
        assert_eq!(remote.code, out.code, "{name}: {}", remote.stderr);
        let want = files(local.path());
        assert!(!want.is_empty(), "{name}");
        assert_eq!(files(case.path()), want, "{name}");
    }
}

/// `--hash-evidence` would download the whole disk: refused for a location
/// with what to do, and done when asked for with `=all` (the digest that
/// of the bytes served, the signature nowhere).
#[test]
fn hashing_a_location_is_refused_unless_asked_for_all() {
    use sha2::Digest;
    let data = image_bytes("linux-gpt");
    let want = format!("{:x}", sha2::Sha256::digest(&data));
    let server = serve(data, Mode::Ranges);
    let case = tempfile::tempdir().unwrap();
    let out = extract_with(&[Path::new(&server.url)], case.path(), &["--hash-evidence".as_ref()]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("downloading the whole disk") && out.stderr.contains("--hash-evidence=all"), "{}", out.stderr);
    assert!(!out.stderr.contains("Zm9vYmFy"), "{}", out.stderr);
    let out = extract_with(&[Path::new(&server.url)], case.path(), &["--hash-evidence=all".as_ref()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    no_secret_in(case.path(), "Zm9vYmFy");
    let j = run_json(&runs(case.path())[0]);
    let digests = j["evidence"][0]["sha256"].as_object().unwrap();
    assert_eq!(digests.len(), 1, "{digests:?}");
    let (name, digest) = digests.iter().next().unwrap();
    assert!(name.contains("sig=REDACTED"), "{name}");
    assert_eq!(digest.as_str(), Some(want.as_str()));
    // Every byte was fetched (once the cache let it go, maybe twice).
    let remote = &j["evidence"][0]["remote"];
    assert!(remote["bytes_fetched"].as_u64().unwrap() >= remote["size"].as_u64().unwrap(), "{remote}");
}

#[test]
fn a_server_that_ignores_ranges_is_refused_with_what_to_do() {
    let server = serve(image_bytes("linux-gpt"), Mode::IgnoresRange);
    let case = tempfile::tempdir().unwrap();
    let out = extract_loud(&server.url, case.path());
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("ignores byte-range requests") && out.stderr.contains("download it first"), "{}", out.stderr);
    assert!(!out.stderr.contains("Zm9vYmFy"), "{}", out.stderr);
}

/// A link that expires mid-run: the files it could not fetch are errors
/// saying so, never zeros; the run ends with a failing status, no panic.
#[test]
fn a_link_that_expires_mid_run_is_an_error_not_zeros() {
    let server = serve(image_bytes("linux-gpt"), Mode::ExpiresAfter(3));
    let case = tempfile::tempdir().unwrap();
    let out = extract_loud(&server.url, case.path());
    assert!(matches!(out.code, Some(1 | 2)), "{:?}: {}", out.code, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(out.stderr.contains("expired") || out.stderr.contains("access denied"), "{}", out.stderr);
    assert!(!out.stderr.contains("Zm9vYmFy"), "{}", out.stderr);
    if case.path().join("snapsift").exists() {
        for r in manifest(case.path()).iter().filter(|r| r["type"] == "file" && r["status"] == "ok") {
            // What was written before the link expired is whole.
            let f = case.path().join(&r["output_path"]);
            assert_eq!(sha256_file(&f), r["sha256"], "{}", r["image_path"]);
        }
        let failed = manifest(case.path()).iter().filter(|r| r["status"] == "error" || r["status"] == "partial").count();
        assert!(failed > 0 || out.code == Some(2));
    }
}

#[test]
fn locations_of_other_kinds_say_what_to_do() {
    let case = tempfile::tempdir().unwrap();
    let out = extract_loud("az://account/container/disk.vhd", case.path());
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("not read yet") && out.stderr.contains("https://"), "{}", out.stderr);
    // A gzip image cannot be read at random offsets.
    let server = serve(std::fs::read(repo().join("images/linux-gpt.img.gz")).unwrap(), Mode::Ranges);
    let out = extract_loud(&server.url, case.path());
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("cannot be read in place") && !out.stderr.contains("Zm9vYmFy"), "{}", out.stderr);
    // Nothing listens: a clear error after the retries.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/x.img?{SECRET}", l.local_addr().unwrap());
    drop(l);
    let out = snapsift_with_limit(&["inspect".as_ref(), dead.as_ref()], std::time::Duration::from_secs(120));
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("x.img") && !out.stderr.contains("Zm9vYmFy"), "{}", out.stderr);
}

/// An Azure page blob (a disk export link): only the pages its list says
/// were written are fetched (the rest is zeros, as the service would send),
/// the list is read page by page of its answer, and the grep folder is the
/// file's. A link that may not list pages is read whole, as any other.
#[test]
fn an_azure_page_blob_is_fetched_only_where_written() {
    // A disk exported at 256 MiB of which the image's 48 MiB were written.
    let mut data = image_bytes("linux-gpt");
    data.resize(256 << 20, 0);
    let written = written_pages(&data);
    let written_bytes: u64 = written.iter().map(|(a, b)| b - a + 1).sum();
    assert!(written.len() > 100 && written_bytes < data.len() as u64 / 4, "a sparse disk, listed over several answers");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vm-01.img");
    std::fs::write(&file, &data).unwrap();
    let local = tempfile::tempdir().unwrap();
    let out = extract(&[&file], local.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let want = files(local.path());
    let mut fetched = Vec::new();
    for listed in [true, false] {
        let server = serve(data.clone(), Mode::PageBlob(listed));
        let case = tempfile::tempdir().unwrap();
        let out = extract_loud(&server.url, case.path());
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(files(case.path()), want, "page list {listed}");
        no_secret_in(case.path(), "Zm9vYmFy");
        let remote = run_json(&runs(case.path())[0])["evidence"][0]["remote"].clone();
        fetched.push(remote["bytes_fetched"].as_u64().unwrap());
        if listed {
            assert_eq!(remote["page_blob_written"].as_u64(), Some(written_bytes), "{remote}");
            // After the first byte, no range lies wholly where nothing was written.
            for &(a, b) in server.ranges.lock().unwrap().iter().skip(1) {
                assert!(written.iter().any(|&(s, e)| s <= b && a <= e), "bytes {a}-{b} were never written, yet fetched");
            }
        } else {
            assert!(remote["page_blob_written"].is_null(), "{remote}");
        }
    }
    assert!(fetched[0] < fetched[1], "{fetched:?}: the page list saves nothing");
}
