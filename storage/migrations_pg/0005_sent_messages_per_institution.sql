-- PostgreSQL twin of migrations/0005_sent_messages_per_institution.sql: a sent message is
-- identified within its institution's account. PostgreSQL changes the key in place.

ALTER TABLE sent_messages DROP CONSTRAINT sent_messages_pkey;
ALTER TABLE sent_messages ADD PRIMARY KEY (institution, platform, chat_id, message_id);
