//! Completion callbacks: the terminal execution record POSTed, signed, to a receiver named by
//! the invocation (`Runwarm-Callback`) or by a standing subscription, at least once.
//!
//! The intent to deliver is an outbox row written by `history::schema::upsert` in the same
//! transaction that makes the record terminal ([`outbox::enqueue`]), so no crash can separate
//! the two. A [`worker`] reads due rows, POSTs them with exponential backoff and jitter up to a
//! limit, and marks each delivered or dead; dead ones are listed and can be redelivered. Each
//! receiver gets a bounded share of the worker's concurrency and every attempt a timeout, so a
//! slow or dead receiver delays only its own deliveries. See docs/design/0005-callback-outbox.md.

pub mod outbox;
pub mod sign;
mod target;
pub mod worker;

use std::path::Path;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Deserialize;

pub use target::{CallbackTarget, TargetError};

/// What became of each delivery attempt, for `runwarm_callback_attempts_total`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryMetrics {
    attempts: Family<AttemptLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    outcome: &'static str,
}

/// An attempt's outcome: the receiver took it, it failed and will be tried again, or it failed
/// with no attempt left (a dead letter).
const OUTCOMES: [&str; 3] = ["delivered", "retry", "dead"];

impl DeliveryMetrics {
    /// Counts an attempt after which the delivery is `next_state` (`delivered`, `pending` or
    /// `dead`).
    pub fn attempt(&self, next_state: &str) {
        let outcome = match next_state {
            "delivered" => "delivered",
            "pending" => "retry",
            _ => "dead",
        };
        self.attempts
            .get_or_create(&AttemptLabels { outcome })
            .inc();
    }

    /// Registers the counter, every outcome at zero so alerts see the series from the start.
    pub fn register(&self, registry: &mut Registry) {
        for outcome in OUTCOMES {
            let _created = self.attempts.get_or_create(&AttemptLabels { outcome });
        }
        registry.register(
            "callback_attempts",
            "Completion callback attempts, by outcome: delivered, retry (failed, to be tried \
             again) or dead (failed with no attempt left; see runwarm deliveries --state dead)",
            self.attempts.clone(),
        );
    }
}

/// `[callbacks]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCallbacks {
    allow_hosts: Option<Vec<String>>,
    max_attempts: Option<i64>,
    first_backoff_ms: Option<i64>,
    max_backoff_ms: Option<i64>,
    timeout_ms: Option<i64>,
    per_receiver: Option<i64>,
}

/// How callbacks are delivered (`[callbacks]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSettings {
    /// Host names an `http://` callback may name besides loopback ones.
    pub allow_hosts: Vec<String>,
    /// Attempts before a delivery is dead (a redeliver grants as many again).
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubles per attempt, with jitter.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Longest one attempt may take (connect, send, answer head).
    pub timeout: Duration,
    /// Attempts in flight at once to one receiver.
    pub per_receiver: usize,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            allow_hosts: Vec::new(),
            max_attempts: 8,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            per_receiver: 8,
        }
    }
}

impl CallbackSettings {
    /// Validates `[callbacks]`, pushing each violation with its key path.
    pub fn validate(raw: RawCallbacks, v: &mut Vec<String>) -> CallbackSettings {
        let d = CallbackSettings::default();
        let mut positive = |key: &str, value: Option<i64>, default: u64| -> u64 {
            match value {
                None => default,
                Some(x) if x >= 1 => x.unsigned_abs(),
                Some(x) => {
                    v.push(format!("callbacks.{key}: must be at least 1, got {x}"));
                    default
                }
            }
        };
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let max_attempts = positive("max_attempts", raw.max_attempts, d.max_attempts.into());
        let first = positive(
            "first_backoff_ms",
            raw.first_backoff_ms,
            millis(d.first_backoff),
        );
        let max = positive("max_backoff_ms", raw.max_backoff_ms, millis(d.max_backoff));
        let timeout = positive("timeout_ms", raw.timeout_ms, millis(d.timeout));
        let per_receiver = positive("per_receiver", raw.per_receiver, 8);
        CallbackSettings {
            allow_hosts: raw
                .allow_hosts
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            first_backoff: Duration::from_millis(first),
            max_backoff: Duration::from_millis(max.max(first)),
            timeout: Duration::from_millis(timeout),
            per_receiver: usize::try_from(per_receiver).unwrap_or(8),
        }
    }

    /// The wait before attempt `attempts + 1`, after `attempts` failed ones: the first backoff
    /// doubled per failure, capped, then spread by ±25 % so receivers that come back are not
    /// hit by every delivery in the same instant.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(20);
        let base = self
            .first_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        base.mul_f64(0.75 + fastrand::f64() * 0.5)
    }
}

/// The daemon's callback key, `<state_dir>/callback.key` (32 random bytes, hex, mode 0600),
/// created at first start. Header callbacks are signed with a secret derived from it per caller
/// uid ([`sign::caller_secret`]), so each caller can verify its own and forge no other's.
pub fn load_or_create_key(state_dir: &Path) -> std::io::Result<String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = state_dir.join("callback.key");
    match fs_err::read_to_string(&path) {
        Ok(text) if text.trim().len() == 64 => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold 64 hex digits; remove it to have a new key made",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 32];
    getrandom_fill(&mut bytes)?;
    let key = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = fs_err::OpenOptions::from_options(options).open(&path)?;
    file.write_all(key.as_bytes())?;
    file.sync_all()?;
    Ok(key)
}

/// Fills `buf` from the kernel's random source: a key must not come from a seeded PRNG.
pub(crate) fn getrandom_fill(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read as _;
    fs_err::File::open("/dev/urandom")?.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let s = CallbackSettings {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..CallbackSettings::default()
        };
        for (attempts, base) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            let d = s.backoff(attempts).as_secs_f64() * 1000.0;
            assert!(
                (base as f64 * 0.75..=base as f64 * 1.25).contains(&d),
                "{attempts}: {d}"
            );
        }
    }

    #[test]
    fn settings_refuse_zero_and_keep_defaults() {
        let mut v = Vec::new();
        let raw: RawCallbacks =
            toml::from_str("max_attempts = 0\nallow_hosts = [\"Engine\"]").unwrap();
        let s = CallbackSettings::validate(raw, &mut v);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(s.max_attempts, 8);
        assert_eq!(s.allow_hosts, ["engine"]);
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_key(dir.path()).unwrap();
        let b = load_or_create_key(dir.path()).unwrap();
        assert_eq!((a.len(), &a), (64, &b));
    }
}
