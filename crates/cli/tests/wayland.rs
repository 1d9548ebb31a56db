//! Screen sharing in a Wayland session: `confab join --share-screen` goes to the
//! xdg-desktop-portal ScreenCast by itself (X11 capture would see nothing there), and every way
//! the portal can say no reaches the person as a plain reason, never a panic.

mod common;

use common::wayland::WaylandDesktop;
use common::{Confab, participant_args, run_to_end_with_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_wayland_session_sharing_asks_the_desktop_portal_and_a_cancel_is_said_plainly() {
    let desktop = WaylandDesktop::where_sharing_is_cancelled();
    let dir = tempfile::tempdir().unwrap();
    let (_host, link) = Confab::host("Host", &dir.path().join("host")).await;
    let mut args = participant_args(&["join", &link], "Sharer", &desktop.home().join("sharer"));
    args.push("--share-screen".into());
    let (code, said) = desktop.run_confab(&args).await;
    println!("in the Wayland session, confab said: {said}");
    assert_eq!(code, Some(1), "{said}\n{}", desktop.logs());
    // The portal's backend was asked (its dialog came up) and said no.
    let told = "confab: cannot share the screen: the desktop portal refused to share a screen";
    assert!(said.contains(told), "{said}\n{}", desktop.logs());
    assert!(!said.contains("panicked"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_wayland_session_without_a_portal_sharing_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, link) = Confab::host("Host", &dir.path().join("host")).await;
    let mut args = participant_args(&["join", &link], "Sharer", &dir.path().join("sharer"));
    args.push("--share-screen".into());
    // A session bus that is not there: no portal can answer.
    let bus = format!("unix:path={}", dir.path().join("no-bus").display());
    let env = [
        ("WAYLAND_DISPLAY", "wayland-0"),
        ("XDG_SESSION_TYPE", "wayland"),
        ("DBUS_SESSION_BUS_ADDRESS", bus.as_str()),
    ];
    let (code, stderr) = run_to_end_with_env(&args, &env).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot share the screen: sharing a screen in a Wayland session needs the desktop portal"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
