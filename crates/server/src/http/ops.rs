//! Operational routes: `/healthz`, `/metrics`, `/openapi.json`, and the
//! problem+json 404 for unknown paths.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use silt_table::ErrorKind;
use utoipa::OpenApi;

use super::AppState;
use crate::error::ApiError;

/// The OpenAPI document of the HTTP API, generated from the handlers'
/// annotations; `schemas/openapi.json` is this, checked in (a test keeps
/// them equal).
#[derive(OpenApi)]
#[openapi(
    info(title = "silt", description = "Transactional data lake over Delta Lake tables"),
    paths(
        healthz,
        super::tables::create,
        super::tables::list,
        super::tables::describe,
        super::tables::history,
        super::rows::ingest,
        super::sql::sql,
        super::erasures::create,
        super::erasures::list,
        super::erasures::get,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "tables", description = "create and inspect tables"), (name = "ingest", description = "write rows"), (name = "sql", description = "run SQL"), (name = "erasure", description = "GDPR/CCPA erasure with signed certificates"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Liveness: answers while the server runs. Needs no token.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "serving")), security(()), tag = "ops")]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The OpenAPI document.
pub async fn openapi() -> Response {
    let text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Unknown path.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "no such endpoint; see /openapi.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `schemas/openapi.json` is the generated document, checked in. Run with
    /// `SILT_UPDATE_SCHEMAS=1` to rewrite it after changing a route.
    #[test]
    fn checked_in_openapi_matches_the_code() {
        let generated = ApiDoc::openapi().to_pretty_json().expect("serialises") + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/openapi.json");
        if std::env::var_os("SILT_UPDATE_SCHEMAS").is_some() {
            std::fs::write(path, &generated).expect("writes schemas/openapi.json");
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "schemas/openapi.json is stale: run SILT_UPDATE_SCHEMAS=1 cargo test -p silt-server"
        );
    }
}
