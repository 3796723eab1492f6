//! perch-admin: administration of a Perch installation while its perchd is stopped.
//! Today one command: `migrate`, which moves an installation's SQLite database to
//! PostgreSQL (`doc/deployment.rst`, "Moving to PostgreSQL").

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use perch_backend::admin::{self, Progress, TableReport};

/// Administration of a Perch installation (perchd stopped).
#[derive(Debug, Parser)]
#[command(name = "perch-admin", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Move an installation from its SQLite file to an empty PostgreSQL database,
    /// verifying every table's row count and checksum before committing.
    Migrate {
        /// The SQLite database: sqlite:PATH (perch.db in perchd's data dir).
        #[arg(long, value_name = "sqlite:PATH")]
        from: String,
        /// The PostgreSQL database: postgres://USER:PASSWORD@HOST:PORT/NAME (empty).
        #[arg(
            long,
            value_name = "URL",
            env = "PERCH_DATABASE_URL",
            hide_env_values = true
        )]
        to: String,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// The progress bar on stderr: redrawn in place on a terminal, a line per table
/// otherwise (a log, CI).
struct Bar {
    tty: bool,
    table: String,
    total: u64,
    drawn: Option<Instant>,
}

impl Bar {
    fn draw(&mut self, done: u64) {
        let now = Instant::now();
        if self
            .drawn
            .is_some_and(|t| now - t < Duration::from_millis(100))
            && done < self.total
        {
            return;
        }
        self.drawn = Some(now);
        let share = if self.total == 0 {
            1.0
        } else {
            done as f64 / self.total as f64
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let filled = ((share * 30.0).round() as usize).min(30);
        eprint!(
            "\r{:<20} [{}{}] {:>3.0}% {done}/{} rows",
            self.table,
            "#".repeat(filled),
            " ".repeat(30 - filled),
            share * 100.0,
            self.total
        );
        let _ = std::io::stderr().flush();
    }
}

impl Progress for Bar {
    fn table(&mut self, name: &str, total: u64) {
        self.table = name.to_owned();
        self.total = total;
        self.drawn = None;
        if self.tty {
            self.draw(0);
        }
    }

    fn rows(&mut self, done: u64) {
        if self.tty {
            self.draw(done);
        }
    }

    fn verified(&mut self, t: &TableReport) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
        let verdict = if t.matches() { "ok" } else { "DIFFERS" };
        eprintln!(
            "{:<20} {:>9} rows  checksum {}  {verdict}",
            t.table, t.target_rows, t.target_checksum
        );
    }

    fn step(&mut self, what: &str) {
        eprintln!("{what}…");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Command::Migrate { from, to, json } = Args::parse().command;
    let mut bar = Bar {
        tty: std::io::stderr().is_terminal(),
        table: String::new(),
        total: 0,
        drawn: None,
    };
    match admin::migrate(&from, &to, &mut bar).await {
        Ok(report) => {
            let rows: u64 = report.tables.iter().map(|t| t.target_rows).sum();
            eprintln!(
                "moved {rows} rows in {} tables from {} to {}; every row count and checksum \
                 matches. Full-text index: {} entries rebuilt; {} sequences set.\n\
                 Start perchd with --database-url (or [database] url) naming the new \
                 database and the same data dir: its secret.key opens the sealed passwords.",
                report.tables.len(),
                report.source,
                report.target,
                report.index_entries,
                report.sequences
            );
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("perch-admin: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if bar.tty {
                eprintln!();
            }
            eprintln!("perch-admin migrate: {e}");
            ExitCode::FAILURE
        }
    }
}
