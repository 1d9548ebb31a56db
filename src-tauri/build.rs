fn main() {
    // Naming our commands makes Tauri generate one `allow-…` permission for each, and deny any
    // command that capabilities/main.json does not grant.
    let commands = tauri_build::AppManifest::new().commands(confab_commands());
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(commands))
        .unwrap_or_else(|e| panic!("tauri build: {e:#}"));
}

/// Every command the webview may call (src/commands.rs).
fn confab_commands() -> &'static [&'static str] {
    &[
        "startup",
        "recent_meetings",
        "host_meeting",
        "join_meeting",
        "meeting_command",
        "leave_meeting",
        "settings",
        "save_settings",
        "screens",
        "screen_thumbnail",
        "choose_screen",
        "picture_shown",
        "begin_file",
        "file_part",
        "send_file",
        "abandon_file",
    ]
}
