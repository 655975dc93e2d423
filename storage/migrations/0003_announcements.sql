-- Announcements: citizens' subscriptions, broadcasts (one row per occurrence of an
-- announcement) and their deliveries (one row per recipient, written before anything is
-- sent). Times are ISO-8601 UTC text (sortable).

CREATE TABLE subscriptions (
    institution TEXT NOT NULL,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- JSON list of topics; NULL = every announcement
    topics TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (institution, platform, chat_id)
);

CREATE TABLE broadcasts (
    id INTEGER PRIMARY KEY,
    institution TEXT NOT NULL,
    announcement_id TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    -- quiet hours move this to the morning
    send_after TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('waiting', 'sending', 'done', 'failed')),
    text TEXT NOT NULL,
    -- JSON: {"subscribers": bool, "topics": [...], "channels": [[platform, chat_id], ...]}
    audience TEXT NOT NULL,
    origin TEXT NOT NULL,
    report_platform TEXT,
    report_chat_id TEXT,
    report_thread_id TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    error TEXT,
    UNIQUE (institution, announcement_id, scheduled_for)
);
CREATE INDEX broadcasts_open ON broadcasts (status, send_after);

CREATE TABLE broadcast_deliveries (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('subscriber', 'channel')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'unreachable', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    message_id TEXT,
    last_error TEXT,
    sent_at TEXT,
    PRIMARY KEY (broadcast_id, platform, chat_id)
);
CREATE INDEX broadcast_deliveries_due ON broadcast_deliveries (broadcast_id, status, next_attempt_at);
