//! How engine events are shown: one JSON object per line with `--json`, a short line for people
//! otherwise. Notes are coalesced by the session: only the latest text is printed.

use confab_core::{Direction, EngineEvent, FileEvent, FileState};
use serde_json::{Value, json};

/// The JSON line for an event, or `None` for events this front end does not print.
pub fn json_event(event: &EngineEvent) -> Option<Value> {
    Some(match event {
        EngineEvent::Joined { you } => json!({"event": "joined", "you": you}),
        EngineEvent::Reconnecting { retry_in, reason } => json!({
            "event": "reconnecting", "retry_in_ms": retry_in.as_millis() as u64, "reason": reason,
        }),
        EngineEvent::PeerJoined { id, name } => {
            json!({"event": "peer_joined", "id": id, "name": name})
        }
        EngineEvent::PeerConnected { id, name } => {
            json!({"event": "peer_connected", "id": id, "name": name})
        }
        EngineEvent::PeerLeft { id } => json!({"event": "peer_left", "id": id}),
        EngineEvent::PeerRenamed { old, id } => {
            json!({"event": "peer_renamed", "old": old, "id": id})
        }
        EngineEvent::PeerFailed { id, reason } => {
            json!({"event": "peer_failed", "id": id, "reason": reason})
        }
        EngineEvent::Intercepted { id } => json!({
            "event": "intercepted", "id": id,
            "message": "this peer does not hold the meeting key; someone may be listening in, so it was disconnected",
        }),
        EngineEvent::Chat(m) => json!({
            "event": "chat", "id": m.id, "author": m.author, "author_id": m.author_id,
            "text": m.text, "at": m.at,
        }),
        EngineEvent::Notes { text, .. } => json!({"event": "notes", "text": text}),
        EngineEvent::Title(title) => json!({"event": "title", "text": title}),
        EngineEvent::Media { id, media } => json!({
            "event": "media", "id": id, "mic": media.mic, "cam": media.cam, "screen": media.screen,
        }),
        EngineEvent::Stats { id, stats } => json!({
            "event": "stats", "id": id, "rtt_ms": stats.rtt_ms, "bytes_sent": stats.bytes_sent,
            "bytes_received": stats.bytes_received, "packets_lost": stats.packets_lost,
        }),
        EngineEvent::File(f) => file_json(f),
        EngineEvent::Error(message) => json!({"event": "error", "message": message}),
        EngineEvent::Ended { reason } => json!({"event": "ended", "reason": reason}),
    })
}

fn file_json(f: &FileEvent) -> Value {
    let direction = match f.direction {
        Direction::Sending => "sending",
        Direction::Receiving => "receiving",
    };
    let mut v = json!({
        "event": "file", "id": f.id, "peer": f.peer, "name": f.name, "size": f.size,
        "direction": direction,
    });
    let (state, extra) = match &f.state {
        FileState::Offered => ("offered", json!({})),
        FileState::Progress(bytes) => ("progress", json!({"bytes": bytes})),
        FileState::Done { path } => ("done", json!({"bytes": f.size, "path": path})),
        FileState::Failed(reason) => ("failed", json!({"reason": reason})),
        FileState::Cancelled(reason) => ("cancelled", json!({"reason": reason})),
    };
    v["state"] = state.into();
    if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        v.extend(extra.clone());
    }
    v
}

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
        EngineEvent::PeerJoined { .. } | EngineEvent::PeerRenamed { .. } | EngineEvent::Stats { .. } => {
            return None;
        }
        EngineEvent::PeerConnected { name, .. } => format!("* {name} is here"),
        EngineEvent::PeerLeft { id } => format!("* {} left", who(id)),
        EngineEvent::PeerFailed { id, reason } => format!("* lost {}: {reason}", who(id)),
        EngineEvent::Intercepted { .. } => {
            "! a peer without the meeting key tried to connect (someone may be listening in); it was disconnected".into()
        }
        EngineEvent::Chat(m) => format!("<{}> {}", m.author, m.text),
        EngineEvent::Notes { .. } => "* the notes changed (/notes shows them)".into(),
        EngineEvent::Title(title) => format!("* title: {title}"),
        EngineEvent::Media { id, media } => {
            format!("* {}: mic {}, camera {}, screen {}", who(id), on(media.mic), on(media.cam), on(media.screen))
        }
        EngineEvent::File(f) => match &f.state {
            FileState::Offered => format!("* file {} ({} bytes) offered", f.name, f.size),
            FileState::Progress(_) => return None,
            FileState::Done { path: Some(path) } => format!("* received {} into {}", f.name, path.display()),
            FileState::Done { path: None } => format!("* sent {} to {}", f.name, who(&f.peer)),
            FileState::Failed(reason) => format!("! file {} failed: {reason}", f.name),
            FileState::Cancelled(reason) => format!("* file {} cancelled: {reason}", f.name),
        },
        EngineEvent::Error(message) => format!("! {message}"),
        // The session says why on stderr as it exits.
        EngineEvent::Ended { .. } => return None,
    })
}

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}
