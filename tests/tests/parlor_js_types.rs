//! `@parlor/client` (examples/web-chat/client) is a package a front-end
//! installs: its TypeScript declarations (`parlor.d.ts`) must describe
//! `parlor.js` well enough for a strict `tsc --noEmit` over a typed usage
//! file (`tests/js/typed_usage.ts`, whose `@ts-expect-error` lines fail
//! when a declaration decays to `any`), and its `package.json` must point
//! at both. Needs Node and `npm ci` in `tests/js` (TypeScript); without
//! them the test says it was skipped.

use std::path::Path;

use parlor_tests::node_ready;

#[test]
fn the_client_package_type_checks_for_a_typed_app() {
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/web-chat/client");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(client.join("package.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["type"], "module");
    for key in ["types", "main"] {
        let file = manifest[key].as_str().unwrap();
        assert!(client.join(file).exists(), "package.json {key}: {file}");
    }
    assert_eq!(manifest["exports"]["."]["types"], manifest["types"]);

    if !node_ready(
        "the_client_package_type_checks_for_a_typed_app",
        "typescript",
    ) {
        return;
    }
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    let out = std::process::Command::new(js.join("node_modules/.bin/tsc"))
        .args(["--noEmit", "-p"])
        .arg(js.join("tsconfig.json"))
        .output()
        .expect("run tsc");
    assert!(
        out.status.success(),
        "tsc --noEmit failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
