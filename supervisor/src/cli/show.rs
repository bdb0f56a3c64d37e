//! `runwarm show NAME`: what an operator asks about a script before calling or changing it: its
//! parameters schema, limits (with the runtime's defaults filled in), pool settings, tags, and
//! who registered each version. Composed from the script, its latest version, its versions and
//! the runtime list, since no single route answers all of it.

use serde_json::Value;

use crate::client::{Method, escape};

use super::Ctx;
use super::error::CliError;
use super::outcome::Outcome;
use super::output::{print_json, print_text};
use super::table::{Format, col, render_pairs, render_rows, short_id};

pub(super) async fn show(ctx: &Ctx, name: &str) -> Result<Outcome, CliError> {
    let base = format!("/v1/scripts/{}", escape(name));
    let script = ctx.call(Method::GET, &base, None).await?;
    let versions = ctx
        .call(Method::GET, &format!("{base}/versions"), None)
        .await?;
    let latest = match script.get("latest").and_then(Value::as_str) {
        Some(id) => {
            let path = format!("{base}/versions/{}", escape(id));
            ctx.call(Method::GET, &path, None).await?
        }
        None => Value::Null,
    };
    if ctx.json {
        // The script's own fields stay at the top, as `GET /v1/scripts/{name}` has them.
        let mut shown = script.as_object().cloned().unwrap_or_default();
        shown.insert(
            "manifest".into(),
            latest.get("manifest").cloned().unwrap_or(Value::Null),
        );
        shown.insert(
            "registered_by".into(),
            latest.get("registered_by").cloned().unwrap_or(Value::Null),
        );
        shown.insert("versions".into(), versions);
        print_json(&Value::Object(shown))?;
        return Ok(Outcome::Success);
    }
    // The runtime's defaults make "timeout 30 s" out of an unset limit; without them the limit
    // still reads as the runtime's default, only without its figure.
    let runtime = latest
        .pointer("/manifest/runtime")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let defaults = match ctx.call(Method::GET, "/v1/runtimes", None).await {
        Ok(runtimes) => runtime_limits(&runtimes, runtime),
        Err(_) => Value::Null,
    };
    print_text(&render(&script, &latest, &versions, &defaults))?;
    Ok(Outcome::Success)
}

/// The `limits` of runtime `name` in a `GET /v1/runtimes` answer.
fn runtime_limits(runtimes: &Value, name: &str) -> Value {
    super::scripts::rows_of(runtimes)
        .into_iter()
        .flatten()
        .find(|rt| rt.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|rt| rt.get("limits"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The whole text of `show`.
fn render(script: &Value, latest: &Value, versions: &Value, defaults: &Value) -> String {
    let text = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let manifest = latest.get("manifest").unwrap_or(&Value::Null);
    let mut pairs = vec![
        ("name".to_owned(), text(script, "/name")),
        ("description".to_owned(), text(script, "/description")),
        ("runtime".to_owned(), runtime_line(manifest)),
        (
            "state".to_owned(),
            if script.get("disabled").and_then(Value::as_bool) == Some(true) {
                "disabled (invocations are refused; `runwarm enable` undoes it)".to_owned()
            } else {
                "enabled".to_owned()
            },
        ),
        ("latest".to_owned(), text(script, "/latest")),
        ("tags".to_owned(), tags_line(script.get("tags"))),
        ("labels".to_owned(), names(script.get("labels"))),
        ("created".to_owned(), text(script, "/created_at")),
        (
            "registered by".to_owned(),
            latest
                .get("registered_by")
                .map_or_else(|| "-".to_owned(), registrant),
        ),
        ("limits".to_owned(), limits_line(manifest, defaults)),
        ("pool".to_owned(), pool_line(manifest.get("pool"))),
        ("network".to_owned(), network_line(manifest)),
        (
            "retry safe".to_owned(),
            match manifest.get("retry_safe").and_then(Value::as_bool) {
                Some(true) => "yes (a script error is retried)".to_owned(),
                _ => "no".to_owned(),
            },
        ),
    ];
    // The human side of a version: shown only when the manifest says something.
    for (key, title) in [
        ("label", "label"),
        ("author", "author"),
        ("changelog", "changelog"),
    ] {
        if let Some(value) = manifest.get(key).and_then(Value::as_str) {
            pairs.push((title.to_owned(), value.to_owned()));
        }
    }
    if let Some(env) = manifest
        .get("env")
        .and_then(Value::as_object)
        .filter(|e| !e.is_empty())
    {
        let vars: Vec<String> = env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        pairs.push(("env".to_owned(), vars.join(" ")));
    }
    if let Some(flags) = manifest
        .pointer("/build/flags")
        .and_then(Value::as_array)
        .filter(|f| !f.is_empty())
    {
        pairs.push((
            "build flags".to_owned(),
            names(Some(&Value::Array(flags.clone()))),
        ));
    }
    let mut out = render_pairs(&pairs);
    out.push('\n');
    out.push_str(&params_section(manifest.get("params")));
    out.push('\n');
    out.push_str("versions, newest first:\n");
    match super::scripts::rows_of(versions) {
        Some(rows) if !rows.is_empty() => out.push_str(&render_rows(rows, &VERSION_COLUMNS)),
        _ => out.push_str("  none\n"),
    }
    out
}

/// The columns of `versions` and of the table at the end of `show`.
pub(super) const VERSION_COLUMNS: [super::table::Column; 7] = [
    col("VERSION", &["/id", "/version"], Format::Plain),
    col("LABEL", &["/label", "/manifest/label"], Format::Plain),
    col("CREATED", &["/created_at"], Format::Plain),
    col("RUNTIME", &["/runtime", "/manifest/runtime"], Format::Plain),
    col(
        "REGISTERED BY",
        &["/registered_by"],
        Format::With(registrant),
    ),
    col("TAGS", &["/tags"], Format::Names),
    col("AUTHOR", &["/author", "/manifest/author"], Format::Plain),
];

/// Who registered a version: `ada:staff (1000:1000)`, with the numbers alone for ids this host
/// has no name for (`1000:1000`); `-` when runwarmd does not know (versions registered before
/// it recorded this, and the samples it registers itself).
pub(super) fn registrant(by: &Value) -> String {
    let id = |key: &str| {
        by.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let (Some(uid), Some(gid)) = (id("uid"), id("gid")) else {
        return "-".to_owned();
    };
    // Names are looked up on this host, which is the daemon's: the socket is local.
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name);
    let named = with_names(uid, gid, user.as_deref(), group.as_deref());
    match by.get("pid").and_then(Value::as_u64) {
        Some(pid) => format!("{named} pid {pid}"),
        None => named,
    }
}

fn with_names(uid: u32, gid: u32, user: Option<&str>, group: Option<&str>) -> String {
    match (user, group) {
        (None, None) => format!("{uid}:{gid}"),
        (user, group) => format!(
            "{}:{} ({uid}:{gid})",
            user.map_or_else(|| uid.to_string(), str::to_owned),
            group.map_or_else(|| gid.to_string(), str::to_owned),
        ),
    }
}

/// `python3, handler mode, entry main.py, handler handler`.
fn runtime_line(manifest: &Value) -> String {
    let field = |k: &str| manifest.get(k).and_then(Value::as_str);
    let mut parts = vec![field("runtime").unwrap_or("-").to_owned()];
    match field("mode") {
        Some(mode) => parts.push(format!("{mode} mode")),
        None => parts.push("the runtime's default mode".to_owned()),
    }
    if let Some(entry) = field("entry") {
        parts.push(format!("entry {entry}"));
    }
    // The handler name means nothing to a command-mode script.
    if field("mode") != Some("command")
        && let Some(handler) = field("handler")
    {
        parts.push(format!("handler {handler}"));
    }
    parts.join(", ")
}

/// `latest -> sha256:0123456789ab, prod -> sha256:…`.
fn tags_line(tags: Option<&Value>) -> String {
    match tags.and_then(Value::as_object) {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(tag, id)| format!("{tag} -> {}", short_id(id.as_str().unwrap_or("?"))))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".to_owned(),
    }
}

fn names(list: Option<&Value>) -> String {
    match list.and_then(Value::as_array) {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".to_owned(),
    }
}

/// `timeout 5 s, memory 256 MiB (runtime default), pids 64 (runtime default), cpu 1 …`.
fn limits_line(manifest: &Value, defaults: &Value) -> String {
    let own = manifest.get("limits").unwrap_or(&Value::Null);
    let limit = |key: &str, show: fn(&Value) -> String| match (own.get(key), defaults.get(key)) {
        (Some(v), _) if !v.is_null() => show(v),
        (_, Some(v)) if !v.is_null() => format!("{} (runtime default)", show(v)),
        _ => "runwarmd's default".to_owned(),
    };
    format!(
        "timeout {}, memory {}, pids {}, cpu {}",
        limit("timeout_ms", |v| match v.as_f64() {
            Some(ms) => super::progress::seconds(ms / 1000.0),
            None => v.to_string(),
        }),
        limit("memory_mb", |v| format!("{v} MiB")),
        limit("pids", Value::to_string),
        limit("cpu", |v| format!("{v} cores")),
    )
}

/// `max 4, min_warm 0, idle_ttl 600 s, max_requests 10000, max_concurrency unlimited`.
fn pool_line(pool: Option<&Value>) -> String {
    let Some(pool) = pool.and_then(Value::as_object) else {
        return "-".to_owned();
    };
    let get = |key: &str| pool.get(key).filter(|v| !v.is_null());
    let number = |key: &str| get(key).map_or_else(|| "-".to_owned(), Value::to_string);
    format!(
        "max {}, min_warm {}, idle_ttl {} s, max_requests {}, max_concurrency {}",
        number("max"),
        number("min_warm"),
        number("idle_ttl_s"),
        number("max_requests"),
        get("max_concurrency").map_or_else(|| "unlimited".to_owned(), Value::to_string),
    )
}

fn network_line(manifest: &Value) -> String {
    match manifest.get("network").and_then(Value::as_str) {
        Some("host") => "host (the host's network)".to_owned(),
        Some("none") | None => "none (loopback only)".to_owned(),
        Some(other) => other.to_owned(),
    }
}

/// The parameters schema as indented JSON, or what a payload may be without one.
fn params_section(params: Option<&Value>) -> String {
    match params.filter(|p| !p.is_null()) {
        None => "parameters: any JSON payload (the manifest has no [params] schema)\n".to_owned(),
        Some(schema) => {
            let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
            let mut out = "parameters (JSON Schema):\n".to_owned();
            for line in pretty.lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
            out
        }
    }
}

#[cfg(test)]
mod tests;
