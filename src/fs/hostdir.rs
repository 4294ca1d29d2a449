//! A directory on the analysis host (an already-extracted tree, a copied
//! `/var/lib/docker`) behind the filesystem trait.
//!
//! Symbolic links are never followed: entries are listed with
//! `symlink_metadata`, files are opened with `O_NOFOLLOW`, and lookups only go
//! down from the root, so nothing outside the directory is ever read.

use super::{DirEntry, FileKind, FileReader, FileSystem, Metadata, NodeId};
use crate::util::time::Timestamp;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub struct HostDir {
    root: PathBuf,
    /// Node ids are indexes into this table of paths below `root`.
    nodes: RwLock<(Vec<PathBuf>, HashMap<PathBuf, NodeId>)>,
}

impl HostDir {
    pub fn open(root: &Path) -> io::Result<HostDir> {
        if !fs::symlink_metadata(root)?.is_dir() {
            return Err(io::Error::other(format!("{} is not a directory", root.display())));
        }
        let table = (vec![root.to_path_buf()], HashMap::from([(root.to_path_buf(), 0)]));
        Ok(HostDir { root: root.to_path_buf(), nodes: RwLock::new(table) })
    }

    fn path(&self, node: NodeId) -> io::Result<PathBuf> {
        let t = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        t.0.get(node as usize).cloned().ok_or_else(|| io::Error::other(format!("unknown node {node}")))
    }

    fn intern(&self, p: PathBuf) -> NodeId {
        let mut t = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = t.1.get(&p) {
            return id;
        }
        let id = t.0.len() as NodeId;
        t.0.push(p.clone());
        t.1.insert(p, id);
        id
    }
}

fn kind_of(ft: fs::FileType) -> FileKind {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_file() {
        FileKind::File
    } else if ft.is_char_device() {
        FileKind::CharDevice
    } else if ft.is_block_device() {
        FileKind::BlockDevice
    } else if ft.is_fifo() {
        FileKind::Fifo
    } else if ft.is_socket() {
        FileKind::Socket
    } else {
        FileKind::Unknown
    }
}

impl FileSystem for HostDir {
    fn kind(&self) -> &'static str {
        "directory"
    }
    fn root(&self) -> NodeId {
        0
    }

    fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>> {
        let path = self.path(dir)?;
        let mut out = Vec::new();
        for e in fs::read_dir(&path)? {
            let e = e?;
            let kind = e.file_type().map(kind_of).unwrap_or(FileKind::Unknown);
            let name = e.file_name().as_bytes().to_vec();
            out.push(DirEntry { node: self.intern(e.path()), name, kind });
        }
        Ok(out)
    }

    fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
        let m = fs::symlink_metadata(self.path(node)?)?;
        let ts = |s: i64, ns: i64| Some(Timestamp::new(s, ns as u32));
        let btime = m.created().ok().and_then(|t| {
            let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
            Some(Timestamp::new(d.as_secs() as i64, d.subsec_nanos()))
        });
        Ok(Metadata {
            node,
            kind: Some(kind_of(m.file_type())),
            size: m.size(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            nlink: m.nlink() as u32,
            mtime: ts(m.mtime(), m.mtime_nsec()),
            atime: ts(m.atime(), m.atime_nsec()),
            ctime: ts(m.ctime(), m.ctime_nsec()),
            btime,
            rdev: matches!(kind_of(m.file_type()), FileKind::CharDevice | FileKind::BlockDevice)
                .then(|| (libc::major(m.rdev()), libc::minor(m.rdev()))),
        })
    }

    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
        let f: File = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(self.path(node)?)?;
        if !f.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(Box::new(f))
    }

    fn read_link(&self, node: NodeId) -> io::Result<Vec<u8>> {
        Ok(fs::read_link(self.path(node)?)?.as_os_str().as_bytes().to_vec())
    }

    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Through `llistxattr`/`lgetxattr`: never follows a link. `trusted.*`
    /// attributes are only visible when snapsift runs as root; without them
    /// an opaque directory of a copied overlay layer cannot be recognised.
    fn xattrs(&self, node: NodeId) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let path = std::ffi::CString::new(self.path(node)?.as_os_str().as_bytes()).map_err(io::Error::other)?;
        let call = |f: &mut dyn FnMut(*mut libc::c_void, usize) -> isize| -> io::Result<Vec<u8>> {
            let n = f(std::ptr::null_mut(), 0);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut buf = vec![0u8; n as usize];
            let n = f(buf.as_mut_ptr().cast(), buf.len());
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            buf.truncate(n as usize);
            Ok(buf)
        };
        // SAFETY: `path` is NUL-terminated; each buffer is as long as passed.
        let names = match call(&mut |p, n| unsafe { libc::llistxattr(path.as_ptr(), p.cast(), n) }) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for name in names.split(|&c| c == 0).filter(|n| !n.is_empty()) {
            let cname = std::ffi::CString::new(name).map_err(io::Error::other)?;
            // SAFETY: as above.
            if let Ok(v) = call(&mut |p, n| unsafe { libc::lgetxattr(path.as_ptr(), cname.as_ptr(), p, n) }) {
                out.push((name.to_vec(), v));
            }
        }
        Ok(out)
    }
}

impl HostDir {
    /// The directory this filesystem shows.
    pub fn root_path(&self) -> &Path {
        &self.root
    }
}
