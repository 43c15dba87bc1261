-- Records left out by the collection's cap are deferred with their own reason, so a run
-- with no room left does not read them again one by one.
CREATE TABLE deferred_new (
    account    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    collection TEXT NOT NULL,
    side       TEXT NOT NULL CHECK (side IN ('crm', 'provider')),
    item_id    TEXT NOT NULL,
    -- 'failed' (with error and retryable), 'deletion_pending' or 'cap_reached'.
    reason     TEXT NOT NULL CHECK (reason IN ('failed', 'deletion_pending', 'cap_reached')),
    error      TEXT,
    retryable  INTEGER,
    attempts   INTEGER NOT NULL CHECK (attempts >= 0),
    since      TEXT NOT NULL,
    PRIMARY KEY (account, kind, collection, side, item_id)
);
INSERT INTO deferred_new SELECT account, kind, collection, side, item_id, reason, error,
    retryable, attempts, since FROM deferred;
DROP TABLE deferred;
ALTER TABLE deferred_new RENAME TO deferred;
