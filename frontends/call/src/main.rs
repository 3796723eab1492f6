//! `perch-call`: place or answer a Jingle call through perchd and carry its media.
//!
//! perchd does the signalling (doc/calls.rst); this binary runs the WebRTC media with
//! GStreamer. At hang-up it prints the call's facts (with `--json`, one object);
//! a call that cannot be placed or connected prints one line
//! `perch-call: <Name>: <message>` on stderr and exits with 1 (2 for a bad command line).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use perch_call::CallError;
use perch_call::call::{self, CallOptions, CallReport};
use perch_call::media::{Kind, Sink, Source};
use perch_client::{Client, Target};

#[derive(Debug, Parser)]
#[command(
    name = "perch-call",
    version,
    about = "Jingle calls through perchd, media with GStreamer"
)]
struct Cli {
    /// D-Bus bus address where perchd serves (instead of the session bus).
    #[arg(long, global = true, env = "PERCH_ADDRESS", value_name = "ADDRESS")]
    address: Option<String>,
    /// perchd's peer-to-peer socket (default: $XDG_RUNTIME_DIR/perch/perchd.sock).
    #[arg(long, global = true, env = "PERCH_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// How long to wait for perchd's answer to one D-Bus call.
    #[arg(long, global = true, value_name = "DURATION", default_value = "60s",
          value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call JID and run the call until either side hangs up.
    Start {
        #[command(flatten)]
        common: Common,
        /// Whom to call (a bare or full JID).
        jid: String,
        /// Send audio (the default when neither --audio nor --video is given).
        #[arg(long)]
        audio: bool,
        /// Send video.
        #[arg(long)]
        video: bool,
        /// Ring the peer's devices first (XEP-0353 Jingle Message Initiation) instead
        /// of starting the session with one chosen resource.
        #[arg(long)]
        jmi: bool,
    },
    /// Wait for an incoming call, answer it, and run it until either side hangs up.
    Listen {
        #[command(flatten)]
        common: Common,
        /// Answer only calls from this JID (repeatable); others are declined.
        #[arg(long = "accept-from", value_name = "JID")]
        accept_from: Vec<String>,
        /// Give up when no call came in this long (e.g. 30s; default: wait forever).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        wait: Option<Duration>,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// The profile (XMPP account) to call with.
    #[arg(short, long)]
    profile: String,
    /// Where sent media comes from.
    #[arg(long, value_enum, default_value = "test")]
    source: SourceArg,
    /// Where received media goes.
    #[arg(long, value_enum, default_value = "fake")]
    sink: SinkArg,
    /// Hang up this long after the media connected (seconds, or e.g. 1m).
    #[arg(long, value_name = "S", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Give up when ICE and DTLS have not connected this long after the answer.
    #[arg(long, value_name = "S", default_value = "20", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// The only local address ICE gathers candidates on (e.g. 127.0.0.1 for calls on
    /// one machine: libnice skips loopback otherwise).
    #[arg(long, env = "PERCH_CALL_LOCAL_ADDRESS", value_name = "IP")]
    local_address: Option<String>,
    /// Print the call's facts as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SourceArg {
    /// Test tone and test picture.
    Test,
    /// The default microphone and camera.
    Auto,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SinkArg {
    /// Decode and drop.
    Fake,
    /// The default speakers and screen.
    Auto,
}

/// Seconds (`2.5`) or a humantime duration (`1m30s`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

impl Common {
    fn options(&self) -> CallOptions {
        CallOptions {
            profile: self.profile.clone(),
            source: match self.source {
                SourceArg::Test => Source::Test,
                SourceArg::Auto => Source::Auto,
            },
            sink: match self.sink {
                SinkArg::Fake => Sink::Fake,
                SinkArg::Auto => Sink::Auto,
            },
            duration: self.duration,
            connect_timeout: self.connect_timeout,
            local_address: self.local_address.clone().filter(|a| !a.is_empty()),
        }
    }
}

async fn run(cli: Cli) -> Result<(CallReport, bool), CallError> {
    let target = Target {
        address: cli.address.clone().filter(|a| !a.is_empty()),
        socket: cli.socket.clone().filter(|s| !s.as_os_str().is_empty()),
        timeout: cli.timeout,
    };
    let client = Client::connect(&target).await?;
    match &cli.command {
        Command::Start {
            common,
            jid,
            audio,
            video,
            jmi,
        } => {
            let mut kinds = Vec::new();
            if *audio || !*video {
                kinds.push(Kind::Audio);
            }
            if *video {
                kinds.push(Kind::Video);
            }
            let report = call::start(client, &common.options(), jid, kinds, *jmi).await?;
            Ok((report, common.json))
        }
        Command::Listen {
            common,
            accept_from,
            wait,
        } => {
            let profile = common.profile.clone();
            let ready = move || eprintln!("perch-call: waiting for a call to profile {profile}");
            let report = call::listen(client, &common.options(), accept_from, *wait, ready).await?;
            Ok((report, common.json))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PERCH_CALL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("perch-call: Internal: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok((report, json)) => {
            if json {
                match serde_json::to_string(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("perch-call: Internal: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("perch-call: {}: {}", e.name(), e.one_line());
            ExitCode::FAILURE
        }
    }
}
