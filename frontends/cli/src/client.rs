//! Finding perchd and calling it.
//!
//! Why a client module of its own: the CLI must work the same on a desktop (perchd on
//! the session bus) and on a headless box (perchd only on its peer-to-peer socket), and
//! every failure — no daemon, a typed daemon error, a bad reply — must come out as one
//! line `perch: <Name>: <message>`. Everything that touches zbus lives here, so the
//! command code only sees [`Client::call`] and [`CliError`].

use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use zbus::Connection;
use zbus::connection::Builder;

pub const BUS_NAME: &str = "org.perch.Perch";
pub const PATH: &str = "/org/perch/Perch";
pub const INTERFACE: &str = "org.perch.Perch1";
const ERROR_PREFIX: &str = "org.perch.Perch1.Error.";

/// A failure shown to the user as `perch: <name>: <message>`.
#[derive(Debug)]
pub struct CliError {
    pub name: String,
    pub message: String,
}

impl CliError {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            message: message.into(),
        }
    }

    pub fn bad_argument(message: impl Into<String>) -> Self {
        Self::new("BadArgument", message)
    }

    fn no_daemon(message: impl Into<String>) -> Self {
        Self::new("NoDaemon", message)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // One line, whatever the daemon put in the message.
        let message = self.message.replace('\n', " ");
        write!(f, "{}: {}", self.name, message.trim())
    }
}

impl From<zbus::Error> for CliError {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, message, _) => {
                let name = name.as_str();
                match name.strip_prefix(ERROR_PREFIX) {
                    Some(short) => Self::new(short, message.unwrap_or_default()),
                    None if name == "org.freedesktop.DBus.Error.ServiceUnknown"
                        || name == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
                    {
                        Self::no_daemon(format!(
                            "perchd is not running on the bus ({})",
                            message.unwrap_or_default()
                        ))
                    }
                    None if name == "org.freedesktop.DBus.Error.NoReply" => Self::new(
                        "Timeout",
                        format!(
                            "perchd did not answer in time ({})",
                            message.unwrap_or_default()
                        ),
                    ),
                    None => Self::new("DBus", format!("{name}: {}", message.unwrap_or_default())),
                }
            }
            zbus::Error::InputOutput(io) => {
                Self::no_daemon(format!("lost the connection to perchd: {io}"))
            }
            other => Self::new("DBus", other.to_string()),
        }
    }
}

/// Where to find perchd, from the command line and the environment.
#[derive(Debug, Default)]
pub struct Target {
    /// `--address`/`PERCH_ADDRESS`: a bus address.
    pub address: Option<String>,
    /// `--socket`/`PERCH_SOCKET`: a peer-to-peer socket.
    pub socket: Option<PathBuf>,
    /// How long a call may take before the CLI gives up.
    pub timeout: Duration,
}

/// A connection to perchd, over a bus or peer to peer.
pub struct Client {
    conn: Connection,
    /// `Some(name)` on a bus, `None` on a peer-to-peer socket (no destination there).
    destination: Option<&'static str>,
}

/// The default peer-to-peer socket, as perchd computes it.
pub fn default_socket() -> PathBuf {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(v) if !v.is_empty() && PathBuf::from(&v).is_absolute() => {
            PathBuf::from(v).join("perch")
        }
        _ => PathBuf::from(format!("/tmp/perch-{}", effective_uid())),
    };
    dir.join("perchd.sock")
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

impl Client {
    /// Finds perchd: an explicit bus address, an explicit socket, the session bus when
    /// perchd owns its name there, else the default socket.
    pub async fn connect(target: &Target) -> Result<Self, CliError> {
        if let Some(address) = &target.address {
            let conn = Builder::address(address.as_str())
                .method_timeout(target.timeout)
                .build()
                .await
                .map_err(|e| {
                    CliError::no_daemon(format!("cannot connect to the bus at {address}: {e}"))
                })?;
            return Ok(Self {
                conn,
                destination: Some(BUS_NAME),
            });
        }
        if let Some(socket) = &target.socket {
            return Self::p2p(socket, target.timeout).await;
        }
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
            && let Ok(conn) = Builder::session()
                .method_timeout(target.timeout)
                .build()
                .await
            && name_has_owner(&conn).await
        {
            return Ok(Self {
                conn,
                destination: Some(BUS_NAME),
            });
        }
        let socket = default_socket();
        Self::p2p(&socket, target.timeout).await.map_err(|e| {
            CliError::no_daemon(format!(
                "perchd is not running (no {BUS_NAME} on the session bus; {}); \
                 start it with `perchd`",
                e.message
            ))
        })
    }

    async fn p2p(socket: &std::path::Path, timeout: Duration) -> Result<Self, CliError> {
        let stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
            CliError::no_daemon(format!("cannot connect to {}: {e}", socket.display()))
        })?;
        let conn = Builder::unix_stream(stream)
            .p2p()
            .method_timeout(timeout)
            .build()
            .await
            .map_err(|e| {
                CliError::no_daemon(format!("{} did not speak D-Bus: {e}", socket.display()))
            })?;
        Ok(Self {
            conn,
            destination: None,
        })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn on_bus(&self) -> bool {
        self.destination.is_some()
    }

    /// Calls a method of `org.perch.Perch1` and deserializes its reply.
    pub async fn call<B, R>(&self, method: &str, body: &B) -> Result<R, CliError>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: DeserializeOwned + zbus::zvariant::Type,
    {
        let reply = self
            .conn
            .call_method(self.destination, PATH, Some(INTERFACE), method, body)
            .await?;
        reply.body().deserialize::<R>().map_err(|e| {
            CliError::new(
                "DBus",
                format!("unexpected reply to {method} (is perchd the same version?): {e}"),
            )
        })
    }

    /// Calls a method whose reply is a JSON string and parses it.
    pub async fn call_json<B>(&self, method: &str, body: &B) -> Result<serde_json::Value, CliError>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let text: String = self.call(method, body).await?;
        serde_json::from_str(&text)
            .map_err(|e| CliError::new("DBus", format!("{method} returned invalid JSON: {e}")))
    }
}

async fn name_has_owner(conn: &Connection) -> bool {
    let Ok(dbus) = zbus::fdo::DBusProxy::new(conn).await else {
        return false;
    };
    let Ok(name) = zbus::names::BusName::try_from(BUS_NAME) else {
        return false;
    };
    dbus.name_has_owner(name).await.unwrap_or(false)
}
