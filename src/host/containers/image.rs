//! Container image tarballs given as evidence: `docker save` archives
//! (`manifest.json`: `RepoTags`, `Layers` bottom first) and OCI image
//! layouts in a tar (`oci-layout`, `index.json` → manifest → layer blobs,
//! an index of platforms resolved to linux/amd64 or the first). The image
//! becomes a host whose root is the union of its layers, whiteouts applied.
//!
//! The outer archive is indexed in place (`fs::tarlayer`); uncompressed
//! layers are read in place too. gzip- and zstd-compressed layers are
//! inflated once into an unlinked sparse temporary file, bounded by
//! `MAX_LAYER` (a hostile layer cannot fill the disk with zeros: holes).

use crate::evidence::{RawFile, ReadAt, Slice, Source};
use crate::fs::overlay::{Layer, Overlay, Whiteouts};
use crate::fs::tarlayer::TarLayer;
use crate::fs::{FileSystem, lookup, read_small};
use anyhow::{Context, Result, bail};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

/// JSON documents of an image are small; bounded before reading.
const MAX_JSON: u64 = 16 << 20;
/// An inflated layer larger than this, or than `MAX_RATIO` times its
/// compressed size (and 1 GiB), is refused: real layers compress a few
/// times, a decompression bomb thousands of times.
const MAX_LAYER: u64 = 256 << 30;
const MAX_RATIO: u64 = 1000;
const MAX_LAYERS: usize = 512;

pub struct Image {
    /// `docker.io/snapsift/app:1.0`, or the config digest when untagged.
    pub reference: String,
    /// `docker save archive`, `OCI image layout archive`.
    pub format: &'static str,
    pub root: Arc<dyn FileSystem>,
    pub layers: Vec<String>,
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

/// Whether `path` is an uncompressed tar holding an image (not a disk).
pub fn sniff(path: &Path) -> Option<Arc<TarLayer>> {
    let src: Source = Arc::new(RawFile::open(path).ok()?);
    let mut h = [0u8; 512];
    if src.read_at(0, &mut h).ok()? < 512 || &h[257..262] != b"ustar" {
        return None;
    }
    let outer = TarLayer::open(src).ok()?;
    let has = |p: &[u8]| lookup(&outer, p).ok().flatten().is_some();
    (has(b"/manifest.json") || has(b"/index.json")).then(|| Arc::new(outer))
}

fn json(outer: &TarLayer, path: &str) -> Result<serde_json::Value> {
    let node = lookup(outer, path.as_bytes())?.with_context(|| format!("{path} is missing"))?;
    let b = read_small(outer, node, MAX_JSON).with_context(|| format!("{path} is unreadable"))?;
    serde_json::from_slice(&b).with_context(|| format!("{path} is not valid JSON"))
}

/// A layer member: its compression from the media type or its magic.
fn layer_source(outer: &TarLayer, path: &str, temp_dir: &Path) -> Result<Source> {
    let node = lookup(outer, path.as_bytes())?.with_context(|| format!("layer {path} is missing from the archive"))?;
    let (off, len) = outer.content_range(node).with_context(|| format!("layer {path} is not a regular file"))?;
    let member: Source = Arc::new(Slice::new(outer.source().clone(), off, len));
    let mut magic = [0u8; 4];
    let n = member.read_at(0, &mut magic)?;
    let reader: Box<dyn Read> = match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(Slice::new(outer.source().clone(), off, len).reader())),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(
            ruzstd::decoding::StreamingDecoder::new(Slice::new(outer.source().clone(), off, len).reader())
                .map_err(|e| anyhow::anyhow!("layer {path}: zstd: {e}"))?,
        ),
        _ => return Ok(member),
    };
    let limit = len.saturating_mul(MAX_RATIO).clamp(1 << 30, MAX_LAYER);
    inflate(reader, temp_dir, limit).with_context(|| format!("layer {path} could not be decompressed"))
}

/// Writes a stream into an unlinked sparse file and returns it as a source.
fn inflate(mut r: Box<dyn Read>, temp_dir: &Path, limit: u64) -> Result<Source> {
    std::fs::create_dir_all(temp_dir)?;
    let tmp = tempfile_in(temp_dir)?;
    let mut f = tmp;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context(format!("damaged after {total} bytes")),
        };
        total += n as u64;
        if total > limit {
            bail!("it inflates to more than {limit} bytes (a decompression bomb?)");
        }
        if buf[..n].iter().all(|&b| b == 0) {
            f.seek(SeekFrom::Current(n as i64))?;
        } else {
            f.write_all(&buf[..n])?;
        }
    }
    f.set_len(total)?;
    Ok(Arc::new(RawFile::from_file(f)?))
}

/// A new file in `dir`, already unlinked: it vanishes with the run.
fn tempfile_in(dir: &Path) -> Result<std::fs::File> {
    for n in 0..1000u32 {
        let p = dir.join(format!(".snapsift-layer-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&p) {
            Ok(f) => {
                std::fs::remove_file(&p)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create a temporary file in {}", dir.display())),
        }
    }
    bail!("cannot create a temporary file in {}", dir.display())
}

/// Opens the image in an archive found by [`sniff`].
pub fn open(outer: Arc<TarLayer>, temp_dir: &Path) -> Result<Image> {
    let (reference, format, paths) = if lookup(outer.as_ref(), b"/manifest.json")?.is_some() { docker_save(&outer)? } else { oci(&outer)? };
    if paths.len() > MAX_LAYERS {
        bail!("the image has {} layers (more than {MAX_LAYERS})", paths.len());
    }
    let mut layers = Vec::new();
    let mut warnings = Vec::new();
    let mut names = Vec::new();
    // Bottom first in the manifests; the union wants the top first.
    for (i, p) in paths.iter().enumerate().rev() {
        let name = format!("layer {} ({})", i + 1, short(p));
        match layer_source(&outer, p, temp_dir).and_then(|s| Ok(TarLayer::open(s)?)) {
            Ok(t) => {
                warnings.extend(t.warnings().into_iter().map(|w| format!("{name}: {w}")));
                layers.push(Layer { fs: Arc::new(t), root: 0, name: name.clone(), whiteouts: Whiteouts::Oci });
            }
            Err(e) => warnings.push(format!("{name}: {e:#}; its files are not shown")),
        }
        names.push(name);
    }
    let root: Arc<dyn FileSystem> = Arc::new(Overlay::new(layers).context("no layer of the image could be read")?);
    let notes = vec![format!("image {reference}, {} layers", paths.len())];
    Ok(Image { reference, format, root, layers: names, notes, warnings })
}

/// `blobs/sha256/1a2b…` → `sha256:1a2b3c4d5e6f`; `abc/layer.tar` → `abc`.
fn short(p: &str) -> String {
    let p = p.trim_start_matches('/');
    match p.strip_prefix("blobs/sha256/") {
        Some(h) => format!("sha256:{}", &h[..h.len().min(12)]),
        None => p.split('/').next().unwrap_or(p).chars().take(12).collect(),
    }
}

/// A member path from a manifest, kept inside the archive.
fn member(p: &str) -> Result<String> {
    if p.split('/').any(|c| c == "..") || p.is_empty() {
        bail!("the manifest names {p:?}, outside the archive");
    }
    Ok(format!("/{}", p.trim_start_matches('/')))
}

fn docker_save(outer: &TarLayer) -> Result<(String, &'static str, Vec<String>)> {
    let m = json(outer, "/manifest.json")?;
    let first = m.get(0).context("manifest.json lists no image")?;
    let reference =
        first["RepoTags"].get(0).and_then(|t| t.as_str()).map(String::from).unwrap_or_else(|| {
            first["Config"].as_str().unwrap_or("untagged").trim_end_matches(".json").replace("blobs/sha256/", "sha256:")
        });
    let layers = first["Layers"].as_array().context("manifest.json has no Layers")?;
    let paths = layers.iter().map(|l| member(l.as_str().unwrap_or(""))).collect::<Result<Vec<_>>>()?;
    Ok((reference, "docker save archive", paths))
}

fn blob(digest: &str) -> Result<String> {
    let (alg, hex) = digest.split_once(':').with_context(|| format!("bad digest {digest:?}"))?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || alg.contains('/') {
        bail!("bad digest {digest:?}");
    }
    Ok(format!("/blobs/{alg}/{hex}"))
}

fn oci(outer: &TarLayer) -> Result<(String, &'static str, Vec<String>)> {
    let index = json(outer, "/index.json")?;
    let mut desc = index["manifests"].get(0).cloned().context("index.json lists no manifest")?;
    let reference = desc["annotations"]["io.containerd.image.name"]
        .as_str()
        .or(desc["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(String::from);
    // A multi-platform index: linux/amd64, else the first.
    for _ in 0..4 {
        if !desc["mediaType"].as_str().is_some_and(|m| m.contains("index") || m.contains("manifest.list")) {
            break;
        }
        let idx = json(outer, &blob(desc["digest"].as_str().unwrap_or(""))?)?;
        let list = idx["manifests"].as_array().context("an image index lists no manifest")?;
        desc = list
            .iter()
            .find(|d| d["platform"]["os"] == "linux" && d["platform"]["architecture"] == "amd64")
            .or(list.first())
            .cloned()
            .context("an image index lists no manifest")?;
    }
    let digest = desc["digest"].as_str().unwrap_or("").to_string();
    let manifest = json(outer, &blob(&digest)?)?;
    let layers = manifest["layers"].as_array().context("the image manifest has no layers")?;
    let paths = layers
        .iter()
        .map(|l| Ok(blob(l["digest"].as_str().unwrap_or(""))?.trim_start_matches('/').to_string()))
        .map(|p: Result<String>| member(&p?))
        .collect::<Result<Vec<_>>>()?;
    Ok((reference.unwrap_or(digest), "OCI image layout archive", paths))
}
