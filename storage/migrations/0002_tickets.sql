-- Escalation: tickets and their messages. `number` is what citizens and staff see
-- ("обращение № 12"), counted per institution; `id` is internal.

CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    institution TEXT NOT NULL,
    number INTEGER NOT NULL,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    citizen_name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'answered', 'closed')),
    urgent INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL,
    assignee_id TEXT,
    assignee_name TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    due_at TEXT,
    first_response_at TEXT,
    answered_at TEXT,
    closed_at TEXT,
    closed_by TEXT,
    reminded_at TEXT,
    breached_at TEXT,
    last_forward_at TEXT,
    topic_requested INTEGER NOT NULL DEFAULT 0,
    UNIQUE (institution, number)
);
CREATE INDEX tickets_by_status ON tickets (institution, status, urgent, created_at);
CREATE INDEX tickets_by_citizen ON tickets (institution, platform, user_id, status);
CREATE INDEX tickets_sla ON tickets (status, due_at);

CREATE TABLE ticket_messages (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    author TEXT NOT NULL CHECK (author IN ('citizen', 'staff', 'bot')),
    author_id TEXT,
    author_name TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX ticket_messages_by_ticket ON ticket_messages (ticket_id, id);
