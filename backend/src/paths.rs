//! Where perchd keeps things, following the XDG base directory spec.
//!
//! Written by hand rather than with a crate: four variables and their fallbacks are all
//! there is to it, and the daemon must behave the same in a container with no `$HOME`
//! conventions beyond the spec.

use std::path::PathBuf;

fn xdg(var: &str, fallback_under_home: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() && PathBuf::from(&v).is_absolute() => PathBuf::from(v),
        _ => home().join(fallback_under_home),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `$XDG_CONFIG_HOME/perch` (default `~/.config/perch`).
pub fn config_dir() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("perch")
}

/// `$XDG_DATA_HOME/perch` (default `~/.local/share/perch`): the database and the key.
pub fn data_dir() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share").join("perch")
}

/// `$XDG_STATE_HOME/perch` (default `~/.local/state/perch`): the log file.
pub fn state_dir() -> PathBuf {
    xdg("XDG_STATE_HOME", ".local/state").join("perch")
}

/// `$XDG_RUNTIME_DIR/perch`, or `$TMPDIR/perch-$UID` (`/tmp/perch-$UID`) where there is
/// no runtime dir. The CLI computes the same path: both take it from `perch-client`,
/// which also holds the checks that keep another user from making it first
/// (`doc/security.rst`).
pub fn runtime_dir() -> PathBuf {
    perch_client::socket::runtime_dir()
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    perch_client::socket::effective_uid()
}
