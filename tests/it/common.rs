//! Shared helpers for the integration tests: fixture images, running the
//! binary, reading manifests and the oracle listings in images/expected.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Decompresses `src` to `dst` unless `dst` is already newer (kept in
/// Cargo's target tmp dir across runs; written under a temporary name and
/// renamed, so test binaries running at once never see half a file).
pub fn unpack(src: &Path, dst: &Path) {
    let fresh = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(d), Some(s)) = (fresh(dst), fresh(src))
        && d >= s
    {
        return;
    }
    let tmp = dst.with_extension(format!("part{}", std::process::id()));
    let mut out = std::fs::File::create(&tmp).unwrap();
    std::io::copy(&mut flate2::read::MultiGzDecoder::new(std::fs::File::open(src).unwrap()), &mut out).unwrap();
    drop(out);
    std::fs::rename(&tmp, dst).unwrap();
}

/// The images/ fixtures, decompressed once into Cargo's target tmp dir
/// (reused by later runs; a static TempDir would never be removed).
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(repo().join("images")).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if let Some(stem) = name.strip_suffix(".gz") {
                unpack(&p, &d.join(stem));
            }
        }
        d
    })
}

/// The uncompressed image file to pass to snapsift for fixture `name`.
pub fn image(name: &str) -> PathBuf {
    let dir = fixtures();
    let single = dir.join(format!("{name}.img"));
    if single.exists() { single } else { dir.join(format!("{name}.001")) }
}

pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the snapsift binary, killing it (and failing) after `limit`.
pub fn snapsift_with_limit(args: &[&std::ffi::OsStr], limit: Duration) -> Output {
    snapsift_env(args, &[], limit)
}

/// [`snapsift_with_limit`] with environment variables set for the child
/// (a value of `None` removes the variable).
pub fn snapsift_env(args: &[&std::ffi::OsStr], env: &[(&str, Option<&str>)], limit: Duration) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_snapsift"));
    for (k, v) in env {
        match v {
            Some(v) => command.env(k, v),
            None => command.env_remove(k),
        };
    }
    let mut child = command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).ok();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).ok();
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            panic!("snapsift {args:?} still running after {limit:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { code: status.code(), stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() }
}

pub fn snapsift(args: &[&std::ffi::OsStr]) -> Output {
    snapsift_with_limit(args, Duration::from_secs(300))
}

/// `snapsift extract <evidence…> -o <case> --quiet`
pub fn extract(evidence: &[&Path], case: &Path) -> Output {
    extract_with(evidence, case, &[])
}

/// [`extract`] with more options (`--host`, `--targets-file` …).
pub fn extract_with(evidence: &[&Path], case: &Path, options: &[&std::ffi::OsStr]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["extract".as_ref()];
    args.extend(evidence.iter().map(|p| p.as_os_str()));
    args.extend(["-o".as_ref(), case.as_os_str(), "--quiet".as_ref()]);
    args.extend(options);
    snapsift(&args)
}

/// A manifest (or any CSV snapsift writes) read back with the crate's own
/// reader: rows as column → value.
pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    snapsift::collect::manifest::parse(&text).into_iter().map(|r| r.into_iter().collect()).collect()
}

/// The run folders of a case, oldest first.
pub fn runs(case: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(case.join("snapsift")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    v.sort();
    v
}

pub fn manifest(case: &Path) -> Vec<HashMap<String, String>> {
    runs(case).iter().flat_map(|r| read_csv(&r.join("manifest.csv"))).collect()
}

pub fn run_json(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap()
}

/// One row of images/expected/<image>.tsv (made by sleuthkit/debugfs).
#[derive(Clone, Debug)]
pub struct Expected {
    /// The volume: its byte offset in the disk, or `vg-lv` for an LVM LV.
    pub offset: String,
    pub path: String,
    pub kind: String,
    pub size: u64,
    pub sha256: String,
    pub mtime: (i64, u32),
    pub target: String,
    pub extract: bool,
}

pub fn tsv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split('\t').map(String::from).collect();
    lines.filter(|l| !l.is_empty()).map(|l| header.iter().cloned().zip(l.split('\t').map(String::from)).collect()).collect()
}

pub fn expected(image: &str) -> Vec<Expected> {
    tsv(&repo().join(format!("images/expected/{image}.tsv")))
        .into_iter()
        .map(|r| {
            let (s, ns) = r["mtime"].split_once('.').unwrap();
            Expected {
                offset: r["offset"].clone(),
                path: r["path"].clone(),
                kind: r["type"].clone(),
                size: r["size"].parse().unwrap(),
                sha256: r["sha256"].clone(),
                mtime: (s.parse().unwrap(), ns.parse().unwrap()),
                target: r["target"].clone(),
                extract: r["expect"] == "extract",
            }
        })
        .collect()
}

pub fn sha256_file(p: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(p).unwrap();
    std::io::copy(&mut f, &mut h).unwrap();
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Modification time of a file on the analysis host as (secs, nanos).
pub fn mtime_of(p: &Path) -> (i64, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).unwrap();
    (m.mtime(), m.mtime_nsec() as u32)
}

/// The key a listing uses for a volume in run.json: its byte offset, or
/// its id (`vg0-var_log`) for a logical volume.
pub fn volume_key(v: &serde_json::Value) -> String {
    if v["lv"].is_string() { v["id"].as_str().unwrap().to_string() } else { v["offset"].as_u64().unwrap_or(0).to_string() }
}

/// Volume id (`p1`, `disk`, `vg0-root`) → listing key, from run.json.
pub fn volume_offsets(run: &Path) -> HashMap<String, String> {
    let j = run_json(run);
    let mut m = HashMap::new();
    for ev in j["evidence"].as_array().unwrap() {
        for v in ev["volumes"].as_array().unwrap() {
            m.insert(v["id"].as_str().unwrap().to_string(), volume_key(v));
        }
    }
    m
}

/// Deterministic xorshift, so a failure can be replayed from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every image's volumes: images/expected/volumes*.tsv (one file per image
/// builder), rows `image offset size fstype label os_root hostname …`.
pub fn volumes() -> Vec<HashMap<String, String>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("images/expected"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("volumes") && n.ends_with(".tsv")
        })
        .collect();
    files.sort();
    files.iter().flat_map(|f| tsv(f)).collect()
}

/// How much of a long campaign to run: `var` when set (a number), else
/// `full` when `SNAPSIFT_FULL_TESTS=1` (what `.ci/run` sets), else `quick`
/// (what a plain `cargo test` runs, so that it stays a few minutes). Said on
/// stderr, so a failing run shows how to repeat it.
pub fn campaign(var: &str, quick: u64, full: u64) -> u64 {
    let full_run = std::env::var("SNAPSIFT_FULL_TESTS").is_ok_and(|v| v == "1");
    let n = std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(if full_run { full } else { quick });
    eprintln!("campaign {var}={n} (SNAPSIFT_FULL_TESTS=1 runs {full}; set {var} to choose)");
    n
}

/// No image path extracted twice from one volume, nothing renamed `__2`.
pub fn each_file_once(case: &Path) {
    let rows = manifest(case);
    let mut seen = std::collections::HashSet::new();
    for r in rows.iter().filter(|r| r["type"] == "file") {
        assert!(seen.insert((r["evidence"].clone(), r["volume"].clone(), r["image_path"].clone())), "twice: {r:?}");
        assert!(!r["output_path"].contains("__2"), "{r:?}");
    }
    assert!(!seen.is_empty());
}

/// Walks and reads a whole (damaged) filesystem through the trait, with
/// bounds on what it asks for, ignoring errors: only panics and hangs fail.
/// How many files it could open.
pub fn survive_walk(fs: &dyn snapsift::fs::FileSystem) -> usize {
    use snapsift::fs::FileKind;
    let mut stack = vec![(fs.root(), 0)];
    let mut seen = std::collections::HashSet::new();
    let mut files = 0;
    while let Some((dir, depth)) = stack.pop() {
        if depth > 32 || !seen.insert(dir) || seen.len() > 20_000 {
            continue;
        }
        let Ok((entries, _)) = fs.read_dir_checked(dir) else { continue };
        for e in entries {
            let _ = fs.fold_case(&e.name);
            let _ = fs.xattrs(e.node);
            let _ = fs.compression(e.node);
            let Ok(m) = fs.metadata(e.node) else { continue };
            match m.kind() {
                FileKind::Dir => stack.push((e.node, depth + 1)),
                FileKind::Symlink => {
                    let _ = fs.read_link(e.node);
                }
                _ => {
                    if let Ok(r) = fs.open(e.node) {
                        let _ = std::io::copy(&mut r.take(16 << 20), &mut std::io::sink());
                        files += 1;
                    }
                }
            }
        }
    }
    let _ = fs.warnings();
    files
}

/// A loopback server for the tests that read evidence over HTTP: each
/// connection handled on a thread of its own by `handle`, which gets the
/// requests one after another (HTTP/1.1 keep-alive) through
/// [`next_request`]. Returns the address it listens on.
pub fn listen(handle: impl Fn(std::net::TcpStream) -> std::io::Result<()> + Send + Sync + 'static) -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let handle = std::sync::Arc::new(handle);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let handle = handle.clone();
            std::thread::spawn(move || {
                let _ = handle(s);
            });
        }
    });
    addr
}

/// The next request on a connection: its request line, and its headers
/// lower-cased (its body, if any, read and dropped); `None` once closed.
pub fn next_request(r: &mut impl std::io::BufRead) -> std::io::Result<Option<(String, Vec<String>)>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        headers.push(h);
    }
    let body = headers.iter().find_map(|h| h.strip_prefix("content-length:")).and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    std::io::copy(&mut r.take(body), &mut std::io::sink())?;
    Ok(Some((line.trim_end().to_string(), headers)))
}

/// A Python server (moto's, in server mode) running `script` with a free
/// loopback port as its argument, stopped when dropped.
pub struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto started with `script` (it takes the port as `sys.argv[1]`), once it
/// listens; None, said why under `test`'s name, when moto or boto3 is not
/// installed.
pub fn moto(test: &str, script: &str) -> Option<Moto> {
    let probe = std::process::Command::new("python3").args(["-c", "import moto.server, boto3"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("{test} skipped: moto[server] and boto3 are not installed (pip install 'moto[server]')");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
    let up = (0..300).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "moto did not start");
    Some(server)
}
