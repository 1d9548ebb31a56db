//! Durable storage of one meeting's document, so notes are never lost: a snapshot
//! (`notes.automerge`, Automerge `save()`) and an append-only log of the changes since
//! (`notes.log`). An edit is reported as applied only after its change is in the log and the log
//! is synced to disk.
//!
//! Log records are `[length: u32 LE][crc32: u32 LE][bytes]`. A crash can leave a torn last
//! record; opening the store keeps every whole record and cuts the rest off. Compaction writes a
//! new snapshot beside the old one, syncs it, renames it into place and only then empties the
//! log, so at every instant the disk holds the whole document.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use automerge::ActorId;

use crate::document::{DocError, MeetingDoc};

const SNAPSHOT: &str = "notes.automerge";
const LOG: &str = "notes.log";
const HEADER: usize = 8;
/// Past this much log, the next `persist` compacts.
const COMPACT_AFTER_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the notes storage in {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the stored notes in {path} cannot be read: {source}")]
    Document { path: PathBuf, source: DocError },
}

/// The files that keep one meeting's document: open it to get the document back, then append
/// each change set before it counts. It never holds the document itself, so the engine can keep
/// the document in its own (pure) state and write on a blocking thread.
#[derive(Debug)]
pub struct ChangeLog {
    dir: PathBuf,
    log: File,
    log_bytes: u64,
    /// Changes whose write failed; they go out first with the next append.
    unwritten: Vec<u8>,
}

impl ChangeLog {
    /// Opens the document stored in `dir` (creating the directory and an empty document when
    /// there is none), edited as `actor`.
    pub fn open(dir: &Path, actor: ActorId) -> Result<(Self, MeetingDoc), StoreError> {
        let io_err = |source| StoreError::Io { path: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let snapshot_path = dir.join(SNAPSHOT);
        let mut doc = match std::fs::read(&snapshot_path) {
            Ok(bytes) => MeetingDoc::load(&bytes, actor)
                .map_err(|source| StoreError::Document { path: snapshot_path, source })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => MeetingDoc::new(actor),
            Err(e) => return Err(io_err(e)),
        };
        let log_path = dir.join(LOG);
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(io_err)?;
        let mut raw = Vec::new();
        log.read_to_end(&mut raw).map_err(io_err)?;
        let whole = replay(&raw, &mut doc)
            .map_err(|source| StoreError::Document { path: log_path, source })?;
        if whole < raw.len() {
            // A torn record from a crash: keep what was whole, drop the rest.
            log.set_len(whole as u64).map_err(io_err)?;
            log.sync_all().map_err(io_err)?;
        }
        log.seek(SeekFrom::End(0)).map_err(io_err)?;
        // What was replayed is stored already: don't write it again.
        doc.take_unsaved();
        let store =
            Self { dir: dir.to_path_buf(), log, log_bytes: whole as u64, unwritten: vec![] };
        Ok((store, doc))
    }

    /// Appends changes (`MeetingDoc::take_unsaved` bytes) and syncs them to disk. On failure
    /// they are kept and written first by the next append, so a passing disk error loses nothing.
    pub fn append(&mut self, changes: &[u8]) -> Result<(), StoreError> {
        self.unwritten.extend_from_slice(changes);
        if self.unwritten.is_empty() {
            return Ok(());
        }
        let io_err = |source| StoreError::Io { path: self.dir.join(LOG), source };
        let len = u32::try_from(self.unwritten.len())
            .map_err(|_| io_err(io::ErrorKind::InvalidInput.into()))?;
        let mut record = Vec::with_capacity(HEADER + self.unwritten.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(&self.unwritten).to_le_bytes());
        record.extend_from_slice(&self.unwritten);
        if let Err(e) = self.log.write_all(&record).and_then(|()| self.log.sync_data()) {
            // Cut off whatever part of the record made it, so the log stays whole.
            let _ = self.log.set_len(self.log_bytes);
            return Err(io_err(e));
        }
        self.unwritten.clear();
        self.log_bytes += record.len() as u64;
        Ok(())
    }

    /// The log has grown enough that a fresh snapshot should replace it.
    pub fn wants_compaction(&self) -> bool {
        self.log_bytes > COMPACT_AFTER_BYTES
    }

    /// Replaces snapshot and log by one fresh snapshot, `save()` bytes of the whole document.
    pub fn compact(&mut self, snapshot: &[u8]) -> Result<(), StoreError> {
        let io_err = |source| StoreError::Io { path: self.dir.clone(), source };
        let tmp = self.dir.join(format!("{SNAPSHOT}.tmp"));
        let mut file = File::create(&tmp).map_err(io_err)?;
        file.write_all(snapshot).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        std::fs::rename(&tmp, self.dir.join(SNAPSHOT)).map_err(io_err)?;
        // The rename itself must be durable before the log it replaces goes.
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_err)?;
        self.log.set_len(0).map_err(io_err)?;
        self.log.sync_all().map_err(io_err)?;
        self.log_bytes = 0;
        Ok(())
    }
}

/// A meeting document together with the files that keep it, for callers that edit and store
/// in one place (tests, benchmarks, tools).
#[derive(Debug)]
pub struct StoredDoc {
    doc: MeetingDoc,
    log: ChangeLog,
}

impl StoredDoc {
    /// Opens the document stored in `dir`; see [`ChangeLog::open`].
    pub fn open(dir: &Path, actor: ActorId) -> Result<Self, StoreError> {
        let (log, doc) = ChangeLog::open(dir, actor)?;
        Ok(Self { doc, log })
    }

    pub fn doc(&self) -> &MeetingDoc {
        &self.doc
    }

    /// The document, for changes that arrive from peers; call [`StoredDoc::persist`] after.
    pub fn doc_mut(&mut self) -> &mut MeetingDoc {
        &mut self.doc
    }

    /// Runs a local edit and returns once its change is on disk. A refused edit changes nothing.
    pub fn edit<T>(
        &mut self,
        edit: impl FnOnce(&mut MeetingDoc) -> Result<T, DocError>,
    ) -> Result<Result<T, DocError>, StoreError> {
        let result = edit(&mut self.doc);
        self.persist()?;
        Ok(result)
    }

    /// Writes every change not yet stored (local or received) and syncs it to disk.
    pub fn persist(&mut self) -> Result<(), StoreError> {
        self.log.append(&self.doc.take_unsaved())?;
        if self.log.wants_compaction() {
            self.compact()?;
        }
        Ok(())
    }

    /// Replaces snapshot and log by one fresh snapshot.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        self.log.compact(&self.doc.save())
    }
}

/// Applies the whole records of a log to `doc`; returns how many bytes they span.
fn replay(raw: &[u8], doc: &mut MeetingDoc) -> Result<usize, DocError> {
    let mut at = 0;
    while let Some(header) = raw.get(at..at + HEADER) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(body) = raw.get(at + HEADER..at + HEADER + len) else { break };
        if crc32fast::hash(body) != crc {
            break;
        }
        doc.apply_saved_changes(body)?;
        at += HEADER + len;
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> ActorId {
        ActorId::from([7u8; 16])
    }

    #[test]
    fn edits_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = StoredDoc::open(dir.path(), actor()).unwrap();
            s.edit(|d| d.splice_notes(0, 0, "hello")).unwrap().unwrap();
            s.edit(|d| d.splice_notes(5, 0, " world")).unwrap().unwrap();
            s.edit(|d| d.set_title("T")).unwrap().unwrap();
        }
        let s = StoredDoc::open(dir.path(), actor()).unwrap();
        assert_eq!((s.doc().notes(), s.doc().title()), ("hello world".into(), "T".into()));
    }

    #[test]
    fn an_adopted_snapshot_is_stored_whole() {
        let mut theirs = MeetingDoc::new(ActorId::from([9u8; 16]));
        theirs.splice_notes(0, 0, "from the peer").unwrap();
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = StoredDoc::open(dir.path(), actor()).unwrap();
            s.doc_mut().merge_bytes(&theirs.save()).unwrap();
            s.persist().unwrap();
            s.edit(|d| d.splice_notes(0, 0, "> ")).unwrap().unwrap();
        }
        let s = StoredDoc::open(dir.path(), actor()).unwrap();
        assert_eq!(s.doc().notes(), "> from the peer");
    }

    #[test]
    fn a_torn_last_record_loses_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = StoredDoc::open(dir.path(), actor()).unwrap();
            for word in ["one ", "two ", "three "] {
                let at = s.doc().notes_len();
                s.edit(|d| d.splice_notes(at, 0, word)).unwrap().unwrap();
            }
        }
        // A crash in the middle of writing a fourth record: half a header and some bytes.
        let log = dir.path().join(LOG);
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut s = StoredDoc::open(dir.path(), actor()).unwrap();
        assert_eq!(s.doc().notes(), "one two three ");
        // Writing goes on cleanly after the cut.
        s.edit(|d| d.splice_notes(0, 0, "zero ")).unwrap().unwrap();
        drop(s);
        let s = StoredDoc::open(dir.path(), actor()).unwrap();
        assert_eq!(s.doc().notes(), "zero one two three ");
    }

    #[test]
    fn a_corrupted_record_stops_replay_there() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = StoredDoc::open(dir.path(), actor()).unwrap();
            s.edit(|d| d.splice_notes(0, 0, "kept")).unwrap().unwrap();
            s.edit(|d| d.splice_notes(4, 0, "-flipped")).unwrap().unwrap();
        }
        let log = dir.path().join(LOG);
        let mut raw = std::fs::read(&log).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
        std::fs::write(&log, raw).unwrap();
        let s = StoredDoc::open(dir.path(), actor()).unwrap();
        assert_eq!(s.doc().notes(), "kept");
    }

    #[test]
    fn compaction_keeps_everything_and_empties_the_log() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = StoredDoc::open(dir.path(), actor()).unwrap();
            s.edit(|d| d.splice_notes(0, 0, "before")).unwrap().unwrap();
            s.compact().unwrap();
            assert_eq!(std::fs::metadata(dir.path().join(LOG)).unwrap().len(), 0);
            s.edit(|d| d.splice_notes(6, 0, " after")).unwrap().unwrap();
        }
        let s = StoredDoc::open(dir.path(), actor()).unwrap();
        assert_eq!(s.doc().notes(), "before after");
    }

    #[test]
    fn refused_edits_write_nothing_and_unreadable_snapshots_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = StoredDoc::open(dir.path(), actor()).unwrap();
        assert!(s.edit(|d| d.splice_notes(99, 0, "x")).unwrap().is_err());
        assert_eq!(std::fs::metadata(dir.path().join(LOG)).unwrap().len(), 0);
        drop(s);
        std::fs::write(dir.path().join(SNAPSHOT), b"garbage").unwrap();
        let err = StoredDoc::open(dir.path(), actor()).unwrap_err();
        assert!(err.to_string().contains("notes.automerge"), "{err}");
    }
}
