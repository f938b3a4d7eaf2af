//! Measuring one child process, and the baseline program the hook is compared with.
//!
//! `getrusage(RUSAGE_CHILDREN)` reports the largest resident set of all waited-for children
//! of the caller, so a long-lived bench process cannot attribute it to one run. Each run
//! therefore goes through a fresh meter process (`bench-exec`, a small program of its own)
//! that has exactly one child: its `RUSAGE_CHILDREN` is that child's peak memory and CPU time.
//! Linux counts the resident peak of the process a child was started from into the child's
//! peak, so the meter is kept smaller than anything it measures.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use nix::sys::resource::{UsageWho, getrusage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Resources used by one run of a program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Wall time from spawn to exit, seconds.
    pub wall_s: f64,
    /// Peak resident set (`ru_maxrss`), KiB.
    pub max_rss_kib: u64,
    /// User CPU time, seconds.
    pub user_s: f64,
    /// System CPU time, seconds.
    pub sys_s: f64,
}

/// The meter's work: runs `program args` (environment inherited, stdout discarded, stderr
/// into `stderr`), prints its [`Usage`] as JSON on stdout, and fails if the program failed.
pub fn measure_child(stderr: &Path, program: &OsString, args: &[OsString]) -> Result<()> {
    let log =
        std::fs::File::create(stderr).with_context(|| format!("create {}", stderr.display()))?;
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .with_context(|| format!("spawn {}", program.to_string_lossy()))?;
    let wall_s = start.elapsed().as_secs_f64();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let usage = Usage {
        wall_s,
        // Linux reports ru_maxrss in KiB.
        max_rss_kib: u64::try_from(usage.max_rss()).unwrap_or(0),
        user_s: seconds(usage.user_time()),
        sys_s: seconds(usage.system_time()),
    };
    if !status.success() {
        let text = std::fs::read_to_string(stderr).unwrap_or_default();
        bail!("{} exited with {status}: {}", program.to_string_lossy(), tail(&text));
    }
    println!("{}", serde_json::to_string(&usage)?);
    Ok(())
}

/// Runs `program args` through the meter with exactly `env` (plus `PATH`).
pub fn measure(
    meter: &Path,
    program: &Path,
    args: &[&str],
    env: &[(&str, String)],
    stderr: &Path,
) -> Result<Usage> {
    let out = Command::new(meter)
        .arg("--stderr")
        .arg(stderr)
        .arg("--")
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("spawn {}", meter.display()))?;
    if !out.status.success() {
        bail!("{}: {}", program.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).context("bench-exec output")
}

fn tail(text: &str) -> &str {
    // The last 2 KiB name the failure; a 30k-Service run may log megabytes before it.
    let start = text.len().saturating_sub(2048);
    let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
    &text[start..]
}

/// Byte sizes of the three output files of a hook run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSizes {
    /// `VALUES_JSON_PATCH_PATH`.
    pub values_patch: usize,
    /// `KUBERNETES_PATCH_PATH`.
    pub kubernetes: usize,
    /// `METRICS_PATH`.
    pub metrics: usize,
}

/// `xtask bench-baseline`: the least any hook must do with the same files. Reads the input
/// files named by the environment into generic JSON values, then writes output files of the
/// given sizes made of JSON re-serialized from the input, and frees everything as a Rust
/// program does at the end of `main`.
pub fn baseline(sizes: OutputSizes) -> Result<()> {
    let path = |var: &str| -> Result<PathBuf> {
        std::env::var_os(var).map(PathBuf::from).with_context(|| format!("{var} is not set"))
    };
    let read = |var: &str| -> Result<Value> {
        let p = path(var)?;
        let text = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parse {}", p.display()))
    };
    let contexts = read("BINDING_CONTEXT_PATH")?;
    let values = read("VALUES_PATH")?;
    let config_values = read("CONFIG_VALUES_PATH")?;
    let items: Vec<&Value> = contexts
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("snapshots").and_then(Value::as_object))
        .flat_map(|s| s.values())
        .filter_map(Value::as_array)
        .flatten()
        .chain([&values, &config_values])
        .collect();
    for (var, size) in [
        ("VALUES_JSON_PATCH_PATH", sizes.values_patch),
        ("KUBERNETES_PATCH_PATH", sizes.kubernetes),
        ("METRICS_PATH", sizes.metrics),
    ] {
        std::fs::write(path(var)?, json_lines_of_size(&items, size)?)?;
    }
    Ok(())
}

/// JSON lines of `items` (cycled when they are too few) cut to exactly `size` bytes.
fn json_lines_of_size(items: &[&Value], size: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size + 4096);
    // Each pass adds at least one byte per item; the bound only guards an empty input.
    for item in items.iter().cycle().take(size.saturating_add(1)) {
        if out.len() >= size {
            break;
        }
        serde_json::to_writer(&mut out, item)?;
        out.push(b'\n');
    }
    out.resize(size, b' ');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_have_the_exact_size() {
        let a = json!({"a": 1});
        for size in [0, 3, 8, 100] {
            assert_eq!(json_lines_of_size(&[&a], size).unwrap().len(), size);
        }
        assert_eq!(json_lines_of_size(&[], 5).unwrap(), b"     ");
    }
}
