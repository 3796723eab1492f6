//! Finding perchd and connecting to it, on a bus or peer to peer.
//!
//! Why one place: a frontend must work the same on a desktop (perchd on the session
//! bus) and on a headless box (perchd only on its peer-to-peer socket), and on both it
//! must make sure the daemon it talks to runs as its own user before it sends anything
//! (`doc/security.rst`). On a socket that is [`crate::socket::check_socket`] and then
//! the credentials of the process behind it (`SO_PEERCRED`); on a bus, the uid the bus
//! daemon reports for the owner of [`BUS_NAME`], whose unique name then becomes the
//! destination of every call, so a name that changes hands later gets nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use zbus::Connection;
use zbus::connection::Builder;
use zbus::names::{BusName, UniqueName};

use crate::error::{Error, Result, Unsafe};
use crate::proxy::Perch1Proxy;
use crate::signal::SignalStream;
use crate::socket::{check_socket, default_socket, effective_uid};
use crate::{BUS_NAME, INTERFACE, PATH};

/// How long [`Client::socket`] tries again when perchd drops it during the handshake.
pub const SOCKET_RETRY_BUDGET: Duration = Duration::from_secs(10);

/// One attempt at the socket: a failure worth another attempt, or the answer.
enum Attempt {
    Transient(String),
    Final(Error),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Attempt::Final(e)
    }
}

/// Where to find perchd.
#[derive(Debug, Clone)]
pub struct Target {
    /// A bus address perchd serves on (`--address`), instead of the session bus.
    pub address: Option<String>,
    /// perchd's peer-to-peer socket (`--socket`), instead of the default one.
    pub socket: Option<PathBuf>,
    /// How long one call may take before it fails with [`Error::Timeout`].
    pub timeout: Duration,
}

impl Default for Target {
    fn default() -> Self {
        Self {
            address: None,
            socket: None,
            timeout: Duration::from_secs(120),
        }
    }
}

/// A connection to perchd, checked; dereferences to the [`Perch1Proxy`] to call it.
#[derive(Clone)]
pub struct Client {
    proxy: Perch1Proxy<'static>,
    /// perchd's unique name on a bus; `None` peer to peer.
    unique: Option<UniqueName<'static>>,
}

impl std::ops::Deref for Client {
    type Target = Perch1Proxy<'static>;

    fn deref(&self) -> &Self::Target {
        &self.proxy
    }
}

impl Client {
    /// Finds perchd: an explicit bus address, else an explicit socket, else the
    /// session bus when perchd owns its name there, else the default socket.
    pub async fn connect(target: &Target) -> Result<Self> {
        if let Some(address) = &target.address {
            let conn = Builder::address(address.as_str())
                .method_timeout(target.timeout)
                .build()
                .await
                .map_err(|e| {
                    Error::NoDaemon(format!("cannot connect to the bus at {address}: {e}"))
                })?;
            return Self::on_bus(conn).await;
        }
        if let Some(socket) = &target.socket {
            return Self::socket(socket, target.timeout).await;
        }
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
            && let Ok(conn) = Builder::session()
                .method_timeout(target.timeout)
                .build()
                .await
        {
            match Self::on_bus(conn).await {
                Err(Error::NoDaemon(_)) => {}
                other => return other,
            }
        }
        Self::socket(&default_socket(), target.timeout)
            .await
            .map_err(|e| match e {
                Error::NoDaemon(m) => Error::NoDaemon(format!(
                    "perchd is not running (no {BUS_NAME} on the session bus; {m}); \
                     start it with `perchd`"
                )),
                other => other,
            })
    }

    /// perchd on a bus: checks that its name's owner runs as this user, and sends every
    /// call to that owner's unique name.
    pub async fn on_bus(conn: Connection) -> Result<Self> {
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let name = BusName::try_from(BUS_NAME)?;
        let owner = match dbus.get_name_owner(name).await {
            Ok(owner) => owner.into_inner(),
            Err(zbus::fdo::Error::NameHasNoOwner(m)) => {
                return Err(Error::NoDaemon(format!(
                    "perchd is not running on the bus ({m})"
                )));
            }
            Err(e) => return Err(zbus::Error::from(e).into()),
        };
        let me = effective_uid();
        // A bus that cannot tell (a TCP bus) has no uids to compare.
        if let Ok(uid) = dbus
            .get_connection_unix_user(BusName::from(owner.as_ref()))
            .await
            && uid != me
        {
            return Err(Error::UnsafeBus {
                owner: owner.to_string(),
                reason: Unsafe::RunsAs { peer: uid, me },
            });
        }
        let proxy = Perch1Proxy::builder(&conn)
            .destination(owner.clone())
            .path(PATH)
            .interface(INTERFACE)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        Ok(Self {
            proxy,
            unique: Some(owner),
        })
    }

    /// perchd on its peer-to-peer socket at `path`: the socket and its directory must be
    /// this user's ([`check_socket`]), and so must the process behind it.
    ///
    /// A perchd at its descriptor limit may drop a client during the D-Bus handshake,
    /// or have a full backlog: such an attempt is made again, 50 ms later doubling up
    /// to 1 s, for at most [`SOCKET_RETRY_BUDGET`] (and never past `timeout`). Every
    /// attempt makes the owner checks again.
    pub async fn socket(path: &Path, timeout: Duration) -> Result<Self> {
        let deadline = tokio::time::Instant::now() + SOCKET_RETRY_BUDGET.min(timeout);
        let mut delay = Duration::from_millis(50);
        loop {
            match Self::socket_once(path, timeout).await {
                Err(Attempt::Transient(_)) if tokio::time::Instant::now() + delay < deadline => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(Attempt::Transient(message)) => return Err(Error::NoDaemon(message)),
                Err(Attempt::Final(e)) => return Err(e),
                Ok(client) => return Ok(client),
            }
        }
    }

    async fn socket_once(path: &Path, timeout: Duration) -> Result<Self, Attempt> {
        check_socket(path)?;
        let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
            let message = format!("cannot connect to {}: {e}", path.display());
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Attempt::Transient(message)
            } else {
                Attempt::Final(Error::NoDaemon(message))
            }
        })?;
        let me = effective_uid();
        let peer = stream
            .peer_cred()
            .map_err(|e| {
                Error::NoDaemon(format!(
                    "cannot read the credentials behind {}: {e}",
                    path.display()
                ))
            })?
            .uid();
        if peer != me {
            return Err(Error::UnsafeSocket {
                path: path.to_owned(),
                reason: Unsafe::PeerNotOwned { peer, me },
            }
            .into());
        }
        let stream = stream
            .into_std()
            .map_err(|e| Error::NoDaemon(format!("{}: {e}", path.display())))?;
        let conn = Builder::unix_stream(stream)
            .p2p()
            .method_timeout(timeout)
            .build()
            .await
            .map_err(|e| {
                let message = format!("{} did not speak D-Bus: {e}", path.display());
                match e {
                    // Dropped in the handshake: perchd may be out of descriptors.
                    zbus::Error::InputOutput(_) => Attempt::Transient(message),
                    _ => Attempt::Final(Error::NoDaemon(message)),
                }
            })?;
        let proxy = Perch1Proxy::builder(&conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(Error::from)?;
        Ok(Self {
            proxy,
            unique: None,
        })
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection {
        self.proxy.inner().connection()
    }

    /// Whether perchd was found on a bus (else peer to peer).
    pub fn is_on_bus(&self) -> bool {
        self.unique.is_some()
    }

    /// Runs plugin action `A` for `profile` (`""`: the default profile): `args`
    /// serialised, the result parsed into `A::Output` ([`crate::action::run`]).
    pub async fn action<A: perch_actions::Action>(
        &self,
        profile: &str,
        args: &A::Args,
    ) -> Result<A::Output> {
        crate::action::run::<A>(&self.proxy, profile, args).await
    }

    /// perchd's signals from now on, decoded. Subscribe before the call whose
    /// consequences you wait for, so none can fall in between.
    pub async fn signals(&self) -> Result<SignalStream> {
        SignalStream::new(self.connection(), self.unique.as_ref()).await
    }
}
