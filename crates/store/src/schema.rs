//! Schema migrations, applied in order and recorded in `PRAGMA user_version`.

use rusqlite::Connection;

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE roles (
    code TEXT PRIMARY KEY,
    name_ja TEXT NOT NULL,
    name_en TEXT NOT NULL,
    grants TEXT NOT NULL,
    builtin INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE record_kinds (
    code TEXT PRIMARY KEY,
    name_ja TEXT NOT NULL,
    name_en TEXT NOT NULL,
    retention_years INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL REFERENCES roles(code),
    is_service INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash TEXT,
    password_changed_at INTEGER NOT NULL,
    must_change_password INTEGER NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    last_login_at INTEGER,
    created_at INTEGER NOT NULL,
    created_by INTEGER
);
-- An account is disabled, never deleted, so its login is never given to someone else.
CREATE TRIGGER accounts_never_deleted BEFORE DELETE ON accounts
BEGIN SELECT RAISE(ABORT, 'accounts are disabled, never deleted'); END;
CREATE TRIGGER accounts_login_fixed BEFORE UPDATE OF login ON accounts
BEGIN SELECT RAISE(ABORT, 'a login is never changed or reused'); END;

CREATE TABLE password_history (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    hash TEXT NOT NULL,
    set_at INTEGER NOT NULL
);
CREATE INDEX password_history_account ON password_history(account_id, set_at);

CREATE TABLE password_resets (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    reset_by INTEGER NOT NULL REFERENCES accounts(id),
    identity_check TEXT NOT NULL,
    at INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    is_api_token INTEGER NOT NULL,
    name TEXT,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE patients (
    id TEXT PRIMARY KEY,
    name_kanji TEXT NOT NULL,
    name_kana TEXT NOT NULL,
    kana_key TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    sex TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by INTEGER NOT NULL
);
CREATE INDEX patients_kana ON patients(kana_key);

CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id),
    kind TEXT NOT NULL REFERENCES record_kinds(code),
    created_at INTEGER NOT NULL,
    created_by INTEGER NOT NULL
);
CREATE INDEX records_patient ON records(patient_id, created_at);

CREATE TABLE versions (
    record_id INTEGER NOT NULL REFERENCES records(id),
    version_no INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('draft', 'pending_approval', 'finalised')),
    kind TEXT NOT NULL CHECK (kind IN ('original', 'amendment', 'entered_in_error')),
    author_id INTEGER NOT NULL REFERENCES accounts(id),
    enterer_id INTEGER NOT NULL REFERENCES accounts(id),
    content_sha256 TEXT NOT NULL,
    predecessor INTEGER,
    reason TEXT,
    created_at INTEGER NOT NULL,
    finalised_at INTEGER,
    rejection_reason TEXT,
    ledger_index INTEGER NOT NULL,
    PRIMARY KEY (record_id, version_no)
) WITHOUT ROWID;
CREATE INDEX versions_author_state ON versions(author_id, state);
-- Defence in depth behind `verify`: the application itself can never rewrite history.
CREATE TRIGGER versions_finalised_immutable BEFORE UPDATE ON versions
WHEN OLD.state = 'finalised'
BEGIN SELECT RAISE(ABORT, 'finalised versions are immutable'); END;
CREATE TRIGGER versions_never_deleted BEFORE DELETE ON versions
BEGIN SELECT RAISE(ABORT, 'versions are never deleted'); END;

CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The ledger: one row per event, appended in index order with non-decreasing time. `hashes`
-- holds the Merkle hashes this entry completes (its leaf hash, then each subtree it closes),
-- so one sequential insert makes an event durable together with its place in the tree.
CREATE TABLE ledger (
    idx INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    actor_id INTEGER,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    patient_id TEXT,
    record_id INTEGER,
    payload BLOB NOT NULL,
    hashes BLOB NOT NULL
);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    note TEXT NOT NULL
);

-- Query indexes derived from the ledger in batches (meta 'indexed_upto' is the first entry not
-- yet indexed) and rebuildable from it. Keys start with the ledger segment (idx / 16384), so
-- each batch is appended at the right edge of the tree (every page written once) and a
-- patient's or staff member's history in a time range is one seek per segment.
CREATE TABLE audit_by_patient (
    seg INTEGER NOT NULL,
    patient_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (seg, patient_id, idx)
) WITHOUT ROWID;
CREATE TABLE audit_by_actor (
    seg INTEGER NOT NULL,
    actor_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (seg, actor_id, idx)
) WITHOUT ROWID;
-- Chart openings per day, patient and staff member.
CREATE TABLE access_counts (
    day INTEGER NOT NULL,
    patient_id TEXT NOT NULL,
    actor_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (day, patient_id, actor_id)
) WITHOUT ROWID;
"#,
    r#"
-- Second factors (TOTP, RFC 6238). A row with enabled_at NULL is an enrolment in progress.
CREATE TABLE totp (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
    secret TEXT NOT NULL,
    enabled_at INTEGER,
    last_step INTEGER NOT NULL DEFAULT 0
);
-- One-time recovery codes, stored as hashes.
CREATE TABLE recovery_codes (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    code_hash TEXT NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (account_id, code_hash)
);
-- Roles whose members must use a second factor (facility policy).
CREATE TABLE two_factor_roles (role_code TEXT PRIMARY KEY REFERENCES roles(code));
-- A session opened by a password alone, waiting for the second factor (or its enrolment).
ALTER TABLE sessions ADD COLUMN second_factor_pending INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- Break-glass (非常時アクセス): time-limited access to one patient's records with a reason
-- (kind 'patient'), or a sign-in with a sealed emergency account (kind 'account', no patient);
-- each use reviewed and closed by a security officer.
CREATE TABLE emergency_access (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'patient' CHECK (kind IN ('patient', 'account')),
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    patient_id TEXT REFERENCES patients(id),
    reason TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER,
    reviewed_by INTEGER REFERENCES accounts(id),
    reviewed_at INTEGER,
    review_comment TEXT
);
CREATE INDEX emergency_access_account ON emergency_access(account_id, expires_at);
CREATE INDEX emergency_access_open ON emergency_access(reviewed_at);
-- Sealed emergency accounts (非常用アカウント): usable once, then only after an administrator
-- has set new credentials.
CREATE TABLE emergency_accounts (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
    used_at INTEGER
);
"#,
    r#"
-- Maintenance work windows (保守作業): a 保守要員 account signs in only inside an approved one.
CREATE TABLE maintenance_windows (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    personal_info INTEGER NOT NULL,
    requested_by INTEGER NOT NULL REFERENCES accounts(id),
    requested_at INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'rejected')),
    decided_by INTEGER REFERENCES accounts(id),
    decided_at INTEGER,
    acknowledged_by INTEGER REFERENCES accounts(id),
    acknowledged_at INTEGER,
    acknowledgement TEXT
);
CREATE INDEX maintenance_windows_account ON maintenance_windows(account_id, starts_at);
"#,
    r#"
-- A locked browser session: it opens nothing until the password is given again.
ALTER TABLE sessions ADD COLUMN locked_at INTEGER;
"#,
    r#"
-- Client certificates issued by the facility CA, for devices and staff (mTLS).
CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('device', 'user')),
    subject TEXT NOT NULL,
    account_id INTEGER REFERENCES accounts(id),
    device_id TEXT,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    issued_by INTEGER REFERENCES accounts(id),
    revoked_at INTEGER,
    revoke_reason TEXT,
    revoked_by INTEGER REFERENCES accounts(id)
);
"#,
    r#"
-- Signing certificates of staff (issued by the facility CA, or imported), newest current.
CREATE TABLE signing_certs (
    serial TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    cert BLOB NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('facility', 'imported')),
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
CREATE INDEX signing_certs_account ON signing_certs(account_id, created_at);
-- One CAdES signature per finalised version over the exact statement bytes. The .p7s changes
-- at most once, from B-B to B-T, when a late time-stamp arrives; the signed part never.
CREATE TABLE signatures (
    record_id INTEGER NOT NULL,
    version_no INTEGER NOT NULL,
    statement_sha256 TEXT NOT NULL,
    statement BLOB NOT NULL,
    p7s BLOB NOT NULL,
    signer_account INTEGER NOT NULL REFERENCES accounts(id),
    signer_serial TEXT NOT NULL,
    signer_subject TEXT NOT NULL,
    signed_at INTEGER NOT NULL,
    timestamped_at INTEGER,
    tsa_attempts INTEGER NOT NULL DEFAULT 0,
    tsa_last_error TEXT,
    tsa_next_try INTEGER,
    evidence_family INTEGER,
    evidence_position INTEGER,
    PRIMARY KEY (record_id, version_no),
    FOREIGN KEY (record_id, version_no) REFERENCES versions(record_id, version_no)
) WITHOUT ROWID;
CREATE INDEX signatures_timestamp_pending ON signatures(tsa_next_try) WHERE timestamped_at IS NULL;
CREATE INDEX signatures_unsealed ON signatures(record_id, version_no)
    WHERE evidence_family IS NULL AND timestamped_at IS NOT NULL;
CREATE INDEX signatures_family ON signatures(evidence_family, evidence_position);
-- A signature being made outside mamori (HPKI card, cloud signing): the statement and the
-- signer's certificate between the two API calls.
CREATE TABLE signing_requests (
    record_id INTEGER NOT NULL,
    version_no INTEGER NOT NULL,
    statement BLOB NOT NULL,
    cert BLOB NOT NULL,
    chain BLOB NOT NULL,
    signing_time INTEGER NOT NULL,
    requested_by INTEGER NOT NULL REFERENCES accounts(id),
    PRIMARY KEY (record_id, version_no)
) WITHOUT ROWID;
CREATE TRIGGER signatures_never_deleted BEFORE DELETE ON signatures
BEGIN SELECT RAISE(ABORT, 'signatures are never deleted'); END;
CREATE TRIGGER signatures_statement_fixed BEFORE UPDATE OF statement_sha256, statement, signer_serial ON signatures
BEGIN SELECT RAISE(ABORT, 'a signature never changes what it signed'); END;
-- RFC 4998 evidence records: hash trees (one chain each; a family is the first tree and its
-- hash-tree renewals) and their archive time-stamps (seq 0 over the root, then renewals).
CREATE TABLE evidence_trees (
    id INTEGER PRIMARY KEY,
    family INTEGER NOT NULL,
    chain_no INTEGER NOT NULL,
    alg TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    leaf_count INTEGER NOT NULL,
    root BLOB NOT NULL,
    leaves BLOB NOT NULL,
    UNIQUE (family, chain_no)
);
CREATE TABLE evidence_stamps (
    tree_id INTEGER NOT NULL REFERENCES evidence_trees(id),
    seq INTEGER NOT NULL,
    token BLOB NOT NULL,
    gen_time INTEGER NOT NULL,
    tsa_not_after INTEGER NOT NULL,
    PRIMARY KEY (tree_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER evidence_stamps_never_deleted BEFORE DELETE ON evidence_stamps
BEGIN SELECT RAISE(ABORT, 'evidence is never deleted'); END;
ALTER TABLE checkpoints ADD COLUMN evidence_family INTEGER;
ALTER TABLE checkpoints ADD COLUMN evidence_position INTEGER;
"#,
    // 7: the compliance pillar. Assessments against a catalogue edition; a person's answers
    // (observed answers are computed live and frozen into rows only when an assessment is
    // closed); evidence files and links; the asset ledger; the risk register; the incident
    // contact chart. Every change also goes through the ledger with its detail.
    r#"
CREATE TABLE compliance_assessments (
    id INTEGER PRIMARY KEY,
    catalogue_id TEXT NOT NULL,
    title TEXT NOT NULL,
    assessed_on TEXT NOT NULL,
    -- NULL: started from the command line by the operator of the instance.
    created_by INTEGER REFERENCES accounts(id),
    created_at INTEGER NOT NULL,
    closed_at INTEGER,
    closed_by INTEGER REFERENCES accounts(id)
);
CREATE TABLE compliance_answers (
    assessment_id INTEGER NOT NULL REFERENCES compliance_assessments(id),
    item_id TEXT NOT NULL,
    answer TEXT NOT NULL CHECK (answer IN ('yes', 'no', 'na', 'unanswered')),
    source TEXT NOT NULL CHECK (source IN ('declared', 'observed')),
    owner TEXT NOT NULL DEFAULT '',
    due TEXT,
    note TEXT NOT NULL DEFAULT '',
    observation TEXT,
    answered_by INTEGER REFERENCES accounts(id),
    answered_at INTEGER NOT NULL,
    PRIMARY KEY (assessment_id, item_id)
) WITHOUT ROWID;
CREATE TABLE compliance_evidence (
    id INTEGER PRIMARY KEY,
    assessment_id INTEGER NOT NULL REFERENCES compliance_assessments(id),
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('file', 'link')),
    name TEXT NOT NULL,
    url TEXT,
    sha256 TEXT REFERENCES blobs(sha256),
    media_type TEXT,
    size INTEGER,
    added_by INTEGER NOT NULL REFERENCES accounts(id),
    added_at INTEGER NOT NULL
);
CREATE INDEX compliance_evidence_item ON compliance_evidence(assessment_id, item_id);
CREATE TABLE compliance_assets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('server', 'pc', 'network', 'medical')),
    location TEXT NOT NULL,
    owner TEXT NOT NULL,
    os TEXT NOT NULL,
    patched_on TEXT,
    remote_maintenance TEXT NOT NULL CHECK (remote_maintenance IN ('yes', 'no', 'unknown')),
    maintainer TEXT NOT NULL,
    vendor TEXT NOT NULL,
    mds_sds TEXT NOT NULL CHECK (mds_sds IN ('received', 'not_received', 'na')),
    mds_sha256 TEXT REFERENCES blobs(sha256),
    mds_name TEXT,
    connection_restriction TEXT NOT NULL,
    note TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by INTEGER REFERENCES accounts(id)
);
CREATE TABLE compliance_risks (
    id INTEGER PRIMARY KEY,
    seed_key TEXT UNIQUE,
    asset TEXT NOT NULL,
    threat TEXT NOT NULL,
    likelihood INTEGER NOT NULL CHECK (likelihood BETWEEN 1 AND 5),
    impact INTEGER NOT NULL CHECK (impact BETWEEN 1 AND 5),
    control TEXT NOT NULL,
    feature TEXT NOT NULL,
    residual INTEGER NOT NULL CHECK (residual BETWEEN 1 AND 5),
    owner TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE incident_contacts (
    id INTEGER PRIMARY KEY,
    category TEXT NOT NULL CHECK (category IN ('internal', 'vendor', 'mhlw', 'police', 'other')),
    name TEXT NOT NULL,
    organisation TEXT NOT NULL,
    phone TEXT NOT NULL,
    email TEXT NOT NULL,
    note TEXT NOT NULL,
    position INTEGER NOT NULL
);
"#,
    // 8: roles whose members connect only with a client certificate of the facility CA.
    r#"
CREATE TABLE client_cert_roles (role_code TEXT PRIMARY KEY REFERENCES roles(code));
"#,
    // 9: passkeys (WebAuthn credentials) as a second factor.
    r#"
CREATE TABLE passkeys (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    credential_id BLOB NOT NULL UNIQUE,
    public_key BLOB NOT NULL,
    sign_count INTEGER NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX passkeys_account ON passkeys(account_id);
"#,
    // 10: login names unique without regard to case; API tokens carry scopes; changes to an
    // administrator's own role (or clinical reading for an administrative role) wait for a
    // second administrator.
    r#"
CREATE INDEX accounts_login_nocase ON accounts(login COLLATE NOCASE);
CREATE TRIGGER accounts_login_unique_nocase BEFORE INSERT ON accounts
WHEN EXISTS (SELECT 1 FROM accounts WHERE login = NEW.login COLLATE NOCASE)
BEGIN SELECT RAISE(ABORT, 'a login name that differs from another only by case'); END;
ALTER TABLE sessions ADD COLUMN scopes TEXT;
CREATE TABLE role_proposals (
    id INTEGER PRIMARY KEY,
    role_code TEXT NOT NULL,
    proposal TEXT NOT NULL,
    reason TEXT NOT NULL,
    proposed_by INTEGER NOT NULL REFERENCES accounts(id),
    proposed_at INTEGER NOT NULL,
    decided_by INTEGER REFERENCES accounts(id),
    decided_at INTEGER,
    outcome TEXT CHECK (outcome IN ('approved', 'rejected')),
    -- Approved only by someone other than its proposer (who may withdraw it).
    CHECK (outcome IS NOT 'approved' OR decided_by <> proposed_by)
);
"#,
    // 11: the facility's registers (disposal, take-out, training, outside storage): entries
    // kept as the JSON the compliance crate checks, with one file each (certificate,
    // materials, contract); `source` tells what mamori recorded itself from what a person did.
    r#"
CREATE TABLE compliance_registers (
    id INTEGER PRIMARY KEY,
    register TEXT NOT NULL CHECK (register IN ('disposal', 'take_out', 'training', 'outsourcing')),
    entry TEXT NOT NULL,
    file_sha256 TEXT REFERENCES blobs(sha256),
    file_name TEXT,
    source TEXT NOT NULL CHECK (source IN ('person', 'mamori')),
    recorded_by INTEGER REFERENCES accounts(id),
    recorded_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX compliance_registers_by_register ON compliance_registers(register, id);
"#,
    r#"
-- The server's own TLS certificate is issued by the facility CA too (HTTPS by default), and
-- recorded with the clients' ones: SQLite changes a CHECK only by rebuilding the table.
CREATE TABLE certificates_v2 (
    serial TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('device', 'user', 'server')),
    subject TEXT NOT NULL,
    account_id INTEGER REFERENCES accounts(id),
    device_id TEXT,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    issued_by INTEGER REFERENCES accounts(id),
    revoked_at INTEGER,
    revoke_reason TEXT,
    revoked_by INTEGER REFERENCES accounts(id)
);
INSERT INTO certificates_v2 SELECT * FROM certificates;
DROP TABLE certificates;
ALTER TABLE certificates_v2 RENAME TO certificates;
"#,
    // 13: 電子帳簿保存法 — the facility's transaction documents. A document's current fields
    // (the search columns, indexed) in `tx_documents`; every version, never changed or removed,
    // in `tx_versions`; each file's RFC 3161 time-stamp token in `tx_stamps`; the NTA's list
    // of registered invoice issuers in `invoice_registry`.
    r#"
CREATE TABLE tx_documents (
    id INTEGER PRIMARY KEY,
    current_version INTEGER NOT NULL,
    doc_type TEXT NOT NULL CHECK (doc_type IN ('invoice', 'receipt', 'quotation', 'contract', 'delivery', 'order', 'other')),
    direction TEXT NOT NULL CHECK (direction IN ('received', 'issued')),
    transaction_date TEXT,
    amount INTEGER CHECK (amount IS NULL OR amount >= 0),
    counterparty TEXT,
    counterparty_key TEXT,
    registration_number TEXT,
    document_number TEXT,
    received_on TEXT,
    file_sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    status TEXT NOT NULL CHECK (status IN ('active', 'cancelled')),
    retention_until TEXT NOT NULL,
    stamp_due TEXT,
    registered_at INTEGER NOT NULL,
    registered_by INTEGER REFERENCES accounts(id),
    updated_at INTEGER NOT NULL,
    stamp_attempts INTEGER NOT NULL DEFAULT 0,
    stamp_next_at INTEGER,
    stamp_error TEXT
);
CREATE INDEX tx_documents_by_date ON tx_documents(transaction_date, id);
CREATE INDEX tx_documents_by_amount ON tx_documents(amount, id);
CREATE INDEX tx_documents_by_counterparty ON tx_documents(counterparty_key, id);
CREATE INDEX tx_documents_by_file ON tx_documents(file_sha256);
CREATE INDEX tx_documents_stamp_pending ON tx_documents(stamp_next_at) WHERE stamp_next_at IS NOT NULL;
CREATE TRIGGER tx_documents_never_deleted BEFORE DELETE ON tx_documents
BEGIN SELECT RAISE(ABORT, 'transaction documents are never deleted'); END;

CREATE TABLE tx_versions (
    document_id INTEGER NOT NULL REFERENCES tx_documents(id),
    version_no INTEGER NOT NULL,
    fields TEXT NOT NULL,
    file_sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    file_name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('registered', 'corrected', 'cancelled')),
    reason TEXT,
    entered_by INTEGER REFERENCES accounts(id),
    entered_at INTEGER NOT NULL,
    PRIMARY KEY (document_id, version_no)
) WITHOUT ROWID;
CREATE TRIGGER tx_versions_immutable BEFORE UPDATE ON tx_versions
BEGIN SELECT RAISE(ABORT, 'transaction document versions are immutable'); END;
CREATE TRIGGER tx_versions_never_deleted BEFORE DELETE ON tx_versions
BEGIN SELECT RAISE(ABORT, 'transaction document versions are never deleted'); END;

CREATE TABLE tx_stamps (
    document_id INTEGER NOT NULL REFERENCES tx_documents(id),
    file_sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    token BLOB NOT NULL,
    gen_time INTEGER NOT NULL,
    tsa TEXT NOT NULL,
    development INTEGER NOT NULL CHECK (development IN (0, 1)),
    stamped_at INTEGER NOT NULL,
    PRIMARY KEY (document_id, file_sha256)
) WITHOUT ROWID;
CREATE TRIGGER tx_stamps_immutable BEFORE UPDATE ON tx_stamps
BEGIN SELECT RAISE(ABORT, 'time-stamps are immutable'); END;
CREATE TRIGGER tx_stamps_never_deleted BEFORE DELETE ON tx_stamps
BEGIN SELECT RAISE(ABORT, 'time-stamps are never deleted'); END;

-- The NTA 公表サイト's data, imported offline: public reference data, proven as a whole by the
-- digest the import states (meta `invoice_registry`), which verify recomputes.
CREATE TABLE invoice_registry (
    registration_number TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    registered_on TEXT NOT NULL,
    cancelled_on TEXT,
    lapsed_on TEXT
) WITHOUT ROWID;
"#,
    // 14: signed PDFs (PAdES) of finalised versions: the file as it stands (each later level
    // an incremental update of the one before, every file kept in blobs) and its level.
    r#"
CREATE TABLE signed_pdfs (
    record_id INTEGER NOT NULL,
    version_no INTEGER NOT NULL,
    -- '' for the letter mamori makes of the version; an uploaded PDF attachment's SHA-256
    -- for that attachment signed by the version's author.
    source TEXT NOT NULL,
    pdf_sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    level TEXT NOT NULL,
    signer_serial TEXT NOT NULL,
    signed_at INTEGER NOT NULL,
    timestamped_at INTEGER,
    -- B-LTA: when the newest document time-stamp's TSA certificate expires (renewed before).
    tsa_not_after INTEGER,
    PRIMARY KEY (record_id, version_no, source),
    FOREIGN KEY (record_id, version_no) REFERENCES versions(record_id, version_no)
) WITHOUT ROWID;
CREATE INDEX signed_pdfs_renewal ON signed_pdfs(tsa_not_after);
CREATE TRIGGER signed_pdfs_never_deleted BEFORE DELETE ON signed_pdfs
BEGIN SELECT RAISE(ABORT, 'signed PDFs are never deleted'); END;
CREATE TRIGGER signed_pdfs_signer_fixed BEFORE UPDATE OF source, signer_serial, signed_at ON signed_pdfs
BEGIN SELECT RAISE(ABORT, 'a signed PDF never changes who signed it'); END;

-- The identifiers other systems give a record (an EHR's document ID, FHIR
-- DocumentReference.identifier): a retried create finds the record made the first time.
CREATE TABLE record_identifiers (
    system TEXT NOT NULL,
    value TEXT NOT NULL,
    record_id INTEGER NOT NULL REFERENCES records(id),
    PRIMARY KEY (system, value)
) WITHOUT ROWID;
CREATE INDEX record_identifiers_by_record ON record_identifiers(record_id);
CREATE TRIGGER record_identifiers_fixed BEFORE UPDATE ON record_identifiers
BEGIN SELECT RAISE(ABORT, 'a record identifier never changes'); END;
CREATE TRIGGER record_identifiers_never_deleted BEFORE DELETE ON record_identifiers
BEGIN SELECT RAISE(ABORT, 'record identifiers are never deleted'); END;

-- OAuth 2.0 clients of service accounts (SMART Backend Services): the public key an
-- integration signs its client assertions with, the scopes it may be granted, and the
-- assertion IDs already used (each is good once, until it expires).
CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    -- The public JWK, as registered (never a private key: registration refuses one).
    jwk TEXT NOT NULL,
    -- Space-separated SMART system scopes the client may ask for.
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by INTEGER NOT NULL REFERENCES accounts(id),
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX oauth_clients_by_account ON oauth_clients(account_id);
CREATE TRIGGER oauth_clients_key_fixed BEFORE UPDATE OF client_id, account_id, jwk, scopes, created_at, created_by ON oauth_clients
BEGIN SELECT RAISE(ABORT, 'an OAuth client never changes its key or scopes: register a new one'); END;
CREATE TRIGGER oauth_clients_never_deleted BEFORE DELETE ON oauth_clients
BEGIN SELECT RAISE(ABORT, 'OAuth clients are revoked, never deleted'); END;
CREATE TABLE oauth_assertions (
    client_id TEXT NOT NULL REFERENCES oauth_clients(client_id),
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) WITHOUT ROWID;
CREATE INDEX oauth_assertions_expiry ON oauth_assertions(expires_at);

-- JP-CLINS documents (FHIR document Bundles) made from finalised versions and signed by their
-- author: one per sending (each names its destination), kept as a blob.
CREATE TABLE fhir_documents (
    id TEXT PRIMARY KEY,
    record_id INTEGER NOT NULL,
    version_no INTEGER NOT NULL,
    bundle_sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    destination TEXT NOT NULL,
    signer_serial TEXT NOT NULL,
    signed_at INTEGER NOT NULL,
    timestamped_at INTEGER,
    FOREIGN KEY (record_id, version_no) REFERENCES versions(record_id, version_no)
) WITHOUT ROWID;
CREATE INDEX fhir_documents_by_version ON fhir_documents(record_id, version_no);
CREATE TRIGGER fhir_documents_fixed BEFORE UPDATE ON fhir_documents
BEGIN SELECT RAISE(ABORT, 'a signed FHIR document never changes'); END;
CREATE TRIGGER fhir_documents_never_deleted BEFORE DELETE ON fhir_documents
BEGIN SELECT RAISE(ABORT, 'signed FHIR documents are never deleted'); END;
"#,
];

/// The schema this build writes.
pub const VERSION: usize = MIGRATIONS.len();

/// The schema version of an open database (0: empty).
pub fn version(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", (), |r| r.get::<_, i64>(0))? as usize)
}

/// Brings the database to [`VERSION`]; the version it had, if it had to change.
pub fn migrate(conn: &mut Connection) -> Result<Option<usize>, StoreError> {
    migrate_with(conn, MIGRATIONS)
}

/// The first `n` migrations (an earlier release's schema, for the PostgreSQL upgrade).
pub(crate) fn migrate_first(conn: &mut Connection, n: usize) -> Result<Option<usize>, StoreError> {
    migrate_with(conn, &MIGRATIONS[..n.min(MIGRATIONS.len())])
}

/// Every pending migration in one transaction: a failure anywhere leaves the database exactly
/// as it was (the same schema, the same version), never half upgraded.
fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<Option<usize>, StoreError> {
    let current = version(conn)?;
    if current > migrations.len() {
        return Err(StoreError::Schema(format!(
            "このデータベースは新しいリリースの mamori で作られています（スキーマ {current}、このリリースは {} まで）。新しいリリースで開いてください",
            migrations.len()
        )));
    }
    if current == migrations.len() {
        return Ok(None);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (i, sql) in migrations.iter().enumerate().skip(current) {
        tx.execute_batch(sql).map_err(|e| {
            StoreError::Schema(format!(
                "スキーマ更新 {} に失敗しました（{e}）。データベースは更新前のまま（スキーマ {current}）です",
                i + 1
            ))
        })?;
    }
    tx.pragma_update(None, "user_version", migrations.len() as i64)?;
    tx.commit()?;
    Ok(Some(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        st.query_map((), |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_failing_migration_leaves_the_database_as_it_was() {
        let mut conn = Connection::open_in_memory().unwrap();
        let old = &MIGRATIONS[..VERSION - 2];
        assert_eq!(migrate_with(&mut conn, old).unwrap(), Some(0));
        let before = tables(&conn);
        // The next real migration, then one that fails: neither may stay.
        let mut next: Vec<&str> = MIGRATIONS[..VERSION - 1].to_vec();
        next.push("CREATE TABLE upgrade_probe (x); INSERT INTO no_such_table VALUES (1);");
        let e = migrate_with(&mut conn, &next).unwrap_err();
        assert!(e.to_string().contains("更新前のまま"), "{e}");
        assert_eq!(version(&conn).unwrap(), VERSION - 2);
        assert_eq!(tables(&conn), before);
        // The real migrations still apply afterwards, all together.
        assert_eq!(migrate(&mut conn).unwrap(), Some(VERSION - 2));
        assert_eq!(version(&conn).unwrap(), VERSION);
        assert_eq!(migrate(&mut conn).unwrap(), None);
    }

    #[test]
    fn a_database_from_a_newer_release_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", (VERSION + 1) as i64)
            .unwrap();
        assert!(
            migrate(&mut conn)
                .unwrap_err()
                .to_string()
                .contains("新しいリリース")
        );
        assert_eq!(version(&conn).unwrap(), VERSION + 1);
    }
}
