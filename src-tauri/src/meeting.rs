//! The meeting the window is in, and the signaling service it hosts when the user starts a
//! meeting here (as `confab host` does).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use confab_core::api::{Answer, Command};
use confab_core::signaling_client::AccessToken;
use confab_core::tracks::{DeviceSources, TrackSources};
use confab_core::{
    Engine, EngineConfig, EngineError, EngineEvent, TrackFeed, TrackKind, TrackSet, setup,
};
use confab_media::{AudioSink, MediaError, Playout, Silent, Speaker, VoiceProcessing};
use confab_proto::{ClientKind, DisplayName, MeetingLink};
use tauri::ipc::{Channel, InvokeResponseBody};
use tokio::sync::Mutex;

use crate::media::{PicturesInFlight, WindowMedia, show_own_camera};
use crate::outgoing::{Outgoing, OutgoingError};
use crate::preferences::{Preferences, PreferencesFile, new_meeting_on};
use crate::recent::{Recent, RecentMeeting};
use crate::secrets::{Identity, KEYRING_DEADLINE};

/// What the user sees when something cannot be done; shown as it is.
#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    #[error("{0}")]
    Settings(String),
    #[error("cannot host a meeting on {listen}: {source}")]
    Listen { listen: SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Link(String),
    #[error("a display name is 1 to 64 visible characters")]
    Name,
    #[error("cannot make the certificate of meetings hosted here: {0}")]
    Certificate(String),
    #[error("the window may not ask for `{0}`")]
    NotForTheWindow(&'static str),
    #[error("you are not in a meeting")]
    NotInMeeting,
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot play sound: {0}")]
    Sound(#[from] confab_media::MediaError),
    #[error(transparent)]
    Outgoing(#[from] OutgoingError),
}

/// Where things go, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub download_dir: PathBuf,
    pub listen: SocketAddr,
}

impl Settings {
    pub fn from_env() -> Result<Self, DesktopError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let data_dir = var("CONFAB_DATA_DIR").map(PathBuf::from).or_else(setup::default_data_dir);
        let data_dir = data_dir.ok_or_else(|| {
            DesktopError::Settings("no place for data: set CONFAB_DATA_DIR or HOME".into())
        })?;
        let download_dir =
            var("CONFAB_DOWNLOAD_DIR").map_or_else(setup::default_download_dir, PathBuf::from);
        let listen = match var("CONFAB_LISTEN") {
            None => SocketAddr::from(([0, 0, 0, 0], 0)),
            Some(text) => text.to_string_lossy().parse().map_err(|_| {
                DesktopError::Settings(format!(
                    "CONFAB_LISTEN must be an address and port, like 0.0.0.0:8080: {text:?}"
                ))
            })?,
        };
        Ok(Self { data_dir, download_dir, listen })
    }
}

#[derive(Debug, Clone)]
struct Hosted {
    listening: SocketAddr,
    /// Its certificate (DER), which our own engine trusts.
    certificate: Vec<u8>,
}

#[derive(Debug)]
pub struct Desktop {
    settings: Settings,
    /// The web UI served to browsers that join a meeting hosted here.
    ui_dir: PathBuf,
    /// The signaling service hosted here, once it was started.
    hosted: Mutex<Option<Hosted>>,
    meeting: Mutex<Option<Engine>>,
    /// The meeting the window opens as it starts (from the command line), until the window
    /// asks; then where links opened later go.
    opening: std::sync::Mutex<Opening>,
    /// Loaded from the keyring in the background as the app starts (it may be slow, or wait).
    identity: tokio::sync::OnceCell<std::sync::Mutex<Identity>>,
    recent: Recent,
    preferences: PreferencesFile,
    /// The display the user picked to share (none yet: the primary).
    screen: Arc<std::sync::Mutex<Option<String>>>,
    /// The meeting's decoded pictures on their way to the window (the fallback video path).
    pictures: std::sync::Mutex<PicturesInFlight>,
    /// Files the window is sending, copied here for the engine to offer.
    outgoing: Outgoing,
    /// Access tokens set this session, by server: what the keyring holds, and without one
    /// the only copy.
    access_tokens: std::sync::Mutex<HashMap<String, AccessToken>>,
}

/// What the window learns as it starts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Startup {
    /// The meeting to open at once (from the command line).
    pub link: Option<String>,
    /// The display name last used here.
    pub name: Option<String>,
    /// Something the user should know (no keyring to keep things in).
    pub notice: Option<String>,
}

/// A recent meeting the start page can reopen.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecentEntry {
    pub link: String,
    pub title: String,
    pub server: String,
    pub opened_at: u64,
}

/// What the window hears of meetings opened from outside it (a `confab://` link clicked while
/// it runs).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AppEvent {
    /// Open this meeting (its `https://` form).
    Open { link: String },
}

#[derive(Default)]
enum Opening {
    #[default]
    Nothing,
    /// Not asked for yet.
    Waiting(MeetingLink),
    /// The window listens.
    Window(Channel<AppEvent>),
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nothing => f.write_str("Nothing"),
            Self::Waiting(link) => f.debug_tuple("Waiting").field(link).finish(),
            Self::Window(_) => f.write_str("Window"),
        }
    }
}

impl Desktop {
    pub fn new(settings: Settings, ui_dir: PathBuf, opening: Option<MeetingLink>) -> Self {
        let recent = Recent::in_dir(&settings.data_dir);
        let preferences = PreferencesFile::in_dir(&settings.data_dir);
        let outgoing =
            Outgoing::new(&settings.data_dir, confab_core::engine::DEFAULT_MAX_FILE_BYTES);
        // Copies a meeting of an earlier run was sending: nothing sends them any more.
        outgoing.clear();
        Self {
            outgoing,
            access_tokens: std::sync::Mutex::default(),
            preferences,
            screen: Arc::default(),
            pictures: std::sync::Mutex::default(),
            settings,
            ui_dir,
            hosted: Mutex::new(None),
            meeting: Mutex::new(None),
            opening: std::sync::Mutex::new(opening.map_or(Opening::Nothing, Opening::Waiting)),
            identity: tokio::sync::OnceCell::new(),
            recent,
        }
    }

    /// This install's identity, once loaded.
    async fn identity(&self) -> std::sync::MutexGuard<'_, Identity> {
        let identity = self
            .identity
            .get_or_init(|| async {
                std::sync::Mutex::new(Identity::load_in_time(&self.settings.data_dir).await)
            })
            .await;
        identity.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts loading the identity, so the window does not wait for it later.
    pub async fn load_identity(&self) {
        drop(self.identity().await);
    }

    /// The meetings this install was in whose keys it kept, newest first. The keyring is read
    /// on a thread of its own, within [`KEYRING_DEADLINE`]: it may have locked since.
    pub async fn recent_meetings(&self) -> Vec<RecentEntry> {
        let identity = self.identity().await.clone();
        let recent = self.recent.clone();
        let reading = tauri::async_runtime::spawn_blocking(move || {
            recent
                .list()
                .into_iter()
                .filter_map(|meeting| {
                    let link = meeting.link(&identity.meeting_key(&meeting.room)?)?;
                    let RecentMeeting { title, server, opened_at, .. } = meeting;
                    Some(RecentEntry { link: link.to_string(), title, server, opened_at })
                })
                .collect()
        });
        match tokio::time::timeout(KEYRING_DEADLINE, reading).await {
            Ok(Ok(meetings)) => meetings,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "recent meetings could not be read");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!("the keyring did not answer: no recent meetings shown");
                Vec::new()
            }
        }
    }

    /// Hosts a new meeting that the window opens as it starts; answers its link.
    pub async fn host_at_start(&self) -> Result<MeetingLink, DesktopError> {
        let link = self.host().await?;
        self.open(link.clone());
        Ok(link)
    }

    /// Opens the meeting at `link` in the window, now or as soon as it listens.
    pub fn open(&self, link: MeetingLink) {
        let mut opening = self.opening.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Opening::Window(window) = &*opening
            && window.send(AppEvent::Open { link: link.to_string() }).is_ok()
        {
            return;
        }
        *opening = Opening::Waiting(link);
    }

    /// The window listens for meetings to open on `window`; answers what it needs to start.
    pub async fn window_listens(&self, window: Channel<AppEvent>) -> Startup {
        let link = {
            let mut opening =
                self.opening.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match std::mem::replace(&mut *opening, Opening::Window(window)) {
                Opening::Waiting(link) => Some(link.to_string()),
                Opening::Nothing | Opening::Window(_) => None,
            }
        };
        let identity = self.identity().await;
        Startup { link, name: identity.name.clone(), notice: identity.problem.clone() }
    }

    /// A new meeting: on the signaling server set in the preferences, else on the one hosted
    /// here (started on first use).
    pub async fn new_meeting(&self) -> Result<MeetingLink, DesktopError> {
        match self.preferences.load().server {
            Some(server) => new_meeting_on(&server).map_err(DesktopError::Settings),
            None => self.host().await,
        }
    }

    pub fn preferences(&self) -> Preferences {
        self.preferences.load()
    }

    /// Keeps `preferences` (checked first); the devices are used from the next meeting on.
    pub fn set_preferences(&self, preferences: Preferences) -> Result<Preferences, DesktopError> {
        let checked = preferences.checked().map_err(DesktopError::Settings)?;
        self.preferences
            .save(&checked)
            .map_err(|e| DesktopError::Settings(format!("the settings could not be saved: {e}")))?;
        Ok(checked)
    }

    /// Keeps `token` for the signaling server the settings name (`None`: forgets the one kept),
    /// in the keyring and for this session.
    pub async fn set_access_token(&self, token: Option<&str>) -> Result<(), DesktopError> {
        let Some(server) = self.preferences.load().server else {
            return Err(DesktopError::Settings(
                "an access token is for a signaling server of yours: name one first".into(),
            ));
        };
        let server = new_meeting_on(&server).map_err(DesktopError::Settings)?.server().to_owned();
        let token = token.map(AccessToken::new).transpose().map_err(DesktopError::Settings)?;
        {
            let mut tokens =
                self.access_tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match &token {
                Some(token) => tokens.insert(server.clone(), token.clone()),
                None => tokens.remove(&server),
            };
        }
        let identity = self.identity().await.clone();
        let kept = tauri::async_runtime::spawn_blocking(move || {
            identity.keep_access_token(&server, token.as_ref().map(AccessToken::as_str))
        });
        let session_only = |why: String| {
            DesktopError::Settings(format!("the access token is kept for this session only: {why}"))
        };
        match tokio::time::timeout(KEYRING_DEADLINE, kept).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(session_only(format!("the keyring refused it ({e})"))),
            Ok(Err(e)) => Err(session_only(e.to_string())),
            Err(_) => Err(session_only("the keyring did not answer (is it locked?)".into())),
        }
    }

    /// The access token kept for the signaling server at `server`, if any.
    pub async fn access_token(&self, server: &str) -> Option<AccessToken> {
        let set = self
            .access_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(server)
            .cloned();
        if set.is_some() {
            return set;
        }
        let (identity, server) = (self.identity().await.clone(), server.to_owned());
        // A keyring that does not answer (locked) means no token, not a join that never starts.
        let kept = tauri::async_runtime::spawn_blocking(move || identity.access_token(&server));
        let kept = tokio::time::timeout(KEYRING_DEADLINE, kept).await.ok()?.ok().flatten()?;
        AccessToken::new(&kept).ok()
    }

    /// The window drew one of `track`'s decoded pictures.
    pub fn picture_shown(&self, track: u32) {
        self.pictures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).shown(track);
    }

    /// The display to share from now on.
    pub fn choose_screen(&self, id: String) {
        *self.screen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(id);
    }

    /// Where the hosted service listens: `listen`, or when that leaves the port open, the port
    /// it had last time if it is free, so that links to meetings hosted here keep working after
    /// a restart.
    async fn bind_hosting(
        &self,
        listen: SocketAddr,
    ) -> Result<tokio::net::TcpListener, DesktopError> {
        let bind = |at: SocketAddr| async move {
            tokio::net::TcpListener::bind(at)
                .await
                .map_err(|source| DesktopError::Listen { listen: at, source })
        };
        if let Some(port) = self.last_hosting_port().filter(|_| listen.port() == 0)
            && let Ok(listener) = bind(SocketAddr::new(listen.ip(), port)).await
        {
            return Ok(listener);
        }
        bind(listen).await
    }

    fn last_hosting_port(&self) -> Option<u16> {
        let text = std::fs::read_to_string(self.hosting_port_file()).ok()?;
        text.trim().parse().ok()
    }

    fn hosting_port_file(&self) -> PathBuf {
        self.settings.data_dir.join("hosting").join("port")
    }

    fn remember_hosting_port(&self, port: u16) {
        let file = self.hosting_port_file();
        let written = file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&file, port.to_string()));
        if let Err(e) = written {
            tracing::warn!(error = %e, "the hosting port could not be kept for next time");
        }
    }

    /// A new meeting on the signaling service hosted here (started on first use).
    pub async fn host(&self) -> Result<MeetingLink, DesktopError> {
        let listening = self.start_hosting().await?;
        setup::hosted_meeting_link(listening, true).map_err(DesktopError::Link)
    }

    /// Whether `link`'s meeting was hosted here: on this machine's address, at the port the
    /// hosted service last had.
    fn hosted_here(&self, link: &MeetingLink) -> bool {
        let Some(port) = self.last_hosting_port() else { return false };
        let here = SocketAddr::new(self.settings.listen.ip(), port);
        setup::reachable_address(here)
            .is_ok_and(|address| link.server() == format!("https://{address}"))
    }

    /// The signaling service hosted here, started on first use; answers where it listens.
    async fn start_hosting(&self) -> Result<SocketAddr, DesktopError> {
        let mut hosted = self.hosted.lock().await;
        let listening = match &*hosted {
            Some(hosted) => hosted.listening,
            None => {
                let listen = self.settings.listen;
                let listener = self.bind_hosting(listen).await?;
                let listening = listener
                    .local_addr()
                    .map_err(|source| DesktopError::Listen { listen, source })?;
                self.remember_hosting_port(listening.port());
                // Browsers give pages on a LAN address over plain http no camera, microphone or
                // WebCrypto: the service hosted here speaks TLS with a certificate of its own.
                let address = setup::reachable_address(listening).map_err(DesktopError::Link)?;
                let (tls, certificate) =
                    crate::tls::hosted_certificate(&self.settings.data_dir, address.ip())
                        .map_err(DesktopError::Certificate)?;
                let config = confab_signaling::Config {
                    ui_dir: self.ui_dir.clone(),
                    tls: Some(tls),
                    ..Default::default()
                };
                tauri::async_runtime::spawn(async move {
                    let forever = std::future::pending();
                    if let Err(e) = confab_signaling::run(listener, config, forever).await {
                        tracing::error!(error = %e, "the hosted signaling service stopped");
                    }
                });
                *hosted = Some(Hosted { listening, certificate });
                listening
            }
        };
        Ok(listening)
    }

    /// Joins the meeting at `link` as `name`, leaving any meeting the window was in; its events
    /// go to `events` and the peers' video to `video` until it ends.
    pub async fn join(
        &self,
        link: &str,
        name: &str,
        events: Channel<EngineEvent>,
        video: Channel<InvokeResponseBody>,
        decoded_in_window: Vec<String>,
    ) -> Result<(), DesktopError> {
        let link: MeetingLink = link.parse().map_err(|e| DesktopError::Link(format!("{e}")))?;
        let name = DisplayName::new(name).map_err(|_| DesktopError::Name)?;
        // A meeting this app hosted before a restart (reopened from the recent list, or its link
        // clicked) is hosted again, at the same address, so its link works for everyone.
        // Without it the notes still open, and the others cannot join.
        if self.hosted.lock().await.is_none()
            && self.hosted_here(&link)
            && let Err(e) = self.start_hosting().await
        {
            tracing::warn!(error = %e, "a meeting hosted here before could not be hosted again");
        }
        let data_dir = self.settings.data_dir.clone();
        let author_id = self.remember(&link, &name).await;
        let access_token = self.access_token(link.server()).await;
        let recent = self.recent.clone();
        let room = link.room().as_str().to_owned();
        let tell = move |event: EngineEvent| {
            if let EngineEvent::Title { text } = &event
                && let Err(e) = recent.titled(&room, text)
            {
                tracing::warn!(error = %e, "the recent meetings list could not be written");
            }
            if let Err(e) = events.send(event) {
                tracing::warn!(error = %e, "an event could not reach the window");
            }
        };
        let tell = Arc::new(tell);
        // What the speaker plays is taken out of what the microphone hears.
        let preferences = self.preferences.load();
        let vp8_in_window = decoded_in_window.iter().any(|c| c.eq_ignore_ascii_case("video/VP8"));
        let sources = ChosenSources {
            screen: self.screen.clone(),
            microphone: preferences.microphone,
            camera: preferences.camera,
            echo: VoiceProcessing::default(),
            // Our camera's tile shows what the peers are sent, where the window decodes it.
            preview: vp8_in_window.then(|| video.clone()),
        };
        let speaker = Speaker::open(preferences.speaker.as_deref(), Some(sources.echo.clone()));
        let (speaker, speaker_problem) = match speaker {
            Ok(speaker) => (Box::new(speaker) as Box<dyn AudioSink>, None),
            Err(e) => (Box::new(Silent) as Box<dyn AudioSink>, Some(e.to_string())),
        };
        let playout = Arc::new(Playout::start(speaker)?);
        let report = tell.clone();
        let report_error: Arc<dyn Fn(String) + Send + Sync> =
            Arc::new(move |message| report(EngineEvent::Error { message }));
        // Track numbers start again with each meeting: so do their pictures' counts.
        let pictures = PicturesInFlight::default();
        *self.pictures.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = pictures.clone();
        let media = WindowMedia::new(
            video,
            playout,
            speaker_problem,
            report_error,
            decoded_in_window,
            pictures,
        );
        let config = EngineConfig {
            link,
            name,
            client: ClientKind::Desktop,
            app_version: env!("CARGO_PKG_VERSION").into(),
            data_dir,
            download_dir: self.settings.download_dir.clone(),
            max_file_bytes: confab_core::engine::DEFAULT_MAX_FILE_BYTES,
            auto_accept_files: false,
            // The notes open and take edits even with the server down.
            work_offline: true,
            author_id,
            // Every address, as they change: connections restart ICE on a new network.
            bind: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            relay_only: false,
            tracks: TrackSet::new(),
            sources: Arc::new(sources),
            incoming: Some(Arc::new(media)),
            trusted_certificate: self.hosted.lock().await.as_ref().map(|h| h.certificate.clone()),
            access_token,
        };
        let (engine, mut engine_events) = Engine::start(config)?;
        if let Some(previous) = self.meeting.lock().await.replace(engine) {
            previous.leave();
            self.outgoing.clear();
        }
        tauri::async_runtime::spawn(async move {
            while let Some(event) = engine_events.recv().await {
                tell(event);
            }
        });
        Ok(())
    }

    /// Keeps the name, the meeting's key and the meeting in the recent list (on a thread of
    /// their own: a keyring may be slow; problems are only logged, none stops the meeting);
    /// answers the author id.
    async fn remember(&self, link: &MeetingLink, name: &DisplayName) -> String {
        let mut keeping = {
            let mut identity = self.identity().await;
            identity.name = Some(name.to_string());
            identity.clone()
        };
        let (name, room, key) =
            (name.to_string(), link.room().as_str().to_owned(), link.key().as_str().to_owned());
        let author_id = keeping.author_id.clone();
        tauri::async_runtime::spawn_blocking(move || {
            let kept = keeping.set_name(&name).and_then(|()| keeping.keep_meeting_key(&room, &key));
            if let Err(e) = kept {
                tracing::warn!(error = %e, "the keyring did not take the name or the meeting key");
            }
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        if let Err(e) = self.recent.opened(link, now) {
            tracing::warn!(error = %e, "the recent meetings list could not be written");
        }
        author_id
    }

    /// Carries out a command of the window's. Commands that name files on this machine are not
    /// the webview's to give: a page that ran a script it should not could otherwise send any
    /// file to the meeting, or overwrite one.
    pub async fn apply(&self, command: Command) -> Result<Answer, DesktopError> {
        if matches!(command, Command::SendFile { .. } | Command::Export { .. } | Command::Quit {}) {
            return Err(DesktopError::NotForTheWindow(command.name()));
        }
        let name = command.name();
        let started = std::time::Instant::now();
        let answer = self.engine().await?.apply(command).await?;
        tracing::debug!(command = name, took_us = started.elapsed().as_micros(), "answered");
        Ok(answer)
    }

    pub async fn leave(&self) {
        if let Some(engine) = self.meeting.lock().await.take() {
            engine.leave();
            self.outgoing.clear();
        }
    }

    async fn engine(&self) -> Result<Engine, DesktopError> {
        self.meeting.lock().await.clone().ok_or(DesktopError::NotInMeeting)
    }

    /// A file the person gave the window, `size` bytes called `name`, is about to come in
    /// parts; answers the id the parts go to.
    pub async fn begin_file(&self, name: &str, size: u64) -> Result<String, DesktopError> {
        self.engine().await?;
        Ok(self.outgoing.begin(name, size)?)
    }

    pub fn file_part(&self, id: &str, bytes: &[u8]) -> Result<(), DesktopError> {
        Ok(self.outgoing.append(id, bytes)?)
    }

    /// File `id` came whole: it is offered to everyone connected.
    pub async fn send_file(&self, id: &str) -> Result<(), DesktopError> {
        let engine = match self.engine().await {
            Ok(engine) => engine,
            Err(e) => {
                self.outgoing.abandon(id);
                return Err(e);
            }
        };
        let path = self.outgoing.finish(id)?;
        if let Err(e) = engine.send_file(&path).await {
            self.outgoing.discard(&path);
            return Err(e.into());
        }
        Ok(())
    }

    pub fn abandon_file(&self, id: &str) {
        self.outgoing.abandon(id);
    }
}

/// The camera id of the synthetic camera (a moving test pattern), offered beside the real ones:
/// for trying the app without a camera, and for its tests.
pub const TEST_PATTERN_CAMERA: &str = "test-pattern";

/// The devices the user chose: the screen as picked for each share, the microphone and camera
/// as the preferences were when the meeting was joined.
struct ChosenSources {
    screen: Arc<std::sync::Mutex<Option<String>>>,
    microphone: Option<String>,
    camera: Option<String>,
    echo: VoiceProcessing,
    /// Where our own camera is shown, if the window can decode it.
    preview: Option<Channel<InvokeResponseBody>>,
}

impl std::fmt::Debug for ChosenSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChosenSources")
            .field("microphone", &self.microphone)
            .field("camera", &self.camera)
            .finish_non_exhaustive()
    }
}

impl TrackSources for ChosenSources {
    fn open(&self, kind: TrackKind) -> Result<TrackFeed, MediaError> {
        let feed =
            if kind == TrackKind::Camera && self.camera.as_deref() == Some(TEST_PATTERN_CAMERA) {
                TrackFeed::synthetic_camera()
            } else {
                let screen =
                    self.screen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                let devices = DeviceSources {
                    screen,
                    microphone: self.microphone.clone(),
                    camera: self.camera.clone(),
                    echo: self.echo.clone(),
                };
                devices.open(kind)
            }?;
        if kind == TrackKind::Camera
            && let Some(window) = &self.preview
        {
            show_own_camera(window.clone(), &feed);
        }
        Ok(feed)
    }
}
