//! The Tauri commands the webview calls: the front-end API's commands in, its events out over
//! a channel. Errors reach the webview as the sentence the user should see.

use confab_core::EngineEvent;
use confab_core::api::{Answer, Command};
use confab_media::MediaError;
use tauri::State;
use tauri::ipc::{Channel, InvokeBody, InvokeResponseBody, Request, Response};

use crate::meeting::{AppEvent, Desktop, RecentEntry, Startup, TEST_PATTERN_CAMERA};
use crate::preferences::{Preferences, new_meeting_on};

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

/// Creates a meeting, on the server the settings name or else hosted here; answers its link
/// (with the key).
#[tauri::command]
pub async fn host_meeting(desktop: State<'_, Desktop>) -> Result<String, String> {
    desktop.new_meeting().await.map(|link| link.to_string()).map_err(|e| e.to_string())
}

/// The settings page's: what is set, and the devices there are to choose from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SettingsPage {
    pub preferences: Preferences,
    /// Whether an access token is kept for the server set (the token itself never goes back
    /// to the window).
    pub access_token_kept: bool,
    pub microphones: DeviceList,
    pub speakers: DeviceList,
    pub cameras: DeviceList,
}

/// Devices of one kind, or why they cannot be listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceEntry>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceEntry {
    pub id: String,
    pub name: String,
}

impl DeviceList {
    fn with(mut self, device: DeviceEntry) -> Self {
        self.devices.push(device);
        self
    }

    fn of<T>(listed: Result<Vec<T>, MediaError>, entry: impl Fn(T) -> DeviceEntry) -> Self {
        match listed {
            Ok(devices) => Self { devices: devices.into_iter().map(entry).collect(), error: None },
            Err(e) => Self { devices: Vec::new(), error: Some(e.to_string()) },
        }
    }
}

#[tauri::command]
pub async fn settings(desktop: State<'_, Desktop>) -> Result<SettingsPage, String> {
    let preferences = desktop.preferences();
    let server = preferences.server.as_deref().and_then(|s| new_meeting_on(s).ok());
    let access_token_kept = match server {
        Some(link) => desktop.access_token(link.server()).await.is_some(),
        None => false,
    };
    // Asking the sound system and the cameras may take a moment: not on the async runtime.
    let listing = tauri::async_runtime::spawn_blocking(move || {
        let audio = |d: confab_media::AudioDevice| DeviceEntry { id: d.id, name: d.name };
        SettingsPage {
            preferences,
            access_token_kept,
            microphones: DeviceList::of(confab_media::microphones(), audio),
            speakers: DeviceList::of(confab_media::speakers(), audio),
            cameras: DeviceList::of(confab_media::cameras(), |c| DeviceEntry {
                id: c.id,
                name: c.name,
            })
            .with(DeviceEntry {
                id: TEST_PATTERN_CAMERA.into(),
                name: "Test pattern (no camera needed)".into(),
            }),
        }
    });
    listing.await.map_err(|e| e.to_string())
}

/// Keeps the settings; answers them as kept (blank fields cleared), or why they were refused.
/// `access_token`, for the server set: none leaves the one kept, a blank one forgets it.
#[tauri::command]
pub async fn save_settings(
    desktop: State<'_, Desktop>,
    preferences: Preferences,
    access_token: Option<String>,
) -> Result<Preferences, String> {
    let kept = desktop.set_preferences(preferences).map_err(|e| e.to_string())?;
    if let Some(token) = access_token {
        let token = Some(token.trim()).filter(|t| !t.is_empty());
        desktop.set_access_token(token).await.map_err(|e| e.to_string())?;
    }
    Ok(kept)
}

/// A display the user may share, for the picker.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScreenEntry {
    pub id: String,
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub primary: bool,
    /// The system's dialog chooses (the Wayland portal): no picker of ours before it.
    pub chosen_by_system: bool,
}

/// The displays that can be shared, the primary first; or why none can.
#[tauri::command]
pub async fn screens() -> Result<Vec<ScreenEntry>, String> {
    let listing = tauri::async_runtime::spawn_blocking(|| {
        confab_media::screens()?.displays().map(|displays| {
            displays
                .into_iter()
                .map(|d| ScreenEntry {
                    id: d.id,
                    name: d.name,
                    width: d.width,
                    height: d.height,
                    primary: d.primary,
                    chosen_by_system: d.chosen_by_system,
                })
                .collect()
        })
    });
    listing.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())
}

/// A small picture of display `id` as it is now: width u32, height u32 (little-endian), RGBA.
#[tauri::command]
pub async fn screen_thumbnail(id: String) -> Result<Response, String> {
    let taking =
        tauri::async_runtime::spawn_blocking(move || confab_media::screens()?.thumbnail(&id));
    let thumbnail = taking.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    let mut message = Vec::with_capacity(8 + thumbnail.rgba.len());
    message.extend_from_slice(&thumbnail.width.to_le_bytes());
    message.extend_from_slice(&thumbnail.height.to_le_bytes());
    message.extend_from_slice(&thumbnail.rgba);
    Ok(Response::new(message))
}

/// The window drew a picture of `track` that the engine decoded (see [`crate::media`]).
#[tauri::command]
pub fn picture_shown(desktop: State<'_, Desktop>, track: u32) {
    desktop.picture_shown(track);
}

/// Shares display `id` from the next time the screen is shared.
#[tauri::command]
pub fn choose_screen(desktop: State<'_, Desktop>, id: String) {
    desktop.choose_screen(id);
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

/// A file the person gave the window (chosen or dropped), `size` bytes called `name`, is to be
/// sent: answers the id its parts go to, with `file_part`.
#[tauri::command]
pub async fn begin_file(
    desktop: State<'_, Desktop>,
    name: String,
    size: u64,
) -> Result<String, String> {
    desktop.begin_file(&name, size).await.map_err(|e| e.to_string())
}

/// The next part of a file being sent: its bytes as the body, its id in the `confab-file`
/// header.
#[tauri::command]
pub async fn file_part(desktop: State<'_, Desktop>, request: Request<'_>) -> Result<(), String> {
    let id = request
        .headers()
        .get(FILE_HEADER)
        .and_then(|id| id.to_str().ok())
        .ok_or("a file part without its file's id")?;
    let InvokeBody::Raw(bytes) = request.body() else {
        return Err("a file part must be bytes".into());
    };
    desktop.file_part(id, bytes).map_err(|e| e.to_string())
}

/// The header that names the file a part belongs to.
const FILE_HEADER: &str = "confab-file";

/// File `id` came whole: it is offered to everyone connected.
#[tauri::command]
pub async fn send_file(desktop: State<'_, Desktop>, id: String) -> Result<(), String> {
    desktop.send_file(&id).await.map_err(|e| e.to_string())
}

/// The window could not read the whole of file `id`: what came of it is removed.
#[tauri::command]
pub fn abandon_file(desktop: State<'_, Desktop>, id: String) {
    desktop.abandon_file(&id);
}

#[tauri::command]
pub async fn leave_meeting(desktop: State<'_, Desktop>) -> Result<(), String> {
    desktop.leave().await;
    Ok(())
}
