//! The driver of the meeting: one task that owns the sockets (the signaling client and one
//! [`PeerLink`] per connection), the store and the timers. It feeds what they report into the
//! [`Mesh`], which decides, and carries the mesh's outputs out, in order. Front ends drive it
//! through [`Engine`].
//!
//! An output to persist is awaited (on a blocking thread) before the outputs after it, so a
//! local edit is on disk before it is reported (it goes to the peers first, so a slow disk never
//! delays them), and changes from a peer are on disk before they are passed on to the other
//! peers or reported.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use automerge::ActorId;
use confab_proto::{ClientKind, DisplayName, MeetingLink};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tracing::{Instrument, debug, warn};

use crate::api::{self, Answer, EngineError, EngineEvent, MediaState};
use crate::feed::TrackFeed;
use crate::mesh::{self, Done, Input, LinkCommand, LinkId, Mesh, MeshConfig, Output};
use crate::peer::{self, PeerEvent, PeerLink, PeerSetup};
use crate::signaling_client::{self, Signaling, SignalingConfig, SignalingEvent};
use crate::store::{ChangeLog, StoreError};
use crate::tracks::{self, IncomingMedia, TrackKind, TrackSet, TrackSources};
use crate::transfer::{self, FileInfo};

/// How long leaving waits for every peer to acknowledge our `bye`.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The default for [`EngineConfig::max_file_bytes`]: 2 GiB (a browser takes less: it holds a
/// received file in memory).
pub const DEFAULT_MAX_FILE_BYTES: u64 = confab_proto::limits::NATIVE_MAX_FILE_BYTES;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub link: MeetingLink,
    pub name: DisplayName,
    pub client: ClientKind,
    pub app_version: String,
    /// Where meetings' documents are kept (`DATA_DIR/rooms/ROOM/`).
    pub data_dir: PathBuf,
    /// Where received files are saved.
    pub download_dir: PathBuf,
    /// Files larger than this are neither offered nor accepted.
    pub max_file_bytes: u64,
    /// Accept every file offered (within the limit) without asking the front end.
    pub auto_accept_files: bool,
    /// Start and keep retrying even if the signaling server cannot be reached at first (the
    /// notes work offline); otherwise an unreachable server ends the engine at once.
    pub work_offline: bool,
    /// Stable per-install id written as the author of chat messages.
    pub author_id: String,
    /// The local address ICE binds to: the wildcard for every address this machine has, as
    /// they change (see [`crate::peer::PeerSetup::bind`]).
    pub bind: IpAddr,
    /// Connect only through the TURN relays signaling hands out, never directly: the peers
    /// then never learn each other's addresses (and a network that allows nothing else works).
    pub relay_only: bool,
    /// The tracks sent from the start (the rest are turned on later, see [`Engine::set_media`]
    /// and [`Engine::set_track`]).
    pub tracks: TrackSet,
    /// Where a track a front end turns on comes from.
    pub sources: Arc<dyn TrackSources>,
    /// Where the peers' tracks go; `None` takes none (they are declined, and cost nothing).
    pub incoming: Option<Arc<dyn IncomingMedia>>,
    /// A certificate the signaling client trusts besides the public roots (DER): the
    /// self-signed one of a service this program hosts.
    pub trusted_certificate: Option<Vec<u8>>,
    /// For a server that asks one of whoever opens a meeting on it.
    pub access_token: Option<crate::signaling_client::AccessToken>,
}

type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

enum Command {
    /// A command for the mesh, answered once its changes are stored.
    Mesh(mesh::Command, Reply<Done>),
    Markdown(oneshot::Sender<String>),
    Notes(oneshot::Sender<String>),
    Leave,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mesh(command, _) => write!(f, "{command:?}"),
            Self::Markdown(_) => f.write_str("Markdown"),
            Self::Notes(_) => f.write_str("Notes"),
            Self::Leave => f.write_str("Leave"),
        }
    }
}

/// The handle a front end holds.
#[derive(Debug, Clone)]
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
    max_file_bytes: u64,
    /// What every connection sends; each watches it.
    tracks: Arc<watch::Sender<TrackSet>>,
    sources: Arc<dyn TrackSources>,
    /// One change of the track set at a time, so announcements go out in the order of changes.
    media_changes: Arc<Mutex<()>>,
}

impl Engine {
    /// Opens the meeting's stored document and joins the meeting.
    pub fn start(
        config: EngineConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<EngineEvent>), EngineError> {
        let dir = config.data_dir.join("rooms").join(config.link.room().as_str());
        // A fresh actor each run: local edits reach the peers before the disk (see the mesh's
        // `edit`), so after a crash an old actor's numbers must never be used again.
        let (log, doc) = ChangeLog::open(&dir, ActorId::random())?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::unbounded_channel();
        let max_file_bytes = config.max_file_bytes;
        let mesh_config = MeshConfig {
            name: config.name.to_string(),
            author_id: config.author_id.clone(),
            max_file_bytes,
            auto_accept_files: config.auto_accept_files,
            download_dir: config.download_dir.clone(),
            media: tracks::media_of(&config.tracks),
        };
        let (mesh, first) = Mesh::new(mesh_config, doc, rand::random());
        let (tracks, watched) = watch::channel(config.tracks.clone());
        let sources = config.sources.clone();
        // The caller's span (a participant's, say) labels everything the engine logs.
        tokio::spawn(run(config, mesh, first, log, watched, command_rx, events).in_current_span());
        let engine = Self {
            commands,
            max_file_bytes,
            tracks: Arc::new(tracks),
            sources,
            media_changes: Arc::new(Mutex::new(())),
        };
        Ok((engine, event_rx))
    }

    async fn ask(&self, command: mesh::Command) -> Result<Done, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Mesh(command, tx)).map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Posts a chat message; returns once it is stored.
    pub async fn say(&self, text: &str) -> Result<(), EngineError> {
        self.ask(mesh::Command::Say(text.to_owned())).await.map(drop)
    }

    /// Edits the notes: deletes `delete` UTF-16 units at UTF-16 position `pos` (as editors
    /// count), then inserts `text` there; returns once the edit is stored.
    pub async fn splice_notes(
        &self,
        pos: usize,
        delete: usize,
        text: &str,
    ) -> Result<(), EngineError> {
        let command = mesh::Command::Splice { pos, delete, text: text.to_owned() };
        self.ask(command).await.map(drop)
    }

    pub async fn set_title(&self, title: &str) -> Result<(), EngineError> {
        self.ask(mesh::Command::SetTitle(title.to_owned())).await.map(drop)
    }

    /// Title, notes and chat transcript as Markdown.
    pub async fn markdown(&self) -> Result<String, EngineError> {
        self.read(Command::Markdown).await
    }

    /// The notes as they are now.
    pub async fn notes(&self) -> Result<String, EngineError> {
        self.read(Command::Notes).await
    }

    async fn read(
        &self,
        make: impl FnOnce(oneshot::Sender<String>) -> Command,
    ) -> Result<String, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Carries out a front end's [`api::Command`]; returns once its changes are stored.
    pub async fn apply(&self, command: api::Command) -> Result<Answer, EngineError> {
        use api::Command as C;
        let applied = |done: Result<(), EngineError>| done.map(|()| Answer::Applied {});
        match command {
            C::Say { text } => applied(self.say(&text).await),
            C::Notes {} => Ok(Answer::Notes { text: self.notes().await? }),
            C::NotesInsert { pos, text } => applied(self.splice_notes(pos, 0, &text).await),
            C::NotesAppend { text } => {
                applied(self.ask(mesh::Command::Append(text)).await.map(drop))
            }
            C::NotesDelete { pos, len } => applied(self.splice_notes(pos, len, "").await),
            C::Title { text } => applied(self.set_title(&text).await),
            C::Cursor { selection } => {
                applied(self.ask(mesh::Command::Cursor(selection)).await.map(drop))
            }
            C::SendFile { path } => Ok(Answer::Offered { id: self.send_file(&path).await? }),
            C::AcceptFile { id } => applied(self.accept_file(&id).await),
            C::DeclineFile { id } => applied(self.decline_file(&id).await),
            C::CancelFile { id } => applied(self.cancel_file(&id).await),
            C::SetMedia(media) => applied(self.set_media(media).await),
            C::Markdown {} => Ok(Answer::Markdown { markdown: self.markdown().await? }),
            C::Export { path } => {
                let markdown = self.markdown().await?;
                tokio::fs::write(&path, markdown).await.map_err(|e| {
                    EngineError::Refused(format!("cannot write {}: {e}", path.display()))
                })?;
                Ok(Answer::Exported { path })
            }
            C::Quit {} => {
                self.leave();
                Ok(Answer::Applied {})
            }
        }
    }

    /// Offers a file to everyone connected; returns the transfer id. The file is read once here
    /// to hash it, then again for each peer that accepts.
    pub async fn send_file(&self, path: &Path) -> Result<String, EngineError> {
        let info: FileInfo = transfer::inspect(path, self.max_file_bytes).await?;
        match self.ask(mesh::Command::OfferFile(info)).await? {
            Done::Offered(id) => Ok(id),
            Done::Applied => Err(EngineError::Refused("the file was not offered".into())),
        }
    }

    /// Accepts a file a peer offered (not needed with `auto_accept_files`).
    pub async fn accept_file(&self, id: &str) -> Result<(), EngineError> {
        self.ask(mesh::Command::AcceptFile(id.to_owned())).await.map(drop)
    }

    /// Declines a file a peer offered; the peer hears why.
    pub async fn decline_file(&self, id: &str) -> Result<(), EngineError> {
        self.ask(mesh::Command::DeclineFile(id.to_owned())).await.map(drop)
    }

    /// Stops a transfer, sending or receiving, with every peer involved.
    pub async fn cancel_file(&self, id: &str) -> Result<(), EngineError> {
        self.ask(mesh::Command::CancelFile(id.to_owned())).await.map(drop)
    }

    /// Sends what `media` says (microphone, camera, screen): a kind turned on is opened from
    /// [`EngineConfig::sources`], one turned off stops; every connection renegotiates, and
    /// every peer is told. (`screen_track` is the engine's to set.) If a source cannot be
    /// opened, the kinds before it are changed and the error says which failed.
    pub async fn set_media(&self, media: MediaState) -> Result<(), EngineError> {
        let _one_at_a_time = self.media_changes.lock().await;
        let mut opened = Ok(());
        for kind in TrackKind::ALL {
            let on = kind.in_media(&media);
            if on == self.tracks.borrow().contains_key(&kind) {
                continue;
            }
            if !on {
                self.tracks.send_modify(|set| drop(set.remove(&kind)));
                continue;
            }
            // Opening a device can take a while: not on an async worker.
            let sources = self.sources.clone();
            let feed = tokio::task::spawn_blocking(move || sources.open(kind))
                .await
                .map_err(|_| EngineError::Stopped)?;
            match feed {
                Ok(feed) => self.tracks.send_modify(|set| drop(set.insert(kind, feed))),
                Err(e) => {
                    opened = Err(EngineError::Media(e));
                    break;
                }
            }
        }
        self.announce_tracks().await?;
        opened
    }

    /// Sends `feed` as our track of `kind` to every peer (replacing the one sent before), or
    /// stops sending that kind (`None`); every connection renegotiates, and every peer is told.
    pub async fn set_track(
        &self,
        kind: TrackKind,
        feed: Option<TrackFeed>,
    ) -> Result<(), EngineError> {
        let _one_at_a_time = self.media_changes.lock().await;
        self.tracks.send_modify(|set| {
            match feed {
                Some(feed) => set.insert(kind, feed),
                None => set.remove(&kind),
            };
        });
        self.announce_tracks().await
    }

    async fn announce_tracks(&self) -> Result<(), EngineError> {
        let media = tracks::media_of(&self.tracks.borrow());
        self.ask(mesh::Command::SetMedia(media)).await.map(drop)
    }

    pub fn leave(&self) {
        let _ = self.commands.send(Command::Leave);
    }
}

/// What [`Driver::carry`] does with the outputs after one that could not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterStoreError {
    Stop,
    GoOn,
}

/// The sockets and files around the mesh.
struct Driver {
    config: EngineConfig,
    mesh: Mesh,
    /// `None` only while a write is under way on a blocking thread.
    log: Option<ChangeLog>,
    signaling: Signaling,
    links: HashMap<LinkId, PeerLink>,
    link_events: mpsc::UnboundedSender<(LinkId, PeerEvent)>,
    events: mpsc::UnboundedSender<EngineEvent>,
    /// What each new connection is to send.
    tracks: watch::Receiver<TrackSet>,
    /// When the mesh wants [`Input::Flush`] (Unix ms).
    flush_at: Option<i64>,
    /// TURN relays checked already (see [`Driver::check_relays`]).
    relays_checked: std::collections::HashSet<String>,
}

async fn run(
    config: EngineConfig,
    mesh: Mesh,
    first: Vec<Output>,
    log: ChangeLog,
    tracks: watch::Receiver<TrackSet>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<EngineEvent>,
) {
    let (signaling, mut signaling_events) = signaling_client::spawn(SignalingConfig {
        link: config.link.clone(),
        name: config.name.clone(),
        client: config.client,
        app_version: config.app_version.clone(),
        keep_trying: config.work_offline,
        trusted_certificate: config.trusted_certificate.clone(),
        access_token: config.access_token.clone(),
    });
    let (link_events, mut link_rx) = mpsc::unbounded_channel();
    let mut network = crate::network::watch();
    let mut driver = Driver {
        config,
        mesh,
        log: Some(log),
        signaling,
        links: HashMap::new(),
        link_events,
        events,
        tracks,
        flush_at: None,
        relays_checked: std::collections::HashSet::new(),
    };
    let _ = driver.carry(first, AfterStoreError::GoOn).await;
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None | Some(Command::Leave) => break,
                Some(Command::Markdown(reply)) => {
                    let _ = reply.send(driver.mesh.doc().to_markdown());
                }
                Some(Command::Notes(reply)) => {
                    let _ = reply.send(driver.mesh.doc().notes());
                }
                Some(Command::Mesh(command, reply)) => {
                    let started = std::time::Instant::now();
                    let (result, outputs) = driver.mesh.command(now_ms(), command);
                    let decided = started.elapsed();
                    let stored = driver.carry(outputs, AfterStoreError::Stop).await;
                    // Where a keystroke's time goes: the document's work, then the disk and the
                    // sends.
                    debug!(
                        decide_us = decided.as_micros(),
                        carry_us = (started.elapsed() - decided).as_micros(),
                        "a front end's command carried out"
                    );
                    let _ = reply.send(stored.map_err(EngineError::from).and(result));
                }
            },
            Some(event) = signaling_events.recv() => match event {
                SignalingEvent::Ended { reason, code } => {
                    driver.emit(EngineEvent::Ended { reason, code });
                    break;
                }
                SignalingEvent::Refused { code, message } => {
                    warn!(%code, %message, "signaling refused a message");
                }
                event => {
                    if let SignalingEvent::Joined { ice_servers, .. } = &event {
                        driver.check_relays(ice_servers);
                    }
                    let outputs = driver.mesh.handle(now_ms(), Input::Signaling(event));
                    let _ = driver.carry(outputs, AfterStoreError::GoOn).await;
                }
            },
            _ = sleep_until_ms(driver.flush_at), if driver.flush_at.is_some() => {
                driver.flush_at = None;
                let outputs = driver.mesh.handle(now_ms(), Input::Flush);
                let _ = driver.carry(outputs, AfterStoreError::GoOn).await;
            }
            Some(()) = network.recv() => {
                driver.signaling.check_alive();
                let outputs = driver.mesh.handle(now_ms(), Input::NetworkChanged);
                let _ = driver.carry(outputs, AfterStoreError::GoOn).await;
            }
            Some((link, event)) = link_rx.recv() => {
                if matches!(event, PeerEvent::Closed | PeerEvent::Failed(_) | PeerEvent::Intercepted) {
                    // The connection's task has ended.
                    driver.links.remove(&link);
                }
                let outputs = driver.mesh.handle(now_ms(), Input::Link { link, event });
                let _ = driver.carry(outputs, AfterStoreError::GoOn).await;
            }
        }
    }
    driver.signaling.leave();
    // Each connection says bye; wait for them (briefly) so the peers hear we left.
    let mut leaving: HashSet<LinkId> = driver.links.keys().copied().collect();
    for &link in &leaving {
        driver.tell(link, LinkCommand::Leave);
    }
    let _ = tokio::time::timeout(LEAVE_TIMEOUT, async {
        while !leaving.is_empty() {
            match link_rx.recv().await {
                Some((link, PeerEvent::Closed | PeerEvent::Failed(_))) => leaving.remove(&link),
                Some(_) => false,
                None => break,
            };
        }
    })
    .await;
}

impl Driver {
    fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
    }

    /// Checks in the background that each TURN relay of a welcome takes its credentials, and
    /// tells the person when one does not (see [`crate::turn_probe`]). Once per relay: a rejoin
    /// hands out the same relays with credentials made the same way, and each check holds an
    /// allocation for a moment, which a relay's per-user quota counts.
    fn check_relays(&mut self, ice_servers: &[confab_proto::IceServer]) {
        for server in ice_servers {
            let (Some(username), Some(credential)) = (&server.username, &server.credential) else {
                continue;
            };
            for url in &server.urls {
                let Some(address) = crate::turn_probe::udp_relay_address(url) else { continue };
                if !self.relays_checked.insert(url.clone()) {
                    continue;
                }
                let (url, username, credential) =
                    (url.clone(), username.clone(), credential.clone());
                let events = self.events.clone();
                tokio::spawn(async move {
                    match crate::turn_probe::probe(&address, &username, &credential).await {
                        Ok(()) => debug!("a relay takes this meeting's credentials"),
                        Err(problem) => {
                            warn!(?problem, "a relay cannot be used");
                            let message = problem.explain(&url);
                            let _ = events.send(EngineEvent::Error { message });
                        }
                    }
                });
            }
        }
    }

    /// Carries out the mesh's outputs in order. A failure to store changes is reported and
    /// returned; the changes wait in the store to be written with the next ones. After a local
    /// edit that could not be stored nothing more is done (it is not reported: the front end
    /// hears it failed, and the peers, who have it, keep it for us); changes from a peer are
    /// passed on regardless, since others hold them already.
    async fn carry(
        &mut self,
        outputs: Vec<Output>,
        after_error: AfterStoreError,
    ) -> Result<(), StoreError> {
        let mut stored = Ok(());
        for output in outputs {
            match output {
                Output::Persist(changes) => {
                    if let Err(e) = self.persist(changes).await {
                        warn!(error = %e, "cannot store the notes");
                        self.emit(EngineEvent::Error {
                            message: format!("cannot store the notes: {e}"),
                        });
                        if after_error == AfterStoreError::Stop {
                            return Err(e);
                        }
                        stored = Err(e);
                    }
                }
                Output::Signal { to, data } => self.signaling.signal(to, data.into()),
                Output::Link { link, command } => self.tell(link, command),
                Output::Event(event) => self.emit(event),
                Output::FlushAt(at) => {
                    self.flush_at = Some(self.flush_at.map_or(at, |t| t.min(at)))
                }
            }
        }
        stored
    }

    /// Writes changes, and compacts the store when its log has grown.
    async fn persist(&mut self, changes: Vec<u8>) -> Result<(), StoreError> {
        self.with_log(move |log| log.append(&changes)).await?;
        if self.log.as_ref().is_some_and(ChangeLog::wants_compaction) {
            let snapshot = self.mesh.save();
            self.with_log(move |log| log.compact(&snapshot)).await?;
        }
        Ok(())
    }

    /// Runs `work` on the store on tokio's blocking pool: a disk sync can take many
    /// milliseconds, and must not hold up the runtime's workers.
    async fn with_log(
        &mut self,
        work: impl FnOnce(&mut ChangeLog) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let Some(mut log) = self.log.take() else { return Ok(()) };
        let task = tokio::task::spawn_blocking(move || {
            let result = work(&mut log);
            (log, result)
        });
        let (log, result) = match task.await {
            Ok(done) => done,
            // A panic in the store is a bug: let it surface as one.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        self.log = Some(log);
        result
    }

    fn tell(&mut self, link: LinkId, command: LinkCommand) {
        if let LinkCommand::Open(setup) = command {
            let setup = PeerSetup {
                key: self.config.link.key().clone(),
                me: setup.me,
                remote: setup.remote,
                name: self.config.name.to_string(),
                client: self.config.client,
                app_version: self.config.app_version.clone(),
                ice_servers: setup.ice_servers,
                bind: self.config.bind,
                relay_only: self.config.relay_only,
                offerer: setup.offerer,
                want_snapshot: setup.want_snapshot,
                instance: setup.instance,
                tracks: self.tracks.clone(),
                incoming: self.config.incoming.clone(),
            };
            self.links.insert(link, peer::spawn(setup, link, self.link_events.clone()));
            return;
        }
        // A closed connection is forgotten at once: nothing more is sent to it.
        let peer = match command {
            LinkCommand::Close => self.links.remove(&link),
            _ => self.links.get(&link).cloned(),
        };
        if let Some(peer) = peer {
            peer.send(command);
        }
    }
}

/// A random UUID v4 in its usual text form.
pub fn new_uuid() -> String {
    mesh::uuid_v4(&mut rand::rng())
}

/// Sleeps until `at` (Unix ms); with none, forever.
async fn sleep_until_ms(at: Option<i64>) {
    match at {
        Some(at) => {
            let wait = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        None => std::future::pending().await,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_are_v4() {
        for _ in 0..100 {
            assert!(confab_proto::document::is_uuid_v4(&super::new_uuid()));
        }
    }
}
