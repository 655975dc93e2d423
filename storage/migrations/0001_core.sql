-- Core tables: citizens, the message log, feedback, key-value state, stored callback
-- payloads, the inbox of accepted updates and the outbox of messages to send.
-- Times are ISO-8601 UTC text (sortable).

CREATE TABLE citizens (
    institution TEXT NOT NULL,
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    username TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    unreachable_at TEXT,
    unreachable_reason TEXT,
    PRIMARY KEY (institution, platform, user_id)
);

CREATE TABLE message_log (
    id INTEGER PRIMARY KEY,
    institution TEXT NOT NULL,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    user_id TEXT,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    text TEXT NOT NULL,
    outcome TEXT,
    entry_id TEXT,
    score REAL,
    created_at TEXT NOT NULL
);
CREATE INDEX message_log_by_chat ON message_log (institution, platform, chat_id, id);
CREATE INDEX message_log_by_time ON message_log (institution, created_at);

CREATE TABLE feedback (
    id INTEGER PRIMARY KEY,
    institution TEXT NOT NULL,
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    question_id INTEGER REFERENCES message_log (id) ON DELETE SET NULL,
    helpful INTEGER NOT NULL CHECK (helpful IN (0, 1)),
    created_at TEXT NOT NULL
);
CREATE INDEX feedback_by_time ON feedback (institution, created_at);

CREATE TABLE kv (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE callback_payloads (
    key TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE inbox (
    institution TEXT NOT NULL,
    platform TEXT NOT NULL,
    update_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done')),
    event TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (institution, platform, update_key)
);
CREATE INDEX inbox_pending ON inbox (status, received_at);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    institution TEXT NOT NULL,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    thread_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('send', 'edit', 'topic')),
    reply TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,
    ref_kind TEXT,
    ref_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'unreachable')),
    parts_sent INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX outbox_pending ON outbox (status, institution, platform, next_attempt_at);
CREATE INDEX outbox_by_ref ON outbox (ref_kind, ref_id);

CREATE TABLE sent_messages (
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    institution TEXT NOT NULL,
    outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    part INTEGER NOT NULL,
    thread_id TEXT,
    ref_kind TEXT,
    ref_id TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (platform, chat_id, message_id)
);
CREATE INDEX sent_messages_by_ref ON sent_messages (ref_kind, ref_id);
CREATE INDEX sent_messages_by_outbox ON sent_messages (outbox_id, part);
