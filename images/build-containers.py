#!/usr/bin/env python3
"""Build the container fixtures and their expected listings (run as root).

    python3 images/build-containers.py           # rewrite images/containers/*, containers-node.img.gz
                                                  # and images/expected/containers*.tsv
    python3 images/build-containers.py --check   # rebuild in a temp dir, diff the listings (exit 1 on mismatch)
    python3 images/build-containers.py --keep    # keep the work dir (printed) for inspection

Needs: root (loop + overlay mounts, mknod, trusted.* xattrs), python3, containerd 1.6 + ctr,
zstd, xfsprogs, e2fsprogs >= 1.47, gdisk (sgdisk), sleuthkit (fls/istat), attr (setfattr).

What it makes (see "Container fixtures" in images/README.md):
  containers/app-image.oci.tar      OCI image layout archive, 4 layers (3 gzip + 1 zstd)
  containers/app-image.docker.tar   the same layers, `docker save` format (uncompressed layer.tar)
  containers/hostile-image.docker.tar  path-traversal / link tricks (expected/containers-hostile.tsv)
  containers-node.img.gz            GPT: p1 ext4 root (Docker overlay2 tree, kubelet logs, the
                                    config.v2.json of Docker's containerd-store containers),
                                    p2 XFS = /var/lib/containerd written by a real containerd
                                    (namespaces k8s.io, default, and moby as Docker makes it)
  expected/containers.tsv, containers-hidden.tsv, containers-meta.tsv, containers-files.tsv,
  containers-hostile.tsv

The listings come from the kernel: every union view is an overlay mount (ro) of the layer
directories read back from the final disk image (loop mounts), or of the image's layers
extracted by this script (whiteouts converted to overlay style) - the latter cross-checked
against containerd's own unpack of the same image (`ctr snapshots view`).
"""
import base64
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import build as B  # noqa: E402  (pct, ts, gz, generators, gzip_to)

MiB = B.MiB
ENV = dict(B.ENV, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
LAYER_MTIME = B.ts(2024, 5, 1, 8, 0, 0)[0]
CREATED = "2024-05-01T08:00:00Z"
IMAGE_REF = "docker.io/snapsift/app:1.0"
DOCKER_APP_TAG = "snapsift/app:1.0"
DOCKER_DB_TAG = "snapsift/db:2.1"

# ---- fixed identities -------------------------------------------------------
def hx(s):
    return hashlib.sha256(s.encode()).hexdigest()


K8S = [  # (containerd id, pod, pod namespace, container name, pod uid)
    (hx("snapsift/k8s/shop/web-7d9f8/nginx"), "web-7d9f8", "shop", "nginx", "5eed00c1-0000-4000-8000-00000000a001"),
    (hx("snapsift/k8s/batch/worker-5c4b/worker"), "worker-5c4b", "batch", "worker", "5eed00c1-0000-4000-8000-00000000a002"),
]
LEGACY = ("default", "legacy-tool")
DOCKER_API = hx("snapsift/docker/api")
DOCKER_DB = hx("snapsift/docker/db")
# Written through a kernel overlay mount with redirect_dir=on,metacopy=on:
# a renamed directory (redirect xattr) and metadata-only copy-ups (metacopy).
DOCKER_EDIT = hx("snapsift/docker/edit")
OVERLAY_FEATURES = "redirect_dir=on,metacopy=on,index=off"
# Docker 25+ with the containerd image store (the default for new installs of Docker 29): images
# and container layers live in containerd, namespace "moby" (moby daemon/config/config.go,
# DefaultContainersNamespace), overlayfs snapshotter. (name, id, running)
DOCKER_NS = "moby"
DOCKER_C8D = [("cache", hx("snapsift/docker-c8d/cache"), True),
              ("report", hx("snapsift/docker-c8d/report"), False)]
EXT4_UUID = "5eed00c0-1111-4000-8000-0000000000e4"
XFS_UUID = "5eed00c0-2222-4000-8000-0000000000f5"
DISK_GUID = "5eed00c0-0000-4000-8000-000000000000"


def run(cmd, ok=(0,), env=None, **kw):
    cmd = [os.fsdecode(c) if isinstance(c, bytes) else str(c) for c in cmd]
    p = subprocess.run(cmd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if p.returncode not in ok:
        raise SystemExit("command failed (%d): %s\n%s%s" % (p.returncode, " ".join(cmd),
                         p.stdout.decode(errors="replace")[-3000:], p.stderr.decode(errors="replace")[-3000:]))
    return p.stdout.decode(errors="replace")


def sha(data):
    return hashlib.sha256(data).hexdigest()


# =============================================================================
# 1. image layers (Python tarfile, fixed mtimes, uid 0)
# =============================================================================
class Layer:
    """One layer tar. Entries are written in call order; parent directories get
    their own entries first (as `docker build` / BuildKit do)."""

    def __init__(self, name, fmt=tarfile.PAX_FORMAT):
        self.name = name
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=fmt, encoding="utf-8",
                               errors="surrogateescape")
        self.dirs = set()
        self.entries = []  # (kind, path) for documentation

    def _ti(self, name, typ, mode, size=0):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.mtime = typ, mode, size, LAYER_MTIME
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def dir(self, path, mode=0o755):
        if path in self.dirs:
            return
        self._parents(path)
        self.dirs.add(path)
        self.tf.addfile(self._ti(path, tarfile.DIRTYPE, 0o700 if path == "root" else mode))

    def file(self, path, data, mode=0o644, pax=None):
        if isinstance(data, str):
            data = data.encode()
        self._parents(path)
        ti = self._ti(path, tarfile.REGTYPE, mode, len(data))
        if pax:
            ti.pax_headers = dict(pax)
        self.tf.addfile(ti, io.BytesIO(data))
        self.entries.append(("f", path))

    def symlink(self, path, target):
        self._parents(path)
        ti = self._ti(path, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tf.addfile(ti)

    def hardlink(self, path, target):
        self._parents(path)
        ti = self._ti(path, tarfile.LNKTYPE, 0o644)
        ti.linkname = target
        self.tf.addfile(ti)

    def whiteout(self, path):
        d, n = path.rsplit("/", 1)
        self.file(d + "/.wh." + n, b"")

    def opaque(self, d):
        self.file(d + "/.wh..wh..opq", b"")

    def raw(self, ti, data=b""):
        ti.mtime = LAYER_MTIME
        self.tf.addfile(ti, io.BytesIO(data) if ti.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else None)

    def bytes(self):
        self.tf.close()
        return self.buf.getvalue()


OS_RELEASE_DEB = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
                  'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
                  'HOME_URL="https://www.debian.org/"\n')
LONG_DIR = "var/log/deep/" + "/".join("nested-directory-level-%02d" % i for i in range(4))
LONG_PATH = LONG_DIR + "/a-log-file-with-a-rather-long-name-to-need-a-pax-path-header.log"
assert len(LONG_PATH) > 100


def app_layers():
    t = B.Tree(9001)  # only its RNG and generators are used
    L1 = Layer("base")
    L1.file("etc/os-release", OS_RELEASE_DEB)
    L1.file("etc/passwd", B.passwd(["app:x:1000:1000:app user:/home/app:/bin/bash"]))
    L1.file("etc/hostname", "app-base\n")
    L1.file("etc/conf.d/a.conf", "a=1\n")
    L1.file("etc/conf.d/b.conf", "b=2\n")
    L1.file("var/log/dpkg.log", "".join("2024-04-30 12:00:%02d status installed pkg%02d:amd64 1.%d\n" % (i, i, i)
                                        for i in range(40)))
    L1.file("var/log/apt/history.log", "\nStart-Date: 2024-04-30  12:00:00\nCommandline: apt-get install -y "
            "ca-certificates\nInstall: ca-certificates:amd64 (20230311)\nEnd-Date: 2024-04-30  12:00:05\n")
    L1.file("var/log/app/old.log", B.app_lines(t, 30, "old"))
    L1.file("var/log/app/keep.log", B.app_lines(t, 25, "keep"))
    L1.symlink("var/log/latest.log", "app/keep.log")
    L1.hardlink("var/log/app/keep.hardlink.log", "var/log/app/keep.log")
    L1.file("var/log/legacy/a.log", B.app_lines(t, 10, "legacy-a"))
    L1.file("var/log/legacy/sub/b.log", B.app_lines(t, 10, "legacy-b"))
    L1.file("var/log/reborn.log", "first life\n")
    L1.file("root/.bash_history", B.hist(t, B.SHELL_CMDS, 12), 0o600)
    L1.dir("home/app")
    L1.file("app/logs/app.log", B.app_lines(t, 40, "v1"))
    L1.file("srv/www/logs/access.log", B.access_lines(t, 30))
    L1.file("opt/svc/logs/svc.log", B.app_lines(t, 20, "svc"))
    L1.file("opt/svc/bin/tool", b"\x7fELF\x02\x01\x01" + t.rand(3000), 0o755)
    L1.file("usr/bin/true", b"\x7fELF\x02\x01\x01" + t.rand(1500), 0o755)
    L1.dir("tmp", 0o1777)

    L2 = Layer("update")  # zstd-compressed in the OCI archive
    L2.whiteout("var/log/app/old.log")
    L2.opaque("etc/conf.d")
    L2.file("etc/conf.d/c.conf", "c=3\n")
    L2.file("app/logs/app.log", B.app_lines(t, 55, "v2"))
    L2.whiteout("var/log/reborn.log")
    L2.file(LONG_PATH, B.app_lines(t, 8, "long"), pax={"SCHILY.xattr.user.test": "snapsift"})

    L3 = Layer("cleanup")
    L3.whiteout("var/log/legacy")
    L3.file("var/log/reborn.log", "second life, re-added after the whiteout in layer 2\n")
    L3.file("etc/hostname", "app\n")

    L4 = Layer("release")
    L4.file("app/VERSION", "1.0.0\n")
    L4.file("var/log/app/release.log", "2024-05-01T08:00:00Z release 1.0.0\n")
    L4.file("etc/conf.d/d.conf", "d=4\n")
    return [L1, L2, L3, L4]


def db_layer():
    """The extra image layer of the Docker `/db` container (on top of app layers 1-2)."""
    t = B.Tree(9002)
    L = Layer("db")
    L.file("var/lib/db/data.bin", t.rand(4000))
    L.file("var/log/db/db.log", B.app_lines(t, 30, "db"))
    L.whiteout("srv/www/logs/access.log")
    L.file("etc/hostname", "db\n")
    return L


# ---- archives ---------------------------------------------------------------
def tar_bytes(members):
    """members: [(name, bytes-or-None-for-dir)] -> deterministic tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = LAYER_MTIME, 0, 0, "", ""
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.mode, ti.size = 0o644, len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def jdump(o):
    return json.dumps(o, sort_keys=True, separators=(",", ":")).encode()


def zstd(data):
    return subprocess.run(["zstd", "-q", "-19", "-c", "--no-check"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


def image_config(diff_ids, labels, cmd):
    return {"architecture": "amd64", "os": "linux", "created": CREATED,
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": cmd, "WorkingDir": "/app", "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]},
            "history": [{"created": CREATED, "created_by": "snapsift build-containers.py layer %d" % i}
                        for i in range(len(diff_ids))]}


def oci_archive(layers, zstd_index):
    blobs = {}
    descs = []
    diff_ids = []
    for i, raw in enumerate(layers):
        diff_ids.append(sha(raw))
        if i == zstd_index:
            comp, mt = zstd(raw), "application/vnd.oci.image.layer.v1.tar+zstd"
        else:
            comp, mt = B.gz(raw), "application/vnd.oci.image.layer.v1.tar+gzip"
        blobs[sha(comp)] = comp
        descs.append({"mediaType": mt, "digest": "sha256:" + sha(comp), "size": len(comp)})
    cfg = jdump(image_config(diff_ids, {"org.opencontainers.image.title": "snapsift app"}, ["/opt/svc/bin/tool"]))
    blobs[sha(cfg)] = cfg
    man = jdump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(cfg),
                            "size": len(cfg)}, "layers": descs})
    blobs[sha(man)] = man
    index = jdump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                  "digest": "sha256:" + sha(man), "size": len(man),
                                  "platform": {"architecture": "amd64", "os": "linux"},
                                  "annotations": {"io.containerd.image.name": IMAGE_REF,
                                                  "org.opencontainers.image.ref.name": "1.0"}}]})
    members = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
               ("blobs", None), ("blobs/sha256", None)]
    members += [("blobs/sha256/" + d, blobs[d]) for d in sorted(blobs)]
    return tar_bytes(members), sha(man), sha(cfg), diff_ids


def docker_archive(layers, tag, labels=None, cmd=("/opt/svc/bin/tool",)):
    diff_ids = [sha(raw) for raw in layers]
    cfg = jdump(image_config(diff_ids, labels or {}, list(cmd)))
    image_id = sha(cfg)
    members = []
    ids = []
    parent = ""
    for i, raw in enumerate(layers):
        # v1 layer ids as `docker save` (pre-25) makes them: a hash over the chain
        lid = hx("v1:%s:%s" % (parent, diff_ids[i]))
        v1 = {"id": lid, "created": CREATED, "container_config": {"Cmd": None}, "os": "linux"}
        if parent:
            v1["parent"] = parent
        members += [(lid, None), (lid + "/VERSION", b"1.0"), (lid + "/json", jdump(v1)),
                    (lid + "/layer.tar", raw)]
        ids.append(lid)
        parent = lid
    repo, t = tag.rsplit(":", 1)
    members += [(image_id + ".json", cfg),
                ("manifest.json", jdump([{"Config": image_id + ".json", "RepoTags": [tag],
                                          "Layers": [i + "/layer.tar" for i in ids]}])),
                ("repositories", jdump({repo: {t: ids[-1]}}))]
    members.sort(key=lambda m: m[0])
    return tar_bytes(members), image_id, diff_ids


def chain_ids(diff_ids):
    out = []
    for d in diff_ids:
        out.append(d if not out else sha(("sha256:%s sha256:%s" % (out[-1], d)).encode()))
    return out


# =============================================================================
# layer tar -> overlay-style directory (this script's own applier)
# =============================================================================
def apply_layer(raw, dest):
    """Extract one layer tar into dest, converting OCI whiteouts to overlayfs
    ones: `.wh.NAME` -> char device 0:0 NAME, `.wh..wh..opq` -> the parent gets
    trusted.overlay.opaque=y. SCHILY.xattr.* PAX records become xattrs."""
    os.makedirs(dest, exist_ok=True)
    d = os.fsencode(dest)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:", encoding="utf-8", errors="surrogateescape") as tf:
        for m in tf:
            name = os.fsencode(m.name).strip(b"/")
            assert b".." not in name.split(b"/"), name
            full = os.path.join(d, name)
            parent, base = os.path.split(full)
            if base == b".wh..wh..opq":
                os.setxattr(parent, b"trusted.overlay.opaque", b"y")
                continue
            if base.startswith(b".wh."):
                os.mknod(os.path.join(parent, base[4:]), stat.S_IFCHR | 0o000, os.makedev(0, 0))
                continue
            if m.isdir():
                os.makedirs(full, exist_ok=True)
                os.chmod(full, m.mode)
            elif m.issym():
                os.symlink(m.linkname, full)
            elif m.islnk():
                os.link(os.path.join(d, os.fsencode(m.linkname)), full)
            else:
                with open(full, "wb") as f:
                    f.write(tf.extractfile(m).read())
                os.chmod(full, m.mode)
            for k, v in m.pax_headers.items():
                if k.startswith("SCHILY.xattr."):
                    os.setxattr(full, k[len("SCHILY.xattr."):], v.encode("utf-8", "surrogateescape"),
                                follow_symlinks=False)
            if not m.issym():
                os.utime(full, (m.mtime, m.mtime))
            else:
                os.utime(full, (m.mtime, m.mtime), follow_symlinks=False)
    for dp, dn, fn in os.walk(d, topdown=False):
        os.utime(dp, (LAYER_MTIME, LAYER_MTIME))


# =============================================================================
# kernel listings
# =============================================================================
def walk_listing(root):
    """{path(bytes): (type, size, sha256, target)} for regular files and symlinks
    as seen through `root` (an overlay mount or a plain layer dir); char devices
    (whiteouts) are returned with type 'c' so layer walks can see them."""
    root = os.fsencode(root)
    out = {}
    for dp, dn, fn in os.walk(root):
        for n in fn + [x for x in dn if os.path.islink(os.path.join(dp, x))]:
            full = os.path.join(dp, n)
            rel = full[len(root):]
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", st.st_size, "", os.readlink(full))
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    for blk in iter(lambda: f.read(MiB), b""):
                        h.update(blk)
                out[rel] = ("r", st.st_size, h.hexdigest(), b"")
            elif stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out[rel] = ("c", 0, "", b"")
    return out


def opaque_dirs(root):
    root = os.fsencode(root)
    out = set()
    for dp, dn, fn in os.walk(root):
        try:
            if os.getxattr(dp, b"trusted.overlay.opaque", follow_symlinks=False) == b"y":
                out.add(dp[len(root):] or b"/")
        except OSError:
            pass
    return out


class Mounts:
    """Tracks mounts and loop devices made by this script, undone in reverse."""

    def __init__(self):
        self.stack = []

    def mount(self, args, target):
        os.makedirs(target, exist_ok=True)
        run(["mount"] + args + [target])
        self.stack.append(("m", target))
        return target

    def overlay_ro(self, layers, target):
        """layers: top-most first (overlay's lowerdir order). Redirects and
        metacopy files in the layers are followed, as the kernel does when a
        container's mount enabled them."""
        for l in layers:
            assert ":" not in l and "," not in l, l
        opts = "ro,redirect_dir=follow,metacopy=on,lowerdir=" + ":".join(layers)
        return self.mount(["-t", "overlay", "overlay", "-o", opts], target)

    def umount(self, target):
        run(["umount", target])
        self.stack.remove(("m", target))

    def loop(self, img, offset=0, size=None, ro=False):
        args = ["losetup", "-f", "--show", "-o", str(offset)]
        if size:
            args += ["--sizelimit", str(size)]
        if ro:
            args.append("-r")
        dev = run(args + [img]).strip()
        self.stack.append(("l", dev))
        return dev

    def unloop(self, dev):
        run(["losetup", "-d", dev])
        self.stack.remove(("l", dev))

    def close(self):
        while self.stack:
            kind, x = self.stack.pop()
            if kind == "m":
                subprocess.run(["umount", x], stderr=subprocess.DEVNULL)
            else:
                subprocess.run(["losetup", "-d", x], stderr=subprocess.DEVNULL)


def union_listing(M, layers, mnt):
    """Mount layers (top first) read-only with the kernel's overlayfs, list, unmount."""
    M.overlay_ro(layers, mnt)
    try:
        return walk_listing(mnt)
    finally:
        M.umount(mnt)


def hidden_of(layers, union):
    """Regular files present in some layer dir but not visible in the union, with
    the reason found in the layers above (closest first)."""
    info = [(walk_listing(l), opaque_dirs(l), l) for l in layers]  # top first
    out = {}
    for i in range(len(info) - 1, -1, -1):
        files, _, _ = info[i]
        for p, v in files.items():
            if v[0] != "r" or p in union or p in out:
                continue
            why = None
            anc = []
            q = p
            while True:
                q = os.path.dirname(q)
                if q in (b"/", b""):
                    break
                anc.append(q)
            for j in range(i - 1, -1, -1):  # layers above i, nearest first
                f2, opq, _ = info[j]
                if p in f2 and f2[p][0] == "c":
                    why = "whiteout"
                    break
                hit = [a for a in anc if a in f2 and f2[a][0] == "c"]
                if hit:
                    why = "dir-whiteout:" + B.pct(hit[0])
                    break
                hit = [a for a in anc if a in opq]
                if hit:
                    why = "opaque:" + B.pct(hit[0])
                    break
                hit = [a for a in anc if a in f2]
                if hit:
                    why = "replaced-by-non-dir:" + B.pct(hit[0])
                    break
            if why is None:
                raise SystemExit("cannot explain why %r is hidden" % p)
            out[p] = why
    return out


# =============================================================================
# 2. containerd (real daemon, state on the XFS that becomes p2)
# =============================================================================
CONTAINERD_BUILD_CONFIG = """version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  level = "warn"
[plugins."io.containerd.service.v1.diff-service"]
  default = ["walking"]
"""


class Containerd:
    def __init__(self, root, work):
        self.root = root
        self.state = os.path.join(work, "ctrd-state")
        self.sock = os.path.join(work, "ctrd.sock")
        self.cfg = os.path.join(work, "ctrd-config.toml")
        self.log = open(os.path.join(work, "containerd.log"), "wb")
        with open(self.cfg, "w") as f:
            f.write(CONTAINERD_BUILD_CONFIG.format(root=root, state=self.state, sock=self.sock))
        self.p = subprocess.Popen(["containerd", "--config", self.cfg], stdout=self.log, stderr=self.log,
                                  env=ENV)
        for _ in range(150):
            if self.p.poll() is not None:
                raise SystemExit("containerd exited early; see %s" % self.log.name)
            if subprocess.run(["ctr", "--address", self.sock, "version"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                return
            time.sleep(0.2)
        raise SystemExit("containerd did not come up")

    def ctr(self, ns, *args, ok=(0,)):
        return run(["ctr", "--address", self.sock, "-n", ns] + list(args), ok=ok)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def parse_mounts_cmd(out):
    """`ctr snapshots mounts` prints `mount -t overlay overlay /target -o opts`."""
    m = re.search(r"mount -t (\S+) (\S+) (\S+) -o (\S+)", out)
    if not m:
        raise SystemExit("cannot parse ctr snapshots mounts output: %r" % out)
    opts = m.group(4).split(",")
    kv = dict(o.split("=", 1) for o in opts if "=" in o)
    return m.group(1), opts, kv


def snapshot_chain(c, ns, key):
    """[(name, kind, parent)] from `ctr snapshots info`, key first (top)."""
    chain = []
    while key:
        info = json.loads(c.ctr(ns, "snapshots", "info", key))
        chain.append((info["Name"], info["Kind"], info.get("Parent", "")))
        key = info.get("Parent", "")
    return chain


def write_into(c, ns, key, mnt, M, actions):
    """Mount the container's active snapshot rw, exactly as ctr prints it, and
    let the kernel do the writes (copy-up, whiteouts, opaque dirs)."""
    out = c.ctr(ns, "snapshots", "mounts", mnt, key)
    typ, opts, kv = parse_mounts_cmd(out)
    M.mount(["-t", typ, "overlay", "-o", ",".join(opts)], mnt)
    try:
        actions(mnt)
        os.sync()
    finally:
        M.umount(mnt)
    return kv


def w(mnt, rel, data, append=False, mode=0o644):
    p = os.path.join(mnt, rel.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "ab" if append else "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(p, mode)
    os.utime(p, (LAYER_MTIME + 86400, LAYER_MTIME + 86400))


def actions_web(m):
    t = B.Tree(9101)
    w(m, "/var/log/nginx/access.log", B.access_lines(t, 60))
    w(m, "/var/log/nginx/error.log", "2024/05/02 10:00:01 [error] 7#7: *3 upstream timed out\n")
    w(m, "/root/.bash_history", "nginx -t\nnginx -s reload\n", append=True, mode=0o600)
    w(m, "/home/app/.bash_history", "ls /app/logs\ntail -n 50 /app/logs/app.log\n", mode=0o600)
    w(m, "/app/logs/app.log", B.app_lines(t, 70, "web"))
    os.unlink(os.path.join(m, "var/log/dpkg.log"))                  # -> 0:0 char device in upper
    shutil.rmtree(os.path.join(m, "opt/svc/logs"))                  # -> opaque dir in upper
    os.mkdir(os.path.join(m, "opt/svc/logs"))
    w(m, "/opt/svc/logs/new.log", "svc restarted inside web\n")


def actions_worker(m):
    t = B.Tree(9102)
    w(m, "/var/log/worker/jobs.log", B.app_lines(t, 45, "jobs"))
    w(m, "/root/.bash_history", "python3 -m worker --once\n", mode=0o600)   # rewritten
    w(m, "/app/logs/app.log", "2024-05-02T00:00:00Z INFO worker appended\n", append=True)
    os.unlink(os.path.join(m, "var/log/apt/history.log"))
    shutil.rmtree(os.path.join(m, "srv/www/logs"))                  # whole dir -> whiteout dir
    shutil.rmtree(os.path.join(m, "opt/svc/logs"))
    os.mkdir(os.path.join(m, "opt/svc/logs"))
    w(m, "/opt/svc/logs/new.log", "worker batch 17 done\n")
    w(m, "/opt/svc/logs/batch.log", B.app_lines(t, 12, "batch"))


def actions_legacy(m):
    w(m, "/var/log/tool.log", "legacy-tool ran at 2024-05-03T09:00:00Z\n")
    os.unlink(os.path.join(m, "var/log/app/keep.log"))            # latest.log now dangles
    w(m, "/root/.bash_history", "legacy-tool --migrate\n", append=True, mode=0o600)


def containerd_phase(root, work, oci_tar, M, top_chain):
    """Populate `root` (the mounted XFS) with a real containerd. Returns
    {folder: dict(ns, id, key, pod..., labels)} and an image-view listing."""
    c = Containerd(root, work)
    res = {}
    try:
        for ns in ("k8s.io", "default"):
            c.ctr(ns, "images", "import", oci_tar)
        imgs = c.ctr("k8s.io", "images", "ls")
        if IMAGE_REF not in imgs:
            raise SystemExit("import did not create %s:\n%s" % (IMAGE_REF, imgs))
        # containerd's own unpack of the image: a view of the top layer snapshot
        view_mnt = os.path.join(work, "mnt-view")
        os.makedirs(view_mnt, exist_ok=True)
        # (a view has no GC root: containerd may collect it at once, so take its
        # mounts from the create call; the lowers are the image's committed layers)
        mj = json.loads(c.ctr("k8s.io", "snapshots", "view", "--mounts", "snapsift-check-view", top_chain))
        kv = dict(o.split("=", 1) for o in mj[0]["Options"] if "=" in o)
        view = union_listing(M, kv["lowerdir"].split(":"), view_mnt)
        c.ctr("k8s.io", "snapshots", "rm", "snapsift-check-view", ok=(0, 1))
        specs = []
        for cid, pod, pns, cname, uid in K8S:
            labels = {"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": pns,
                      "io.kubernetes.container.name": cname, "io.kubernetes.pod.uid": uid,
                      "io.cri-containerd.kind": "container"}
            specs.append(("k8s.io", cid, labels, "%s_%s_%s" % (pns, pod, cname),
                          actions_web if cname == "nginx" else actions_worker, pod, pns, cname))
        specs.append((LEGACY[0], LEGACY[1], {"com.example.owner": "ops"}, "%s_%s" % LEGACY, actions_legacy,
                      "-", LEGACY[0], LEGACY[1]))
        for ns, cid, labels, folder, act, pod, pns, cname in specs:
            args = ["containers", "create"]
            for k in sorted(labels):
                args += ["--label", "%s=%s" % (k, labels[k])]
            c.ctr(ns, *(args + [IMAGE_REF, cid]))
            mnt = os.path.join(work, "mnt-" + folder)
            kv = write_into(c, ns, cid, mnt, M, act)
            chain = snapshot_chain(c, ns, cid)
            lowers = kv["lowerdir"].split(":")
            if len(chain) != len(lowers) + 1 or chain[0][1] != "Active" or \
                    any(k != "Committed" for _, k, _ in chain[1:]):
                raise SystemExit("snapshot chain of %s does not match its mounts: %r %r" % (cid, chain, lowers))
            res[folder] = dict(ns=ns, id=cid, pod=pod, pns=pns, name=cname, labels=labels,
                               upper=os.path.relpath(kv["upperdir"], root),
                               lowers=[os.path.relpath(l, root) for l in lowers], chain=chain)
        res.update(docker_c8d_phase(c, work, oci_tar, M, top_chain))
        nss = ("k8s.io", "default", DOCKER_NS)
        info = {"snapshots": {ns: c.ctr(ns, "snapshots", "ls") for ns in nss},
                "containers": {ns: c.ctr(ns, "containers", "ls") for ns in nss}}
    finally:
        c.stop()
    return res, view, info


def docker_init_setup(root):
    """Docker's init layer, as moby daemon/initlayer/setup_unix.go (Setup) makes it in the
    mounted `<id>-init-key` snapshot: every prefix of each path unlinked (an image file there
    becomes a whiteout the new entry replaces), then the dirs, empty files and the mtab link."""
    for pth, typ in (("/dev/pts", "dir"), ("/dev/shm", "dir"), ("/proc", "dir"), ("/sys", "dir"),
                     ("/.dockerenv", "file"), ("/etc/resolv.conf", "file"), ("/etc/hosts", "file"),
                     ("/etc/hostname", "file"), ("/dev/console", "file"), ("/etc/mtab", "/proc/mounts")):
        prev = root
        for part in pth.strip("/").split("/"):
            prev = os.path.join(prev, part)
            try:
                os.unlink(prev)
            except OSError:
                pass
        full = os.path.join(root, pth.lstrip("/"))
        if os.path.lexists(full):
            continue
        os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
        if typ == "dir":
            os.makedirs(full, mode=0o755, exist_ok=True)
        elif typ == "file":
            os.close(os.open(full, os.O_CREAT | os.O_WRONLY, 0o755))
        else:
            os.symlink(typ, full)


def actions_cache(m):
    t = B.Tree(9401)
    w(m, "/var/log/cache/cache.log", B.app_lines(t, 40, "cache"))
    w(m, "/root/.bash_history", "redis-cli info\n", append=True, mode=0o600)
    os.unlink(os.path.join(m, "var/log/dpkg.log"))                  # whiteout
    shutil.rmtree(os.path.join(m, "srv/www/logs"))                  # directory whiteout
    shutil.rmtree(os.path.join(m, "opt/svc/logs"))                  # opaque dir
    os.mkdir(os.path.join(m, "opt/svc/logs"))
    w(m, "/opt/svc/logs/new.log", "svc restarted inside cache\n")


def actions_report(m):
    t = B.Tree(9402)
    w(m, "/var/log/report/run.log", B.app_lines(t, 25, "report"))
    w(m, "/app/logs/app.log", B.app_lines(t, 15, "report-app"))
    os.unlink(os.path.join(m, "var/log/app/release.log"))         # a file of the top image layer


def docker_c8d_phase(c, work, oci_tar, M, top_chain):
    """Docker containers of the containerd image store, made with the keys, parents and
    labels Docker uses (moby daemon/containerd/image_snapshot.go, createLayer and
    prepareInitLayer): a lease named by the container id; `<id>-init-key` prepared on the
    image's top chain id, Docker's init files written into it, committed as `<id>-init`; the
    container's writable snapshot prepared under the key `<id>` itself on `<id>-init`.
    (ctr cannot put a snapshot in a lease: `ctr snapshots prepare` keeps it with a
    containerd.io/gc.root label instead; snapsift reads neither.) A running container also has
    the record libcontainerd makes at start (moby daemon/internal/libcontainerd/remote/
    client.go NewContainer, client_linux.go WithBundle): no snapshot key (Docker mounts the
    rootfs itself at <data-root>/rootfs/overlayfs/<id>, daemon/snapshotter/mount.go), the label
    com.docker/engine.bundle.path; Docker deletes it when the container stops (daemon/start.go
    Cleanup)."""
    ns = DOCKER_NS
    c.ctr(ns, "images", "import", oci_tar)
    res = {}
    for name, cid, running in DOCKER_C8D:
        c.ctr(ns, "leases", "create", "--id", cid, "--expires", "0")
        c.ctr(ns, "snapshots", "prepare", cid + "-init-key", top_chain)
        write_into(c, ns, cid + "-init-key", os.path.join(work, "mnt-init-" + name), M, docker_init_setup)
        c.ctr(ns, "snapshots", "commit", cid + "-init", cid + "-init-key")
        c.ctr(ns, "snapshots", "prepare", cid, cid + "-init")
        act = actions_cache if name == "cache" else actions_report
        kv = write_into(c, ns, cid, os.path.join(work, "mnt-" + name), M, act)
        chain = snapshot_chain(c, ns, cid)
        lowers = kv["lowerdir"].split(":")
        if len(chain) != 6 or len(lowers) != 5 or chain[0][1] != "Active" or chain[1][0] != cid + "-init" or \
                any(k != "Committed" for _, k, _ in chain[1:]) or chain[2][0] != top_chain:
            raise SystemExit("Docker snapshot chain of %s is not as Docker makes it: %r %r" % (name, chain, lowers))
        if running:
            c.ctr(ns, "containers", "create", "--rootfs",
                  "--label", "com.docker/engine.bundle.path=/run/docker/containerd/" + cid,
                  "/var/lib/docker/rootfs/overlayfs/" + cid, cid)
        res["%s_%s" % (name, cid[:12])] = dict(ns=ns, id=cid, name=name, docker=True, running=running,
                                               upper=os.path.relpath(kv["upperdir"], c.root),
                                               lowers=[os.path.relpath(l, c.root) for l in lowers], chain=chain)
    return res


# =============================================================================
# 3. Docker overlay2 tree (hand-made, Docker's documented on-disk layout)
# =============================================================================
def short_id(lid):
    """Docker's 26-character link name (random there; derived from the id here)."""
    return base64.b32encode(hashlib.sha256(("link:" + lid).encode()).digest()).decode()[:26]


def wr(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)


def docker_json_log(lines, start):
    return "".join(json.dumps({"log": l + "\n", "stream": "stderr" if "ERROR" in l else "stdout",
                               "time": "2024-05-01T%02d:%02d:%02d.%09dZ" % (10 + i // 3600, (i // 60) % 60, i % 60,
                                                                            start + i * 1111)},
                              separators=(",", ":")) + "\n" for i, l in enumerate(lines))


def docker_phase(stage, app_raws, db_raw, c8d, manifest):
    """The overlay2 tree, and the Docker side of the containerd-store containers in `c8d`
    (their layers are containerd's; `manifest` is the image's manifest descriptor)."""
    D = os.path.join(stage, "var/lib/docker")
    o2 = os.path.join(D, "overlay2")
    os.makedirs(os.path.join(o2, "l"))

    def mk_layer(lid, fill, lowers):
        """lowers: the layer ids below, nearest first (Docker's `lower` order)."""
        ldir = os.path.join(o2, lid)
        os.makedirs(os.path.join(ldir, "diff"))
        fill(os.path.join(ldir, "diff"))
        wr(os.path.join(ldir, "link"), short_id(lid))
        os.symlink("../%s/diff" % lid, os.path.join(o2, "l", short_id(lid)))
        if lowers:
            wr(os.path.join(ldir, "lower"), ":".join("l/" + short_id(x) for x in lowers))
            os.makedirs(os.path.join(ldir, "work"))
            os.chmod(os.path.join(ldir, "work"), 0o700)

    app_diff = [sha(r) for r in app_raws]
    db_diff = app_diff[:2] + [sha(db_raw)]
    app_chain, db_chain = chain_ids(app_diff), chain_ids(db_diff)
    app_cache = [hx("snapsift/docker/cache/app/%d" % i) for i in range(4)]
    db_cache = app_cache[:2] + [hx("snapsift/docker/cache/db/2")]
    layerdb = os.path.join(D, "image/overlay2/layerdb")
    for diffs, chains, caches, raws in ((app_diff, app_chain, app_cache, app_raws),
                                        (db_diff, db_chain, db_cache, app_raws[:2] + [db_raw])):
        for i in range(len(diffs)):
            ld = os.path.join(layerdb, "sha256", chains[i])
            if os.path.isdir(ld):
                continue  # shared with the other image
            mk_layer(caches[i], lambda d, raw=raws[i]: apply_layer(raw, d), list(reversed(caches[:i])))
            wr(os.path.join(ld, "diff"), "sha256:" + diffs[i])
            wr(os.path.join(ld, "cache-id"), caches[i])
            wr(os.path.join(ld, "size"), str(len(raws[i])))
            if i:
                wr(os.path.join(ld, "parent"), "sha256:" + chains[i - 1])
    app_cfg = jdump(image_config(app_diff, {}, ["/opt/svc/bin/tool"]))
    db_cfg = jdump(image_config(db_diff, {"org.opencontainers.image.title": "snapsift db"}, ["/usr/bin/true"]))
    imgdb = os.path.join(D, "image/overlay2/imagedb/content/sha256")
    for cfg in (app_cfg, db_cfg):
        wr(os.path.join(imgdb, sha(cfg)), cfg, 0o600)
    wr(os.path.join(D, "image/overlay2/repositories.json"), jdump({"Repositories": {
        "snapsift/app": {DOCKER_APP_TAG: "sha256:" + sha(app_cfg)},
        "snapsift/db": {DOCKER_DB_TAG: "sha256:" + sha(db_cfg)}}}), 0o600)

    def init_fill(d):
        for x in ("dev/pts", "dev/shm", "proc", "sys", "etc"):
            os.makedirs(os.path.join(d, x), exist_ok=True)
        for x in (".dockerenv", "dev/console", "etc/hostname", "etc/hosts", "etc/resolv.conf"):
            wr(os.path.join(d, x), b"", 0o755 if x == ".dockerenv" else 0o644)
        os.symlink("/proc/mounts", os.path.join(d, "etc/mtab"))

    def api_fill(d):
        t = B.Tree(9301)
        wr(os.path.join(d, "var/log/api/api.log"), B.app_lines(t, 50, "api"))
        wr(os.path.join(d, "app/logs/app.log"), B.app_lines(t, 33, "api-app"))
        wr(os.path.join(d, "root/.bash_history"), "curl localhost:8080/health\n", 0o600)
        os.mknod(os.path.join(d, "var/log/dpkg.log"), stat.S_IFCHR, os.makedev(0, 0))   # whiteout
        os.makedirs(os.path.join(d, "etc/conf.d"))
        run(["setfattr", "-n", "trusted.overlay.opaque", "-v", "y", os.path.join(d, "etc/conf.d")])
        wr(os.path.join(d, "etc/conf.d/e.conf"), "e=5\n")

    def db_fill(d):
        t = B.Tree(9302)
        wr(os.path.join(d, "var/log/db/slow.log"), B.app_lines(t, 20, "slow"))
        os.makedirs(os.path.join(d, "var/log"), exist_ok=True)
        os.mknod(os.path.join(d, "var/log/apt"), stat.S_IFCHR, os.makedev(0, 0))        # whole dir gone
        wr(os.path.join(d, "root/.bash_history"), "psql -c 'select 1'\n", 0o600)

    def edit_fill(d):
        t = B.Tree(9304)
        wr(os.path.join(d, "var/log/edit.log"), B.app_lines(t, 12, "edit"))

    def edit_through_kernel(mid, lowers):
        """Changes made by the kernel in the container's upper dir: a renamed
        directory, a chmod and a renamed file (metadata-only copy-ups)."""
        mnt = os.path.join(stage, "..", "mnt-edit")
        os.makedirs(mnt, exist_ok=True)
        lower = ":".join(os.path.join(o2, x, "diff") for x in lowers)
        up, wk = os.path.join(o2, mid, "diff"), os.path.join(o2, mid, "work")
        run(["mount", "-t", "overlay", "overlay", "-o",
             "%s,lowerdir=%s,upperdir=%s,workdir=%s" % (OVERLAY_FEATURES, lower, up, wk), mnt])
        try:
            os.rename(os.path.join(mnt, "var/log/app"), os.path.join(mnt, "var/log/app-moved"))
            os.chmod(os.path.join(mnt, "opt/svc/logs/svc.log"), 0o600)
            os.rename(os.path.join(mnt, "app/logs/app.log"), os.path.join(mnt, "app/logs/app-renamed.log"))
        finally:
            run(["umount", mnt])
        for rel, attr in (("var/log/app-moved", "trusted.overlay.redirect"),
                          ("opt/svc/logs/svc.log", "trusted.overlay.metacopy"),
                          ("app/logs/app-renamed.log", "trusted.overlay.metacopy")):
            os.getxattr(os.path.join(up, rel), attr)  # raises if the kernel did not make it

    res = {}
    for name, cid, tag, cfg, caches, chains, fill, running in (
            ("api", DOCKER_API, DOCKER_APP_TAG, app_cfg, app_cache, app_chain, api_fill, True),
            ("db", DOCKER_DB, DOCKER_DB_TAG, db_cfg, db_cache, db_chain, db_fill, False),
            ("edit", DOCKER_EDIT, DOCKER_APP_TAG, app_cfg, app_cache, app_chain, edit_fill, True)):
        mid = hx("snapsift/docker/mount/" + name)
        image_lowers = list(reversed(caches))
        mk_layer(mid + "-init", init_fill, image_lowers)
        mk_layer(mid, fill, [mid + "-init"] + image_lowers)
        if name == "edit":
            edit_through_kernel(mid, [mid + "-init"] + image_lowers)
        os.makedirs(os.path.join(o2, mid, "merged"))
        md = os.path.join(layerdb, "mounts", cid)
        wr(os.path.join(md, "mount-id"), mid)
        wr(os.path.join(md, "init-id"), mid + "-init")
        wr(os.path.join(md, "parent"), "sha256:" + chains[-1])
        mounts = {}
        if name == "api":
            vol = os.path.join(D, "volumes/applogs/_data")
            t = B.Tree(9303)
            wr(os.path.join(vol, "app-2024-05-01.log"), B.app_lines(t, 25, "volume"))
            mounts["/data/logs"] = {"Source": "/var/lib/docker/volumes/applogs/_data", "Destination": "/data/logs",
                                    "RW": True, "Name": "applogs", "Driver": "local", "Type": "volume",
                                    "Relabel": "", "Propagation": "", "Spec": {"Type": "volume", "Source": "applogs",
                                                                               "Target": "/data/logs"},
                                    "SkipMountpointCreation": False}
        write_docker_container(D, cid, name, tag, "sha256:" + sha(cfg), running, mounts)
        res["%s_%s" % (name, cid[:12])] = dict(id=cid, name=name, mid=mid, image=tag,
                                               state="running" if running else "exited",
                                               volumes={"/data/logs": "volumes/applogs/_data"} if mounts else {})
    for c in (c for c in c8d.values() if c.get("docker")):
        write_docker_container(D, c["id"], c["name"], DOCKER_APP_TAG, manifest["digest"], c["running"], {},
                               driver="overlayfs", manifest=manifest)
        if c["running"]:  # the rootfs mount point (empty offline)
            os.makedirs(os.path.join(D, "rootfs/overlayfs", c["id"]))
    return res


def write_docker_container(D, cid, name, tag, image_id, running, mounts, driver="overlay2", manifest=None):
    """containers/<id>/: config.v2.json, hostconfig.json, the json log, hostname, hosts, resolv.conf.
    `driver` is Docker's storage driver, or with the containerd image store the snapshotter
    (moby daemon/container.go: base.Driver = imageService.StorageDriver()); that store also
    keeps the image's manifest descriptor (ImageManifest) and the image id is its digest."""
    cd = os.path.join(D, "containers", cid)
    state = {"Running": running, "Paused": False, "Restarting": False, "OOMKilled": False,
             "RemovalInProgress": False, "Dead": False, "Pid": 4242 if running else 0, "ExitCode": 0,
             "Error": "", "StartedAt": "2024-05-01T10:00:00.123456789Z",
             "FinishedAt": "0001-01-01T00:00:00Z" if running else "2024-05-01T11:00:00.5Z", "Health": None}
    config = {"StreamConfig": {}, "State": state, "ID": cid, "Created": "2024-05-01T09:59:59.5Z",
              "Managed": False, "Path": "/opt/svc/bin/tool", "Args": [],
              "Config": {"Hostname": cid[:12], "Domainname": "", "User": "", "AttachStdin": False,
                         "AttachStdout": True, "AttachStderr": True, "Tty": False, "OpenStdin": False,
                         "StdinOnce": False, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"],
                         "Cmd": ["/opt/svc/bin/tool"], "Image": tag,
                         "Volumes": {"/data/logs": {}} if mounts else None, "WorkingDir": "/app",
                         "Entrypoint": None, "OnBuild": None,
                         "Labels": {"com.example.team": "payments" if name == "api" else "data"}},
              "Image": image_id, "NetworkSettings": {"Bridge": "", "SandboxID": "", "Networks": {"bridge": {}}},
              "LogPath": "/var/lib/docker/containers/%s/%s-json.log" % (cid, cid),
              "Name": "/" + name, "Driver": driver, "OS": "linux", "MountLabel": "", "ProcessLabel": "",
              "RestartCount": 0, "HasBeenStartedBefore": True, "HasBeenManuallyStopped": not running,
              "MountPoints": mounts, "SecretReferences": None, "ConfigReferences": None,
              "AppArmorProfile": "docker-default",
              "HostnamePath": "/var/lib/docker/containers/%s/hostname" % cid,
              "HostsPath": "/var/lib/docker/containers/%s/hosts" % cid, "ShmPath": "",
              "ResolvConfPath": "/var/lib/docker/containers/%s/resolv.conf" % cid,
              "SeccompProfile": "", "NoNewPrivileges": False, "LocalLogCacheMeta": {"HaveNotifyEnabled": False}}
    host = {"Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "Privileged": False,
            "ReadonlyRootfs": False, "ShmSize": 67108864, "Runtime": "runc"}
    wr(os.path.join(cd, "hostconfig.json"), json.dumps(host, separators=(",", ":")), 0o600)
    t = B.Tree(9310 + len(name))
    wr(os.path.join(cd, cid + "-json.log"),
       docker_json_log(B.app_lines(t, 20, name).splitlines(), 1000), 0o640)
    wr(os.path.join(cd, "hostname"), cid[:12] + "\n")
    wr(os.path.join(cd, "hosts"), "127.0.0.1\tlocalhost\n172.17.0.%d\t%s\n" % (2 if running else 3, cid[:12]))
    wr(os.path.join(cd, "resolv.conf"), "nameserver 10.0.0.2\nsearch ec2.internal\n")
    os.makedirs(os.path.join(cd, "mounts/shm"))
    os.makedirs(os.path.join(cd, "checkpoints"))
    if manifest:
        config["ImageManifest"] = manifest
        config["ImagePlatform"] = {"architecture": "amd64", "os": "linux"}
    wr(os.path.join(cd, "config.v2.json"), json.dumps(config, separators=(",", ":")), 0o600)


# =============================================================================
# 4. the node disk
# =============================================================================
OS_RELEASE_AL = ('NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n'
                 'PLATFORM_ID="platform:al2023"\nPRETTY_NAME="Amazon Linux 2023.4.20240528"\nANSI_COLOR="0;33"\n')
NODE_CONTAINERD_TOML = """version = 2
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
  discard_unpacked_layers = true
  snapshotter = "overlayfs"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"
"""


def cri_log(t, n, tag):
    return "".join("2024-05-02T%02d:%02d:%02d.%09dZ %s F %s" % (
        i // 3600, (i // 60) % 60, i % 60, 1000 + i, "stderr" if i % 7 == 3 else "stdout", line)
        for i, line in enumerate(B.app_lines(t, n, tag).splitlines(True)))


def host_tree():
    t = B.Tree(9201)
    h = "eks-node-1"
    t.file("/etc/hostname", h + "\n")
    t.file("/etc/os-release", OS_RELEASE_AL)
    t.file("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nec2-user:x:1000:1000:EC2 Default User:"
           "/home/ec2-user:/bin/bash\n")
    t.file("/etc/fstab", "LABEL=root  /  ext4  defaults,noatime  0 1\n"
           "UUID=%s  /var/lib/containerd  xfs  defaults,noatime,nofail  0 2\n" % XFS_UUID)
    t.file("/etc/containerd/config.toml", NODE_CONTAINERD_TOML)
    t.file("/etc/docker/daemon.json", '{"storage-driver": "overlay2", "log-driver": "json-file"}\n')
    t.file("/var/log/messages", B.syslog_lines(t, h, 60, prog=["kubelet[2211]", "containerd[1890]", "dockerd[1950]",
                                                                "systemd[1]"]))
    t.file("/root/.bash_history", "crictl ps -a\nctr -n k8s.io containers ls\ndocker ps\n")
    t.file("/home/ec2-user/.bash_history", "sudo -i\n")
    for cid, pod, pns, cname, uid in K8S:
        pod_log = "/var/log/pods/%s_%s_%s/%s/0.log" % (pns, pod, uid, cname)
        t.file(pod_log, cri_log(t, 15, cname))
        t.symlink("/var/log/containers/%s_%s_%s-%s.log" % (pod, pns, cname, cid), pod_log)
    return t


def set_times(root, sec):
    for dp, dn, fn in os.walk(root):
        for n in dn + fn:
            os.utime(os.path.join(dp, n), (sec, sec), follow_symlinks=False)
    os.utime(root, (sec, sec))


def make_ext4(work, stage, size):
    img = os.path.join(work, "root.ext4")
    with open(img, "wb") as f:
        f.truncate(size)
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", "-L", "root", "-U", EXT4_UUID, "-m", "1",
         "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0,hash_seed=" + EXT4_UUID[:-2] + "ff,root_owner=0:0",
         "-d", stage, img])
    # mke2fs -d must have copied the whiteouts (0:0 char devices) and the trusted.* xattrs
    need_dev, need_x = [], []
    for dp, dn, fn in os.walk(stage):
        for n in dn + fn:
            p = os.path.join(dp, n)
            st = os.lstat(p)
            rel = "/" + os.path.relpath(p, stage)
            if stat.S_ISCHR(st.st_mode):
                need_dev.append(rel)
            if not stat.S_ISLNK(st.st_mode):
                for x in os.listxattr(p, follow_symlinks=False):
                    if x.startswith("trusted."):
                        need_x.append((rel, x, os.getxattr(p, x, follow_symlinks=False)))
    fixes = []
    for rel in need_dev:
        out = run(["debugfs", "-R", "stat \"%s\"" % rel, img])
        if "Type: character special" not in out or "Device major/minor number: 00:00" not in out:
            raise SystemExit("mke2fs -d did not copy the whiteout %s:\n%s" % (rel, out[:400]))
    for rel, x, v in need_x:
        out = run(["debugfs", "-R", "ea_get \"%s\" %s" % (rel, x), img], ok=(0, 1))
        if not all(32 <= c < 127 for c in v):  # binary (overlay origin handles): present is enough
            if "ea_get: " in out and "not found" in out.lower():
                raise SystemExit("mke2fs -d did not copy %s of %s" % (x, rel))
            continue
        if v.decode() not in out:
            fixes.append('ea_set "%s" %s %s' % (rel, x, v.decode()))
    if fixes:  # e2fsprogs < 1.43 would need this; 1.47 copies them
        cf = os.path.join(work, "ea.debugfs")
        with open(cf, "w") as f:
            f.write("\n".join(fixes) + "\n")
        run(["debugfs", "-w", "-f", cf, img])
    run(["e2fsck", "-fn", img])
    return img, len(need_dev), len(need_x), len(fixes)


# =============================================================================
# 5. hostile layers
# =============================================================================
def hostile_layers():
    """Returns ([layer bytes], rows). rows: (layer, entry name bytes, type, target bytes, expect, out path, note)."""
    rows = []
    layers = []
    L = None

    def add(name, typ, data=b"", target=b"", expect="reject", out=b"", note=""):
        ti = tarfile.TarInfo(os.fsdecode(name))
        ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = 0o644, 0, 0, "", ""
        ti.type = {"r": tarfile.REGTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE, "d": tarfile.DIRTYPE,
                   "wh": tarfile.REGTYPE}[typ]
        if typ == "d":
            ti.mode = 0o755
        if typ in ("l", "h"):
            ti.linkname = os.fsdecode(target)
        ti.size = len(data) if typ == "r" else 0
        L.raw(ti, data)
        if typ != "d":
            rows.append((len(layers) + 1, name, typ, target, expect, out, note))

    L = Layer("hostile-1", fmt=tarfile.GNU_FORMAT)
    add(b"var/", "d")
    add(b"var/log/", "d")
    add(b"var/log/good.log", "r", b"2024-05-01T00:00:00Z good line that must be extracted\n", expect="extract",
        out=b"/var/log/good.log", note="normal file after/among the hostile ones")
    add(b"../../../../tmp/snapsift-evil", "r", b"evil\n", note="relative path escaping the root")
    add(b"/etc/cron.d/evil", "r", b"* * * * * root /tmp/snapsift-evil\n", expect="inside", out=b"/etc/cron.d/evil",
        note="absolute path: re-rooted inside the image, as Docker and containerd unpack it; never on the host")
    add(b"./var/log/../../../escape.log", "r", b"escape\n", note="dot-dot inside the path escapes the root")
    add(b"var/log/link", "l", target=b"/etc", note="symlink to a host directory (record at most, never create)")
    add(b"var/log/link/passwd", "r", b"root::0:0::/root:/bin/sh\n",
        note="regular file written through the symlink above")
    add(b"var/log/hl", "h", target=b"/etc/shadow", note="hard link to a host path")
    add(b"var/log/hl2", "h", target=b"../../outside", note="hard link escaping the root")
    add(b"var/log/bad\nname-\xff\xfe.log", "r", b"odd name, normal content\n", expect="extract",
        out=b"/var/log/bad\nname-\xff\xfe.log", note="newline and invalid UTF-8 in the name: extract, escaped name")
    layers.append(L.bytes())
    L = Layer("hostile-2", fmt=tarfile.GNU_FORMAT)
    add(b"../../.wh.x", "wh", note="whiteout of ../../x (outside the root)")
    add(b"var/log/.wh...", "wh", note="whiteout whose target name is '..'")
    layers.append(L.bytes())
    return layers, rows


# =============================================================================
# listings
# =============================================================================
def write_tsv(path, header, rows):
    with open(path, "w", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")


def list_rows(source, container, listing):
    return [(source, container, B.pct(p), v[0], v[1], v[2], B.pct(v[3]))
            for p, v in sorted(listing.items()) if v[0] in ("r", "l")]


def xfs_extents(mnt, rel, part_off):
    """Data extents of a file: (file_offset, image_offset, length), from xfs_bmap -v (512-byte units)."""
    path = os.path.join(mnt, rel)
    size = os.path.getsize(path)
    out = run(["xfs_bmap", "-vp", path])
    ext = []
    for line in out.splitlines():
        m = re.match(r"\s*\d+: \[(\d+)\.\.(\d+)\]:\s+(\d+)\.\.(\d+)\s+\d+\s+\(\S+\)\s+\d+\s+([0-7]+)", line)
        if not m:
            if re.match(r"\s*\d+: \[", line) and "hole" not in line:
                raise SystemExit("cannot parse xfs_bmap line %r" % line)
            continue
        f0, f1, b0, flags = int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(5), 8)
        if flags & 0o10000:  # unwritten (preallocated): no data on disk
            continue
        fo = f0 * 512
        ln = min((f1 - f0 + 1) * 512, size - fo)
        if ln > 0:
            ext.append((fo, part_off + b0 * 512, ln))
    return ext


def verify_extents(disk, mnt, rows):
    with open(disk, "rb") as d:
        for rel, img_off, ln, fo in rows:
            with open(os.path.join(mnt, rel.lstrip("/").split("/", 3)[3]), "rb") as f:
                f.seek(fo)
                want = f.read(ln)
            d.seek(img_off)
            if d.read(ln) != want:
                raise SystemExit("containers-files.tsv: %s @%d does not match the disk image" % (rel, img_off))


FILES_HDR = ("path", "image_offset", "length", "file_offset")
BOLT_FILES = ("io.containerd.metadata.v1.bolt/meta.db", "io.containerd.snapshotter.v1.overlayfs/metadata.db")


def read_tsv(path):
    with open(path) as f:
        lines = f.read().splitlines()
    return [l.split("\t") for l in lines[1:]]


def check_files_tsv(disk, tsv, work):
    """The committed containers-files.tsv must describe the committed node image."""
    rows = [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in read_tsv(tsv)]
    p2 = partitions(disk)[1]
    M = Mounts()
    try:
        dev = M.loop(disk, p2[0], p2[1], ro=True)
        mnt = M.mount(["-o", "ro", dev], os.path.join(work, "chk-xfs"))
        verify_extents(disk, mnt, rows)
        for f in BOLT_FILES:
            covered = sum(r[2] for r in rows if r[0].endswith("/" + f))
            size = os.path.getsize(os.path.join(mnt, f))
            if covered > size or covered == 0:
                raise SystemExit("containers-files.tsv: %s covers %d of %d bytes" % (f, covered, size))
    finally:
        M.close()


def partitions(disk):
    j = json.loads(run(["sfdisk", "-J", disk]))["partitiontable"]
    return [(p["start"] * 512, p["size"] * 512) for p in j["partitions"]]


# =============================================================================
# main build
# =============================================================================
EXT4_SIZE = 48 * MiB
DISK_SIZE = 352 * MiB  # p1 48 MiB ext4, p2 ~303 MiB XFS (mkfs.xfs wants >= 300 MB)


def build(out, work):
    cdir = os.path.join(out, "containers")
    edir = os.path.join(out, "expected")
    os.makedirs(cdir, exist_ok=True)
    os.makedirs(edir, exist_ok=True)
    report = {}

    # ---- 1. images ----
    app = [l.bytes() for l in app_layers()]
    oci, man_digest, cfg_digest, diff_ids = oci_archive(app, zstd_index=1)
    dock, dock_id, _ = docker_archive(app, DOCKER_APP_TAG)
    hostile, hrows = hostile_layers()
    hdock, hid, _ = docker_archive(hostile, "snapsift/hostile:evil")
    for n, data in (("app-image.oci.tar", oci), ("app-image.docker.tar", dock),
                    ("hostile-image.docker.tar", hdock)):
        with open(os.path.join(cdir, n), "wb") as f:
            f.write(data)
    oci_path = os.path.join(cdir, "app-image.oci.tar")
    # this script's own unpack of the layers (OCI whiteouts -> overlay whiteouts)
    ldirs = []
    for i, raw in enumerate(app):
        d = os.path.join(work, "layer%d" % (i + 1))
        apply_layer(raw, d)
        ldirs.append(d)
    top_first = list(reversed(ldirs))

    M = Mounts()
    listing, hidden, meta = [], [], []
    try:
        img_union = union_listing(M, top_first, os.path.join(work, "mnt-img"))
        img_hidden = hidden_of(top_first, img_union)
        for src in ("app-image.oci.tar", "app-image.docker.tar"):
            listing += list_rows(src, "-", img_union)
            hidden += [(src, "-", B.pct(p), why) for p, why in sorted(img_hidden.items())]
        meta.append(("app-image.oci.tar", "image", "-", "sha256:" + man_digest, IMAGE_REF, "-", "-", "-", 4, "-"))
        meta.append(("app-image.docker.tar", "image", "-", "sha256:" + dock_id, DOCKER_APP_TAG, "-", "-", "-", 4, "-"))
        report["image"] = (len([v for v in img_union.values() if v[0] in "rl"]), len(img_hidden))

        # ---- 2. disk layout, XFS with a real containerd ----
        disk = os.path.join(work, "containers-node.img")
        with open(disk, "wb") as f:
            f.truncate(DISK_SIZE)
        run(["sgdisk", "-o", "-U", DISK_GUID,
             "-n", "1:2048:+%dM" % (EXT4_SIZE // MiB), "-t", "1:8300", "-c", "1:root",
             "-u", "1:5eed00c0-0000-4000-8000-0000000000a1",
             "-n", "2:0:0", "-t", "2:8300", "-c", "2:containerd", "-u", "2:5eed00c0-0000-4000-8000-0000000000a2",
             disk])
        (p1_off, p1_size), (p2_off, p2_size) = partitions(disk)
        xfs = os.path.join(work, "containerd.xfs")
        with open(xfs, "wb") as f:
            f.truncate(p2_size)
        run(["mkfs.xfs", "-q", "-f", "-K", "-m", "uuid=" + XFS_UUID, "-L", "containerd", xfs])
        dev = M.loop(xfs)
        xroot = M.mount([dev], os.path.join(work, "xfs-rw"))
        ctrd, view, info = containerd_phase(xroot, work, oci_path, M, "sha256:" + chain_ids(diff_ids)[-1])
        if view != img_union:
            raise SystemExit("containerd's unpack of the image differs from this script's:\n%r\n%r" % (
                sorted(set(view.items()) ^ set(img_union.items()))[:10], None))
        report["ctr-info"] = info
        M.umount(xroot)
        M.unloop(dev)
        run(["xfs_repair", "-n", xfs])

        # ---- 3. ext4 root with the Docker tree ----
        stage = os.path.join(work, "root.stage")
        host_tree().write(stage)
        os.makedirs(os.path.join(stage, "var/lib/containerd"))  # p2's mount point
        with tarfile.open(fileobj=io.BytesIO(oci)) as tf:
            manifest = json.load(tf.extractfile("index.json"))["manifests"][0]
        manifest = {k: manifest[k] for k in ("mediaType", "digest", "size", "platform")}
        dock_res = docker_phase(stage, app, db_layer().bytes(), ctrd, manifest)
        set_times(stage, B.DIR_TIME[0])
        ext4, ndev, nx, nfix = make_ext4(work, stage, p1_size)
        report["ext4"] = "mke2fs -d copied %d whiteout char devices and %d trusted.* xattrs (%d fixed with debugfs)" % (
            ndev, nx, nfix)
        B.embed(disk, ext4, p1_off)
        B.embed(disk, xfs, p2_off)
        os.unlink(ext4)
        os.unlink(xfs)

        # ---- listings from the final disk image, through the kernel ----
        d1 = M.loop(disk, p1_off, p1_size, ro=True)
        rmnt = M.mount(["-o", "ro", d1], os.path.join(work, "ro-root"))
        d2 = M.loop(disk, p2_off, p2_size, ro=True)
        xmnt = M.mount(["-o", "ro", d2], os.path.join(work, "ro-xfs"))
        counts = {}
        for folder, c in sorted(ctrd.items()):
            layers = [os.path.join(xmnt, c["upper"])] + [os.path.join(xmnt, l) for l in c["lowers"]]
            u = union_listing(M, layers, os.path.join(work, "mnt-u"))
            hid = hidden_of(layers, u)
            listing += list_rows("node", folder, u)
            hidden += [("node", folder, B.pct(p), why) for p, why in sorted(hid.items())]
            if c.get("docker"):  # Docker's containerd image store: named from config.v2.json
                meta.append(("node", "docker", folder, c["id"], DOCKER_APP_TAG, "-", "-", c["name"], len(layers),
                             "running" if c["running"] else "exited"))
            else:
                meta.append(("node", "containerd", folder, c["id"], IMAGE_REF, c["pod"],
                             c["pns"], c["name"], len(layers), "-"))
            counts[folder] = (len([v for v in u.values() if v[0] in "rl"]), len(hid))
        o2 = os.path.join(rmnt, "var/lib/docker/overlay2")
        for folder, c in sorted(dock_res.items()):
            mdir = os.path.join(rmnt, "var/lib/docker/image/overlay2/layerdb/mounts", c["id"])
            mid = open(os.path.join(mdir, "mount-id")).read()
            lower = open(os.path.join(o2, mid, "lower")).read().split(":")
            layers = [os.path.join(o2, mid, "diff")] + [
                os.path.normpath(os.path.join(o2, "l", os.readlink(os.path.join(o2, l)))) for l in lower]
            u = union_listing(M, layers, os.path.join(work, "mnt-u"))
            hid = hidden_of(layers, u)
            vol = {}
            for dest, src in c["volumes"].items():  # named volumes: not in the overlay
                for p, v in walk_listing(os.path.join(rmnt, "var/lib/docker", src)).items():
                    vol[dest.encode() + p] = v
            merged = dict(u)
            merged.update(vol)
            listing += list_rows("node", folder, merged)
            hidden += [("node", folder, B.pct(p), why) for p, why in sorted(hid.items())]
            meta.append(("node", "docker", folder, c["id"], c["image"], "-", "-", c["name"], len(layers), c["state"]))
            counts[folder] = (len([v for v in u.values() if v[0] in "rl"]), len(hid), len(vol))
        report["counts"] = counts

        # containers-files.tsv: where the two bolt files are inside the disk image
        frows = []
        for f in BOLT_FILES:
            for fo, io_, ln in xfs_extents(xmnt, f, p2_off):
                frows.append(("/var/lib/containerd/" + f, io_, ln, fo))
        verify_extents(disk, xmnt, frows)
        report["files"] = frows

        # sleuthkit sanity on the ext4 root (TSK 4.11 has no XFS)
        fls = run(["fls", "-r", "-p", "-o", str(p1_off // 512), disk])
        whiteouts = [l for l in fls.splitlines() if l.startswith("c/c")]
        if len(whiteouts) != ndev:
            raise SystemExit("fls sees %d char devices, staging had %d:\n%s" % (len(whiteouts), ndev, "\n".join(whiteouts)))
        ino = [l for l in fls.splitlines() if l.endswith("var/lib/docker/image/overlay2/repositories.json")]
        ist = run(["istat", "-o", str(p1_off // 512), disk, ino[0].split()[1].rstrip(":")])
        if not re.search(r"^mode: r", ist, re.M):
            raise SystemExit("istat does not see repositories.json as a regular file:\n" + ist)
        report["fls"] = whiteouts
    finally:
        M.close()

    key = lambda r: (r[0], r[1], r[2])
    write_tsv(os.path.join(edir, "containers.tsv"),
              ("source", "container", "path", "type", "size", "sha256", "link_target"), sorted(listing, key=key))
    write_tsv(os.path.join(edir, "containers-hidden.tsv"), ("source", "container", "path", "why"),
              sorted(hidden, key=key))
    write_tsv(os.path.join(edir, "containers-meta.tsv"),
              ("source", "runtime", "container", "id", "image", "pod", "namespace", "name", "layers", "state"),
              sorted(meta, key=key))
    write_tsv(os.path.join(edir, "containers-files.tsv"), FILES_HDR, frows)
    write_tsv(os.path.join(edir, "containers-hostile.tsv"),
              ("layer", "entry", "type", "link_target", "expect", "output_path", "note"),
              [(l, B.pct(n), t, B.pct(tg) or "-", e, B.pct(o) or "-", note) for l, n, t, tg, e, o, note in hrows])
    return disk, report


LISTINGS = ("containers.tsv", "containers-hidden.tsv", "containers-meta.tsv", "containers-hostile.tsv")


def main():
    if os.geteuid() != 0:
        raise SystemExit("build-containers.py: run as root (loop and overlay mounts, mknod, trusted.* xattrs)")
    for t in ("containerd", "ctr", "zstd", "mkfs.xfs", "xfs_bmap", "xfs_repair", "mke2fs", "debugfs", "e2fsck",
              "sgdisk", "sfdisk", "fls", "istat", "setfattr", "losetup", "mount"):
        if not shutil.which(t, path=ENV["PATH"]):
            raise SystemExit("build-containers.py: missing tool %s" % t)
    check = "--check" in sys.argv
    keep = "--keep" in sys.argv
    work = tempfile.mkdtemp(prefix="snapsift-ctr-")
    out = os.path.join(work, "out") if check else here
    try:
        disk, report = build(out, os.path.join(work, "w"))
        if check:
            rc = 0
            for n in LISTINGS:
                rc |= subprocess.run(["diff", "-u", os.path.join(here, "expected", n),
                                      os.path.join(out, "expected", n)]).returncode
            for n in ("app-image.oci.tar", "app-image.docker.tar", "hostile-image.docker.tar"):
                a, b = (open(os.path.join(d, "containers", n), "rb").read() for d in (here, out))
                if a != b:
                    print("note: %s is not byte-identical to the rebuilt one (zstd/python version?); "
                          "the listings above decide" % n)
            # the extents depend on XFS's allocator: check the committed table against the committed image
            committed = os.path.join(work, "committed.img")
            with gzip.open(os.path.join(here, "containers-node.img.gz"), "rb") as g, open(committed, "wb") as f:
                shutil.copyfileobj(g, f, MiB)
            check_files_tsv(committed, os.path.join(here, "expected", "containers-files.tsv"), work)
            print("containers: listings %s" % ("DIFFER" if rc else "match"))
            sys.exit(1 if rc else 0)
        B.gzip_to(disk, os.path.join(out, "containers-node.img.gz"))
        print(json.dumps({k: v for k, v in report.items() if k != "ctr-info"}, indent=1, default=str))
        for ns, s in report["ctr-info"]["snapshots"].items():
            print("# ctr -n %s snapshots ls\n%s" % (ns, s))
    finally:
        if keep:
            print("work dir kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
