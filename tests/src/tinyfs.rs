//! A tmpfs of a few megabytes, for full-disk drills: mounted for one test,
//! unmounted when dropped. Mounting needs root (CI runs as root); without it the
//! test fails and says so.

use anyhow::{Context, Result, ensure};

/// A tmpfs mounted for one test, unmounted when dropped (after perchd, declared later,
/// is gone).
pub struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    pub fn mount(size: &str) -> Result<Self> {
        ensure!(
            unix_uid() == 0,
            "the full-disk drill mounts a tmpfs and needs root (CI runs as root); \
             run it as root, or skip it with `--skip full_disk`"
        );
        let dir = tempfile::Builder::new()
            .prefix("perch-e2e-tinyfs-")
            .tempdir()?;
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .context("running mount (package mount)")?;
        ensure!(
            out.status.success(),
            "mount -t tmpfs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Self { dir })
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the file system to the last byte.
    pub fn fill(&self) -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler"))?;
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => return Ok(()), // ENOSPC
                Err(e) => return Err(e).context("filling the tmpfs"),
            }
        }
    }

    pub fn free(&self) -> Result<()> {
        Ok(std::fs::remove_file(self.path().join("filler"))?)
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

pub fn unix_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(u32::MAX)
}
