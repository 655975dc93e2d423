-- The retention purge (storage/privacy.py) deletes by age across every institution: without
-- these indexes each of its batches scanned message_log, feedback and outbox whole.
CREATE INDEX message_log_by_created ON message_log (created_at);
CREATE INDEX feedback_by_created ON feedback (created_at);
CREATE INDEX outbox_by_created ON outbox (created_at);
-- deleting a message sets feedback.question_id to NULL: the rows are found by this index
CREATE INDEX feedback_by_question ON feedback (question_id);
