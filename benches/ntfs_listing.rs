//! The data-volume sweep's planning walk on NTFS, two ways, on the same
//! volume in the same run: with the one-pass $MFT listing (what snapsift
//! does) and reading each directory's index (the same filesystem with the
//! one-pass listing hidden). Driven by benches/ntfs.sh, which builds the
//! volume; `cargo bench --bench ntfs_listing -- IMAGE...` on any NTFS image.
//! Prints `image<TAB>items<TAB>one-pass s<TAB>by-directory s` per image
//! (best of 5, a freshly opened filesystem each time, so no record cache
//! carries over).

use snapsift::collect::plan;
use snapsift::evidence::{self, OpenOptions};
use snapsift::fs::{self, DirEntry, FileReader, FileSystem, Metadata, NodeId, Probe};
use snapsift::targets::{self, Matcher, VolumeContext};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A filesystem without its one-pass listing: the walk reads directories
/// one by one.
struct ByDirectory(Arc<dyn FileSystem>);

impl FileSystem for ByDirectory {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn label(&self) -> Option<String> {
        self.0.label()
    }
    fn uuid(&self) -> Option<String> {
        self.0.uuid()
    }
    fn root(&self) -> NodeId {
        self.0.root()
    }
    fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>> {
        self.0.read_dir(dir)
    }
    fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
        self.0.metadata(node)
    }
    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
        self.0.open(node)
    }
    fn read_link(&self, node: NodeId) -> io::Result<Vec<u8>> {
        self.0.read_link(node)
    }
    fn warnings(&self) -> Vec<String> {
        self.0.warnings()
    }
}

/// The first NTFS volume of an image, freshly opened.
fn open_ntfs(path: &Path) -> Arc<dyn FileSystem> {
    let ev = evidence::open(path, &OpenOptions::default()).expect("open");
    snapsift::volume::discover(&ev.source)
        .volumes
        .into_iter()
        .find_map(|v| match fs::probe(&v.source) {
            Probe::Found(f) if f.kind() == "ntfs" => Some(f),
            _ => None,
        })
        .expect("an NTFS volume")
}

fn main() {
    let images: Vec<PathBuf> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).map(PathBuf::from).collect();
    if images.is_empty() {
        eprintln!("usage: cargo bench --bench ntfs_listing -- IMAGE...  (see benches/ntfs.sh)");
        return;
    }
    let sweep =
        Matcher::new(&targets::selected(&[]), &VolumeContext { os: snapsift::host::OsFamily::Windows, is_os_root: false, homes: &[] })
            .expect("built-in targets");
    for image in images {
        let time = |one_pass: bool| {
            let mut best = f64::MAX;
            let mut items = 0;
            for _ in 0..5 {
                let ntfs = open_ntfs(&image);
                let fs: Arc<dyn FileSystem> = if one_pass { ntfs } else { Arc::new(ByDirectory(ntfs)) };
                let start = Instant::now();
                items = plan::walk(fs.as_ref(), &[(&sweep, sweep.start())], &Default::default()).len();
                best = best.min(start.elapsed().as_secs_f64());
                let w = fs.warnings();
                assert!(w.is_empty(), "{w:?}");
            }
            (items, best)
        };
        let (a, fast) = time(true);
        let (b, slow) = time(false);
        assert_eq!(a, b, "both ways find the same files");
        println!("{}\t{a}\t{fast:.3}\t{slow:.3}", image.display());
    }
}
