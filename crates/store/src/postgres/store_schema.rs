//! The store's PostgreSQL schema, derived from the SQLite one rather than written twice: the
//! SQLite migrations are applied to an in-memory database and each table, index and trigger
//! that results is translated. A column added to SQLite is therefore on PostgreSQL too, and a
//! test compares the two catalogues column by column.
//!
//! What changes in translation: `INTEGER`/`BLOB`/`REAL` become `bigint`/`bytea`/`double
//! precision`; an `INTEGER PRIMARY KEY` (SQLite's rowid) becomes an identity column; the one
//! table without a key gets a `rowid` identity column (the state capture names rows by it, as
//! SQLite's rowid); `COLLATE NOCASE` becomes `lower()`; each `RAISE(ABORT, …)` trigger becomes
//! a PL/pgSQL function raising the same message. The ledger's own tables come from
//! `schema.rs` (shared with the multi-node ledger), and the state capture gets one generic
//! trigger function that writes into the writer session's temporary `state_changes` table.

use rusqlite::Connection;

use crate::StoreError;
use crate::sql::pg::{nocase, replace_word};
use crate::state::NOT_COVERED_META;

/// One object of SQLite's catalogue: (type, name, table, sql).
type Object = (String, String, String, String);

/// The SQLite schema after the first `migrations` migrations.
fn objects_at(migrations: usize) -> Result<(Connection, Vec<Object>), StoreError> {
    let mut conn = Connection::open_in_memory()?;
    crate::schema::migrate_first(&mut conn, migrations)?;
    let objects = conn
        .prepare(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema
             WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        )?
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    Ok((conn, objects))
}

/// Every statement of the schema, in an order PostgreSQL accepts (referenced tables first).
#[cfg(test)]
pub(crate) fn ddl() -> Result<String, StoreError> {
    ddl_at(crate::SCHEMA_VERSION)
}

/// The same for the schema after the first `migrations` migrations (an earlier release's).
pub(crate) fn ddl_at(migrations: usize) -> Result<String, StoreError> {
    let (conn, objects) = objects_at(migrations)?;
    translate(&conn, &objects)
}

/// The statements that bring a database made at schema `from` to this release's schema, when
/// the migrations between only add tables, indexes and triggers (the usual case); `None`
/// when one of them changes or removes an existing object, which needs a migration written for
/// PostgreSQL and is refused.
pub(crate) fn upgrade_ddl(from: usize) -> Result<Option<(String, Vec<String>)>, StoreError> {
    let (_, before) = objects_at(from)?;
    let (conn, after) = objects_at(crate::SCHEMA_VERSION)?;
    let unchanged = before.iter().all(|b| after.iter().any(|a| a == b));
    if !unchanged {
        return Ok(None);
    }
    let added: Vec<Object> = after
        .into_iter()
        .filter(|a| !before.iter().any(|b| b.1 == a.1))
        .collect();
    let tables = added
        .iter()
        .filter(|o| o.0 == "table")
        .map(|o| o.1.clone())
        .collect();
    Ok(Some((translate(&conn, &added)?, tables)))
}

fn translate(conn: &Connection, objects: &[Object]) -> Result<String, StoreError> {
    let mut tables: Vec<(String, String)> = Vec::new();
    let mut rest = String::new();
    for (kind, name, table, sql) in objects {
        // The ledger's table is the multi-node ledger's (same columns, its own triggers).
        if table == "ledger" {
            continue;
        }
        match kind.as_str() {
            "table" => {
                let keyed = has_primary_key(conn, name)?;
                tables.push((name.clone(), translate_table(sql, keyed)));
            }
            "index" => {
                rest.push_str(&translate_index(sql));
                rest.push_str(";\n");
            }
            "trigger" => {
                rest.push_str(&translate_trigger(name, sql)?);
            }
            other => {
                return Err(StoreError::Schema(format!(
                    "no PostgreSQL form for SQLite {other} {name}"
                )));
            }
        }
    }
    let mut out = String::new();
    for (_, sql) in in_reference_order(tables) {
        out.push_str(&sql);
        out.push_str(";\n");
    }
    out.push_str(&rest);
    Ok(out)
}

fn has_primary_key(conn: &Connection, table: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE pk > 0)",
        [table],
        |r| r.get(0),
    )?)
}

/// `sql` without its `--` comments: SQLite keeps a table's comments in its catalogue, and an
/// apostrophe in one would read as a string to the word replacements below.
fn without_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted && c == '-' && chars.peek() == Some(&'-') {
            for rest in chars.by_ref() {
                if rest == '\n' {
                    out.push('\n');
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn translate_table(sql: &str, keyed: bool) -> String {
    let sql = &without_comments(sql);
    // SQLite numbers every row of a table that is neither WITHOUT ROWID nor keyed by an
    // INTEGER PRIMARY KEY (which is then the rowid); queries order by it (insertion order) and
    // the state capture names key-less rows by it. PostgreSQL gets the same as a column.
    let rowid = numbers_rows(sql);
    let mut s = sql.replace(
        "INTEGER PRIMARY KEY",
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    );
    s = replace_word(&s, "INTEGER", "BIGINT");
    s = replace_word(&s, "BLOB", "BYTEA");
    s = replace_word(&s, "REAL", "DOUBLE PRECISION");
    s = s.replace(" IS NOT '", " IS DISTINCT FROM '");
    let s = s.trim_end();
    let s = s.strip_suffix("WITHOUT ROWID").unwrap_or(s).trim_end();
    if !rowid {
        return s.to_owned();
    }
    let body = s.strip_suffix(')').unwrap_or(s);
    let constraint = if keyed { "UNIQUE" } else { "PRIMARY KEY" };
    format!("{body},\n    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY {constraint}\n)")
}

fn translate_index(sql: &str) -> String {
    nocase(sql)
}

/// `CREATE TRIGGER n BEFORE <event> ON t [WHEN c] BEGIN SELECT RAISE(ABORT, 'm'); END`
fn translate_trigger(name: &str, sql: &str) -> Result<String, StoreError> {
    let unsupported = || StoreError::Schema(format!("no PostgreSQL form for trigger {name}"));
    let s = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let head = s
        .strip_prefix(&format!("CREATE TRIGGER {name} "))
        .ok_or_else(unsupported)?;
    let (event, after) = head.split_once(" ON ").ok_or_else(unsupported)?;
    let (table, after) = after.split_once(' ').ok_or_else(unsupported)?;
    let (when, body) = match after.strip_prefix("WHEN ") {
        Some(w) => {
            let (c, b) = w.split_once(" BEGIN ").ok_or_else(unsupported)?;
            (Some(c), b)
        }
        None => (None, after.strip_prefix("BEGIN ").ok_or_else(unsupported)?),
    };
    let message = body
        .strip_prefix("SELECT RAISE(ABORT, '")
        .and_then(|b| b.strip_suffix("'); END"))
        .ok_or_else(unsupported)?;
    let condition = when.map_or_else(|| "TRUE".to_owned(), nocase);
    // The condition may read other rows (a subquery), which PostgreSQL allows in a function
    // body but not in a trigger's WHEN.
    Ok(format!(
        "CREATE FUNCTION mamori_refuse_{name}() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF {condition} THEN
        RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $f$;
CREATE TRIGGER {name} {event} ON {table} FOR EACH ROW EXECUTE FUNCTION mamori_refuse_{name}();
"
    ))
}

/// Whether SQLite numbers the rows of the table `sql` creates with a rowid of its own (not a
/// WITHOUT ROWID table, and no INTEGER PRIMARY KEY standing for the rowid).
pub(crate) fn numbers_rows(sql: &str) -> bool {
    !sql.trim_end().ends_with("WITHOUT ROWID") && !sql.contains("INTEGER PRIMARY KEY")
}

/// Tables ordered so that each comes after the tables it references.
pub(crate) fn in_reference_order(mut tables: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    while !tables.is_empty() {
        let ready = tables
            .iter()
            .position(|(name, sql)| {
                tables
                    .iter()
                    .all(|(other, _)| other == name || !references(sql, other))
            })
            // A cycle cannot be created in SQLite either; keep the order if one were there.
            .unwrap_or(0);
        out.push(tables.remove(ready));
    }
    out
}

fn references(sql: &str, table: &str) -> bool {
    sql.contains(&format!("REFERENCES {table}(")) || sql.contains(&format!("REFERENCES {table} ("))
}

/// The state capture: one trigger function for every covered table, given the table's key
/// columns; it writes the key into the session's temporary `state_changes`, which only the
/// writer creates. Any other session's change to a covered table therefore fails — changing
/// facts outside mamori needs the capture's table made on purpose, and `verify` still names
/// such a change.
pub(crate) fn capture_ddl(tables: &[crate::state::Covered]) -> String {
    let mut out = String::from(
        "CREATE OR REPLACE FUNCTION mamori_state_capture() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
    r jsonb;
    k text;
    key jsonb := '[]'::jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
    FOREACH k IN ARRAY TG_ARGV LOOP
        key := key || jsonb_build_array(r -> k);
    END LOOP;
    INSERT INTO pg_temp.state_changes (tbl, key) VALUES (TG_TABLE_NAME, key::text);
    RETURN NULL;
END $f$;
",
    );
    for t in tables {
        let keys: Vec<String> = t.key.iter().map(|k| format!("'{k}'")).collect();
        let keys = keys.join(", ");
        let cols: Vec<String> = t.covered_columns().map(|c| format!("\"{c}\"")).collect();
        let name = &t.table;
        let skip = |row: &str| {
            if name == "meta" {
                let k: Vec<String> = NOT_COVERED_META
                    .iter()
                    .map(|(k, _)| format!("'{k}'"))
                    .collect();
                format!(" WHEN ({row}.key NOT IN ({}))", k.join(", "))
            } else {
                String::new()
            }
        };
        out.push_str(&format!(
            "CREATE TRIGGER state_ins AFTER INSERT ON \"{name}\" FOR EACH ROW{w} EXECUTE FUNCTION mamori_state_capture({keys});\n",
            w = skip("NEW")
        ));
        out.push_str(&format!(
            "CREATE TRIGGER state_upd AFTER UPDATE OF {c} ON \"{name}\" FOR EACH ROW{w} EXECUTE FUNCTION mamori_state_capture({keys});\n",
            c = cols.join(", "),
            w = skip("NEW")
        ));
        out.push_str(&format!(
            "CREATE TRIGGER state_del AFTER DELETE ON \"{name}\" FOR EACH ROW{w} EXECUTE FUNCTION mamori_state_capture({keys});\n",
            w = skip("OLD")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_comment_with_an_apostrophe_does_not_hide_the_columns_after_it() {
        let sql = "CREATE TABLE t (\n    a INTEGER NOT NULL,\n    -- the TSA's certificate\n    b INTEGER,\n    c TEXT DEFAULT 'x--y'\n)";
        let out = super::translate_table(sql, true);
        assert!(
            out.contains("a BIGINT NOT NULL") && out.contains("b BIGINT"),
            "{out}"
        );
        assert!(out.contains("'x--y'") && !out.contains("TSA's"), "{out}");
    }

    use super::*;

    #[test]
    fn every_sqlite_object_has_a_postgresql_form() {
        let ddl = ddl().unwrap();
        assert!(ddl.contains("CREATE TABLE accounts"), "{ddl}");
        assert!(!ddl.contains("WITHOUT ROWID"));
        assert!(!ddl.contains("COLLATE NOCASE"));
        assert!(!ddl.contains("RAISE(ABORT"));
        assert!(ddl.contains("rowid BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"));
    }
}
