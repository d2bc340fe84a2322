//! A run's budgets: memory, time and disk, how they are written on the
//! command line, and what the machine and the run folder have.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Memory, time and disk a run may use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Budget {
    /// Bytes of memory the script's work may add (heap and anonymous maps).
    pub memory: u64,
    pub timeout: Duration,
    /// Bytes the run may write into its run folder (artifacts, streamed
    /// captures, staged cache entries), counted as disk blocks in use.
    #[serde(default = "default_disk")]
    pub disk: u64,
}

/// The default disk budget: 10 GiB.
pub(super) const DEFAULT_DISK: u64 = 10 << 30;

pub(super) fn default_disk() -> u64 {
    DEFAULT_DISK
}

impl Budget {
    /// Default memory: half the machine's memory (what is left covers the
    /// parent, the system and other work); default time: one hour; default
    /// disk: 10 GiB.
    pub fn defaults() -> Budget {
        let total = meminfo_total().unwrap_or(8 << 30);
        Budget { memory: total / 2, timeout: Duration::from_secs(3600), disk: DEFAULT_DISK }
    }
}

/// The disk a folder's files take (blocks in use, so a sparse file counts
/// what it holds), without following links; stops counting past `limit`.
pub(super) fn disk_used(dir: &Path, limit: u64) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    let mut visited = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            visited += 1;
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total = total.saturating_add(m.blocks().saturating_mul(512));
            }
            if total > limit || visited > 1_000_000 {
                return total.max(limit.saturating_add(1));
            }
        }
    }
    total
}

pub(super) fn meminfo_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Parses `512M`, `2G`, `1.5GiB`, `1000000` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a size; write e.g. 512M or 4G"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => return Err(format!("`{s}` has an unknown unit; use K, M, G or T")),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < (16 << 20) as f64 || bytes > 1e18 {
        return Err(format!("`{s}` is not a usable memory budget (at least 16M)"));
    }
    Ok(bytes as u64)
}

/// Parses `30`, `30s`, `5m`, `2h`, `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('s') if t.ends_with("ms") => (&t[..t.len() - 2], 0.001),
        Some('s') => (&t[..t.len() - 1], 1.0),
        Some('m') => (&t[..t.len() - 1], 60.0),
        Some('h') => (&t[..t.len() - 1], 3600.0),
        _ => (t, 1.0),
    };
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration; write e.g. 30s, 5m or 2h"))?;
    let secs = n * mult;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e7 {
        return Err(format!("`{s}` is not a usable time budget"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub(super) fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB", b >> 20)
    }
}
