//! Where perchd's peer-to-peer socket is, and who may own it.
//!
//! Why both sides check: with no `$XDG_RUNTIME_DIR` the socket lives under the shared
//! temporary directory (`/tmp/perch-$UID`), where another local user can create the
//! directory first. Then she would receive the victim's calls — `ProfileCreate` carries
//! a password — or stop perchd from starting. So perchd creates its directory itself
//! (mode 0700) and refuses one it did not make safe ([`prepare_dir`]), and a client
//! refuses a socket, or a socket directory, that is not its own user's before it sends
//! a byte ([`check_socket`]). The rule is "same uid as me", for root too: root's CLI
//! does not talk to a socket another user made. `doc/security.rst` states it.
//!
//! The one remaining window — the socket swapped between the check and `connect` — is
//! closed by the directory check (only its owner can change a private directory's
//! entries) and, after `connect`, by the credentials of the process behind the socket
//! ([`crate::Client`] checks them with `SO_PEERCRED` before the D-Bus handshake).

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Unsafe};

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

/// `$XDG_RUNTIME_DIR/perch`, or `$TMPDIR/perch-$UID` (`/tmp/perch-$UID`) where there is
/// no runtime directory.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(v) if !v.is_empty() && Path::new(&v).is_absolute() => PathBuf::from(v).join("perch"),
        _ => std::env::temp_dir().join(format!("perch-{}", effective_uid())),
    }
}

/// The default peer-to-peer socket, `runtime_dir()/perchd.sock`.
pub fn default_socket() -> PathBuf {
    runtime_dir().join("perchd.sock")
}

/// What a socket's directory must be, beyond "a real directory owned by this user".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirPolicy {
    /// Nobody else may even look in (mode `0700` or stricter): perchd's own runtime
    /// directory, which it creates.
    Private,
    /// Nobody else may add, remove or rename entries (no group/other write): the
    /// directory of a socket path chosen by hand (`--socket`, `bridge.socket`), which
    /// may be a home directory.
    NoForeignWrites,
}

impl DirPolicy {
    /// The policy for a socket's directory: [`DirPolicy::Private`] for the default
    /// socket, [`DirPolicy::NoForeignWrites`] for one chosen by hand.
    pub fn for_socket(socket: &Path) -> Self {
        if socket == default_socket() {
            DirPolicy::Private
        } else {
            DirPolicy::NoForeignWrites
        }
    }

    fn forbidden_bits(self) -> u32 {
        match self {
            DirPolicy::Private => 0o077,
            DirPolicy::NoForeignWrites => 0o022,
        }
    }

    fn wanted(self) -> &'static str {
        match self {
            DirPolicy::Private => "0700",
            DirPolicy::NoForeignWrites => "writable by its owner only",
        }
    }
}

/// Checks an existing directory: not a symbolic link, a directory, owned by this user,
/// with no access `policy` forbids.
pub fn check_dir(dir: &Path, policy: DirPolicy) -> io::Result<Result<(), Unsafe>> {
    let meta = std::fs::symlink_metadata(dir)?;
    let me = effective_uid();
    Ok(if meta.file_type().is_symlink() {
        Err(Unsafe::Symlink)
    } else if !meta.is_dir() {
        Err(Unsafe::NotADirectory)
    } else if meta.uid() != me {
        Err(Unsafe::NotOwned {
            owner: meta.uid(),
            me,
        })
    } else if meta.mode() & policy.forbidden_bits() != 0 {
        Err(Unsafe::OpenToOthers {
            mode: meta.mode() & 0o7777,
            wanted: policy.wanted(),
        })
    } else {
        Ok(())
    })
}

/// The client's check, before anything is sent: the socket's directory passes
/// [`check_dir`] (policy [`DirPolicy::for_socket`]), and the socket is a socket (not a
/// link) owned by this user. A missing directory or socket is [`Error::NoDaemon`].
pub fn check_socket(socket: &Path) -> Result<(), Error> {
    let socket = std::path::absolute(socket)
        .map_err(|e| Error::NoDaemon(format!("cannot connect to {}: {e}", socket.display())))?;
    let missing = |path: &Path, e: io::Error| {
        Error::NoDaemon(format!("cannot connect to {}: {e}", path.display()))
    };
    let dir = socket.parent().unwrap_or(Path::new("/"));
    let unsafe_at = |path: &Path, reason| Error::UnsafeSocket {
        path: path.to_owned(),
        reason,
    };
    check_dir(dir, DirPolicy::for_socket(&socket))
        .map_err(|e| missing(&socket, e))?
        .map_err(|reason| unsafe_at(dir, reason))?;
    let meta = std::fs::symlink_metadata(&socket).map_err(|e| missing(&socket, e))?;
    let me = effective_uid();
    if meta.file_type().is_symlink() {
        return Err(unsafe_at(&socket, Unsafe::Symlink));
    }
    if !meta.file_type().is_socket() {
        return Err(unsafe_at(&socket, Unsafe::NotASocket));
    }
    if meta.uid() != me {
        return Err(unsafe_at(
            &socket,
            Unsafe::NotOwned {
                owner: meta.uid(),
                me,
            },
        ));
    }
    Ok(())
}

/// Why perchd will not serve its socket in a directory.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("socket directory {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "socket directory {} {reason}: refusing to serve there (another user may have \
         made it; remove it, or set XDG_RUNTIME_DIR or bridge.socket)",
        path.display()
    )]
    Unsafe { path: PathBuf, reason: Unsafe },
}

/// perchd's side: creates the socket's directory `dir` with mode 0700 when it is
/// missing, then refuses it unless [`check_dir`] passes.
pub fn prepare_dir(dir: &Path, policy: DirPolicy) -> Result<(), DirError> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |source| DirError::Io {
        path: dir.to_owned(),
        source,
    };
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                // Someone else made it in between: the check below judges it.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        Err(e) => return Err(io(e)),
    }
    check_dir(dir, policy)
        .map_err(io)?
        .map_err(|reason| DirError::Unsafe {
            path: dir.to_owned(),
            reason,
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn prepare_dir_creates_a_private_dir_and_refuses_loose_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("perch-x");
        prepare_dir(&dir, DirPolicy::Private).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // Again: it exists and is fine.
        prepare_dir(&dir, DirPolicy::Private).unwrap();

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = prepare_dir(&dir, DirPolicy::Private).unwrap_err();
        assert!(
            matches!(
                err,
                DirError::Unsafe {
                    reason: Unsafe::OpenToOthers { mode: 0o755, .. },
                    ..
                }
            ),
            "{err}"
        );
        // A hand-chosen directory may be readable by others, not writable.
        prepare_dir(&dir, DirPolicy::NoForeignWrites).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(prepare_dir(&dir, DirPolicy::NoForeignWrites).is_err());
    }

    #[test]
    fn a_symlinked_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = prepare_dir(&link, DirPolicy::Private).unwrap_err();
        assert!(
            matches!(
                err,
                DirError::Unsafe {
                    reason: Unsafe::Symlink,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn check_socket_wants_a_socket_of_mine() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let missing = tmp.path().join("none.sock");
        assert!(matches!(check_socket(&missing), Err(Error::NoDaemon(_))));
        let file = tmp.path().join("file.sock");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            check_socket(&file),
            Err(Error::UnsafeSocket {
                reason: Unsafe::NotASocket,
                ..
            })
        ));
        let sock = tmp.path().join("real.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        check_socket(&sock).unwrap();
    }
}
