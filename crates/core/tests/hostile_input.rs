//! A peer may send anything on the `sync` channel, and a stored document may be damaged: every
//! frame, snapshot and cursor is answered with `Ok` or `Err`, never a panic, and a refused one
//! leaves the document as it was. Automerge's own known crash inputs (shipped with its crate,
//! `tests/fuzz-crashers`) are replayed through our entry points, and the hostile frames in
//! `tests/vectors/hostile.json` are the same ones the browser's unit tests refuse.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use automerge::ActorId;
use confab_core::{MeetingDoc, PeerSync};
use proptest::prelude::*;
use serde_json::Value;

fn doc() -> MeetingDoc {
    let mut doc = MeetingDoc::new(ActorId::from([7u8; 16]));
    doc.splice_notes(0, 0, "agenda").unwrap();
    doc
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// Feeds `frames` to a fresh sync state over `doc`; the first refusal ends it.
fn receive_all(doc: &mut MeetingDoc, frames: &[Vec<u8>]) -> Result<(), String> {
    let mut sync = PeerSync::new();
    for frame in frames {
        sync.receive(doc, frame).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[test]
fn the_shared_hostile_frames_are_refused_and_change_nothing() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/hostile.json");
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = vectors["sync_frames"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let why = case["why"].as_str().unwrap();
        let frames: Vec<Vec<u8>> =
            case["frames"].as_array().unwrap().iter().map(|f| hex(f.as_str().unwrap())).collect();
        let mut doc = doc();
        let before = (doc.heads(), doc.notes());
        assert!(receive_all(&mut doc, &frames).is_err(), "{why}: refused");
        assert_eq!((doc.heads(), doc.notes()), before, "{why}: nothing changed");
    }
    for case in vectors["cursors"].as_array().unwrap() {
        let cursor = case["cursor"].as_str().unwrap();
        assert_eq!(doc().notes_cursor_position(cursor), None, "{}", case["why"]);
    }
}

/// Where cargo unpacked the automerge crate this build uses: its version from Cargo.lock, in
/// cargo's registry sources.
fn automerge_sources() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"automerge\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned())
        .expect("automerge in Cargo.lock");
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    std::fs::read_dir(home.join("registry/src"))
        .unwrap()
        .map(|index| index.unwrap().path().join(format!("automerge-{version}")))
        .find(|dir| dir.is_dir())
        .expect("automerge's sources in cargo's registry")
}

#[test]
fn automerge_s_known_crash_inputs_are_refused_everywhere_we_take_a_document() {
    let dir = automerge_sources().join("tests/fuzz-crashers");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // A stored document, a peer's snapshot, and a peer's sync message.
        assert!(MeetingDoc::load(&bytes, ActorId::random()).is_err(), "{name}: loaded");
        let mut doc = doc();
        let before = doc.heads();
        assert!(doc.merge_bytes(&bytes).is_err(), "{name}: merged");
        let mut frames = confab_proto::datachannel::snapshot_frames(&bytes);
        frames.insert(0, [&[0u8][..], &bytes].concat());
        assert!(receive_all(&mut doc, &frames[..1]).is_err(), "{name}: as a sync message");
        assert!(receive_all(&mut doc, &frames[1..]).is_err(), "{name}: as a snapshot");
        assert_eq!(doc.heads(), before, "{name}");
        replayed += 1;
    }
    assert!(replayed >= 5, "only {replayed} crash inputs in {}", dir.display());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn any_bytes_on_the_sync_channel_are_taken_or_refused(
        frames in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..300),
                // Tagged as a sync message, a snapshot chunk or a snapshot's end.
                (0u8..3, prop::collection::vec(any::<u8>(), 0..300))
                    .prop_map(|(tag, rest)| [vec![tag], rest].concat()),
            ],
            1..6,
        ),
    ) {
        let mut doc = doc();
        let mut sync = PeerSync::new();
        for frame in &frames {
            let _ = sync.receive(&mut doc, frame);
        }
        prop_assert!(doc.notes().contains("agenda"), "what we had is still there");
    }

    #[test]
    fn any_cursor_text_resolves_or_not(cursor in ".{0,80}|[0-9]{0,6}@[0-9a-f]{0,40}") {
        let _ = doc().notes_cursor_position(&cursor);
    }
}
