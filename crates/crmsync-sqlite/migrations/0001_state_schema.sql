-- crmsync state schema, version 1.
--
-- Every per-collection table is keyed by (account, kind, collection): a `StateKey`.
-- Times are RFC 3339 UTC text with nanoseconds ("2024-05-01T09:30:00.000000000Z"), so
-- they sort as text. Ids are stored as given (they are validated newtypes: never empty,
-- no control characters).

-- A linked pair and what was agreed about it. A CRM id and a remote id each belong to at
-- most one link per key.
CREATE TABLE links (
    account        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    collection     TEXT NOT NULL,
    crm_id         TEXT NOT NULL,
    remote_id      TEXT NOT NULL,
    crm_version    TEXT,
    remote_version TEXT,
    -- `CanonicalRecord::kind` of the baseline.
    baseline_kind  TEXT NOT NULL,
    -- `CanonicalRecord::fields`: canonical JSON (sorted keys, no whitespace).
    baseline       TEXT NOT NULL,
    -- `CanonicalRecord::hash`: 64 lowercase hex digits.
    baseline_hash  TEXT NOT NULL,
    -- `CanonicalRecord::field_hashes`: canonical JSON object, field name -> hex digest.
    field_hashes   TEXT NOT NULL,
    synced_at      TEXT NOT NULL,
    PRIMARY KEY (account, kind, collection, crm_id),
    UNIQUE (account, kind, collection, remote_id)
);

-- A change-feed position per key and side.
CREATE TABLE cursors (
    account      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    collection   TEXT NOT NULL,
    side         TEXT NOT NULL CHECK (side IN ('crm', 'provider')),
    cursor       TEXT NOT NULL,
    taken_at     TEXT NOT NULL,
    window_start TEXT,
    window_end   TEXT,
    PRIMARY KEY (account, kind, collection, side),
    CHECK ((window_start IS NULL) = (window_end IS NULL))
);

-- Creates sent and not yet seen answered.
CREATE TABLE intents (
    account    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    collection TEXT NOT NULL,
    target     TEXT NOT NULL CHECK (target IN ('crm', 'provider')),
    source_id  TEXT NOT NULL,
    link_key   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account, kind, collection, target, source_id)
);

-- Items the cursor moved past without syncing them.
CREATE TABLE deferred (
    account    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    collection TEXT NOT NULL,
    side       TEXT NOT NULL CHECK (side IN ('crm', 'provider')),
    item_id    TEXT NOT NULL,
    -- 'failed' (with error and retryable) or 'deletion_pending'.
    reason     TEXT NOT NULL CHECK (reason IN ('failed', 'deletion_pending')),
    error      TEXT,
    retryable  INTEGER,
    attempts   INTEGER NOT NULL CHECK (attempts >= 0),
    since      TEXT NOT NULL,
    PRIMARY KEY (account, kind, collection, side, item_id)
);

-- The health of an account. No row: `Ok`.
CREATE TABLE account_status (
    account TEXT PRIMARY KEY NOT NULL,
    status  TEXT NOT NULL CHECK (status IN ('ok', 'needs_reauthorization', 'failing')),
    -- The cause (needs_reauthorization) or the last error (failing).
    detail  TEXT
);

-- The summary of an account's last run.
CREATE TABLE last_run (
    account     TEXT PRIMARY KEY NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    written     INTEGER NOT NULL,
    conflicts   INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    text        TEXT NOT NULL
);
