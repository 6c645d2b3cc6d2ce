//! The memory store's bounds, expiry and eviction (time paused and advanced by hand).

use std::time::Duration;

use ferry_session::{MemoryLimits, MemoryStore, Store};
use pretty_assertions::assert_eq;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn the_4097th_key_evicts_the_earliest_expiring_one() {
    // Case 43: at most 4096 entries (crates/ferry-session/README.md § Store).
    let store = MemoryStore::default();
    for i in 0..4096u64 {
        let ttl = if i == 2000 {
            Duration::from_secs(600)
        } else {
            HOUR + Duration::from_secs(i)
        };
        store.set(&format!("k{i}"), b"v", ttl).await.unwrap();
    }
    assert_eq!(store.len(), 4096);
    store.set("k4096", b"v", HOUR).await.unwrap();
    assert_eq!(store.len(), 4096);
    assert_eq!(store.get("k2000").await.unwrap(), None);
    for i in [0u64, 1999, 2001, 4095, 4096] {
        assert_eq!(
            store.get(&format!("k{i}")).await.unwrap(),
            Some(b"v".to_vec()),
            "k{i}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_600_byte_key_is_stored_under_its_sha256_form() {
    // Case 43: a key over 512 bytes is stored as `sha256:<hex>` (crates/ferry-session/README.md
    // § Store), so only that 71-byte form is held.
    let store = MemoryStore::default();
    let key = "k".repeat(600);
    store.set(&key, b"value", HOUR).await.unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(store.total_bytes(), "sha256:".len() + 64 + "value".len());
    assert_eq!(store.get(&key).await.unwrap(), Some(b"value".to_vec()));
    // A 512-byte key is still stored as is.
    let edge = "e".repeat(512);
    store.set(&edge, b"v", HOUR).await.unwrap();
    assert_eq!(store.total_bytes(), 71 + 5 + 512 + 1);
}

#[tokio::test(start_paused = true)]
async fn a_70_kib_value_is_not_stored() {
    // Case 43: a value over 64 KiB (a turn state that large) is refused
    // (crates/ferry-session/README.md § Store).
    let store = MemoryStore::default();
    assert!(
        store
            .set("turn", &vec![0u8; 70 * 1024], HOUR)
            .await
            .is_err()
    );
    assert_eq!((store.len(), store.total_bytes()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn the_byte_budget_evicts_the_earliest_expiring_entries() {
    let store = MemoryStore::new(MemoryLimits {
        max_total_bytes: 1000,
        ..MemoryLimits::default()
    });
    // Each entry is 2 bytes of key + 198 of value = 200 bytes: five fit.
    for i in 0..5u64 {
        store
            .set(
                &format!("k{i}"),
                &[b'v'; 198],
                HOUR + Duration::from_secs(10 - i),
            )
            .await
            .unwrap();
    }
    assert_eq!((store.len(), store.total_bytes()), (5, 1000));
    store.set("k5", &[b'v'; 198], HOUR).await.unwrap();
    assert_eq!((store.len(), store.total_bytes()), (5, 1000));
    // k4 expired first (HOUR + 6 s)… but k5 expires even sooner (HOUR): it goes.
    assert_eq!(store.get("k5").await.unwrap(), None);
    store
        .set("k6", &[b'v'; 398], HOUR + Duration::from_secs(60))
        .await
        .unwrap();
    // 400 bytes more: the two earliest-expiring (k4, k3) make room.
    assert_eq!(store.get("k4").await.unwrap(), None);
    assert_eq!(store.get("k3").await.unwrap(), None);
    assert!(store.get("k2").await.unwrap().is_some());
    assert_eq!((store.len(), store.total_bytes()), (4, 1000));
}

#[tokio::test(start_paused = true)]
async fn entry_limit_is_configurable() {
    let store = MemoryStore::new(MemoryLimits {
        max_entries: 3,
        ..MemoryLimits::default()
    });
    for (i, secs) in [30u64, 10, 20, 40].into_iter().enumerate() {
        store
            .set(&format!("k{i}"), b"v", Duration::from_secs(secs))
            .await
            .unwrap();
    }
    assert_eq!(store.len(), 3);
    assert_eq!(store.get("k1").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn writes_prune_expired_entries_a_few_at_a_time() {
    let store = MemoryStore::default();
    for i in 0..40 {
        store
            .set(&format!("old{i}"), b"v", Duration::from_secs(1))
            .await
            .unwrap();
    }
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(store.len(), 40, "nothing is removed before a write");
    store.set("new0", b"v", HOUR).await.unwrap();
    let after_one = store.len();
    assert!(
        after_one < 41 && after_one > 1,
        "one write prunes a few, not all: {after_one}"
    );
    for i in 1..16 {
        store.set(&format!("new{i}"), b"v", HOUR).await.unwrap();
    }
    assert_eq!(
        store.len(),
        16,
        "16 writes have visited every part of the index"
    );
    assert_eq!(
        store.total_bytes(),
        (0..16).map(|i| format!("new{i}").len() + 1).sum::<usize>()
    );
}

#[tokio::test(start_paused = true)]
async fn reads_remove_an_expired_hit() {
    let store = MemoryStore::default();
    store.set("a", b"v", Duration::from_secs(1)).await.unwrap();
    tokio::time::advance(Duration::from_millis(999)).await;
    assert_eq!(store.get("a").await.unwrap(), Some(b"v".to_vec()));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(store.get("a").await.unwrap(), None);
    assert_eq!((store.len(), store.total_bytes()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn replacing_and_deleting_keep_the_byte_count() {
    let store = MemoryStore::default();
    store.set("a", b"12345", HOUR).await.unwrap();
    store.set("b", b"1", HOUR).await.unwrap();
    assert_eq!(store.total_bytes(), 6 + 2);
    store.set("a", b"1234567890", HOUR).await.unwrap();
    assert_eq!((store.len(), store.total_bytes()), (2, 11 + 2));
    store.delete("a").await.unwrap();
    store.delete("a").await.unwrap();
    assert_eq!((store.len(), store.total_bytes()), (1, 2));
    store.set("b", b"", Duration::ZERO).await.unwrap();
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn slot_holders_expire_in_paused_time() {
    let store = MemoryStore::default();
    let ttl = Duration::from_secs(1800);
    assert!(
        store
            .try_acquire_slot("acct", 1, ttl)
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::advance(Duration::from_secs(1799)).await;
    assert_eq!(store.try_acquire_slot("acct", 1, ttl).await.unwrap(), None);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(
        store
            .try_acquire_slot("acct", 1, ttl)
            .await
            .unwrap()
            .is_some()
    );
}

#[test]
fn concurrent_writers_keep_the_bounds_and_the_counts() {
    let store = MemoryStore::new(MemoryLimits {
        max_entries: 100,
        ..MemoryLimits::default()
    });
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let store = &store;
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    for i in 0..2000u64 {
                        let key = format!("k{}", (i * 7 + t * 13) % 300);
                        let ttl = Duration::from_secs(60 + (i * 31 + t) % 600);
                        store
                            .set(&key, &vec![b'v'; ((i + t) % 50) as usize], ttl)
                            .await
                            .unwrap();
                        if i % 5 == 0 {
                            store.delete(&format!("k{}", (i + t) % 300)).await.unwrap();
                        }
                    }
                });
            });
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (live, bytes) = rt.block_on(async {
        let mut live = 0;
        let mut bytes = 0;
        for i in 0..300 {
            let key = format!("k{i}");
            if let Some(v) = store.get(&key).await.unwrap() {
                live += 1;
                bytes += key.len() + v.len();
            }
        }
        (live, bytes)
    });
    assert!(store.len() <= 100, "{}", store.len());
    assert_eq!((store.len(), store.total_bytes()), (live, bytes));
}
