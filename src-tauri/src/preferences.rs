//! What the user set on the settings page, kept in `DATA_DIR/preferences.json`: where new
//! meetings are made (hosted here, or on a signaling server of theirs) and which microphone,
//! speaker and camera to use. A missing or unreadable file means the defaults.

use std::path::{Path, PathBuf};

use confab_proto::{MeetingKey, MeetingLink, RoomId};
use serde::{Deserialize, Serialize};

use crate::recent::write_json_whole;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    /// The signaling server new meetings are made on (`https://confab.example.org`); none:
    /// hosted on this computer, reachable on the LAN.
    pub server: Option<String>,
    /// Devices by the id their lists give; none: the system's default.
    pub microphone: Option<String>,
    pub speaker: Option<String>,
    pub camera: Option<String>,
}

impl Preferences {
    /// The same, with empty fields as none, and the server checked (a link must be made on it).
    pub fn checked(self) -> Result<Self, String> {
        let given =
            |field: Option<String>| field.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let server = given(self.server).map(|s| s.trim_end_matches('/').to_owned());
        if let Some(server) = &server {
            new_meeting_on(server)?;
        }
        Ok(Self {
            server,
            microphone: given(self.microphone),
            speaker: given(self.speaker),
            camera: given(self.camera),
        })
    }
}

/// A new meeting on the signaling server at `server`: any well-formed room there is one, and
/// its key is made here (the server never sees it).
pub fn new_meeting_on(server: &str) -> Result<MeetingLink, String> {
    MeetingLink::new(server, RoomId::random(), MeetingKey::random()).map_err(|_| {
        format!("{server:?} is not a server's address: give one like https://confab.example.org")
    })
}

#[derive(Debug, Clone)]
pub struct PreferencesFile {
    path: PathBuf,
}

impl PreferencesFile {
    pub fn in_dir(data_dir: &Path) -> Self {
        Self { path: data_dir.join("preferences.json") }
    }

    pub fn load(&self) -> Preferences {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, preferences: &Preferences) -> std::io::Result<()> {
        write_json_whole(&self.path, preferences)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_survive_a_restart_and_a_bad_file_means_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = PreferencesFile::in_dir(dir.path());
        assert_eq!(file.load(), Preferences::default());
        let chosen = Preferences {
            server: Some("https://confab.example.org".into()),
            microphone: Some("pulse".into()),
            ..Preferences::default()
        };
        file.save(&chosen).unwrap();
        assert_eq!(PreferencesFile::in_dir(dir.path()).load(), chosen);
        std::fs::write(dir.path().join("preferences.json"), b"{not json").unwrap();
        assert_eq!(file.load(), Preferences::default());
    }

    #[test]
    fn a_server_must_be_one_and_blank_fields_mean_the_defaults() {
        let blank = Preferences {
            server: Some("  ".into()),
            speaker: Some(String::new()),
            ..Preferences::default()
        };
        assert_eq!(blank.checked().unwrap(), Preferences::default());
        let trailing =
            Preferences { server: Some("https://c.example.org/".into()), ..Preferences::default() };
        assert_eq!(trailing.checked().unwrap().server.as_deref(), Some("https://c.example.org"));
        for bad in ["confab.example.org", "ftp://c.example.org", "https://"] {
            let refused =
                Preferences { server: Some(bad.into()), ..Preferences::default() }.checked();
            assert!(refused.is_err(), "{bad} was taken");
        }
        let link = new_meeting_on("https://c.example.org").unwrap();
        assert_eq!(link.server(), "https://c.example.org");
    }
}
