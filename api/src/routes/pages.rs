//! Pages bozor serves itself, with no CDN and no build step: the API reference at `/docs`
//! (rendering `/openapi.json`) and the admin console at `/admin`. Their assets are compiled into
//! the binary; their CSP allows this origin only.

use actix_web::{web, HttpResponse};

/// The OpenAPI document, built once.
static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| crate::openapi::document().to_string());

/// Pages and assets: (path, content type, body).
const PAGES: &[(&str, &str, &str)] = &[
    ("/docs", "text/html; charset=utf-8", include_str!("../../static/docs/index.html")),
    ("/docs/docs.js", "text/javascript; charset=utf-8", include_str!("../../static/docs/docs.js")),
    ("/docs/docs.css", "text/css; charset=utf-8", include_str!("../../static/docs/docs.css")),
    ("/admin", "text/html; charset=utf-8", include_str!("../../static/admin/index.html")),
    ("/admin/admin.js", "text/javascript; charset=utf-8", include_str!("../../static/admin/admin.js")),
    ("/admin/admin.css", "text/css; charset=utf-8", include_str!("../../static/admin/admin.css")),
];

/// The paths of the pages (not API operations, so not in the OpenAPI document).
pub fn paths() -> impl Iterator<Item = &'static str> {
    PAGES.iter().map(|(p, ..)| *p).chain(["/openapi.json"])
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi));
    for (path, content_type, body) in PAGES {
        let (content_type, body) = (*content_type, *body);
        cfg.route(path, web::get().to(move || async move { page(content_type, body) }));
    }
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT.as_str())
}

fn page(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // Scripts, styles and API calls from this origin only; no inline code, no framing.
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}
