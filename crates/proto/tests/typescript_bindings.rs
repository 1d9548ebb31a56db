//! The UI's protocol types and constants are generated from confab-proto. These tests fail when
//! a file in `ui/src/gen/` no longer matches the Rust side; `make gen` (which sets
//! `CONFAB_UPDATE_GEN=1`) rewrites them.

use std::path::PathBuf;

fn check_generated(file: &str, want: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/gen").join(file);
    if std::env::var_os("CONFAB_UPDATE_GEN").is_some() {
        std::fs::write(&path, want).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "{} is stale: run `make gen` and commit the result", path.display());
}

#[test]
fn ui_protocol_types_are_up_to_date() {
    check_generated("protocol.ts", &confab_proto::typescript_bindings());
}

#[test]
fn ui_protocol_constants_are_up_to_date() {
    check_generated("constants.ts", &confab_proto::typescript_constants());
}
