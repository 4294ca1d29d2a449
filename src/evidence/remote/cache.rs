//! The engine every remote kind shares: a [`Fetcher`] brings bytes, this
//! keeps them in a bounded cache of blocks, fetches what one read misses
//! together, reads ahead for each stream of sequential reads, and counts
//! the cost ([`Stats`]). The retry policy ([`Retry`]) is here too, so that
//! every fetcher backs off the same way.

use super::Stats;
use crate::evidence::ReadAt;
use std::collections::{HashSet, VecDeque};
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Cache block size (unless a service's own block is larger) and the
/// memory the cache may use: small blocks fetch little beyond what is read
/// (filesystem metadata lies scattered); sequential reads grow into large
/// fetches anyway. 8 readers (the threads of a remote run) each stream a
/// file with read-ahead: with 48 MiB, blocks two neighbouring files share
/// were evicted before the second file came (the 4 GiB EBS benchmark
/// fetched 1.19x the bytes read, 1.17x with 96 MiB).
pub(super) const BLOCK: u64 = 256 << 10;
const CACHE_BYTES: u64 = 96 << 20;
/// At most this much fetched ahead, when reads run on: more wastes what
/// lies past the end of a file (the next file on disk).
const READ_AHEAD_BYTES: u64 = 1 << 20;
/// Read-ahead starts once a stream has read this much in a row.
const READ_AHEAD_AFTER: u64 = 4 << 20;
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Where the bytes come from: an HTTP server, the EBS direct APIs.
pub(crate) trait Fetcher: Send + Sync {
    /// `len` bytes at `offset` (whole cache blocks; the last one cut by the
    /// end of the evidence), every request counted in `stats`, retried as
    /// the service allows; all or an error, never fewer bytes.
    fn fetch(&self, offset: u64, len: u64, stats: &Arc<Stats>) -> io::Result<Vec<u8>>;
}

/// How one request is retried: [`ATTEMPTS`] tries, with exponential
/// backoff, or the wait the server asks for (`Retry-After`).
pub(crate) struct Retry {
    attempt: u32,
    backoff: Duration,
}

impl Retry {
    pub(crate) fn new() -> Retry {
        Retry { attempt: 0, backoff: FIRST_BACKOFF }
    }

    /// Counts an attempt about to be made (a retry after the first).
    pub(crate) fn attempt(&mut self, stats: &Stats) {
        if self.attempt > 0 {
            stats.retries.fetch_add(1, Relaxed);
        }
        self.attempt += 1;
        stats.requests.fetch_add(1, Relaxed);
    }

    /// After a failure that may pass (`why`): how long to wait before the
    /// next attempt, or the error once the attempts are used up.
    pub(crate) fn wait(&mut self, why: &str, asked: Option<Duration>) -> io::Result<Duration> {
        if self.attempt >= ATTEMPTS {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("gave up after {ATTEMPTS} attempts: {why}")));
        }
        let wait = asked.unwrap_or(self.backoff).min(MAX_BACKOFF);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(wait)
    }
}

/// How one attempt of a request failed (the SDK and object-store
/// fetchers' retry loops).
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
pub(crate) enum Attempt {
    /// May pass (throttled, a server error, a dropped connection).
    Retry(String),
    Final(io::Error),
}

#[cfg_attr(not(feature = "aws"), allow(dead_code))]
impl Attempt {
    /// What a test compares: `retry: why` or `final Kind: message`.
    #[cfg(test)]
    pub(crate) fn message(self) -> String {
        match self {
            Attempt::Retry(why) => format!("retry: {why}"),
            Attempt::Final(e) => format!("final {:?}: {e}", e.kind()),
        }
    }
}

/// A piece of evidence read in place: its size, its cache and its fetcher.
pub struct RemoteFile {
    /// The name shown for it (a link's redacted form), for messages.
    pub(super) shown: String,
    pub(super) len: u64,
    block: u64,
    cache: Mutex<Cache>,
    /// Signalled when blocks being fetched arrive (or their fetch fails).
    arrived: Condvar,
    streams: Mutex<Streams>,
    pub(super) stats: Arc<Stats>,
    fetcher: Box<dyn Fetcher>,
}

impl RemoteFile {
    /// `block`: the cache block size, [`BLOCK`] or a multiple the service
    /// reads whole anyway; `stats` already counts what opening cost.
    pub(super) fn new(shown: String, len: u64, block: u64, fetcher: Box<dyn Fetcher>, stats: Arc<Stats>) -> RemoteFile {
        let block = block.max(1);
        RemoteFile {
            shown,
            len,
            block,
            cache: Mutex::new(Cache::new((CACHE_BYTES / block).max(4) as usize, len.div_ceil(block))),
            arrived: Condvar::new(),
            streams: Mutex::new(Streams::new(block)),
            stats,
            fetcher,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The blocks holding `[offset, end)`: those cached, the others fetched,
    /// each run of missing blocks in one fetch. A block another reader is
    /// already fetching is waited for, not fetched twice (threads reading
    /// neighbouring files, or inodes of one inode-table block, at once).
    /// A run that continues a stream of sequential reads (a file being
    /// copied) is extended ahead by as much as that stream has read so
    /// far, up to [`READ_AHEAD_BYTES`], once it has read
    /// [`READ_AHEAD_AFTER`]: small files cost no read-ahead, a large one
    /// wastes at most that much past its end.
    fn blocks(&self, offset: u64, end: u64) -> io::Result<Vec<Arc<Vec<u8>>>> {
        let (first, last) = (offset / self.block, (end - 1) / self.block);
        let mut got: Vec<Option<Arc<Vec<u8>>>> = vec![None; (last - first + 1) as usize];
        loop {
            // Which blocks are cached, which this reader fetches (claimed
            // as pending), which another reader is fetching.
            let mut mine = vec![false; got.len()];
            let mut others = false;
            let mut claims = Claims { file: self, blocks: Vec::new() };
            let since = {
                let mut cache = self.lock();
                for (i, slot) in got.iter_mut().enumerate().filter(|(_, s)| s.is_none()) {
                    let n = first + i as u64;
                    if let Some(b) = cache.get(n, &self.stats) {
                        *slot = Some(b);
                    } else if cache.pending.insert(n) {
                        mine[i] = true;
                        claims.blocks.push(n);
                    } else {
                        others = true;
                    }
                }
                cache.failures
            };
            let mut i = 0;
            while i < mine.len() {
                if !mine[i] {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < mine.len() && mine[i] {
                    i += 1;
                }
                self.fetch_run(first + start as u64, (i - start) as u64, (offset, end), &mut got[start..i], &mut claims)?;
            }
            if !others {
                break;
            }
            // Waiting for another reader's request is waiting on the network too.
            let cache = self.stats.waiting(|| {
                let mut cache = self.lock();
                while got.iter().enumerate().any(|(i, s)| s.is_none() && cache.pending.contains(&(first + i as u64))) {
                    cache = self.arrived.wait(cache).unwrap_or_else(|p| p.into_inner());
                }
                cache
            });
            // The fetch waited for failed: its error, rather than every
            // waiting reader trying again in turn (an outage would cost
            // each its own round of retries, one after another).
            let missing = got.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| first + i as u64);
            if let Some(e) = missing.filter_map(|n| cache.failed_since(n, since)).next() {
                return Err(e);
            }
        }
        got.into_iter()
            .enumerate()
            .map(|(k, b)| b.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, format!("block {} not received", first + k as u64))))
            .collect()
    }

    /// Fetches the `want` blocks from `n` this reader claimed (and those
    /// read ahead of them, claimed here) for the read of `[offset, end)`,
    /// puts them in the cache and in `got`.
    fn fetch_run(
        &self,
        n: u64,
        want: u64,
        (offset, end): (u64, u64),
        got: &mut [Option<Arc<Vec<u8>>>],
        claims: &mut Claims<'_>,
    ) -> io::Result<()> {
        let total = self.len.div_ceil(self.block);
        let ahead = self.streams.lock().unwrap_or_else(|p| p.into_inner()).advance(n, want);
        let count = {
            let mut cache = self.lock();
            let free = (n + want..(n + want + ahead).min(total)).take_while(|&b| !cache.has(b) && cache.pending.insert(b)).count();
            claims.blocks.extend(n + want..n + want + free as u64);
            want + free as u64
        };
        let at = n * self.block;
        let len = (count * self.block).min(self.len - at);
        let fetched = self.stats.waiting(|| self.fetcher.fetch(at, len, &self.stats)).and_then(|data| match data.len() as u64 == len {
            true => Ok(data),
            false => {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} bytes received at {at} where {len} were due", data.len())))
            }
        });
        let data = match fetched {
            Ok(data) => data,
            Err(e) => {
                self.lock().fail(n..n + count, &e);
                return Err(e);
            }
        };
        let mut cache = self.lock();
        // The blocks this read covers whole are a file's content streaming
        // through: kept only until others need the room. A block it reads
        // only part of is kept as recently used (the rest is usually the
        // neighbouring file's, or the next read's), and so are the blocks
        // fetched ahead.
        for (k, chunk) in data.chunks(self.block as usize).enumerate() {
            let b = Arc::new(chunk.to_vec());
            if let Some(slot) = got.get_mut(k) {
                *slot = Some(b.clone());
            }
            let at = (n + k as u64) * self.block;
            let kind = if k as u64 >= want {
                Kind::Ahead
            } else if at >= offset && at + chunk.len() as u64 <= end {
                Kind::Streamed
            } else {
                Kind::Read
            };
            cache.put(n + k as u64, b, kind, &self.stats);
        }
        for b in n..n + count {
            cache.pending.remove(&b);
        }
        claims.blocks.retain(|b| !(n..n + count).contains(b));
        self.arrived.notify_all();
        Ok(())
    }
}

/// Blocks a reader claimed to fetch and has not put in the cache yet:
/// released, and the readers waiting for them woken, when it is dropped,
/// so that a failed fetch (or a panic) never leaves a reader waiting for a
/// block no one fetches. They then fetch it themselves.
struct Claims<'a> {
    file: &'a RemoteFile,
    blocks: Vec<u64>,
}

impl Drop for Claims<'_> {
    fn drop(&mut self) {
        if self.blocks.is_empty() {
            return;
        }
        let mut cache = self.file.lock();
        for b in &self.blocks {
            cache.pending.remove(b);
        }
        self.file.arrived.notify_all();
    }
}

impl ReadAt for RemoteFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.len - offset) as usize;
        self.stats.bytes_read.fetch_add(want as u64, Relaxed);
        let mut done = 0;
        for (k, block) in self.blocks(offset, offset + want as u64)?.iter().enumerate() {
            let at = offset + done as u64;
            let from = if k == 0 { (offset % self.block) as usize } else { 0 };
            let n = (want - done).min(Vec::len(block).saturating_sub(from));
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("the block at {at} is short")));
            }
            buf[done..done + n].copy_from_slice(&block[from..from + n]);
            done += n;
        }
        Ok(done)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// Why a block entered the cache.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// Asked for by a read, which may well ask for it again (metadata, or
    /// the block the next read of a file starts in).
    Read,
    /// Consumed whole by a read streaming through a file: kept only until
    /// others need the room.
    Streamed,
    /// Fetched ahead of a stream, not read yet.
    Ahead,
}

/// The most recently used blocks, oldest first, and which blocks were ever
/// fetched (one bit a block: 512 KiB for 1 TiB of 256 KiB blocks), so that
/// a block fetched twice is counted.
struct Cache {
    blocks: Vec<(u64, Arc<Vec<u8>>, Kind)>,
    capacity: usize,
    fetched: Vec<u64>,
    /// Blocks a reader is fetching now.
    pending: HashSet<u64>,
    /// Fetches that failed, the most recent last (a few kept: they are for
    /// the readers waiting on them when they failed), each numbered.
    failed: VecDeque<(u64, std::ops::Range<u64>, io::ErrorKind, String)>,
    failures: u64,
}

impl Cache {
    fn new(capacity: usize, blocks: u64) -> Cache {
        Cache {
            blocks: Vec::new(),
            capacity,
            fetched: vec![0; blocks.div_ceil(64) as usize],
            pending: HashSet::new(),
            failed: VecDeque::new(),
            failures: 0,
        }
    }

    /// Records that fetching `blocks` failed with `e`.
    fn fail(&mut self, blocks: std::ops::Range<u64>, e: &io::Error) {
        self.failures += 1;
        if self.failed.len() >= 64 {
            self.failed.pop_front();
        }
        self.failed.push_back((self.failures, blocks, e.kind(), e.to_string()));
    }

    /// The error of a fetch of block `n` that failed after failure number
    /// `since`, if one did.
    fn failed_since(&self, n: u64, since: u64) -> Option<io::Error> {
        let (_, _, kind, why) = self.failed.iter().rev().take_while(|f| f.0 > since).find(|f| f.1.contains(&n))?;
        Some(io::Error::new(*kind, why.clone()))
    }

    fn has(&self, n: u64) -> bool {
        self.blocks.iter().any(|(b, ..)| *b == n)
    }

    fn get(&mut self, n: u64, stats: &Stats) -> Option<Arc<Vec<u8>>> {
        let i = self.blocks.iter().position(|(b, ..)| *b == n)?;
        let (n, data, kind) = self.blocks.remove(i);
        if kind == Kind::Ahead {
            stats.ahead_used.fetch_add(Vec::len(&data) as u64, Relaxed);
        }
        self.blocks.push((n, data.clone(), Kind::Read));
        Some(data)
    }

    /// Adds a block fetched: as the most recently used, or, streamed, as
    /// the next to go: the blocks of a file being streamed through must not
    /// push out the filesystem metadata that every lookup needs again.
    fn put(&mut self, n: u64, data: Arc<Vec<u8>>, kind: Kind, stats: &Stats) {
        let len = Vec::len(&data) as u64;
        if let Some(word) = self.fetched.get_mut((n / 64) as usize) {
            if *word & (1 << (n % 64)) != 0 {
                stats.bytes_refetched.fetch_add(len, Relaxed);
            }
            *word |= 1 << (n % 64);
        }
        if kind == Kind::Ahead {
            stats.ahead_fetched.fetch_add(len, Relaxed);
        }
        self.blocks.retain(|(b, ..)| *b != n);
        if self.blocks.len() >= self.capacity {
            self.blocks.remove(0);
        }
        if kind == Kind::Streamed {
            self.blocks.insert(0, (n, data, kind));
        } else {
            self.blocks.push((n, data, kind));
        }
    }
}

/// Recent sequential readers: where each will read next and how much it
/// has read so far (threads copying files at once each keep theirs).
struct Streams {
    recent: Vec<(u64, u64)>,
    /// Blocks read in a row before any is fetched ahead, and the most
    /// fetched ahead at once.
    after: u64,
    most: u64,
}

impl Streams {
    const KEPT: usize = 32;

    fn new(block: u64) -> Streams {
        Streams { recent: Vec::new(), after: READ_AHEAD_AFTER / block, most: (READ_AHEAD_BYTES / block).max(1) }
    }

    /// Records a fetch of `count` blocks at `n`; how many to fetch ahead.
    fn advance(&mut self, n: u64, count: u64) -> u64 {
        let run = match self.recent.iter().position(|&(next, _)| next == n) {
            Some(i) => self.recent.remove(i).1,
            None => 0,
        };
        let ahead = if run >= self.after { run.min(self.most) } else { 0 };
        if self.recent.len() >= Self::KEPT {
            self.recent.remove(0);
        }
        self.recent.push((n + count + ahead, run + count + ahead));
        ahead
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn read_ahead_follows_each_stream_once_it_runs() {
        let mut s = Streams::new(BLOCK);
        let most = READ_AHEAD_BYTES / BLOCK;
        // A small file: no read-ahead.
        assert_eq!(s.advance(100, 4), 0);
        // Another thread's reads elsewhere do not break the first stream.
        assert_eq!(s.advance(5000, 4), 0);
        assert_eq!(s.advance(104, 4), 0);
        assert_eq!(s.advance(108, 4), 0);
        assert_eq!(s.advance(112, 4), 0);
        // 16 blocks (4 MiB) read in a row: ahead, as far as the cap.
        assert_eq!(s.advance(116, 4), most.min(16));
        assert_eq!(s.advance(120 + most.min(16), 4), most);
        assert_eq!(s.advance(5004, 4), 0);
        // Larger blocks (EBS's 512 KiB): the same bytes, fewer blocks.
        let mut s = Streams::new(2 * BLOCK);
        for k in 0..4 {
            assert_eq!(s.advance(10 + 2 * k, 2), 0);
        }
        assert_eq!(s.advance(18, 2), most / 2);
    }

    #[test]
    fn the_cache_keeps_the_most_recent_blocks() {
        let capacity = (CACHE_BYTES / BLOCK) as usize;
        let stats = Stats::default();
        let mut c = Cache::new(capacity, 20000);
        for n in 0..(capacity as u64 + 2) {
            c.put(n, Arc::new(vec![n as u8]), Kind::Read, &stats);
        }
        assert!(c.get(0, &stats).is_none() && c.get(1, &stats).is_none());
        assert_eq!(c.get(2, &stats).as_deref(), Some(&vec![2u8]));
        assert_eq!(c.blocks.len(), capacity);
        // A streamed block goes first, and does not push out the others.
        c.put(9999, Arc::new(vec![1]), Kind::Streamed, &stats);
        c.put(10000, Arc::new(vec![1]), Kind::Streamed, &stats);
        assert!(c.get(9999, &stats).is_none() && c.get(4, &stats).is_some());
        // What it cost: block 0 fetched again, one block of two fetched ahead read.
        assert_eq!(stats.bytes_refetched.load(Relaxed), 0);
        c.put(0, Arc::new(vec![0; 3]), Kind::Read, &stats);
        assert_eq!(stats.bytes_refetched.load(Relaxed), 3);
        c.put(20, Arc::new(vec![0; 5]), Kind::Ahead, &stats);
        c.put(21, Arc::new(vec![0; 5]), Kind::Ahead, &stats);
        c.get(21, &stats);
        c.get(21, &stats);
        assert_eq!((stats.ahead_fetched.load(Relaxed), stats.ahead_used.load(Relaxed)), (10, 5));
    }

    /// Serves zeros slowly, counting fetches; the first `fail` fail.
    struct Slow {
        fetches: AtomicU64,
        fail: u64,
    }

    impl Fetcher for Slow {
        fn fetch(&self, _offset: u64, len: u64, _stats: &Arc<Stats>) -> io::Result<Vec<u8>> {
            // Long enough for every reader of the test to be waiting.
            std::thread::sleep(Duration::from_millis(200));
            match self.fetches.fetch_add(1, Relaxed) < self.fail {
                true => Err(io::Error::other("refused")),
                false => Ok(vec![0; len as usize]),
            }
        }
    }

    /// Readers of one block at once: one fetch, the others wait for it and
    /// share its outcome; a read after a failure fetches again.
    #[test]
    fn a_block_being_fetched_is_waited_for_not_fetched_again() {
        for fail in [0, 1] {
            let slow = Arc::new(Slow { fetches: AtomicU64::new(0), fail });
            struct Shared(Arc<Slow>);
            impl Fetcher for Shared {
                fn fetch(&self, offset: u64, len: u64, stats: &Arc<Stats>) -> io::Result<Vec<u8>> {
                    self.0.fetch(offset, len, stats)
                }
            }
            let f = RemoteFile::new("t".into(), 64 * BLOCK, BLOCK, Box::new(Shared(slow.clone())), Arc::default());
            let ok = std::thread::scope(|s| {
                let readers: Vec<_> = (0..8u64)
                    .map(|k| {
                        let f = &f;
                        s.spawn(move || f.read_at(BLOCK * 3 + k * 512, &mut [1u8; 512]).is_ok())
                    })
                    .collect();
                readers.into_iter().map(|r| r.join().unwrap()).filter(|&ok| ok).count()
            });
            // A failed fetch fails the readers that waited for it too: one
            // fetch either way.
            assert_eq!(ok, if fail == 0 { 8 } else { 0 }, "fail {fail}");
            assert_eq!(slow.fetches.load(Relaxed), 1, "fail {fail}");
            // A later read tries again.
            assert!(f.read_at(BLOCK * 3, &mut [0u8; 512]).is_ok());
            assert_eq!(slow.fetches.load(Relaxed), 1 + fail, "fail {fail}");
        }
    }

    #[test]
    fn retries_back_off_then_give_up() {
        let stats = Stats::default();
        let mut r = Retry::new();
        let mut waits = Vec::new();
        loop {
            r.attempt(&stats);
            match r.wait("HTTP 503", None) {
                Ok(w) => waits.push(w),
                Err(e) => {
                    assert!(e.to_string().contains("gave up after 6 attempts: HTTP 503"), "{e}");
                    break;
                }
            }
        }
        assert_eq!(waits[0], FIRST_BACKOFF);
        assert_eq!(waits[1], FIRST_BACKOFF * 2);
        assert_eq!(stats.requests.load(Relaxed), u64::from(ATTEMPTS));
        assert_eq!(stats.retries.load(Relaxed), u64::from(ATTEMPTS - 1));
        // The server's own wait wins, within the cap.
        let mut r = Retry::new();
        r.attempt(&stats);
        assert_eq!(r.wait("429", Some(Duration::from_secs(3600))).ok(), Some(MAX_BACKOFF));
    }
}
