//! The SQLite schema of `accounts.db` and connection settings.
//!
//! Ids come from AUTOINCREMENT so that a deleted organization, user, group
//! or share never hands its id to a new one (audit records keep old ids).
//! Names are stored as typed plus a folded `name_key` that the unique
//! indexes use (see `names::fold`).

use std::time::Duration;

use rusqlite::Connection;

/// Current schema version (`meta.schema`).
pub const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', 1), ('revision', 1);

-- A constant sealed under the NT-hash key: opening the database with
-- another master key fails at once instead of at the first logon.
CREATE TABLE IF NOT EXISTS key_check (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS orgs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    name_key     TEXT UNIQUE,            -- NULL once erased: the name is free again
    suspended    INTEGER NOT NULL DEFAULT 0,
    quota_bytes  INTEGER,                -- NULL: unlimited
    retention    TEXT,                   -- NULL: the server's default
    contract_end TEXT,                   -- YYYY-MM-DD (last day of the contract, JST)
    erased       INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS users (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id       INTEGER NOT NULL REFERENCES orgs(id),
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('member', 'org_admin', 'operator')),
    enabled      INTEGER NOT NULL DEFAULT 1,
    pw_hash      TEXT NOT NULL,          -- Argon2id PHC string
    nt_sealed    BLOB NOT NULL,          -- SealKey(mk/nt-hash), AD = user id
    locked_until INTEGER,                -- unix seconds
    created      INTEGER NOT NULL,
    pw_changed   INTEGER NOT NULL,
    UNIQUE (org_id, name_key)
);
CREATE INDEX IF NOT EXISTS users_by_name ON users (name_key);

CREATE TABLE IF NOT EXISTS logon_failures (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS logon_failures_by_user ON logon_failures (user_id);

CREATE TABLE IF NOT EXISTS groups (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id   INTEGER NOT NULL REFERENCES orgs(id),
    name     TEXT NOT NULL,
    name_key TEXT NOT NULL,
    UNIQUE (org_id, name_key)
);

CREATE TABLE IF NOT EXISTS group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS group_members_by_user ON group_members (user_id);

CREATE TABLE IF NOT EXISTS shares (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id         INTEGER NOT NULL REFERENCES orgs(id),
    name           TEXT NOT NULL,
    name_key       TEXT NOT NULL UNIQUE, -- "<org_id>/<folded name>" (schema 3): unique per organization
    root_node      INTEGER NOT NULL,
    encryption     TEXT,                 -- NULL: inherit [security] encryption
    comment        TEXT NOT NULL DEFAULT '',
    default_access TEXT NOT NULL DEFAULT 'read_write',
    created        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS shares_by_org ON shares (org_id);

-- Shares whose backup generations are not offered as Previous Versions
-- (on by default; a row turns them off). A table of its own rather than a
-- column, so no schema step is needed.
CREATE TABLE IF NOT EXISTS share_no_previous_versions (
    share_id INTEGER PRIMARY KEY REFERENCES shares(id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS share_access (
    share_id INTEGER NOT NULL REFERENCES shares(id) ON DELETE CASCADE,
    user_id  INTEGER REFERENCES users(id) ON DELETE CASCADE,
    group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    access   TEXT NOT NULL CHECK (access IN ('none', 'read', 'read_write', 'admin')),
    CHECK ((user_id IS NULL) <> (group_id IS NULL)),
    UNIQUE (share_id, user_id),
    UNIQUE (share_id, group_id)
);

-- Console two-factor sign-in (RFC 6238 TOTP). New tables only, so that a
-- database written by this version still opens in older ones.
CREATE TABLE IF NOT EXISTS user_totp (
    user_id   INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    sealed    BLOB NOT NULL,            -- SealKey(mk/nt-hash), AD = "totp" || user id
    last_step INTEGER NOT NULL DEFAULT 0 -- newest time step accepted: a code works once
);
CREATE TABLE IF NOT EXISTS org_console (
    org_id       INTEGER PRIMARY KEY REFERENCES orgs(id),
    require_totp INTEGER NOT NULL DEFAULT 0
);
-- Where an organization's remote backups go (`[backup.targets.NAME]`)
-- and how many generations are kept; no row: no remote backups.
CREATE TABLE IF NOT EXISTS org_backup (
    org_id      INTEGER PRIMARY KEY REFERENCES orgs(id),
    target      TEXT NOT NULL,
    generations INTEGER NOT NULL CHECK (generations >= 1),
    set_by      TEXT NOT NULL,
    set_at      INTEGER NOT NULL
);
"#;

/// Applies connection settings and creates the schema if needed.
pub fn init(conn: &Connection) -> rusqlite::Result<()> {
    // WAL: the server reads while the CLI writes. FULL: an administrative
    // change that was reported done survives a power cut. secure_delete:
    // deleted rows (old hashes, erased names) are overwritten, not left in
    // free pages.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(SCHEMA)?;
    migrate(conn)
}

/// Brings a database written by an older smbvault (or just created from
/// the version-1 `SCHEMA` above) to `SCHEMA_VERSION`, one step at a time,
/// each in its own transaction.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    if version(conn)? < 2 {
        // 2: per-share access-based enumeration (off for existing shares).
        let tx = conn.unchecked_transaction()?;
        let has: bool = tx.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('shares') WHERE name = 'access_based_enum'",
            [],
            |r| r.get(0),
        )?;
        if !has {
            tx.execute_batch("ALTER TABLE shares ADD COLUMN access_based_enum INTEGER NOT NULL DEFAULT 0;")?;
        }
        tx.execute("UPDATE meta SET value = 2 WHERE key = 'schema'", [])?;
        tx.commit()?;
    }
    if version(conn)? < 3 {
        // 3: share names are unique per organization, not server-wide: the
        // session's organization selects `\\server\docs`. The column keeps
        // its UNIQUE constraint (SQLite cannot drop one without rebuilding
        // the table) and now holds "<org_id>/<folded name>" (see
        // `shares::share_key`); names never contain '/'. Organizations get
        // an optional UPN suffix (`user@acme.example` logons).
        let tx = conn.unchecked_transaction()?;
        tx.execute("UPDATE shares SET name_key = org_id || '/' || name_key WHERE instr(name_key, '/') = 0", [])?;
        let has: bool =
            tx.query_row("SELECT count(*) > 0 FROM pragma_table_info('orgs') WHERE name = 'upn_suffix'", [], |r| {
                r.get(0)
            })?;
        if !has {
            tx.execute_batch(
                "ALTER TABLE orgs ADD COLUMN upn_suffix TEXT;
                 CREATE UNIQUE INDEX IF NOT EXISTS orgs_by_upn_suffix ON orgs (upn_suffix);",
            )?;
        }
        tx.execute("UPDATE meta SET value = 3 WHERE key = 'schema'", [])?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema version recorded in the database.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 database (shares without `access_based_enum`) opens,
    /// keeps its shares, and has enumeration off for them.
    #[test]
    fn version_1_database_migrates() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(
            "INSERT INTO orgs (name, name_key, created) VALUES ('ACME', 'acme', 0);
             INSERT INTO shares (org_id, name, name_key, root_node, created) VALUES (1, 'docs', 'docs', 7, 0);",
        )
        .unwrap();
        assert_eq!(version(&conn).unwrap(), 1);
        init(&conn).unwrap();
        assert_eq!(version(&conn).unwrap(), SCHEMA_VERSION);
        let (root, abe, key): (i64, bool, String) = conn
            .query_row("SELECT root_node, access_based_enum, name_key FROM shares", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((root, abe, key.as_str()), (7, false, "1/docs"));
        // Opening again is a no-op.
        init(&conn).unwrap();
        assert_eq!(version(&conn).unwrap(), SCHEMA_VERSION);
    }
}
