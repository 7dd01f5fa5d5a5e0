"""Storage adapters: the SQL database (SQLite or PostgreSQL), the ledger on it, and blobs."""
