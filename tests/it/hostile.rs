//! Names and links planted by an attacker (images/build-hostile.py): every
//! file lands inside the case folder under one escaped name that decodes back
//! to the original bytes; symlinks are recorded, never created or followed.

use crate::common::*;
use std::collections::BTreeMap;

/// `%XX` → byte: the documented inverse of the output-name escaping.
fn decode(name: &str) -> Vec<u8> {
    let b = name.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            out.push(u8::from_str_radix(&name[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn hostile_names_and_links_stay_inside_the_case_folder() {
    let outside = tempfile::tempdir().unwrap();
    let case = outside.path().join("case");
    let out = extract(&[&image("hostile-ext4")], &case);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The only thing in `outside` is the case folder.
    let top: Vec<_> = std::fs::read_dir(outside.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(top, vec![std::ffi::OsString::from("case")]);
    assert!(!std::path::Path::new("/tmp/x.log").exists() || std::fs::read("/tmp/x.log").unwrap() != b"content of PLACEHOLDER\n");

    let log = case.join("Host-Based Logs/hostile01/var/log");
    let mut got: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for e in std::fs::read_dir(&log).unwrap() {
        let e = e.unwrap();
        assert!(e.file_type().unwrap().is_file(), "{:?} is not a plain file", e.path());
        let name = e.file_name().into_string().expect("output names are UTF-8");
        got.insert(decode(&name), std::fs::read(e.path()).unwrap());
    }
    let want: BTreeMap<Vec<u8>, Vec<u8>> = [
        (&b"../../../etc/evil"[..], &b"PLACEHOLDER-0000A"[..]),
        (b"/tmp/x.log\xff", b"PLACEHOLDER"),
        (b"a\\b\\c\\d.log", b"PLACE-1.log"),
        (b"new\nline.lo", b"PLACE-2.log"),
        (b"\xff\xfe\xfd-bad.log", b"PLACE-3.log"),
        (b"..%2F..%2Fx", b"PLACE-4.log"),
    ]
    .iter()
    .map(|(n, p)| (n.to_vec(), [b"content of ", *p, b"\n"].concat()))
    .chain([(b"syslog".to_vec(), b"an ordinary log\n".to_vec())])
    .collect();
    assert_eq!(got, want);

    let rows = manifest(&case);
    let links: BTreeMap<String, String> =
        rows.iter().filter(|r| r["status"] == "symlink").map(|r| (r["image_path"].clone(), r["reason"].clone())).collect();
    let expect_links: BTreeMap<String, String> = [
        ("/var/log/passwd.log", "-> /etc/passwd"),
        ("/var/log/shadow.log", "-> ../../../../etc/shadow"),
        ("/var/log/self.log", "-> self.log"),
        ("/var/log/ping.log", "-> pong.log"),
        ("/var/log/pong.log", "-> ping.log"),
        ("/root/.bash_history", "-> /etc/shadow"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(links, expect_links);
    // The manifest names are unambiguous: a `/` inside a name is %2F.
    assert!(rows.iter().any(|r| r["image_path"] == "/var/log/..%2F..%2F..%2Fetc%2Fevil"));
    // Nothing in the case folder is a symlink.
    let mut stack = vec![case.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            assert!(!t.is_symlink(), "{:?}", e.path());
            if t.is_dir() {
                stack.push(e.path());
            }
        }
    }
}
