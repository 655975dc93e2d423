-- A sent message is identified within its institution's account: every VK community
-- numbers its conversations from 2000000001 and their messages from 1, and two Telegram
-- bots share a user's private chat id, so (platform, chat_id, message_id) alone collides
-- across institutions. SQLite cannot change a primary key in place: rebuild the table.

CREATE TABLE sent_messages_new (
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
    PRIMARY KEY (institution, platform, chat_id, message_id)
);
INSERT INTO sent_messages_new SELECT platform, chat_id, message_id, institution, outbox_id,
    part, thread_id, ref_kind, ref_id, created_at FROM sent_messages;
DROP TABLE sent_messages;
ALTER TABLE sent_messages_new RENAME TO sent_messages;
CREATE INDEX sent_messages_by_ref ON sent_messages (ref_kind, ref_id);
CREATE INDEX sent_messages_by_outbox ON sent_messages (outbox_id, part);
