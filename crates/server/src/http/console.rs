//! The web console at `/ui`: static assets compiled into the binary from
//! `crates/server/ui/` (plain HTML, CSS and ES modules, no build step).
//!
//! The assets hold no data, so they are served without a token; every data
//! call the console makes goes to the API with the user's bearer token. Each
//! answer carries a strict Content-Security-Policy (scripts, styles and
//! connections only from this origin, no inline script, no framing) and an
//! `ETag` with `Cache-Control: no-cache`: browsers keep the files but
//! revalidate them, so a new binary's console is picked up at once.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use silt_table::ErrorKind;

use crate::error::ApiError;

/// One embedded file.
struct Asset {
    /// Its name under `/ui/`.
    name: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes.
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $name)),
        }
    };
}

/// Every file of the console. A file added under `ui/` is listed here.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("tables.js", "text/javascript; charset=utf-8"),
    asset!("sql.js", "text/javascript; charset=utf-8"),
    asset!("ingest.js", "text/javascript; charset=utf-8"),
    asset!("erasures.js", "text/javascript; charset=utf-8"),
    asset!("charts.js", "text/javascript; charset=utf-8"),
    asset!("prometheus.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The policy of every console answer. `img-src data:` is not needed: the
/// charts are inline SVG elements built by script, not images.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The ETag of each asset, by index: a hash of its bytes, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let mut hasher = DefaultHasher::new();
            asset.body.hash(&mut hasher);
            format!("\"{:016x}\"", hasher.finish())
        })
        .collect()
});

/// `GET /ui`: the console lives under `/ui/`, so relative module paths
/// resolve there.
pub async fn root() -> Redirect {
    Redirect::permanent("/ui/")
}

/// `GET /ui/`: the console's page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{file}`: one asset, or a problem+json 404.
pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name) else {
        return ApiError::new(ErrorKind::NotFound, "no such console file; open /ui/").into_response();
    };
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, value);
    }
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    out.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_embedded() {
        let page = std::str::from_utf8(ASSETS[0].body).expect("utf-8");
        for asset in ASSETS {
            if asset.name.ends_with(".js") {
                // Modules import each other by "./name.js".
                let named = ASSETS.iter().any(|other| {
                    std::str::from_utf8(other.body).is_ok_and(|t| t.contains(&format!("./{}", asset.name)))
                });
                assert!(named, "{} is embedded but nothing imports it", asset.name);
            }
        }
        assert!(page.contains("./app.js") && page.contains("./console.css"));
    }

    #[test]
    fn no_asset_uses_inner_html_or_loads_from_elsewhere() {
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.body).expect("utf-8");
            assert!(!text.contains("innerHTML"), "{} uses innerHTML", asset.name);
            assert!(!text.contains("outerHTML"), "{} uses outerHTML", asset.name);
            assert!(!text.contains("https://"), "{} names another origin", asset.name);
            assert!(!text.contains("localStorage"), "{} uses localStorage", asset.name);
        }
    }

    #[test]
    fn revalidation_answers_304_with_the_same_etag() {
        let first = serve("app.js", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag.clone());
        let again = serve("app.js", &headers);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag);
        assert_eq!(
            serve("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
