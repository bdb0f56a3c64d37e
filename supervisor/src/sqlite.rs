//! Opening the daemon's SQLite files the same way (the registry, the audit trail, the execution
//! history, the idempotency keys): WAL, checked, since readers beside the writer rely on it; a
//! busy timeout; the file's own settings; and the schema brought to this build's version, each
//! step of an upgrade in one transaction with its version, since SQLite's DDL is transactional:
//! a crash mid-upgrade leaves the old schema and its version, never a half one.
//!
//! Two ways to describe a schema, whichever a file started with: idempotent DDL plus a version
//! ([`open`], the registry and the audit trail), or numbered migrations ([`migrate`], the
//! history, whose `user_version` counts the migrations it ran).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, Transaction};

/// How long a statement waits for a lock another process holds (a backup, `sqlite3` in a shell).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a database could not be opened; each database wraps it in its own error with its name.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A step failed.
    #[error("cannot {operation}: {source}")]
    Db {
        /// The step, e.g. "switch to WAL".
        operation: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file system does not support WAL (some network file systems).
    #[error(
        "cannot use WAL (the journal mode stays {mode}); put the state directory on a local file \
         system"
    )]
    NoWal {
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// The file was written by a newer build.
    #[error(
        "schema version {found} is newer than this runwarmd knows ({supported}); run the \
         runwarmd that wrote it, or move the file away"
    )]
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

/// `PRAGMA`s set on every open: name, value, and the step's name for errors.
pub type Pragmas<'a> = &'a [(&'a str, &'a str, &'static str)];

/// A database's schema and settings, as idempotent DDL.
pub struct Schema<'a> {
    /// Idempotent DDL (`CREATE … IF NOT EXISTS`) of the newest schema.
    pub sql: &'a str,
    /// The `user_version` it stands for.
    pub version: i64,
    /// Set on every open.
    pub pragmas: Pragmas<'a>,
}

/// Opens (creating) the database at `path` in WAL mode with the busy timeout and `pragmas`; the
/// schema is the caller's ([`open`], [`migrate`]).
pub fn connect(path: &Path, pragmas: Pragmas<'_>) -> Result<Connection, OpenError> {
    let conn = Connection::open(path).map_err(step("open the database"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(step("set the busy timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(step("switch to WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::NoWal { mode });
    }
    for (name, value, operation) in pragmas {
        conn.pragma_update(None, name, value)
            .map_err(step(operation))?;
    }
    Ok(conn)
}

/// The file's `user_version`, refused when newer than `supported`.
fn version(conn: &Connection, supported: i64) -> Result<i64, OpenError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(step("read the schema version"))?;
    // A negative version is no build's: refused like a newer one rather than migrated over.
    if found > supported || found < 0 {
        return Err(OpenError::SchemaTooNew { found, supported });
    }
    Ok(found)
}

/// Opens (creating) the database at `path` and brings it to `schema`; `migrate` runs inside the
/// upgrade's transaction after the DDL, for changes DDL cannot express idempotently.
pub fn open<E: From<OpenError>>(
    path: &Path,
    schema: &Schema<'_>,
    migrate: impl FnOnce(&Transaction<'_>) -> Result<(), E>,
) -> Result<Connection, E> {
    let mut conn = connect(path, schema.pragmas)?;
    version(&conn, schema.version)?;
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

/// Runs every migration of `migrations` the database has not seen (its `user_version` counts
/// those it ran), each in its own transaction together with the version's bump. Append only: a
/// released migration is never edited, because databases in the field already ran it.
pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), OpenError> {
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let found = version(conn, known)?;
    for (n, sql) in (1_i64..)
        .zip(migrations)
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let tx = conn.transaction().map_err(step("begin a migration"))?;
        tx.execute_batch(sql).map_err(step("run a migration"))?;
        tx.pragma_update(None, "user_version", n)
            .map_err(step("write the schema version"))?;
        tx.commit().map_err(step("commit a migration"))?;
    }
    Ok(())
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

    #[test]
    fn migrations_run_in_order_once_each_and_a_newer_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let migrations = [
            "CREATE TABLE t (id INTEGER PRIMARY KEY);",
            "ALTER TABLE t ADD COLUMN name TEXT;",
        ];
        let mut conn = connect(&path, &[]).unwrap();
        migrate(&mut conn, &migrations[..1]).unwrap();
        conn.execute("INSERT INTO t (id) VALUES (1)", []).unwrap();
        // Reopened by a build with one more migration: only that one runs (the first would fail
        // on the existing table), and the row stays.
        drop(conn);
        let mut conn = connect(&path, &[]).unwrap();
        migrate(&mut conn, &migrations).unwrap();
        migrate(&mut conn, &migrations).unwrap();
        let (rows, version): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM t WHERE name IS NULL), user_version \
                 FROM pragma_user_version",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((rows, version), (1, 2));
        match migrate(&mut conn, &migrations[..1]) {
            Err(OpenError::SchemaTooNew { found, supported }) => {
                assert_eq!((found, supported), (2, 1));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
        conn.pragma_update(None, "user_version", -1).unwrap();
        assert!(matches!(
            migrate(&mut conn, &migrations),
            Err(OpenError::SchemaTooNew { found: -1, .. })
        ));
    }

    #[test]
    fn a_database_that_cannot_be_wal_is_refused_with_its_mode() {
        // An in-memory database keeps its journal in memory whatever is asked, as a file system
        // without shared memory keeps it in a rollback journal.
        match connect(Path::new(":memory:"), &[]) {
            Err(err @ OpenError::NoWal { .. }) => {
                assert!(err.to_string().contains("stays memory"), "{err}");
            }
            other => panic!("expected NoWal, got {other:?}"),
        }
    }
}
