//! `Idempotency-Key`: the same key with the same request returns the same execution for
//! [`WINDOW`]; the same key with a different request is a conflict.
//!
//! Keys live in their own SQLite file (`<state_dir>/idempotency.db`, synchronous=FULL) so they
//! survive a crash exactly like the `queued` record they point to. A request is identified by
//! the SHA-256 of the script, the version selector and the body.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

/// How long a key is remembered.
pub const WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 256;

/// Whether `key` is one the API documents: 1 to [`MAX_KEY_LEN`] printable ASCII characters,
/// spaces only inside (the `pattern` `^[!-~]([ -~]*[!-~])?$`). A tab is a legal header byte,
/// so the header's own rules do not keep it out.
pub fn valid_key(key: &str) -> bool {
    let visible = |b: &u8| (b'!'..=b'~').contains(b);
    let bytes = key.as_bytes();
    bytes.len() <= MAX_KEY_LEN
        && bytes.first().is_some_and(visible)
        && bytes.last().is_some_and(visible)
        && bytes.iter().all(|b| (b' '..=b'~').contains(b))
}

/// The store failed.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// Opening or migrating the database.
    #[error("opening the idempotency key store {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::sqlite::OpenError,
    },
    /// A query failed.
    #[error("idempotency key store: {0}")]
    Query(#[from] rusqlite::Error),
    /// The blocking task failed.
    #[error("idempotency key store task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What a key says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: it now points to the given id.
    New,
    /// The key was used for the same request: this is its execution.
    Existing(String),
    /// The key was used for a different request.
    Conflict,
}

/// The key store; cheap to clone.
#[derive(Debug, Clone)]
pub struct IdempotencyStore {
    conn: Arc<Mutex<Connection>>,
}

/// The fingerprint of a request.
pub fn fingerprint(script: &str, selector: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [script.as_bytes(), selector.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(body);
    hex::encode(h.finalize())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl IdempotencyStore {
    /// Opens or creates `<state_dir>/idempotency.db`.
    pub fn open(state_dir: &Path) -> Result<Self, IdempotencyError> {
        let path = state_dir.join("idempotency.db");
        let schema = crate::sqlite::Schema {
            sql: "CREATE TABLE IF NOT EXISTS idempotency_keys (
                    key TEXT PRIMARY KEY,
                    fingerprint TEXT NOT NULL,
                    execution_id TEXT NOT NULL,
                    created_ms INTEGER NOT NULL
                )",
            version: 1,
            // A claimed key must survive a power loss with the submission it names.
            pragmas: &[("synchronous", "FULL", "set synchronous = FULL")],
        };
        let conn = crate::sqlite::open(&path, &schema, |_| Ok::<(), crate::sqlite::OpenError>(()))
            .map_err(|source| IdempotencyError::Open {
                path: path.clone(),
                source,
            })?;
        Ok(IdempotencyStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Claims `key` for a request with `fingerprint` that would become execution `id`.
    pub async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        id: &str,
    ) -> Result<Claim, IdempotencyError> {
        let conn = Arc::clone(&self.conn);
        let (key, fp, id) = (key.to_owned(), fingerprint.to_owned(), id.to_owned());
        tokio::task::spawn_blocking(move || claim(&lock(&conn), &key, &fp, &id, now_ms())).await?
    }

    /// Forgets `key` (its request was refused, so nothing ran under it).
    pub async fn release(&self, key: &str, id: &str) -> Result<(), IdempotencyError> {
        let conn = Arc::clone(&self.conn);
        let (key, id) = (key.to_owned(), id.to_owned());
        tokio::task::spawn_blocking(move || {
            lock(&conn).execute(
                "DELETE FROM idempotency_keys WHERE key = ?1 AND execution_id = ?2",
                params![key, id],
            )?;
            Ok(())
        })
        .await?
    }
}

fn claim(
    conn: &Connection,
    key: &str,
    fp: &str,
    id: &str,
    now: i64,
) -> Result<Claim, IdempotencyError> {
    let window = i64::try_from(WINDOW.as_millis()).unwrap_or(i64::MAX);
    conn.execute(
        "DELETE FROM idempotency_keys WHERE created_ms < ?1",
        params![now.saturating_sub(window)],
    )?;
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO idempotency_keys (key, fingerprint, execution_id, created_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![key, fp, id, now],
    )?;
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT fingerprint, execution_id FROM idempotency_keys WHERE key = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match row {
        Some((stored, existing)) if stored == fp => Claim::Existing(existing),
        Some(_) => Claim::Conflict,
        // Deleted between the two statements (cannot happen under the lock); treat as new.
        None => Claim::New,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let dir = tempfile::tempdir().unwrap();
        let store = IdempotencyStore::open(dir.path()).unwrap();
        let conn = Arc::try_unwrap(store.conn).unwrap().into_inner().unwrap();
        // The file may go; the open connection keeps working.
        drop(dir);
        conn
    }

    #[test]
    fn same_key_same_request_is_the_same_execution() {
        let c = conn();
        let fp = fingerprint("s", "", b"{}");
        assert_eq!(claim(&c, "k", &fp, "id1", 1000).unwrap(), Claim::New);
        assert_eq!(
            claim(&c, "k", &fp, "id2", 2000).unwrap(),
            Claim::Existing("id1".into())
        );
    }

    #[test]
    fn same_key_other_request_conflicts() {
        let c = conn();
        claim(&c, "k", &fingerprint("s", "", b"{}"), "id1", 1000).unwrap();
        for other in [
            fingerprint("s", "", b"{\"a\":1}"),
            fingerprint("t", "", b"{}"),
            fingerprint("s", "tag=prod", b"{}"),
        ] {
            assert_eq!(
                claim(&c, "k", &other, "id2", 2000).unwrap(),
                Claim::Conflict
            );
        }
    }

    #[test]
    fn keys_expire_after_the_window() {
        let c = conn();
        let fp = fingerprint("s", "", b"{}");
        claim(&c, "k", &fp, "id1", 0).unwrap();
        let later = i64::try_from(WINDOW.as_millis()).unwrap() + 1;
        assert_eq!(claim(&c, "k", &fp, "id2", later).unwrap(), Claim::New);
    }

    #[test]
    fn keys_are_printable_ascii_with_spaces_only_inside_as_documented() {
        for good in ["k", "k-1", "a b", "~!", &"x".repeat(MAX_KEY_LEN)] {
            assert!(valid_key(good), "{good:?}");
        }
        for bad in [
            "",
            " a",
            "a ",
            "a\tb",
            "é",
            "a\u{7f}",
            &"x".repeat(MAX_KEY_LEN + 1),
        ] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_do_not_run_fields_together() {
        assert_ne!(fingerprint("ab", "c", b""), fingerprint("a", "bc", b""));
    }
}
