//! Opening the daemon's own SQLite files the same way (the registry and the audit trail; history
//! has numbered migrations of its own): WAL, a busy timeout, the file's own settings, and the
//! schema brought to this build's version in one transaction, since SQLite's DDL is
//! transactional: a crash mid-upgrade leaves the old schema and its version, never a half one.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, Transaction};

/// How long a statement waits for a lock another process holds (a backup, `sqlite3` in a shell).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a database could not be opened; each database turns it into its own error.
#[derive(Debug)]
pub enum OpenError {
    /// A step failed.
    Db {
        /// The step, e.g. "switch to WAL".
        operation: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer build.
    SchemaTooNew {
        /// Its `user_version`.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
}

fn step(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> OpenError {
    move |source| OpenError::Db { operation, source }
}

/// A database's schema and settings.
pub struct Schema<'a> {
    /// Idempotent DDL (`CREATE … IF NOT EXISTS`) of the newest schema.
    pub sql: &'a str,
    /// The `user_version` it stands for.
    pub version: i64,
    /// `PRAGMA`s set on every open: name, value, and the step's name for errors.
    pub pragmas: &'a [(&'a str, &'a str, &'static str)],
}

/// Opens (creating) the database at `path` and brings it to `schema`; `migrate` runs inside the
/// upgrade's transaction after the DDL, for changes DDL cannot express idempotently.
pub fn open<E: From<OpenError>>(
    path: &Path,
    schema: &Schema<'_>,
    migrate: impl FnOnce(&Transaction<'_>) -> Result<(), E>,
) -> Result<Connection, E> {
    let mut conn = Connection::open(path).map_err(step("open the database"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(step("set the busy timeout"))?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        .map_err(step("switch to WAL"))?;
    for (name, value, operation) in schema.pragmas {
        conn.pragma_update(None, name, value)
            .map_err(step(operation))?;
    }
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(step("read the schema version"))?;
    if found > schema.version {
        return Err(OpenError::SchemaTooNew {
            found,
            supported: schema.version,
        }
        .into());
    }
    let tx = conn
        .transaction()
        .map_err(step("begin the schema upgrade"))?;
    tx.execute_batch(schema.sql)
        .map_err(step("create the schema"))?;
    migrate(&tx)?;
    tx.pragma_update(None, "user_version", schema.version)
        .map_err(step("write the schema version"))?;
    tx.commit().map_err(step("commit the schema upgrade"))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(version: i64) -> Schema<'static> {
        Schema {
            sql: "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY);",
            version,
            pragmas: &[
                ("foreign_keys", "ON", "enable foreign keys"),
                ("synchronous", "FULL", "set synchronous = FULL"),
            ],
        }
    }

    #[test]
    fn a_database_is_wal_with_its_settings_at_its_version_and_refuses_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let mut migrated = 0;
        let conn = open::<OpenError>(&path, &schema(3), |tx| {
            migrated += 1;
            tx.execute("INSERT INTO t (id) VALUES (1)", [])
                .map_err(step("insert"))?;
            Ok(())
        })
        .unwrap();
        let pragma = |name: &str| -> String {
            conn.pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0))
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
        assert_eq!(pragma("foreign_keys"), "Integer(1)");
        assert_eq!(pragma("synchronous"), "Integer(2)");
        assert_eq!(pragma("user_version"), "Integer(3)");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!((migrated, rows), (1, 1));
        drop(conn);
        match open::<OpenError>(&path, &schema(2), |_| Ok(())) {
            Err(OpenError::SchemaTooNew { found, supported }) => {
                assert_eq!((found, supported), (3, 2));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
