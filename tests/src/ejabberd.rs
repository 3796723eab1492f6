//! An ejabberd server as a test fixture, the second server next to [`crate::Prosody`]
//! (its pubsub service pages with RSM, Prosody's does not).
//!
//! [`Ejabberd::start`] starts the Debian package's ejabberd (23.01 when this was
//! written) in its own temporary directory: c2s on `127.0.0.1:<free port>` with StartTLS
//! **required** and a `localhost` certificate signed by the harness CA
//! ([`Ejabberd::ca_file`]; SAN `localhost` and `pubsub.localhost`), Mnesia storage in
//! the directory, the pubsub service `pubsub.localhost` (`flat` and `pep` plugins,
//! `max_items_node: 10000`, local users may create nodes), mod_caps, mod_disco,
//! mod_ping, mod_roster, mod_stream_mgmt, mod_carboncopy, mod_offline, mod_mam (every
//! message archived), mod_register (loopback only) and mod_http_upload (XEP-0363:
//! `upload.localhost`, its HTTPS listener on `127.0.0.1:<free port>` with the same
//! certificate, URLs `https://localhost:<port>/upload/…`, limit [`crate::UPLOAD_LIMIT`]).
//! Nothing else listens: no s2s, plain http, stun or mqtt listener, and outgoing s2s is
//! denied.
//!
//! Costs, measured on the 2-core CI machine: [`Ejabberd::start`] about 1.8 s (about
//! 1.0 s until c2s accepts connections: Erlang VM boot, Mnesia creating its tables;
//! then about 0.75 s to register alice and bob in parallel); two instances started at
//! once about 2.6 s each. [`Ejabberd::kill`] and `Drop` about 40 ms,
//! [`Ejabberd::stop`] about 1 s, [`Ejabberd::start_again`] about 1 s.
//!
//! # Why it is done this way (pitfalls)
//!
//! - **Our own `ejabberdctl.cfg`.** `ejabberdctl --config-dir DIR` sources
//!   `DIR/ejabberdctl.cfg`, and whatever `EJABBERD_CONFIG_PATH` says there wins over
//!   `--config`: a copy of `/etc/ejabberd/ejabberdctl.cfg` loads the *system*
//!   `ejabberd.yml`, which listens on all interfaces (5222, 5269, 5280, 5443, 1883,
//!   3478). So the harness writes the whole file itself instead of copying and editing
//!   the system one (nothing from the machine's configuration leaks in).
//! - **Root and `su`.** Run as root, `ejabberdctl` re-executes every command through
//!   `su ejabberd` (the user is hard-coded in the script), so the whole directory
//!   (including the 0600 key) is chowned to `ejabberd`. The tests must therefore run as
//!   root or as the `ejabberd` user; anything else is a clear error (ejabberdctl itself
//!   refuses with exit code 7). The temporary directory must be reachable by that user
//!   (`TMPDIR` must not be a root-only directory).
//! - **No epmd at all.** By default an Erlang node registers with epmd, and starts one
//!   when none runs; that epmd daemonises, listens on all interfaces unless
//!   `ERL_EPMD_ADDRESS` says otherwise, and outlives the test; and ejabberdctl's start
//!   check may `epmd -kill` a shared epmd or refuse to start while any other `beam`
//!   runs. Instead the harness sets `ERL_DIST_PORT` (honoured by the 23.01 ejabberdctl,
//!   OTP ≥ 23): the node listens for Erlang distribution on its own free loopback port,
//!   no epmd is started or contacted, ejabberdctl skips those checks, and its clients
//!   connect to that port directly (`-erl_epmd_port`, `-dist_listen false`).
//!   `ERL_EPMD_ADDRESS=127.0.0.1` is still set for every process spawned, in case
//!   anything starts an epmd after all.
//! - **Distribution on loopback via `vm.args`,** not `INET_DIST_INTERFACE`: for the
//!   latter, ejabberdctl boots an extra Erlang VM on *every* call just to parse the
//!   address. `DIR/vm.args` (read by the server and by every ctl client) carries
//!   `-kernel inet_dist_use_interface {127,0,0,1}` and a random per-instance
//!   `-setcookie`, so no `~ejabberd/.erlang.cookie` is created (two nodes booting at once
//!   could race on creating it).
//! - **Unique node names.** Each instance is `perch_e2e_<pid>_<n>@localhost` with its own
//!   spool (Mnesia) and log directories, so instances in parallel tests never meet; the
//!   name stays the same across [`Ejabberd::start_again`] (Mnesia's schema is tied to it).
//! - **Killing the whole tree.** The process chain is `ejabberdctl` (bash, our child) →
//!   `su` → `sh` → `beam.smp` → `erl_child_setup` → port programs; `su` puts its child
//!   into a new session, so neither killing our child nor its process group reaches
//!   the VM. [`Ejabberd::kill`] and `Drop` SIGKILL `beam.smp` first (its port programs
//!   exit when their pipes close, and `sh`, `su` and bash then exit on their own and
//!   reap each other), then anything of the instance still alive: descendants of our
//!   child and every process with the node name on its command line. Killing the
//!   parents first would orphan the VM. [`Ejabberd::stop`] sends SIGTERM to
//!   `beam.smp` instead, which the VM turns into a clean `init:stop()`.
//! - **SIGKILL loses recent writes.** Accounts, rosters and pubsub items live in
//!   Mnesia `disc_only_copies` tables (dets files), whose write cache is flushed after
//!   up to 3 s: a user registered just before [`Ejabberd::kill`] is gone after
//!   [`Ejabberd::start_again`] (measured). Tests that need the data after a restart use
//!   [`Ejabberd::stop`]. For the same reason a launch that failed on a busy port is left
//!   to halt by itself before its leftovers are killed (the next attempt reuses the
//!   Mnesia directory).
//! - **Readiness** is the log line `is started in the node` plus
//!   `Start accepting TCP connections at 127.0.0.1:<port>` plus a TCP connect; a bind
//!   failure (`eaddrinuse` for the c2s or the distribution port, picked free but
//!   possibly taken since) makes ejabberd exit, and the harness retries with new ports.
//! - **Registration** goes through `ejabberdctl register`, which needs the server
//!   running (Mnesia lives in the VM). Each call boots a small Erlang VM (and `su`):
//!   about 0.3–0.5 s. The start users are registered in parallel threads (two users:
//!   about 0.75 s in all). ejabberdctl names its client node from only 3 random hex
//!   digits, so two parallel calls could collide; a failed registration is retried once.
//! - **Logs** go to `log/ejabberd.log` (level info) and `log/error.log`; the server runs
//!   as `ejabberdctl foreground-quiet` so that the console output (`ejabberd.out`) only
//!   has critical messages and what the VM prints itself (e.g. a busy distribution
//!   port), not a second copy of the log.
//! - The certificate files are listed in `certfiles` and the harness CA is the global
//!   `ca_file`, which silences ejabberd's "certificate is signed by unknown CA" warning.

use std::collections::HashSet;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tempfile::TempDir;

use crate::{
    ALICE_PW, BOB_PW, DOMAIN, LaunchError, POLL, STARTUP_TIMEOUT, append_file, file_len,
    find_program, free_port, make_certificates, read_from, run_checked, run_with_timeout,
    tail_file, tail_lines, temp_dir, wait_timeout,
};

/// How long one `ejabberdctl` command (a small Erlang VM talking to the node) may take.
const CTL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the process tree may take to go away after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// The system user `ejabberdctl` switches to when run as root.
const EJABBERD_USER: &str = "ejabberd";
/// The environment every spawned ejabberdctl gets (after `env_clear`).
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

static INSTANCES: AtomicU32 = AtomicU32::new(0);

/// An ejabberd server on `127.0.0.1:<port()>` for the domain `localhost`, StartTLS
/// required, its certificate signed by a throwaway CA ([`Ejabberd::ca_file`]), with the
/// pubsub service `pubsub.localhost`. See the [module documentation](self).
pub struct Ejabberd {
    dir: TempDir,
    port: u16,
    /// The HTTPS port of the upload service (mod_http_upload).
    https_port: u16,
    /// The upload service's size limit, in bytes.
    upload_limit: u64,
    /// The Erlang distribution port (loopback), used by `ejabberdctl` instead of epmd.
    dist_port: u16,
    node: String,
    cookie: String,
    ctl: PathBuf,
    kill_cmd: PathBuf,
    /// The `ejabberdctl foreground-quiet` launcher (bash), parent of su → sh → beam.smp.
    child: Option<Child>,
    /// The VM's pid, once seen.
    beam: Option<u32>,
    /// Offsets into the log and the launcher output at the latest start.
    log_offset: u64,
    out_offset: u64,
}

impl Ejabberd {
    /// Starts a server with `alice` ([`ALICE_PW`]) and `bob` ([`BOB_PW`]) registered.
    pub fn start() -> Result<Self> {
        Self::start_with_users(&[("alice", ALICE_PW), ("bob", BOB_PW)])
    }

    /// Starts a server with these `(user, password)` accounts registered (in parallel,
    /// one `ejabberdctl register` each, once the server runs).
    pub fn start_with_users(users: &[(&str, &str)]) -> Result<Self> {
        Self::start_with_upload_limit(users, crate::UPLOAD_LIMIT)
    }

    /// As [`Ejabberd::start_with_users`], the upload service refusing files over
    /// `limit` bytes (the benches send larger files than the tests).
    pub fn start_with_upload_limit(users: &[(&str, &str)], limit: u64) -> Result<Self> {
        let ctl = find_program("ejabberdctl", "ejabberd (ejabberdctl)", "ejabberd")?;
        let openssl = find_program("openssl", "openssl", "openssl")?;
        let kill_cmd = find_program("kill", "kill", "procps")?;
        let owner = process_owner()?;

        let dir = temp_dir("perch-e2e-ejabberd-")?;
        make_certificates(&openssl, dir.path())?;
        for sub in ["db", "log", "modules.d", "modules", "upload"] {
            fs::create_dir_all(dir.path().join(sub))?;
        }
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let mut server = Self {
            node: format!("perch_e2e_{}_{n}@localhost", std::process::id()),
            cookie: random_cookie(dir.path()),
            dir,
            port: 0,
            https_port: 0,
            upload_limit: limit,
            dist_port: 0,
            ctl,
            kill_cmd,
            child: None,
            beam: None,
            log_offset: 0,
            out_offset: 0,
        };
        // Another process may grab a port between free_port() and ejabberd's bind:
        // ejabberd then exits (eaddrinuse), and we try other ports.
        let mut attempts = 0;
        loop {
            attempts += 1;
            server.port = free_port()?;
            server.dist_port = loop {
                let p = free_port()?;
                if p != server.port {
                    break p;
                }
            };
            server.https_port = loop {
                let p = free_port()?;
                if p != server.port && p != server.dist_port {
                    break p;
                }
            };
            server.write_config()?;
            if let Some((uid, gid)) = owner {
                chown_tree(server.dir.path(), uid, gid)?;
            }
            match server.launch() {
                Ok(()) => break,
                Err(LaunchError::PortInUse) if attempts < 5 => continue,
                Err(LaunchError::PortInUse) => {
                    bail!("ejabberd: could not get free ports after {attempts} attempts")
                }
                Err(LaunchError::Other(e)) => return Err(e),
            }
        }
        server.register_all(users)?;
        Ok(server)
    }

    /// The c2s (StartTLS) port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTPS port of the upload service (`upload.localhost`, XEP-0363).
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

    /// The server's own temporary directory (config, Mnesia in `db/`, logs in `log/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// ejabberd's main log file (level info).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log").join("ejabberd.log")
    }

    /// The Erlang node name of this instance (`perch_e2e_<pid>_<n>@localhost`); every
    /// process of the instance has it on its command line (see [`node_processes`]).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The pid of the Erlang VM (`beam.smp`) while the server runs.
    pub fn beam_pid(&self) -> Option<u32> {
        self.beam.filter(|&pid| is_beam_of(pid, &self.node))
    }

    /// Whether the server (its launcher) is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Runs `ejabberdctl ARGS` against this instance (a non-zero exit is an error with
    /// the output) and returns its stdout. Each call boots a small Erlang VM (and runs
    /// `su`): about 0.3–0.5 s.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.ctl_command();
        cmd.args(args);
        let output = run_checked(cmd, CTL_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Registers an account `user@localhost`. Unlike Prosody's, this needs the server
    /// running (accounts live in Mnesia inside the VM); about 0.3–0.5 s.
    pub fn register(&self, user: &str, password: &str) -> Result<()> {
        self.ctl(&["register", user, DOMAIN, password])
            .with_context(|| format!("registering {user}@{DOMAIN} in ejabberd"))?;
        Ok(())
    }

    /// Kills the server (the whole process tree, `beam.smp` first) with SIGKILL and
    /// waits until it is gone: a crash. Like a real crash of ejabberd it **loses the
    /// writes of the last ~3 s** (accounts, rosters, pubsub items live in Mnesia
    /// `disc_only_copies` tables, i.e. dets files, whose write cache is flushed after up
    /// to 3 s). Use [`Ejabberd::stop`] when the data must survive.
    pub fn kill(&mut self) -> Result<()> {
        ensure!(self.child.is_some(), "ejabberd is not running");
        self.kill_tree()
    }

    /// Stops the server gracefully (SIGTERM to the VM, which runs `init:stop()`: Mnesia
    /// closes its files, so nothing is lost) and waits for it, at most
    /// [`STOP_TIMEOUT`](crate::STOP_TIMEOUT); then kills what is left.
    pub fn stop(&mut self) -> Result<()> {
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| anyhow!("ejabberd is not running"))?;
        if child.try_wait()?.is_some() {
            let _ = self.kill_tree();
            bail!(
                "ejabberd had already exited before stop()\n{}",
                self.diagnostics()
            );
        }
        let beam = self
            .beam_pid()
            .or_else(|| self.find_beam())
            .ok_or_else(|| anyhow!("no beam.smp of {} found\n{}", self.node, self.diagnostics()))?;
        self.signal("-TERM", &[beam]);
        let child = self.child.as_mut().expect("checked above");
        let exited = wait_timeout(child, crate::STOP_TIMEOUT)?;
        self.kill_tree()?;
        ensure!(
            exited.is_some(),
            "ejabberd did not stop within {:?} of SIGTERM (killed)\n{}",
            crate::STOP_TIMEOUT,
            self.diagnostics()
        );
        Ok(())
    }

    /// Freezes the server (SIGSTOP to its VM): it holds its connections but answers
    /// nothing until [`Ejabberd::thaw`]. A test uses it to stop a client's exchange at
    /// a known point.
    pub fn freeze(&self) -> Result<()> {
        let beam = self
            .beam_pid()
            .or_else(|| self.find_beam())
            .ok_or_else(|| anyhow!("no beam.smp of {} found", self.node))?;
        self.signal("-STOP", &[beam]);
        Ok(())
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) -> Result<()> {
        let beam = self
            .beam_pid()
            .or_else(|| self.find_beam())
            .ok_or_else(|| anyhow!("no beam.smp of {} found", self.node))?;
        self.signal("-CONT", &[beam]);
        Ok(())
    }

    /// Starts the server again with the same node name, ports and data (Mnesia repairs
    /// its tables after a kill).
    pub fn start_again(&mut self) -> Result<()> {
        ensure!(self.child.is_none(), "ejabberd is still running");
        match self.launch() {
            Ok(()) => Ok(()),
            Err(LaunchError::PortInUse) => bail!(
                "ejabberd: port {} or {} was taken by another process while ejabberd was down\n{}",
                self.port,
                self.dist_port,
                self.diagnostics()
            ),
            Err(LaunchError::Other(e)) => Err(e),
        }
    }

    /// The tails of ejabberd's logs and of its launcher's output, for failure reports.
    pub fn diagnostics(&self) -> String {
        let d = self.dir.path();
        format!(
            "=== ejabberd ({}), node {}, port {}, distribution port {}\n\
             --- log/ejabberd.log since the latest start (tail):\n{}\n\
             --- log/error.log (tail):\n{}\n\
             --- ejabberdctl foreground-quiet stdout/stderr since the latest start (tail):\n{}\n",
            d.display(),
            self.node,
            self.port,
            self.dist_port,
            tail_lines(&read_from(&self.log_path(), self.log_offset), 60),
            tail_file(&d.join("log").join("error.log"), 20),
            tail_lines(&read_from(&d.join("ejabberd.out"), self.out_offset), 20),
        )
    }

    fn ctl_command(&self) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new(&self.ctl);
        cmd.env_clear()
            .env("PATH", PATH)
            .env("HOME", d)
            .env("LANG", "C.UTF-8")
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .arg("--config-dir")
            .arg(d)
            .arg("--spool")
            .arg(d.join("db"))
            .arg("--logs")
            .arg(d.join("log"))
            .current_dir(d);
        cmd
    }

    fn register_all(&self, users: &[(&str, &str)]) -> Result<()> {
        let register = |user: &str, password: &str| -> Result<()> {
            match self.register(user, password) {
                // A clash of ejabberdctl's random client node names is the likely cause.
                Err(e) if !format!("{e:#}").contains("already registered") => self
                    .register(user, password)
                    .with_context(|| format!("(retry after: {e:#})")),
                other => other,
            }
        };
        std::thread::scope(|scope| {
            let handles: Vec<_> = users
                .iter()
                .map(|&(user, password)| scope.spawn(move || register(user, password)))
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .map_err(|_| anyhow!("a register thread panicked"))?
            })
        })
        .map_err(|e| anyhow!("{e:#}\n{}", self.diagnostics()))
    }

    /// `ejabberd.yml`: c2s, the upload service's HTTPS listener, the modules.
    fn ejabberd_yml(&self) -> String {
        let dd = self.dir.path().display();
        let port = self.port;
        let https = self.https_port;
        let limit = self.upload_limit;
        format!(
            r#"# Generated by the Perch e2e harness (see tests/src/ejabberd.rs).
hosts:
  - localhost
loglevel: info
certfiles:
  - "{dd}/certs/localhost.crt"
  - "{dd}/certs/localhost.key"
ca_file: "{dd}/ca/ca.crt"
acme:
  auto: false
s2s_access: none
listen:
  -
    port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: true
    starttls_required: true
    max_stanza_size: 1048576
    shaper: none
    access: c2s
  -
    port: {https}
    ip: "127.0.0.1"
    module: ejabberd_http
    tls: true
    request_handlers:
      /upload: mod_http_upload
acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  pubsub_createnode:
    allow: local
  register:
    allow: all
shaper_rules:
  c2s_shaper: none
auth_method: internal
auth_password_format: scram
default_db: mnesia
modules:
  mod_caps: {{}}
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_stream_mgmt: {{}}
  mod_carboncopy: {{}}
  mod_offline: {{}}
  mod_mam:
    default: always
  mod_register:
    ip_access: loopback
  mod_http_upload:
    host: "upload.localhost"
    put_url: "https://localhost:{https}/upload"
    docroot: "{dd}/upload"
    max_size: {limit}
  mod_pubsub:
    host: "pubsub.localhost"
    access_createnode: pubsub_createnode
    ignore_pep_from_offline: false
    last_item_cache: false
    max_items_node: 10000
    plugins:
      - "flat"
      - "pep"
"#
        )
    }

    fn write_config(&self) -> Result<()> {
        let d = self.dir.path();
        let dd = d.display();
        fs::write(d.join("ejabberd.yml"), self.ejabberd_yml()).context("writing ejabberd.yml")?;
        // Sourced by ejabberdctl (a shell script) for every command, server and clients.
        let ctl_cfg = format!(
            "# Generated by the Perch e2e harness (see tests/src/ejabberd.rs).\n\
             ERLANG_NODE={node}\n\
             EJABBERD_CONFIG_PATH={dd}/ejabberd.yml\n\
             EJABBERD_PID_PATH={dd}/ejabberd.pid\n\
             CONTRIB_MODULES_PATH={dd}/modules\n\
             CONTRIB_MODULES_CONF_DIR={dd}/modules.d\n\
             ERL_DIST_PORT={dist}\n\
             ERL_EPMD_ADDRESS=127.0.0.1\n\
             INET_DIST_INTERFACE=\n\
             FIREWALL_WINDOW=\n\
             ERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0\"\n\
             EJABBERD_BYPASS_WARNINGS=true\n",
            node = self.node,
            dist = self.dist_port,
        );
        fs::write(d.join("ejabberdctl.cfg"), ctl_cfg).context("writing ejabberdctl.cfg")?;
        let vm_args = format!(
            "-setcookie {}\n-kernel inet_dist_use_interface {{127,0,0,1}}\n",
            self.cookie
        );
        fs::write(d.join("vm.args"), vm_args).context("writing vm.args")?;
        fs::write(
            d.join("inetrc"),
            "{lookup,[\"file\",\"native\"]}.\n{host,{127,0,0,1}, [\"localhost\"]}.\n",
        )
        .context("writing inetrc")?;
        Ok(())
    }

    fn launch(&mut self) -> Result<(), LaunchError> {
        let d = self.dir.path().to_owned();
        let log = self.log_path();
        let out_path = d.join("ejabberd.out");
        self.log_offset = file_len(&log);
        self.out_offset = file_len(&out_path);
        self.beam = None;
        let _ = fs::remove_file(d.join("ejabberd.pid"));
        let out = append_file(&out_path)?;
        let err = out.try_clone().context("duplicating a file handle")?;
        let child = self
            .ctl_command()
            // Attached, logging to the log files only (critical messages and the VM's
            // own errors still reach ejabberd.out).
            .arg("foreground-quiet")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {} foreground-quiet", self.ctl.display()))?;
        self.child = Some(child);

        // The log is this instance's own; the node name may be printed quoted.
        let started = "is started in the node";
        let accepting = format!(
            "Start accepting TCP connections at 127.0.0.1:{} for ejabberd_c2s",
            self.port
        );
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let port_in_use =
            |text: &str| text.contains("eaddrinuse") || text.contains("address already in use");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("just started");
            let exited = child.try_wait().context("waiting for ejabberdctl")?;
            let new_log = read_from(&log, self.log_offset);
            let new_out = read_from(&out_path, self.out_offset);
            if port_in_use(&new_log) || port_in_use(&new_out) {
                // ejabberd halts by itself; let Mnesia close its files before anything
                // is killed (the data directory is reused by the next attempt).
                if exited.is_none() {
                    let child = self.child.as_mut().expect("just started");
                    let _ = wait_timeout(child, KILL_TIMEOUT);
                }
                let _ = self.kill_tree();
                return Err(LaunchError::PortInUse);
            }
            if let Some(status) = exited {
                // The VM may outlive the launcher only if something went badly wrong.
                let _ = self.kill_tree();
                return Err(anyhow!(
                    "ejabberd exited during startup ({status})\n{}",
                    self.diagnostics()
                )
                .into());
            }
            if self.beam.is_none() {
                self.beam = self.find_beam();
            }
            if new_log.contains(started)
                && new_log.contains(&accepting)
                && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            {
                if self.beam.is_none() {
                    self.beam = self.find_beam();
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.kill_tree();
                return Err(anyhow!(
                    "ejabberd did not accept connections on port {} within {STARTUP_TIMEOUT:?}\n{}",
                    self.port,
                    self.diagnostics()
                )
                .into());
            }
            std::thread::sleep(POLL);
        }
    }

    fn find_beam(&self) -> Option<u32> {
        let procs = process_table();
        let root = self.child.as_ref()?.id();
        descendants(&procs, root)
            .into_iter()
            .find(|&pid| is_beam_of(pid, &self.node))
    }

    /// SIGKILLs `beam.smp` (so that su/sh exit normally and reap it), waits for the
    /// launcher, then kills whatever of the instance is left.
    fn kill_tree(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let procs = process_table();
        let mut all: Vec<u32> = descendants(&procs, child.id());
        for pid in node_processes(&self.node) {
            if !all.contains(&pid) {
                all.push(pid);
            }
        }
        let beams: Vec<u32> = all
            .iter()
            .copied()
            .filter(|&pid| is_beam_of(pid, &self.node))
            .collect();
        self.signal_kill(if beams.is_empty() { &all } else { &beams });
        if wait_timeout(&mut child, KILL_TIMEOUT)?.is_none() {
            let procs = process_table();
            let mut rest = descendants(&procs, child.id());
            rest.extend(node_processes(&self.node));
            self.signal_kill(&rest);
            let _ = child.kill();
            let _ = child.wait();
        }
        self.beam = None;
        // Whatever still carries the node name (e.g. an orphaned ctl client) goes too.
        let deadline = Instant::now() + KILL_TIMEOUT;
        loop {
            let left = node_processes(&self.node);
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "ejabberd processes {left:?} of {} survived SIGKILL",
                    self.node
                );
            }
            self.signal_kill(&left);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal_kill(&self, pids: &[u32]) {
        self.signal("-KILL", pids);
    }

    fn signal(&self, signal: &str, pids: &[u32]) {
        if pids.is_empty() {
            return;
        }
        // Errors are expected for processes that are already gone.
        let mut cmd = Command::new(&self.kill_cmd);
        cmd.arg(signal)
            .args(pids.iter().map(u32::to_string))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = run_with_timeout(cmd, Duration::from_secs(5));
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        let result = self.kill_tree();
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        if let Err(e) = result {
            eprintln!("[perch-e2e] tearing down ejabberd: {e:#}");
        }
    }
}

/// The pids of the running (non-zombie) processes that have `node` as one argument
/// of their command line: an [`Ejabberd`] instance's `beam.smp` and its `su`/`sh`
/// parents, and its `ejabberdctl` clients. Empty once the instance is gone.
pub fn node_processes(node: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && has_arg(pid, node))
        .collect()
}

fn has_arg(pid: u32, arg: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
}

fn is_beam_of(pid: u32, node: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "beam.smp")
        && has_arg(pid, node)
}

/// `(pid, ppid)` of every process.
fn process_table() -> Vec<(u32, u32)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid …"; comm may contain spaces and parentheses.
            let (_, rest) = stat.rsplit_once(')')?;
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// All descendants of `root` (not `root` itself), parents before children.
fn descendants(procs: &[(u32, u32)], root: u32) -> Vec<u32> {
    let mut found = vec![root];
    let mut seen: HashSet<u32> = HashSet::from([root]);
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for &(pid, ppid) in procs {
            if ppid == parent && seen.insert(pid) {
                found.push(pid);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// `Some((uid, gid))` of the `ejabberd` user when we run as root (ejabberdctl will `su`
/// to it, so it must own the directory); `None` when we run as that user.
fn process_owner() -> Result<Option<(u32, u32)>> {
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    let (uid, gid) = passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != EJABBERD_USER {
                return None;
            }
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((uid, gid))
        })
        .ok_or_else(|| {
            anyhow!(
                "no user {EJABBERD_USER} in /etc/passwd: install ejabberd with \
                 `apt-get install -y ejabberd`"
            )
        })?;
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1)?.parse().ok())
        .ok_or_else(|| anyhow!("no Uid line in /proc/self/status"))?;
    match euid {
        0 => Ok(Some((uid, gid))),
        e if e == uid => Ok(None),
        e => bail!(
            "ejabberdctl only runs as root or as user {EJABBERD_USER}, and these tests run \
             as uid {e}: run them as root"
        ),
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", path.display()))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// A per-instance Erlang cookie (only root and the ejabberd user can read `vm.args`).
fn random_cookie(dir: &Path) -> String {
    let mut cookie = String::new();
    for salt in 0..2u8 {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write(dir.as_os_str().as_encoded_bytes());
        h.write_u8(salt);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        cookie.push_str(&format!("{:016x}", h.finish()));
    }
    cookie
}
