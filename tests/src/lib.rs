//! The end-to-end test harness of Perch.
//!
//! Every fixture lives in its own temporary directory, listens on loopback only, on a
//! port picked free at start, and is torn down when dropped (also when a test panics):
//!
//! - [`Prosody`]: a real Prosody server for the domain `localhost`, with a throwaway CA
//!   and a `localhost` certificate signed by it, StartTLS required, file storage (so
//!   accounts and rosters survive a restart);
//! - [`DbusDaemon`]: a private D-Bus session bus;
//! - [`FakeServer`]: a scripted XMPP server for input no real server relays;
//! - [`Perchd`]: the daemon under test, on its own private bus and its own XDG
//!   directories, driven through the real `perch` CLI.
//!
//! Nothing here is global, so tests run in parallel. A missing tool is a failure with
//! the command that installs it, never a skip.
//!
//! When a test panics while a fixture is alive, the fixture prints the tail of its logs
//! to stderr (shown by the test runner). Set `PERCH_E2E_KEEP=1` to keep the temporary
//! directories for a look afterwards (their paths are printed).

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tempfile::TempDir;

pub mod bed;
pub mod call;
pub mod ejabberd;
#[cfg(test)]
mod layering;
pub mod libervia;
pub mod postgres;
pub use postgres::Postgres;
pub mod raw_client;
pub mod tinyfs;
pub use ejabberd::Ejabberd;
pub use raw_client::RawClient;
pub mod fake_server;
pub use fake_server::FakeServer;

/// The XMPP domain the harness Prosody serves.
pub const DOMAIN: &str = "localhost";
/// The harness Prosody's group chat service (XEP-0045, with XEP-0313 archives).
pub const MUC_DOMAIN: &str = "conference.localhost";
/// The harness Prosody's HTTP File Upload service (XEP-0363).
pub const UPLOAD_DOMAIN: &str = "upload.localhost";
/// Its size limit in bytes (`http_file_share_size_limit`, its form's `max-file-size`).
pub const UPLOAD_LIMIT: u64 = 1024 * 1024;
/// Password of `alice@localhost`, registered by [`Prosody::start`].
pub const ALICE_PW: &str = "alice-secret";
/// Password of `bob@localhost`, registered by [`Prosody::start`].
pub const BOB_PW: &str = "bob-secret";

/// How long a fixture may take to become ready. Generous: CI runs dozens of tests
/// at once on two cores, and a Prosody start once took over 20 s there.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one `perch` invocation may take before it is killed and the test fails.
/// (A `connect` may legitimately take `connect_attempts × connect_timeout` plus backoff.)
pub const CLI_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a graceful stop (SIGTERM) may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) const POLL: Duration = Duration::from_millis(100);

/// The configuration every test perchd starts from; a test's extra TOML is merged over
/// it (tables merged key by key, the test's values win).
pub const BASE_CONFIG: &str = "\
[xmpp]
connect_attempts = 2
connect_timeout = 10
reconnect_max_delay = 5
";

// ---------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------

/// Polls `cond` every 100 ms until it returns `Ok(true)`; fails when `timeout` has
/// passed (after one last try) or as soon as `cond` returns an error.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("condition still false after {timeout:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// A loopback TCP port that was free a moment ago (bound to port 0, read, released).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding 127.0.0.1:0 to find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A loopback port where nobody listens, held for as long as the value lives: a TCP
/// socket bound to it without `listen()`, so a connection is refused and no other
/// process (a server started by a parallel test) can take the port meanwhile, as it
/// could one found by [`free_port`].
pub struct RefusedPort {
    _socket: socket2::Socket,
    pub port: u16,
}

impl RefusedPort {
    pub fn new() -> Result<Self> {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .context("binding 127.0.0.1:0")?;
        let port = socket
            .local_addr()?
            .as_socket()
            .map(|a| a.port())
            .context("the bound address is not an IP socket")?;
        Ok(Self {
            _socket: socket,
            port,
        })
    }
}

/// Finds an executable in `$PATH`, `/usr/bin`, `/usr/sbin`, `/bin` or `/sbin`; when absent
/// the error says which Debian package to install.
pub fn find_program(name: &str, what: &str, package: &str) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if let Ok(meta) = fs::metadata(&candidate)
            && meta.is_file()
            && meta.permissions().mode() & 0o111 != 0
        {
            return Ok(candidate);
        }
    }
    bail!("{what} not found: install it with `apt-get install -y {package}`")
}

/// The harness crate's folder (`tests/` of the checkout): from cargo when it runs the
/// tests, as built otherwise (perch-bench run by hand). Read at run time first, because
/// a target dir kept across clones at other paths reuses tests built in an earlier one.
pub fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}

/// The path of a workspace binary (`perchd`, `perch`): next to the test executable's
/// `deps/` directory, i.e. `target/<profile>/<name>`.
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    // Test executables live in target/<profile>/deps, binaries (perch-bench) in
    // target/<profile>.
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("unexpected executable path {}", exe.display()))?;
    let profile_dir = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent()
            .ok_or_else(|| anyhow!("unexpected test executable path {}", exe.display()))?
    } else {
        dir
    };
    let path = profile_dir.join(name);
    ensure!(
        path.is_file(),
        "build the binaries first: cargo build --workspace --bins ({} does not exist)",
        path.display()
    );
    Ok(path)
}

/// Runs a command to completion with a timeout, capturing stdout and stderr (stdin is
/// /dev/null). A command still running at the deadline is killed and is an error.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Output> {
    let what = describe(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for {what}"))?
        {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_reader.join().unwrap_or_default();
            let stderr = err_reader.join().unwrap_or_default();
            bail!(
                "{what} did not finish within {timeout:?} (killed)\n--- stdout:\n{}\n--- stderr:\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// Like [`run_with_timeout`], and a non-zero exit is an error showing the output.
pub fn run_checked(cmd: Command, timeout: Duration) -> Result<Output> {
    let what = describe(&cmd);
    let output = run_with_timeout(cmd, timeout)?;
    ensure!(
        output.status.success(),
        "{what} failed ({})\n--- stdout:\n{}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

fn describe(cmd: &Command) -> String {
    let mut s = format!("`{}", cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s.push('`');
    s
}

/// The last `n` lines of a file ("(missing)" when it cannot be read).
pub fn tail_file(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => tail_lines(&String::from_utf8_lossy(&bytes), n),
        Err(e) => format!("({}: {e})", path.display()),
    }
}

/// The last `n` lines of a text.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The text of a file from byte `offset` on ("" when missing).
pub(crate) fn read_from(path: &Path, offset: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// Whether the tests run as root (as CI does): some servers refuse to.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn keep_dirs() -> bool {
    std::env::var_os("PERCH_E2E_KEEP").is_some_and(|v| !v.is_empty() && v != "0")
}

pub(crate) fn temp_dir(prefix: &str) -> Result<TempDir> {
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("creating a temporary directory")?;
    if keep_dirs() {
        dir.disable_cleanup(true);
        eprintln!("[perch-e2e] keeping {}", dir.path().display());
    }
    Ok(dir)
}

pub(crate) fn append_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Waits for a child up to `timeout`; `None` when it is still running.
pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Merges TOML `extra` over `base` (nested tables merged key by key).
pub fn merge_toml(base: &str, extra: &str) -> Result<String> {
    fn merge(into: &mut toml::Table, from: toml::Table) {
        for (key, value) in from {
            match (into.get_mut(&key), value) {
                (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
                (_, value) => {
                    into.insert(key, value);
                }
            }
        }
    }
    let mut table: toml::Table = base.parse().context("parsing the base perchd config")?;
    let extra: toml::Table = extra
        .parse()
        .context("parsing the test's extra perchd config")?;
    merge(&mut table, extra);
    Ok(toml::to_string(&table)?)
}

// ---------------------------------------------------------------------------------------
// Prosody
// ---------------------------------------------------------------------------------------

/// A Prosody server on `127.0.0.1:<port()>` for the domain `localhost`, StartTLS
/// required, its certificate signed by a throwaway CA ([`Prosody::ca_file`]).
pub struct Prosody {
    dir: TempDir,
    port: u16,
    /// The HTTPS port (HTTP File Upload's `http_file_share`) on 127.0.0.1.
    https_port: u16,
    config: PathBuf,
    prosody: PathBuf,
    prosodyctl: PathBuf,
    child: Option<Child>,
    /// Lines added to the global section of the configuration.
    extra_config: String,
    /// `http_file_share_size_limit` of its upload service.
    upload_limit: u64,
}

pub(crate) enum LaunchError {
    PortInUse,
    Other(anyhow::Error),
}

impl From<anyhow::Error> for LaunchError {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

impl Prosody {
    /// Starts a server with `alice` ([`ALICE_PW`]) and `bob` ([`BOB_PW`]) registered.
    pub fn start() -> Result<Self> {
        Self::start_with_users(&[("alice", ALICE_PW), ("bob", BOB_PW)])
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts a server with `alice` and `bob`, and `extra` lines in the global section
    /// of its configuration (e.g. `smacks_hibernation_time = 2`).
    pub fn start_with_config(extra: &str) -> Result<Self> {
        Self::start_full(&[("alice", ALICE_PW), ("bob", BOB_PW)], extra)
    }

    /// Starts a server with these `(user, password)` accounts registered.
    pub fn start_with_users(users: &[(&str, &str)]) -> Result<Self> {
        Self::start_full(users, "")
    }

    /// Starts a server with these accounts whose upload service takes files up to
    /// `limit` bytes (instead of [`UPLOAD_LIMIT`]); for benchmarks.
    pub fn start_with_upload_limit(users: &[(&str, &str)], limit: u64) -> Result<Self> {
        let extra = format!("http_max_content_size = {limit}\n");
        Self::start_limited(users, &extra, limit)
    }

    fn start_full(users: &[(&str, &str)], extra: &str) -> Result<Self> {
        Self::start_limited(users, extra, UPLOAD_LIMIT)
    }

    fn start_limited(users: &[(&str, &str)], extra: &str, upload_limit: u64) -> Result<Self> {
        let prosody = find_program("prosody", "prosody", "prosody")?;
        let prosodyctl = find_program("prosodyctl", "prosody", "prosody")?;
        let openssl = find_program("openssl", "openssl", "openssl")?;
        let dir = temp_dir("perch-e2e-prosody-")?;
        make_certificates(&openssl, dir.path())?;
        fs::create_dir_all(dir.path().join("data"))?;
        let mut server = Self {
            config: dir.path().join("prosody.cfg.lua"),
            dir,
            port: 0,
            https_port: 0,
            prosody,
            prosodyctl,
            child: None,
            extra_config: extra.to_owned(),
            upload_limit,
        };
        // Another process may grab the port between free_port() and Prosody's bind:
        // detect that from Prosody's log and try another port.
        let mut attempts = 0;
        loop {
            attempts += 1;
            server.port = free_port()?;
            server.https_port = free_port()?;
            server.write_config()?;
            if attempts == 1 {
                for (user, password) in users {
                    server.register(user, password)?;
                }
            }
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(LaunchError::PortInUse) if attempts < 5 => continue,
                Err(LaunchError::PortInUse) => {
                    bail!("prosody: could not get a free port after {attempts} attempts")
                }
                Err(LaunchError::Other(e)) => return Err(e),
            }
        }
    }

    /// The c2s (StartTLS) port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTPS port of the upload service (`upload.localhost`, XEP-0363), whose
    /// URLs are `https://localhost:<port>/…` under the harness certificate.
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// `127.0.0.1:<port>`, for a profile's `--server`.
    pub fn server_arg(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The PEM file of the CA that signed the server certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca").join("ca.crt")
    }

    /// The server's own temporary directory (config, data, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Prosody's log file (debug level).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("prosody.log")
    }

    /// Registers an account `user@localhost` (works whether or not the server runs).
    pub fn register(&self, user: &str, password: &str) -> Result<()> {
        let mut cmd = Command::new(&self.prosodyctl);
        cmd.arg("--config")
            .arg(&self.config)
            .args(["register", user, DOMAIN, password]);
        run_checked(cmd, Duration::from_secs(30))
            .with_context(|| format!("registering {user}@{DOMAIN} in prosody"))?;
        Ok(())
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill(&mut self) -> Result<()> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("prosody is not running"))?;
        child.kill().context("killing prosody")?;
        child.wait().context("waiting for the killed prosody")?;
        Ok(())
    }

    /// Starts the server again on the same port with the same data.
    pub fn start_again(&mut self) -> Result<()> {
        ensure!(self.child.is_none(), "prosody is still running");
        match self.launch() {
            Ok(()) => Ok(()),
            Err(LaunchError::PortInUse) => bail!(
                "prosody: port {} was taken by another process while prosody was down\n{}",
                self.port,
                self.diagnostics()
            ),
            Err(LaunchError::Other(e)) => Err(e),
        }
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// The tails of Prosody's logs, for failure reports.
    pub fn diagnostics(&self) -> String {
        format!(
            "=== prosody ({}), port {}\n--- prosody.log (tail):\n{}\n--- prosody stdout/stderr (tail):\n{}\n",
            self.dir.path().display(),
            self.port,
            tail_file(&self.log_path(), 60),
            tail_file(&self.dir.path().join("prosody.out"), 20),
        )
    }

    fn write_config(&self) -> Result<()> {
        let d = self.dir.path().display();
        let port = self.port;
        let https = self.https_port;
        let extra = &self.extra_config;
        let upload_limit = self.upload_limit;
        let config = format!(
            r#"-- Generated by the Perch e2e harness.
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
run_as_root = true
log = {{ debug = "{d}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
s2s_ports = {{ }}
s2s_direct_tls_ports = {{ }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ {https} }}
https_interfaces = {{ "127.0.0.1" }}
https_ssl = {{ certificate = "{d}/certs/localhost.crt"; key = "{d}/certs/localhost.key" }}
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
certificates = "{d}/certs"
ssl = {{ certificate = "{d}/certs/localhost.crt"; key = "{d}/certs/localhost.key" }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "register"; "smacks"; "carbons"; "posix"; "pep"; "mam"; "offline"; "bookmarks"; "turn_external"; "blocklist"; "vcard_legacy"; "csi_simple" }}
modules_disabled = {{ "s2s" }}
-- XEP-0215 STUN/TURN announcements for calls (no TURN server runs: lookups only).
turn_external_secret = "perch-test-turn-secret"
turn_external_host = "127.0.0.1"
admins = {{ "alice@localhost" }}
pep_max_items = 10000
{extra}

VirtualHost "localhost"

-- Memory storage: the default file store rewrites a node on every publish.
Component "pubsub.localhost" "pubsub"
    pubsub_max_items = 10000
    storage = "memory"
    storage_archive_item_limit = 100000
    expose_publisher = true

-- Group chats (XEP-0045), with their archive (XEP-0313).
Component "{MUC_DOMAIN}" "muc"
    modules_enabled = {{ "muc_mam" }}
    muc_log_by_default = true

-- HTTP File Upload (XEP-0363) over HTTPS with the harness certificate: `*.localhost`
-- names do not resolve here, so the URLs use `localhost`, which the certificate covers.
Component "upload.localhost" "http_file_share"
    http_host = "localhost"
    http_external_url = "https://localhost:{https}/"
    http_file_share_size_limit = {upload_limit}
"#
        );
        fs::write(&self.config, config).context("writing prosody.cfg.lua")
    }

    fn launch(&mut self) -> Result<(), LaunchError> {
        let log = self.log_path();
        let offset = file_len(&log);
        let _ = fs::remove_file(self.dir.path().join("prosody.pid"));
        let out = append_file(&self.dir.path().join("prosody.out"))?;
        let err = out.try_clone().context("duplicating a file handle")?;
        let child = Command::new(&self.prosody)
            .arg("--config")
            .arg(&self.config)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("starting prosody")?;
        self.child = Some(child);

        let activated = format!("Activated service 'c2s' on [127.0.0.1]:{}", self.port);
        let failed = format!("Failed to open server port {}", self.port);
        let failed_https = format!("Failed to open server port {}", self.https_port);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("just started");
            if let Some(status) = child.try_wait().context("waiting for prosody")? {
                self.child = None;
                return Err(anyhow!(
                    "prosody exited during startup ({status})\n{}",
                    self.diagnostics()
                )
                .into());
            }
            let new_log = read_from(&log, offset);
            if new_log.contains(&failed) || new_log.contains(&failed_https) {
                if let Some(mut child) = self.child.take() {
                    kill_and_reap(&mut child);
                }
                return Err(LaunchError::PortInUse);
            }
            if new_log.contains(&activated)
                && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if let Some(mut child) = self.child.take() {
                    kill_and_reap(&mut child);
                }
                return Err(anyhow!(
                    "prosody did not accept connections on port {} within {STARTUP_TIMEOUT:?}\n{}",
                    self.port,
                    self.diagnostics()
                )
                .into());
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
    }
}

/// A throwaway CA (`ca/ca.crt`, CA:TRUE) and a leaf for `localhost` signed by it
/// (`certs/localhost.{crt,key}`, SAN localhost + pubsub.localhost, CA:FALSE): rustls
/// rejects a self-signed CA:TRUE certificate used as a server certificate.
pub(crate) fn make_certificates(openssl: &Path, dir: &Path) -> Result<()> {
    let ca = dir.join("ca");
    let certs = dir.join("certs");
    fs::create_dir_all(&ca)?;
    fs::create_dir_all(&certs)?;
    let run = |args: &[&str]| -> Result<()> {
        let mut cmd = Command::new(openssl);
        cmd.args(args).current_dir(dir);
        run_checked(cmd, Duration::from_secs(60)).context("generating the test certificates")?;
        Ok(())
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca/ca.key",
        "-out",
        "ca/ca.crt",
        "-days",
        "30",
        "-subj",
        "/CN=Perch e2e test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])?;
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "certs/localhost.key",
        "-out",
        "ca/localhost.csr",
        "-subj",
        "/CN=localhost",
    ])?;
    fs::write(
        ca.join("ext.cnf"),
        "subjectAltName=DNS:localhost,DNS:pubsub.localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )?;
    run(&[
        "x509",
        "-req",
        "-in",
        "ca/localhost.csr",
        "-CA",
        "ca/ca.crt",
        "-CAkey",
        "ca/ca.key",
        "-CAcreateserial",
        "-out",
        "certs/localhost.crt",
        "-days",
        "30",
        "-extfile",
        "ca/ext.cnf",
    ])?;
    Ok(())
}

/// Opens an XMPP client stream to `127.0.0.1:port` and returns everything the server
/// sent up to and including `</stream:features>` (at most 5 s).
pub fn probe_stream_features(port: u16) -> Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(
        format!(
            "<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' \
             xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        )
        .as_bytes(),
    )?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received);
        if text.contains("</stream:features>") {
            return Ok(text.into_owned());
        }
        if Instant::now() >= deadline {
            bail!("no complete <stream:features/> from {addr} within 5 s; got: {text}");
        }
        match stream.read(&mut buf) {
            Ok(0) => bail!("{addr} closed the stream; got: {text}"),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e).with_context(|| format!("reading from {addr}")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// dbus-daemon
// ---------------------------------------------------------------------------------------

/// A private D-Bus session bus (`dbus-daemon --session --nofork`) at
/// `unix:path=<tmp>/bus`.
pub struct DbusDaemon {
    dir: TempDir,
    address: String,
    child: Option<Child>,
}

impl DbusDaemon {
    pub fn start() -> Result<Self> {
        let exe = find_program("dbus-daemon", "dbus-daemon", "dbus-daemon")?;
        let dir = temp_dir("perch-e2e-bus-")?;
        let stderr_path = dir.path().join("dbus-daemon.err");
        let mut child = Command::new(exe)
            .arg("--session")
            .arg("--nofork")
            .arg("--print-address=1")
            .arg(format!("--address=unix:path={}/bus", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(append_file(&stderr_path)?)
            .spawn()
            .context("starting dbus-daemon")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            // Keep the pipe open (and drained) for the daemon's lifetime.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let address = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Ok(line)) if !line.trim().is_empty() => line.trim().to_owned(),
            other => {
                kill_and_reap(&mut child);
                bail!(
                    "dbus-daemon did not print its address ({other:?}); stderr:\n{}",
                    tail_file(&stderr_path, 20)
                );
            }
        };
        Ok(Self {
            dir,
            address,
            child: Some(child),
        })
    }

    /// The bus address, as printed by dbus-daemon (`unix:path=…,guid=…`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A new zbus connection to this bus (needs a Tokio runtime).
    pub async fn connection(&self) -> Result<zbus::Connection> {
        let conn = zbus::connection::Builder::address(self.address.as_str())
            .build()
            .await
            .with_context(|| format!("connecting to the private bus {}", self.address))?;
        Ok(conn)
    }

    /// Whether `name` has an owner on this bus. Blocking; it runs its own runtime on a
    /// helper thread, so it works inside and outside async code alike.
    pub fn name_has_owner(&self, name: &str) -> Result<bool> {
        let address = self.address.clone();
        let name = name.to_owned();
        std::thread::spawn(move || -> Result<bool> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let conn = zbus::connection::Builder::address(address.as_str())
                    .build()
                    .await?;
                let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
                let name = zbus::names::BusName::try_from(name.as_str())?;
                Ok(dbus.name_has_owner(name).await?)
            })
        })
        .join()
        .map_err(|_| anyhow!("the NameHasOwner helper thread panicked"))?
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}

// ---------------------------------------------------------------------------------------
// perchd
// ---------------------------------------------------------------------------------------

/// The daemon under test, on its own private bus, with every XDG directory, `HOME`, its
/// config and its data inside one temporary directory. Drive it with [`Perchd::cli`] and
/// friends, which run the real `perch` CLI with the same environment.
pub struct Perchd {
    // Field order matters for Drop: the child is killed in `drop`, then the bus goes,
    // then the directory.
    child: Option<Child>,
    bus: DbusDaemon,
    dir: TempDir,
    perchd: PathBuf,
    perch: PathBuf,
    kill_cmd: PathBuf,
    /// Offsets into the stderr file and the log at the latest start.
    stderr_offset: u64,
    log_offset: u64,
    /// Whether perchd is configured to serve on the (private) session bus.
    on_bus: bool,
    /// `--data-dir`.
    data_dir: PathBuf,
    /// `--log-level`: `debug`, unless the test's configuration names one in
    /// `[log] level` (the command line would override it).
    log_level: String,
    /// Variables set (`Some`) or removed (`None`) over [`Perchd::envs`], for perchd and
    /// the CLI alike.
    env_overrides: Vec<(String, Option<String>)>,
}

/// perchd's well-known name on the bus.
pub use perch_client::BUS_NAME;

impl Perchd {
    /// Starts perchd with [`BASE_CONFIG`] on a new private bus.
    pub fn start() -> Result<Self> {
        Self::start_with_config("")
    }

    /// Starts perchd with `extra_toml` merged over [`BASE_CONFIG`].
    pub fn start_with_config(extra_toml: &str) -> Result<Self> {
        Self::start_full(extra_toml, &[], None)
    }

    /// Like [`Perchd::start_with_config`], with the data directory (database, key)
    /// at `data_dir` when given (a small file system, for a full-disk drill).
    pub fn start_with_data_dir(extra_toml: &str, data_dir: Option<&Path>) -> Result<Self> {
        Self::start_full(extra_toml, &[], data_dir)
    }

    /// Like [`Perchd::start_with_config`], on the database at `url` (`[database] url`,
    /// e.g. a [`Postgres`]'s) rather than SQLite in the data dir.
    pub fn start_on_database(extra_toml: &str, url: &str) -> Result<Self> {
        let mut table = toml::Table::new();
        table.insert("url".into(), toml::Value::String(url.to_owned()));
        let mut db = toml::Table::new();
        db.insert("database".into(), toml::Value::Table(table));
        let extra = merge_toml(extra_toml, &toml::to_string(&db)?)?;
        Self::start_full(&extra, &[], None)
    }

    /// Points the next [`Perchd::start_again`] at the database at `url` (`[database]
    /// url` rewritten in its configuration), keeping the data dir and its key: an
    /// installation moved to another database (`perch-admin migrate`).
    pub fn set_database_url(&mut self, url: &str) -> Result<()> {
        let path = self.dir.path().join("perchd.toml");
        let mut table: toml::Table = fs::read_to_string(&path)?.parse()?;
        let db = table
            .entry("database")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(db) = db.as_table_mut() else {
            bail!("[database] in perchd.toml is not a table");
        };
        db.insert("url".into(), toml::Value::String(url.to_owned()));
        fs::write(&path, toml::to_string(&table)?).context("writing perchd.toml")?;
        Ok(())
    }

    /// Like [`Perchd::start_with_config`], with environment variables set (`Some`) or
    /// removed (`None`) for perchd and the CLI (e.g. no `XDG_RUNTIME_DIR`).
    pub fn start_with_env(extra_toml: &str, env: &[(&str, Option<&str>)]) -> Result<Self> {
        Self::start_full(extra_toml, env, None)
    }

    fn start_full(
        extra_toml: &str,
        env: &[(&str, Option<&str>)],
        data_dir: Option<&Path>,
    ) -> Result<Self> {
        let perchd = workspace_bin("perchd")?;
        let perch = workspace_bin("perch")?;
        let kill_cmd = find_program("kill", "kill", "procps")?;
        let bus = DbusDaemon::start()?;
        let dir = temp_dir("perch-e2e-perchd-")?;
        for sub in ["home", "config", "xdg-data", "state", "data"] {
            fs::create_dir_all(dir.path().join(sub))?;
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.path().join("run"))
            .context("creating XDG_RUNTIME_DIR")?;
        fs::set_permissions(dir.path().join("run"), fs::Permissions::from_mode(0o700))?;
        let config = merge_toml(BASE_CONFIG, extra_toml)?;
        let table: toml::Table = config.parse()?;
        let on_bus = table
            .get("bridge")
            .and_then(|b| b.get("bus"))
            .and_then(toml::Value::as_str)
            .is_none_or(|bus| bus == "session");
        let log_level = table
            .get("log")
            .and_then(|l| l.get("level"))
            .and_then(toml::Value::as_str)
            .unwrap_or("debug")
            .to_owned();
        fs::write(dir.path().join("perchd.toml"), config).context("writing perchd.toml")?;
        let data_dir = match data_dir {
            Some(d) => d.to_owned(),
            None => dir.path().join("data"),
        };
        let mut daemon = Self {
            child: None,
            bus,
            data_dir,
            dir,
            perchd,
            perch,
            kill_cmd,
            stderr_offset: 0,
            log_offset: 0,
            on_bus,
            log_level,
            env_overrides: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect(),
        };
        daemon.launch()?;
        Ok(daemon)
    }

    /// The private bus perchd is on.
    pub fn bus(&self) -> &DbusDaemon {
        &self.bus
    }

    /// A new zbus connection to perchd's private bus (needs a Tokio runtime).
    pub async fn bus_connection(&self) -> Result<zbus::Connection> {
        self.bus.connection().await
    }

    /// Whether `name` exists in perchd's data directory.
    pub fn data_dir_has(&self, name: &str) -> bool {
        self.data_dir.join(name).exists()
    }

    /// The daemon's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `$XDG_STATE_HOME/perch/perchd.log`.
    pub fn log_path(&self) -> PathBuf {
        self.dir
            .path()
            .join("state")
            .join("perch")
            .join("perchd.log")
    }

    /// The whole log file.
    pub fn log_text(&self) -> Result<String> {
        let path = self.log_path();
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The process id of the running daemon.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its data directory (the database and the key), for another perchd to share.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the daemon process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Sends SIGTERM and waits: the daemon must exit with status 0 within
    /// [`STOP_TIMEOUT`].
    pub fn stop(&mut self) -> Result<()> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("perchd is not running"))?;
        if let Some(status) = child.try_wait()? {
            bail!(
                "perchd had already exited ({status}) before stop()\n{}",
                self.diagnostics()
            );
        }
        let mut cmd = Command::new(&self.kill_cmd);
        cmd.args(["-TERM", &child.id().to_string()]);
        if let Err(e) = run_checked(cmd, Duration::from_secs(10)) {
            kill_and_reap(&mut child);
            return Err(e.context("sending SIGTERM to perchd"));
        }
        match wait_timeout(&mut child, STOP_TIMEOUT)? {
            Some(status) if status.success() => Ok(()),
            Some(status) => bail!(
                "perchd exited with {status} after SIGTERM (expected 0)\n{}",
                self.diagnostics()
            ),
            None => {
                kill_and_reap(&mut child);
                bail!(
                    "perchd did not exit within {STOP_TIMEOUT:?} of SIGTERM (killed)\n{}",
                    self.diagnostics()
                )
            }
        }
    }

    /// Kills the daemon with SIGKILL and waits for it.
    pub fn kill(&mut self) -> Result<()> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("perchd is not running"))?;
        child.kill().context("killing perchd")?;
        child.wait().context("waiting for the killed perchd")?;
        Ok(())
    }

    /// Starts the daemon again with the same directories, config and bus.
    pub fn start_again(&mut self) -> Result<()> {
        ensure!(self.child.is_none(), "perchd is still running");
        self.launch()
    }

    /// Runs `perch ARGS` with perchd's environment (private bus, XDG directories).
    pub fn cli(&self, args: &[&str]) -> Result<Output> {
        run_with_timeout(self.cli_command(args), CLI_TIMEOUT)
    }

    /// Starts `perch ARGS` in the background (for `monitor`), stdout piped, stderr to
    /// `perch.stderr` in the daemon's directory.
    pub fn cli_spawn(&self, args: &[&str]) -> Result<Child> {
        let stderr = append_file(&self.dir.path().join("perch.stderr"))?;
        self.cli_command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting `perch {}`", args.join(" ")))
    }

    /// Runs `perch ARGS`; a non-zero exit is an error with its stderr. Returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> Result<String> {
        let output = self.cli(args)?;
        ensure!(
            output.status.success(),
            "`perch {}` failed ({}): {}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end(),
            self.crash_note()
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `perch --json ARGS` and parses its stdout.
    pub fn cli_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let stdout = self.cli_ok(&all)?;
        serde_json::from_str(&stdout)
            .with_context(|| format!("`perch {}` printed invalid JSON: {stdout:?}", all.join(" ")))
    }

    /// Runs `perch ARGS`, which must fail the documented way: exit code 1 and one stderr
    /// line `perch: <error_name>: <message>`. Returns that stderr.
    pub fn cli_fails_with(&self, args: &[&str], error_name: &str) -> Result<String> {
        let output = self.cli(args)?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.code() == Some(1),
            "`perch {}`: expected exit code 1 with {error_name}, got {}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}{}",
            args.join(" "),
            output.status,
            self.crash_note()
        );
        ensure!(
            stderr.starts_with("perch: ")
                && stderr.contains(error_name)
                && stderr.trim_end().lines().count() == 1,
            "`perch {}`: expected one stderr line `perch: {error_name}: …`, got:\n{stderr}",
            args.join(" ")
        );
        Ok(stderr)
    }

    /// The `status --json` entry of one profile.
    pub fn status_of(&self, profile: &str) -> Result<serde_json::Value> {
        let status = self.cli_json(&["status"])?;
        let entries = status
            .as_array()
            .ok_or_else(|| anyhow!("`perch --json status` is not an array: {status}"))?;
        entries
            .iter()
            .find(|e| e["profile"] == profile)
            .cloned()
            .ok_or_else(|| {
                anyhow!("profile {profile} missing from `perch --json status`: {status}")
            })
    }

    /// The `state` of one profile in `status --json`.
    pub fn state_of(&self, profile: &str) -> Result<String> {
        let entry = self.status_of(profile)?;
        entry["state"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no string `state` in status entry {entry}"))
    }

    /// Waits until `status --json` shows `state` for `profile`.
    pub fn wait_for_state(&self, profile: &str, state: &str, timeout: Duration) -> Result<()> {
        let mut last = String::new();
        wait_until(timeout, || {
            last = self.status_of(profile)?.to_string();
            Ok(self.state_of(profile)? == state)
        })
        .with_context(|| {
            format!("profile {profile} did not reach state {state:?}; last status: {last}")
        })
    }

    /// Creates profile `name` for `user@localhost` on the harness Prosody, trusting its
    /// CA (`--server 127.0.0.1:<port> --ca-file <ca>`), plus `extra` arguments.
    pub fn create_profile(
        &self,
        prosody: &Prosody,
        name: &str,
        user: &str,
        password: &str,
        extra: &[&str],
    ) -> Result<()> {
        let jid = format!("{user}@{DOMAIN}");
        let server = prosody.server_arg();
        let ca = prosody.ca_file().display().to_string();
        let mut args = vec![
            "profile",
            "create",
            name,
            "--jid",
            &jid,
            "--xmpp-password",
            password,
            "--server",
            &server,
            "--ca-file",
            &ca,
        ];
        args.extend_from_slice(extra);
        self.cli_ok(&args)?;
        Ok(())
    }

    /// The tails of perchd's stderr and log since its latest start, for failure reports.
    pub fn diagnostics(&self) -> String {
        format!(
            "=== perchd ({}), bus {}\n--- perchd stderr since the latest start (tail):\n{}\n--- perchd.log since the latest start (tail):\n{}\n",
            self.dir.path().display(),
            self.bus.address(),
            tail_lines(
                &read_from(&self.dir.path().join("perchd.stderr"), self.stderr_offset),
                30
            ),
            tail_lines(&read_from(&self.log_path(), self.log_offset), 80),
        )
    }

    /// " (perchd has exited: …)" when the daemon died, for error messages.
    fn crash_note(&self) -> String {
        // try_wait needs &mut; /proc tells whether it is gone or a zombie.
        let gone = |pid: u32| match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => true,
        };
        match self.pid() {
            Some(pid) if gone(pid) => {
                format!(
                    "\n(perchd, pid {pid}, is no longer running)\n{}",
                    self.diagnostics()
                )
            }
            _ => String::new(),
        }
    }

    /// The environment perchd and the CLI run with (over an empty one).
    pub fn envs(&self) -> Vec<(String, String)> {
        let d = self.dir.path();
        let mut env = vec![
            ("DBUS_SESSION_BUS_ADDRESS", self.bus.address().to_owned()),
            ("HOME", d.join("home").display().to_string()),
            ("XDG_CONFIG_HOME", d.join("config").display().to_string()),
            ("XDG_DATA_HOME", d.join("xdg-data").display().to_string()),
            ("XDG_STATE_HOME", d.join("state").display().to_string()),
            ("XDG_RUNTIME_DIR", d.join("run").display().to_string()),
            ("RUST_BACKTRACE", "1".to_owned()),
            ("NO_COLOR", "1".to_owned()),
        ];
        // GLIBC_TUNABLES: to measure malloc settings (doc/reliability.rst, "Memory").
        for inherited in ["PATH", "TMPDIR", "GLIBC_TUNABLES"] {
            if let Ok(v) = std::env::var(inherited) {
                env.push((inherited, v));
            }
        }
        let mut env: Vec<(String, String)> =
            env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        for (key, value) in &self.env_overrides {
            env.retain(|(k, _)| k != key);
            if let Some(v) = value {
                env.push((key.clone(), v.clone()));
            }
        }
        env
    }

    fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.perch);
        // A clean environment: no PERCH_* or DBUS_* from the developer's session.
        cmd.env_clear()
            .envs(self.envs())
            .args(args)
            .current_dir(self.dir.path());
        cmd
    }

    fn launch(&mut self) -> Result<()> {
        let d = self.dir.path().to_owned();
        let stderr_path = d.join("perchd.stderr");
        self.stderr_offset = file_len(&stderr_path);
        self.log_offset = file_len(&self.log_path());
        let stdout = append_file(&d.join("perchd.stdout"))?;
        let stderr = append_file(&stderr_path)?;
        let child = Command::new(&self.perchd)
            .arg("--allow-root")
            .arg("--config")
            .arg(d.join("perchd.toml"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--log-level", &self.log_level])
            .env_clear()
            .envs(self.envs())
            .current_dir(&d)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", self.perchd.display()))?;
        self.child = Some(child);

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("just started");
            if let Some(status) = child.try_wait().context("waiting for perchd")? {
                self.child = None;
                bail!(
                    "perchd exited during startup ({status})\n{}",
                    self.diagnostics()
                );
            }
            // Ready: the CLI gets an answer, and (when perchd serves on the session bus)
            // it owns its name there, checked independently of the CLI.
            let output = run_with_timeout(self.cli_command(&["version"]), Duration::from_secs(10))?;
            let last_error = if !output.status.success() {
                String::from_utf8_lossy(&output.stderr)
                    .trim_end()
                    .to_owned()
            } else if self.on_bus && !self.bus.name_has_owner(BUS_NAME)? {
                format!("`perch version` succeeded but nobody owns {BUS_NAME} on the bus")
            } else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                if let Some(mut child) = self.child.take() {
                    kill_and_reap(&mut child);
                }
                bail!(
                    "perchd not ready: `perch version` still failing after {STARTUP_TIMEOUT:?} \
                     (last error: {last_error})\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Perchd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
    }
}

/// A short human summary of a JSON array of history messages, for failure messages.
pub fn summarize_history(history: &serde_json::Value) -> String {
    let mut s = String::new();
    if let Some(items) = history.as_array() {
        for m in items {
            let _ = writeln!(
                s,
                "  {} {} {:?}",
                m["direction"].as_str().unwrap_or("?"),
                m["peer"].as_str().unwrap_or("?"),
                m["body"].as_str().unwrap_or("?")
            );
        }
    } else {
        s = history.to_string();
    }
    s
}
