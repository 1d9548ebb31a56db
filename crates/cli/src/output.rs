//! How engine events are shown to people: a short line each (with `--json` they are printed
//! as the engine's API serializes them). Notes are coalesced by the session for people.

use confab_core::{EngineEvent, FileState};

/// A line for people, or `None` for what would only be noise (stats, progress between tens).
pub fn human_event(
    event: &EngineEvent,
    names: &std::collections::HashMap<String, String>,
) -> Option<String> {
    let who = |id: &confab_proto::PeerId| {
        names.get(id.as_str()).cloned().unwrap_or_else(|| "someone".into())
    };
    Some(match event {
        EngineEvent::Joined { .. } => "* joined the meeting".into(),
        EngineEvent::Reconnecting { retry_in, reason } => {
            format!("* signaling lost ({reason}); retrying in {:.1} s", retry_in.as_secs_f64())
        }
        // Carets moving in a terminal would be noise.
        EngineEvent::PeerJoined { .. }
        | EngineEvent::PeerRenamed { .. }
        | EngineEvent::Stats { .. }
        | EngineEvent::Cursors { .. } => return None,
        EngineEvent::PeerConnected { name, .. } => format!("* {name} is here"),
        EngineEvent::PeerLeft { id } => format!("* {} left", who(id)),
        EngineEvent::PeerConnection { id, up: false } => {
            format!("* lost the path to {}; reconnecting", who(id))
        }
        EngineEvent::PeerConnection { id, up: true } => format!("* {} is back", who(id)),
        EngineEvent::PeerFailed { id, reason } => format!("* lost {}: {reason}", who(id)),
        EngineEvent::Intercepted { .. } => {
            "! a peer without the meeting key tried to connect (someone may be listening in); it was disconnected".into()
        }
        EngineEvent::Chat(m) => format!("<{}> {}", m.author, m.text),
        EngineEvent::Notes { .. } => "* the notes changed (/notes shows them)".into(),
        EngineEvent::Title { text } => format!("* title: {text}"),
        EngineEvent::Media { id, media } => {
            format!("* {}: mic {}, camera {}, screen {}", who(id), on(media.mic), on(media.cam), on(media.screen))
        }
        EngineEvent::File(f) => match &f.state {
            FileState::Offered => format!("* file {} ({} bytes) offered", f.name, f.size),
            FileState::Progress { .. } => return None,
            FileState::Done { path: Some(path) } => format!("* received {} into {}", f.name, path.display()),
            FileState::Done { path: None } => format!("* sent {} to {}", f.name, who(&f.peer)),
            FileState::Failed { reason } => format!("! file {} failed: {reason}", f.name),
            FileState::Cancelled { reason } => format!("* file {} cancelled: {reason}", f.name),
        },
        EngineEvent::Error { message } => format!("! {message}"),
        // The session says why on stderr as it exits.
        EngineEvent::Ended { .. } => return None,
    })
}

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}
