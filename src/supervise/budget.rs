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

/// What the SLURM job this process runs in allows: its memory
/// (`SLURM_MEM_PER_NODE`, or `SLURM_MEM_PER_CPU` times the CPUs on the
/// node; MiB) and the time it has left (squeue's `%L`).
pub struct JobLimits {
    pub job: String,
    pub memory: Option<u64>,
    pub left: Option<Duration>,
}

/// The limits of the SLURM job this process runs in, if it runs in one.
pub fn slurm_job() -> Option<JobLimits> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let job = env("SLURM_JOB_ID")?;
    let mib = |k: &str| env(k).and_then(|v| v.trim().parse::<u64>().ok()).filter(|m| *m > 0);
    let cpus = mib("SLURM_CPUS_ON_NODE").or_else(|| mib("SLURM_CPUS_PER_TASK")).unwrap_or(1);
    let memory = mib("SLURM_MEM_PER_NODE").or_else(|| mib("SLURM_MEM_PER_CPU").map(|m| m * cpus)).map(|m| m << 20);
    let left = time_left(&job).and_then(|t| parse_slurm_time(t.trim()));
    Some(JobLimits { job, memory, left })
}

/// squeue's `%L` for `job`, if it answers within 5 s (a controller that
/// does not answer must not hold up the run: the time budget then keeps
/// its default).
fn time_left(job: &str) -> Option<String> {
    use std::io::Read;
    let mut child = std::process::Command::new("squeue")
        .args(["-h", "-j", job, "-o", "%L"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => break,
            Ok(None) if started.elapsed() < Duration::from_secs(5) => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    Some(out)
}

/// SLURM's `[D-]H:MM:SS`, `M:SS`, `D-H` and `D-H:MM` (squeue's time left);
/// `None` for UNLIMITED, NOT_SET, INVALID or anything else.
pub fn parse_slurm_time(s: &str) -> Option<Duration> {
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, s),
    };
    let parts: Vec<u64> = rest.split(':').map(|p| p.parse::<u64>().ok()).collect::<Option<_>>()?;
    let (h, m, sec) = match (s.contains('-'), parts.as_slice()) {
        (true, [h]) => (*h, 0, 0),
        (true, [h, m]) => (*h, *m, 0),
        (_, [h, m, sec]) => (*h, *m, *sec),
        (false, [m, sec]) => (0, *m, *sec),
        (false, [m]) => (0, *m, 0),
        _ => return None,
    };
    Some(Duration::from_secs(((days * 24 + h) * 60 + m) * 60 + sec))
}

impl JobLimits {
    /// The budgets a run in this job gets by default: 85% of the job's
    /// memory (the rest covers Assay's own processes), and the time left
    /// less a margin (5%, at least 30 s), so that the run stops with a
    /// record before SLURM kills it.
    pub fn apply(&self, b: &mut Budget, memory: bool, time: bool) -> Option<String> {
        let mut said = Vec::new();
        if let (true, Some(m)) = (memory, self.memory) {
            b.memory = (m / 100 * 85).max(16 << 20);
            said.push(format!("memory {} (85% of the job's {})", fmt_bytes(b.memory), fmt_bytes(m)));
        }
        if let (true, Some(left)) = (time, self.left) {
            let margin = (left / 20).max(Duration::from_secs(30));
            b.timeout = if left > margin * 2 { left - margin } else { left / 2 }.max(Duration::from_secs(1));
            said.push(format!("time {}s (of the {}s the job has left)", b.timeout.as_secs(), left.as_secs()));
        }
        (!said.is_empty()).then(|| {
            format!(
                "note: budgets from SLURM job {}: {}; --memory and --timeout override them",
                self.job,
                said.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_times_parse_as_squeue_writes_them() {
        let s = |t: &str| parse_slurm_time(t).map(|d| d.as_secs());
        assert_eq!(s("6:58"), Some(418));
        assert_eq!(s("1:00:05"), Some(3605));
        assert_eq!(s("1-07:00:00"), Some(111_600));
        assert_eq!(s("2-03"), Some(183_600));
        assert_eq!(s("2-03:10"), Some(184_200));
        assert_eq!(s("UNLIMITED"), None);
        assert_eq!(s("NOT_SET"), None);
        assert_eq!(s("INVALID"), None);
    }

    #[test]
    fn job_limits_leave_a_margin() {
        let j = JobLimits { job: "7".into(), memory: Some(1000 << 20), left: Some(Duration::from_secs(600)) };
        let mut b = Budget::defaults();
        let note = j.apply(&mut b, true, true).unwrap();
        assert_eq!(b.memory, (1000u64 << 20) / 100 * 85);
        assert_eq!(b.timeout, Duration::from_secs(570));
        assert!(note.contains("SLURM job 7"), "{note}");
        let mut b = Budget::defaults();
        let before = b.timeout;
        assert!(j.apply(&mut b, true, false).is_some());
        assert_eq!(b.timeout, before, "an explicit --timeout is kept");
        let short = JobLimits { job: "8".into(), memory: None, left: Some(Duration::from_secs(40)) };
        short.apply(&mut b, true, true);
        assert_eq!(b.timeout, Duration::from_secs(20));
    }
}
