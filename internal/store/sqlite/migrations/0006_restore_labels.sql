-- Coffer metadata schema, version 6: a restore job remembers the facts a
-- front end recorded about its request (labels, a JSON object of strings),
-- e.g. the Alibaba HBR API's RestoreType and cross-account fields, so that
-- the front end can show them back. NULL for jobs without labels.
ALTER TABLE jobs ADD COLUMN labels_json TEXT;
