-- PostgreSQL twin of migrations/0006_chat_places.sql: the institutions a chat of a shared
-- bot chose, and when last (the latest among the account's institutions is the binding).

CREATE TABLE chat_places (
    platform TEXT COLLATE "C" NOT NULL,
    chat_id TEXT COLLATE "C" NOT NULL,
    institution TEXT COLLATE "C" NOT NULL,
    chosen_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (platform, chat_id, institution)
);
CREATE INDEX chat_places_by_chat ON chat_places (platform, chat_id, chosen_at);
