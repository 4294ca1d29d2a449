//! EVTX → JSON lines, on the real third-party logs in ../shared/samples/evtx
//! (skipped with a printed reason when absent): every record the `evtx`
//! crate parses or carves (what `evtx_dump -o jsonl -t 1 --recover-records`
//! prints) is one line, in record order, with the added fields; the records
//! in use match the crate's other renderer too; damaged logs are converted
//! as far as they can be and the rest reported.

use crate::common::*;
use std::ffi::OsStr;

#[test]
fn evtx_files_get_a_greppable_jsonl_beside_them() {
    let samples = repo().join("../shared/samples/evtx");
    if !samples.is_dir() {
        println!("SKIPPED: {} is absent (third-party samples are not in the repo)", samples.display());
        return;
    }
    // A copied-off folder with the logs, and a target that selects them.
    let root = tempfile::tempdir().unwrap();
    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut names = Vec::new();
    for e in std::fs::read_dir(&samples).unwrap() {
        let p = e.unwrap().path();
        if p.extension() == Some(OsStr::new("evtx")) {
            std::fs::copy(&p, logs.join(p.file_name().unwrap())).unwrap();
            names.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(!names.is_empty());
    let targets = root.path().join("t.toml");
    std::fs::write(&targets, "[[target]]\nname = \"evtx\"\ndescription = \"d\"\nscope = \"any\"\npaths = [\"/logs/*.evtx\"]\n").unwrap();
    let case = tempfile::tempdir().unwrap();
    let out = snapsift(&[
        "extract".as_ref(),
        logs.parent().unwrap().as_os_str(),
        "-o".as_ref(),
        case.path().as_os_str(),
        "-q".as_ref(),
        "--host".as_ref(),
        "win01".as_ref(),
        "--targets-file".as_ref(),
        targets.as_os_str(),
        "--target".as_ref(),
        "evtx".as_ref(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows = manifest(case.path());
    let (mut total, mut recovered) = (0, 0);
    for n in &names {
        // What `evtx_dump -t 1 -o jsonl --recover-records` prints: the
        // crate's chunk renderer, with the settings snapsift converts with.
        let parser = || evtx::EvtxParser::from_path(logs.join(n)).unwrap();
        let mut p = parser().with_configuration(snapsift::collect::evtxjson::settings());
        let chunks: Vec<_> = p.chunks_json_bytes(false).collect();
        let want: Vec<(u64, serde_json::Value)> =
            chunks.iter().flat_map(|c| c.records()).map(|(id, r)| (id, serde_json::from_slice(r).unwrap())).collect();
        // And, independently, the crate's other renderer (a tree made into
        // `serde_json` values) on the records in use, without carving.
        let mut p = parser().with_configuration(evtx::ParserSettings::default().num_threads(1));
        let in_use: Vec<serde_json::Value> = p.records_json_value().filter_map(|r| r.ok()).map(|r| r.data["Event"].clone()).collect();
        let row = rows
            .iter()
            .find(|r| r["type"] == "jsonl" && r["image_path"] == format!("/logs/{n}"))
            .unwrap_or_else(|| panic!("{n}: no jsonl row"));
        let jsonl = std::fs::read_to_string(case.path().join(&row["output_path"])).unwrap();
        assert!(row["output_path"].ends_with(&format!("{n}.jsonl")));
        assert_eq!(sha256_file(&case.path().join(&row["output_path"])), row["sha256"]);
        let lines: Vec<serde_json::Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), want.len(), "{n}: one line per parsed record");
        let ours_in_use: Vec<&serde_json::Value> = lines.iter().filter(|l| l["recovered"] != true).map(|l| &l["Event"]).collect();
        assert_eq!(ours_in_use, in_use.iter().collect::<Vec<_>>(), "{n}: the records in use, as the tree renderer renders them");
        for (line, (record_id, w)) in lines.iter().zip(&want) {
            assert_eq!(line["Event"], w["Event"], "{n}: the event as the crate renders it");
            assert_eq!(line["recovered"], w["recovered"], "{n}: carved records say so");
            assert_eq!(line["host"], "win01");
            assert_eq!(line["source_path"], format!("/logs/{n}"));
            let sys = &w["Event"]["System"];
            let id = sys["EventID"].get("#text").unwrap_or(&sys["EventID"]);
            assert_eq!(&line["event_id"], id, "{n}");
            assert_eq!(line["channel"], sys["Channel"]);
            assert_eq!(line["provider"], sys["Provider"]["#attributes"]["Name"]);
            assert_eq!(&line["record_id"], record_id, "the record header's ID, which System's EventRecordID need not be");
            assert_eq!(line["datetime"], sys["TimeCreated"]["#attributes"]["SystemTime"]);
            assert!(line["datetime"].as_str().unwrap().contains('T'));
            assert_eq!(line["timestamp_desc"], "Event Recorded");
            assert!(line.get("timestamp").is_none(), "Timesketch computes it from datetime");
        }
        // The five fields every twin begins with, first and in this order.
        for text in jsonl.lines() {
            let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap_or(usize::MAX);
            let order = ["host", "source_path", "datetime", "timestamp_desc", "message", "record_id"].map(at);
            assert!(text.starts_with("{\"host\":") && order.is_sorted() && order[5] < usize::MAX, "{n}: {text}");
        }
        total += lines.len();
        recovered += lines.iter().filter(|l| l["recovered"] == true).count();
    }
    assert!(total > 100, "{total} events in all");
    // Stale records carved from chunks' unallocated space (TestLogX.evtx
    // holds 52, issue_38.evtx 31: what `evtx_dump --recover-records` finds).
    assert!(recovered > 50, "{recovered} recovered events");
    let testlog = rows.iter().find(|r| r["type"] == "jsonl" && r["image_path"] == "/logs/TestLogX.evtx").unwrap();
    assert!(testlog["reason"].contains("52 of them carved from unallocated space"), "{}", testlog["reason"]);
    // The point of it: the logs are greppable now.
    let security = rows.iter().find(|r| r["type"] == "jsonl" && r["image_path"] == "/logs/security.evtx").unwrap();
    let text = std::fs::read_to_string(case.path().join(&security["output_path"])).unwrap();
    assert!(text.lines().any(|l| l.contains("\"event_id\":4624")), "logon events findable with grep");
}
