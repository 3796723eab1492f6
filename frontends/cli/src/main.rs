//! `perch`, the command-line frontend of perchd.
//!
//! The CLI never speaks XMPP and keeps no state: every command is one or a few D-Bus
//! calls to perchd (see `doc/bridge.rst`), printed for people, or as JSON with
//! `--json` for scripts. Failures print one line `perch: <ErrorName>: <message>` on
//! stderr and exit with 1 (2 for a command line clap rejects), so scripts can match on
//! the daemon's stable error names.

mod block;
mod blog;
mod call;
mod client;
mod commands;
mod encrypt;
mod file;
mod identity;
mod message_actions;
mod muc;
mod output;
mod pubsub;
mod read_state;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::client::{CliError, Target};

#[derive(Debug, Parser)]
#[command(
    name = "perch",
    version,
    about = "Command-line frontend of the perchd XMPP daemon"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// D-Bus bus address where perchd serves (instead of the session bus).
    #[arg(long, global = true, env = "PERCH_ADDRESS", value_name = "ADDRESS")]
    address: Option<String>,
    /// perchd's peer-to-peer socket (default: $XDG_RUNTIME_DIR/perch/perchd.sock).
    #[arg(long, global = true, env = "PERCH_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// How long to wait for perchd's answer to one call.
    #[arg(long, global = true, value_name = "DURATION", default_value = "120s",
          value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print perchd's version (and this CLI's).
    Version,
    /// Manage profiles (XMPP accounts).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Connect a profile; returns once the session is up.
    Connect(ProfileArg),
    /// Disconnect a profile.
    Disconnect(ProfileArg),
    /// Connection state of every profile.
    Status,
    /// Send messages and read history.
    #[command(subcommand)]
    Message(MessageCommand),
    /// Contacts and subscriptions.
    #[command(subcommand)]
    Roster(RosterCommand),
    /// Own presence and contacts' presence.
    #[command(subcommand)]
    Presence(PresenceCommand),
    /// Print perchd's signals as they come (until interrupted).
    Monitor,
    /// Plugins and their state.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Actions offered by plugins.
    #[command(subcommand)]
    Action(ActionCommand),
    /// Long operations and their progress.
    #[command(subcommand)]
    Job(JobCommand),
    /// Ping an entity (XEP-0199) and print the round trip.
    Ping {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
    },
    /// Ask other entities about themselves.
    #[command(subcommand)]
    Info(InfoCommand),
    /// Group chats (XEP-0045): join, leave, occupants, say, subject, nick.
    #[command(subcommand)]
    Muc(muc::MucCommand),
    /// Blog posts (XEP-0277).
    #[command(subcommand)]
    Blog(blog::BlogCommand),
    /// Calls (Jingle): what perchd signalled, with state, duration and end reason.
    #[command(subcommand)]
    Call(call::CallCommand),
    /// Publish-subscribe (XEP-0060): nodes, items, subscriptions.
    #[command(subcommand)]
    Pubsub(pubsub::PubsubCommand),
    /// Introspection for developers.
    #[command(subcommand)]
    Debug(DebugCommand),
    /// Blocking (XEP-0191): block, unblock and list JIDs; report spam.
    #[command(subcommand)]
    Block(block::BlockCommand),
    /// Avatars (XEP-0084, XEP-0153): publish ours, get a contact's.
    #[command(subcommand)]
    Avatar(identity::AvatarCommand),
    /// vCards (XEP-0054): read one, change ours.
    #[command(subcommand)]
    Vcard(identity::VcardCommand),
    /// Nicknames (XEP-0172): publish ours, get a contact's.
    #[command(subcommand)]
    Nick(identity::NickCommand),
    /// Files: upload and send (XEP-0363), download links.
    #[command(subcommand)]
    File(file::FileCommand),
    /// End-to-end encryption of a conversation (OMEMO): start, stop, status.
    #[command(subcommand)]
    Encryption(encrypt::EncryptionCommand),
    /// OMEMO keys: fingerprints, devices, trust.
    #[command(subcommand)]
    Omemo(encrypt::OmemoCommand),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Every plugin with its state and, when not loaded, why.
    List,
}

#[derive(Debug, Subcommand)]
enum ActionCommand {
    /// Every action with its parameters.
    List,
    /// Run an action: `perch action run ping jid=example.org`.
    Run {
        #[command(flatten)]
        profile: ProfileArg,
        name: String,
        /// Arguments as KEY=VALUE (typed by the action's declaration).
        args: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// A job's state; with --follow, a progress bar until it ends.
    Show {
        id: String,
        #[arg(long)]
        follow: bool,
        /// Also print every progress record.
        #[arg(long)]
        log: bool,
    },
    /// A profile's jobs, newest first.
    List(ProfileArg),
}

#[derive(Debug, Subcommand)]
enum InfoCommand {
    /// Identities, features and items of an entity (XEP-0030).
    Disco {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
        node: Option<String>,
        /// Ask the entity even when this session has the answer cached.
        #[arg(long)]
        no_cache: bool,
    },
    /// The software an entity runs (XEP-0092).
    Version {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
    },
}

#[derive(Debug, Subcommand)]
enum DebugCommand {
    /// Trigger points with their handlers, highest priority first.
    Triggers,
}

#[derive(Debug, Args)]
struct ProfileArg {
    /// The profile (default: the default profile).
    #[arg(short, long, default_value = "")]
    profile: String,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
struct PasswordSource {
    /// Read the XMPP password from stdin (the first line).
    #[arg(long)]
    password_stdin: bool,
    /// The XMPP password (visible to other users in the process list; prefer
    /// --password-stdin).
    #[arg(long, value_name = "PASSWORD")]
    xmpp_password: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Create a profile.
    Create {
        name: String,
        /// The account's bare JID (user@domain).
        #[arg(long)]
        jid: String,
        #[command(flatten)]
        password: PasswordSource,
        /// Connect to HOST[:PORT] (STARTTLS) or tls://HOST[:PORT] (Direct TLS, XEP-0368)
        /// instead of looking up the domain's SRV records.
        #[arg(long, value_name = "HOST[:PORT]")]
        server: Option<String>,
        /// Also trust the certificates of this PEM file.
        #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
        ca_file: Option<PathBuf>,
        /// Do not verify the server's TLS certificate (dangerous; logged at each
        /// connection).
        #[arg(long)]
        insecure: bool,
        /// Connect this profile whenever perchd starts.
        #[arg(long)]
        autoconnect: bool,
    },
    /// List profiles.
    List,
    /// Show one profile.
    Show { name: String },
    /// Delete a profile and its history.
    Delete { name: String },
    /// Make a profile the default one.
    Default { name: String },
    /// Turn autoconnect on or off.
    Autoconnect { name: String, value: OnOff },
    /// Replace the stored XMPP password.
    Password {
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MessageType {
    Chat,
    Normal,
    Headline,
    Groupchat,
}

#[derive(Debug, Subcommand)]
enum MessageCommand {
    /// Send a message; TEXT is read from stdin when omitted.
    Send {
        #[command(flatten)]
        profile: ProfileArg,
        /// The recipient's JID.
        to: String,
        text: Option<String>,
        #[arg(long = "type", value_enum, default_value = "chat")]
        kind: MessageType,
        /// Encrypt it (OMEMO), and every later message of the conversation: the
        /// message fails (`NotEncrypted`) rather than go in clear.
        #[arg(long)]
        encrypt: bool,
    },
    /// Messages not yet confirmed by the server (queued while offline, or in
    /// flight), oldest first; `cancel ID` takes a queued one back.
    Outbox {
        #[command(flatten)]
        profile: ProfileArg,
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
    /// Correct one of our messages (XEP-0308); history keeps the earlier text.
    Correct {
        #[command(flatten)]
        profile: ProfileArg,
        /// The contact or room the message went to.
        to: String,
        /// The id of the message to correct (`perch message history --json`).
        id: String,
        /// The corrected text.
        text: String,
        /// The message went to a group chat room.
        #[arg(long)]
        groupchat: bool,
    },
    /// React to a message (XEP-0444): our whole set of emojis, replacing our
    /// earlier one (none: take ours back).
    React(message_actions::ReactArgs),
    /// Reply to a message (XEP-0461), quoting it for clients without replies.
    Reply(message_actions::ReplyArgs),
    /// Retract one of our messages (XEP-0424).
    Retract(message_actions::Target),
    /// Mark a conversation read up to a message (default: the newest): tells the
    /// contact (XEP-0333) and our other devices (XEP-0490).
    Read(read_state::ReadArgs),
    /// Unread counts per conversation (or of one).
    Unread(read_state::UnreadArgs),
    /// Tell a contact our chat state (XEP-0085).
    State {
        #[command(flatten)]
        profile: ProfileArg,
        to: String,
        #[arg(value_parser = ["active", "composing", "paused", "inactive", "gone"])]
        state: String,
    },
    /// Show stored messages, oldest first.
    History {
        #[command(flatten)]
        profile: ProfileArg,
        /// Only messages with this JID (a bare JID matches all its resources).
        with: Option<String>,
        /// The newest N messages of the range (0: all).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Only messages after this time (RFC 3339 or Unix seconds).
        #[arg(long, value_name = "TIME")]
        after: Option<String>,
        /// Only messages before this time (RFC 3339 or Unix seconds).
        #[arg(long, value_name = "TIME")]
        before: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxAction {
    /// Take a queued message out of the outbox (not once it went out).
    Cancel { id: String },
}

#[derive(Debug, Subcommand)]
enum RosterCommand {
    /// List contacts.
    List(ProfileArg),
    /// Add (or update) a contact and ask for their presence.
    Add {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
        /// The contact's display name.
        #[arg(long)]
        name: Option<String>,
        /// A group (repeat for several).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Remove a contact.
    Remove {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
    },
    /// Let JID see our presence (accept its subscription request, or pre-approve).
    Approve {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
    },
    /// Refuse (or revoke) JID's subscription to our presence.
    Deny {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
    },
    /// Ask to see JID's presence.
    Subscribe {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
    },
    /// Stop seeing JID's presence.
    Unsubscribe {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ShowArg {
    Available,
    Away,
    Xa,
    Dnd,
    Chat,
}

#[derive(Debug, Subcommand)]
enum PresenceCommand {
    /// Set own presence.
    Set {
        #[command(flatten)]
        profile: ProfileArg,
        #[arg(long, value_enum, default_value = "available")]
        show: ShowArg,
        /// A status message.
        #[arg(long, default_value = "")]
        status: String,
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i8,
    },
    /// The last presence of each contact resource seen.
    List(ProfileArg),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("perch: Internal: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perch: {e}");
            ExitCode::FAILURE
        }
    }
}

impl Cli {
    fn target(&self) -> Target {
        Target {
            address: self.address.clone().filter(|a| !a.is_empty()),
            socket: self.socket.clone().filter(|s| !s.as_os_str().is_empty()),
            timeout: self.timeout,
        }
    }
}

/// Reads a password from stdin or the flag; an empty one is refused here, where the
/// user can still fix it.
fn read_password(source: &PasswordSource, what: &str) -> Result<String, CliError> {
    let password = match (&source.xmpp_password, source.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| {
                CliError::bad_argument(format!("reading the password from stdin: {e}"))
            })?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
        (None, false) => {
            return Err(CliError::bad_argument(format!(
                "{what}: give the XMPP password with --password-stdin or --xmpp-password"
            )));
        }
    };
    if password.is_empty() {
        return Err(CliError::bad_argument(format!(
            "{what}: the XMPP password is empty"
        )));
    }
    Ok(password)
}
