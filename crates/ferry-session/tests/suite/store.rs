//! The behaviour every `Store` backend shares, run against memory and Redis.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ferry_session::{SlotToken, Store, StoreError};
use pretty_assertions::assert_eq;

crate::on_both_backends!(
    set_get_delete,
    set_replaces_the_value,
    get_many_keeps_order,
    values_expire,
    zero_ttl_deletes,
    oversize_value_is_refused_and_removes_the_old_one,
    long_keys_work,
    slots_count_up_to_the_limit,
    slots_are_per_key,
    released_slots_can_be_taken_again,
    a_holder_released_twice_frees_one_slot,
    expired_slot_holders_stop_counting,
    a_late_release_does_not_free_the_next_holders_slot,
    zero_ttl_takes_no_slot,
    release_without_holders_is_harmless,
    counters_add_up_per_key,
    a_counter_window_ends_at_its_first_add_ttl,
    counters_are_read_many_at_once,
);

const HOUR: Duration = Duration::from_secs(3600);

async fn set_get_delete(store: Arc<dyn Store>) {
    assert_eq!(store.get("a").await.unwrap(), None);
    store.set("a", b"one", HOUR).await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), Some(b"one".to_vec()));
    store.delete("a").await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);
    store.delete("a").await.unwrap();
}

async fn set_replaces_the_value(store: Arc<dyn Store>) {
    store.set("a", b"one", HOUR).await.unwrap();
    store.set("a", b"two", HOUR).await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), Some(b"two".to_vec()));
}

async fn get_many_keeps_order(store: Arc<dyn Store>) {
    store.set("x", b"1", HOUR).await.unwrap();
    store.set("z", b"3", HOUR).await.unwrap();
    let keys = ["z", "missing", "x"].map(String::from);
    assert_eq!(
        store.get_many(&keys).await.unwrap(),
        vec![Some(b"3".to_vec()), None, Some(b"1".to_vec())]
    );
    assert_eq!(
        store.get_many(&[]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
}

async fn values_expire(store: Arc<dyn Store>) {
    store
        .set("short", b"v", Duration::from_millis(100))
        .await
        .unwrap();
    store.set("long", b"v", HOUR).await.unwrap();
    assert_eq!(store.get("short").await.unwrap(), Some(b"v".to_vec()));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(store.get("short").await.unwrap(), None);
    assert_eq!(store.get("long").await.unwrap(), Some(b"v".to_vec()));
}

async fn zero_ttl_deletes(store: Arc<dyn Store>) {
    store.set("a", b"v", HOUR).await.unwrap();
    store.set("a", b"w", Duration::ZERO).await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);
}

async fn oversize_value_is_refused_and_removes_the_old_one(store: Arc<dyn Store>) {
    store.set("turn", b"small", HOUR).await.unwrap();
    let big = vec![b'x'; 70 * 1024];
    let err = store.set("turn", &big, HOUR).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ValueTooLarge { len, limit } if len == 70 * 1024 && limit == 64 * 1024),
        "{err:?}"
    );
    assert_eq!(err.kind(), "value_too_large");
    assert_eq!(store.get("turn").await.unwrap(), None);
    // Exactly at the limit is fine.
    let max = vec![b'y'; 64 * 1024];
    store.set("turn", &max, HOUR).await.unwrap();
    assert_eq!(store.get("turn").await.unwrap(), Some(max));
}

async fn long_keys_work(store: Arc<dyn Store>) {
    let long_a = "a".repeat(600);
    let long_b = format!("{}b", "a".repeat(599));
    store.set(&long_a, b"A", HOUR).await.unwrap();
    store.set(&long_b, b"B", HOUR).await.unwrap();
    assert_eq!(store.get(&long_a).await.unwrap(), Some(b"A".to_vec()));
    assert_eq!(store.get(&long_b).await.unwrap(), Some(b"B".to_vec()));
    store.delete(&long_a).await.unwrap();
    assert_eq!(store.get(&long_a).await.unwrap(), None);
    assert_eq!(store.get(&long_b).await.unwrap(), Some(b"B".to_vec()));
}

async fn slots_count_up_to_the_limit(store: Arc<dyn Store>) {
    let mut taken = Vec::new();
    for _ in 0..4 {
        taken.push(store.try_acquire_slot("acct", 3, HOUR).await.unwrap());
    }
    assert_eq!(
        taken.iter().map(Option::is_some).collect::<Vec<_>>(),
        vec![true, true, true, false]
    );
    let tokens: HashSet<SlotToken> = taken.into_iter().flatten().collect();
    assert_eq!(tokens.len(), 3, "every holder has its own token");
}

async fn slots_are_per_key(store: Arc<dyn Store>) {
    let one = take(&store, "one", 1, HOUR).await;
    assert_eq!(store.try_acquire_slot("one", 1, HOUR).await.unwrap(), None);
    take(&store, "two", 1, HOUR).await;
    // A token releases nothing under another key.
    store.release_slot("two", &one).await.unwrap();
    assert_eq!(store.try_acquire_slot("two", 1, HOUR).await.unwrap(), None);
    assert_eq!(store.try_acquire_slot("one", 1, HOUR).await.unwrap(), None);
}

async fn released_slots_can_be_taken_again(store: Arc<dyn Store>) {
    let a = take(&store, "acct", 2, HOUR).await;
    let b = take(&store, "acct", 2, HOUR).await;
    assert_eq!(store.try_acquire_slot("acct", 2, HOUR).await.unwrap(), None);
    store.release_slot("acct", &a).await.unwrap();
    let c = take(&store, "acct", 2, HOUR).await;
    assert_eq!(store.try_acquire_slot("acct", 2, HOUR).await.unwrap(), None);
    store.release_slot("acct", &b).await.unwrap();
    store.release_slot("acct", &c).await.unwrap();
    take(&store, "acct", 2, HOUR).await;
    take(&store, "acct", 2, HOUR).await;
}

async fn a_holder_released_twice_frees_one_slot(store: Arc<dyn Store>) {
    let a = take(&store, "acct", 2, HOUR).await;
    let _b = take(&store, "acct", 2, HOUR).await;
    store.release_slot("acct", &a).await.unwrap();
    store.release_slot("acct", &a).await.unwrap();
    let _c = take(&store, "acct", 2, HOUR).await;
    // b and c hold both slots: the second release of a freed neither.
    assert_eq!(store.try_acquire_slot("acct", 2, HOUR).await.unwrap(), None);
}

async fn expired_slot_holders_stop_counting(store: Arc<dyn Store>) {
    // A holder that never releases (a crashed replica) frees its slot after the TTL,
    // even while other holders keep taking slots.
    take(&store, "acct", 2, Duration::from_millis(100)).await;
    take(&store, "acct", 2, HOUR).await;
    assert_eq!(store.try_acquire_slot("acct", 2, HOUR).await.unwrap(), None);
    let_time_pass(store.as_ref(), Duration::from_millis(250)).await;
    take(&store, "acct", 2, HOUR).await;
    assert_eq!(store.try_acquire_slot("acct", 2, HOUR).await.unwrap(), None);
}

async fn a_late_release_does_not_free_the_next_holders_slot(store: Arc<dyn Store>) {
    // A's slot expires while A is still working (a long stream); B then takes the only
    // slot. A's late release must give back A's slot (already gone), not B's.
    let a = take(&store, "acct", 1, Duration::from_millis(100)).await;
    let_time_pass(store.as_ref(), Duration::from_millis(250)).await;
    let b = take(&store, "acct", 1, HOUR).await;
    store.release_slot("acct", &a).await.unwrap();
    assert_eq!(
        store.try_acquire_slot("acct", 1, HOUR).await.unwrap(),
        None,
        "b still holds the only slot"
    );
    store.release_slot("acct", &b).await.unwrap();
    take(&store, "acct", 1, HOUR).await;
}

async fn zero_ttl_takes_no_slot(store: Arc<dyn Store>) {
    assert_eq!(
        store
            .try_acquire_slot("acct", 1, Duration::ZERO)
            .await
            .unwrap(),
        None
    );
    take(&store, "acct", 1, HOUR).await;
}

async fn release_without_holders_is_harmless(store: Arc<dyn Store>) {
    store
        .release_slot("nobody", &SlotToken::new())
        .await
        .unwrap();
    take(&store, "nobody", 1, HOUR).await;
    assert_eq!(
        store.try_acquire_slot("nobody", 1, HOUR).await.unwrap(),
        None
    );
}

/// Takes a slot that must be free.
async fn take(store: &Arc<dyn Store>, key: &str, limit: u32, ttl: Duration) -> SlotToken {
    store
        .try_acquire_slot(key, limit, ttl)
        .await
        .unwrap()
        .unwrap()
}

/// Lets `d` pass for the store's clock: the memory store runs on tokio's clock, which is
/// paused and moved on (no real wait); Redis uses its own clock, so this sleeps.
async fn let_time_pass(store: &dyn Store, d: Duration) {
    if store.backend() == "memory" {
        tokio::time::pause();
        tokio::time::advance(d).await;
    } else {
        tokio::time::sleep(d).await;
    }
}

async fn counters_add_up_per_key(store: Arc<dyn Store>) {
    assert_eq!(store.counter("budget:a").await.unwrap(), 0);
    assert_eq!(store.add("budget:a", 5, HOUR).await.unwrap(), 5);
    assert_eq!(store.add("budget:a", 7, HOUR).await.unwrap(), 12);
    assert_eq!(store.add("budget:b", 1, HOUR).await.unwrap(), 1);
    assert_eq!(
        (
            store.counter("budget:a").await.unwrap(),
            store.counter("budget:b").await.unwrap()
        ),
        (12, 1)
    );
}

async fn a_counter_window_ends_at_its_first_add_ttl(store: Arc<dyn Store>) {
    store.add("w", 3, Duration::from_millis(150)).await.unwrap();
    // A later add with a long TTL does not extend the window.
    store.add("w", 4, HOUR).await.unwrap();
    assert_eq!(store.counter("w").await.unwrap(), 7);
    let_time_pass(store.as_ref(), Duration::from_millis(300)).await;
    assert_eq!(store.counter("w").await.unwrap(), 0);
    assert_eq!(store.add("w", 2, HOUR).await.unwrap(), 2);
}

async fn counters_are_read_many_at_once(store: Arc<dyn Store>) {
    assert_eq!(store.counters(&[]).await.unwrap(), Vec::<u64>::new());
    let long = format!("usage:{}", "k".repeat(600));
    store.add("usage:a", 3, HOUR).await.unwrap();
    store.add("usage:a", 4, HOUR).await.unwrap();
    store.add(&long, 9, HOUR).await.unwrap();
    store
        .add("usage:gone", 5, Duration::from_millis(100))
        .await
        .unwrap();
    let_time_pass(store.as_ref(), Duration::from_millis(250)).await;
    let keys = [
        "usage:a".to_owned(),
        "usage:absent".to_owned(),
        long.clone(),
        "usage:gone".to_owned(),
    ];
    assert_eq!(store.counters(&keys).await.unwrap(), [7, 0, 9, 0]);
}
