-- A shared bot asks which of its institutions sent the message a button sits under or a
-- reply answers (storage/places.py sender_of). The primary key leads with the institution,
-- so that question bound every institution of the account into an IN list and probed the
-- key once per institution: 1.4 ms a callback at 1,000 institutions behind one bot.
CREATE INDEX sent_messages_by_chat ON sent_messages (platform, chat_id, message_id);
