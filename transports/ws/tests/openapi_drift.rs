//! `docs/openapi.json` is the OpenAPI document the server serves at
//! `/v1/openapi.json` ([`parlor_ws::openapi_json`]): this fails when they
//! drift. Regenerate with
//! `PARLOR_BLESS=1 cargo test -p parlor-ws --test openapi_drift`.

use std::path::Path;

use parlor_engine::ErrorKind;

#[test]
fn docs_openapi_matches_the_served_document() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let served = parlor_ws::openapi_json();
    if std::env::var_os("PARLOR_BLESS").is_some() {
        std::fs::write(&path, &served).expect("write docs/openapi.json");
    }
    let documented = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        documented == served,
        "docs/openapi.json is out of date; regenerate it with \
         `PARLOR_BLESS=1 cargo test -p parlor-ws --test openapi_drift`"
    );
}

/// What the document must say, whatever else changes: the routes of
/// docs/contract.md §4, both security schemes, every §7 code, and no
/// server naming a port.
#[test]
fn the_document_names_the_contract() {
    let doc: serde_json::Value = serde_json::from_str(&parlor_ws::openapi_json()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, method) in [
        ("/v1/rooms/{room_id}/reservations", "post"),
        ("/v1/rooms/{room_id}", "get"),
        ("/v1/rooms/{room_id}/messages", "get"),
        ("/v1/rooms/{room_id}/messages", "post"),
        ("/v1/rooms/{room_id}/messages/{seq}", "patch"),
        ("/v1/rooms/{room_id}/messages/{seq}", "delete"),
        ("/v1/rooms/{room_id}/read", "put"),
        ("/v1/rooms/{room_id}/read/{user_id}", "get"),
        ("/v1/rooms/{room_id}/invites/{user_id}", "put"),
        ("/v1/rooms/{room_id}/invites/{user_id}", "delete"),
        ("/v1/rooms", "get"),
        ("/v1/rooms/{room_id}/members", "get"),
        ("/v1/rooms/{room_id}", "patch"),
        ("/v1/rooms/{room_id}", "delete"),
        ("/v1/rooms/{room_id}/kicks/{user_id}", "post"),
        ("/v1/rooms/{room_id}/bans/{user_id}", "put"),
        ("/v1/rooms/{room_id}/bans/{user_id}", "delete"),
        ("/v1/rooms/{room_id}/moderators/{user_id}", "put"),
        ("/v1/rooms/{room_id}/moderators/{user_id}", "delete"),
        ("/v1/openapi.json", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "no {method} {path}");
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
            if status == "429" {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{method} {path} 429 lacks Retry-After"
                );
            }
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["type"], "apiKey");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-Api-Key");
    // Every code of the contract's table (docs/contract.md §7).
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    let contract = include_str!("../../../docs/contract.md");
    let table = &contract[contract.find("## 7 Error codes").unwrap()..];
    let table = &table[..table.find("\n## 8").unwrap()];
    let documented: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    assert_eq!(documented.len(), ErrorKind::ALL.len(), "{documented:?}");
    for code in documented {
        assert!(codes.iter().any(|c| c == code), "ErrorCode lacks {code}");
    }
    // The shapes of docs/contract.md §2–§4 that issue 22 added.
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("Entry", "target_seq"),
        ("Entry", "edited_at"),
        ("Entry", "redacted"),
        ("Room", "first_seq"),
        ("Room", "retention"),
        ("Room", "last_read_seq"),
        ("Room", "unread"),
        ("Messages", "first_seq"),
        ("ReadState", "last_read_seq"),
        ("ReadMarker", "user_id"),
        ("PatchRoomRequest", "retention"),
    ] {
        assert!(
            schemas[schema]["properties"][field].is_object(),
            "{schema} lacks {field}"
        );
    }
    let kinds = schemas["Entry"]["properties"]["kind"]["enum"].clone();
    assert_eq!(
        kinds,
        serde_json::json!(["text", "join", "leave", "system", "edit", "redaction"])
    );
    assert!(
        doc.get("servers").is_none(),
        "a servers entry: {}",
        doc["servers"]
    );
}
