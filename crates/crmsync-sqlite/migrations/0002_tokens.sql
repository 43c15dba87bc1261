-- crmsync state schema, version 2: OAuth tokens per account.
--
-- `sealed` is the whole token set (access token, refresh token, expiry, scopes, type)
-- encrypted with XChaCha20-Poly1305 under the host's token key, the account id as
-- associated data: a version byte, a 24-byte random nonce, then ciphertext and tag.
-- `expires_at` (the access token's expiry) and `updated_at` are kept in clear for
-- operators; they are not secrets.
CREATE TABLE tokens (
    account    TEXT NOT NULL PRIMARY KEY,
    sealed     BLOB NOT NULL,
    expires_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
