//! Callback routes: standing subscriptions (admin), the outbox's deliveries with their attempts
//! and redeliver (an execution's owner or an admin), and `GET /v1/callbacks/secret`, the secret
//! a caller's own `Runwarm-Callback` deliveries are signed with.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::access::Viewer;
use super::body::{from_object, json_body};
use super::openapi::{Forbidden, Internal, SlowBody, TooLarge};
use super::peer::Peer;
use super::problem::Problem;
use crate::callbacks::outbox::{self, Delivery, DeliveryQuery, Subscription};
use crate::callbacks::{CallbackTarget, sign, worker::now_ms};
use crate::execution::State as ExecState;

/// The API's side of the outbox: its own connection and the daemon's callback key.
pub struct CallbackApi {
    conn: Mutex<Connection>,
    key: String,
    /// The delivery worker's wake-up: a redelivered callback is sent at once.
    owed: std::sync::Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for CallbackApi {
    // By hand: the key must not reach a log through a derived Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackApi { .. }")
    }
}

impl CallbackApi {
    /// Over a connection to `history.db`, the key from `callback.key` and the delivery
    /// worker's wake-up.
    pub fn new(conn: Connection, key: String, owed: std::sync::Arc<tokio::sync::Notify>) -> Self {
        CallbackApi {
            conn: Mutex::new(conn),
            key,
            owed,
        }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `f` on the outbox connection off the async runtime.
async fn with_db<T: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, Problem> {
    let api = std::sync::Arc::clone(&app.callbacks);
    tokio::task::spawn_blocking(move || f(&api.conn()))
        .await
        .map_err(|e| Problem::internal(format!("outbox task failed: {e}")))?
        .map_err(|e| Problem::internal(format!("reading or writing the callback outbox: {e}")))
}

/// The `Runwarm-Callback` header of an invocation or replay, checked: `None` when absent.
pub(crate) fn callback_header(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("runwarm-callback") else {
        return Ok(None);
    };
    let url = value
        .to_str()
        .map_err(|_| Problem::bad_request("Runwarm-Callback must be visible ASCII"))?;
    CallbackTarget::parse(url, &app.config.callbacks.allow_hosts).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-callback", e.to_string())
            .hint(Some(e.hint()))
    })?;
    Ok(Some(url.to_owned()))
}

/// A delivery's state, for the API document's `state` filter.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum DeliveryState {
    /// Not yet answered 2xx; attempted again when due.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Every attempt failed; `redeliver` sends it again.
    Dead,
}

/// `POST /v1/subscriptions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubscribeBody {
    /// `unix:/path/to.sock/http/path` or `http://127.0.0.1:PORT/path` (other hosts only if
    /// `[callbacks] allow_hosts` names them).
    #[schema(pattern = "^(unix:/[^ ]*\\.sock|http://[^ ]+)")]
    url: String,
    /// Only this script's executions (all when absent).
    #[serde(default)]
    script: Option<String>,
    /// Only these terminal states (`completed`, `failed`, `timeout`, `cancelled`; all when absent).
    #[serde(default)]
    states: Option<Vec<ExecState>>,
    /// The signing secret (at least 16 characters); a random one is made when absent.
    #[serde(default)]
    #[schema(min_length = 16)]
    secret: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/subscriptions",
    operation_id = "create_subscription",
    tag = "callbacks",
    summary = "Send the terminal record of every matching execution to a receiver (admin)",
    request_body(content = SubscribeBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The subscription, with its secret (shown only here)", body = Subscription),
        (status = 400, description = "Invalid body, address, script name or state", body = Problem,
            content_type = "application/problem+json"),
        Forbidden,
        TooLarge,
        SlowBody,
        Internal,
    )
)]
pub(crate) async fn subscribe(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
    body: Body,
) -> Result<Response, Problem> {
    let body = json_body(body, 64 * 1024, Value::Null, app.config.body_rate).await?;
    let body: SubscribeBody = from_object(body, "{\"url\": \"unix:/run/engine.sock/hooks/done\"}")?;
    CallbackTarget::parse(&body.url, &app.config.callbacks.allow_hosts).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-callback", e.to_string())
            .hint(Some(e.hint()))
    })?;
    let states = match body.states {
        Some(states) if states.iter().any(|s| !s.is_terminal()) => {
            return Err(Problem::bad_request(
                "states must be terminal: completed, failed, timeout or cancelled",
            ));
        }
        Some(states) => Some(states.iter().map(|s| s.as_str().to_owned()).collect()),
        None => None,
    };
    let secret = match body.secret {
        Some(s) if s.chars().count() < 16 => {
            return Err(Problem::bad_request(
                "a subscription secret has at least 16 characters",
            ));
        }
        Some(s) => s,
        None => {
            sign::new_secret().map_err(|e| Problem::internal(format!("making a secret: {e}")))?
        }
    };
    let sub = Subscription {
        id: format!("sub-{}", uuid::Uuid::now_v7().simple()),
        url: body.url,
        script: body.script,
        states,
        created_at: crate::invocation::now_rfc3339(),
        created_uid: Some(caller.uid),
        secret: Some(secret.clone()),
    };
    let stored = sub.clone();
    let history = app.history.clone();
    with_db(&app, move |conn| {
        history.change_subscriptions(conn, |conn| {
            outbox::insert_subscription(conn, &stored, &secret)
        })
    })
    .await?;
    tracing::info!(subscription = %sub.id, url = %sub.url, caller_uid = caller.uid, "callback subscription created");
    Ok((StatusCode::CREATED, Json(sub)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/subscriptions",
    operation_id = "list_subscriptions",
    tag = "callbacks",
    summary = "List subscriptions, oldest first, without their secrets (admin)",
    responses((status = 200, description = "The subscriptions", body = Vec<Subscription>), Forbidden, Internal)
)]
pub(crate) async fn subscriptions(State(app): State<AppState>) -> Result<Response, Problem> {
    Ok(Json(with_db(&app, outbox::subscriptions).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/subscriptions/{id}",
    operation_id = "delete_subscription",
    tag = "callbacks",
    summary = "Delete a subscription; its pending deliveries end dead (admin)",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Deleted"),
        Forbidden,
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn unsubscribe(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let owned = id.clone();
    let history = app.history.clone();
    let deleted = with_db(&app, move |conn| {
        history.change_subscriptions(conn, |conn| outbox::delete_subscription(conn, &owned))
    })
    .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found(format!("no subscription {id:?}")))
    }
}

#[utoipa::path(
    get,
    path = "/v1/deliveries",
    operation_id = "list_deliveries",
    tag = "callbacks",
    summary = "List callback deliveries, newest first, each with its attempts",
    description = "A caller sees the deliveries of the executions it started; admins and readers see all.",
    params(
        ("state" = inline(Option<DeliveryState>), Query, description = "Only deliveries in this state"),
        ("execution" = Option<String>, Query, description = "Only this execution's"),
        ("limit" = Option<u32>, Query, description = "How many (default 100)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "The deliveries", body = Vec<Delivery>),
        (status = 400, description = "Unknown state or limit out of range", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn deliveries(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let state = q.get("state").cloned();
    if let Some(s) = &state
        && !["pending", "delivered", "dead"].contains(&s.as_str())
    {
        return Err(Problem::bad_request(format!(
            "unknown delivery state {s:?}: use pending, delivered or dead"
        )));
    }
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| Problem::bad_request(format!("limit must be 1..=1000, got {l:?}")))?,
        None => 100,
    };
    let query = DeliveryQuery {
        state,
        execution_id: q.get("execution").cloned(),
        caller_uid: (!viewer.sees_all()).then_some(viewer.who.caller.uid),
        limit,
    };
    Ok(Json(with_db(&app, move |conn| outbox::list(conn, &query)).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/deliveries/{id}/redeliver",
    operation_id = "redeliver",
    tag = "callbacks",
    summary = "Send a delivery again, now, with a fresh attempt budget (its execution's owner or an admin)",
    params(("id" = i64, Path, description = "Delivery id", minimum = 1)),
    responses(
        (status = 200, description = "The delivery, pending again", body = Delivery),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        Forbidden,
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn redeliver(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    // Parsed here rather than by the extractor, whose refusal would not be a problem+json.
    let id: i64 = id
        .parse()
        .map_err(|_| Problem::bad_request(format!("delivery id {id:?} is not a number")))?;
    let found = with_db(&app, move |conn| outbox::get(conn, id)).await?;
    let Some((_, owner)) = found else {
        return Err(Problem::not_found(format!("no delivery {id}")));
    };
    let owns = owner.is_some_and(|uid| uid == viewer.who.caller.uid && uid != u32::MAX);
    if !viewer.is_admin() && !owns {
        return Err(viewer.forbidden("redeliver another caller's callback", "access.admin_uids"));
    }
    let delivery = with_db(&app, move |conn| {
        outbox::redeliver(conn, id, now_ms())?;
        outbox::get(conn, id)
    })
    .await?
    .map(|(d, _)| d)
    .ok_or_else(|| Problem::not_found(format!("no delivery {id}")))?;
    app.callbacks.owed.notify_one();
    Ok(Json(delivery).into_response())
}

/// `GET /v1/callbacks/secret`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallerSecret {
    /// The uid it belongs to.
    uid: u32,
    /// The secret the caller's `Runwarm-Callback` deliveries are signed with.
    secret: String,
}

#[utoipa::path(
    get,
    path = "/v1/callbacks/secret",
    operation_id = "get_callback_secret",
    tag = "callbacks",
    summary = "The secret this caller's Runwarm-Callback deliveries are signed with",
    description = "Derived from the daemon's key and the caller's uid: each caller gets its own and \
        can verify only its own callbacks.",
    responses((status = 200, description = "The caller's secret", body = CallerSecret))
)]
pub(crate) async fn caller_secret(
    State(app): State<AppState>,
    ConnectInfo(Peer(caller)): ConnectInfo<Peer>,
) -> Result<Response, Problem> {
    if caller.uid == u32::MAX {
        return Err(Problem::bad_request(
            "the connection's credentials are unreadable",
        ));
    }
    Ok(Json(CallerSecret {
        uid: caller.uid,
        secret: sign::caller_secret(&app.callbacks.key, caller.uid),
    })
    .into_response())
}
