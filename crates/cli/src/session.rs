//! One participant's session: the engine, commands from stdin, events to stdout.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use confab_core::api::Answer;
use confab_core::setup;
use confab_core::signaling_client::AccessToken;
use confab_core::tracks::{IncomingMedia, SyntheticSources};
use confab_core::{Engine, EngineConfig, EngineEvent, TrackFeed, TrackKind, TrackSet};
use confab_media::{
    AudioSink, CleanMicrophone, Microphone, Playout, Silent, Speaker, VoiceProcessing,
};
use confab_proto::{ClientKind, DisplayName, MeetingLink};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::commands::{self, Command};
use crate::media::{MediaReport, Recording, Reporter};
use crate::output;
use crate::{CameraSize, ParticipantArgs};

/// Prints one line and flushes it, so a process reading our stdout sees it at once.
pub fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn print_json(value: &Value) {
    print_line(&value.to_string());
}

pub async fn run(link: MeetingLink, name: DisplayName, args: ParticipantArgs) -> ExitCode {
    let fail = crate::fail;
    let Some(data_dir) = args.data_dir.or_else(setup::default_data_dir) else {
        return fail(2, "no data directory: give --data-dir");
    };
    let author_id = match setup::author_id(&data_dir) {
        Ok(id) => id,
        Err(e) => {
            return fail(1, &format!("cannot use the data directory {}: {e}", data_dir.display()));
        }
    };
    let bind = args.ice_address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let mut tracks = TrackSet::new();
    if let Some(CameraSize(size)) = args.synthetic_camera {
        let camera = match size {
            Some((width, height)) => TrackFeed::synthetic_camera_of(width, height),
            None => TrackFeed::synthetic_camera(),
        };
        match camera {
            Ok(feed) => tracks.insert(TrackKind::Camera, feed),
            Err(e) => return fail(1, &format!("cannot start the synthetic camera: {e}")),
        };
    }
    if let Some(display) = &args.share_screen {
        let display = Some(display.as_str()).filter(|d| !d.is_empty());
        let screen = confab_media::screens().and_then(|screens| screens.open(display));
        match screen.and_then(TrackFeed::screen) {
            Ok(feed) => tracks.insert(TrackKind::Screen, feed),
            Err(e) => return fail(1, &format!("cannot share the screen: {e}")),
        };
    }
    if args.synthetic_audio || args.synthetic_beeps {
        let microphone = if args.synthetic_beeps {
            TrackFeed::synthetic_beeps()
        } else {
            TrackFeed::synthetic_microphone()
        };
        match microphone {
            Ok(feed) => tracks.insert(TrackKind::Microphone, feed),
            Err(e) => return fail(1, &format!("cannot start the synthetic microphone: {e}")),
        };
    }
    // What the speaker plays is taken out of what the microphone hears.
    let mut echo = None;
    if let Some(id) = &args.mic {
        let processing = VoiceProcessing::new();
        echo = Some(processing.clone());
        let microphone = Microphone::open(Some(id.as_str()).filter(|id| !id.is_empty()))
            .map(|mic| CleanMicrophone::new(mic, processing))
            .and_then(|mic| TrackFeed::microphone(Box::new(mic)));
        match microphone {
            Ok(feed) => tracks.insert(TrackKind::Microphone, feed),
            Err(e) => return fail(1, &format!("cannot use the microphone: {e}")),
        };
    }
    let recording = args.record.as_deref().map(|path| Arc::new(Recording::new(path)));
    let (incoming, reports) = if args.receive_media || recording.is_some() || args.speaker.is_some()
    {
        let speaker: Result<Box<dyn AudioSink>, _> = match &args.speaker {
            Some(id) => Speaker::open(Some(id.as_str()).filter(|id| !id.is_empty()), echo)
                .map(|speaker| Box::new(speaker) as Box<dyn AudioSink>),
            // Mixed and paced all the same, so the reports tell what a listener would hear.
            None => Ok(Box::new(Silent)),
        };
        let playout = match speaker.and_then(Playout::start) {
            Ok(playout) => Arc::new(playout),
            Err(e) => return fail(1, &format!("cannot use the speaker: {e}")),
        };
        if let Some(recording) = recording.clone() {
            // Encoded and written on a thread of its own: the playout must never wait for a
            // disk.
            let (mixes, mixed) = std::sync::mpsc::channel::<(Vec<i16>, Duration)>();
            let writer =
                std::thread::Builder::new().name("confab-record".into()).spawn(move || {
                    for (pcm, held_back) in mixed {
                        recording.mixed_sound(&pcm, held_back);
                    }
                });
            if let Err(e) = writer {
                return fail(1, &format!("cannot start recording: {e}"));
            }
            playout.listen_to_mix(Box::new(move |pcm, held_back| {
                let _ = mixes.send((pcm.to_vec(), held_back));
            }));
        }
        let (reporter, reports) = Reporter::new(args.receive_media, playout, recording.clone());
        (Some(Arc::new(reporter) as Arc<dyn IncomingMedia>), Some(reports))
    } else {
        (None, None)
    };
    let access_token = match args.token_file.as_deref().map(AccessToken::from_file).transpose() {
        Ok(token) => token,
        Err(e) => return fail(2, &e),
    };
    let config = EngineConfig {
        link,
        name,
        client: ClientKind::Cli,
        app_version: env!("CARGO_PKG_VERSION").into(),
        data_dir,
        download_dir: args.download_dir.unwrap_or_else(setup::default_download_dir),
        max_file_bytes: args.max_file_bytes,
        auto_accept_files: true,
        work_offline: false,
        author_id,
        bind,
        relay_only: args.relay_only,
        tracks,
        // `set_media` turns on the synthetic twins: the flags choose real devices. The peers'
        // tracks are declined, or, when asked, played, decoded and reported.
        sources: Arc::new(SyntheticSources),
        incoming,
        trusted_certificate: None,
        access_token,
    };
    let (engine, events) = match Engine::start(config) {
        Ok(started) => started,
        Err(e) => return fail(1, &format!("cannot open the meeting's notes: {e}")),
    };
    let session = Session {
        engine,
        json: args.json,
        names: HashMap::new(),
        pending_notes: None,
        report_tracks: args.receive_media,
        recording,
    };
    session.run(events, reports).await
}

struct Session {
    engine: Engine,
    json: bool,
    /// Peer names by id, for human output.
    names: HashMap<String, String>,
    /// The latest notes not printed yet: for people, notes events are coalesced.
    pending_notes: Option<EngineEvent>,
    /// Print a line per incoming track each second (`--receive-media`).
    report_tracks: bool,
    recording: Option<Arc<Recording>>,
}

impl Session {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<EngineEvent>,
        mut reports: Option<mpsc::UnboundedReceiver<MediaReport>>,
    ) -> ExitCode {
        let mut lines = stdin_lines();
        // `None` while the meeting goes on; the exit code once it is over for us.
        let mut ended: Option<ExitCode> = None;
        while ended.is_none() {
            tokio::select! {
                Some(report) = async { reports.as_mut()?.recv().await } => self.report(report),
                event = events.recv() => {
                    let Some(event) = event else {
                        ended = Some(ExitCode::from(1));
                        continue;
                    };
                    let mut refused = self.show(event);
                    while let Ok(event) = events.try_recv() {
                        refused = refused.or(self.show(event));
                    }
                    self.flush_notes();
                    if let Some(reason) = refused {
                        if !self.json {
                            eprintln!("confab: {reason}");
                        }
                        ended = Some(ExitCode::from(1));
                    }
                }
                // Ctrl-C leaves as `quit` does, so a recording is closed and playable.
                _ = tokio::signal::ctrl_c() => ended = Some(ExitCode::SUCCESS),
                line = lines.recv() => match line {
                    // End of input: leave as if told to quit.
                    None => ended = Some(ExitCode::SUCCESS),
                    Some(line) => {
                        if self.handle_line(&line).await {
                            ended = Some(ExitCode::SUCCESS);
                        }
                    }
                },
            }
        }
        // The recording ends where the person left (or the meeting ended for us), not when the
        // connections have closed; however the session ends, the file is closed.
        self.finish_recording();
        let code = ended.unwrap_or(ExitCode::SUCCESS);
        if code != ExitCode::SUCCESS {
            // Refused or cut off: there is no meeting left to say goodbye to.
            return code;
        }
        self.engine.leave();
        // Let the engine say goodbye to the peers before the process ends.
        while let Ok(Some(_)) =
            tokio::time::timeout(std::time::Duration::from_millis(300), events.recv()).await
        {
        }
        code
    }

    fn report(&self, report: MediaReport) {
        match report {
            MediaReport::Track(track) if self.report_tracks => {
                if self.json {
                    print_json(&track.to_json());
                } else {
                    let name = self.names.get(&track.peer).map_or("a peer", String::as_str);
                    print_line(&track.human(name));
                }
            }
            MediaReport::Track(_) => {}
            MediaReport::SpeakerFailed(reason) => {
                let message = format!("the speaker stopped: {reason}");
                if self.json {
                    print_json(&json!({"event": "error", "message": message}));
                } else {
                    print_line(&format!("! {message}"));
                }
            }
            MediaReport::RecordingStarted(path) => {
                if self.json {
                    print_json(&json!({"event": "recording", "path": path}));
                } else {
                    print_line(&format!("* recording to {}", path.display()));
                }
            }
        }
    }

    fn finish_recording(&self) {
        let Some(recording) = &self.recording else { return };
        match recording.finish() {
            Ok((path, length)) if self.json => {
                print_json(
                    &json!({"event": "recorded", "path": path, "seconds": length.as_secs_f64()}),
                );
            }
            Ok((path, length)) => {
                print_line(&format!(
                    "* recorded {:.1} s to {}",
                    length.as_secs_f64(),
                    path.display()
                ));
            }
            Err(reason) if self.json => {
                print_json(
                    &json!({"event": "error", "message": format!("the recording failed: {reason}")}),
                );
            }
            Err(reason) => eprintln!("confab: the recording failed: {reason}"),
        }
    }

    /// Prints an event; returns the reason if the meeting ended.
    fn show(&mut self, event: EngineEvent) -> Option<String> {
        match &event {
            EngineEvent::PeerConnected { id, name } | EngineEvent::PeerJoined { id, name, .. } => {
                self.names.insert(id.to_string(), name.clone());
            }
            EngineEvent::PeerRenamed { old, id } => {
                if let Some(name) = self.names.get(old.as_str()).cloned() {
                    self.names.insert(id.to_string(), name);
                }
            }
            // People see one line for a burst of edits; scripts get every patch in order.
            EngineEvent::Notes { .. } if !self.json => {
                self.pending_notes = Some(event);
                return None;
            }
            _ => {}
        }
        self.print(&event);
        match event {
            EngineEvent::Ended { reason, .. } => Some(reason),
            _ => None,
        }
    }

    fn print(&self, event: &EngineEvent) {
        if self.json {
            match serde_json::to_value(event) {
                Ok(value) => print_json(&value),
                Err(e) => eprintln!("confab: cannot print an event: {e}"),
            }
        } else if let Some(line) = output::human_event(event, &self.names) {
            print_line(&line);
        }
    }

    fn flush_notes(&mut self) {
        if let Some(event) = self.pending_notes.take() {
            self.print(&event);
        }
    }

    /// Runs one input line; returns true to quit.
    async fn handle_line(&mut self, line: &str) -> bool {
        let (command, reference) = if self.json {
            if line.trim().is_empty() {
                return false;
            }
            match commands::parse_json(line) {
                Ok(parsed) => (parsed.command, parsed.reference),
                Err(message) => {
                    print_json(&json!({"event": "error", "message": message}));
                    return false;
                }
            }
        } else {
            match commands::parse_human(line) {
                Ok(Some(command)) => (command, None),
                Ok(None) => return false,
                Err(message) => {
                    print_line(&message);
                    return false;
                }
            }
        };
        let name = command.name();
        if matches!(command, Command::Quit {}) {
            return true;
        }
        match self.execute(command).await {
            Ok(answer) => {
                if self.json {
                    let mut v = json!({"event": "applied", "cmd": name});
                    if let Some(reference) = reference {
                        v["ref"] = reference;
                    }
                    if let (Some(v), Some(extra)) = (v.as_object_mut(), answer.as_object()) {
                        v.extend(extra.clone());
                    }
                    print_json(&v);
                }
            }
            Err(message) => {
                if self.json {
                    let mut v = json!({"event": "error", "cmd": name, "message": message});
                    if let Some(reference) = reference {
                        v["ref"] = reference;
                    }
                    print_json(&v);
                } else {
                    print_line(&format!("! {message}"));
                }
            }
        }
        false
    }

    /// Carries out a command; what it answers is merged into the `applied` event.
    async fn execute(&mut self, command: Command) -> Result<Value, String> {
        let shown = match &command {
            Command::SendFile { path } => Some(format!("* offering {}", path.display())),
            Command::Export { path } => Some(format!("* exported to {}", path.display())),
            _ => None,
        };
        let answer = self.engine.apply(command).await.map_err(|e| e.to_string())?;
        match (&answer, self.json) {
            // People read the notes; scripts get them in the answer.
            (Answer::Notes { text }, false) => {
                print_line(&format!("--- notes ---\n{text}\n-------------"));
            }
            (_, false) => shown.iter().for_each(|line| print_line(line)),
            (_, true) => {}
        }
        serde_json::to_value(answer).map_err(|e| e.to_string())
    }
}

/// Stdin as lines, read on their own task so the session never blocks on it.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
    rx
}
