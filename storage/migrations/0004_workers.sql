-- Leases of institutions to worker processes (see migrations_pg/0004_workers.sql and
-- bots/workers.py). Only PostgreSQL installations run several workers; with SQLite one
-- process serves everything and these tables stay empty. They exist here so that both
-- dialects have the same numbered migrations.

CREATE TABLE workers (
    worker_id TEXT PRIMARY KEY,
    seen_until TEXT NOT NULL,
    started_at TEXT NOT NULL
);

CREATE TABLE leases (
    institution TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    acquired_at TEXT NOT NULL
);
CREATE INDEX leases_by_worker ON leases (worker_id);

-- which worker claimed a broadcast delivery (only PostgreSQL claims; see announcements.py)
ALTER TABLE broadcast_deliveries ADD COLUMN claimed_by TEXT;
