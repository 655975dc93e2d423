-- Several worker processes over one database (bots/workers.py): each institution's
-- accounts are served by the worker holding its lease; workers announce themselves so
-- that each takes a fair share. Times are the database's own clock (now()), so workers on
-- machines whose clocks differ still agree on who holds what.

CREATE TABLE workers (
    worker_id TEXT COLLATE "C" PRIMARY KEY,
    seen_until TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE leases (
    institution TEXT COLLATE "C" PRIMARY KEY,
    worker_id TEXT COLLATE "C" NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX leases_by_worker ON leases (worker_id);

-- which worker claimed a broadcast delivery (storage/announcements.py): claims of a
-- worker that restarts under the same id are its own again at once
ALTER TABLE broadcast_deliveries ADD COLUMN claimed_by TEXT COLLATE "C";
