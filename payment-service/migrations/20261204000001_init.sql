-- Charges, the idempotency records that guard their creation, and the transactional
-- outbox that carries each charge's event to SQS. All three are written in one
-- transaction by POST /v1/charges.

CREATE TABLE charges (
    id              TEXT PRIMARY KEY,
    api_key_id      TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL,
    customer_email  TEXT NOT NULL,
    description     TEXT,
    status          TEXT NOT NULL DEFAULT 'succeeded',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Keys are scoped to the caller's API key (stored as a digest, never the secret).
CREATE TABLE idempotency_keys (
    api_key_id       TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     BYTEA NOT NULL,
    response_status  SMALLINT NOT NULL,
    response_body    JSONB NOT NULL,
    charge_id        TEXT REFERENCES charges (id) ON DELETE SET NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    event_id         UUID NOT NULL UNIQUE,
    charge_id        TEXT NOT NULL,
    payload          TEXT NOT NULL,
    traceparent      TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at     TIMESTAMPTZ,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error       TEXT
);
-- The relay only ever scans unpublished rows; keep that scan independent of history.
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
