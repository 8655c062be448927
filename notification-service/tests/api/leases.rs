use crate::helpers::{emails_for, event, spawn_consumer, wait_for_emails};

#[tokio::test]
async fn a_key_already_sent_is_a_dedup_hit_without_an_email() {
    let consumer = spawn_consumer(5, &[]).await;
    let event = event();
    sqlx::query(
        "INSERT INTO deliveries (idempotency_key, state, message_id, event_id, charge_id, sent_at)
         VALUES ($1, 'sent', '<x@example.com>', $2, $3, now())",
    )
    .bind(&event.idempotency_key)
    .bind(event.event_id)
    .bind(&event.data.charge_id)
    .execute(&consumer.pool)
    .await
    .expect("seeded");
    consumer.send_copies(&event, 1).await;
    consumer.wait_drained().await;
    assert_eq!(emails_for(&event.idempotency_key), 0);
    consumer.stop().await;
}

#[tokio::test]
async fn a_live_lease_of_another_worker_holds_the_send_until_it_expires() {
    let consumer = spawn_consumer(5, &[]).await;
    let event = event();
    // Another worker claimed the key and died: its lease runs for 3 more seconds.
    let lease_end: f64 = sqlx::query_scalar(
        "INSERT INTO deliveries (idempotency_key, state, lease_owner, lease_expires_at, message_id, event_id, charge_id)
         VALUES ($1, 'sending', gen_random_uuid(), now() + interval '3 seconds', '<x@example.com>', $2, $3)
         RETURNING extract(epoch FROM lease_expires_at)::float8",
    )
    .bind(&event.idempotency_key)
    .bind(event.event_id)
    .bind(&event.data.charge_id)
    .fetch_one(&consumer.pool)
    .await
    .expect("seeded");
    consumer.send_copies(&event, 1).await;
    let mails = wait_for_emails(&event.idempotency_key, 1).await;
    let received_at = mails[0].received_at.expect("stamped");
    assert!(
        received_at >= lease_end,
        "sent {:.3}s before the lease ended",
        lease_end - received_at
    );
    consumer.wait_drained().await;
    consumer.assert_sent_once(&event.idempotency_key, 2).await;
    consumer.stop().await;
}
