//! `GET /v1/samples` and `POST /v1/samples/{id}/clone`: the bundled samples, and registering one
//! through the same code as `POST /v1/scripts`.

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::body::{from_object, json_body};
use crate::api::openapi::{BadRequest, Forbidden, Internal, SlowBody, TooLarge};
use crate::api::peer::Peer;
use crate::api::problem::Problem;
use crate::api::scripts::RegisterAnswer;
use crate::registry::samples::Sample;

#[utoipa::path(
    get,
    path = "/v1/samples",
    operation_id = "list_samples",
    tag = "samples",
    summary = "Bundled sample scripts",
    responses((status = 200, description = "Every sample", body = Vec<Sample>))
)]
pub(crate) async fn samples(State(app): State<AppState>) -> Response {
    Json(app.samples.all()).into_response()
}

/// `POST /v1/samples/{id}/clone`.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloneBody {
    /// The script name to register it as (default: the sample's id).
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    name: Option<String>,
}

/// `POST /v1/samples/{id}/clone`: registers a sample, optionally under another name.
#[utoipa::path(
    post,
    path = "/v1/samples/{id}/clone",
    operation_id = "clone_sample",
    tag = "samples",
    summary = "Register a sample, optionally under a new name",
    params(("id" = String, Path, description = "Sample id (see GET /v1/samples)")),
    request_body(content = CloneBody, content_type = "application/json",
        description = "Optional; an empty body registers the sample under its own name"),
    responses(
        (status = 201, description = "Registered: a new version", body = RegisterAnswer),
        (status = 200, description = "Already registered with identical content", body = RegisterAnswer),
        BadRequest,
        Forbidden,
        (status = 404, description = "No such sample", body = Problem,
            content_type = "application/problem+json"),
        TooLarge,
        SlowBody,
        Internal,
    )
)]
pub(crate) async fn clone_sample(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let sample = app.samples.get(&id).ok_or_else(|| {
        Problem::not_found(format!("no sample {id:?}"))
            .hint(Some("list samples with: runwarm samples".into()))
    })?;
    let body = json_body(body, 64 * 1024, json!({}), app.config.body_rate).await?;
    let CloneBody { name } = from_object(body, "{\"name\": \"new-name\"}")?;
    let mut registration = sample.body.clone();
    if let Some(name) = name {
        registration["name"] = Value::String(name);
    }
    crate::api::scripts::register_body(&app, registration, peer, Some(&id)).await
}
