-- A shared bot (one account serving several institutions): which institutions a chat has
-- chosen, and when last. The latest choice among the account's institutions is where the
-- chat is now; the others are the "recent" buttons of the place picker. Keyed by the chat,
-- not by the account, so reordering the config keeps every binding.

CREATE TABLE chat_places (
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    institution TEXT NOT NULL,
    chosen_at TEXT NOT NULL,
    PRIMARY KEY (platform, chat_id, institution)
);
CREATE INDEX chat_places_by_chat ON chat_places (platform, chat_id, chosen_at);
