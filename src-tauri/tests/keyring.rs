//! The identity kept in real OS keyrings: the Secret Service (gnome-keyring in a private D-Bus
//! session), the kernel's keyutils (in a session keyring of its own), and no keyring at all.
//! Each case runs `inside_a_keyring_session` in a child process inside that session.

use std::process::Command;

fn test_exe() -> String {
    std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the inner test under `wrapper` (a command ending where the test binary goes), with the
/// keyring store `store` chosen and `expect` as what it must find.
fn run_inside(wrapper: &[&str], store: &str, expect: &str, env: &[(&str, &str)]) {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(wrapper[0]);
    command
        .args(&wrapper[1..])
        .args([&test_exe(), "--exact", "inside_a_keyring_session", "--include-ignored"])
        .env("HOME", home.path())
        .env("CONFAB_KEYRING", store)
        .env("CONFAB_EXPECT_STORE", expect);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap_or_else(|e| panic!("{}: {e}", wrapper[0]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "inside {wrapper:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn identity_and_meeting_keys_round_trip_through_the_secret_service() {
    // gnome-keyring makes and unlocks a login collection with this password (a fresh HOME).
    let unlock = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/unlock-keyring.sh");
    // A bus that starts nothing on demand, as the desktop tests' (see the file).
    let bus =
        concat!("--config-file=", env!("CARGO_MANIFEST_DIR"), "/../scripts/test-session-bus.conf");
    let wrapper = ["dbus-run-session", bus, "--", "sh", "-c", "\"$0\" test && exec \"$@\"", unlock];
    run_inside(&wrapper, "secret-service", "secret-service", &[]);
}

#[test]
fn identity_and_meeting_keys_round_trip_through_keyutils() {
    run_inside(&["keyctl", "session", "-"], "keyutils", "keyutils", &[]);
}

#[test]
fn without_a_keyring_the_app_says_why_and_keeps_an_identity_for_the_session() {
    let nowhere = [("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/confab-test-bus")];
    run_inside(&["env"], "secret-service", "none", &nowhere);
}

#[test]
#[ignore = "run by the tests above, inside a keyring session of their making"]
fn inside_a_keyring_session() {
    use confab_desktop::secrets::Identity;
    let expect = std::env::var("CONFAB_EXPECT_STORE").unwrap_or_default();
    let is_uuid = confab_proto::document::is_uuid_v4;
    let data_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let load = || Identity::load(data_dir.path());
    let mut identity = load();
    assert!(is_uuid(&identity.author_id), "an author id, whatever happens");
    if expect == "none" {
        assert_eq!(identity.store(), None);
        let problem = identity.problem.clone().unwrap_or_default();
        assert!(problem.starts_with("no keyring to keep your identity"), "{problem}");
        assert!(problem.contains("secret-service"), "says which store failed: {problem}");
        identity.set_name("Ada").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(identity.name.as_deref(), Some("Ada"), "the name lasts the session");
        assert_eq!(identity.meeting_key("room"), None);
        assert_eq!(load().name, None, "and only the session");
        assert_eq!(load().author_id, identity.author_id, "the author id is kept on disk instead");
        return;
    }
    assert_eq!(identity.store(), Some(expect.as_str()), "{:?}", identity.problem);
    // keyutils' user keyring outlives a session: what one run keeps, the next may find.
    let (name, room) =
        (format!("Ada {}", std::process::id()), format!("ROOM{}", std::process::id()));
    identity.set_name(&name).unwrap_or_else(|e| panic!("{e}"));
    identity.keep_meeting_key(&room, "KEY").unwrap_or_else(|e| panic!("{e}"));

    let again = load();
    assert_eq!(again.author_id, identity.author_id, "the same install, the same author");
    assert_eq!(again.name.as_deref(), Some(name.as_str()));
    assert_eq!(again.meeting_key(&room).as_deref(), Some("KEY"));
    again.forget_meeting_key(&room).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(load().meeting_key(&room), None);
    // An access token for a server, kept until forgotten.
    let server = format!("https://confab{}.example.org", std::process::id());
    identity
        .keep_access_token(&server, Some("team-token-0123456789"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(load().access_token(&server).as_deref(), Some("team-token-0123456789"));
    assert_eq!(load().access_token("https://another.example.org"), None);
    identity.keep_access_token(&server, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(load().access_token(&server), None);
    // The kernel's keyring forgets at logout, and the user is told.
    assert_eq!(again.problem.is_some(), expect == "keyutils", "{:?}", again.problem);
}
