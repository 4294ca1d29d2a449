#!/usr/bin/env python3
"""Build images/linux-lvm.img.gz: a RHEL/Amazon-Linux-like disk with LVM.

Run as root (it needs a loop device for LVM's own tools):
    python3 images/build-lvm.py            # writes images/linux-lvm.img.gz + expected/
    python3 images/build-lvm.py --check    # rebuild in a temp dir, diff the listings

GPT: p1 /boot (ext4), p2 /data (ext4, an EBS-style application volume),
p3 an LVM2 physical volume with VG vg0: root (the OS), var_log (mounted at
/var/log, in two non-contiguous segments), home (mounted at /home).
The kernel here has no device-mapper, so the LVs are not created with
lvcreate: their metadata is written by LVM itself from a description
(`vgcfgrestore`), and the filesystems are placed where LVM's own segment
map (`lvs --segments`) says each LV's extents are. The listings come from
sleuthkit on each filesystem image (see build.py's oracle).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import build as B  # noqa: E402

MiB = B.MiB
EXTENT = MiB
PV_UUID = "SnApSf-t0PV-0000-0000-0000-0000-00000a"
VG = "vg0"
# (lv, [(start_extent_in_lv, count, pv_extent)])
LAYOUT = [
    ("root", [(0, 24, 0)]),
    ("var_log", [(0, 8, 24), (8, 8, 40)]),  # two segments, home in between
    ("home", [(0, 8, 32)]),
]
LV_IDS = {"root": "SnApSf-t0LV-0000-0000-0000-0000-0000r0", "var_log": "SnApSf-t0LV-0000-0000-0000-0000-0000v0",
          "home": "SnApSf-t0LV-0000-0000-0000-0000-0000h0"}
ENV = dict(B.ENV, LVM_SUPPRESS_FD_WARNINGS="1")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.PIPE, **kw).stdout.decode()


def tree_root():
    t = B.Tree(601)
    t.file("/etc/hostname", "lvm01.internal\n")
    t.file("/etc/os-release", 'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nPRETTY_NAME="Amazon Linux 2023"\n')
    t.file("/etc/passwd", B.passwd(["ec2-user:x:1000:1000:EC2 Default User:/home/ec2-user:/bin/bash",
                                    "alice:x:1001:1001::/home/alice:/bin/bash"]))
    t.file("/etc/fstab", "# /etc/fstab, as on an LVM-based cloud image\n"
           "/dev/mapper/vg0-root  /         ext4  defaults  0 1\n"
           "UUID=5eed0008-0001-4000-8000-000000000001  /boot  ext4  defaults  0 2\n"
           "/dev/vg0/var_log      /var/log  ext4  defaults  0 2\n"
           "LABEL=home            /home     ext4  defaults  0 2\n"
           "PARTLABEL=data        /data     ext4  defaults,nofail  0 2\n"
           "/dev/mapper/vg0-swap  none      swap  defaults  0 0\n"
           "tmpfs                 /tmp      tmpfs defaults  0 0\n")
    t.file("/root/.bash_history", B.hist(t, B.SHELL_CMDS, 20))
    t.file("/usr/bin/ls", b"\x7fELF\x02\x01\x01" + t.rand(20000))
    t.file("/usr/share/doc/app/changes.log", "not collected: /usr is not swept\n")
    t.file("/var/log/.keep", "")  # the mount point's own (hidden) content
    t.file("/home/.keep", "")
    return t


def tree_var_log():
    t = B.Tree(602)
    h = "lvm01"
    t.file("/messages", B.syslog_lines(t, h, 80))
    t.file("/secure", B.auth_lines(t, h, 30))
    t.file("/audit/audit.log", "type=USER_LOGIN msg=audit(1714600000.123:42): pid=1 uid=0 res=failed\n")
    t.file("/nginx/access.log", B.access_lines(t, 40))
    t.file("/cloud-init.log", "cloud-init: modules-final done\n")
    # Larger than the first 8 MiB segment: its tail lives in the second one.
    t.file("/messages-20240501", B.syslog_lines(t, h, 110000))
    return t


def tree_home():
    t = B.Tree(603)
    t.file("/ec2-user/.bash_history", B.hist(t, B.SHELL_CMDS, 25))
    t.file("/alice/.zsh_history", B.zsh_hist(t, 10))
    t.file("/alice/notes.txt", "not collected\n")
    t.file("/carol/.bash_history", "whoami\nid\n")  # carol is not in /etc/passwd
    return t


def tree_boot():
    t = B.Tree(604)
    t.file("/grub2/grub.cfg", "set default=0\n")
    t.file("/vmlinuz-6.1", t.rand(30000))
    return t


def tree_data():
    t = B.Tree(605)
    t.file("/app/logs/server.log", B.app_lines(t, 60))
    t.file("/app/logs/server.log.1.gz", B.gz(B.app_lines(t, 30)))
    t.file("/app/data/cache.bin", t.rand(5000))
    t.file("/kafka/00000000000000000042.log", t.rand(3000))
    return t


def write_volumes(path, image, volumes):
    """volumes-*.tsv rows: (key, size, label, os_root, hostname), ext4 on GPT."""
    with open(path, "w") as f:
        f.write("image\toffset\tsize\tfstype\tlabel\tos_root\thostname\tptable\tsector_size\n")
        for key, size, label, osr, host in volumes:
            f.write("%s\t%s\t%d\text4\t%s\t%s\t%s\tgpt\t512\n" % (image, key, size, label, osr, host))


def expect_for(path, typ, mount, os_homes):
    """The built-in targets, as documented: the OS targets at the mounted path,
    and on every volume but the OS root the application-log sweep."""
    host_path = (mount.rstrip("/").encode() + path) if mount else path
    e = B.expect(host_path, typ, True, os_homes)
    if mount != "/" and e == "skip":
        e = B.expect(path, typ, False, set())
    return e


def build(out):
    if os.geteuid() != 0:
        sys.exit("build-lvm.py needs root (a loop device for LVM's tools)")
    work = tempfile.mkdtemp(prefix="snapsift-lvm-")
    notes = []
    try:
        disk = os.path.join(work, "linux-lvm.img")
        B.pattern_file(disk, 80 * MiB)
        run(["sgdisk", "-o", "-U", "5eed0008-0000-4000-8000-000000000000",
             "-n", "1:2048:+8M", "-t", "1:8300", "-c", "1:boot", "-u", "1:5eed0008-0000-4000-8000-0000000000b1",
             "-n", "2:0:+12M", "-t", "2:8300", "-c", "2:data", "-u", "2:5eed0008-0000-4000-8000-0000000000b2",
             "-n", "3:0:0", "-t", "3:8E00", "-c", "3:lvm", "-u", "3:5eed0008-0000-4000-8000-0000000000b3", disk])
        pt = B.sfdisk_layout(disk)
        p1, p2, p3 = pt["partitions"][:3]
        # LVM on partition 3, through a loop device over just that range.
        loop = run(["losetup", "-f", "--show", "-o", str(p3["start"] * 512), "--sizelimit",
                    str(p3["size"] * 512), disk]).strip()
        try:
            run(["pvcreate", "-y", "-ff", "--norestorefile", "--uuid", PV_UUID, "--dataalignment", "1m", loop])
            run(["vgcreate", "-s", "1m", VG, loop])
            meta = os.path.join(work, "vg0.txt")
            run(["vgcfgbackup", "-f", meta, VG])
            text = open(meta).read()
            lvs = "\tlogical_volumes {\n"
            for lv, segs in LAYOUT:
                lvs += '\t\t%s {\n\t\t\tid = "%s"\n\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]\n' \
                       '\t\t\tflags = []\n\t\t\tcreation_time = 1717243200\n\t\t\tcreation_host = "build"\n' \
                       '\t\t\tsegment_count = %d\n' % (lv, LV_IDS[lv], len(segs))
                for i, (start, count, pe) in enumerate(segs, 1):
                    lvs += '\t\t\tsegment%d {\n\t\t\t\tstart_extent = %d\n\t\t\t\textent_count = %d\n' \
                           '\t\t\t\ttype = "striped"\n\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\n' \
                           '\t\t\t\t\t"pv0", %d\n\t\t\t\t]\n\t\t\t}\n' % (i, start, count, pe)
                lvs += "\t\t}\n"
            lvs += "\t}\n"
            # Insert before the VG section's closing brace.
            idx = text.rindex("}")
            text = text[:idx] + lvs + text[idx:]
            open(meta, "w").write(text)
            run(["vgcfgrestore", "-f", meta, VG])
            # LVM's own reading of where each LV's extents are.
            seg_out = run(["lvs", "--segments", "--noheadings", "--separator", "|", "-o",
                           "lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges", VG])
            pe_start = int(run(["pvs", "--noheadings", "--nosuffix", "--units", "b", "-o", "pe_start",
                                loop]).strip())
        finally:
            subprocess.run(["vgchange", "-an", VG], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            run(["losetup", "-d", loop])
        segs = {}
        for line in seg_out.splitlines():
            name, lstart, count, ranges = [x.strip() for x in line.split("|")]
            m = re.search(r":(\d+)-(\d+)$", ranges)
            segs.setdefault(name, []).append((int(lstart), int(count), int(m.group(1))))
        # Filesystems: LVs first (placed by LVM's segment map), then partitions.
        specs = [("root", tree_root(), "lvroot", "5eed0008-0000-4000-8000-0000000000c0", 4096),
                 ("var_log", tree_var_log(), "varlog", "5eed0008-0000-4000-8000-0000000000c1", 1024),
                 ("home", tree_home(), "home", "5eed0008-0000-4000-8000-0000000000c2", 1024)]
        fsrows, volumes = [], []
        built = {}
        for lv, tree, label, uuid, bs in specs:
            size = sum(c for _, c, _ in segs[lv]) * EXTENT
            fsimg, stage = B.make_fs(work, "lvm-" + lv, tree, size, "ext4", label, uuid, bs)
            with open(disk, "r+b") as d, open(fsimg, "rb") as f:
                for lstart, count, pe in segs[lv]:
                    f.seek(lstart * EXTENT)
                    d.seek(p3["start"] * 512 + pe_start + pe * EXTENT)
                    d.write(f.read(count * EXTENT))
            built[lv] = (fsimg, stage, label, size)
        fs1, st1 = B.make_fs(work, "lvm-boot", tree_boot(), p1["size"] * 512, "ext4", "boot",
                             "5eed0008-0001-4000-8000-000000000001", 1024)
        fs2, st2 = B.make_fs(work, "lvm-data", tree_data(), p2["size"] * 512, "ext4", "data",
                             "5eed0008-0002-4000-8000-000000000002", 1024)
        B.embed(disk, fs1, p1["start"] * 512)
        B.embed(disk, fs2, p2["start"] * 512)
        root_rows, _, root_staging = B.oracle(built["root"][0], 512, 0, built["root"][0], built["root"][1], notes, "lvm root")
        homes = B.homes_of(root_staging) | {b"/home/carol"}  # /home's directories count as homes
        mounts = [("vg0-root", built["root"], "/", "yes"), ("vg0-var_log", built["var_log"], "/var/log", "no"),
                  ("vg0-home", built["home"], "/home", "no")]
        for key, (fsimg, stage, label, size), mount, osr in mounts:
            rows = root_rows if key == "vg0-root" else B.oracle(fsimg, 512, 0, fsimg, stage, notes, "lvm " + key)[0]
            for r in rows:
                r["expect"] = expect_for(r["path"], r["type"], mount, homes)
            fsrows.append((key, rows))
            volumes.append((key, size, label, osr, "lvm01.internal" if osr == "yes" else ""))
        for (p, fsimg, stage, label, mount) in [(p1, fs1, st1, "boot", "/boot"), (p2, fs2, st2, "data", "/data")]:
            off = p["start"] * 512
            rows = B.oracle(disk, 512, off, fsimg, stage, notes, "lvm " + label)[0]
            for r in rows:
                r["expect"] = expect_for(r["path"], r["type"], mount, homes)
            fsrows.append((str(off), rows))
            volumes.append((str(off), p["size"] * 512, label, "no", ""))
        os.makedirs(os.path.join(out, "expected"), exist_ok=True)
        B.write_listing(os.path.join(out, "expected", "linux-lvm.tsv"), fsrows)
        write_volumes(os.path.join(out, "expected", "volumes-lvm.tsv"), "linux-lvm", volumes)
        return disk
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def build_multi(out):
    """Two disks, one volume group: vg1's root LV on disk a, its var_log LV
    with one segment on each disk (as when an EBS volume is added to a VG)."""
    work = tempfile.mkdtemp(prefix="snapsift-lvm2-")
    notes = []
    try:
        a = os.path.join(work, "lvm-multi-a.img")
        b = os.path.join(work, "lvm-multi-b.img")
        B.pattern_file(a, 48 * MiB)
        B.pattern_file(b, 24 * MiB)
        run(["sgdisk", "-o", "-U", "5eed000a-0000-4000-8000-000000000000", "-n", "1:2048:0", "-t", "1:8E00", "-c", "1:lvm", a])
        p1 = B.sfdisk_layout(a)["partitions"][0]
        la = run(["losetup", "-f", "--show", "-o", str(p1["start"] * 512), "--sizelimit", str(p1["size"] * 512), a]).strip()
        lb = run(["losetup", "-f", "--show", b]).strip()
        try:
            run(["pvcreate", "-y", "-ff", "--norestorefile", "--uuid", "SnApSf-t0PV-0000-0000-0000-0000-00000b", "--dataalignment", "1m", la])
            run(["pvcreate", "-y", "-ff", "--norestorefile", "--uuid", "SnApSf-t0PV-0000-0000-0000-0000-00000c", "--dataalignment", "1m", lb])
            run(["vgcreate", "-s", "1m", "vg1", la, lb])
            meta = os.path.join(work, "vg1.txt")
            run(["vgcfgbackup", "-f", meta, "vg1"])
            text = open(meta).read()
            # Which pvN is which loop device.
            pvname = {}
            for m in re.finditer(r"(pv\d+) \{[^}]*?device = \"([^\"]+)\"", text, re.S):
                pvname[m.group(2)] = m.group(1)
            pa, pb = pvname[la], pvname[lb]
            lvs = ("\tlogical_volumes {\n"
                   "\t\troot {\n\t\t\tid = \"SnApSf-t0LV-0000-0000-0000-0000-0001r0\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n"
                   "\t\t\tflags = []\n\t\t\tsegment_count = 1\n"
                   "\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 24\n\t\t\t\ttype = \"striped\"\n"
                   "\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\n\t\t\t\t\t\"%s\", 0\n\t\t\t\t]\n\t\t\t}\n\t\t}\n"
                   "\t\tvar_log {\n\t\t\tid = \"SnApSf-t0LV-0000-0000-0000-0000-0001v0\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n"
                   "\t\t\tflags = []\n\t\t\tsegment_count = 2\n"
                   "\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 8\n\t\t\t\ttype = \"striped\"\n"
                   "\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\n\t\t\t\t\t\"%s\", 24\n\t\t\t\t]\n\t\t\t}\n"
                   "\t\t\tsegment2 {\n\t\t\t\tstart_extent = 8\n\t\t\t\textent_count = 12\n\t\t\t\ttype = \"striped\"\n"
                   "\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\n\t\t\t\t\t\"%s\", 0\n\t\t\t\t]\n\t\t\t}\n\t\t}\n"
                   # A striped LV: 2 stripes of 64 KiB, one on each disk.
                   "\t\tdata {\n\t\t\tid = \"SnApSf-t0LV-0000-0000-0000-0000-0001d0\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n"
                   "\t\t\tflags = []\n\t\t\tsegment_count = 1\n"
                   "\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 8\n\t\t\t\ttype = \"striped\"\n"
                   "\t\t\t\tstripe_count = 2\n\t\t\t\tstripe_size = 128\n\t\t\t\tstripes = [\n\t\t\t\t\t\"%s\", 32,\n\t\t\t\t\t\"%s\", 12\n\t\t\t\t]\n\t\t\t}\n\t\t}\n"
                   "\t}\n") % (pa, pa, pb, pa, pb)
            idx = text.rindex("}")
            open(meta, "w").write(text[:idx] + lvs + text[idx:])
            run(["vgcfgrestore", "-f", meta, "vg1"])
            seg_out = run(["lvs", "--segments", "--noheadings", "--separator", "|", "--units", "b", "--nosuffix", "-o",
                           "lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges,stripe_size", "vg1"])
            pe_a = int(run(["pvs", "--noheadings", "--nosuffix", "--units", "b", "-o", "pe_start", la]).strip())
            pe_b = int(run(["pvs", "--noheadings", "--nosuffix", "--units", "b", "-o", "pe_start", lb]).strip())
        finally:
            subprocess.run(["vgchange", "-an", "vg1"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            run(["losetup", "-d", la])
            run(["losetup", "-d", lb])
        where = {la: (a, p1["start"] * 512 + pe_a), lb: (b, pe_b)}
        # LVM's own segment map: (start extent, extents, [(device, first PE)…], stripe size).
        segs = {}
        for line in seg_out.splitlines():
            name, lstart, count, ranges, ssize = [x.strip() for x in line.split("|")]
            stripes = [(m.group(1), int(m.group(2))) for m in re.finditer(r"(\S+):(\d+)-(\d+)", ranges)]
            segs.setdefault(name, []).append((int(lstart), int(count), stripes, int(ssize or 0)))
        t = B.Tree(611)
        t.file("/etc/hostname", "multi01\n")
        t.file("/etc/os-release", 'PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"\n')
        t.file("/etc/passwd", B.passwd([]))
        t.file("/etc/fstab", "/dev/mapper/vg1-root / xfs defaults 0 0\n/dev/mapper/vg1-var_log /var/log ext4 defaults 0 0\n")
        t.file("/root/.bash_history", B.hist(t, B.SHELL_CMDS, 12))
        v = B.Tree(612)
        v.file("/messages", B.syslog_lines(v, "multi01", 60))
        v.file("/messages-20240501", B.syslog_lines(v, "multi01", 140000))  # spans both disks
        d = B.Tree(613)
        d.file("/app/logs/server.log", B.app_lines(d, 40000))  # ~2 MiB: crosses many stripe chunks
        d.file("/app/logs/small.log", B.app_lines(d, 10))
        d.file("/app/cache.bin", d.rand(70000))
        rows_all = []
        for lv, tree, label, uuid in [("root", t, "mroot", "5eed000a-0000-4000-8000-0000000000d0"),
                                      ("var_log", v, "mvarlog", "5eed000a-0000-4000-8000-0000000000d1"),
                                      ("data", d, "mdata", "5eed000a-0000-4000-8000-0000000000d2")]:
            size = sum(c for _, c, _, _ in segs[lv]) * EXTENT
            fsimg, stage = B.make_fs(work, "m-" + lv, tree, size, "ext4", label, uuid, 1024)
            with open(fsimg, "rb") as f:
                for lstart, count, stripes, ssize in segs[lv]:
                    f.seek(lstart * EXTENT)
                    data = f.read(count * EXTENT)
                    if len(stripes) == 1:
                        chunks = [(0, 0, data)]
                        ssize = len(data)
                    else:
                        # dm-stripe: chunk c goes to stripe c % n, at (c // n) * stripe size.
                        n = len(stripes)
                        chunks = [(c % n, (c // n) * ssize, data[c * ssize:(c + 1) * ssize]) for c in range(len(data) // ssize)]
                    for stripe, off, piece in chunks:
                        dev, pe = stripes[stripe]
                        img, base = where[dev]
                        with open(img, "r+b") as out_:
                            out_.seek(base + pe * EXTENT + off)
                            out_.write(piece)
            rows = B.oracle(fsimg, 512, 0, fsimg, stage, notes, "multi " + lv)[0]
            mount = {"root": "/", "var_log": "/var/log"}.get(lv)
            for r in rows:
                r["expect"] = expect_for(r["path"], r["type"], mount, {b"/root"}) if mount else B.expect(r["path"], r["type"], False, set())
            rows_all.append(("vg1-" + lv, rows, size, label, "yes" if lv == "root" else "no"))
        B.write_listing(os.path.join(out, "expected", "lvm-multi.tsv"), [(k, rows) for k, rows, _, _, _ in rows_all])
        write_volumes(os.path.join(out, "expected", "volumes-lvm-multi.tsv"), "lvm-multi",
                      [(k, size, label, osr, "multi01" if osr == "yes" else "") for k, _, size, label, osr in rows_all])
        return a, b
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def main():
    if "--check" in sys.argv:
        tmp = tempfile.mkdtemp()
        disk = build(tmp)
        shutil.rmtree(os.path.dirname(disk), ignore_errors=True)
        rc = 0
        a, _ = build_multi(tmp)
        shutil.rmtree(os.path.dirname(a), ignore_errors=True)
        for n in ("linux-lvm.tsv", "volumes-lvm.tsv", "lvm-multi.tsv", "volumes-lvm-multi.tsv"):
            rc |= subprocess.run(["diff", "-u", os.path.join(here, "expected", n), os.path.join(tmp, "expected", n)]).returncode
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit(1 if rc else 0)
    disk = build(here)
    B.gzip_to(disk, os.path.join(here, "linux-lvm.img.gz"))
    shutil.rmtree(os.path.dirname(disk), ignore_errors=True)
    a, b = build_multi(here)
    B.gzip_to(a, os.path.join(here, "lvm-multi-a.img.gz"))
    B.gzip_to(b, os.path.join(here, "lvm-multi-b.img.gz"))
    shutil.rmtree(os.path.dirname(a), ignore_errors=True)
    print("wrote images/linux-lvm.img.gz, lvm-multi-{a,b}.img.gz and their listings")


if __name__ == "__main__":
    main()
