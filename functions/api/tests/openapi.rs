//! The OpenAPI document is generated from the handlers; the copy in the repo (served at
//! `/v1/openapi.json`, read by clients and the contract test) must be that document.

use std::path::Path;

fn committed_path() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
}

#[test]
fn the_committed_document_is_the_one_the_handlers_make() {
    let generated = api::openapi()
        .to_pretty_json()
        .expect("the document serialises")
        + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(committed_path(), &generated).expect("docs/openapi.json is writable");
    }
    let committed = std::fs::read_to_string(committed_path()).expect("docs/openapi.json exists");
    assert!(
        committed == generated,
        "docs/openapi.json is stale: regenerate it with `UPDATE_OPENAPI=1 cargo test -p api --test openapi` and rebuild"
    );
    assert_eq!(
        api::OPENAPI_JSON,
        committed,
        "the binary serves an older document: rebuild"
    );
}

#[test]
fn the_document_is_openapi_3_1_and_every_operation_is_secured_and_answers_problems() {
    let document: serde_json::Value = serde_json::to_value(api::openapi()).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    assert!(
        paths.keys().all(|path| path.starts_with("/v1/")),
        "every route is under /v1"
    );
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            if path == "/v1/openapi.json" {
                continue;
            }
            for status in ["401", "403", "404", "429"] {
                let problem = &responses[status]["content"]["application/problem+json"];
                assert!(
                    problem.is_object(),
                    "{method} {path} documents {status} as problem+json"
                );
            }
            assert!(
                operation.get("security").is_none()
                    || operation["security"] != serde_json::json!([{}]),
                "{method} {path} needs a caller"
            );
        }
    }
}
