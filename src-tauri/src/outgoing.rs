//! Files the window sends. A `File` in the webview has no path, so its bytes come over the IPC
//! in parts and are written to a copy of our own, `DATA_DIR/outgoing/ID/NAME`, which the engine
//! then offers like any file. The window never names a path (see `Desktop::apply`): it can only
//! send what the person gave it.
//!
//! Copies are removed when the meeting that sent them ends (the next one starts, or the app
//! starts again): a peer may still accept an offer until then.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use confab_core::transfer::safe_file_name;

/// Why a file could not be staged; shown to the user after "… was not sent:".
#[derive(Debug, thiserror::Error)]
pub enum OutgoingError {
    #[error("it is {size} bytes; at most {max} can be sent")]
    TooLarge { size: u64, max: u64 },
    #[error("it is being sent already, or its sending was given up")]
    Unknown,
    #[error("more bytes came than the file holds")]
    Overrun,
    #[error("only {written} of its {size} bytes arrived")]
    Short { written: u64, size: u64 },
    #[error("it could not be copied for sending: {0}")]
    Io(#[from] std::io::Error),
}

/// One file on its way from the window to the engine.
#[derive(Debug)]
struct Staged {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    size: u64,
    written: u64,
}

#[derive(Debug)]
pub struct Outgoing {
    dir: PathBuf,
    max_bytes: u64,
    staged: Mutex<HashMap<String, Staged>>,
    /// Names the next staged file (its directory under `dir`).
    next: AtomicU64,
}

impl Outgoing {
    pub fn new(data_dir: &Path, max_bytes: u64) -> Self {
        Self {
            dir: data_dir.join("outgoing"),
            max_bytes,
            staged: Mutex::default(),
            next: AtomicU64::new(0),
        }
    }

    /// Removes every copy: no meeting is sending them any more.
    pub fn clear(&self) {
        self.staged.lock().unwrap_or_else(PoisonError::into_inner).clear();
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "files sent earlier could not be removed");
        }
    }

    /// Makes room for a file of `size` bytes called `name`; answers the id its parts go to.
    pub fn begin(&self, name: &str, size: u64) -> Result<String, OutgoingError> {
        if size > self.max_bytes {
            return Err(OutgoingError::TooLarge { size, max: self.max_bytes });
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed).to_string();
        let dir = self.dir.join(&id);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(safe_file_name(name));
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        let staged = Staged { dir, path, file, size, written: 0 };
        self.staged.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), staged);
        Ok(id)
    }

    /// Writes the next part of file `id`.
    pub fn append(&self, id: &str, bytes: &[u8]) -> Result<(), OutgoingError> {
        let mut all = self.staged.lock().unwrap_or_else(PoisonError::into_inner);
        let staged = all.get_mut(id).ok_or(OutgoingError::Unknown)?;
        let written = staged.written + bytes.len() as u64;
        if written > staged.size {
            drop(all);
            self.abandon(id);
            return Err(OutgoingError::Overrun);
        }
        if let Err(e) = staged.file.write_all(bytes) {
            drop(all);
            self.abandon(id);
            return Err(e.into());
        }
        staged.written = written;
        Ok(())
    }

    /// File `id` is whole: answers its path, to offer.
    pub fn finish(&self, id: &str) -> Result<PathBuf, OutgoingError> {
        let staged = self
            .staged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
            .ok_or(OutgoingError::Unknown)?;
        if staged.written != staged.size {
            remove(&staged.dir);
            return Err(OutgoingError::Short { written: staged.written, size: staged.size });
        }
        staged.file.sync_all()?;
        Ok(staged.path)
    }

    /// Gives up file `id` (the window could not read it, or it was not offered).
    pub fn abandon(&self, id: &str) {
        let staged = self.staged.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        if let Some(staged) = staged {
            remove(&staged.dir);
        }
    }

    /// Removes the copy at `path`, made by [`Outgoing::finish`], that was not offered.
    pub fn discard(&self, path: &Path) {
        if let Some(dir) = path.parent().filter(|dir| dir.parent() == Some(self.dir.as_path())) {
            remove(dir);
        }
    }
}

fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(error = %e, "a file that was not sent could not be removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_staged_in_parts_is_whole_and_keeps_a_safe_name() {
        let data = tempfile::tempdir().unwrap();
        let outgoing = Outgoing::new(data.path(), 10);
        let id = outgoing.begin("../minutes.txt", 9).unwrap();
        outgoing.append(&id, b"minu").unwrap();
        outgoing.append(&id, b"tes!\n").unwrap();
        let path = outgoing.finish(&id).unwrap();
        assert_eq!(path.file_name().unwrap(), "minutes.txt");
        assert!(path.starts_with(data.path().join("outgoing")));
        assert_eq!(std::fs::read(&path).unwrap(), b"minutes!\n");
        outgoing.clear();
        assert!(!path.exists());
    }

    #[test]
    fn files_too_large_short_or_overrun_are_refused_and_leave_nothing() {
        let data = tempfile::tempdir().unwrap();
        let outgoing = Outgoing::new(data.path(), 10);
        assert!(matches!(outgoing.begin("big", 11), Err(OutgoingError::TooLarge { .. })));

        let short = outgoing.begin("short", 4).unwrap();
        outgoing.append(&short, b"abc").unwrap();
        assert!(matches!(outgoing.finish(&short), Err(OutgoingError::Short { written: 3, .. })));

        let long = outgoing.begin("long", 2).unwrap();
        assert!(matches!(outgoing.append(&long, b"abc"), Err(OutgoingError::Overrun)));
        assert!(matches!(outgoing.append(&long, b"a"), Err(OutgoingError::Unknown)));

        let given_up = outgoing.begin("given up", 2).unwrap();
        outgoing.abandon(&given_up);
        assert!(matches!(outgoing.finish(&given_up), Err(OutgoingError::Unknown)));
        let left = std::fs::read_dir(data.path().join("outgoing")).unwrap().count();
        assert_eq!(left, 0, "nothing is left of files not sent");
    }
}
