//! The web UI: one page, its ES modules and its style sheet, embedded in the binary and served
//! from memory (no files, no network, no separate process). Every view is a `#/…` route of
//! `/`, so a view's address can be shared; the page reads the same JSON APIs as `curl` does.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file under `/ui/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset { name: $name, content_type: $content_type, body: include_str!(concat!("assets/", $name)) }
    };
}

/// Every file the page loads; `index.html` is served at `/`.
const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("main.js", JAVASCRIPT),
    asset!("route.js", JAVASCRIPT),
    asset!("api.js", JAVASCRIPT),
    asset!("dom.js", JAVASCRIPT),
    asset!("charts.js", JAVASCRIPT),
    asset!("home.js", JAVASCRIPT),
    asset!("traces.js", JAVASCRIPT),
    asset!("trace.js", JAVASCRIPT),
    asset!("query.js", JAVASCRIPT),
    asset!("logs.js", JAVASCRIPT),
    asset!("services.js", JAVASCRIPT),
    asset!("metrics.js", JAVASCRIPT),
];

const INDEX_HTML: &str = include_str!("assets/index.html");

/// Scripts, styles and API calls from this origin only; nothing inline, nothing from a CDN.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /` (and `/ui`, `/ui/`) answers the page; `GET /ui/{file}` its scripts and styles.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/{file}", get(asset))
}

async fn index() -> Response {
    served("text/html; charset=utf-8", INDEX_HTML)
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|asset| asset.name == file) {
        Some(asset) => served(asset.content_type, asset.body),
        None => (StatusCode::NOT_FOUND, "no such UI file\n").into_response(),
    }
}

fn served(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // A new binary brings new files: the browser must ask again rather than mix versions.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> (StatusCode, String, String) {
        let response = routes().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    /// The file names a text refers to with `./name.js` or `/ui/name` (imports, `<script>`,
    /// `<link>`).
    fn references(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for quote in ['"', '\''] {
            for piece in text.split(quote) {
                let name = piece.strip_prefix("./").or_else(|| piece.strip_prefix("/ui/"));
                if let Some(name) = name.filter(|name| !name.is_empty() && !name.contains(['/', ' ', '?', '#'])) {
                    found.push(name.to_string());
                }
            }
        }
        found
    }

    #[tokio::test]
    async fn the_page_is_served_at_the_root_as_html() {
        let (status, content_type, body) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert!(body.contains(r#"<script type="module" src="/ui/main.js">"#), "{body}");
    }

    #[tokio::test]
    async fn every_file_the_page_and_its_modules_load_is_served_with_its_type() {
        let mut pending = references(INDEX_HTML);
        let mut seen = Vec::new();
        assert!(!pending.is_empty(), "index.html refers to no /ui/ file");
        while let Some(name) = pending.pop() {
            if seen.contains(&name) {
                continue;
            }
            let (status, content_type, body) = get(&format!("/ui/{name}")).await;
            assert_eq!(status, StatusCode::OK, "/ui/{name}");
            let expected = if name.ends_with(".css") { "text/css" } else { "text/javascript" };
            assert!(content_type.starts_with(expected), "/ui/{name}: {content_type}");
            pending.extend(references(&body));
            seen.push(name);
        }
        let mut unused: Vec<_> =
            ASSETS.iter().map(|asset| asset.name).filter(|name| !seen.iter().any(|s| s == name)).collect();
        unused.sort_unstable();
        assert!(unused.is_empty(), "embedded but never loaded: {unused:?}");
    }

    #[tokio::test]
    async fn an_unknown_file_is_a_404() {
        let (status, _, _) = get("/ui/nothing.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_page_may_load_nothing_from_another_origin() {
        let response = routes().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.contains("default-src 'self'") && policy.contains("connect-src 'self'"), "{policy}");
        for asset in ASSETS.iter().map(|asset| asset.body).chain([INDEX_HTML]) {
            for remote in ["src=\"http", "href=\"http", "from \"http", "import(\"http", "url(http"] {
                assert!(!asset.contains(remote), "a UI file loads from the network: {remote}");
            }
        }
    }
}
