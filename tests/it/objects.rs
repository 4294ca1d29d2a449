//! S3 and GCS objects read in place (issue #18, `s3://bucket/key`,
//! `gs://bucket/key`): S3 against moto (PyPI, server mode, started by the
//! test on the loopback interface; skipped, said why, when it is not
//! installed), GCS against a loopback server of the test's own that
//! answers the XML API object_store reads objects with (HEAD, ranged GET),
//! reached through a service-account file with `gcs_base_url` and
//! `disable_oauth` (as object_store's own tests reach fake-gcs-server).
//! The grep folder must be what extracting the image from a file gives
//! (manifest hashes); a missing bucket or key says so; no credential
//! appears anywhere.
//!
//! A build without the `objects` feature refuses both, saying how to get
//! a build that reads them and what link to give instead.

#[cfg(not(feature = "objects"))]
#[test]
fn without_the_feature_objects_say_how_to_get_it() {
    for loc in ["s3://bucket/disk.img", "gs://bucket/disk.img"] {
        let case = tempfile::tempdir().unwrap();
        let out = crate::remote::extract_loud(loc, case.path());
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(out.stderr.contains("--features cloud") && out.stderr.contains("presign"), "{}", out.stderr);
    }
}

#[cfg(feature = "objects")]
mod with_store {
    use crate::common::*;
    use crate::remote::{files, image_bytes, no_secret_in};
    use std::io::{BufReader, Write};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::time::Duration;

    const KEY_ID: &str = "AKIDOBJECTSTEST";
    const SECRET_KEY: &str = "objectsSecretKeyDoNotLeak";

    fn local_files() -> std::collections::BTreeSet<(String, String, String, String)> {
        let local = tempfile::tempdir().unwrap();
        let out = extract(&[&image("linux-gpt")], local.path());
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let want = files(local.path());
        assert!(!want.is_empty());
        want
    }

    fn run(evidence: &str, env: &[(&str, Option<String>)], case: &Path) -> Output {
        let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        let args: [&std::ffi::OsStr; 6] =
            ["extract".as_ref(), evidence.as_ref(), "--region".as_ref(), "us-east-1".as_ref(), "-o".as_ref(), case.as_os_str()];
        snapsift_env(&args, &env, Duration::from_secs(300))
    }

    /// A fake GCS XML API: `HEAD|GET /bucket/linux-gpt.raw` with ranges;
    /// the first ranged GET answered 503 (a retry run.json must count),
    /// anything else 404.
    fn gcs(data: Vec<u8>) -> (String, Arc<AtomicU64>) {
        let data = Arc::new(data);
        let gets = Arc::new(AtomicU64::new(0));
        let counted = gets.clone();
        let addr = listen(move |s| {
            let mut r = BufReader::new(s.try_clone()?);
            let mut w = s;
            while let Some((line, headers)) = next_request(&mut r)? {
                let mut parts = line.split(' ');
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                // object_store escapes every byte but letters and digits.
                let path = percent_decode(path.split('?').next().unwrap_or(""));
                let len = data.len();
                let meta = "ETag: \"1\"\r\nLast-Modified: Mon, 07 Dec 2026 20:00:00 GMT\r\n";
                if path != "/bucket/linux-gpt.raw" {
                    let body = "<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>";
                    write!(w, "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
                    continue;
                }
                if method == "HEAD" {
                    write!(w, "HTTP/1.1 200 OK\r\n{meta}Content-Length: {len}\r\n\r\n")?;
                    continue;
                }
                let range = headers.iter().find_map(|h| h.strip_prefix("range: bytes=")).map(str::to_string);
                let Some((a, b)) = range.as_deref().and_then(|r| r.split_once('-')) else {
                    write!(w, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
                    continue;
                };
                if counted.fetch_add(1, Relaxed) == 0 {
                    write!(w, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")?;
                    continue;
                }
                let a: usize = a.parse().unwrap_or(0);
                let b: usize = b.parse::<usize>().unwrap_or(len - 1).min(len - 1);
                write!(
                    w,
                    "HTTP/1.1 206 Partial Content\r\n{meta}Content-Range: bytes {a}-{b}/{len}\r\nContent-Length: {}\r\n\r\n",
                    b + 1 - a
                )?;
                w.write_all(&data[a..=b])?;
            }
            Ok(())
        });
        (format!("http://{addr}"), gets)
    }

    fn percent_decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match (b[i], s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn a_gcs_object_reads_as_the_same_image_from_a_file() {
        let want = local_files();
        let (base, gets) = gcs(image_bytes("linux-gpt"));
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("sa.json");
        let secret = "-----BEGIN PRIVATE KEY-----NOTAREALKEYDONOTLEAK";
        std::fs::write(
            &key,
            format!(
                r#"{{"private_key": "{secret}", "private_key_id": "id", "client_email": "x@y.iam.gserviceaccount.com", "gcs_base_url": "{base}", "disable_oauth": true}}"#
            ),
        )
        .unwrap();
        let env = vec![
            ("GOOGLE_SERVICE_ACCOUNT_PATH", Some(key.to_string_lossy().into_owned())),
            ("GOOGLE_APPLICATION_CREDENTIALS", None),
            ("GOOGLE_SERVICE_ACCOUNT", None),
            ("GOOGLE_SERVICE_ACCOUNT_KEY", None),
        ];
        let case = tempfile::tempdir().unwrap();
        let out = run("gs://bucket/linux-gpt.raw", &env, case.path());
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(files(case.path()), want);
        let remote = run_json(&runs(case.path())[0])["evidence"][0]["remote"].clone();
        assert_eq!(remote["size"], image_bytes("linux-gpt").len() as u64, "{remote}");
        assert!(remote["retries"].as_u64() >= Some(1) && remote["requests"].as_u64() > Some(gets.load(Relaxed) / 2), "{remote}");
        assert!(remote["bytes_fetched"].as_u64() > Some(0), "{remote}");
        no_secret_in(case.path(), "NOTAREALKEYDONOTLEAK");
        // A key that is not there.
        let case = tempfile::tempdir().unwrap();
        let out = run("gs://bucket/nothing.raw", &env, case.path());
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(out.stderr.contains("gs://bucket/nothing.raw") && out.stderr.contains("no such bucket or object"), "{}", out.stderr);
        assert!(!out.stderr.contains("NOTAREALKEY"), "{}", out.stderr);
    }

    /// moto's S3 in server mode: the image uploaded with boto3, read back
    /// as `s3://`; then a key and a bucket that are not there.
    #[test]
    fn an_s3_object_in_moto_reads_as_the_same_image_from_a_file() {
        let script = "import sys; from moto.server import main; main(['-H', '127.0.0.1', '-p', sys.argv[1]])";
        let Some(server) = moto("objects::an_s3_object_in_moto_reads_as_the_same_image_from_a_file", script) else { return };
        let endpoint = server.endpoint.clone();
        let upload = r#"
import boto3, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4])
s3.create_bucket(Bucket="evidence")
s3.upload_file(sys.argv[2], "evidence", "disks/linux-gpt.raw")
s3.upload_file(sys.argv[5], "evidence", "disks/web01.tar.gz")
"#;
        let img = image("linux-gpt");
        let gz = repo().join("images/linux-gpt.img.gz");
        let made = std::process::Command::new("python3")
            .args(["-c", upload, &endpoint, img.to_str().unwrap(), KEY_ID, SECRET_KEY, gz.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let env = vec![
            ("AWS_ENDPOINT_URL", Some(endpoint.clone())),
            ("AWS_ACCESS_KEY_ID", Some(KEY_ID.into())),
            ("AWS_SECRET_ACCESS_KEY", Some(SECRET_KEY.into())),
            ("AWS_CONFIG_FILE", Some("/nonexistent/snapsift-test".into())),
            ("AWS_SHARED_CREDENTIALS_FILE", Some("/nonexistent/snapsift-test".into())),
            ("AWS_EC2_METADATA_DISABLED", Some("true".into())),
            ("AWS_SESSION_TOKEN", None),
            ("AWS_REGION", None),
            ("AWS_DEFAULT_REGION", None),
            ("AWS_PROFILE", None),
            ("AWS_ENDPOINT_URL_S3", None),
        ];
        let want = local_files();
        let case = tempfile::tempdir().unwrap();
        let out = run("s3://evidence/disks/linux-gpt.raw", &env, case.path());
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(files(case.path()), want);
        let remote = run_json(&runs(case.path())[0])["evidence"][0]["remote"].clone();
        assert!(remote["requests"].as_u64() > Some(1) && remote["bytes_fetched"].as_u64() > Some(0), "{remote}");
        for (loc, what) in
            [("s3://evidence/disks/nothing.raw", "no such bucket or object"), ("s3://no-such-bucket/disk.raw", "no such bucket or object")]
        {
            let case = tempfile::tempdir().unwrap();
            let out = run(loc, &env, case.path());
            assert_eq!(out.code, Some(2), "{}", out.stderr);
            assert!(out.stderr.contains(loc) && out.stderr.contains(what), "{}", out.stderr);
            for secret in [SECRET_KEY, KEY_ID] {
                assert!(!out.stderr.contains(secret) && !out.stdout.contains(secret), "{}", out.stderr);
            }
        }
        for secret in [SECRET_KEY, KEY_ID] {
            no_secret_in(case.path(), secret);
        }
        // A compressed image cannot be read at random offsets: said, with
        // the command that downloads it.
        let loc = "s3://evidence/disks/web01.tar.gz";
        let out = run(loc, &env, tempfile::tempdir().unwrap().path());
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(out.stderr.contains("cannot be read in place") && out.stderr.contains(&format!("aws s3 cp {loc} .")), "{}", out.stderr);
    }
}
