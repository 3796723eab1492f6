//! Libervia's own frontends (Debian's `libervia-cli` and `libervia-tui` 0.9) in the e2e
//! tests, against two backends on the harness's Prosody:
//!
//! - [`LiberviaBackend`]: Debian's `libervia-backend`, the reference, on its own private
//!   bus with `HOME` in a temporary directory;
//! - perchd serving its Libervia bridge (`[libervia]` in its config) on its private bus
//!   ([`perchd_with_libervia`]).
//!
//! A [`Frontend`] is how the frontends reach one backend (bus address, `HOME`); the same
//! commands go through both, and [`normalise`] removes what legitimately differs from
//! one run to the next (ids, timestamps, resources, ports, round-trip times) so the
//! outputs can be compared as text.
//!
//! Why a differential test and not golden files: the reference is the installed Debian
//! package itself, so a comparison states exactly where Perch and Libervia agree today,
//! and a deliberate difference has to be spelled out in the test.
//!
//! The frontends need Debian's own `python3` (`/usr/bin/python3`), whose packages they
//! import; the first `python3` on `PATH` may be another one, so every frontend and the
//! reference backend run with `PATH=/usr/bin:/bin`. A missing package is a failure naming
//! the `apt-get` line, never a skip.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use regex::Regex;
use tempfile::TempDir;

use crate::{
    DbusDaemon, Perchd, Prosody, STARTUP_TIMEOUT, append_file, kill_and_reap, tail_file, temp_dir,
};

/// The well-known name both backends serve the Libervia bridge under.
pub const LIBERVIA_BUS_NAME: &str = "org.libervia.Libervia";

/// The Debian packages these tests need, as one `apt-get install` argument list.
pub const PACKAGES: &str = "libervia-backend libervia-cli libervia-tui tmux python3-dbus";

/// How long one `libervia-cli` run may take (its own D-Bus timeout is 120 s; nothing in
/// these tests should come near it).
pub const LIBERVIA_CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The perchd configuration that serves the Libervia bridge on perchd's private bus.
pub const PERCHD_LIBERVIA_CONFIG: &str = "\
[libervia]
enabled = true
";

/// A line Debian's libervia-cli prints on stderr at every start (its optional Jinja2
/// output plugin does not load with Debian's Jinja2); not part of any command's output.
const CLI_NOISE: &str = "Can't import sat_frontends.jp.output_template plugin";

/// Debian's `/usr/bin/python3`, which the Libervia packages are installed for.
pub fn debian_python() -> Result<PathBuf> {
    let path = PathBuf::from("/usr/bin/python3");
    ensure!(
        path.is_file(),
        "/usr/bin/python3 not found: install Debian's python3 and the Libervia packages \
         with `apt-get install -y {PACKAGES}`"
    );
    Ok(path)
}

/// A file a Debian package installs; missing → an error naming the install line.
fn packaged(path: &str, package: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    ensure!(
        p.is_file(),
        "{path} not found: install {package} with `apt-get install -y {PACKAGES}`"
    );
    Ok(p)
}

// ---------------------------------------------------------------------------------------
// Output of one frontend run, and its normalisation
// ---------------------------------------------------------------------------------------

/// What one `libervia-cli` run printed, with the start-up noise line removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliOut {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOut {
    /// The same output with [`normalise`] applied to both streams.
    pub fn normalised(&self) -> Self {
        Self {
            code: self.code,
            stdout: normalise(&self.stdout),
            stderr: normalise(&self.stderr),
        }
    }

    /// Exit code, stdout and stderr, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout:\n{}--- stderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

fn rules() -> &'static [(Regex, &'static str)] {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            // UUIDs (message uids, action ids, subscription ids).
            (
                r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                "<uuid>",
            ),
            // Resources of full JIDs (`libervia.<shortuuid>`, perchd's own).
            (r"(@[A-Za-z0-9.\-]+)/[A-Za-z0-9._\-]+", "$1/<resource>"),
            // Loopback host:port pairs (free ports picked at start).
            (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
            // ISO 8601 date-times.
            (
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?",
                "<datetime>",
            ),
            // Epoch seconds (integer or float) of this century.
            (r"\b1[0-9]{9}(\.\d+)?\b", "<epoch>"),
            // Round-trip times (`PONG (0.0120 s)`).
            (r"\d+\.\d+(e-?\d+)? ?s\b", "<seconds>"),
            // Blog item ids made from the title plus a random suffix (`first-post-bL1B`;
            // 0.9's is `token_urlsafe(3)`, which may hold `-` and `_`: `first-post-v_8h`).
            (
                r"\b([a-z0-9]+(?:-[a-z0-9]+)*)-[A-Za-z0-9_-]{4}([^A-Za-z0-9_-]|$)",
                "$1-<suffix>$2",
            ),
        ]
        .into_iter()
        .map(|(re, with)| (Regex::new(re).expect("a valid normalisation regex"), with))
        .collect()
    })
}

/// Replaces what differs between runs by placeholders: UUIDs, the resource of full JIDs,
/// loopback ports, date-times, epoch timestamps, round-trip times and the random suffix
/// of blog item ids; trailing spaces are trimmed from each line. Orders that carry no
/// meaning are fixed too: the keys of a JSON output (the whole text parses as JSON) are
/// sorted, and, as Prosody leaves them to chance (Lua tables), so are the attributes of
/// XML start tags and the data rows of each table the CLI draws (runs of lines `│…`).
pub fn normalise(text: &str) -> String {
    let mut out = sort_xml_attributes(&sort_json_keys(text));
    for (re, with) in rules() {
        out = re.replace_all(&out, *with).into_owned();
    }
    let mut lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        while i < lines.len() && lines[i].starts_with('│') {
            i += 1;
        }
        lines[start..i].sort_unstable();
        i = i.max(start + 1);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut joined = lines.join("\n");
    if !joined.is_empty() {
        joined.push('\n');
    }
    joined
}

/// When the whole text is JSON, the same JSON pretty-printed with its object keys sorted
/// (indented by two spaces); otherwise the text unchanged.
fn sort_json_keys(text: &str) -> String {
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(
                    entries.into_iter().map(|(k, v)| (k, sorted(v))).collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sorted).collect())
            }
            other => other,
        }
    }
    let trimmed = text.trim();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return text.to_owned();
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed) else {
        return text.to_owned();
    };
    serde_json::to_string_pretty(&sorted(value)).map_or_else(|_| text.to_owned(), |s| s + "\n")
}

/// Sorts the attributes of every XML start tag (`<a z="1" b="2">` → `<a b="2" z="1">`).
fn sort_xml_attributes(text: &str) -> String {
    static TAG: OnceLock<(Regex, Regex)> = OnceLock::new();
    let (tag, attr) = TAG.get_or_init(|| {
        (
            Regex::new(r#"<([A-Za-z_][\w:.\-]*)((?:\s+[\w:.\-]+=(?:"[^"]*"|'[^']*'))+)(\s*/?)>"#)
                .expect("a valid tag regex"),
            Regex::new(r#"[\w:.\-]+=(?:"[^"]*"|'[^']*')"#).expect("a valid attribute regex"),
        )
    });
    tag.replace_all(text, |c: &regex::Captures<'_>| {
        let mut attrs: Vec<&str> = attr.find_iter(&c[2]).map(|m| m.as_str()).collect();
        attrs.sort_unstable();
        format!("<{} {}{}>", &c[1], attrs.join(" "), &c[3])
    })
    .into_owned()
}

fn strip_noise(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.contains(CLI_NOISE))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs `cmd` with `input` on its stdin, capturing stdout and stderr; killed (and an
/// error) when still running after `timeout`.
fn run_with_input(mut cmd: Command, input: &str, timeout: Duration) -> Result<CliOut> {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
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
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            kill_and_reap(&mut child);
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
    let _ = writer.join();
    Ok(CliOut {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: strip_noise(&String::from_utf8_lossy(
            &err_reader.join().unwrap_or_default(),
        )),
    })
}

// ---------------------------------------------------------------------------------------
// Frontend: how Libervia's frontends reach one backend
// ---------------------------------------------------------------------------------------

/// The environment Libervia's frontends run with against one backend: its private bus
/// and a `HOME` holding `libervia.conf`.
#[derive(Debug, Clone)]
pub struct Frontend {
    /// "libervia" or "perchd", for messages.
    pub name: &'static str,
    bus_address: String,
    home: PathBuf,
    python: PathBuf,
    cli: PathBuf,
    /// `{name}` → value in the arguments of differential steps, and back in outputs.
    vars: Vec<(String, String)>,
}

impl Frontend {
    fn new(name: &'static str, bus_address: &str, home: &Path) -> Result<Self> {
        let python = debian_python()?;
        let cli = packaged("/usr/bin/libervia-cli", "libervia-cli")?;
        write_libervia_conf(home)?;
        Ok(Self {
            name,
            bus_address: bus_address.to_owned(),
            home: home.to_owned(),
            python,
            cli,
            vars: Vec::new(),
        })
    }

    /// Sets a variable of differential steps: `{name}` in a step's arguments becomes
    /// `value`, and `value` in its output becomes `{name}` (e.g. this side's Prosody port).
    pub fn with_var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.to_owned(), value.to_owned()));
        self
    }

    fn substitute(&self, arg: &str) -> String {
        let mut arg = arg.to_owned();
        for (name, value) in &self.vars {
            arg = arg.replace(&format!("{{{name}}}"), value);
        }
        arg
    }

    fn unsubstitute(&self, out: CliOut) -> CliOut {
        let back = |text: String| {
            let mut text = text;
            for (name, value) in &self.vars {
                text = text.replace(value.as_str(), &format!("{{{name}}}"));
            }
            text
        };
        CliOut {
            code: out.code,
            stdout: back(out.stdout),
            stderr: back(out.stderr),
        }
    }

    /// The bus address the frontends use (`DBUS_SESSION_BUS_ADDRESS`).
    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    /// The `HOME` of the frontends.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The environment (over an empty one) every frontend process gets.
    pub fn envs(&self) -> Vec<(String, String)> {
        vec![
            (
                "DBUS_SESSION_BUS_ADDRESS".to_owned(),
                self.bus_address.clone(),
            ),
            ("HOME".to_owned(), self.home.display().to_string()),
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
            ("LC_ALL".to_owned(), "C.UTF-8".to_owned()),
            ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
        ]
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.env_clear()
            .envs(self.envs())
            .arg(&self.cli)
            .args(args)
            .current_dir(&self.home);
        cmd
    }

    /// Runs `libervia-cli ARGS` with an empty stdin.
    pub fn cli(&self, args: &[&str]) -> Result<CliOut> {
        self.cli_input(args, "")
    }

    /// Runs `libervia-cli ARGS` with `input` on its stdin.
    pub fn cli_input(&self, args: &[&str], input: &str) -> Result<CliOut> {
        run_with_input(self.command(args), input, LIBERVIA_CLI_TIMEOUT)
            .with_context(|| format!("[{}] libervia-cli {}", self.name, args.join(" ")))
    }

    /// Runs `libervia-cli ARGS`; a non-zero exit is an error. Returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.cli(args)?;
        ensure!(
            out.success(),
            "[{}] `libervia-cli {}` failed: {}",
            self.name,
            args.join(" "),
            out.describe()
        );
        Ok(out.stdout)
    }

    /// Creates profile `name` for `user@localhost` with its XMPP password and points it at
    /// the harness Prosody (Force server 127.0.0.1, Force port, no certificate check: the
    /// harness CA is not in the system store), the way a user would with libervia-cli.
    pub fn create_profile(
        &self,
        prosody: &Prosody,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        let jid = format!("{user}@{}", crate::DOMAIN);
        let port = prosody.port().to_string();
        self.cli_ok(&["profile", "create", name, "-j", &jid, "-x", password])?;
        for (param, value) in [
            ("Force server", "127.0.0.1"),
            ("Force port", port.as_str()),
            ("check_certificate", "false"),
        ] {
            self.cli_ok(&["param", "set", "-p", name, "Connection", param, value])?;
        }
        Ok(())
    }
}

/// `HOME/.config/libervia/libervia.conf`: the D-Bus bridge (the default, written out so
/// a developer's own config cannot change it) and local data inside `HOME`.
fn write_libervia_conf(home: &Path) -> Result<()> {
    let dir = home.join(".config").join("libervia");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let local = home.join("libervia-data");
    fs::create_dir_all(&local).with_context(|| format!("creating {}", local.display()))?;
    fs::write(
        dir.join("libervia.conf"),
        format!(
            "[DEFAULT]\nbridge = dbus\nlocal_dir = {}\npid_dir = {}\nlog_dir = {}\n",
            local.display(),
            local.display(),
            local.display()
        ),
    )
    .context("writing libervia.conf")
}

// ---------------------------------------------------------------------------------------
// Debian's libervia-backend
// ---------------------------------------------------------------------------------------

/// Debian's `libervia-backend` (twistd in the foreground, so it is our child and dies
/// with the fixture) on a private bus, with `HOME` in a temporary directory.
pub struct LiberviaBackend {
    // Drop order: the backend, then its bus, then the directory.
    child: Option<Child>,
    bus: DbusDaemon,
    dir: TempDir,
}

impl LiberviaBackend {
    /// Starts the backend and waits until it owns [`LIBERVIA_BUS_NAME`].
    pub fn start() -> Result<Self> {
        let python = debian_python()?;
        let backend = packaged("/usr/bin/libervia-backend", "libervia-backend")?;
        let bus = DbusDaemon::start()?;
        let dir = temp_dir("perch-e2e-libervia-")?;
        let home = dir.path().join("home");
        fs::create_dir_all(&home)?;
        write_libervia_conf(&home)?;
        let mut backend_cmd = Command::new(python);
        backend_cmd
            .env_clear()
            .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
            .env("HOME", &home)
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(backend)
            .arg("fg")
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(append_file(&dir.path().join("backend.out"))?)
            .stderr(append_file(&dir.path().join("backend.out"))?);
        let child = backend_cmd
            .spawn()
            .context("starting Debian's libervia-backend")?;
        let mut me = Self {
            child: Some(child),
            bus,
            dir,
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let child = me.child.as_mut().expect("just started");
            if let Some(status) = child.try_wait()? {
                me.child = None;
                bail!(
                    "libervia-backend exited during start-up ({status})\n{}",
                    me.diagnostics()
                );
            }
            if me.bus.name_has_owner(LIBERVIA_BUS_NAME)? {
                return Ok(me);
            }
            if Instant::now() >= deadline {
                bail!(
                    "libervia-backend did not take {LIBERVIA_BUS_NAME} within {STARTUP_TIMEOUT:?}\n{}",
                    me.diagnostics()
                );
            }
            std::thread::sleep(crate::POLL);
        }
    }

    /// The frontends' environment against this backend.
    pub fn frontend(&self) -> Result<Frontend> {
        Frontend::new(
            "libervia",
            self.bus.address(),
            &self.dir.path().join("home"),
        )
    }

    /// The private bus the backend is on.
    pub fn bus(&self) -> &DbusDaemon {
        &self.bus
    }

    /// The tail of the backend's output and log, for failure reports.
    pub fn diagnostics(&self) -> String {
        format!(
            "=== libervia-backend ({})\n--- output (tail):\n{}\n--- libervia.log (tail):\n{}\n",
            self.dir.path().display(),
            tail_file(&self.dir.path().join("backend.out"), 40),
            tail_file(
                &self
                    .dir
                    .path()
                    .join("home")
                    .join("libervia-data")
                    .join("libervia.log"),
                40
            ),
        )
    }
}

impl Drop for LiberviaBackend {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
    }
}

// ---------------------------------------------------------------------------------------
// perchd with its Libervia bridge
// ---------------------------------------------------------------------------------------

/// perchd with [`PERCHD_LIBERVIA_CONFIG`], started as the other e2e tests start it; the
/// Libervia name must be owned once it is ready.
pub fn perchd_with_libervia() -> Result<Perchd> {
    let perchd = Perchd::start_with_config(PERCHD_LIBERVIA_CONFIG)?;
    crate::wait_until(STARTUP_TIMEOUT, || {
        perchd.bus().name_has_owner(LIBERVIA_BUS_NAME)
    })
    .with_context(|| {
        format!(
            "perchd is ready but nobody owns {LIBERVIA_BUS_NAME} on its bus\n{}",
            perchd.diagnostics()
        )
    })?;
    Ok(perchd)
}

/// The frontends' environment against `perchd` (its bus, its `HOME`).
pub fn perch_frontend(perchd: &Perchd) -> Result<Frontend> {
    Frontend::new("perchd", perchd.bus().address(), &perchd.dir().join("home"))
}

/// Writes `user@localhost`'s roster into the harness Prosody's file storage: each
/// `(contact, name, group)` with subscription `both`. Call it before the account first
/// connects (Prosody reads the file when the roster is first loaded), so that both
/// backends start from the same roster without a subscription dance.
pub fn seed_roster(prosody: &Prosody, user: &str, contacts: &[(&str, &str, &str)]) -> Result<()> {
    let dir = prosody
        .dir()
        .join("data")
        .join(crate::DOMAIN)
        .join("roster");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut lua = String::from("return {\n\t[false] = { version = 1; pending = {}; };\n");
    for (jid, name, group) in contacts {
        lua.push_str(&format!(
            "\t[{jid:?}] = {{ subscription = \"both\"; groups = {{ [{group:?}] = true; }}; name = {name:?}; }};\n"
        ));
    }
    lua.push_str("};\n");
    fs::write(dir.join(format!("{user}.dat")), lua).context("writing a Prosody roster file")
}

// ---------------------------------------------------------------------------------------
// two sides: Debian's backend and perchd
// ---------------------------------------------------------------------------------------

/// One backend on its own Prosody, and the frontends' environment for it.
pub struct Side {
    pub frontend: Frontend,
    // Kept alive for the test's duration (one of the two is set).
    _libervia: Option<LiberviaBackend>,
    _perchd: Option<Perchd>,
    pub prosody: Prosody,
}

impl Side {
    /// Debian's backend (`perch` false) or perchd (`perch` true, unless
    /// `PERCH_E2E_LIBERVIA_BOTH` is set), on a fresh Prosody where alice and bob know
    /// each other.
    pub fn start(perch: bool) -> Result<Self> {
        let prosody = Prosody::start()?;
        // alice and bob know each other from the start (same roster on both sides).
        seed_roster(&prosody, "alice", &[("bob@localhost", "Bobby", "Friends")])?;
        seed_roster(&prosody, "bob", &[("alice@localhost", "Alice", "Friends")])?;
        let both_libervia =
            std::env::var_os("PERCH_E2E_LIBERVIA_BOTH").is_some_and(|v| !v.is_empty() && v != "0");
        let (frontend, libervia, perchd) = if perch && !both_libervia {
            let perchd = perchd_with_libervia()?;
            (perch_frontend(&perchd)?, None, Some(perchd))
        } else {
            let backend = LiberviaBackend::start()?;
            (backend.frontend()?, Some(backend), None)
        };
        let frontend = frontend.with_var("port", &prosody.port().to_string());
        Ok(Self {
            frontend,
            _libervia: libervia,
            _perchd: perchd,
            prosody,
        })
    }
}

/// Starts both sides in parallel: (Libervia, perchd). Panics when one cannot start (a
/// test's fixtures).
pub fn sides() -> (Side, Side) {
    try_sides().expect("starting both sides")
}

/// Starts both sides in parallel: (Libervia, perchd).
pub fn try_sides() -> Result<(Side, Side)> {
    let (lib, perch) = std::thread::scope(|s| {
        let lib = s.spawn(|| Side::start(false));
        let perch = s.spawn(|| Side::start(true));
        (
            lib.join().map_err(|_| anyhow!("the start thread panicked")),
            perch
                .join()
                .map_err(|_| anyhow!("the start thread panicked")),
        )
    });
    Ok((
        lib?.context("starting Debian's libervia-backend side")?,
        perch?.context("starting the perchd side")?,
    ))
}

// ---------------------------------------------------------------------------------------
// libervia-tui under tmux
// ---------------------------------------------------------------------------------------

/// `libervia-tui -p PROFILE` in a detached tmux session (its own server socket in a
/// temporary directory), driven with `send-keys` and read with `capture-pane`.
pub struct Tui {
    tmux: PathBuf,
    socket: PathBuf,
    dir: TempDir,
}

impl Tui {
    /// Starts the TUI on `profile` in a 120×40 terminal.
    pub fn start(frontend: &Frontend, profile: &str) -> Result<Self> {
        let tmux = crate::find_program("tmux", "tmux", "tmux")?;
        let tui = packaged("/usr/bin/libervia-tui", "libervia-tui")?;
        let dir = temp_dir("perch-e2e-tmux-")?;
        let socket = dir.path().join("tmux.sock");
        let mut env_args = String::new();
        for (k, v) in frontend.envs() {
            env_args.push_str(&format!("{k}={} ", shell_quote(&v)));
        }
        env_args.push_str("TERM=screen ");
        let command = format!(
            "cd {} && exec env -i {env_args}{} {} -p {} 2>{}",
            shell_quote(&frontend.home.display().to_string()),
            shell_quote(&frontend.python.display().to_string()),
            shell_quote(&tui.display().to_string()),
            shell_quote(profile),
            shell_quote(&dir.path().join("tui.stderr").display().to_string()),
        );
        let me = Self { tmux, socket, dir };
        me.tmux_ok(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            "tui",
            &command,
        ])?;
        // Keep the pane (and its last screen) if the TUI exits, for the failure report.
        me.tmux_ok(&["set-option", "-t", "tui", "remain-on-exit", "on"])?;
        Ok(me)
    }

    fn tmux(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.tmux);
        cmd.arg("-S").arg(&self.socket).args(args);
        cmd
    }

    fn tmux_ok(&self, args: &[&str]) -> Result<String> {
        let out = crate::run_checked(self.tmux(args), Duration::from_secs(10))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The visible screen as text.
    pub fn screen(&self) -> Result<String> {
        self.tmux_ok(&["capture-pane", "-p", "-t", "tui"])
    }

    /// The visible screen with its attributes as escape sequences (to see focus: the
    /// focused entry of a list is drawn bold, `ESC[1m`).
    pub fn screen_with_attributes(&self) -> Result<String> {
        self.tmux_ok(&["capture-pane", "-p", "-e", "-t", "tui"])
    }

    /// The last line of the screen (the TUI's edit bar, `> …`).
    pub fn edit_bar(&self) -> Result<String> {
        Ok(self
            .screen()?
            .lines()
            .last()
            .unwrap_or_default()
            .trim_end()
            .to_owned())
    }

    /// Sends keys (tmux key names, e.g. `"Enter"`, `"C-n"`; or literal text with
    /// [`Tui::type_text`]).
    pub fn keys(&self, keys: &[&str]) -> Result<()> {
        let mut args = vec!["send-keys", "-t", "tui"];
        args.extend_from_slice(keys);
        self.tmux_ok(&args)?;
        Ok(())
    }

    /// Sends keys, then waits until the screen (attributes included) is drawn anew: the
    /// TUI has taken them. A key that changes nothing visible waits `timeout`; either
    /// way the screen as it is then is returned, for the caller to judge.
    pub fn keys_and_redraw(&self, keys: &[&str], timeout: Duration) -> Result<String> {
        let before = self.screen_with_attributes()?;
        self.keys(keys)?;
        let mut now = before.clone();
        // Not redrawn within `timeout` is an answer too (the key changed nothing).
        let _ = crate::wait_until(timeout, || {
            now = self.screen_with_attributes()?;
            Ok(now != before)
        });
        Ok(now)
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) -> Result<()> {
        self.tmux_ok(&["send-keys", "-t", "tui", "-l", text])?;
        Ok(())
    }

    /// Polls the screen until `pred` holds; fails after `timeout` with the last screen.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen()?;
            if pred(&screen) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                bail!(
                    "libervia-tui: {what} not on screen after {timeout:?}; last screen:\n{screen}\n--- tui stderr:\n{}",
                    tail_file(&self.dir.path().join("tui.stderr"), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until `text` is on screen.
    pub fn wait_for_text(&self, text: &str, timeout: Duration) -> Result<String> {
        self.wait_for(&format!("{text:?}"), timeout, |s| s.contains(text))
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = crate::run_with_timeout(self.tmux(&["kill-server"]), Duration::from_secs(10));
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------------
// Differential runs
// ---------------------------------------------------------------------------------------

/// A check of Perch's own output in a step where it differs from Libervia.
pub type PerchCheck = Box<dyn Fn(&CliOut) -> Result<()> + Send + Sync>;

/// What a step of a differential run expects of the two backends.
pub enum Expect {
    /// Same exit code, stdout and stderr after [`normalise`].
    Same,
    /// Perch differs on purpose: `why` says how and why, `perch` checks Perch's own
    /// (normalised) output; Libervia's output is only recorded.
    PerchDiffers {
        why: &'static str,
        perch: PerchCheck,
    },
    /// Run on perchd only, because Libervia cannot run it (`why`: e.g. 0.9 hangs);
    /// `perch` checks Perch's output.
    PerchOnly {
        why: &'static str,
        perch: PerchCheck,
    },
}

/// One `libervia-cli` command of a differential run.
pub struct Step {
    pub args: Vec<String>,
    pub stdin: String,
    pub expect: Expect,
}

impl Step {
    /// `libervia-cli ARGS`, expected the same on both backends.
    pub fn same(args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            stdin: String::new(),
            expect: Expect::Same,
        }
    }

    /// Feeds `stdin` to the command.
    pub fn stdin(mut self, stdin: &str) -> Self {
        self.stdin = stdin.to_owned();
        self
    }

    /// Perch deliberately differs here (`why`); `perch` checks its output.
    pub fn perch_differs(
        mut self,
        why: &'static str,
        perch: impl Fn(&CliOut) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.expect = Expect::PerchDiffers {
            why,
            perch: Box::new(perch),
        };
        self
    }

    /// Runs on perchd only: Libervia cannot (`why`); `perch` checks Perch's output.
    pub fn perch_only(
        args: &[&str],
        why: &'static str,
        perch: impl Fn(&CliOut) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        Self {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            stdin: String::new(),
            expect: Expect::PerchOnly {
                why,
                perch: Box::new(perch),
            },
        }
    }

    fn line(&self) -> String {
        format!("libervia-cli {}", self.args.join(" "))
    }
}

/// Runs every step on `libervia` and on `perch` (the two sequences in parallel threads,
/// each in order), then compares step by step. All differences are reported together,
/// each with both outputs.
pub fn differential(libervia: &Frontend, perch: &Frontend, steps: &[Step]) -> Result<()> {
    // By the side's own name, so that a reference-on-both-sides run never sends a
    // perch-only step to Libervia.
    let run = |frontend: &Frontend| -> Result<Vec<CliOut>> {
        let is_perch = frontend.name == "perchd";
        steps
            .iter()
            .map(|s| {
                if let (Expect::PerchOnly { why, .. }, false) = (&s.expect, is_perch) {
                    return Ok(CliOut {
                        code: None,
                        stdout: String::new(),
                        stderr: format!("(not run on Libervia: {why})\n"),
                    });
                }
                let args: Vec<String> = s.args.iter().map(|a| frontend.substitute(a)).collect();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                frontend
                    .cli_input(&args, &s.stdin)
                    .map(|o| frontend.unsubstitute(o).normalised())
            })
            .collect()
    };
    let (lib_out, perch_out) = std::thread::scope(|scope| {
        let lib = scope.spawn(|| run(libervia));
        let per = scope.spawn(|| run(perch));
        (
            lib.join()
                .unwrap_or_else(|_| Err(anyhow!("the libervia thread panicked"))),
            per.join()
                .unwrap_or_else(|_| Err(anyhow!("the perchd thread panicked"))),
        )
    });
    let lib_out = lib_out?;
    let perch_out = perch_out?;
    let mut problems = Vec::new();
    for ((step, l), p) in steps.iter().zip(&lib_out).zip(&perch_out) {
        match &step.expect {
            Expect::Same => {
                if l != p {
                    problems.push(format!(
                        "`{}` differs\n=== libervia: {}\n=== perchd: {}",
                        step.line(),
                        l.describe(),
                        p.describe()
                    ));
                }
            }
            Expect::PerchDiffers { why, perch } | Expect::PerchOnly { why, perch } => {
                if let Err(e) = perch(p) {
                    problems.push(format!(
                        "`{}`: Perch's own behaviour ({why}) not met: {e:#}\n=== libervia (recorded): {}\n=== perchd: {}",
                        step.line(),
                        l.describe(),
                        p.describe()
                    ));
                }
            }
        }
    }
    ensure!(
        problems.is_empty(),
        "{} of {} steps failed:\n\n{}",
        problems.len(),
        steps.len(),
        problems.join("\n\n")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn normalisation_hides_what_changes_between_runs() {
        let raw = "connected as alice@localhost/libervia.edLEVBuMuYoSzeKrKHDEhp  \n\
                   PONG (0.012065410614013672 s)\n\
                   Item published with ID first-post-bL1B\n\
                   Item published with ID first-post-v_8h\n\
                   \"id\": \"first-post--x9Q\",\n\
                   \"updated\": 1796227648,\n\
                   id 9b2a1c3e-1f2d-4c5b-9a8e-0123456789ab on 127.0.0.1:41234\n\n";
        assert_eq!(
            normalise(raw),
            "connected as alice@localhost/<resource>\n\
             PONG (<seconds>)\n\
             Item published with ID first-post-<suffix>\n\
             Item published with ID first-post-<suffix>\n\
             \"id\": \"first-post-<suffix>\",\n\
             \"updated\": <epoch>,\n\
             id <uuid> on 127.0.0.1:<port>\n"
        );
    }

    #[test]
    fn normalisation_fixes_what_prosody_orders_by_chance() {
        let a = "<item xmlns=\"p\" publisher=\"a@b\" id=\"i1\">\n\
                 │pubsub.localhost     │\n│conference.localhost │\n└─┘\n";
        let b = "<item id=\"i1\" xmlns=\"p\" publisher=\"a@b\">\n\
                 │conference.localhost │\n│pubsub.localhost     │\n└─┘\n";
        assert_eq!(normalise(a), normalise(b));
        assert!(normalise(a).starts_with("<item id=\"i1\" publisher=\"a@b\" xmlns=\"p\">"));
    }
}
