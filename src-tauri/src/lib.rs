//! # confab-desktop — Confab in a window
//!
//! A Tauri 2 shell: the web UI (`ui/`, the same screens as in the browser) in a webview, driving
//! a confab-core [`Engine`](confab_core::Engine) through the one front-end API,
//! [`confab_core::api`]. The webview's `TauriLink` sends [`api::Command`](confab_core::api)s
//! over Tauri commands and receives [`EngineEvent`](confab_core::EngineEvent)s over a
//! `tauri::ipc::Channel`. Start at [`run`].
//!
//! - [`commands`]: the Tauri commands, the only ones `capabilities/main.json` grants.
//! - [`meeting`]: the meeting this window is in, and the signaling service it may host.
//! - [`media`]: the peers' tracks — video to the webview still encoded (decoded here where the
//!   webview cannot), sound played here.
//! - [`secrets`]: the author id, display name and meeting keys, in the OS keyring.
//! - [`recent`]: the meetings this install was in, for the start page.
//! - [`outgoing`]: files the window sends, copied from the webview for the engine to offer.
//! - [`preferences`]: the settings page's — where new meetings are made, which devices.
//! - [`tls`]: the self-signed certificate of meetings hosted here (browsers on the LAN need
//!   https for cameras and WebCrypto).
//!
//! ## Command line
//! `confab-desktop [--host] [LINK]`: `--host` starts a meeting hosted here at once and prints
//! its link (for the others) on stdout; `LINK` (`https://…/m/…#k=…` or `confab://m/…`) joins it.
//!
//! ## What it never does
//! It holds no meeting logic: membership, sync, negotiation and media are confab-core's. The
//! webview runs no WebRTC (WebKitGTK has none that works) and loads no remote content.
//!
//! ## Environment
//! - `CONFAB_DATA_DIR`: where meetings' notes are kept (default: the platform's data directory,
//!   shared with the `confab` CLI).
//! - `CONFAB_DOWNLOAD_DIR`: where received files go (default: `~/Downloads`).
//! - `CONFAB_LISTEN`: where a hosted meeting's signaling service listens (default
//!   `0.0.0.0:0`: every interface, a free port, so people on the LAN can join).
//! - `CONFAB_KEYRING`: which keyring store to use — `auto` (default), `secret-service`,
//!   `keyutils`, `keychain`, `windows`, or `none`.
//! - `CONFAB_LOG`: log filter, as `RUST_LOG` (default `warn`).
//! - On Linux without a GPU, `WEBKIT_DISABLE_COMPOSITING_MODE=1` where the environment does not
//!   set it (see `composite_in_software_without_a_gpu`).

pub mod commands;
pub mod media;
pub mod meeting;
pub mod outgoing;
pub mod preferences;
pub mod recent;
pub mod secrets;
pub mod tls;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use confab_proto::MeetingLink;
use tauri::Manager as _;
use tauri_plugin_deep_link::DeepLinkExt as _;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "confab-desktop", version, about = "Confab meetings in a window")]
struct Args {
    /// Start a meeting hosted on this machine at once, and print its link for the others.
    #[arg(long, conflicts_with = "link")]
    host: bool,
    /// A meeting link to join (https://…/m/ROOM#k=KEY or confab://m/ROOM?h=HOST#k=KEY).
    link: Option<String>,
}

/// Opens the window and runs until it closes.
pub fn run() -> ExitCode {
    #[cfg(target_os = "linux")]
    composite_in_software_without_a_gpu();
    let filter = EnvFilter::try_from_env("CONFAB_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // The WebRTC stack's warnings name addresses: every line is scrubbed.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| confab_core::log::RedactingStderr)
        .init();
    let args = Args::parse();
    let fail = |code: u8, message: &str| {
        eprintln!("confab-desktop: {message}");
        ExitCode::from(code)
    };
    let settings = match meeting::Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => return fail(2, &e.to_string()),
    };
    let opening = match args.link.as_deref().map(str::parse::<MeetingLink>) {
        None => None,
        Some(Ok(link)) => Some(link),
        Some(Err(e)) => return fail(2, &format!("{e}: {:?}", args.link.unwrap_or_default())),
    };
    let app = tauri::Builder::default()
        // First: a second launch hands its arguments to this one and exits (its confab:// link
        // reaches the deep-link plugin below), and this window comes to the front.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            // confab:// links reach the deep-link plugin; a https:// meeting link is ours.
            let link = Args::try_parse_from(&argv).ok().and_then(|args| args.link);
            if let Some(Ok(link)) = link.as_deref().map(str::parse::<MeetingLink>)
                && argv.iter().all(|arg| !arg.starts_with("confab:"))
            {
                app.state::<meeting::Desktop>().open(link);
            }
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.show();
                let _ = window.set_focus();
            }
        }))
        .plugin(tauri_plugin_deep_link::init())
        .setup(move |app| {
            // Browsers that join a meeting hosted here get the web UI from the resources.
            let ui_dir = app.path().resource_dir()?.join("ui");
            let desktop = meeting::Desktop::new(settings, ui_dir, opening);
            if args.host {
                let link = tauri::async_runtime::block_on(desktop.host_at_start())?;
                // The link alone on a line, so a script (or `make run`) can pass it on.
                let mut out = std::io::stdout().lock();
                writeln!(out, "{link}").and_then(|()| out.flush())?;
            }
            app.manage(desktop);
            let handle = app.handle().clone();
            // The keyring is read while the window loads, not before it opens.
            let loading = handle.clone();
            tauri::async_runtime::spawn(async move {
                loading.state::<meeting::Desktop>().load_identity().await;
            });
            app.deep_link().on_open_url(move |opened| {
                for url in opened.urls() {
                    match url.as_str().parse::<MeetingLink>() {
                        Ok(link) => handle.state::<meeting::Desktop>().open(link),
                        Err(e) => tracing::warn!(error = %e, "a confab:// link that is no meeting"),
                    }
                }
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::startup,
            commands::recent_meetings,
            commands::host_meeting,
            commands::join_meeting,
            commands::meeting_command,
            commands::leave_meeting,
            commands::settings,
            commands::save_settings,
            commands::screens,
            commands::screen_thumbnail,
            commands::choose_screen,
            commands::picture_shown,
            commands::begin_file,
            commands::file_part,
            commands::send_file,
            commands::abandon_file,
        ])
        .run(tauri::generate_context!());
    match app {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confab-desktop: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Without a GPU (no DRM render node), WebKit's accelerated compositing shows a blank window
/// (as under Xvfb, or in many virtual machines): there the window composites in software.
///
/// Measured and not kept: also keeping GL out of the UI process (`GDK_GL=disable`,
/// `WEBKIT_DISABLE_DMABUF_RENDERER=1` and a render device file) saved 56 MB of idle RSS, but in
/// the same `make bench-desktop` pair a 1080p camera fell from 30 to 26 fps through WebCodecs,
/// and from 13 to 6 fps decoded here.
#[cfg(target_os = "linux")]
fn composite_in_software_without_a_gpu() {
    let has_gpu = std::fs::read_dir("/dev/dri").is_ok_and(|entries| {
        entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    });
    const SWITCH: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
    if !has_gpu && std::env::var_os(SWITCH).is_none() {
        // SAFETY: the first thing `run` does, before it starts any thread that could read the
        // environment (logging, GTK, WebKit, the async runtime).
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var(SWITCH, "1")
        };
    }
}
