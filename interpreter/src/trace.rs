//! A run's trace: one entry per tool call, written as trace.jsonl in step
//! order. A run may make millions of calls (a FIND `fit` item makes
//! ~25,000, a long search far more), so memory does not grow with them:
//! past [`SPILL_AT`] entries the trace is sorted and appended to a file in
//! the run folder as one sorted run, and the record's trace.jsonl is a
//! merge of those runs and what is left in memory. Entries arrive out of
//! step order (a call that calls functions finishes after its inner calls),
//! which the per-run sort and the merge put right.
//!
//! Without a run folder (tests, in-process runs) everything stays in
//! memory, as it would if the spill file cannot be written.

#![allow(clippy::disallowed_methods, reason = "the run folder's own trace files, never a script's files")]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One line of trace.jsonl. A call that read files or models, failed, or
/// was answered from the cache carries the digests of its arguments and
/// result; a call on in-memory values alone (most of a script's calls:
/// `len`, `abs`, `sum` ...) carries its tool and time only, since
/// results.json already pins what it computed and its digests would be
/// most of the trace's bytes (a FIND `fit` step makes ~185,000 such calls).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TraceEntry {
    pub step: u64,
    /// The tool's name (borrowed from its signature: no allocation per call).
    pub tool: std::borrow::Cow<'static, str>,
    /// sha256 of the bound arguments' canonical encoding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// Files read during the call: path -> sha256.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// sha256 of the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub seconds: f64,
    /// The call failed (it has no result).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// Answered from the call cache (not run).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

/// Entries kept in memory before they are spilled (~3 MB of entries).
pub const SPILL_AT: usize = 16_384;

/// The spill file's name inside the run folder (a dot name: never part of
/// a record, and removed once the trace is written or the run is dropped).
pub const SPILL_NAME: &str = ".trace-spill";

/// Traces larger than this are written gzip-compressed, as
/// `trace.jsonl.gz` (`assay trace RUN` prints either as JSONL).
pub const TRACE_GZ_ABOVE: usize = 1 << 20;

/// A run's tool calls, in memory up to a bound and on disk past it.
#[derive(Debug, Default)]
pub struct Trace {
    mem: Vec<TraceEntry>,
    len: usize,
    spill_at: usize,
    folder: Option<PathBuf>,
    spill: Option<Spill>,
    /// The spill file could not be written: everything stays in memory.
    spill_failed: bool,
}

/// The spill file: sorted runs of `[step u64][length u32][JSON]` records,
/// one after another; `runs` holds each run's byte range.
#[derive(Debug)]
struct Spill {
    file: File,
    path: PathBuf,
    end: u64,
    runs: Vec<(u64, u64)>,
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Trace {
    /// A trace that spills into `folder` (the run folder) past `SPILL_AT`
    /// entries; with no folder it stays in memory.
    pub fn spilling_into(folder: Option<&Path>) -> Trace {
        Trace::with_bound(folder, SPILL_AT)
    }

    /// As `spilling_into`, spilling past `spill_at` entries.
    pub fn with_bound(folder: Option<&Path>, spill_at: usize) -> Trace {
        Trace { folder: folder.map(Path::to_path_buf), spill_at: spill_at.max(1), ..Trace::default() }
    }

    /// How many tool calls the run made.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries held in memory now (at most the bound while spilling works).
    pub fn in_memory(&self) -> usize {
        self.mem.len()
    }

    /// Moves the entries out (to be written), leaving a trace that still
    /// counts the calls but holds none.
    pub fn detach(&mut self) -> Trace {
        let len = self.len;
        let taken = std::mem::take(self);
        self.len = len;
        taken
    }

    pub fn push(&mut self, entry: TraceEntry) {
        self.mem.push(entry);
        self.len += 1;
        let due = self.mem.len() >= self.spill_at && self.folder.is_some() && !self.spill_failed;
        // Never end a run over its trace: if the file cannot take more, the
        // rest stays in memory (the runs already spilled stay readable).
        if due && self.spill_out().is_err() {
            self.spill_failed = true;
        }
    }

    fn spill_out(&mut self) -> io::Result<()> {
        if self.spill.is_none() {
            let folder = self.folder.as_deref().ok_or_else(|| io::Error::other("no run folder"))?;
            let path = folder.join(SPILL_NAME);
            let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
            self.spill = Some(Spill { file, path, end: 0, runs: Vec::new() });
        }
        let spill = self.spill.as_mut().ok_or_else(|| io::Error::other("no spill file"))?;
        self.mem.sort_by_key(|t| t.step);
        let mut bytes = Vec::with_capacity(self.mem.len() * 64);
        for t in &self.mem {
            let json = serde_json::to_vec(t).map_err(io::Error::other)?;
            bytes.extend_from_slice(&t.step.to_le_bytes());
            bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&json);
        }
        spill.file.write_all_at(&bytes, spill.end)?;
        spill.runs.push((spill.end, spill.end + bytes.len() as u64));
        spill.end += bytes.len() as u64;
        self.mem.clear();
        self.mem.shrink_to(self.spill_at);
        Ok(())
    }

    /// Writes the trace as JSONL, one entry a line in step order, into `w`.
    pub fn write_jsonl(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut held: Vec<&TraceEntry> = self.mem.iter().collect();
        held.sort_by_key(|t| t.step);
        let mut held = held.into_iter().peekable();
        let mut readers: Vec<RunReader<'_>> = match &self.spill {
            Some(s) => s.runs.iter().map(|&(start, end)| RunReader::new(&s.file, start, end)).collect(),
            None => Vec::new(),
        };
        // The next entry of every spilled run, smallest step first.
        let mut heap = BinaryHeap::new();
        let mut lines: Vec<Vec<u8>> = vec![Vec::new(); readers.len()];
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(step) = r.next_into(&mut lines[i])? {
                heap.push(Reverse((step, i)));
            }
        }
        loop {
            let spilled = heap.peek().map(|Reverse((step, _))| *step);
            let memory = held.peek().map(|t| t.step);
            match (spilled, memory) {
                (None, None) => return Ok(()),
                (Some(s), m) if m.is_none_or(|m| s < m) => {
                    let Some(Reverse((_, i))) = heap.pop() else { return Ok(()) };
                    w.write_all(&lines[i])?;
                    w.write_all(b"\n")?;
                    if let Some(step) = readers[i].next_into(&mut lines[i])? {
                        heap.push(Reverse((step, i)));
                    }
                }
                _ => {
                    let Some(t) = held.next() else { return Ok(()) };
                    serde_json::to_writer(&mut *w, t).map_err(io::Error::other)?;
                    w.write_all(b"\n")?;
                }
            }
        }
    }

    /// The whole trace as one JSONL string (small traces, tests).
    pub fn to_jsonl(&self) -> String {
        let mut out = Vec::new();
        let _ = self.write_jsonl(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Writes the trace into `dir` as trace.jsonl, or trace.jsonl.gz past
    /// [`TRACE_GZ_ABOVE`] bytes, streaming (memory does not grow with it).
    /// Returns the file's name.
    pub fn write_file(&self, dir: &Path) -> io::Result<&'static str> {
        let mut sink = TraceSink { dir, head: Vec::new(), gz: None };
        // Lines reach the compressor in large pieces, not one call each.
        let mut buffered = io::BufWriter::with_capacity(1 << 16, &mut sink);
        self.write_jsonl(&mut buffered)?;
        buffered.flush()?;
        drop(buffered);
        let name = sink.finish()?;
        // The spill file is not part of the record: gone before the folder
        // is renamed into place (its open handle stays readable).
        if let Some(spill) = &self.spill {
            let _ = std::fs::remove_file(&spill.path);
        }
        Ok(name)
    }
}

/// Where a trace's JSONL goes: held until it passes `TRACE_GZ_ABOVE`, then
/// compressed into trace.jsonl.gz as it comes.
struct TraceSink<'a> {
    dir: &'a Path,
    head: Vec<u8>,
    gz: Option<flate2::write::GzEncoder<io::BufWriter<File>>>,
}

impl TraceSink<'_> {
    fn finish(self) -> io::Result<&'static str> {
        match self.gz {
            Some(gz) => {
                let file = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                Ok("trace.jsonl.gz")
            }
            None => {
                let mut f = File::create(self.dir.join("trace.jsonl"))?;
                f.write_all(&self.head)?;
                f.sync_all()?;
                Ok("trace.jsonl")
            }
        }
    }
}

impl Write for TraceSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(gz) = &mut self.gz {
            return gz.write(buf);
        }
        self.head.extend_from_slice(buf);
        if self.head.len() > TRACE_GZ_ABOVE {
            // No file name or time in the header: the same trace, the same bytes.
            let file = io::BufWriter::new(File::create(self.dir.join("trace.jsonl.gz"))?);
            let mut gz = flate2::GzBuilder::new().write(file, flate2::Compression::default());
            gz.write_all(&std::mem::take(&mut self.head))?;
            self.gz = Some(gz);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads one spilled run's records back, a buffer at a time.
struct RunReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    at: usize,
}

const READ_CHUNK: usize = 16 * 1024;

impl<'a> RunReader<'a> {
    fn new(file: &'a File, start: u64, end: u64) -> Self {
        RunReader { file, pos: start, end, buf: Vec::new(), at: 0 }
    }

    /// Makes at least `n` unread bytes available (fewer at the run's end).
    fn fill(&mut self, n: usize) -> io::Result<()> {
        if self.buf.len() - self.at >= n {
            return Ok(());
        }
        self.buf.drain(..self.at);
        self.at = 0;
        let want = (n - self.buf.len()).max(READ_CHUNK).min((self.end - self.pos) as usize);
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        self.file.read_exact_at(&mut self.buf[old..], self.pos)?;
        self.pos += want as u64;
        Ok(())
    }

    /// The next record's step, its JSON put in `line`; None at the run's end.
    fn next_into(&mut self, line: &mut Vec<u8>) -> io::Result<Option<u64>> {
        self.fill(12)?;
        if self.buf.len() - self.at < 12 {
            return Ok(None);
        }
        let head = &self.buf[self.at..self.at + 12];
        let step = u64::from_le_bytes(head[..8].try_into().map_err(io::Error::other)?);
        let n = u32::from_le_bytes(head[8..].try_into().map_err(io::Error::other)?) as usize;
        self.at += 12;
        self.fill(n)?;
        if self.buf.len() - self.at < n {
            return Err(io::Error::other("the trace's spill file is cut short"));
        }
        line.clear();
        line.extend_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(Some(step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(step: u64, tool: &'static str) -> TraceEntry {
        TraceEntry {
            step,
            tool: tool.into(),
            args: step.is_multiple_of(3).then(|| format!("{step:064x}")),
            inputs: BTreeMap::new(),
            output: None,
            seconds: step as f64 * 1e-6,
            failed: false,
            cached: step.is_multiple_of(5),
        }
    }

    /// Steps in the order calls finish: each outer call after its inner
    /// calls (post-order), with some outer calls spanning many spills.
    fn post_order(n: u64) -> Vec<u64> {
        fn visit(first: u64, size: u64, out: &mut Vec<u64>) {
            if size == 0 {
                return;
            }
            // `first` is the call; its children split the rest.
            let rest = size - 1;
            let (a, b) = (rest / 3, rest - rest / 3);
            visit(first + 1, a, out);
            let mut next = first + 1 + a;
            let mut left = b;
            while left > 0 {
                let k = left.min(7);
                visit(next, k, out);
                next += k;
                left -= k;
            }
            out.push(first);
        }
        let mut out = Vec::new();
        visit(1, n, &mut out);
        out
    }

    #[test]
    fn a_spilled_trace_reads_back_in_step_order_as_the_in_memory_one() {
        let order = post_order(10_000);
        assert_eq!(order.len(), 10_000);
        assert_ne!(order[0], 1, "the order is not already sorted");
        let dir = tempfile::tempdir().expect("dir");
        let mut spilled = Trace::with_bound(Some(dir.path()), 100);
        let mut kept = Trace::spilling_into(None);
        for &s in &order {
            spilled.push(entry(s, if s % 2 == 0 { "abs" } else { "len" }));
            kept.push(entry(s, if s % 2 == 0 { "abs" } else { "len" }));
            assert!(spilled.in_memory() < 100, "memory stays under the bound");
        }
        assert_eq!(spilled.len(), 10_000);
        assert!(dir.path().join(SPILL_NAME).is_file());
        let other = tempfile::tempdir().expect("dir");
        let mut dropped = Trace::with_bound(Some(other.path()), 10);
        (1..=20).for_each(|s| dropped.push(entry(s, "abs")));
        assert!(other.path().join(SPILL_NAME).is_file());
        drop(dropped);
        assert!(!other.path().join(SPILL_NAME).exists(), "a dropped trace takes its spill file with it");
        let text = spilled.to_jsonl();
        assert_eq!(text, kept.to_jsonl(), "spilling changes nothing");
        let steps: Vec<u64> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["step"].as_u64().expect("step"))
            .collect();
        assert_eq!(steps, (1..=10_000).collect::<Vec<_>>());
        // Written as a file: compressed past the bound, and the same text.
        let name = spilled.write_file(dir.path()).expect("write");
        let bytes = std::fs::read(dir.path().join(name)).expect("read");
        let back = if name == "trace.jsonl.gz" {
            let mut out = String::new();
            io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out).expect("gunzip");
            out
        } else {
            String::from_utf8(bytes).expect("utf8")
        };
        assert_eq!(back, text);
        assert!(!dir.path().join(SPILL_NAME).exists(), "the spill file is gone once the trace is written");
        assert_eq!(spilled.to_jsonl(), text, "and the trace can still be read");
    }

    #[test]
    fn a_small_trace_is_plain_and_a_large_one_compressed() {
        let dir = tempfile::tempdir().expect("dir");
        let mut small = Trace::spilling_into(Some(dir.path()));
        small.push(entry(1, "abs"));
        assert_eq!(small.write_file(dir.path()).expect("write"), "trace.jsonl");
        assert_eq!(std::fs::read_to_string(dir.path().join("trace.jsonl")).expect("read"), small.to_jsonl());
        let big_dir = tempfile::tempdir().expect("dir");
        let mut big = Trace::spilling_into(Some(big_dir.path()));
        for s in 1..=40_000 {
            big.push(entry(s, "abs"));
        }
        assert!(big.to_jsonl().len() > TRACE_GZ_ABOVE);
        assert_eq!(big.write_file(big_dir.path()).expect("write"), "trace.jsonl.gz");
        let gz = std::fs::read(big_dir.path().join("trace.jsonl.gz")).expect("read");
        assert!(gz.len() * 10 < big.to_jsonl().len());
        // Compressing it streamed or whole gives the same bytes.
        let mut whole = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
        whole.write_all(big.to_jsonl().as_bytes()).expect("gz");
        assert_eq!(whole.finish().expect("gz"), gz);
    }

    #[test]
    fn an_unwritable_folder_keeps_the_trace_in_memory() {
        let dir = tempfile::tempdir().expect("dir");
        let gone = dir.path().join("not-there");
        let mut t = Trace::with_bound(Some(&gone), 10);
        for s in (1..=50).rev() {
            t.push(entry(s, "abs"));
        }
        assert_eq!(t.in_memory(), 50);
        assert_eq!(t.to_jsonl().lines().count(), 50);
        assert!(t.to_jsonl().starts_with("{\"step\":1,"));
    }
}
