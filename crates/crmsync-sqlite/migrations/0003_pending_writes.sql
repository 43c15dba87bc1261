-- Writes sent to a side whose answer was not seen (a crash, a lost response): the value
-- each field was written with, as JSON `[{"side": "provider", "field": "title", "hash": "..."}]`.
-- A side that shows exactly that value holds our write, not an edit of its own.
ALTER TABLE links ADD COLUMN pending TEXT NOT NULL DEFAULT '[]';
