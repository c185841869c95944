-- The history table: one row per generated image, with the instruction that made it.
CREATE TABLE history (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    instruction text NOT NULL
);
