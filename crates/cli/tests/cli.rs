//! `confab host` and `confab join --json` as real processes, driven through stdin and stdout:
//! chat, notes, a file and an export across three participants; a participant killed mid-typing
//! keeps every edit it reported applied; bad input ends with a clear message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Confab, PulseAudio, is, participant_args};
use confab_media::tone_share;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_and_two_joiners_chat_edit_share_a_file_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, link) = Confab::host("Host", &dir.path().join("host")).await;
    let mut bo = Confab::join(&link, "Bo", &dir.path().join("bo"));
    let mut cy = Confab::join(&link, "Cy", &dir.path().join("cy"));
    for p in [&mut host, &mut bo, &mut cy] {
        let me = p.wait_for("joined", |e| is(e, "joined")).await;
        assert!(me["you"].as_str().unwrap().len() == 22);
    }
    for p in [&mut host, &mut bo, &mut cy] {
        p.wait_for_n("both others connected", 2, |e| is(e, "peer_connected")).await;
    }

    // Chat: each message once, everywhere, with its author.
    bo.send(json!({"cmd": "say", "text": "hello from Bo", "ref": "b1"})).await;
    bo.wait_for("the say applied", |e| is(e, "applied") && e["ref"] == "b1").await;
    for p in [&mut host, &mut bo, &mut cy] {
        let chat =
            p.wait_for("Bo's message", |e| is(e, "chat") && e["text"] == "hello from Bo").await;
        assert_eq!(chat["author"], "Bo");
    }

    // Notes typed by two at once converge.
    bo.send(json!({"cmd": "notes_insert", "pos": 0, "text": "Bo's line\n"})).await;
    cy.send(json!({"cmd": "notes_insert", "pos": 0, "text": "Cy's line\n"})).await;
    let both = |t: &str| t.contains("Bo's line\n") && t.contains("Cy's line\n");
    let text = host.wait_notes("both lines", both).await;
    assert_eq!(bo.wait_notes("the host's text", |t| t == text).await, text);
    assert_eq!(cy.wait_notes("the host's text", |t| t == text).await, text);
    cy.send(json!({"cmd": "notes_delete", "pos": 0, "len": 4})).await;
    let shorter = text.chars().skip(4).collect::<String>();
    host.wait_notes("the deletion", |t| t == shorter).await;

    // A file from Bo reaches Cy and the host, verified.
    let file = dir.path().join("agenda.txt");
    let bytes: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    bo.send(json!({"cmd": "send_file", "path": file, "ref": "f"})).await;
    let applied = bo.wait_for("the offer", |e| is(e, "applied") && e["ref"] == "f").await;
    let id = applied["id"].as_str().unwrap().to_owned();
    for p in [&mut host, &mut cy] {
        let done = p
            .wait_for("the file", |e| {
                is(e, "file") && e["id"] == id.as_str() && e["state"] == "done"
            })
            .await;
        assert_eq!(done["name"], "agenda.txt");
        assert!(std::fs::read(done["path"].as_str().unwrap()).unwrap() == bytes);
    }

    // Export writes the notes and the chat as Markdown.
    let export = dir.path().join("meeting.md");
    cy.send(json!({"cmd": "export", "path": export})).await;
    cy.wait_for("the export", |e| is(e, "applied") && e["cmd"] == "export").await;
    let markdown = std::fs::read_to_string(&export).unwrap();
    assert!(markdown.contains("hello from Bo") && markdown.contains("line\n"), "{markdown}");

    // A bad command is answered, and the session goes on.
    cy.send(json!({"cmd": "dance"})).await;
    cy.wait_for("an error", |e| {
        is(e, "error") && e["message"].as_str().unwrap().contains("bad command")
    })
    .await;
    cy.send(json!({"cmd": "notes_delete", "pos": 10_000, "len": 1, "ref": 9})).await;
    let err = cy.wait_for("a range error", |e| is(e, "error") && e["ref"] == 9).await;
    assert!(err["message"].as_str().unwrap().contains("past the end"), "{err}");

    // Bo quits: it exits 0 and the others hear that Bo left.
    let bo_id = bo.events().iter().find(|e| is(e, "joined")).unwrap()["you"].clone();
    bo.send(json!({"cmd": "quit"})).await;
    assert!(bo.exit_status().await.success());
    for p in [&mut host, &mut cy] {
        p.wait_for("Bo left", |e| is(e, "peer_left") && e["id"] == bo_id).await;
    }
    // Each chat message arrived exactly once.
    for p in [&mut host, &mut cy] {
        p.drain();
        let count =
            p.events().iter().filter(|e| is(e, "chat") && e["text"] == "hello from Bo").count();
        assert_eq!(count, 1, "{}", p.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_killed_mid_typing_keeps_every_edit_it_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, link) = Confab::host("Host", &dir.path().join("host")).await;
    let ada_dir = dir.path().join("ada");
    let mut ada = Confab::join(&link, "Ada", &ada_dir);
    ada.wait_for("connected", |e| is(e, "peer_connected")).await;

    // Ada types far more than she gets to: the process is killed after 100 edits were reported.
    const TYPED: usize = 5000;
    let lines = (0..TYPED).map(|i| {
        json!({"cmd": "notes_insert", "pos": 0, "text": format!("<{i}>"), "ref": i}).to_string()
    });
    ada.feed(lines.collect());
    ada.wait_for("100 edits applied", |e| is(e, "applied") && e["ref"] == 99).await;
    ada.kill().await;
    // Whatever she printed before dying counts as reported.
    ada.read_to_end().await;
    let acked: Vec<String> = ada
        .events()
        .iter()
        .filter(|e| is(e, "applied"))
        .map(|e| format!("<{}>", e["ref"]))
        .collect();
    assert!(
        acked.len() >= 100 && acked.len() < TYPED,
        "killed mid-typing: {} applied",
        acked.len()
    );

    // Restarted on the same data directory, Ada has every edit she reported, and so does the host.
    let mut ada = Confab::join(&link, "Ada", &ada_dir);
    let all = |t: &str| acked.iter().all(|token| t.contains(token.as_str()));
    ada.wait_notes("every reported edit after the restart", all).await;
    host.wait_notes("every reported edit at the host", all).await;
}

#[tokio::test]
async fn bad_links_and_unreachable_servers_end_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let link = "http://127.0.0.1:1/m/AAAAAAAAAAAAAAAAAAAAAA#k=AAAAAAAAAAAAAAAAAAAAAA";
    let cases: [(&[&str], i32, &str); 8] = [
        (
            &["join", "http://example.com/m/nope", "--name", "A", "--data-dir", &data],
            2,
            "malformed",
        ),
        (
            &[
                "join",
                "https://example.com/m/AAAAAAAAAAAAAAAAAAAAAA",
                "--name",
                "A",
                "--data-dir",
                &data,
            ],
            2,
            "key",
        ),
        (
            &[
                "join",
                "http://127.0.0.1:1/m/AAAAAAAAAAAAAAAAAAAAAA#k=AAAAAAAAAAAAAAAAAAAAAA",
                "--data-dir",
                &data,
            ],
            2,
            "--name",
        ),
        (
            &[
                "join",
                "http://127.0.0.1:1/m/AAAAAAAAAAAAAAAAAAAAAA#k=AAAAAAAAAAAAAAAAAAAAAA",
                "--name",
                "A",
                "--data-dir",
                &data,
            ],
            1,
            "cannot reach the signaling server",
        ),
        // An unknown device is refused before joining, with the ones there are.
        (
            &["join", link, "--name", "A", "--data-dir", &data, "--mic=no-such-mic"],
            1,
            "no microphone called \"no-such-mic\"; there are: ",
        ),
        (
            &["join", link, "--name", "A", "--data-dir", &data, "--speaker=no-such-speaker"],
            1,
            "no speaker called \"no-such-speaker\"; there are: ",
        ),
        // A synthetic camera's size must be one.
        (
            &["join", link, "--name", "A", "--data-dir", &data, "--synthetic-camera=big"],
            2,
            "\"big\" is not WIDTHxHEIGHT",
        ),
        (
            &["join", link, "--name", "A", "--data-dir", &data, "--synthetic-camera=99999x2"],
            1,
            "cannot start the synthetic camera",
        ),
    ];
    for (args, code, message) in cases {
        let (status, stderr) = common::run_to_end(args).await;
        assert_eq!(status, Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn devices_lists_the_sound_system_s_microphones_and_speakers() {
    let room = PulseAudio::start();
    let mut devices = Confab::spawn_with_env("devices", &["devices", "--json"], &room.env());
    let listed: Value = serde_json::from_str(&devices.next_line().await).unwrap();
    assert!(devices.exit_status().await.success());
    for kind in ["microphones", "speakers"] {
        let ids: Vec<&str> = listed[kind]["devices"]
            .as_array()
            .unwrap_or_else(|| panic!("{kind}: {listed}"))
            .iter()
            .filter_map(|d| d["id"].as_str())
            .collect();
        // ALSA's way to the sound server is there, and the system's default.
        assert!(ids.contains(&"pulse") && ids.contains(&"default"), "{kind}: {ids:?}");
    }
    // Without a display there are no screens, and the reason is given in the same shape.
    if std::env::var_os("DISPLAY").is_none() {
        assert!(listed["screens"]["error"].as_str().unwrap().contains("DISPLAY"), "{listed}");
    }
}

/// What `ffprobe` (Debian's ffmpeg) reads in a media file: its streams' codecs and its length.
fn probe(path: &std::path::Path) -> (Vec<String>, f64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs (scripts/setup.sh installs ffmpeg)");
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    let probed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codecs = probed["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let duration = probed["format"]["duration"].as_str().unwrap().parse().unwrap();
    (codecs, duration)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_second_recording_plays_with_its_video_and_sound() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, link) = Confab::host("Host", &dir.path().join("host")).await;
    let media = ["--synthetic-camera", "--synthetic-audio"];
    let _ada = Confab::join_with(&link, "Ada", &dir.path().join("ada"), &media);
    let file = dir.path().join("meeting.webm");
    let record = ["--record", file.to_str().unwrap()];
    let mut bo = Confab::join_with(&link, "Bo", &dir.path().join("bo"), &record);

    // Bo records from Ada's first keyframe for ten seconds, then leaves. The test waits for that
    // moment before anything else, so that its clock starts when the recording's does.
    bo.wait_for("the recording began", |e| is(e, "recording")).await;
    let began = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    bo.send(json!({"cmd": "quit"})).await;
    let recorded = bo.wait_for("the recording closed", |e| is(e, "recorded")).await;
    let asked = began.elapsed().as_secs_f64();
    assert!(bo.exit_status().await.success());

    let (codecs, duration) = probe(&file);
    assert_eq!(codecs.len(), 2, "{codecs:?}");
    assert!(codecs.contains(&"vp8".into()) && codecs.contains(&"opus".into()), "{codecs:?}");
    let said = recorded["seconds"].as_f64().unwrap();
    assert!((duration - said).abs() < 0.5, "ffprobe says {duration} s, confab said {said} s");
    assert!((duration - asked).abs() < 0.5, "{duration} s recorded of {asked} s asked");
    // The meeting's sound, as ffmpeg decodes it: Ada's tone, from start to end.
    let pcm = decoded_sound(&file);
    let seconds = |from: usize| &pcm[from * 48_000..(from + 1) * 48_000];
    for second in [1, 5, 8] {
        let share = tone_share(seconds(second), 440.0);
        assert!(share > 0.8, "second {second} of the recording is {share:.2} Ada's tone");
    }
}

/// A media file's sound, decoded by ffmpeg to 48 kHz mono samples.
fn decoded_sound(path: &std::path::Path) -> Vec<i16> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "s16le", "-ac", "1", "-ar", "48000", "-"])
        .output()
        .expect("ffmpeg (Debian's ffmpeg, installed by make test)");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beeps_from_one_cli_are_heard_by_another_at_their_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, link) = Confab::host("Host", &dir.path().join("host")).await;
    let _ada = Confab::join_with(&link, "Ada", &dir.path().join("ada"), &["--synthetic-beeps"]);
    let mut bo = Confab::join_with(&link, "Bo", &dir.path().join("bo"), &["--receive-media"]);

    // Two a second: once six are heard, each must have been placed at a beep's start. A wrong
    // clock or a detector firing on noise would scatter them over the whole half second.
    let beeps_heard = |bo: &Confab| -> Vec<f64> {
        let reports = bo.events().iter().filter(|e| is(e, "track") && e["audio"] == true);
        reports
            .flat_map(|e| e["beep_delays_ms"].as_array().cloned().unwrap_or_default())
            .filter_map(|d| d.as_f64())
            .collect()
    };
    while beeps_heard(&bo).len() < 6 {
        bo.next_line().await;
    }
    let delays = beeps_heard(&bo);
    assert!(delays.iter().all(|d| (0.0..250.0).contains(d)), "beeps heard at {delays:?} ms");
    assert_eq!(bo.events().iter().filter(|e| is(e, "track") && e["errors"] != 0).count(), 0);
}

/// What the apps log, with everything at its most verbose (the WebRTC stack too): no address of
/// this machine or of a peer, and no ICE candidate, in plain text (the server's logs are checked
/// in signaling/tests/http.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_at_the_most_verbose_level_hold_no_address_and_no_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let logs = [dir.path().join("host.log"), dir.path().join("ada.log")];
    let host_args =
        participant_args(&["host", "--listen", "127.0.0.1:0"], "Host", &dir.path().join("host"));
    let mut host = Confab::spawn_logging("Host", &host_args, &logs[0]);
    let link = host.next_line().await;
    let mut ada = Confab::spawn_logging(
        "Ada",
        &participant_args(&["join", &link], "Ada", &dir.path().join("ada")),
        &logs[1],
    );
    ada.wait_for("connected", |e| is(e, "peer_connected")).await;
    host.wait_for("connected", |e| is(e, "peer_connected")).await;
    ada.send(json!({"cmd": "say", "text": "hello"})).await;
    host.wait_for("the chat", |e| is(e, "chat") && e["text"] == "hello").await;
    host.kill().await;
    ada.kill().await;

    // The address ICE gathers on here, what every peer offers the other.
    let own = confab_core::peer::own_address().expect("a non-loopback address").to_string();
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(
            text.contains("TRACE") || text.contains("DEBUG"),
            "the test must see the logs: {}\n{text}",
            log.display()
        );
        for secret in [own.as_str(), "127.0.0.1", "typ host"] {
            assert!(!text.contains(secret), "{} holds {secret}:\n{text}", log.display());
        }
        // The WebRTC stack names the addresses and candidates it works with: they were there,
        // and were scrubbed.
        for scrubbed in ["<address>", "candidate:<redacted>"] {
            assert!(text.contains(scrubbed), "{} lacks {scrubbed}", log.display());
        }
    }
}

/// A server that asks for access tokens: a stranger with only a link to a meeting nobody opened
/// is refused and told why; a holder opens it with `--token-file`; then the link is enough, also
/// once the server has restarted and a holder is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_server_with_access_tokens_a_holder_opens_the_meeting_and_the_link_does_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# ours\nteam-token-0123456789\n").unwrap();
    let port = common::relay::free_tcp_port(std::net::Ipv4Addr::LOCALHOST);
    let listen = format!("127.0.0.1:{port}");
    let tokens_arg = tokens.to_str().unwrap();
    let serve = ["serve", "--listen", &listen, "--token-file", tokens_arg];
    let mut server = Confab::spawn("server", &serve);
    common::relay::wait_listening(port);
    let link = format!(
        "http://{listen}/m/{}#k={}",
        confab_proto::RoomId::random().as_str(),
        confab_proto::MeetingKey::random().as_str()
    );

    let mut stranger = Confab::join_with(&link, "Stranger", &dir.path().join("stranger"), &[]);
    let ended = stranger.wait_for("refused", |e| is(e, "ended")).await;
    assert_eq!(ended["code"], "bad_token", "{ended}");
    assert!(ended["reason"].as_str().unwrap().contains("access token"), "{ended}");
    assert_eq!(stranger.exit_status().await.code(), Some(1));

    let holder_args = ["--token-file", tokens_arg];
    let mut holder = Confab::join_with(&link, "Holder", &dir.path().join("holder"), &holder_args);
    holder.wait_for("joined", |e| is(e, "joined")).await;
    let mut guest = Confab::join_with(&link, "Guest", &dir.path().join("guest"), &[]);
    guest.wait_for("the holder", |e| is(e, "peer_connected") && e["name"] == "Holder").await;
    holder.wait_for("the guest", |e| is(e, "peer_connected") && e["name"] == "Guest").await;

    // The server restarts, forgetting that the meeting was open, and the holder is gone: the
    // guest is refused on rejoining, and waits instead of leaving. A holder back opens it again.
    server.kill().await;
    holder.kill().await;
    let _server = Confab::spawn("server", &serve);
    common::relay::wait_listening(port);
    guest
        .wait_for("refused while nobody opened it", |e| {
            is(e, "reconnecting") && e["reason"].as_str().is_some_and(|r| r.contains("not open"))
        })
        .await;
    let mut back = Confab::join_with(&link, "Holder", &dir.path().join("holder"), &holder_args);
    back.wait_for("the guest", |e| is(e, "peer_connected") && e["name"] == "Guest").await;
    assert!(!guest.events().iter().any(|e| is(e, "ended")), "the guest stayed in the meeting");

    // A token file that holds none is refused before anything is sent.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "# nothing yet\n").unwrap();
    let empty_args = ["--token-file", empty.to_str().unwrap()];
    let mut careless =
        Confab::join_with(&link, "Careless", &dir.path().join("careless"), &empty_args);
    assert_eq!(careless.exit_status().await.code(), Some(2));
}

/// A relay that refuses a meeting's credentials (forged, or expired) is named to the person,
/// with why: webrtc 0.21 never reports it, and relay-only peers would just never connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_the_credentials_is_told_to_the_person() {
    use common::relay::{free_port, start_coturn, start_signaling};
    use confab_core::turn_probe::{RelayProblem, probe};
    let std::net::IpAddr::V4(own) = confab_core::peer::own_address().unwrap() else {
        panic!("an IPv4 address")
    };
    let dir = tempfile::tempdir().unwrap();
    let turn_port = free_port(own);
    let _coturn = start_coturn(&[own], own, turn_port, "the-relay-secret", dir.path());
    let relay = format!("{own}:{turn_port}");

    // The check itself: the relay takes credentials made with its secret, and refuses forged
    // ones and expired ones, each with its 401.
    let peer = confab_proto::PeerId::random();
    let in_an_hour = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let credentials = confab_signaling::turn::credentials;
    let (user, credential) = credentials("the-relay-secret", &peer, in_an_hour);
    assert_eq!(probe(&relay, &user, &credential).await, Ok(()));
    for (secret, until) in [("not-the-relay-secret", in_an_hour), ("the-relay-secret", an_hour_ago)]
    {
        let (user, credential) = credentials(secret, &peer, until);
        let refused = probe(&relay, &user, &credential).await;
        assert!(
            matches!(&refused, Err(RelayProblem::Refused(why)) if why.contains("401")),
            "{refused:?}"
        );
    }

    // A signaling server whose TURN secret is not the relay's: a relay-only participant is told.
    let port = common::relay::free_tcp_port(std::net::Ipv4Addr::UNSPECIFIED);
    let _signaling =
        start_signaling(port, &[format!("turn:{relay}?transport=udp")], "not-the-relay-secret");
    let link = format!(
        "http://127.0.0.1:{port}/m/{}#k={}",
        confab_proto::RoomId::random().as_str(),
        confab_proto::MeetingKey::random().as_str()
    );
    let mut ada = Confab::join_with(&link, "Ada", &dir.path().join("ada"), &["--relay-only"]);
    let told = ada.wait_for("the relay's refusal", |e| is(e, "error")).await;
    let message = told["message"].as_str().unwrap();
    assert!(message.contains("refused this meeting's credentials"), "{message}");
    assert!(message.contains(&format!("turn:{relay}")), "the relay is named: {message}");
}
