//! perchd: the Perch daemon. Parses its flags, loads the configuration, refuses to run
//! as root unless told, sets up logging, and hands over to `perch_backend::run`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use perch_backend::config::{Config, Overrides};

/// The Perch XMPP client backend daemon.
#[derive(Debug, Parser)]
#[command(name = "perchd", version, about)]
struct Args {
    /// Config file (default: $XDG_CONFIG_HOME/perch/perchd.toml).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Where the database and key live (default: $XDG_DATA_HOME/perch).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The database: postgres://USER:PASSWORD@HOST:PORT/NAME for PostgreSQL (default:
    /// SQLite, perch.db in the data dir).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// error, warn, info, debug, trace, or a tracing filter.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Run even as root (refused otherwise).
    #[arg(long)]
    allow_root: bool,
    /// D-Bus bus to serve on: "session", "none", or an address.
    #[arg(long, value_name = "BUS")]
    bus: Option<String>,
    /// Peer-to-peer socket path, or "none".
    #[arg(long, value_name = "PATH")]
    socket: Option<String>,
    /// Write the D-Bus activation file that lets Libervia's frontends start this
    /// perchd (~/.local/share/dbus-1/services/org.libervia.Libervia.service), then exit.
    #[arg(long)]
    install_libervia_service: bool,
}

fn main() -> ExitCode {
    // Before any thread exists (doc/reliability.rst, "Memory").
    perch_backend::memory::tune();
    let args = Args::parse();
    if args.install_libervia_service {
        return match perch_backend::libervia::install_service(args.config.as_deref()) {
            Ok(path) => {
                println!("wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("perchd: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let overrides = Overrides {
        data_dir: args.data_dir,
        database_url: args.database_url,
        log_level: args.log_level,
        allow_root: args.allow_root,
        bus: args.bus,
        socket: args.socket,
    };
    // Before logging exists, errors go to stderr.
    let config = match Config::load(args.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("perchd: {e}");
            return ExitCode::from(2);
        }
    };
    if perch_backend::paths::effective_uid() == 0 && !config.daemon.allow_root {
        eprintln!(
            "perchd: refusing to run as root; run it as your user, or pass --allow-root \
             (or set daemon.allow_root = true) if you really mean it"
        );
        return ExitCode::from(2);
    }
    let log_file = config.log_file();
    if let Err(e) = perch_backend::logging::init(&config.log, log_file.as_deref()) {
        eprintln!(
            "perchd: cannot open log file {}: {e}",
            log_file
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("perchd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(perch_backend::run::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
