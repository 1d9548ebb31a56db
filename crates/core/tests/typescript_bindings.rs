//! The UI's front-end API types are generated from confab-core's `api`. This test fails when
//! `ui/src/gen/api.ts` no longer matches the Rust types; `make gen` (which sets
//! `CONFAB_UPDATE_GEN=1`) rewrites it.

use std::path::PathBuf;

#[test]
fn ui_api_types_are_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/gen/api.ts");
    let want = confab_core::api::typescript_bindings();
    if std::env::var_os("CONFAB_UPDATE_GEN").is_some() {
        std::fs::write(&path, &want).expect("write ui/src/gen/api.ts");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "{} is stale: run `make gen` and commit the result", path.display());
}
