//! File transfer over a `file:ID` data channel (docs/protocol.md §3): hashing a file before it is
//! offered, streaming it in 16 KiB chunks, and receiving it into the download directory.
//!
//! The `ctl` side (offer, accept, cancel, done) is the engine's; this module moves the bytes.
//! A received file is written to a hidden `.part` file and renamed into place only after its
//! size and sha256 match the offer, under a name that [`safe_file_name`] made from what the
//! peer sent: a peer can never choose where a file lands.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use confab_proto::limits::FILE_CHUNK_BYTES;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webrtc::data_channel::{DataChannel, DataChannelEvent};

/// File reads and writes go through buffers of this size.
const IO_BUFFER_BYTES: usize = 1024 * 1024;
/// Progress is reported at most this often (and at the end).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How long a receiver may stay silent before a transfer is given up.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest name we keep, in bytes (common file systems allow 255).
const MAX_NAME_BYTES: usize = 200;

/// Why a file could not be offered, sent or received. File-system errors keep their text: the
/// updates that carry this are compared and cloned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("cannot {doing}: {detail}")]
    Io { doing: &'static str, detail: String },
    #[error("cannot read {shown}: {detail}")]
    Unreadable { shown: String, detail: String },
    #[error("{0} is not a file")]
    NotAFile(String),
    #[error("{0} has no file name")]
    NoName(String),
    #[error("{shown} is {size} bytes; the limit is {limit}")]
    TooLarge { shown: String, size: u64, limit: u64 },
    #[error("{shown} grew past the limit of {limit} bytes")]
    GrewPastLimit { shown: String, limit: u64 },
    #[error("the file got shorter while it was being sent")]
    Shrunk,
    #[error("the file channel did not open")]
    DidNotOpen,
    #[error("the channel closed")]
    ChannelClosed,
    #[error("the channel failed: {0}")]
    ChannelFailed(String),
    #[error("the receiver stopped taking data")]
    ReceiverStalled,
    #[error("the receiver did not confirm the end of the file")]
    NotConfirmed,
    #[error("the sender went silent")]
    SenderSilent,
    #[error("the sender sent a chunk over 16 KiB")]
    ChunkTooLarge,
    #[error("the sender sent more than the offered size")]
    MoreThanOffered,
    #[error("the transfer stopped at {received} of {size} bytes")]
    Stopped { received: u64, size: u64 },
    #[error("the file's sha256 does not match the offer; it was discarded")]
    HashMismatch,
    #[error("too many files named {0} in the download directory")]
    NoFreeName(String),
}

/// A failed file-system step, for `map_err`.
fn io(doing: &'static str) -> impl FnOnce(std::io::Error) -> TransferError {
    move |e| TransferError::Io { doing, detail: e.to_string() }
}

/// What happens to one transfer, as its task reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferUpdate {
    /// Bytes moved so far.
    Progress(u64),
    /// Sent in full, or received, verified and saved at the path.
    Done(Option<PathBuf>),
    Failed(TransferError),
}

/// A file about to be offered: its name, size and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// Reads a file once to learn its size and sha256. Refuses anything that is not a regular file
/// or is over `max_bytes`.
pub async fn inspect(path: &Path, max_bytes: u64) -> Result<FileInfo, TransferError> {
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| TransferError::Unreadable {
        shown: path.display().to_string(),
        detail: e.to_string(),
    };
    let meta = tokio::fs::metadata(path).await.map_err(unreadable)?;
    if !meta.is_file() {
        return Err(TransferError::NotAFile(shown));
    }
    if meta.len() > max_bytes {
        return Err(TransferError::TooLarge { shown, size: meta.len(), limit: max_bytes });
    }
    let name = path
        .file_name()
        .map(|n| safe_file_name(&n.to_string_lossy()))
        .ok_or_else(|| TransferError::NoName(shown.clone()))?;
    let mut file = tokio::fs::File::open(path).await.map_err(unreadable)?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(unreadable)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    if size > max_bytes {
        return Err(TransferError::GrewPastLimit { shown, limit: max_bytes });
    }
    Ok(FileInfo { path: path.to_owned(), name, size, sha256: hex(&hash.finalize()) })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A name from a peer made safe to create inside the download directory: only its last path
/// component (either separator), no control or invisible characters, no leading dots (no hidden
/// files, no `..`), no characters Windows refuses, at most 200 bytes; "file" if nothing is left.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !confab_proto::ids::is_invisible_or_direction(*c))
        .map(|c| if matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') { '_' } else { c })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim_end_matches(['.', ' ']);
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    if out.is_empty() { "file".to_owned() } else { out }
}

/// Sends the file's bytes on an open channel. `send` waits while the channel's buffer is full
/// (the connection is built with a send-buffer limit), which is the back-pressure.
pub async fn stream(
    channel: Arc<dyn DataChannel>,
    path: PathBuf,
    size: u64,
    report: impl Fn(TransferUpdate),
) {
    let update = match stream_inner(&channel, &path, size, &report).await {
        Ok(()) => TransferUpdate::Done(None),
        Err(e) => TransferUpdate::Failed(e),
    };
    report(update);
}

async fn stream_inner(
    channel: &Arc<dyn DataChannel>,
    path: &Path,
    size: u64,
    report: &impl Fn(TransferUpdate),
) -> Result<(), TransferError> {
    wait_open(channel).await?;
    let file = tokio::fs::File::open(path).await.map_err(io("open the file"))?;
    // Each read of a tokio file is a hop to a blocking thread: read big, send in chunks.
    let mut file = tokio::io::BufReader::with_capacity(IO_BUFFER_BYTES, file);
    let mut sent = 0u64;
    let mut reported = tokio::time::Instant::now();
    let mut buf = vec![0u8; FILE_CHUNK_BYTES];
    while sent < size {
        let want = usize::try_from(size - sent).unwrap_or(usize::MAX).min(FILE_CHUNK_BYTES);
        let n = file.read(&mut buf[..want]).await.map_err(io("read the file"))?;
        if n == 0 {
            return Err(TransferError::Shrunk);
        }
        tokio::time::timeout(STALL_TIMEOUT, channel.send(BytesMut::from(&buf[..n])))
            .await
            .map_err(|_| TransferError::ReceiverStalled)?
            .map_err(|e| TransferError::ChannelFailed(e.to_string()))?;
        sent += n as u64;
        if reported.elapsed() >= PROGRESS_EVERY {
            reported = tokio::time::Instant::now();
            report(TransferUpdate::Progress(sent));
        }
    }
    // The receiver closes the channel once it has everything; closing it from here could drop
    // bytes still in our buffer.
    tokio::time::timeout(STALL_TIMEOUT, async {
        while let Some(event) = channel.poll().await {
            if matches!(event, DataChannelEvent::OnClose) {
                break;
            }
        }
    })
    .await
    .map_err(|_| TransferError::NotConfirmed)?;
    report(TransferUpdate::Progress(sent));
    Ok(())
}

async fn wait_open(channel: &Arc<dyn DataChannel>) -> Result<(), TransferError> {
    tokio::time::timeout(STALL_TIMEOUT, async {
        while let Some(event) = channel.poll().await {
            match event {
                DataChannelEvent::OnOpen => return Ok(()),
                DataChannelEvent::OnClose => return Err(TransferError::ChannelClosed),
                _ => {}
            }
        }
        Err(TransferError::ChannelClosed)
    })
    .await
    .map_err(|_| TransferError::DidNotOpen)?
}

/// What a receiver expects on a `file:ID` channel: what the offer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub download_dir: PathBuf,
}

/// Where transfer `id` is written until it is verified: hidden, in the download directory (so
/// the final rename stays on one file system).
pub fn part_path(download_dir: &Path, id: &str) -> PathBuf {
    download_dir.join(format!(".confab-{}.part", safe_file_name(id)))
}

/// Receives a file from an incoming channel into `part`; reports `Done(path)` once it is
/// verified and saved under its final name.
pub async fn receive(
    channel: Arc<dyn DataChannel>,
    part: PathBuf,
    expected: Expected,
    report: impl Fn(TransferUpdate),
) {
    let result = receive_inner(&channel, &part, &expected, &report).await;
    let _ = channel.close().await;
    let update = match result {
        Ok(path) => TransferUpdate::Done(Some(path)),
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            TransferUpdate::Failed(e)
        }
    };
    report(update);
}

async fn receive_inner(
    channel: &Arc<dyn DataChannel>,
    part: &Path,
    expected: &Expected,
    report: &impl Fn(TransferUpdate),
) -> Result<PathBuf, TransferError> {
    tokio::fs::create_dir_all(&expected.download_dir)
        .await
        .map_err(io("create the download directory"))?;
    let file =
        tokio::fs::File::create(part).await.map_err(io("write in the download directory"))?;
    let mut file = tokio::io::BufWriter::with_capacity(IO_BUFFER_BYTES, file);
    let mut hash = Sha256::new();
    let mut received = 0u64;
    let mut reported = tokio::time::Instant::now();
    while received < expected.size {
        let event = tokio::time::timeout(STALL_TIMEOUT, channel.poll())
            .await
            .map_err(|_| TransferError::SenderSilent)?;
        match event {
            Some(DataChannelEvent::OnMessage(m)) => {
                if m.data.len() > FILE_CHUNK_BYTES {
                    return Err(TransferError::ChunkTooLarge);
                }
                received += m.data.len() as u64;
                if received > expected.size {
                    return Err(TransferError::MoreThanOffered);
                }
                hash.update(&m.data);
                file.write_all(&m.data).await.map_err(io("write the file"))?;
                if reported.elapsed() >= PROGRESS_EVERY {
                    reported = tokio::time::Instant::now();
                    report(TransferUpdate::Progress(received));
                }
            }
            Some(DataChannelEvent::OnClose) | None => {
                return Err(TransferError::Stopped { received, size: expected.size });
            }
            Some(_) => {}
        }
    }
    if hex(&hash.finalize()) != expected.sha256 {
        return Err(TransferError::HashMismatch);
    }
    file.flush().await.map_err(io("write the file"))?;
    file.get_ref().sync_all().await.map_err(io("write the file"))?;
    drop(file);
    report(TransferUpdate::Progress(received));
    let path = free_path(&expected.download_dir, &expected.name).await?;
    tokio::fs::rename(part, &path).await.map_err(io("save the file"))?;
    Ok(path)
}

/// `dir/name`, or `dir/stem (2).ext` and so on if that exists: a received file never replaces
/// one already there. The empty file created here reserves the name until the rename.
async fn free_path(dir: &Path, name: &str) -> Result<PathBuf, TransferError> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    for n in 1..1000 {
        let candidate =
            if n == 1 { dir.join(name) } else { dir.join(format!("{stem} ({n}){ext}")) };
        match tokio::fs::OpenOptions::new().write(true).create_new(true).open(&candidate).await {
            Ok(_) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io("save the file")(e)),
        }
    }
    Err(TransferError::NoFreeName(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_peers_stay_inside_the_download_directory() {
        let cases = [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("..\\..\\Windows\\system.ini", "system.ini"),
            ("/absolute/path.txt", "path.txt"),
            ("..", "file"),
            ("...", "file"),
            ("", "file"),
            ("dir/", "file"),
            (".bashrc", "bashrc"),
            ("a\u{0}b\nc.txt", "abc.txt"),
            ("evil\u{202e}txt.exe", "eviltxt.exe"),
            ("C:drive.txt", "C_drive.txt"),
            ("trailing. . ", "trailing"),
        ];
        for (given, want) in cases {
            assert_eq!(safe_file_name(given), want, "for {given:?}");
        }
        let long = "é".repeat(300);
        let cut = safe_file_name(&long);
        assert!(cut.len() <= MAX_NAME_BYTES && cut.chars().all(|c| c == 'é'));
    }

    #[tokio::test]
    async fn free_path_never_reuses_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let a = free_path(dir.path(), "notes.txt").await.unwrap();
        let b = free_path(dir.path(), "notes.txt").await.unwrap();
        let c = free_path(dir.path(), "README").await.unwrap();
        let d = free_path(dir.path(), "README").await.unwrap();
        assert_eq!(a, dir.path().join("notes.txt"));
        assert_eq!(b, dir.path().join("notes (2).txt"));
        assert_eq!(c, dir.path().join("README"));
        assert_eq!(d, dir.path().join("README (2)"));
    }

    #[tokio::test]
    async fn inspect_hashes_and_refuses_what_it_cannot_send() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc.txt");
        std::fs::write(&path, b"abc").unwrap();
        let info = inspect(&path, 10).await.unwrap();
        assert_eq!(info.size, 3);
        assert_eq!(info.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(matches!(
            inspect(&path, 2).await,
            Err(TransferError::TooLarge { size: 3, limit: 2, .. })
        ));
        assert!(matches!(inspect(dir.path(), 10).await, Err(TransferError::NotAFile(_))));
        let missing = inspect(&dir.path().join("none"), 10).await.unwrap_err();
        assert!(
            matches!(&missing, TransferError::Unreadable { shown, .. } if shown.ends_with("none"))
        );
    }
}
