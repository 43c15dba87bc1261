-- The collection id found for a configured collection name (a calendar, an address book),
-- so a sync with nothing to do need not list the account's collections again.
CREATE TABLE collection_aliases (
    account    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    collection TEXT NOT NULL,
    PRIMARY KEY (account, kind, name)
) WITHOUT ROWID;
