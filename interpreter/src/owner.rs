//! Who owns an unfinished run folder, so that a run removes only folders
//! whose owner is certainly gone — also when the runs folder is shared
//! between machines (NFS, Lustre) or containers, where another owner's
//! process cannot be seen.
//!
//! Beside each `.incomplete-*` folder lies `.incomplete-*.owner`, written
//! before the folder is made and removed after it is renamed into place:
//! the owner's host, boot id, PID namespace, PID and process start time,
//! and a lease. While the run lives, its process rewrites the file every
//! quarter lease (a write, so the file system's clock stamps it). A folder
//! is removed only when
//! - its owner is in this boot and PID namespace and that process (same
//!   PID *and* start time) is gone, or
//! - its owner is elsewhere and the owner file has not been rewritten for
//!   longer than its lease, by the file system's own clock (the mtime of a
//!   file made just now in the same folder), so clocks of other machines
//!   never matter.
//!
//! Folders without an owner file come from older versions of Assay (or are
//! a replaced record moved aside by `finish_named`): those keep the old rule,
//! the PID in the name.

#![allow(
    clippy::disallowed_methods,
    reason = "Assay's own bookkeeping: /proc and the runs folder's owner files, never a script's files"
)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// How long another machine's unfinished run is kept after its last
/// heartbeat, unless `ASSAY_RUN_LEASE_SECS` says otherwise.
const DEFAULT_LEASE_SECS: u64 = 600;
/// The shortest lease accepted (shorter ones would expire between beats on
/// a busy machine).
const MIN_LEASE_SECS: u64 = 2;
/// The largest owner file read.
const MAX_OWNER_BYTES: u64 = 4096;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Owner {
    host: String,
    boot_id: Option<String>,
    pid_ns: Option<String>,
    pid: u32,
    /// Process start time (clock ticks after boot), against PID reuse.
    start: Option<u64>,
    lease_secs: u64,
}

fn read_trimmed(p: &str) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The start time of process `pid` in this PID namespace, if it exists.
fn start_time(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold blanks and parentheses);
    // the start time is field 22, the 20th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn lease_secs() -> u64 {
    std::env::var("ASSAY_RUN_LEASE_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_LEASE_SECS)
        .max(MIN_LEASE_SECS)
}

impl Owner {
    fn me() -> Owner {
        Owner {
            host: read_trimmed("/proc/sys/kernel/hostname").unwrap_or_default(),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid_ns: fs::read_link("/proc/self/ns/pid").ok().map(|l| l.display().to_string()),
            pid: std::process::id(),
            start: start_time("self"),
            lease_secs: lease_secs(),
        }
    }

    /// Whether this process can see the owner's process table: same boot,
    /// same PID namespace (both known).
    fn local_to(&self, me: &Owner) -> bool {
        self.boot_id.is_some() && self.pid_ns.is_some() && self.boot_id == me.boot_id && self.pid_ns == me.pid_ns
    }

    fn alive_here(&self) -> bool {
        match (self.start, start_time(&self.pid.to_string())) {
            (Some(a), Some(b)) => a == b,
            (None, now) => now.is_some(),
            (Some(_), None) => false,
        }
    }
}

/// The owner file of the unfinished folder `dir`.
pub(crate) fn owner_file(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".owner");
    dir.with_file_name(name)
}

/// Held by the run that owns an unfinished folder: beats its owner file
/// until dropped, then removes it (after the folder was renamed into place
/// or removed).
pub struct Lease {
    file: PathBuf,
    stop: Arc<(Mutex<bool>, Condvar)>,
    beat: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({})", self.file.display())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (done, cv) = &*self.stop;
        *done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.beat.take() {
            let _ = t.join();
        }
        let _ = fs::remove_file(&self.file);
    }
}

/// Writes the owner file of `dir` (before `dir` exists, so that no folder
/// is ever seen without its owner) and starts its heartbeat.
pub(crate) fn claim(dir: &Path) -> std::io::Result<Lease> {
    let me = Owner::me();
    let file = owner_file(dir);
    let bytes = serde_json::to_vec(&me).map_err(std::io::Error::other)?;
    let tmp = file.with_extension("owner-new");
    fs::write(&tmp, &bytes)?;
    fs::rename(&tmp, &file)?;
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let every = Duration::from_millis(me.lease_secs * 1000 / 4);
    let (f, s) = (file.clone(), stop.clone());
    let beat = std::thread::Builder::new()
        .name("assay-lease".into())
        .spawn(move || {
            let (done, cv) = &*s;
            let mut stopped = done.lock().unwrap_or_else(|e| e.into_inner());
            while !*stopped {
                let (g, timeout) = cv.wait_timeout(stopped, every).unwrap_or_else(|e| e.into_inner());
                stopped = g;
                if timeout.timed_out() && !*stopped {
                    // A write, not a timestamp set: the file system stamps it
                    // with its own clock.
                    if let Ok(mut h) = fs::OpenOptions::new().write(true).open(&f) {
                        let _ = h.write_all(&bytes);
                    }
                }
            }
        })
        .ok();
    Ok(Lease { file, stop, beat })
}

/// An owner file's bytes: a regular file (not a link) of at most
/// [`MAX_OWNER_BYTES`].
fn read_owner(p: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    if !fs::symlink_metadata(p)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    fs::File::open(p)?.take(MAX_OWNER_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The file system's clock in `parent`: the mtime of a file made now.
fn fs_now(parent: &Path) -> SystemTime {
    let nonce = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let probe = parent.join(format!(".clock-{}-{nonce}", std::process::id()));
    let t = fs::write(&probe, b"t").and_then(|_| fs::metadata(&probe)).and_then(|m| m.modified());
    let _ = fs::remove_file(&probe);
    t.unwrap_or_else(|_| SystemTime::now())
}

/// Whether the owner of an unfinished folder (or of its owner file alone)
/// is certainly gone.
fn gone(owner_path: &Path, legacy_pid: Option<u32>, me: &Owner, now: &mut Option<SystemTime>, parent: &Path) -> bool {
    let Ok(bytes) = read_owner(owner_path) else {
        // No owner file: an older Assay's folder, or a replaced record
        // moved aside; the PID in its name decides, as it always did.
        return legacy_pid.is_none_or(|p| start_time(&p.to_string()).is_none());
    };
    match serde_json::from_slice::<Owner>(&bytes) {
        Ok(o) if o.local_to(me) => !o.alive_here(),
        parsed => {
            let lease = parsed.map(|o| o.lease_secs.max(MIN_LEASE_SECS)).unwrap_or(DEFAULT_LEASE_SECS);
            let Ok(beat) = fs::metadata(owner_path).and_then(|m| m.modified()) else { return false };
            let now = *now.get_or_insert_with(|| fs_now(parent));
            now.duration_since(beat).is_ok_and(|age| age > Duration::from_secs(lease))
        }
    }
}

/// Removes the unfinished folders (and lone owner files) in `parent` whose
/// owner is certainly gone; returns how many folders were removed.
pub(crate) fn clean_unfinished(parent: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent) else { return 0 };
    let me = Owner::me();
    let mut now = None;
    let mut removed = 0;
    let names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    for name in &names {
        let Some(rest) = name.strip_prefix(".incomplete-") else { continue };
        if let Some(folder) = name.strip_suffix(".owner") {
            // An owner file whose folder is gone (or not made yet).
            if !names.iter().any(|n| n == folder) && gone(&parent.join(name), None, &me, &mut now, parent) {
                let _ = fs::remove_file(parent.join(name));
            }
            continue;
        }
        if name.ends_with(".owner-new") {
            continue;
        }
        let dir = parent.join(name);
        let legacy_pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if dir.is_dir()
            && gone(&owner_file(&dir), legacy_pid, &me, &mut now, parent)
            && fs::remove_dir_all(&dir).is_ok()
        {
            let _ = fs::remove_file(owner_file(&dir));
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_its_folder_is_kept() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join(".incomplete-1-2");
        let lease = claim(&dir).unwrap();
        fs::create_dir(&dir).unwrap();
        assert_eq!(clean_unfinished(t.path()), 0);
        assert!(dir.is_dir() && owner_file(&dir).is_file());
        drop(lease);
        assert!(!owner_file(&dir).exists(), "the lease removes its owner file");
    }

    /// An unfinished folder in `t` whose owner is this process as `edit`
    /// changes it.
    fn owned_by(t: &tempfile::TempDir, edit: impl FnOnce(&mut Owner)) -> PathBuf {
        let dir = t.path().join(".incomplete-1-2");
        fs::create_dir(&dir).unwrap();
        let mut o = Owner::me();
        edit(&mut o);
        fs::write(owner_file(&dir), serde_json::to_vec(&o).unwrap()).unwrap();
        dir
    }

    #[test]
    fn a_reused_pid_is_not_its_owner() {
        let t = tempfile::tempdir().unwrap();
        let dir = owned_by(&t, |o| o.start = o.start.map(|s| s + 1));
        assert_eq!(clean_unfinished(t.path()), 1);
        assert!(!dir.exists() && !owner_file(&dir).exists());
    }

    #[test]
    fn another_machines_folder_waits_for_its_lease() {
        let t = tempfile::tempdir().unwrap();
        let dir = owned_by(&t, |o| {
            o.boot_id = Some("another-machine".into());
            o.pid = 999_999_999;
            o.lease_secs = 2;
        });
        assert_eq!(clean_unfinished(t.path()), 0, "its process cannot be seen from here: kept");
        std::thread::sleep(Duration::from_millis(2600));
        assert_eq!(clean_unfinished(t.path()), 1, "its lease ran out");
        assert!(!dir.exists());
    }
}
