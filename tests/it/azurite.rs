//! Azure page blobs through another implementation of the service
//! (issue #18): azurite (npm) started by the test on the loopback
//! interface, a disk uploaded to it as a page blob with its written pages
//! only, then read through a SAS URL as a disk export link would be. The
//! grep folder must be the local file's (manifest hashes), the written
//! bytes azurite lists must be those uploaded, and the signature must
//! appear nowhere. Skipped, said why, when azurite is not installed.

use crate::common::*;
use crate::remote::{extract_loud, files, image_bytes, no_secret_in};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Creates a container and a page blob on azurite, puts the image's
/// non-zero 512-byte pages (runs of them, at most 4 MiB a Put Page), and
/// prints a read-only SAS URL for the blob and the bytes put. The account
/// and its key are azurite's well-known development ones (public, in
/// azurite's documentation); the SAS is an account SAS of signed version
/// 2019-12-12, signed with HMAC-SHA256 as the service checks it.
const UPLOAD: &str = r#"
import base64, hashlib, hmac, sys, urllib.parse, urllib.request
ACCOUNT = "devstoreaccount1"
KEY = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
VERSION = "2019-12-12"
base, image, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
def sas(perms, types):
    fields = [ACCOUNT, perms, "b", types, "", "2099-01-01T00:00:00Z", "", "", VERSION]
    sig = base64.b64encode(hmac.new(KEY, ("\n".join(fields) + "\n").encode(), hashlib.sha256).digest()).decode()
    return urllib.parse.urlencode({"sv": VERSION, "ss": "b", "srt": types, "sp": perms, "se": fields[5], "sig": sig})
def put(url, headers, body=b""):
    h = {"x-ms-version": VERSION, "Content-Length": str(len(body)), **headers}
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="PUT", headers=h)).read()
w = sas("rwc", "sco")
blob = f"{base}/{ACCOUNT}/disks/vm-01.vhd"
put(f"{base}/{ACCOUNT}/disks?restype=container&{w}", {})
put(f"{blob}?{w}", {"x-ms-blob-type": "PageBlob", "x-ms-blob-content-length": str(size)})
data = open(image, "rb").read()
put_bytes, i = 0, 0
while i < len(data):
    if not any(data[i:i + 512]):
        i += 512
        continue
    j = i
    while j < len(data) and j - i < 4 << 20 and any(data[j:j + 512]):
        j += 512
    put(f"{blob}?comp=page&{w}", {"x-ms-page-write": "update", "x-ms-range": f"bytes={i}-{j - 1}"}, data[i:j])
    put_bytes += j - i
    i = j
print(f"{blob}?{sas('r', 'o')}")
print(put_bytes)
"#;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_azurite_page_blob_reads_as_the_file() {
    if !Command::new("azurite-blob").arg("--version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("azurite::an_azurite_page_blob_reads_as_the_file skipped: azurite is not installed (npm install -g azurite)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = dir.path().join("azurite");
    let _server = Kill(
        Command::new("azurite-blob")
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--location"])
            .arg(&store)
            .args(["--loose", "--skipApiVersionCheck", "--disableTelemetry", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let up = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "azurite did not start");
    // A disk exported at 256 MiB of which the image's 48 MiB were written.
    let mut data = image_bytes("linux-gpt");
    data.resize(256 << 20, 0);
    let file = dir.path().join("vm-01.vhd");
    std::fs::write(&file, &data).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let made = Command::new("python3").args(["-c", UPLOAD, &base, file.to_str().unwrap(), &data.len().to_string()]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let made = String::from_utf8(made.stdout).unwrap();
    let (url, put_bytes) = made.trim().split_once('\n').unwrap();
    let put_bytes: u64 = put_bytes.parse().unwrap();
    assert!(put_bytes > 0 && put_bytes < data.len() as u64 / 4, "a sparse disk: {put_bytes}");
    let sig = url.split("sig=").nth(1).unwrap();
    assert!(sig.len() > 20);

    let local = tempfile::tempdir().unwrap();
    let out = extract(&[&file], local.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let want = files(local.path());
    assert!(!want.is_empty());
    let case = tempfile::tempdir().unwrap();
    let out = extract_loud(url, case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(files(case.path()), want);
    let remote = run_json(&runs(case.path())[0])["evidence"][0]["remote"].clone();
    assert_eq!(remote["page_blob_written"].as_u64(), Some(put_bytes), "{remote}");
    // Unwritten bytes are zeros without a request: far less than the disk.
    assert!(remote["bytes_fetched"].as_u64().unwrap() < data.len() as u64 / 4, "{remote}");
    // The signature as sent (URL-encoded) and decoded.
    let decoded = sig.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
    for s in [sig, decoded.as_str(), &sig[..16]] {
        assert!(!out.stderr.contains(s) && !out.stdout.contains(s), "the signature is in the output: {}", out.stderr);
        no_secret_in(case.path(), s);
    }
}
