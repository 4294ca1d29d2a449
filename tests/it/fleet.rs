//! Many snapsift processes, one case folder (issue #19): one job of a list
//! per process, started all at once (and the same index twice), must leave
//! the case a single process running the list would leave; a worker killed
//! with SIGKILL at any point is finished by a rerun of its index, with
//! nothing lost and nothing duplicated; `report --verify` passes.

use crate::common::{self, campaign, image};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The job list: small committed images, one of them twice under another
/// host name, and one machine named like another (two `web01`: the only
/// place `__2` copies belong).
fn job_list(dir: &Path) -> PathBuf {
    let list = dir.join("jobs.txt");
    let text = format!(
        "# fleet test list\n{}\n\n{}   # a Windows disk\n{} host=web02\n{} host=mbr01\n\"{}\" host=web01\n",
        image("linux-gpt").display(),
        image("ntfs-mbr").display(),
        image("linux-gpt").display(),
        image("linux-mbr").display(),
        image("linux-gpt4k").display(),
    );
    std::fs::write(&list, text).unwrap();
    list
}

const JOBS: usize = 5;

fn start(list: &Path, index: usize, case: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_snapsift"))
        .args(["extract", "--jobs-file"])
        .arg(list)
        .args(["--index", &index.to_string(), "-o"])
        .arg(case)
        .arg("--quiet")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(c: Child) -> (i32, String) {
    let out = c.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every file under `Host-Based Logs/`, its `__N` suffix taken off, with
/// its SHA-256: a multiset, so which of two `web01`s got `__2` (a race
/// between their jobs) does not matter, but a file too many does.
fn tree(case: &Path) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    let root = case.join(snapsift::collect::HOSTS_FOLDER);
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.symlink_metadata().unwrap().is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            let plain = rel.replace("__2", "").replace("__3", "");
            *out.entry((plain, common::sha256_file(&p))).or_default() += 1;
        }
    }
    out
}

fn duplicates(case: &Path) -> Vec<String> {
    tree(case).into_iter().filter(|(_, n)| *n > 1).map(|((p, _), n)| format!("{p} ×{n}")).collect()
}

fn report_verify(case: &Path) -> String {
    let o = common::snapsift(&["report".as_ref(), case.as_os_str(), "--verify".as_ref()]);
    assert_eq!(o.code, Some(0), "report --verify failed:\n{}", o.stderr);
    assert!(o.stderr.contains("every SHA-256 matches"), "{}", o.stderr);
    assert!(!o.stderr.contains("no finished run lists"), "files no run accounts for:\n{}", o.stderr);
    use std::os::unix::fs::PermissionsExt;
    for f in ["report.html", "bodyfile.txt", "manifest.csv", "case.json"] {
        let mode = std::fs::metadata(case.join("snapsift").join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{f} rebuilt by `report` is private like the case: {mode:o}");
    }
    o.stderr
}

/// The list run one job at a time, by one process after another.
fn reference(dir: &Path, list: &Path) -> (PathBuf, BTreeMap<(String, String), usize>) {
    let case = dir.join("one");
    for i in 0..JOBS {
        let (code, err) = finish(start(list, i, &case, &[]));
        assert_eq!(code, 0, "job {i}: {err}");
    }
    let t = tree(&case);
    (case, t)
}

#[test]
fn many_workers_at_once_make_the_case_one_would() {
    let dir = tempfile::tempdir().unwrap();
    let list = job_list(dir.path());
    let (_, want) = reference(dir.path(), &list);
    // Only the two web01 machines share a name: their files, and no others, twice.
    assert!(duplicates(&dir.path().join("one")).iter().all(|d| d.starts_with("web01/")), "{:?}", duplicates(&dir.path().join("one")));
    let case = dir.path().join("many");
    // Ten at once: every index, and every index a second time.
    let order: Vec<usize> = (0..JOBS).chain(0..JOBS).collect();
    let children: Vec<(usize, Child)> = order.iter().map(|&i| (i, start(&list, i, &case, &["--jobs", "1"]))).collect();
    let mut done_twice = 0;
    for (i, c) in children {
        let (code, err) = finish(c);
        assert_eq!(code, 0, "job {i}: {err}");
        done_twice += err.contains("already extracted") as usize;
    }
    assert_eq!(done_twice, JOBS, "each index's second process found it done");
    assert_eq!(tree(&case), want, "ten processes at once, one case: the same files and hashes as one process");
    let runs = snapsift::report::case::runs(&case).unwrap();
    assert_eq!((runs.finished.len(), runs.unfinished.len()), (JOBS, 0));
    report_verify(&case);
    let body = std::fs::read_to_string(case.join("snapsift/bodyfile.txt")).unwrap();
    let one = std::fs::read_to_string(dir.path().join("one/snapsift/bodyfile.txt")).unwrap();
    assert_eq!(body.lines().count(), one.lines().count(), "the case's body file holds every run's lines once");
    assert!(body.lines().all(|l| l.split('|').count() == 11), "no line cut or interleaved");
    let rows = common::read_csv(&case.join("snapsift/manifest.csv"));
    assert_eq!(rows.len(), runs.finished.iter().map(|r| common::read_csv(&r.join("manifest.csv")).len()).sum::<usize>());
    let page = std::fs::read_to_string(case.join("snapsift/report.html")).unwrap();
    assert!(page.contains(&format!("{JOBS} run(s)")), "the report holds every run");
}

#[test]
fn a_killed_worker_is_finished_by_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let list = job_list(dir.path());
    // Job 1 (the NTFS disk, with event logs to convert) alone, for reference.
    let one = dir.path().join("one");
    let (code, err) = finish(start(&list, 1, &one, &[]));
    assert_eq!(code, 0, "{err}");
    // How long a run takes with the image in the page cache: kills land within it.
    let t0 = Instant::now();
    let (code, err) = finish(start(&list, 1, &dir.path().join("timed"), &["--jobs", "2"]));
    assert_eq!(code, 0, "{err}");
    let took = t0.elapsed().as_millis().max(20) as u64;
    let want = tree(&one);
    let seeds = campaign("FLEET_KILL_SEEDS", 4, 30);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for seed in 0..seeds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let case = dir.path().join(format!("kill{seed}"));
        // Killed once or twice, at a point within the run's length.
        let kills = 1 + (x % 2) as usize;
        for k in 0..kills {
            let at = Duration::from_millis((x >> (8 + 16 * k)) % took);
            let mut c = start(&list, 1, &case, &["--jobs", "2"]);
            std::thread::sleep(at);
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
        let (code, err) = finish(start(&list, 1, &case, &[]));
        assert_eq!(code, 0, "seed {seed}: the rerun: {err}");
        eprintln!("seed {seed}: killed {kills}×, the rerun said: {}", err.trim());
        if !case.join(snapsift::collect::HOSTS_FOLDER).exists() {
            continue; // killed before it made anything, and the rerun found nothing to redo
        }
        assert_eq!(tree(&case), want, "seed {seed} (killed after {took} ms × …): the rerun leaves the files of one run.\n{err}");
        assert!(duplicates(&case).is_empty(), "seed {seed}: {:?}", duplicates(&case));
        report_verify(&case);
        // A second rerun does nothing, and says so.
        let (code, err) = finish(start(&list, 1, &case, &[]));
        assert!(code == 0 && err.contains("already"), "seed {seed}: {err}");
        assert_eq!(tree(&case), want);
    }
}

#[test]
fn bad_lists_and_indexes_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let list = job_list(dir.path());
    let case = dir.path().join("c");
    let run = |args: &[&str]| {
        let mut a: Vec<&std::ffi::OsStr> = vec!["extract".as_ref(), "-o".as_ref(), case.as_os_str()];
        a.extend(args.iter().map(|s| -> &std::ffi::OsStr { s.as_ref() }));
        common::snapsift(&a)
    };
    let l = list.to_str().unwrap();
    let o = run(&["--jobs-file", l, "--index", "5"]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("index 5 is past the end") && o.stderr.contains("indexes 0 to 4"), "{}", o.stderr);
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "a.img\n\"b.img\n").unwrap();
    let o = run(&["--jobs-file", bad.to_str().unwrap(), "--index", "0"]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("malformed") && o.stderr.contains("line 2"), "{}", o.stderr);
    let o = run(&["--jobs-file", l]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("JOB_COMPLETION_INDEX"), "{}", o.stderr);
    let o = run(&["--jobs-file", l, "--index", "0", "--host", "x"]);
    assert_eq!(o.code, Some(2), "--host with --jobs-file: host= goes on the line");
    assert!(!case.join(snapsift::collect::HOSTS_FOLDER).exists(), "no error extracts anything");
}

/// The same over NFS: needs root and an NFS server on this machine, which a
/// test cannot assume.
#[test]
fn over_nfs() {
    let Some(mnt) = std::env::var_os("SNAPSIFT_NFS_DIR") else {
        eprintln!(
            "over_nfs: skipped: set SNAPSIFT_NFS_DIR to a folder on an NFS mount (e.g. a loopback export of nfs-kernel-server) to run it"
        );
        return;
    };
    let dir = tempfile::tempdir_in(mnt).unwrap();
    let list = job_list(dir.path());
    let (_, want) = reference(dir.path(), &list);
    let case = dir.path().join("many");
    let children: Vec<Child> = (0..JOBS).chain(0..JOBS).map(|i| start(&list, i, &case, &["--jobs", "1"])).collect();
    for c in children {
        let (code, err) = finish(c);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(tree(&case), want);
    report_verify(&case);
}

#[test]
fn progress_json_is_one_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let list = job_list(dir.path());
    let case = dir.path().join("c");
    let (code, err) = finish(start(&list, 1, &case, &["--progress", "json", "--progress-interval", "0.1"]));
    assert_eq!(code, 0, "{err}");
    let events: Vec<serde_json::Value> =
        err.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"))).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"finished"), "{kinds:?}");
    assert!(kinds.contains(&"volume") && kinds.contains(&"progress"), "{kinds:?}");
    let last_progress = events.iter().rfind(|e| e["event"] == "progress").unwrap();
    assert_eq!(last_progress["done"], true);
    assert_eq!(last_progress["bytes"], last_progress["bytes_total"]);
    let end = events.last().unwrap();
    assert_eq!(end["exit_status"], 0);
    assert!(end["counts"]["files"].as_u64().unwrap() > 0, "{end}");
    // A bad index: still one JSON line, with the error and exit status 2.
    let (code, err) = finish(start(&list, 99, &case, &["--progress", "json"]));
    assert_eq!(code, 2);
    let end: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!((end["event"].as_str(), end["exit_status"].as_u64()), (Some("finished"), Some(2)));
    assert!(end["error"].as_str().unwrap().contains("past the end"));
}

/// deploy/: every manifest parses, says what the README says it does, and
/// the container build copies the binary from where `cargo build
/// --release` writes it.
#[test]
fn deploy_recipes_parse() {
    use serde::Deserialize;
    let deploy = common::repo().join("deploy");
    let mut kinds = Vec::new();
    for f in ["kubernetes/snapsift-job.yaml", "kubernetes/snapsift-report.yaml"] {
        let text = std::fs::read_to_string(deploy.join(f)).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{f}: {e}"));
            let kind = v["kind"].as_str().unwrap_or_else(|| panic!("{f}: a document without kind")).to_string();
            assert!(v["apiVersion"].is_string() && v["metadata"]["name"].is_string(), "{f}: {kind}");
            if v["metadata"]["name"] == "snapsift-extract" {
                let spec = &v["spec"];
                assert_eq!(spec["completionMode"], "Indexed");
                let c = &spec["template"]["spec"]["containers"][0];
                let args: Vec<&str> = c["args"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
                assert!(args.windows(2).any(|w| w == ["--jobs-file", "/jobs/jobs.txt"]), "{args:?}");
                assert!(!args.contains(&"--index"), "the index comes from JOB_COMPLETION_INDEX");
                let mounts: Vec<&str> = c["volumeMounts"].as_sequence().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
                assert!(mounts.contains(&"/jobs") && mounts.contains(&"/case"), "{mounts:?}");
            }
            if v["metadata"]["name"] == "snapsift-case" {
                assert_eq!(v["spec"]["accessModes"][0], "ReadWriteMany");
            }
            if kind == "ConfigMap" {
                let list = v["data"]["jobs.txt"].as_str().unwrap();
                assert!(snapsift::fleet::parse(list, Path::new("/")).unwrap().len() >= 2, "the sample list reads");
            }
            kinds.push(kind);
        }
    }
    for k in ["ConfigMap", "PersistentVolumeClaim", "Job"] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing: {kinds:?}");
    }
    let json = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(deploy.join(f)).unwrap()).unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    let def = json("aws-batch/job-definition.json");
    let cmd: Vec<&str> = def["containerProperties"]["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(cmd[0], "extract");
    assert!(cmd.contains(&"--jobs-file") && !cmd.contains(&"--index"), "{cmd:?}");
    assert_eq!(json("aws-batch/submit-array-job.json")["jobDefinition"], def["jobDefinitionName"]);
    assert!(json("aws-batch/submit-array-job.json")["arrayProperties"]["size"].as_u64().unwrap() > 1);
    assert_eq!(json("aws-batch/submit-report-job.json")["containerOverrides"]["command"][0], "report");
    // The Dockerfile: built with `cargo build --release`, copied from
    // target/release/<the package's binary>.
    let docker = std::fs::read_to_string(deploy.join("Dockerfile")).unwrap();
    let bin = env!("CARGO_PKG_NAME");
    assert!(docker.contains("cargo build --release"), "{docker}");
    assert!(!docker.contains("--target "), "no --target: the binary is at target/release/");
    assert!(docker.contains(&format!("COPY --from=build /src/target/release/{bin} ")), "{docker}");
    assert!(Path::new(env!("CARGO_BIN_EXE_snapsift")).file_name().unwrap() == bin);
    for copied in docker.lines().filter_map(|l| l.strip_prefix("COPY ")).filter(|l| !l.starts_with("--from")) {
        for src in copied.split_whitespace().rev().skip(1) {
            assert!(common::repo().join(src).exists(), "the Dockerfile copies {src}, which the repository does not have");
        }
    }
}

/// A job whose evidence could not be opened is run again only when the
/// cause may pass: a file not there yet is, a damaged image is not (its
/// run.json says which, as `error_kind`).
#[test]
fn unopened_evidence_is_run_again_only_when_that_may_help() {
    let dir = tempfile::tempdir().unwrap();
    let late = dir.path().join("late.img");
    let damaged = dir.path().join("old.qcow");
    // A QCOW version 1 header: recognised, not read.
    let mut q = vec![0u8; 4096];
    q[..4].copy_from_slice(b"QFI\xfb");
    q[7] = 1;
    std::fs::write(&damaged, q).unwrap();
    let list = dir.path().join("jobs.txt");
    std::fs::write(&list, format!("{}\n{}\n", late.display(), damaged.display())).unwrap();
    let case = dir.path().join("case");
    let run = |i: usize| finish(start(&list, i, &case, &[]));
    let kinds = |case: &Path| -> Vec<String> {
        let mut out = Vec::new();
        for d in std::fs::read_dir(case.join("snapsift")).unwrap() {
            let Ok(t) = std::fs::read_to_string(d.unwrap().path().join("run.json")) else { continue };
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            for e in v["evidence"].as_array().unwrap() {
                out.push(e["error_kind"].as_str().unwrap_or("none").to_string());
            }
        }
        out.sort();
        out
    };
    assert_eq!(run(0).0, 2);
    assert_eq!(run(1).0, 2);
    assert_eq!(kinds(&case), ["missing", "unsupported"]);

    let (code, err) = run(1);
    assert_eq!(code, 2);
    assert!(err.contains("a rerun would not change that"), "{err}");
    std::fs::copy(image("linux-gpt"), &late).unwrap();
    let (code, err) = run(0);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("running it again"), "{err}");
    assert_eq!(kinds(&case), ["missing", "none", "unsupported"], "one run more, for the file now there");
}
