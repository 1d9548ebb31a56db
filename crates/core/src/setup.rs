//! What a front end needs before it can start an [`Engine`](crate::Engine) on this machine:
//! where data and downloads go by default, this install's author id, and the link of a meeting
//! hosted here. Shared by the CLI and the desktop app, so both keep one install's notes in the
//! same place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use confab_proto::{MeetingKey, MeetingLink, RoomId};

/// The platform's place for application data, or `None` when the environment names none.
pub fn default_data_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if cfg!(windows) {
        return var("APPDATA").map(|d| d.join("Confab"));
    }
    if cfg!(target_os = "macos") {
        return var("HOME").map(|h| h.join("Library/Application Support/Confab"));
    }
    var("XDG_DATA_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".local/share")))
        .map(|d| d.join("confab"))
}

/// `~/Downloads` when it exists, else the working directory.
pub fn default_download_dir() -> PathBuf {
    std::env::var_os(if cfg!(windows) { "USERPROFILE" } else { "HOME" })
        .map(|home| PathBuf::from(home).join("Downloads"))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// This install's stable author id, kept in `data_dir` and created on first use.
pub fn author_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("install-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if confab_proto::document::is_uuid_v4(id.trim()) => Ok(id.trim().to_owned()),
        _ => {
            std::fs::create_dir_all(data_dir)?;
            let id = crate::engine::new_uuid();
            std::fs::write(&path, &id)?;
            Ok(id)
        }
    }
}

/// Where a signaling service listening at `listening` is reached: this machine's own address
/// when that is a wildcard.
pub fn reachable_address(listening: SocketAddr) -> Result<SocketAddr, String> {
    let ip = if listening.ip().is_unspecified() {
        crate::peer::own_address()
            .map_err(|e| format!("cannot find this machine's address: {e}"))?
    } else {
        listening.ip()
    };
    Ok(SocketAddr::new(ip, listening.port()))
}

/// A fresh meeting on a signaling service listening at `listening` (over TLS when `https`).
pub fn hosted_meeting_link(listening: SocketAddr, https: bool) -> Result<MeetingLink, String> {
    let scheme = if https { "https" } else { "http" };
    let server = format!("{scheme}://{}", reachable_address(listening)?);
    MeetingLink::new(&server, RoomId::random(), MeetingKey::random()).map_err(|e| e.to_string())
}
