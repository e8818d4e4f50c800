//! The instruments of the benchmarks: sizes, throughput, the process's
//! memory, scratch files, and the `dd conv=fsync` baseline.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, mult) = match s {
        _ if s.ends_with("GiB") => (&s[..s.len() - 3], 1u64 << 30),
        _ if s.ends_with("MiB") => (&s[..s.len() - 3], 1 << 20),
        _ if s.ends_with("KiB") => (&s[..s.len() - 3], 1 << 10),
        _ if s.ends_with("GB") => (&s[..s.len() - 2], 1_000_000_000),
        _ if s.ends_with("MB") => (&s[..s.len() - 2], 1_000_000),
        _ => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("not a size: {s} (e.g. 64MiB, 100MB)"))?;
    Ok(n * mult)
}

pub fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

/// Resident set size and its high-water mark, in KiB, from /proc.
pub fn rss() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the high-water mark (Linux: `echo 5 > /proc/self/clear_refs`).
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn work_dir(dir: Option<PathBuf>) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let t = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    };
    let p = t.path().to_path_buf();
    Ok((t, p))
}

pub fn fill(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let block: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// Writes back every dirty page first, so that a timed phase does not pay
/// for the writes of the one before.
pub fn settle() {
    let _ = std::process::Command::new("sync").status();
}

/// The baseline DESIGN names: `dd` writing the same number of bytes, fsynced.
pub fn dd_baseline(dir: &Path, size: u64) -> anyhow::Result<Duration> {
    let out = dir.join("dd.out");
    let count = size.div_ceil(1 << 20);
    settle();
    let t = Instant::now();
    let st = std::process::Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", out.display()),
            "bs=1M",
            &format!("count={count}"),
            "conv=fsync",
        ])
        .stderr(std::process::Stdio::null())
        .status()?;
    let d = t.elapsed();
    anyhow::ensure!(st.success(), "dd failed");
    // The file stays until the end of the run: deleting gigabytes on a disk
    // mounted with `discard` stalls the journal, and the next timed phase
    // would pay for it.
    Ok(d)
}
