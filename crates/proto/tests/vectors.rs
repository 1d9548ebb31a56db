//! The shared test vectors in `tests/vectors/`: the same JSON files run here and in the web UI's
//! unit tests (`npm run test:unit`), so Rust and the browser are held to one protocol. Rust is
//! the reference; each case says why it is there.

use std::path::PathBuf;

use confab_proto::datachannel::{
    FileOfferError, FrameError, SnapshotAssembly, SnapshotError, SyncFrame, fp_mac,
    snapshot_frames, validate_file_offer, verify_fp_mac,
};
use confab_proto::text::{PositionError, char_to_utf16, utf16_len, utf16_to_char};
use confab_proto::{DisplayName, IdError, LinkError, MeetingKey, MeetingLink};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn vectors(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The cases of one list, each with its `why` for failure messages.
fn cases<'a>(doc: &'a Value, list: &str) -> Vec<(&'a str, &'a Value)> {
    let cases = doc[list].as_array().unwrap_or_else(|| panic!("no list {list:?}"));
    assert!(!cases.is_empty(), "{list} has no cases");
    cases.iter().map(|c| (c["why"].as_str().expect("every case says why"), c)).collect()
}

fn str_of<'a>(case: &'a Value, field: &str) -> &'a str {
    case[field].as_str().unwrap_or_else(|| panic!("{field} is not a string in {case}"))
}

fn u64_of(case: &Value, field: &str) -> u64 {
    case[field].as_u64().unwrap_or_else(|| panic!("{field} is not a number in {case}"))
}

fn usize_of(case: &Value, field: &str) -> usize {
    usize::try_from(u64_of(case, field)).expect("fits usize")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A payload: `{"hex": …}` or `{"len": n, "seed": s}` with byte i = (s + i) mod 251.
fn payload(spec: &Value) -> Vec<u8> {
    if let Some(text) = spec["hex"].as_str() {
        return unhex(text);
    }
    let seed = u64_of(spec, "seed");
    (0..u64_of(spec, "len")).map(|i| ((seed + i) % 251) as u8).collect()
}

#[test]
fn fp_mac_vectors() {
    let doc = vectors("fp-mac.json");
    for (why, case) in cases(&doc, "macs") {
        let key: MeetingKey = str_of(case, "key").parse().unwrap();
        let mac = fp_mac(&key, str_of(case, "own_fp"), str_of(case, "peer_fp"));
        assert_eq!(mac, str_of(case, "mac"), "{why}");
    }
    for (why, case) in cases(&doc, "verify") {
        let key: MeetingKey = str_of(case, "key").parse().unwrap();
        let valid = verify_fp_mac(
            &key,
            str_of(case, "mac"),
            str_of(case, "remote_fp"),
            str_of(case, "local_fp"),
        );
        assert_eq!(valid, case["valid"].as_bool().unwrap(), "{why}");
    }
}

#[test]
fn file_offer_vectors() {
    let doc = vectors("file-offer.json");
    for (why, case) in cases(&doc, "cases") {
        let got = validate_file_offer(
            str_of(case, "id"),
            str_of(case, "sha256"),
            u64_of(case, "size"),
            u64_of(case, "max_bytes"),
        );
        match (&case["error"], got) {
            (Value::Null, Ok(())) => {}
            (Value::Null, Err(e)) => panic!("{why}: refused with {e}"),
            (want, Ok(())) => panic!("{why}: accepted, want {want}"),
            (want, Err(e)) => {
                let kind = match e {
                    FileOfferError::BadId => "bad_id",
                    FileOfferError::BadSha256 => "bad_sha256",
                    FileOfferError::TooLarge { .. } => "too_large",
                };
                assert_eq!(kind, str_of(want, "kind"), "{why}");
                assert_eq!(e.to_string(), str_of(want, "message"), "{why}");
            }
        }
    }
}

#[test]
fn snapshot_chunking_vectors() {
    let doc = vectors("snapshot.json");
    for (why, case) in cases(&doc, "chunking") {
        let input = payload(&case["input"]);
        let frames = snapshot_frames(&input);
        let lengths: Vec<u64> = frames.iter().map(|f| f.len() as u64).collect();
        let want: Vec<u64> =
            case["frame_lengths"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
        assert_eq!(lengths, want, "{why}");
        assert_eq!(hex(&Sha256::digest(frames.concat())), str_of(case, "frames_sha256"), "{why}");
        if let Some(want) = case["frames_hex"].as_array() {
            let got: Vec<String> = frames.iter().map(|f| hex(f)).collect();
            let want: Vec<&str> = want.iter().map(|f| f.as_str().unwrap()).collect();
            assert_eq!(got, want, "{why}");
        }
    }
}

/// Feeds the frames of a reassembly case; the snapshot, or the kind of the first error.
fn reassemble(case: &Value) -> Result<Vec<u8>, &'static str> {
    let mut assembly = SnapshotAssembly::new(usize_of(case, "max_bytes"));
    let snapshot_error = |e: SnapshotError| match e {
        SnapshotError::TooLarge { .. } => "snapshot_too_large",
        SnapshotError::NotStarted => "not_started",
    };
    for frame in case["frames"].as_array().expect("frames") {
        let mut bytes = vec![u8::try_from(u64_of(frame, "tag")).expect("a tag is a byte")];
        if !frame["payload"].is_null() {
            bytes.extend(payload(&frame["payload"]));
        }
        match SyncFrame::decode(&bytes) {
            Ok(SyncFrame::SnapshotChunk(chunk)) => assembly.push(chunk).map_err(snapshot_error)?,
            Ok(SyncFrame::SnapshotEnd) => return assembly.finish().map_err(snapshot_error),
            Ok(SyncFrame::Sync(_)) => panic!("reassembly vectors hold no sync messages"),
            Err(FrameError::TooLarge(_)) => return Err("frame_too_large"),
            Err(FrameError::TrailingPayload) => return Err("end_with_payload"),
            Err(FrameError::UnknownTag(_)) => return Err("unknown_tag"),
            Err(FrameError::Empty) => return Err("empty"),
        }
    }
    panic!("the frames of {case} never end the snapshot");
}

#[test]
fn snapshot_reassembly_vectors() {
    let doc = vectors("snapshot.json");
    for (why, case) in cases(&doc, "reassembly") {
        match (reassemble(case), case["error"].as_str()) {
            (Ok(bytes), None) => {
                assert_eq!(bytes.len() as u64, u64_of(&case["result"], "len"), "{why}");
                let sha = hex(&Sha256::digest(&bytes));
                assert_eq!(sha, str_of(&case["result"], "sha256"), "{why}");
            }
            (Ok(bytes), Some(want)) => panic!("{why}: {} bytes, want {want}", bytes.len()),
            (Err(kind), want) => assert_eq!(Some(kind), want, "{why}"),
        }
    }
}

fn link_error_kind(e: LinkError) -> &'static str {
    match e {
        LinkError::NotALink => "not_a_link",
        LinkError::UnsupportedScheme => "unsupported_scheme",
        LinkError::NoRoom => "no_room",
        LinkError::BadRoom => "bad_room",
        LinkError::MissingKey => "missing_key",
        LinkError::BadKey => "bad_key",
        LinkError::BadName => "bad_name",
        LinkError::BadHost => "bad_host",
    }
}

#[test]
fn meeting_link_vectors() {
    let doc = vectors("meeting-link.json");
    for list in ["links", "deep_links"] {
        for (why, case) in cases(&doc, list) {
            let got = str_of(case, "link").parse::<MeetingLink>();
            match (&case["parsed"], got) {
                (Value::Null, Ok(link)) => panic!("{why}: parsed as {link:?}"),
                (Value::Null, Err(e)) => {
                    assert_eq!(link_error_kind(e), str_of(case, "error"), "{why}");
                }
                (_, Err(e)) => panic!("{why}: {e}"),
                (want, Ok(link)) => {
                    assert_eq!(link.server(), str_of(want, "server"), "{why}");
                    assert_eq!(link.room().as_str(), str_of(want, "room"), "{why}");
                    assert_eq!(link.key().as_str(), str_of(want, "key"), "{why}");
                    assert_eq!(link.name().map(|n| n.as_str()), want["name"].as_str(), "{why}");
                    assert_eq!(link.websocket_url(), str_of(want, "websocket_url"), "{why}");
                }
            }
        }
    }
}

#[test]
fn display_name_vectors() {
    let doc = vectors("display-name.json");
    for (why, case) in cases(&doc, "cases") {
        match (DisplayName::new(str_of(case, "input")), case["error"].as_str()) {
            (Ok(name), None) => assert_eq!(name.as_str(), str_of(case, "name"), "{why}"),
            (Ok(name), Some(want)) => panic!("{why}: accepted as {name:?}, want {want}"),
            (Err(e), want) => {
                let kind = match e {
                    IdError::NameLength => "name_length",
                    IdError::NameCharacters => "name_characters",
                    IdError::NotAnId => "not_an_id",
                };
                assert_eq!(Some(kind), want, "{why}");
            }
        }
    }
}

#[test]
fn utf16_position_vectors() {
    let doc = vectors("utf16-positions.json");
    for (why, case) in cases(&doc, "to_char") {
        let text = str_of(case, "text");
        assert_eq!(utf16_len(text), usize_of(case, "utf16_len"), "{why}");
        match (utf16_to_char(text, usize_of(case, "utf16")), case["error"].as_str()) {
            (Ok(char_pos), None) => assert_eq!(char_pos, usize_of(case, "char"), "{why}"),
            (Ok(char_pos), Some(want)) => panic!("{why}: got {char_pos}, want {want}"),
            (Err(e), want) => {
                let kind = match e {
                    PositionError::PastEnd { .. } => "past_end",
                    PositionError::InsideCharacter { .. } => "inside_character",
                };
                assert_eq!(Some(kind), want, "{why}");
            }
        }
    }
    for (why, case) in cases(&doc, "to_utf16") {
        let got = char_to_utf16(str_of(case, "text"), usize_of(case, "char"));
        assert_eq!(got, usize_of(case, "utf16"), "{why}");
    }
    for (why, case) in cases(&doc, "edits") {
        let mut chars: Vec<char> = str_of(case, "text").chars().collect();
        let text: String = chars.iter().collect();
        let at = utf16_to_char(&text, usize_of(case, "pos")).unwrap();
        if let Some(insert) = case["insert"].as_str() {
            chars.splice(at..at, insert.chars());
        } else {
            let end =
                utf16_to_char(&text, usize_of(case, "pos") + usize_of(case, "delete")).unwrap();
            chars.drain(at..end);
        }
        assert_eq!(chars.into_iter().collect::<String>(), str_of(case, "result"), "{why}");
    }
}
