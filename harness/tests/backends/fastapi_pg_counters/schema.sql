-- Usage counters: how many edits succeeded and failed, nothing about what they were.
CREATE TABLE counters (
    name text PRIMARY KEY,
    n bigint NOT NULL DEFAULT 0
);
INSERT INTO counters (name) VALUES ('generated'), ('failed');
