//! `confab`: a meeting without a window.
//!
//! - `confab serve` runs the signaling service (the flags of `confab-signaling`).
//! - `confab host` runs one embedded, prints the new meeting's link as the first line of stdout,
//!   and joins it.
//! - `confab join LINK` joins a meeting.
//! - `confab devices` lists the screens, microphones and speakers the flags can name.
//!
//! Participants read commands on stdin and print events on stdout: for people by default,
//! JSON lines with `--json` (see `commands` and `output`). Logs go to stderr (`CONFAB_LOG`).
//! Exit status: 0 after `/quit` or end of input, 1 when the meeting cannot be joined or ends on
//! its own, 2 for bad arguments (a malformed link among them).

mod commands;
mod media;
mod output;
mod session;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use confab_core::engine::DEFAULT_MAX_FILE_BYTES;
use confab_core::log::RedactingStderr;
use confab_proto::{DisplayName, MeetingLink};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "confab", version, about = "Confab meetings from the command line")]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Run the signaling service.
    Serve(confab_signaling::ServeArgs),
    /// Start a signaling service here, create a meeting, print its link and join it.
    Host {
        /// Where the embedded service listens; the link uses this machine's own address when
        /// this is a wildcard.
        #[arg(long, default_value = "0.0.0.0:0")]
        listen: SocketAddr,
        /// Serve the web UI from this directory, so people can join from a browser
        /// [default: ui/dist].
        #[arg(long)]
        ui_dir: Option<PathBuf>,
        #[arg(long, default_value = "Host")]
        name: String,
        #[command(flatten)]
        participant: ParticipantArgs,
    },
    /// Join a meeting from its link.
    Join {
        /// The meeting link, with its key (`…/m/ROOM#k=KEY`).
        link: String,
        /// Your display name (else the one in the link).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        participant: ParticipantArgs,
    },
    /// List the screens (`--share-screen=ID`), microphones (`--mic=ID`) and speakers
    /// (`--speaker=ID`) of this machine.
    Devices {
        /// One JSON object instead of lines for people.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct ParticipantArgs {
    /// Read commands and print events as JSON lines.
    #[arg(long)]
    json: bool,
    /// Where meeting notes are kept [default: the platform's data directory]/confab.
    #[arg(long, env = "CONFAB_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where received files are saved [default: ~/Downloads, else the current directory].
    #[arg(long, env = "CONFAB_DOWNLOAD_DIR")]
    download_dir: Option<PathBuf>,
    /// Largest file sent or accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_FILE_BYTES)]
    max_file_bytes: u64,
    /// The only local address for peer connections [default: every address this machine has,
    /// followed as they change].
    #[arg(long)]
    ice_address: Option<IpAddr>,
    /// Connect to peers only through the TURN relays the server hands out, never directly (the
    /// peers never learn each other's addresses).
    #[arg(long)]
    relay_only: bool,
    /// An access token, for a server that asks one of whoever opens a meeting on it: the
    /// file's first line that is not blank or a `#` comment. (A file, not a flag: a command
    /// line is visible to every user of the machine.)
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Send a synthetic camera (a moving test pattern with a frame counter) to every peer:
    /// 640×360, or with `=WIDTHxHEIGHT` another size (e.g. `=1920x1080`).
    #[arg(long, value_name = "SIZE", num_args = 0..=1, require_equals = true, default_missing_value = "",
        value_parser = camera_size)]
    synthetic_camera: Option<CameraSize>,
    /// Share a screen with every peer: the primary display, or with `=ID` another (an unknown
    /// id is refused with the list of displays). X11 only for now.
    // `=` required: otherwise `--share-screen LINK` would take the link for a display id.
    #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    share_screen: Option<String>,
    /// Send a synthetic microphone (a steady 440 Hz tone) to every peer.
    #[arg(long)]
    synthetic_audio: bool,
    /// Send beeps instead, 100 ms of a 440 Hz tone and noise at every half second of the wall
    /// clock: a receiver on the same machine (`--receive-media`) reports each beep's delay.
    #[arg(long, conflicts_with = "synthetic_audio")]
    synthetic_beeps: bool,
    /// Talk: send the default microphone to every peer, or with `=ID` another (see `confab
    /// devices`), with echo cancellation and noise suppression.
    #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, default_missing_value = "",
        conflicts_with_all = ["synthetic_audio", "synthetic_beeps"])]
    mic: Option<String>,
    /// Hear: play the peers' voices, mixed, on the default speaker, or with `=ID` another.
    /// Takes the peers' media, as `--receive-media` does.
    #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    speaker: Option<String>,
    /// Take the peers' cameras, microphones and screens: decode each and report it once a second
    /// (frames decoded, picture size, sound level). Without it they are declined.
    #[arg(long)]
    receive_media: bool,
    /// Record the meeting to this WebM file: the first picture from its first keyframe (VP8 as
    /// it arrived), and everyone's voices mixed (Opus). Takes the peers' media, as
    /// `--receive-media` does; the file is closed on leaving.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
}

/// The synthetic camera's picture size; none given: its own.
#[derive(Debug, Clone, Copy)]
struct CameraSize(Option<(u32, u32)>);

fn camera_size(text: &str) -> Result<CameraSize, String> {
    if text.is_empty() {
        return Ok(CameraSize(None));
    }
    let parsed = text.split_once('x').and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
    parsed.map(|size| CameraSize(Some(size))).ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT"))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    // The WebRTC stack warns about routine things (an empty ICE password on the first packet);
    // by default only its errors show, and those name addresses: every line is scrubbed.
    let filter = EnvFilter::try_from_env("CONFAB_LOG").unwrap_or_else(|_| {
        EnvFilter::new("error,confab=warn,confab_core=warn,confab_signaling=warn")
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| RedactingStderr).init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(1, &format!("cannot start: {e}")),
    };
    let code = runtime.block_on(run(cli.command));
    // A read of stdin may still be blocking a thread; it must not hold the exit up.
    runtime.shutdown_background();
    code
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("confab: {message}");
    ExitCode::from(code)
}

async fn run(mode: Mode) -> ExitCode {
    match mode {
        Mode::Serve(args) => match confab_signaling::serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, &e.to_string()),
        },
        Mode::Host { listen, ui_dir, name, participant } => {
            let Ok(name) = DisplayName::new(&name) else {
                return fail(2, "--name must be 1 to 64 visible characters");
            };
            let listener = match tokio::net::TcpListener::bind(listen).await {
                Ok(l) => l,
                Err(e) => return fail(1, &format!("cannot listen on {listen}: {e}")),
            };
            let link = match listener.local_addr() {
                Ok(addr) => confab_core::setup::hosted_meeting_link(addr, false),
                Err(e) => Err(e.to_string()),
            };
            let link = match link {
                Ok(link) => link,
                Err(e) => return fail(1, &e),
            };
            let mut config = confab_signaling::Config::default();
            if let Some(ui_dir) = ui_dir {
                config.ui_dir = ui_dir;
            }
            tokio::spawn(async move {
                if let Err(e) =
                    confab_signaling::run(listener, config, std::future::pending()).await
                {
                    tracing::error!(error = %e, "the embedded signaling service stopped");
                }
            });
            // The link alone, first, so a script can read it with one line.
            session::print_line(&link.to_string());
            session::run(link, name, participant).await
        }
        Mode::Devices { json } => list_devices(json),
        Mode::Join { link, name, participant } => {
            let link: MeetingLink = match link.parse() {
                Ok(link) => link,
                Err(e) => return fail(2, &format!("{e}: {link:?}")),
            };
            let name = match (name, link.name()) {
                (Some(name), _) => match DisplayName::new(&name) {
                    Ok(name) => name,
                    Err(_) => return fail(2, "--name must be 1 to 64 visible characters"),
                },
                (None, Some(name)) => name.clone(),
                (None, None) => return fail(2, "say who you are with --name NAME"),
            };
            session::run(link, name, participant).await
        }
    }
}

/// `confab devices`: what `--share-screen`, `--mic` and `--speaker` can name. A kind this
/// machine cannot list (no X display, no sound system) is shown empty, with the reason.
fn list_devices(json: bool) -> ExitCode {
    let screens = confab_media::screens()
        .and_then(|screens| screens.displays())
        .map(|displays| displays.into_iter().map(|d| (d.id, d.name)).collect::<Vec<_>>());
    let sound = |devices: Result<Vec<confab_media::AudioDevice>, confab_media::MediaError>| {
        devices.map(|all| all.into_iter().map(|d| (d.id, d.name)).collect::<Vec<_>>())
    };
    let kinds = [
        ("screens", screens),
        ("microphones", sound(confab_media::microphones())),
        ("speakers", sound(confab_media::speakers())),
    ];
    if json {
        let mut all = serde_json::Map::new();
        for (kind, listed) in kinds {
            // The same shape either way: the devices found, and why none could be listed.
            let (devices, error) = match listed {
                Ok(devices) => (devices, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            let devices: Vec<_> = devices
                .iter()
                .map(|(id, name)| serde_json::json!({"id": id, "name": name}))
                .collect();
            let value = serde_json::json!({"devices": devices, "error": error});
            all.insert(kind.to_owned(), value);
        }
        session::print_line(&serde_json::Value::Object(all).to_string());
    } else {
        for (kind, listed) in kinds {
            session::print_line(&format!("{kind}:"));
            match listed {
                Ok(devices) if devices.is_empty() => session::print_line("  (none)"),
                Ok(devices) => {
                    for (id, name) in devices {
                        session::print_line(&format!("  {id}  {name}"));
                    }
                }
                Err(e) => session::print_line(&format!("  (none: {e})")),
            }
        }
    }
    ExitCode::SUCCESS
}
