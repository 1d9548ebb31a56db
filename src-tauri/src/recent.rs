//! Recent meetings: which meetings this install was in, newest first, so the start page can
//! reopen one — its notes open from disk even offline. Kept in `DATA_DIR/recent.json` without
//! their keys: those are in the keyring (see [`crate::secrets`]).

use std::path::{Path, PathBuf};

use confab_proto::MeetingLink;
use serde::{Deserialize, Serialize};

/// How many are kept.
const KEPT: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentMeeting {
    pub room: String,
    /// Where its signaling service is (`http://host:port`).
    pub server: String,
    /// Its title, as last seen.
    #[serde(default)]
    pub title: String,
    /// When it was last opened, in ms since the Unix epoch.
    pub opened_at: u64,
}

impl RecentMeeting {
    /// Its link, given its key.
    pub fn link(&self, key: &str) -> Option<MeetingLink> {
        format!("{}/m/{}#k={key}", self.server, self.room).parse().ok()
    }
}

#[derive(Debug, Clone)]
pub struct Recent {
    path: PathBuf,
    /// One change at a time: a meeting opened and a title seen may race.
    writing: std::sync::Arc<std::sync::Mutex<()>>,
}

impl Recent {
    pub fn in_dir(data_dir: &Path) -> Self {
        Self { path: data_dir.join("recent.json"), writing: Default::default() }
    }

    /// Newest first; an unreadable file is an empty list (it is only a convenience).
    pub fn list(&self) -> Vec<RecentMeeting> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Puts `link`'s meeting first.
    pub fn opened(&self, link: &MeetingLink, now_ms: u64) -> std::io::Result<()> {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let room = link.room().as_str().to_owned();
        let mut list = self.list();
        let title =
            list.iter().find(|m| m.room == room).map(|m| m.title.clone()).unwrap_or_default();
        list.retain(|m| m.room != room);
        let server = link.server().to_owned();
        list.insert(0, RecentMeeting { room, server, title, opened_at: now_ms });
        list.truncate(KEPT);
        self.write(&list)
    }

    /// Notes the title `room` now has.
    pub fn titled(&self, room: &str, title: &str) -> std::io::Result<()> {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut list = self.list();
        match list.iter_mut().find(|m| m.room == room) {
            Some(meeting) if meeting.title != title => title.clone_into(&mut meeting.title),
            _ => return Ok(()),
        }
        self.write(&list)
    }

    fn write(&self, list: &[RecentMeeting]) -> std::io::Result<()> {
        write_json_whole(&self.path, list)
    }
}

/// Writes `value` as JSON to `path` (its directory made if need be), whole: a new file renamed
/// over the old, so a crash leaves one or the other, never half of one.
pub fn write_json_whole(path: &Path, value: &(impl Serialize + ?Sized)) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, json)?;
    std::fs::rename(partial, path)
}
