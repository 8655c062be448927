-- The consumer's dedup table: one row per side effect (the event's idempotency key).
--   sending: a worker holds the lease until lease_expires_at and may be sending now;
--            after expiry another worker may take over.
--   sent:    the SMTP server accepted the email; later copies of the event are dedup hits.
--   failed:  a permanent failure; the message went to the dead-letter queue.
CREATE TABLE deliveries (
    idempotency_key   TEXT PRIMARY KEY,
    state             TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'failed')),
    lease_owner       UUID,
    lease_expires_at  TIMESTAMPTZ,
    attempts          INTEGER NOT NULL DEFAULT 1,
    message_id        TEXT NOT NULL,
    event_id          UUID NOT NULL,
    charge_id         TEXT NOT NULL,
    failure_reason    TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at           TIMESTAMPTZ
);
