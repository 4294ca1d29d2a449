"""A fake EBS direct-API endpoint for benches/remote.sh (SOURCE=ebs): serves
a raw disk file as one snapshot of 512 KiB blocks, listing only the blocks
that hold data (as EBS lists only written blocks), with DELAY ms added to
every answer. No faults, no signature check: the fault-injecting fake the
tests use is tests/it/ebs.rs; this one only has to be fast over 4 GiB.

    python3 benches/fake_ebs.py DISK PORT DELAY_MS SNAPSHOT_ID
"""
import base64, hashlib, http.server, json, os, sys, time, urllib.parse

BLOCK = 512 << 10
path, port, delay, snapshot = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000, sys.argv[4]
size = os.path.getsize(path)
zero = bytes(BLOCK)
listed = []
with open(path, "rb") as f:
    i = 0
    while True:
        b = f.read(BLOCK)
        if not b:
            break
        if b != zero[: len(b)]:
            listed.append(i)
        i += 1
gib = -(-size // (1 << 30))
print(f"fake EBS: {len(listed)} of {gib * 2048} blocks listed", file=sys.stderr, flush=True)


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        time.sleep(delay)
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        if len(parts) == 3 and parts[:1] == ["snapshots"] and parts[1] == snapshot and parts[2] == "blocks":
            # NextToken is the index into `listed` to go on from.
            start, page = int(q.get("pageToken", 0)), min(int(q.get("maxResults", 10000)), 10000)
            blocks = [{"BlockIndex": i, "BlockToken": f"tok-{i}"} for i in listed[start:start + page]]
            body = {"Blocks": blocks, "BlockSize": BLOCK, "VolumeSize": gib, "ExpiryTime": 1900000000}
            if start + page < len(listed):
                body["NextToken"] = str(start + page)
            self.answer(200, [("Content-Type", "application/json")], json.dumps(body).encode())
        elif len(parts) == 4 and parts[:1] == ["snapshots"] and parts[1] == snapshot and parts[2] == "blocks":
            i = int(parts[3])
            with open(path, "rb") as f:
                f.seek(i * BLOCK)
                block = f.read(BLOCK).ljust(BLOCK, b"\0")
            sha = base64.b64encode(hashlib.sha256(block).digest()).decode()
            self.answer(200, [("Content-Type", "application/octet-stream"), ("x-amz-Data-Length", str(BLOCK)),
                              ("x-amz-Checksum", sha), ("x-amz-Checksum-Algorithm", "SHA256")], block)
        else:
            body = b'{"message":"no such snapshot"}'
            self.answer(404, [("x-amzn-ErrorType", "ResourceNotFoundException"), ("Content-Type", "application/json")], body)

    def log_message(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # many readers connect at once: the default 5 drops SYNs (a 1 s retransmit)


Server(("127.0.0.1", port), H).serve_forever()
