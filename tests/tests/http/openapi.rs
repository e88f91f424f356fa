//! The OpenAPI document is generated from the code and complete: every route registered in
//! `api/src/routes` is in it with its method, every documented operation exists, every schema
//! reference resolves, and every error code is listed with its status. `/docs` and `/admin`
//! load nothing from elsewhere.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{spawn_with, ReadSide};

/// (METHOD, path) of every route registered in `api/src/routes`, read from the source: a route
/// added without a `#[utoipa::path]` fails the test below.
fn registered_routes() -> BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src/routes");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let pages: BTreeSet<&str> = bozor_api::routes::pages::paths().collect();
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let top_level = file.ends_with("routes/mod.rs") || file.ends_with("routes/pages.rs");
        // `route("/path", web::get()` and `resource("/path").route(web::get()`.
        for (i, _) in text.match_indices("(\"/") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find('"') else { continue };
            let path = &rest[..end];
            let after = &rest[end..];
            let method = ["get", "post", "put", "patch", "delete"].into_iter().find(|m| {
                after.starts_with(&format!("\", web::{m}()")) || after.starts_with(&format!("\").route(web::{m}()"))
            });
            let Some(method) = method else { continue };
            if pages.contains(path) {
                continue;
            }
            let full = if top_level { path.to_owned() } else { format!("/v1{path}") };
            routes.insert((method.to_uppercase(), full));
        }
    }
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_exists() {
    let app = spawn_with(ReadSide::Elsewhere).await;
    let res = app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);

    let routes = registered_routes();
    assert!(routes.len() >= 60, "the source scan found only {} routes: {routes:?}", routes.len());
    let ops = documented(&doc);
    let missing: Vec<_> = routes.difference(&ops).collect();
    assert!(missing.is_empty(), "routes missing from /openapi.json: {missing:?}");
    let extra: Vec<_> = ops.difference(&routes).collect();
    assert!(extra.is_empty(), "documented but not registered: {extra:?}");

    // Each documented operation is served (never `route_not_found`), whatever it answers to a
    // request without credentials or body.
    for (method, path) in &ops {
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { uuid::Uuid::new_v4().to_string() } else { s.to_owned() })
            .collect::<Vec<_>>()
            .join("/");
        let url = format!("{}{concrete}", app.base);
        let res = match method.as_str() {
            "GET" => app.http.get(url).send().await.unwrap(),
            _ => app.http.post(url).header("Content-Type", "application/json").body("{}").send().await.unwrap(),
        };
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(!body.contains("route_not_found"), "{method} {path} is documented but not served: {status} {body}");
    }

    // Every operation says what it answers; commands document their body (a rebuild has none).
    let mut bodiless = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}: no responses");
            assert!(op["operationId"].is_string() && op["tags"].is_array(), "{method} {path}");
            // The handler's doc comment is its summary: a newcomer reads what it does and who may.
            assert!(op["summary"].as_str().is_some_and(|s| s.len() > 10), "{method} {path}: no summary (doc comment)");
            if method == "post" && !op["requestBody"].is_object() {
                bodiless.push(path.as_str());
            }
        }
    }
    assert_eq!(bodiless, ["/v1/admin/projections/{name}/rebuild"], "commands without a body schema");
    // The listing a seller creates is described field by field, with its kinds.
    let create = &doc["paths"]["/v1/listings"]["post"];
    let schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap();
    let name = schema_ref.rsplit('/').next().unwrap();
    let schema = &doc["components"]["schemas"][name];
    for field in ["title", "price", "category", "details"] {
        assert!(schema["properties"][field].is_object(), "{name} lacks {field}: {schema}");
    }
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Outcome"
    );

    // Types of the same name in different modules keep schemas of their own.
    let answer =
        |path: &str| doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"].clone();
    assert_ne!(answer("/v1/listings"), answer("/v1/orders"));
    assert_ne!(answer("/v1/listings/{id}"), answer("/v1/orders/{id}"));

    // Every reference resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected ref {r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "dangling {r}");
    }

    // The auth scheme, and every error code with its status.
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
    let codes = doc["x-error-codes"].as_array().unwrap();
    assert_eq!(codes.len(), bozor_api::errors::ERROR_CODES.len());
    for (code, status, _) in bozor_api::errors::ERROR_CODES {
        assert!(codes.iter().any(|c| c["code"] == *code && c["status"] == *status), "{code} {status} missing");
    }
}

#[tokio::test]
async fn docs_and_the_admin_console_are_served_with_nothing_from_elsewhere() {
    let app = spawn_with(ReadSide::Elsewhere).await;
    for path in bozor_api::routes::pages::paths().filter(|p| *p != "/openapi.json") {
        let res = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        let body = res.text().await.unwrap();
        for external in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "url(http",
            "url(//",
            "@import",
            "fetch(\"http",
            "fetch('http",
        ] {
            assert!(!body.contains(external), "{path} loads from elsewhere ({external})");
        }
        if path == "/docs" {
            assert!(body.contains("/docs/docs.js") && body.contains("/docs/docs.css"), "{body}");
        }
        if path == "/docs/docs.js" {
            assert!(body.contains("/openapi.json"), "the reference page reads the document");
        }
    }
}
