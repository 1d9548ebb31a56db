//! The Tauri commands the webview calls: the front-end API's commands in, its events out over
//! a channel. Errors reach the webview as the sentence the user should see.

use confab_core::EngineEvent;
use confab_core::api::{Answer, Command};
use tauri::State;
use tauri::ipc::{Channel, InvokeResponseBody};

use crate::meeting::{AppEvent, Desktop, RecentEntry, Startup};

/// The window is ready: answers the meeting to open at once (from the command line), the name
/// last used, and anything to tell; meetings opened later (a `confab://` link clicked) arrive
/// on `opened`.
#[tauri::command]
pub async fn startup(
    desktop: State<'_, Desktop>,
    opened: Channel<AppEvent>,
) -> Result<Startup, String> {
    // `make bench-desktop` times the cold start to this line.
    tracing::info!("the window asked for its start page");
    Ok(desktop.window_listens(opened).await)
}

/// The meetings this install was in, newest first, to reopen (their notes open offline).
#[tauri::command]
pub async fn recent_meetings(desktop: State<'_, Desktop>) -> Result<Vec<RecentEntry>, String> {
    Ok(desktop.recent_meetings().await)
}

/// Creates a meeting on the signaling service hosted here; answers its link (with the key).
#[tauri::command]
pub async fn host_meeting(desktop: State<'_, Desktop>) -> Result<String, String> {
    desktop.host().await.map(|link| link.to_string()).map_err(|e| e.to_string())
}

/// Joins the meeting at `link`; its events arrive on `events`, the peers' video on `video`
/// (see [`crate::media`]): encoded in the codecs (MIME types) in `decoded_here`, which the
/// webview decodes itself, as pictures otherwise.
#[tauri::command]
pub async fn join_meeting(
    desktop: State<'_, Desktop>,
    link: String,
    name: String,
    events: Channel<EngineEvent>,
    video: Channel<InvokeResponseBody>,
    decoded_here: Vec<String>,
) -> Result<(), String> {
    desktop.join(&link, &name, events, video, decoded_here).await.map_err(|e| e.to_string())
}

/// Carries out one command of the front-end API in the meeting.
#[tauri::command]
pub async fn meeting_command(
    desktop: State<'_, Desktop>,
    command: Command,
) -> Result<Answer, String> {
    desktop.apply(command).await.map_err(|e| e.to_string())
}

#[tauri::command]
pub async fn leave_meeting(desktop: State<'_, Desktop>) -> Result<(), String> {
    desktop.leave().await;
    Ok(())
}
