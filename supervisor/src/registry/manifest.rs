//! The script manifest (`runwarm.toml` in a script folder, `manifest` in `POST /v1/scripts`).
//!
//! Parsed with unknown keys refused, so a typo such as `memroy_mb` is an error at registration
//! rather than a silently ignored limit. Defaults are filled in here, and the version id is
//! computed over the filled-in form, so writing a default explicitly does not change the id.

use std::collections::BTreeMap;

use runwarm_protocol::Mode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A version's manifest with every default applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Runtime name, e.g. `python3`, `node`, `bash` (a file in `runtimes/`).
    pub runtime: String,
    /// Entry file, relative to the bundle root.
    pub entry: String,
    /// `handler` or `command`; when absent the runtime's default mode applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Handler function name (handler mode).
    #[serde(default = "default_handler")]
    pub handler: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Labels for search (not version tags).
    #[serde(default)]
    pub tags: Vec<String>,
    /// JSON Schema the invocation payload must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = json_schema_document)]
    pub params: Option<Value>,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Warm pool policy.
    #[serde(default)]
    pub pool: PoolPolicy,
    /// Environment variables the script sees.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `none` (loopback only) or `host`.
    #[serde(default)]
    pub network: Network,
    /// Whether a script error may be retried (the script is idempotent).
    #[serde(default)]
    pub retry_safe: bool,
    /// Options of the runtime's build step. Left out of the serialisation when empty, so
    /// existing version ids do not change.
    #[serde(default, skip_serializing_if = "BuildOptions::is_empty")]
    pub build: BuildOptions,
    /// Secrets (`runwarm secret set NAME`) the executor gets: `"NAME"` as an environment
    /// variable of the same name, `{ name = "NAME", as = "file" }` as the read-only file
    /// `/run/secrets/NAME` on a private tmpfs. Only the names are part of the version; the
    /// values stay in the daemon's secret store. Left out of the serialisation when empty, so
    /// existing version ids do not change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub secrets: Vec<SecretRef>,
    /// A human version such as `1.4.0` (`version` is accepted as another spelling, since that
    /// is what people write). `NAME@1.4.0` selects the version carrying it when only one does.
    /// This and the two fields below are left out of the serialisation when unset, so existing
    /// version ids do not change; when set they are part of the id like any manifest key.
    #[serde(default, alias = "version", skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `[retry]`: how failed attempts are retried (see `retry::RetryRules`). Absent: failures
    /// before the script saw the request are retried twice (50 and 200 ms), script errors only
    /// with `retry_safe`. Left out of the serialisation when absent, so ids do not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Who wrote this version (free text, e.g. `Ada <ada@example.org>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// What changed in this version (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog: Option<String>,
}

impl Manifest {
    /// The names of the secrets it needs, however delivered.
    pub fn secret_names(&self) -> Vec<String> {
        self.secrets.iter().map(|s| s.name().to_owned()).collect()
    }
}

/// One entry of `secrets`. An entry delivered as an environment variable is written as the bare
/// name whatever form it came in, so `{ name = "X", as = "env" }` and `"X"` are one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable named like the secret.
    Env(String),
    /// A file `/run/secrets/NAME`, readable only by the executor's uid, on a tmpfs of its own.
    File(String),
}

/// Inside the sandbox, where file secrets are.
pub const SECRETS_DIR: &str = "/run/secrets";

impl SecretRef {
    /// The secret's name in the store.
    pub fn name(&self) -> &str {
        match self {
            SecretRef::Env(n) | SecretRef::File(n) => n,
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SecretRef::Env(name) => s.serialize_str(name),
            SecretRef::File(name) => serde_json::json!({"name": name, "as": "file"}).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            name: String,
            #[serde(rename = "as", default)]
            delivery: Option<String>,
        }
        match Value::deserialize(d)? {
            Value::String(name) => Ok(SecretRef::Env(name)),
            v @ Value::Object(_) => {
                let t = Table::deserialize(v).map_err(|e| {
                    D::Error::custom(format!(
                        "a secrets entry is \"NAME\" or {{ name = \"NAME\", as = \"env\" | \"file\" }}: {e}"
                    ))
                })?;
                match t.delivery.as_deref() {
                    None | Some("env") => Ok(SecretRef::Env(t.name)),
                    Some("file") => Ok(SecretRef::File(t.name)),
                    Some(other) => Err(D::Error::custom(format!(
                        "secret {:?}: `as` is \"env\" or \"file\", not {other:?}",
                        t.name
                    ))),
                }
            }
            other => Err(D::Error::custom(format!(
                "a secrets entry is \"NAME\" or {{ name = \"NAME\", as = \"file\" }}, not {other}"
            ))),
        }
    }
}

/// `[retry]` in a manifest: attempts, their spacing, and which failures are retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Most attempts, the first included (1 to 10).
    #[serde(default = "default_max_attempts")]
    #[schema(minimum = 1, maximum = 10)]
    pub max_attempts: u32,
    /// Wait after the first failed attempt, doubled after each further one.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Longest wait between attempts.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Spread each wait by ±25 % so retries of many executions do not arrive together.
    #[serde(default)]
    pub jitter: bool,
    /// Which failures are retried besides those before the script saw the request: any of
    /// `E002` (script error), `E003` (memory), `E004` (time limit), `E005` (system).
    #[serde(default)]
    pub on: Vec<crate::execution::ErrorCode>,
}

fn default_max_attempts() -> u32 {
    3
}

fn default_backoff_ms() -> u64 {
    50
}

fn default_max_backoff_ms() -> u64 {
    5_000
}

/// `[build]` in a manifest: what the runtime's build step passes to its compiler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildOptions {
    /// Extra compiler flags (C and C++: after the runtime's own, e.g. `["-O2", "-lm"]`).
    #[serde(default)]
    pub flags: Vec<String>,
}

impl BuildOptions {
    fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }
}

fn default_handler() -> String {
    "handler".to_owned()
}

/// Per-invocation and per-executor limits. Unset values take the runtime's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Invocation time limit in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub timeout_ms: Option<u64>,
    /// Memory limit of one executor in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub memory_mb: Option<u64>,
    /// Maximum number of processes in one executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub pids: Option<u64>,
    /// CPU quota in cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0)]
    pub cpu: Option<f64>,
}

/// Warm pool policy of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PoolPolicy {
    /// Executors kept started even when idle.
    pub min_warm: u32,
    /// Most executors this version may have at once.
    #[schema(minimum = 1)]
    pub max: u32,
    /// Idle executors above `min_warm` are retired after this many seconds.
    pub idle_ttl_s: u64,
    /// An executor is recycled after serving this many requests.
    #[schema(minimum = 1)]
    pub max_requests: u64,
    /// Most executions of this script queued or running at once; more are refused with 429.
    /// Left out of the serialisation when unset, so existing version ids do not change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

impl Default for PoolPolicy {
    fn default() -> Self {
        Self {
            min_warm: 0,
            max: 4,
            idle_ttl_s: 600,
            max_requests: 10_000,
            max_concurrency: None,
        }
    }
}

/// Network policy of an executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// An empty network namespace: loopback only.
    #[default]
    None,
    /// The host's network.
    Host,
}

/// The API document's schema of `params`: any JSON Schema (an object or a boolean), or null for
/// none. JSON Schema's own meta-schema is not inlined: the validator checks it at registration.
fn json_schema_document() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::Object,
            Type::Boolean,
            Type::Null,
        ]))
        .description(Some(
            "JSON Schema (draft 2020-12 unless `$schema` says otherwise) the payload must match",
        ))
        .build()
}
