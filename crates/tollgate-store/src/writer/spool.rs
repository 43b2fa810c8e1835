//! Spool files: spend records kept on disk while the database cannot take them.
//!
//! Every file is JSON lines, one [`SpendRecord`] a line. `spend-<millis>-<run>-<seq>.jsonl`
//! files are written whole and fsync'd by the writer task (memory spill, shutdown);
//! `overflow.jsonl` is appended to by `SpendWriter::record` when the queue is full and is
//! renamed into a `spend-*` file before it is replayed; `rejected.jsonl` keeps what the
//! database refused and lines that do not parse, for an operator to look at (never replayed).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::SpendRecord;

/// The file `SpendWriter::record` appends to when the queue is full or closed.
pub const OVERFLOW_FILE_NAME: &str = "overflow.jsonl";
/// The file that keeps records the database refused and spool lines that do not parse.
pub const REJECTED_FILE_NAME: &str = "rejected.jsonl";

const PREFIX: &str = "spend-";
const SUFFIX: &str = ".jsonl";

/// Spool files waiting to be replayed in `dir`, oldest first: the `spend-*.jsonl` files,
/// then `overflow.jsonl` if it exists. A missing directory has none.
pub fn spool_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = spend_files(dir)?;
    let overflow = dir.join(OVERFLOW_FILE_NAME);
    if overflow.is_file() {
        files.push(overflow);
    }
    Ok(files)
}

/// Reads the records of a spool file, skipping empty lines and lines that do not parse.
pub fn read_spool_file(path: &Path) -> io::Result<Vec<SpendRecord>> {
    read_lines(path).map(|parsed| parsed.records)
}

/// Returns a name for this run of a writer, distinct from other runs sharing a spool dir.
pub(super) fn new_run_id() -> String {
    static STARTED: AtomicU64 = AtomicU64::new(0);
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    format!("{:x}.{:x}.{n}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// The `spend-*.jsonl` files in `dir`, oldest first.
pub(super) fn spend_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(PREFIX) && name.ends_with(SUFFIX) && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    // Names start with a zero-padded timestamp, so name order is age order.
    files.sort();
    Ok(files)
}

/// Whether `path` is a spool file written by the run `run_id`.
pub(super) fn written_by(path: &Path, run_id: &str) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.split('-').nth(1))
        .is_some_and(|run| run == run_id)
}

/// Creates a new, empty spool file name in `dir` that no other file has.
fn create_new(dir: &Path, run_id: &str, seq: &mut u64) -> io::Result<(PathBuf, File)> {
    let millis = chrono::Utc::now().timestamp_millis().max(0);
    loop {
        *seq += 1;
        let path = dir.join(format!("{PREFIX}{millis:013}-{run_id}-{:06}{SUFFIX}", *seq));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes `records` to a new spool file, fsync'd together with its directory entry.
pub(super) fn write_spool_file(
    dir: &Path,
    run_id: &str,
    seq: &mut u64,
    records: &[SpendRecord],
) -> io::Result<PathBuf> {
    let mut bytes = Vec::with_capacity(records.len() * 512);
    for record in records {
        serde_json::to_writer(&mut bytes, record).map_err(io::Error::other)?;
        bytes.push(b'\n');
    }
    let (path, mut file) = create_new(dir, run_id, seq)?;
    let written = file.write_all(&bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        // A half-written file must not be replayed as if it were whole.
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    sync_dir(dir);
    Ok(path)
}

/// Makes a new or renamed directory entry durable. Best effort: not every platform can
/// open a directory.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// What a spool file holds.
pub(super) struct Parsed {
    pub(super) records: Vec<SpendRecord>,
    /// Non-empty lines that are not a spend record.
    pub(super) corrupt: Vec<String>,
}

pub(super) fn read_lines(path: &Path) -> io::Result<Parsed> {
    let reader = BufReader::new(File::open(path)?);
    let mut parsed = Parsed { records: Vec::new(), corrupt: Vec::new() };
    for line in reader.split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(&line) {
            Ok(record) => parsed.records.push(record),
            Err(_) => parsed.corrupt.push(String::from_utf8_lossy(&line).into_owned()),
        }
    }
    Ok(parsed)
}

/// Appends lines (each without its newline) to `rejected.jsonl`.
pub(super) fn append_rejected(dir: &Path, lines: &[String]) -> io::Result<()> {
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    let mut file =
        OpenOptions::new().create(true).append(true).open(dir.join(REJECTED_FILE_NAME))?;
    // Start on a fresh line even if an earlier append was cut short.
    file.write_all(b"\n")?;
    file.write_all(&bytes)?;
    file.sync_all()
}

/// The overflow file, opened on first use. Guarded by a mutex in the writer's shared state.
#[derive(Default)]
pub(super) struct Overflow {
    file: Option<File>,
    /// A write failed part-way, so the file may end in a partial line.
    torn: bool,
    /// Records appended since the file was last rotated.
    pub(super) lines: u64,
}

impl Overflow {
    /// Appends one line (with its newline).
    pub(super) fn append(&mut self, dir: &Path, line: &[u8]) -> io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            empty => empty.insert(
                OpenOptions::new().create(true).append(true).open(dir.join(OVERFLOW_FILE_NAME))?,
            ),
        };
        let result = if self.torn {
            file.write_all(b"\n").and_then(|()| file.write_all(line))
        } else {
            file.write_all(line)
        };
        match result {
            Ok(()) => {
                self.torn = false;
                self.lines += 1;
                Ok(())
            }
            Err(e) => {
                self.file = None;
                self.torn = true;
                Err(e)
            }
        }
    }

    /// Appends `n` records' lines (`bytes`, each line with its newline) and makes them
    /// durable: the file's data, and its directory entry when the file is new. On failure the
    /// file is cut back to where it was, so no torn line is left behind for a later replay.
    pub(super) fn append_durable(&mut self, dir: &Path, bytes: &[u8], n: u64) -> io::Result<()> {
        let new = self.file.is_none();
        let file = match &mut self.file {
            Some(file) => file,
            empty => empty.insert(
                OpenOptions::new().create(true).append(true).open(dir.join(OVERFLOW_FILE_NAME))?,
            ),
        };
        let start = file.metadata()?.len();
        let mut result = if self.torn { file.write_all(b"\n") } else { Ok(()) };
        result = result.and_then(|()| file.write_all(bytes)).and_then(|()| file.sync_data());
        if let Err(e) = result {
            // Without the cut a partial line would stay; the next append starts a fresh line.
            self.torn = file.set_len(start).is_err() || self.torn;
            self.file = None;
            return Err(e);
        }
        if new {
            sync_dir(dir);
        }
        self.torn = false;
        self.lines += n;
        Ok(())
    }

    /// Renames the overflow file to a spool file if records were appended to it; the next
    /// append starts a new one. Returns the new name.
    pub(super) fn rotate(
        &mut self,
        dir: &Path,
        run_id: &str,
        seq: &mut u64,
    ) -> io::Result<Option<PathBuf>> {
        if self.lines == 0 {
            return Ok(None);
        }
        if let Some(file) = self.file.take() {
            file.sync_all()?;
        }
        let target = rename_overflow(dir, run_id, seq)?;
        self.lines = 0;
        self.torn = false;
        Ok(target)
    }
}

/// Renames `dir/overflow.jsonl`, if it exists, to a new spool file name.
pub(super) fn rename_overflow(
    dir: &Path,
    run_id: &str,
    seq: &mut u64,
) -> io::Result<Option<PathBuf>> {
    let source = dir.join(OVERFLOW_FILE_NAME);
    if !source.exists() {
        return Ok(None);
    }
    // Reserve a name that no other file has, then move the overflow file over it.
    let (target, placeholder) = create_new(dir, run_id, seq)?;
    drop(placeholder);
    if let Err(e) = fs::rename(&source, &target) {
        let _ = fs::remove_file(&target);
        return Err(e);
    }
    sync_dir(dir);
    Ok(Some(target))
}
