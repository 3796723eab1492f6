//! `perch-call` processes driven from outside, as a user runs them: one per profile
//! of the harness perchd, their `--json` facts read when they exit.
//!
//! Why in the library: the e2e call tests and the call set-up bench of `perch-bench`
//! run the same processes and check the same facts, so a bench figure is always that
//! of a call the tests would have accepted.

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;

use crate::{Perchd, tail_file, wait_until, workspace_bin};

/// How long a whole call (set-up, media, hang-up) may take.
pub const CALL: Duration = Duration::from_secs(60);

/// A running `perch-call`, its stdout and stderr in files of perchd's directory.
pub struct CallProcess {
    child: Child,
    name: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl CallProcess {
    /// Starts `perch-call ARGS` on `perchd`'s bus, media on 127.0.0.1 (libnice skips
    /// loopback unless told), logging at info.
    pub fn spawn(perchd: &Perchd, name: &str, args: &[&str]) -> Result<Self> {
        let bin = workspace_bin("perch-call")?;
        let stdout = perchd.dir().join(format!("{name}.stdout"));
        let stderr = perchd.dir().join(format!("{name}.stderr"));
        let child = Command::new(bin)
            .env_clear()
            .envs(perchd.envs())
            .env("PERCH_CALL_LOG", "perch_call=info")
            .args(args)
            .args(["--local-address", "127.0.0.1"])
            .current_dir(perchd.dir())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout)?)
            .stderr(fs::File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("starting perch-call {}", args.join(" ")))?;
        Ok(Self {
            child,
            name: name.to_owned(),
            stdout,
            stderr,
        })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its stderr (its log) so far.
    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the line a listener prints once it cannot miss a call.
    pub fn wait_listening(&self) -> Result<()> {
        wait_until(Duration::from_secs(20), || {
            Ok(self.stderr_text().contains("waiting for a call"))
        })
        .with_context(|| {
            format!(
                "{} never said it was waiting; stderr:\n{}",
                self.name,
                tail_file(&self.stderr, 30)
            )
        })
    }

    /// Waits for the process to exit; returns (success, stdout, stderr).
    pub fn finish(mut self, timeout: Duration) -> Result<(bool, String, String)> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(anyhow!(
                    "{} still running after {timeout:?}; stderr:\n{}",
                    self.name,
                    tail_file(&self.stderr, 40)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        fs::File::open(&self.stdout)?.read_to_string(&mut out)?;
        Ok((status.success(), out, self.stderr_text()))
    }

    /// The `--json` facts of a call that went through.
    pub fn report(self, timeout: Duration) -> Result<Value> {
        Ok(self.report_and_log(timeout)?.0)
    }

    /// The `--json` facts of a call that went through, and its stderr (its log).
    pub fn report_and_log(self, timeout: Duration) -> Result<(Value, String)> {
        let name = self.name.clone();
        let (ok, out, err) = self.finish(timeout)?;
        ensure!(ok, "{name} failed:\nstdout: {out}\nstderr:\n{err}");
        let report = serde_json::from_str(out.trim())
            .with_context(|| format!("{name}'s stdout is not one JSON object: {out:?}"))?;
        Ok((report, err))
    }
}

impl Drop for CallProcess {
    fn drop(&mut self) {
        // Only when a test failed half-way: the process is ours.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Checks one side's facts: connected, every stream of `kinds` sent, received, decoded.
pub fn check_report(
    who: &str,
    report: &Value,
    kinds: &[&str],
    ended_by: &str,
    reason: &str,
) -> Result<()> {
    ensure!(
        matches!(
            report["ice_state"].as_str(),
            Some("connected" | "completed")
        ),
        "{who}: ICE not connected: {report}"
    );
    ensure!(
        report["dtls_state"] == "connected" && report["peer_state"] == "connected",
        "{who}: DTLS not connected: {report}"
    );
    ensure!(
        report["end_reason"] == reason && report["ended_by"] == ended_by,
        "{who}: expected end {reason} by {ended_by}: {report}"
    );
    let setup = report["setup_ms"].as_f64().unwrap_or(-1.0);
    ensure!(
        (0.0..10_000.0).contains(&setup),
        "{who}: set-up time: {report}"
    );
    let streams = report["streams"]
        .as_array()
        .ok_or_else(|| anyhow!("{who}: no streams: {report}"))?;
    let got: Vec<&str> = streams.iter().filter_map(|s| s["kind"].as_str()).collect();
    ensure!(
        got == kinds,
        "{who}: streams {got:?}, expected {kinds:?}: {report}"
    );
    for s in streams {
        ensure!(
            s["stats_matched"] == true,
            "{who}: get-stats had no entry for the {} stream's SSRCs: {report}",
            s["kind"]
        );
        for field in [
            "packets_sent",
            "bytes_sent",
            "packets_received",
            "bytes_received",
            "probe_packets_sent",
            "probe_packets_received",
            "decoded_buffers",
        ] {
            ensure!(
                s[field].as_u64().is_some_and(|n| n > 0),
                "{who}: {field} of {} is not positive: {report}",
                s["kind"]
            );
        }
    }
    Ok(())
}
