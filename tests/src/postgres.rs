//! A throwaway PostgreSQL for one test: Debian's `postgresql` package (version 15),
//! a cluster made by `initdb` in a temp dir, listening on a free loopback port with
//! its socket in that dir, stopped (`pg_ctl stop -m immediate`) when dropped.
//!
//! Why a password: the cluster authenticates with SCRAM (`-A scram-sha-256`), as a
//! real server does, so a wrong password in perchd's URL is refused and the
//! wrong-password fault can be tested. `initdb` refuses to run as root: when the tests
//! run as root (as CI does), the server runs as the `postgres` user the package
//! creates, in a temp dir it owns.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::{free_port, run_checked, tail_file, temp_dir};

/// The superuser `initdb` creates, and the database the tests use.
pub const PG_USER: &str = "perch";
/// Its password.
pub const PG_PASSWORD: &str = "perch-pg-secret";

/// A running PostgreSQL cluster; stopped on drop.
pub struct Postgres {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    /// `runuser`, to run the server's tools as `postgres` (the tests run as root).
    as_postgres: Option<PathBuf>,
    stopped: bool,
}

impl Postgres {
    /// initdb, start, create the `perch` database. Fails (never skips) with how to
    /// install PostgreSQL when it is missing.
    pub fn start() -> Result<Self> {
        let bin = pg_bin()?;
        let as_postgres = if crate::is_root() {
            Some(crate::find_program("runuser", "runuser", "util-linux")?)
        } else {
            None
        };
        let dir = temp_dir("perch-e2e-postgres-")?;
        let pw = dir.path().join("pwfile");
        fs::write(&pw, PG_PASSWORD)?;
        if as_postgres.is_some() {
            let chown = crate::find_program("chown", "chown", "coreutils")?;
            run_checked(
                {
                    let mut c = Command::new(chown);
                    c.args(["-R", "postgres:"]).arg(dir.path());
                    c
                },
                Duration::from_secs(10),
            )?;
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        let mut pg = Self {
            bin,
            dir,
            port: 0,
            as_postgres,
            stopped: true,
        };
        let data = pg.data_dir();
        let mut initdb = pg.tool("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "scram-sha-256", "-U", PG_USER, "--no-sync"])
            // Text sorts by code point, as in SQLite, and non-ASCII letters are
            // letters to the full-text parser (doc/storage.rst).
            .args(["-E", "UTF8", "--locale=C.UTF-8"])
            .arg(format!("--pwfile={}", pw.display()));
        run_checked(initdb, Duration::from_secs(120)).context("initdb")?;
        pg.start_server()?;
        pg.create_database("perch")?;
        Ok(pg)
    }

    /// `postgres://perch:…@127.0.0.1:PORT/perch`.
    pub fn url(&self) -> String {
        self.url_with_password(PG_PASSWORD)
    }

    /// The URL with another password (for the wrong-password fault).
    pub fn url_with_password(&self, password: &str) -> String {
        format!(
            "postgres://{PG_USER}:{password}@127.0.0.1:{}/perch",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database `name` on this server; its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let mut psql = self.tool("psql");
        psql.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            PG_USER,
        ])
        .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE \"{name}\""))
        .env("PGPASSWORD", PG_PASSWORD);
        run_checked(psql, Duration::from_secs(30)).context("creating a database")?;
        Ok(format!(
            "postgres://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        ))
    }

    /// Stops the server (fast shutdown); [`Postgres::start_again`] brings it back on
    /// the same port.
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        let mut ctl = self.tool("pg_ctl");
        ctl.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "stop"]);
        run_checked(ctl, Duration::from_secs(60)).context("pg_ctl stop")?;
        self.stopped = true;
        Ok(())
    }

    pub fn start_again(&mut self) -> Result<()> {
        self.start_server()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start_server(&mut self) -> Result<()> {
        for attempt in 0..3 {
            if self.port == 0 || attempt > 0 {
                self.port = free_port()?;
            }
            let mut ctl = self.tool("pg_ctl");
            ctl.arg("-D").arg(self.data_dir()).arg("-o").arg(format!(
                "-k {} -h 127.0.0.1 -p {} -c fsync=off",
                self.dir.path().display(),
                self.port
            ));
            ctl.arg("-l")
                .arg(self.dir.path().join("log"))
                .args(["-w", "-t", "60", "start"]);
            match run_checked(ctl, Duration::from_secs(90)) {
                Ok(_) => {
                    self.stopped = false;
                    return Ok(());
                }
                // Another test took the port meanwhile: another one.
                Err(e) if attempt < 2 => eprintln!("[perch-e2e] pg_ctl start: {e:#}"),
                Err(e) => {
                    bail!(
                        "{e:#}\n--- postgres log:\n{}",
                        tail_file(&self.dir.path().join("log"), 30)
                    )
                }
            }
        }
        unreachable!("three attempts return")
    }

    /// One of the server's tools, as `postgres` when the tests run as root.
    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if let Some(runuser) = &self.as_postgres {
            let mut c = Command::new(runuser);
            c.args(["-u", "postgres", "--"]).arg(path);
            c.current_dir(self.dir.path());
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "--- postgres log ({}):\n{}",
                self.dir.path().display(),
                tail_file(&self.dir.path().join("log"), 20)
            );
        }
        let mut ctl = self.tool("pg_ctl");
        ctl.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = run_checked(ctl, Duration::from_secs(30));
    }
}

/// Debian's `/usr/lib/postgresql/<version>/bin` (the newest there).
fn pg_bin() -> Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "PostgreSQL not found (no /usr/lib/postgresql/*/bin/initdb): install it with \
             `apt-get install -y postgresql` (scripts/test does)"
        ),
    }
}
