use std::{collections::HashSet, sync::Mutex, time::Duration};

use payment_service::{
    outbox::{self, relay_once, PendingMessage, PublishFailure, Publisher},
    startup::MIGRATOR,
};
use reqwest::StatusCode;
use serde_json::Value;
use shared::{
    event::{decode, Envelope, PaymentSucceeded},
    postgres::{connect_and_migrate, PoolSettings},
};
use sqlx::PgPool;

use crate::helpers::{charge_body, spawn_app};

#[tokio::test]
async fn committed_charges_reach_the_queue_and_are_marked_published() {
    let app = spawn_app().await;
    let mut charge_ids = HashSet::new();
    for i in 0..3 {
        let r = app
            .post_charge(Some(&format!("k{i}")), &charge_body(100 + i))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.expect("json");
        charge_ids.insert(body["id"].as_str().expect("id").to_owned());
    }
    let messages = testkit::sqs::collect(&app.sqs, &app.queue.url, 3, Duration::from_secs(15))
        .await
        .expect("messages arrive");
    let events: Vec<Envelope> = messages
        .iter()
        .map(|m| decode(m.body().unwrap_or_default()).expect("valid event"))
        .collect();
    let got: HashSet<String> = events.iter().map(|e| e.data.charge_id.clone()).collect();
    assert_eq!(got, charge_ids);
    for (m, e) in messages.iter().zip(&events) {
        assert_eq!(
            e.idempotency_key,
            format!("{}:confirmation_email:v1", e.data.charge_id)
        );
        let attrs = m.message_attributes().expect("attributes");
        assert_eq!(
            attrs["event_type"].string_value(),
            Some("payment.succeeded")
        );
        assert!(attrs["traceparent"]
            .string_value()
            .is_some_and(|t| t.starts_with("00-")));
    }
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(unpublished, 0);
    app.stop().await;
}

/// Fails the listed row ids once each, accepts everything else.
struct FlakyPublisher {
    fail_once: Mutex<HashSet<i64>>,
    fail_whole_batch: Mutex<bool>,
    published: Mutex<Vec<i64>>,
}

impl Publisher for FlakyPublisher {
    async fn publish(&self, batch: &[PendingMessage]) -> anyhow::Result<Vec<PublishFailure>> {
        if std::mem::take(&mut *self.fail_whole_batch.lock().expect("lock")) {
            anyhow::bail!("connection reset");
        }
        let mut fail = self.fail_once.lock().expect("lock");
        let mut failures = Vec::new();
        for m in batch {
            if fail.remove(&m.id) {
                failures.push(PublishFailure {
                    id: m.id,
                    reason: "InternalError: try again".into(),
                });
            } else {
                self.published.lock().expect("lock").push(m.id);
            }
        }
        Ok(failures)
    }
}

async fn outbox_pool() -> (PgPool, testkit::db::TestDatabase) {
    let db = testkit::db::fresh("relay");
    let settings = PoolSettings {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(5),
    };
    let pool = connect_and_migrate(&db.url, settings, &MIGRATOR)
        .await
        .expect("migrated");
    (pool, db)
}

async fn enqueue_events(pool: &PgPool, n: usize) -> Vec<i64> {
    let mut tx = pool.begin().await.expect("tx");
    for i in 0..n {
        let event = Envelope::payment_succeeded(
            uuid::Uuid::new_v4(),
            time::OffsetDateTime::now_utc(),
            PaymentSucceeded {
                charge_id: format!("ch_test{i}"),
                amount: 100,
                currency: "usd".into(),
                customer_email: "a@b.co".into(),
                description: None,
            },
        );
        outbox::enqueue(
            &mut tx,
            &event,
            "00-00000000000000000000000000000001-0000000000000001-01",
        )
        .await
        .expect("enqueued");
    }
    tx.commit().await.expect("commit");
    sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("ids")
}

async fn unpublished(pool: &PgPool) -> Vec<(i64, i32)> {
    sqlx::query_as("SELECT id, attempts FROM outbox WHERE published_at IS NULL ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("rows")
}

#[tokio::test]
async fn entries_refused_inside_an_accepted_batch_are_retried_not_dropped() {
    let (pool, db) = outbox_pool().await;
    let ids = enqueue_events(&pool, 3).await;
    let publisher = FlakyPublisher {
        fail_once: Mutex::new(HashSet::from([ids[1]])),
        fail_whole_batch: Mutex::new(false),
        published: Mutex::new(Vec::new()),
    };
    assert_eq!(relay_once(&pool, &publisher, 10).await.expect("pass"), 3);
    assert_eq!(unpublished(&pool).await, vec![(ids[1], 1)]);
    // Backed off: not due yet, so an immediate pass leaves it alone.
    assert_eq!(relay_once(&pool, &publisher, 10).await.expect("pass"), 0);
    sqlx::query("UPDATE outbox SET next_attempt_at = now()")
        .execute(&pool)
        .await
        .expect("due");
    assert_eq!(relay_once(&pool, &publisher, 10).await.expect("pass"), 1);
    assert!(unpublished(&pool).await.is_empty());
    let mut published = publisher.published.lock().expect("lock").clone();
    published.sort_unstable();
    assert_eq!(published, ids);
    pool.close().await;
    db.drop_database().await.expect("dropped");
}

#[tokio::test]
async fn a_failed_batch_call_reschedules_every_row() {
    let (pool, db) = outbox_pool().await;
    let ids = enqueue_events(&pool, 2).await;
    let publisher = FlakyPublisher {
        fail_once: Mutex::new(HashSet::new()),
        fail_whole_batch: Mutex::new(true),
        published: Mutex::new(Vec::new()),
    };
    assert_eq!(relay_once(&pool, &publisher, 10).await.expect("pass"), 2);
    assert_eq!(unpublished(&pool).await, vec![(ids[0], 1), (ids[1], 1)]);
    let last_error: Option<String> = sqlx::query_scalar("SELECT last_error FROM outbox LIMIT 1")
        .fetch_one(&pool)
        .await
        .expect("row");
    assert!(last_error.is_some_and(|e| e.contains("connection reset")));
    pool.close().await;
    db.drop_database().await.expect("dropped");
}

#[tokio::test]
async fn a_row_no_signal_announced_is_published_by_the_sweep() {
    // As if the process crashed after the commit, before waking the relay.
    let app = spawn_app().await;
    let ids = enqueue_events(&app.pool, 1).await;
    let messages = testkit::sqs::collect(&app.sqs, &app.queue.url, 1, Duration::from_secs(10))
        .await
        .expect("swept and published");
    assert_eq!(
        decode(messages[0].body().unwrap_or_default())
            .expect("event")
            .data
            .charge_id,
        "ch_test0"
    );
    assert!(unpublished(&app.pool)
        .await
        .iter()
        .all(|(id, _)| *id != ids[0]));
    app.stop().await;
}
