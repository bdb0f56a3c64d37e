//! The registry's SQLite database: schema, the rows loaded at open, and the three writes.
//!
//! SQLite is the durable copy; the registry answers reads from memory and touches the database
//! only at open (one full load) and on register, tag and disable. Each write is one
//! transaction, so a tag move or a registration is all-or-nothing.

use std::path::Path;

use rusqlite::{Connection, params};

use super::{Registrant, RegistryError};

/// The schema version this build writes (`PRAGMA user_version`): 1 is [`SCHEMA`], 2 adds who
/// registered each version (uid, gid), 3 their pid ([`migrate`]).
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS scripts (
    name       TEXT PRIMARY KEY,
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    name       TEXT NOT NULL REFERENCES scripts(name),
    id         TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    files      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (name, id)
);
CREATE TABLE IF NOT EXISTS tags (
    name       TEXT NOT NULL,
    tag        TEXT NOT NULL,
    version    TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (name, tag),
    FOREIGN KEY (name, version) REFERENCES versions(name, id)
);
";

/// A row of `scripts`.
pub(super) struct ScriptRow {
    pub name: String,
    pub disabled: bool,
    pub created_at: String,
}

/// A row of `versions`; `manifest` and `files` are JSON text.
pub(super) struct VersionRow {
    pub name: String,
    pub id: String,
    pub manifest: String,
    pub files: String,
    pub created_at: String,
    /// `registered_uid`/`registered_gid`/`registered_pid`; NULL (unknown) in rows older than
    /// schema 2 (all three) or 3 (the pid).
    pub registered_by: Option<Registrant>,
}

/// A row of `tags`.
pub(super) struct TagRow {
    pub name: String,
    pub tag: String,
    pub version: String,
}

/// Everything in the database, versions in registration order.
pub(super) struct Loaded {
    pub scripts: Vec<ScriptRow>,
    pub versions: Vec<VersionRow>,
    pub tags: Vec<TagRow>,
}

/// The open database.
#[derive(Debug)]
pub(super) struct Db {
    conn: Connection,
}

fn db_error(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> RegistryError {
    move |source| RegistryError::Db { operation, source }
}

impl Db {
    /// Opens (creating) the database in WAL mode and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db, RegistryError> {
        let schema = crate::sqlite::Schema {
            sql: SCHEMA,
            version: SCHEMA_VERSION,
            pragmas: &[("foreign_keys", "ON", "enable foreign keys")],
        };
        let conn = crate::sqlite::open(path, &schema, |tx| migrate(tx))?;
        Ok(Db { conn })
    }

    /// Reads every row.
    pub fn load(&self) -> Result<Loaded, RegistryError> {
        let scripts = self
            .query(
                "SELECT name, disabled, created_at FROM scripts ORDER BY name",
                |row| {
                    Ok(ScriptRow {
                        name: row.get(0)?,
                        disabled: row.get(1)?,
                        created_at: row.get(2)?,
                    })
                },
            )
            .map_err(db_error("load scripts"))?;
        let versions = self
            .query(
                "SELECT name, id, manifest, files, created_at, registered_uid, registered_gid,
                        registered_pid
                 FROM versions ORDER BY name, seq",
                |row| {
                    let uid: Option<u32> = row.get(5)?;
                    let gid: Option<u32> = row.get(6)?;
                    let pid: Option<u32> = row.get(7)?;
                    Ok(VersionRow {
                        name: row.get(0)?,
                        id: row.get(1)?,
                        manifest: row.get(2)?,
                        files: row.get(3)?,
                        created_at: row.get(4)?,
                        registered_by: uid.zip(gid).map(|(uid, gid)| Registrant { uid, gid, pid }),
                    })
                },
            )
            .map_err(db_error("load versions"))?;
        let tags = self
            .query(
                "SELECT name, tag, version FROM tags ORDER BY name, tag",
                |row| {
                    Ok(TagRow {
                        name: row.get(0)?,
                        tag: row.get(1)?,
                        version: row.get(2)?,
                    })
                },
            )
            .map_err(db_error("load tags"))?;
        Ok(Loaded {
            scripts,
            versions,
            tags,
        })
    }

    fn query<T>(
        &self,
        sql: &str,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        self.conn.prepare(sql)?.query_map([], map)?.collect()
    }

    /// Stores a new version, creating its script if needed, and points `latest` at it.
    pub fn insert_version(&mut self, row: &VersionRow) -> Result<(), RegistryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(db_error("begin a transaction"))?;
        tx.execute(
            "INSERT OR IGNORE INTO scripts (name, disabled, created_at) VALUES (?1, 0, ?2)",
            params![row.name, row.created_at],
        )
        .map_err(db_error("insert a script"))?;
        let seq: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM versions WHERE name = ?1",
                [&row.name],
                |r| r.get(0),
            )
            .map_err(db_error("number a version"))?;
        tx.execute(
            "INSERT INTO versions
                 (name, id, manifest, files, created_at, seq, registered_uid, registered_gid,
                  registered_pid)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                row.name,
                row.id,
                row.manifest,
                row.files,
                row.created_at,
                seq,
                row.registered_by.map(|r| r.uid),
                row.registered_by.map(|r| r.gid),
                row.registered_by.and_then(|r| r.pid),
            ],
        )
        .map_err(db_error("insert a version"))?;
        upsert_tag(&tx, &row.name, "latest", &row.id, &row.created_at)?;
        tx.commit().map_err(db_error("commit a version"))
    }

    /// Points `tag` at `version` (creating the tag or moving it) in one statement.
    pub fn set_tag(
        &mut self,
        name: &str,
        tag: &str,
        version: &str,
        now: &str,
    ) -> Result<(), RegistryError> {
        upsert_tag(&self.conn, name, tag, version, now)
    }

    /// Sets a script's disabled flag; `false` if there is no such script.
    pub fn set_disabled(&mut self, name: &str, disabled: bool) -> Result<bool, RegistryError> {
        let changed = self
            .conn
            .execute(
                "UPDATE scripts SET disabled = ?2 WHERE name = ?1",
                params![name, disabled],
            )
            .map_err(db_error("update a script"))?;
        Ok(changed > 0)
    }
}

/// Brings a schema-1 or -2 database (or the fresh one [`SCHEMA`] just created) to this build's.
///
/// Version 2 adds `registered_uid`/`registered_gid` to `versions` as nullable columns, so
/// every existing row stays valid and reads as "registered by someone unknown"; version 3 adds
/// `registered_pid` the same way (a schema-2 row keeps its uid and gid, its pid is unknown). Whether the
/// columns are there is read from the table itself rather than from `user_version`, so a
/// database whose version number and columns disagree (restored from a copy, edited by hand)
/// is mended instead of failing on a duplicate column.
fn migrate(conn: &Connection) -> Result<(), RegistryError> {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('versions')")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(db_error("read the versions table's columns"))?;
    for column in ["registered_uid", "registered_gid", "registered_pid"] {
        if !columns.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE versions ADD COLUMN {column} INTEGER"))
                .map_err(db_error("add who registered each version"))?;
        }
    }
    Ok(())
}

fn upsert_tag(
    conn: &Connection,
    name: &str,
    tag: &str,
    version: &str,
    now: &str,
) -> Result<(), RegistryError> {
    conn.execute(
        "INSERT INTO tags (name, tag, version, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name, tag) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
        params![name, tag, version, now],
    )
    .map_err(db_error("write a tag"))?;
    Ok(())
}
