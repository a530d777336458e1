-- Job counts per UTC creation day and summary dimensions, kept by triggers in
-- the transaction that inserts, changes or deletes a job, so the job
-- summaries (List*JobSummaries: whole UTC days) read at most
-- days x dimension values rows instead of every job in the window.
-- Rows whose count fell to zero stay (readers skip them).
CREATE TABLE job_day_counts (
    kind             TEXT    NOT NULL,
    region           TEXT    NOT NULL,
    day              INTEGER NOT NULL, -- creation_ms / 86400000
    account_id       TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    resource_type    TEXT    NOT NULL,
    message_category TEXT    NOT NULL,
    n                INTEGER NOT NULL,
    PRIMARY KEY (kind, region, day, account_id, state, resource_type, message_category)
) WITHOUT ROWID;

CREATE TRIGGER jobs_day_count_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_day_counts (kind, region, day, account_id, state, resource_type, message_category, n)
    VALUES (NEW.kind, NEW.region, NEW.creation_ms / 86400000, NEW.account_id, NEW.state, NEW.resource_type, NEW.message_category, 1)
    ON CONFLICT (kind, region, day, account_id, state, resource_type, message_category) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER jobs_day_count_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_day_counts SET n = n - 1
     WHERE kind = OLD.kind AND region = OLD.region AND day = OLD.creation_ms / 86400000
       AND account_id = OLD.account_id AND state = OLD.state
       AND resource_type = OLD.resource_type AND message_category = OLD.message_category;
END;

-- Only when a counted column changes: heartbeats and progress leave the
-- counters alone.
CREATE TRIGGER jobs_day_count_update AFTER UPDATE ON jobs
WHEN OLD.kind IS NOT NEW.kind OR OLD.region IS NOT NEW.region
  OR OLD.creation_ms / 86400000 IS NOT NEW.creation_ms / 86400000
  OR OLD.account_id IS NOT NEW.account_id OR OLD.state IS NOT NEW.state
  OR OLD.resource_type IS NOT NEW.resource_type OR OLD.message_category IS NOT NEW.message_category
BEGIN
    UPDATE job_day_counts SET n = n - 1
     WHERE kind = OLD.kind AND region = OLD.region AND day = OLD.creation_ms / 86400000
       AND account_id = OLD.account_id AND state = OLD.state
       AND resource_type = OLD.resource_type AND message_category = OLD.message_category;
    INSERT INTO job_day_counts (kind, region, day, account_id, state, resource_type, message_category, n)
    VALUES (NEW.kind, NEW.region, NEW.creation_ms / 86400000, NEW.account_id, NEW.state, NEW.resource_type, NEW.message_category, 1)
    ON CONFLICT (kind, region, day, account_id, state, resource_type, message_category) DO UPDATE SET n = n + 1;
END;

INSERT INTO job_day_counts (kind, region, day, account_id, state, resource_type, message_category, n)
SELECT kind, region, creation_ms / 86400000, account_id, state, resource_type, message_category, COUNT(*)
  FROM jobs WHERE true GROUP BY 1, 2, 3, 4, 5, 6, 7;
