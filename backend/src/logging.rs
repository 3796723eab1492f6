//! Logging: tracing to stderr and to a size-bounded log file.
//!
//! Why our own rotation: tracing-appender rotates by time only, and a daemon left
//! running for months must not fill the disk. The file is rotated when it passes
//! `log.max_bytes` (`perchd.log` → `perchd.log.1` …, `log.keep` files kept).
//!
//! Credentials never reach a log: no code formats a password, and the profile type
//! keeps its password sealed (see `secret`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogConfig;

/// A log file that rotates itself when it grows past a size.
#[derive(Clone)]
pub struct RotatingFile {
    inner: Arc<Mutex<RotatingState>>,
}

struct RotatingState {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            inner: Arc::new(Mutex::new(RotatingState {
                path: path.to_path_buf(),
                file,
                size,
                max_bytes,
                keep,
            })),
        })
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl RotatingState {
    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            for n in (1..self.keep).rev() {
                let from = numbered(n);
                if from.exists() {
                    std::fs::rename(&from, numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// One write of one log event; rotation happens between events, never inside one.
pub struct RotatingWriter<'a>(&'a RotatingFile);

impl Write for RotatingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self
            .0
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if st.size > 0 && st.size + buf.len() as u64 > st.max_bytes {
            // A failed rotation must not lose the event: keep appending.
            let _ = st.rotate();
        }
        let n = st.file.write(buf)?;
        st.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .file
            .flush()
    }
}

impl<'a> MakeWriter<'a> for RotatingFile {
    type Writer = RotatingWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        RotatingWriter(self)
    }
}

/// Builds the filter for a level such as `info`, or a full tracing filter.
fn filter(level: &str) -> EnvFilter {
    let spec = match level {
        "error" | "warn" | "info" | "debug" | "trace" => {
            // Our crates at the asked level; dependencies at warn at most, so their
            // protocol traces (which may carry stream data) stay out of the log.
            let deps = if level == "error" { "error" } else { "warn" };
            format!(
                "{deps},perch_backend={level},perchd={level},perch_plugin_api={level},perch_plugins={level}"
            )
        }
        other => other.to_owned(),
    };
    EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber and a panic hook that logs panics.
pub fn init(config: &LogConfig, file: Option<&Path>) -> io::Result<()> {
    use std::io::IsTerminal;
    // Colours only for a person at a terminal (and not when NO_COLOR is set).
    let ansi = io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(io::stderr)
        .with_target(false);
    let file_layer = match file {
        Some(path) => Some(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(RotatingFile::open(path, config.max_bytes, config.keep)?),
        ),
        None => None,
    };
    // `try_init` fails only if a subscriber is already set (tests): that is fine.
    let _ = tracing_subscriber::registry()
        .with(filter(&config.level))
        .with(stderr)
        .with(file_layer)
        .try_init();
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        // tokio-xmpp's stream worker ends this way when we stop reconnecting after a
        // fatal error (its documented contract); it is expected, not a bug.
        if msg.contains("Backend was unable to handle reconnect request") {
            tracing::debug!("XMPP stream worker stopped after a fatal connection error");
        } else {
            tracing::error!(panic = %msg, "a task panicked");
        }
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_max_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perchd.log");
        let f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            let mut w = f.make_writer();
            w.write_all(format!("line {i:02} {}\n", "x".repeat(40)).as_bytes())
                .unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        assert!(dir.path().join("perchd.log.1").exists());
        assert!(dir.path().join("perchd.log.2").exists());
        assert!(!dir.path().join("perchd.log.3").exists());
        let last = std::fs::read_to_string(&path).unwrap();
        assert!(last.contains("line 09"), "{last}");
    }
}
