//! The window's security settings, read as Tauri reads them: a strict CSP, and one capability
//! that grants the main window our own commands and nothing else.

use std::path::Path;

use serde_json::Value;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_csp_is_set_and_loads_nothing_remote() {
    let config = read_json(&crate_dir().join("tauri.conf.json"));
    let csp = &config["app"]["security"]["csp"];
    let directives = csp.as_object().unwrap_or_else(|| panic!("the CSP must be set, not {csp}"));
    for (directive, sources) in directives {
        let sources = sources.as_str().unwrap_or_default();
        for source in sources.split_whitespace() {
            let remote = source.starts_with("http") && source != "http://ipc.localhost";
            assert!(
                !remote && source != "*" && !source.contains("unsafe-eval"),
                "{directive} allows {source}: the window must load nothing remote and run no eval"
            );
        }
    }
    for (directive, wanted) in [("default-src", "'self'"), ("script-src", "'self'")] {
        assert_eq!(directives.get(directive).and_then(Value::as_str), Some(wanted), "{directive}");
    }
    assert_eq!(directives.get("object-src").and_then(Value::as_str), Some("'none'"));
    let windows = config["app"]["windows"].as_array().cloned().unwrap_or_default();
    for window in windows {
        let url = window["url"].as_str().unwrap_or("index.html");
        assert!(!url.contains("://"), "the window opens {url}: only the bundled UI may be shown");
    }
}

#[test]
fn one_capability_grants_the_main_window_our_commands_only() {
    let dir = crate_dir().join("capabilities");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert_eq!(files.len(), 1, "one capability file, not {files:?}");
    let capability = read_json(&files[0]);
    assert_eq!(capability["windows"], serde_json::json!(["main"]), "for the main window alone");
    assert!(capability.get("remote").is_none(), "no remote origin may use the commands");
    let build = std::fs::read_to_string(crate_dir().join("build.rs")).unwrap_or_default();
    let permissions = capability["permissions"].as_array().cloned().unwrap_or_default();
    assert!(!permissions.is_empty());
    for permission in permissions {
        let name =
            permission.as_str().unwrap_or_else(|| panic!("{permission}: scopes are not ours"));
        assert!(!name.contains('*'), "{name} is a wildcard");
        let command = name
            .strip_prefix("allow-")
            .unwrap_or_else(|| panic!("{name} is not one of our commands"))
            .replace('-', "_");
        assert!(build.contains(&format!("\"{command}\"")), "{name}: build.rs names no {command}");
    }
}
