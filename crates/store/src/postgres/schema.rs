//! The PostgreSQL tables of the ledger. The columns are those of the SQLite ledger, so an entry
//! moves between the backends byte for byte and `verify` reaches the same root on both.

use tokio_postgres::Client;

use crate::StoreError;

/// Held while installing, so that nodes starting together do not race on `CREATE`.
const INSTALL_LOCK: i64 = 0x6d61_6d6f_7269_0001; // "mamori" + 1

pub(crate) const DDL: &str = r#"
CREATE TABLE IF NOT EXISTS ledger (
    idx        bigint PRIMARY KEY CHECK (idx >= 0),
    ts         bigint NOT NULL,
    actor_id   bigint,
    action     text   NOT NULL,
    outcome    text   NOT NULL,
    patient_id text,
    record_id  bigint,
    payload    bytea  NOT NULL,
    hashes     bytea  NOT NULL
);

-- The coordinator row: every batch locks it, appends after `size` and moves it on, in one
-- transaction. `edge` is the Merkle tree's right edge (one hash per set bit of size).
CREATE TABLE IF NOT EXISTS ledger_head (
    id      smallint PRIMARY KEY CHECK (id = 1),
    size    bigint NOT NULL CHECK (size >= 0),
    last_ts bigint NOT NULL,
    edge    bytea  NOT NULL
);
INSERT INTO ledger_head (id, size, last_ts, edge) VALUES (1, 0, -9223372036854775808, '')
    ON CONFLICT (id) DO NOTHING;

-- Which batches committed, by their random id: how a node that lost its connection during
-- COMMIT learns whether its entries are in. Bookkeeping only; no fact of the ledger.
CREATE TABLE IF NOT EXISTS ledger_batches (
    id        bytea  PRIMARY KEY,
    first_idx bigint NOT NULL,
    n         integer NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_batches_first ON ledger_batches (first_idx);

CREATE OR REPLACE FUNCTION mamori_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only (%)', TG_OP;
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION mamori_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION mamori_append_only();
"#;

/// Creates the ledger's tables if they are not there yet (a running database is not touched:
/// DDL would lock the ledger against every node's appends).
pub(crate) async fn install(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INSTALL_LOCK])
        .await?;
    let present: bool = tx
        .query_one("SELECT to_regclass('ledger_head') IS NOT NULL", &[])
        .await?
        .get(0);
    if !present {
        tx.batch_execute(DDL).await?;
    }
    tx.commit().await?;
    Ok(())
}
