//! S3 and GCS objects read in place (issue #18, `s3://bucket/key`,
//! `gs://bucket/key`): S3 against moto (PyPI, server mode, started by the
//! test on the loopback interface; skipped, said why, when it is not
//! installed), GCS against a loopback server of the test's own that
//! answers the XML API object_store reads objects with (HEAD, ranged GET),
//! reached through a service-account file with `gcs_base_url` and
//! `disable_oauth` (as object_store's own tests reach fake-gcs-server).
//! The grep folder must be what extracting the image from a file gives
//! (manifest hashes); a missing bucket or key says so; no credential
//! appears anywhere. A second loopback server of the test's own plays an
//! S3 bucket in another region than the one given, whose session
//! credentials expire mid-run: renewed through the credential chain, or,
//! when they cannot be, said.
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
        let addr = serve(move |method, path, headers, w| {
            let len = data.len();
            if path != "/bucket/linux-gpt.raw" {
                let body = "<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>";
                write!(w, "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
                return Ok(());
            }
            if method == "HEAD" {
                write!(w, "HTTP/1.1 200 OK\r\n{META}Content-Length: {len}\r\n\r\n")?;
                return Ok(());
            }
            let range = headers.iter().find_map(|h| h.strip_prefix("range: bytes=")).map(str::to_string);
            let Some((a, b)) = range.as_deref().and_then(|r| r.split_once('-')) else {
                write!(w, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
                return Ok(());
            };
            if counted.fetch_add(1, Relaxed) == 0 {
                write!(w, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")?;
                return Ok(());
            }
            partial(w, &data, a, b)?;
            Ok(())
        });
        (format!("http://{addr}"), gets)
    }

    /// A loopback server answering each request with `answer(method, path
    /// (percent-decoded: object_store escapes every byte but letters and
    /// digits), headers (lower case), the connection)`.
    fn serve(
        answer: impl Fn(&str, &str, &[String], &mut std::net::TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> std::net::SocketAddr {
        listen(move |s| {
            let mut r = BufReader::new(s.try_clone()?);
            let mut w = s;
            while let Some((line, headers)) = next_request(&mut r)? {
                let mut parts = line.split(' ');
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                answer(method, &percent_decode(path.split('?').next().unwrap_or("")), &headers, &mut w)?;
            }
            Ok(())
        })
    }

    const META: &str = "ETag: \"1\"\r\nLast-Modified: Mon, 07 Dec 2026 20:00:00 GMT\r\n";

    /// A 206 answer: bytes `a` to `b` (inclusive, cut at the end) of `data`.
    fn partial(w: &mut std::net::TcpStream, data: &[u8], a: &str, b: &str) -> std::io::Result<()> {
        let len = data.len();
        let a: usize = a.parse().unwrap_or(0);
        let b: usize = b.parse::<usize>().unwrap_or(len - 1).min(len - 1);
        write!(w, "HTTP/1.1 206 Partial Content\r\n{META}Content-Range: bytes {a}-{b}/{len}\r\nContent-Length: {}\r\n\r\n", b + 1 - a)?;
        w.write_all(&data[a..=b])
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

    /// When the first session token a GET carries is refused as expired:
    /// by the GETs made before and the range asked.
    type Expires = Box<dyn Fn(u64, usize, usize) -> bool + Send + Sync>;

    /// A fake S3 (path-style, as object_store speaks to an endpoint) whose
    /// bucket is in eu-west-3: a request signed for another region is
    /// answered 301 with `x-amz-bucket-region`, as S3 does; an unsigned
    /// HEAD of the bucket tells the region. The first session token a GET
    /// carries is refused (400 ExpiredToken, the token in the body as S3
    /// gives it) where `expires` says; later tokens are not. Counts the
    /// GETs refused.
    fn s3(data: Vec<u8>, expires: Expires) -> (String, Arc<AtomicU64>) {
        let data = Arc::new(data);
        let (gets, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let first_token = Arc::new(std::sync::Mutex::new(None::<String>));
        let counted = refused.clone();
        let addr = serve(move |method, path, headers, w| {
            let header = |name: &str| headers.iter().find_map(|h| h.strip_prefix(name)).map(|v| v.trim().to_string());
            let region = header("authorization:").and_then(|a| a.split('/').nth(2).map(str::to_string));
            let send = |w: &mut std::net::TcpStream, status: &str, extra: &str, body: &str| {
                let body = if method == "HEAD" { "" } else { body };
                write!(w, "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
            };
            let moved = "x-amz-bucket-region: eu-west-3\r\n";
            match region.as_deref() {
                None if path == "/evidence" => send(w, "301 Moved Permanently", moved, "")?,
                Some("eu-west-3") => {}
                _ => send(w, "301 Moved Permanently", moved, "<Error><Code>PermanentRedirect</Code></Error>")?,
            }
            if region.as_deref() != Some("eu-west-3") {
                return Ok(());
            }
            if path != "/evidence/disk.raw" {
                send(w, "404 Not Found", "", "<Error><Code>NoSuchKey</Code></Error>")?;
                return Ok(());
            }
            let len = data.len();
            if method == "HEAD" {
                write!(w, "HTTP/1.1 200 OK\r\n{META}Content-Length: {len}\r\n\r\n")?;
                return Ok(());
            }
            let Some((a, b)) =
                header("range: bytes=").and_then(|r| Some((r.split('-').next()?.to_string(), r.split('-').nth(1)?.to_string())))
            else {
                return send(w, "400 Bad Request", "", "");
            };
            let token = header("x-amz-security-token:");
            let first = first_token.lock().unwrap().get_or_insert_with(|| token.clone().unwrap_or_default()).clone();
            let (from, to) = (a.parse().unwrap_or(0), b.parse().unwrap_or(usize::MAX));
            if token.as_ref() == Some(&first) && expires(gets.fetch_add(1, Relaxed), from, to) {
                counted.fetch_add(1, Relaxed);
                let body = format!(
                    "<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><Token-0>{first}</Token-0></Error>"
                );
                return send(w, "400 Bad Request", "", &body);
            }
            partial(w, &data, &a, &b)
        });
        (format!("http://{addr}"), refused)
    }

    fn aws_env(endpoint: &str, config: &Path) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("AWS_ENDPOINT_URL", Some(endpoint.to_string())),
            ("AWS_CONFIG_FILE", Some(config.to_string_lossy().into_owned())),
            ("AWS_SHARED_CREDENTIALS_FILE", Some("/nonexistent/snapsift-test".into())),
            ("AWS_EC2_METADATA_DISABLED", Some("true".into())),
            ("AWS_ACCESS_KEY_ID", None),
            ("AWS_SECRET_ACCESS_KEY", None),
            ("AWS_SESSION_TOKEN", None),
            ("AWS_REGION", None),
            ("AWS_DEFAULT_REGION", None),
            ("AWS_PROFILE", None),
            ("AWS_ENDPOINT_URL_S3", None),
        ]
    }

    /// A bucket in another region than `--region` says is found and read
    /// there; session credentials that expire during the run are asked
    /// anew from the chain (here a credential process, as SSO or a role
    /// renews them) and the grep folder is whole.
    #[test]
    fn s3_in_another_region_with_credentials_renewed_mid_run() {
        let want = local_files();
        // The first session expires after 5 GETs, wherever the run is then.
        let (endpoint, refused) = s3(image_bytes("linux-gpt"), Box::new(|gets, _, _| gets >= 5));
        let dir = tempfile::tempdir().unwrap();
        // Each call gives the next session: tok-1, tok-2, …
        let counter = dir.path().join("sessions");
        let process = dir.path().join("credentials.sh");
        std::fs::write(
            &process,
            format!(
                "#!/bin/sh\nn=$(( $(cat {c} 2>/dev/null || echo 0) + 1 ))\necho $n > {c}\nprintf '{{\"Version\": 1, \"AccessKeyId\": \"{KEY_ID}\", \"SecretAccessKey\": \"{SECRET_KEY}\", \"SessionToken\": \"tok-%s\", \"Expiration\": \"2099-01-01T00:00:00Z\"}}' $n\n",
                c = counter.display()
            ),
        )
        .unwrap();
        let config = dir.path().join("config");
        std::fs::write(&config, format!("[default]\ncredential_process = sh {}\n", process.display())).unwrap();
        let case = tempfile::tempdir().unwrap();
        let out = run("s3://evidence/disk.raw", &aws_env(&endpoint, &config), case.path());
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(files(case.path()), want);
        assert!(refused.load(Relaxed) >= 1, "the token never expired: the test tested nothing");
        let sessions: u32 = std::fs::read_to_string(&counter).unwrap().trim().parse().unwrap();
        // One session for the client signing for the wrong region, one for
        // the right one, one after it expired.
        assert!(sessions >= 3, "credentials were not renewed ({sessions} sessions)");
        let remote = run_json(&runs(case.path())[0])["evidence"][0]["remote"].clone();
        assert!(remote["retries"].as_u64() >= Some(1), "{remote}");
        for secret in [SECRET_KEY, KEY_ID, "tok-1"] {
            assert!(!out.stderr.contains(secret), "{}", out.stderr);
            no_secret_in(case.path(), secret);
        }
    }

    /// Credentials that expire during the run and cannot be renewed (here
    /// refused for the block holding the biggest file's start, so that the
    /// test does not depend on the order of the reads): what lies
    /// elsewhere is extracted, what that block holds is an error row saying
    /// to renew them, never zeros.
    #[test]
    fn s3_credentials_that_expire_for_good_are_said() {
        let want = local_files();
        let local = tempfile::tempdir().unwrap();
        assert_eq!(extract(&[&image("linux-gpt")], local.path()).code, Some(0));
        let rows = manifest(local.path());
        let big = rows.iter().filter(|r| r["type"] == "file").max_by_key(|r| r["size"].parse::<u64>().unwrap_or(0)).unwrap();
        let content = std::fs::read(local.path().join(&big["output_path"])).unwrap();
        let data = image_bytes("linux-gpt");
        let at = data.windows(4096).position(|w| w == &content[..4096]).unwrap();
        let (endpoint, refused) = s3(data, Box::new(move |_, from, to| from <= at && at <= to));
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(&config, "").unwrap();
        let mut env = aws_env(&endpoint, &config);
        env.retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET") && *k != "AWS_SESSION_TOKEN");
        env.extend([
            ("AWS_ACCESS_KEY_ID", Some(KEY_ID.to_string())),
            ("AWS_SECRET_ACCESS_KEY", Some(SECRET_KEY.to_string())),
            ("AWS_SESSION_TOKEN", Some("tok-1".to_string())),
        ]);
        let case = tempfile::tempdir().unwrap();
        let out = run("s3://evidence/disk.raw", &env, case.path());
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(refused.load(Relaxed) >= 1);
        // What could be read is as from the image file; what that block
        // holds (the file, and here also its volume's root directory) is
        // an error row saying why, never zeros.
        let got = files(case.path());
        assert!(got.iter().any(|f| f.2 == "ok") && got.iter().all(|f| f.2 == "ok" && want.contains(f)), "{got:?}");
        assert!(got.len() < want.len() && !got.iter().any(|f| f.1 == big["image_path"]), "{got:?}");
        let rows = manifest(case.path());
        let said = |r: &std::collections::HashMap<String, String>| {
            r["status"] == "error" && r["reason"].contains("credentials expired") && r["reason"].contains("aws sso login")
        };
        assert!(rows.iter().any(said), "{rows:?}");
        for secret in [SECRET_KEY, KEY_ID, "tok-1"] {
            assert!(!out.stderr.contains(secret), "{}", out.stderr);
            no_secret_in(case.path(), secret);
        }
    }
}
