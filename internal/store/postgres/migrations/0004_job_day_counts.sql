-- Job counts per UTC creation day and summary dimensions, kept by triggers in
-- the transaction that inserts, changes or deletes a job, so the job
-- summaries (List*JobSummaries: whole UTC days) read at most
-- days x dimension values rows instead of every job in the window.
-- Rows whose count fell to zero stay (readers skip them).
CREATE TABLE job_day_counts (
    kind             TEXT   NOT NULL,
    region           TEXT   NOT NULL,
    day              BIGINT NOT NULL, -- creation_ms / 86400000
    account_id       TEXT   NOT NULL,
    state            TEXT   NOT NULL,
    resource_type    TEXT   NOT NULL,
    message_category TEXT   NOT NULL,
    n                BIGINT NOT NULL,
    PRIMARY KEY (kind, region, day, account_id, state, resource_type, message_category)
);

CREATE FUNCTION jobs_day_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE job_day_counts SET n = n - 1
         WHERE kind = OLD.kind AND region = OLD.region AND day = OLD.creation_ms / 86400000
           AND account_id = OLD.account_id AND state = OLD.state
           AND resource_type = OLD.resource_type AND message_category = OLD.message_category;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO job_day_counts AS c (kind, region, day, account_id, state, resource_type, message_category, n)
        VALUES (NEW.kind, NEW.region, NEW.creation_ms / 86400000, NEW.account_id, NEW.state, NEW.resource_type, NEW.message_category, 1)
        ON CONFLICT (kind, region, day, account_id, state, resource_type, message_category) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_day_count_insert_delete AFTER INSERT OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_day_count();
-- Only when a counted column changes: heartbeats and progress leave the
-- counters alone.
CREATE TRIGGER jobs_day_count_update AFTER UPDATE ON jobs
    FOR EACH ROW WHEN (OLD.kind IS DISTINCT FROM NEW.kind OR OLD.region IS DISTINCT FROM NEW.region
        OR OLD.creation_ms / 86400000 IS DISTINCT FROM NEW.creation_ms / 86400000
        OR OLD.account_id IS DISTINCT FROM NEW.account_id OR OLD.state IS DISTINCT FROM NEW.state
        OR OLD.resource_type IS DISTINCT FROM NEW.resource_type OR OLD.message_category IS DISTINCT FROM NEW.message_category)
    EXECUTE FUNCTION jobs_day_count();

-- Existing jobs. CREATE TRIGGER locked the table against writers until this
-- migration commits, so no change slips between the triggers and the count.
INSERT INTO job_day_counts (kind, region, day, account_id, state, resource_type, message_category, n)
SELECT kind, region, creation_ms / 86400000, account_id, state, resource_type, message_category, COUNT(*)
  FROM jobs GROUP BY 1, 2, 3, 4, 5, 6, 7;
