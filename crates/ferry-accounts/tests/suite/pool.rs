//! Pool selection, slots, cooldowns and availability, under `tokio::time::pause()`.

use std::sync::Arc;
use std::time::Duration;

use ferry_accounts::{
    AccountConfig, AccountState, AccountsError, Cooldown, CooldownKind, Disposition,
    FailoverReason, Lease, Pool, PoolOptions, Secret, Selection, SharedSlots, Unavailable,
};
use ferry_session::{BoxFuture, MemoryLimits, MemoryStore, SlotToken, Store, StoreError};
use http::{HeaderMap, StatusCode};
use pretty_assertions::assert_eq;
use tokio::time::{Instant, advance};

use super::support::headers;

fn key(name: &str, priority: i32, concurrency: u32) -> AccountConfig {
    let mut a = AccountConfig::api_key(
        name,
        "http://127.0.0.1:9/v1",
        Secret::new(format!("sk-{name}")),
    );
    a.priority = priority;
    a.concurrency = concurrency;
    a
}

fn oauth(name: &str) -> AccountConfig {
    let mut a = AccountConfig::oauth(name, Secret::new("at"), Some(Secret::new("rt")));
    a.token_url = Some("http://127.0.0.1:9/oauth/token".into());
    a
}

fn pool(accounts: Vec<AccountConfig>) -> Pool {
    Pool::new(accounts, PoolOptions::default()).unwrap()
}

async fn pick(pool: &Pool, selection: &Selection<'_>) -> Lease {
    pool.acquire(selection).await.unwrap()
}

fn names(leases: &[Lease]) -> Vec<&str> {
    leases.iter().map(Lease::name).collect()
}

fn error(pool: &Pool, lease: &Lease, status: u16, h: &[(&str, &str)], body: &str) -> Disposition {
    pool.on_upstream_error(
        lease,
        StatusCode::from_u16(status).unwrap(),
        &headers(h),
        body.as_bytes(),
        0,
    )
}

#[tokio::test(start_paused = true)]
async fn selection_by_priority_then_load_then_sticky() {
    let pool = pool(vec![key("a", 0, 2), key("b", 0, 2), key("c", 1, 1)]);
    let any = Selection::default();
    let mut leases = Vec::new();
    for _ in 0..5 {
        leases.push(pick(&pool, &any).await);
    }
    assert_eq!(names(&leases), ["a", "b", "a", "b", "c"]);
    let in_flight: Vec<_> = pool
        .statuses()
        .iter()
        .map(|s| (s.in_flight, s.concurrency))
        .collect();
    assert_eq!(in_flight, [(2, 2), (2, 2), (1, 1)]);
    leases.clear();
    assert_eq!(pool.statuses().iter().map(|s| s.in_flight).sum::<u32>(), 0);

    // The sticky account wins over priority while healthy.
    let sticky = pick(
        &pool,
        &Selection {
            preferred: Some("c"),
            exclude: &[],
        },
    )
    .await;
    assert_eq!(sticky.name(), "c");
    // Sticky but full: the next best account instead of waiting.
    let other = pick(
        &pool,
        &Selection {
            preferred: Some("c"),
            exclude: &[],
        },
    )
    .await;
    assert_eq!(other.name(), "a");
    // Excluded accounts are skipped; an unknown preference is ignored.
    let excluded = ["a".to_owned()];
    let next = pick(
        &pool,
        &Selection {
            preferred: Some("zzz"),
            exclude: &excluded,
        },
    )
    .await;
    assert_eq!(next.name(), "b");
}

#[tokio::test(start_paused = true)]
async fn load_is_relative_to_concurrency() {
    let pool = pool(vec![key("small", 0, 1), key("big", 0, 4)]);
    let any = Selection::default();
    let first = pick(&pool, &any).await;
    let second = pick(&pool, &any).await;
    let third = pick(&pool, &any).await;
    assert_eq!(names(&[first, second, third]), ["small", "big", "big"]);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_account_is_skipped_until_its_reset() {
    let pool = pool(vec![key("a", 0, 4), key("b", 1, 4)]);
    let any = Selection::default();
    let lease = pick(&pool, &any).await;
    assert_eq!(lease.name(), "a");
    let d = error(&pool, &lease, 429, &[("retry-after", "30")], "");
    assert_eq!(
        d,
        Disposition::Failover {
            cooldown: Cooldown::For {
                duration: Duration::from_secs(30),
                kind: CooldownKind::RateLimited
            },
            reason: FailoverReason::RateLimited
        }
    );
    drop(lease);
    assert_eq!(pick(&pool, &any).await.name(), "b");
    assert_eq!(
        pool.statuses()[0].state,
        AccountState::CoolingDown {
            kind: CooldownKind::RateLimited,
            reason: FailoverReason::RateLimited,
            remaining: Duration::from_secs(30)
        }
    );
    assert_eq!(
        (
            pool.available("a"),
            pool.available("b"),
            pool.available("x")
        ),
        (Some(false), Some(true), None)
    );
    advance(Duration::from_secs(29)).await;
    assert_eq!(pick(&pool, &any).await.name(), "b");
    advance(Duration::from_secs(1)).await;
    assert_eq!(pick(&pool, &any).await.name(), "a");
    assert!(pool.statuses()[0].available());
}

#[tokio::test(start_paused = true)]
async fn exhausted_codex_window_blocks_until_it_resets_cases_30_31() {
    let pool = pool(vec![oauth("chatgpt"), key("backup", 1, 4)]);
    let any = Selection::default();
    let lease = pick(&pool, &any).await;
    assert_eq!(lease.name(), "chatgpt");
    let half = [
        ("x-codex-primary-used-percent", "50"),
        ("x-codex-primary-reset-after-seconds", "7200"),
        ("x-codex-primary-window-minutes", "300"),
    ];
    error(&pool, &lease, 429, &half, "");
    drop(lease);
    assert_eq!(pick(&pool, &any).await.name(), "backup");
    advance(Duration::from_secs(5)).await;
    let lease = pick(&pool, &any).await;
    assert_eq!(
        lease.name(),
        "chatgpt",
        "below 100 %: only the 5 s fallback"
    );

    let full = [
        ("x-codex-primary-used-percent", "100"),
        ("x-codex-primary-reset-after-seconds", "3600"),
        ("x-codex-primary-window-minutes", "300"),
    ];
    error(&pool, &lease, 429, &full, "");
    drop(lease);
    advance(Duration::from_secs(3599)).await;
    assert_eq!(pick(&pool, &any).await.name(), "backup");
    advance(Duration::from_secs(1)).await;
    assert_eq!(pick(&pool, &any).await.name(), "chatgpt");

    // The 429's usage headers are kept as the account's snapshot.
    let usage = pool.codex_usage();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].0, "chatgpt");
    assert_eq!(
        usage[0].1.usage.five_hour.and_then(|w| w.used_percent),
        Some(100.0)
    );
}

#[tokio::test(start_paused = true)]
async fn all_unavailable_reports_kind_and_earliest_retry_after() {
    let pool = pool(vec![key("a", 0, 4), key("b", 0, 4)]);
    let any = Selection::default();
    let a = pick(&pool, &any).await;
    let b = pick(&pool, &any).await;
    error(&pool, &a, 429, &[("retry-after", "30")], "");
    error(&pool, &b, 429, &[("retry-after", "10")], "");
    let err = pool.acquire(&any).await.unwrap_err();
    assert!(
        matches!(err, AccountsError::AllUnavailable { kind: Unavailable::RateLimited, retry_after: Some(d) } if d == Duration::from_secs(10)),
        "{err:?}"
    );
    error(&pool, &b, 529, &[("retry-after", "60")], "");
    let err = pool.acquire(&any).await.unwrap_err();
    assert!(
        matches!(err, AccountsError::AllUnavailable { kind: Unavailable::Overloaded, retry_after: Some(d) } if d == Duration::from_secs(30)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "all upstream accounts are unavailable (overloaded)"
    );
    assert!(!pool.is_ready());

    let everyone = ["a".to_owned(), "b".to_owned()];
    let err = pool
        .acquire(&Selection {
            preferred: None,
            exclude: &everyone,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AccountsError::AllUnavailable {
                kind: Unavailable::Exhausted,
                retry_after: None
            }
        ),
        "{err:?}"
    );

    let empty = Pool::new(Vec::new(), PoolOptions::default()).unwrap();
    assert!(matches!(
        empty.acquire(&any).await,
        Err(AccountsError::NoAccounts)
    ));
    assert!(!empty.is_ready());
}

#[tokio::test(start_paused = true)]
async fn third_structured_403_in_180_minutes_disables_case_33() {
    let pool = pool(vec![key("a", 0, 4), key("b", 0, 4)]);
    let only_a = ["b".to_owned()];
    let sel = Selection {
        preferred: None,
        exclude: &only_a,
    };
    let body = r#"{"error":{"message":"forbidden"}}"#;
    let ten_min = Cooldown::For {
        duration: Duration::from_secs(600),
        kind: CooldownKind::Error,
    };
    for _ in 0..2 {
        let lease = pick(&pool, &sel).await;
        assert_eq!(
            error(&pool, &lease, 403, &[], body),
            Disposition::Failover {
                cooldown: ten_min,
                reason: FailoverReason::Forbidden
            }
        );
        drop(lease);
        advance(Duration::from_secs(600)).await;
    }
    let lease = pick(&pool, &sel).await;
    assert_eq!(
        error(&pool, &lease, 403, &[], body),
        Disposition::Failover {
            cooldown: Cooldown::Disabled,
            reason: FailoverReason::Forbidden
        }
    );
    drop(lease);
    assert_eq!(
        pool.statuses()[0].state,
        AccountState::Disabled {
            reason: FailoverReason::Forbidden
        }
    );
    advance(Duration::from_secs(24 * 3600)).await;
    assert_eq!(pool.available("a"), Some(false));
    assert!(pool.is_ready(), "b is still fine");

    // 403s older than 180 minutes no longer count.
    let pool2 = pool_after_two_old_403s().await;
    assert_eq!(
        pool2.statuses()[0].state,
        AccountState::CoolingDown {
            kind: CooldownKind::Error,
            reason: FailoverReason::Forbidden,
            remaining: Duration::from_secs(600),
        }
    );
}

async fn pool_after_two_old_403s() -> Pool {
    let pool = pool(vec![key("a", 0, 4)]);
    let any = Selection::default();
    let body = r#"{"error":{"message":"forbidden"}}"#;
    for _ in 0..2 {
        let lease = pick(&pool, &any).await;
        error(&pool, &lease, 403, &[], body);
        drop(lease);
        advance(Duration::from_secs(600)).await;
    }
    advance(Duration::from_secs(180 * 60)).await;
    let lease = pick(&pool, &any).await;
    error(&pool, &lease, 403, &[], body);
    pool
}

#[tokio::test(start_paused = true)]
async fn html_403_fails_over_without_penalty_case_32() {
    let pool = pool(vec![key("a", 0, 4)]);
    let any = Selection::default();
    for _ in 0..5 {
        let lease = pick(&pool, &any).await;
        let d = error(
            &pool,
            &lease,
            403,
            &[],
            "<html><body>blocked by proxy</body></html>",
        );
        assert_eq!(
            d,
            Disposition::Failover {
                cooldown: Cooldown::None,
                reason: FailoverReason::Forbidden
            }
        );
    }
    assert_eq!(pool.statuses()[0].state, AccountState::Ready);
}

#[tokio::test(start_paused = true)]
async fn api_key_401_benches_with_back_off_and_a_success_resets_it() {
    let pool = pool(vec![key("a", 0, 4)]);
    let unauthorized = |pool: &Pool| {
        let pool = pool.clone();
        async move {
            let lease = pick(&pool, &Selection::default()).await;
            error(
                &pool,
                &lease,
                401,
                &[],
                r#"{"error":{"code":"invalid_api_key"}}"#,
            );
            match pool.statuses()[0].state {
                AccountState::CoolingDown {
                    reason: FailoverReason::Unauthorized,
                    remaining,
                    ..
                } => remaining,
                other => panic!("{other:?}"),
            }
        }
    };
    let first = unauthorized(&pool).await;
    assert_eq!(first, Duration::from_secs(30));
    let err = pool.acquire(&Selection::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            AccountsError::AllUnavailable {
                kind: Unavailable::Overloaded,
                retry_after: Some(_),
            }
        ),
        "{err:?}"
    );
    tokio::time::advance(first).await;
    assert!(pool.is_ready());
    assert_eq!(unauthorized(&pool).await, Duration::from_secs(60));
    tokio::time::advance(Duration::from_secs(60)).await;
    let lease = pick(&pool, &Selection::default()).await;
    pool.on_success(&lease, &http::HeaderMap::new());
    drop(lease);
    assert_eq!(unauthorized(&pool).await, Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn waits_for_a_free_slot_then_gives_up() {
    let pool = pool(vec![key("a", 0, 1)]);
    let any = Selection::default();
    let held = pick(&pool, &any).await;
    let start = Instant::now();
    let (second, ()) = tokio::join!(pool.acquire(&any), async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(held);
    });
    assert_eq!(second.unwrap().name(), "a");
    assert_eq!(start.elapsed(), Duration::from_secs(2));

    let _held = pick(&pool, &any).await;
    let start = Instant::now();
    let err = pool.acquire(&any).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert!(
        matches!(err, AccountsError::AllUnavailable { kind: Unavailable::Overloaded, retry_after: Some(d) } if d == Duration::from_secs(1)),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_busy_pool_picks_up_an_account_whose_cooldown_ends() {
    let pool = pool(vec![key("a", 0, 1), key("b", 0, 1)]);
    let any = Selection::default();
    let a = pick(&pool, &any).await;
    let _b = pick(&pool, &any).await;
    error(&pool, &a, 429, &[("retry-after", "3")], "");
    drop(a);
    // b is busy and a cools down: the waiter wakes when a's cooldown ends.
    let start = Instant::now();
    let next = pick(&pool, &any).await;
    assert_eq!(
        (next.name(), start.elapsed()),
        ("a", Duration::from_secs(3))
    );
}

#[tokio::test(start_paused = true)]
async fn pool_mode_retries_the_same_account_then_fails_over() {
    let mut pooled = key("relay", 0, 4);
    pooled.pool_mode = true;
    let pool = pool(vec![pooled]);
    let lease = pick(&pool, &Selection::default()).await;
    let mut got = Vec::new();
    for retries in 0..4 {
        got.push(pool.on_upstream_error(
            &lease,
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            b"",
            retries,
        ));
    }
    let retry = Disposition::RetrySameAccount {
        after: Duration::from_millis(500),
        reason: FailoverReason::RateLimited,
    };
    assert_eq!(
        got,
        [
            retry,
            retry,
            retry,
            Disposition::Failover {
                cooldown: Cooldown::For {
                    duration: Duration::from_secs(5),
                    kind: CooldownKind::RateLimited
                },
                reason: FailoverReason::RateLimited
            }
        ]
    );
    // Same-account retries leave the account alone; only the final failover cools it down.
    assert_eq!(pool.available("relay"), Some(false));
}

#[tokio::test(start_paused = true)]
async fn oauth_429_storm_detection() {
    let pool = pool(vec![oauth("o"), key("k", 0, 64)]);
    let o = pick(&pool, &Selection::default()).await;
    assert_eq!(o.name(), "o");
    let k = pick(
        &pool,
        &Selection {
            preferred: Some("k"),
            exclude: &[],
        },
    )
    .await;
    for _ in 0..30 {
        error(&pool, &k, 429, &[], "");
    }
    assert!(!pool.in_rate_limit_storm(), "API-key 429s don't count");
    for _ in 0..19 {
        error(&pool, &o, 429, &[], "");
    }
    assert!(!pool.in_rate_limit_storm());
    error(&pool, &o, 429, &[], "");
    assert!(pool.in_rate_limit_storm());
    advance(Duration::from_secs(10)).await;
    assert!(!pool.in_rate_limit_storm());
}

#[tokio::test(start_paused = true)]
async fn success_records_codex_usage_for_oauth_only() {
    let pool = pool(vec![oauth("o"), key("k", 1, 4)]);
    let usage_headers = headers(&[
        ("x-codex-primary-used-percent", "12"),
        ("x-codex-primary-window-minutes", "300"),
        ("x-codex-primary-reset-after-seconds", "100"),
    ]);
    let o = pick(&pool, &Selection::default()).await;
    let k = pick(
        &pool,
        &Selection {
            preferred: Some("k"),
            exclude: &[],
        },
    )
    .await;
    pool.on_success(&o, &usage_headers);
    pool.on_success(&k, &usage_headers);
    let snapshots = pool.codex_usage();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].0, "o");
    assert_eq!(snapshots[0].1.observed_at, Instant::now());
    assert_eq!(
        snapshots[0]
            .1
            .usage
            .five_hour
            .and_then(|w| w.reset_after_seconds),
        Some(100)
    );
}

#[tokio::test(start_paused = true)]
async fn stream_failures_before_output_apply_cooldowns() {
    let pool = pool(vec![key("a", 0, 4)]);
    let lease = pick(&pool, &Selection::default()).await;
    let event = ferry_testkit::ev_failed("resp_1", "rate_limit_exceeded", "Rate limit reached");
    let d = pool.on_stream_failure(&lease, event.to_string().as_bytes(), 0);
    assert_eq!(d.reason(), Some(FailoverReason::RateLimited));
    assert_eq!(pool.available("a"), Some(false));
    advance(Duration::from_secs(5)).await;
    assert_eq!(pool.available("a"), Some(true));
}

#[test]
fn invalid_configs_are_rejected() {
    let err = Pool::new(vec![key("a", 0, 0)], PoolOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "account \"a\": concurrency: must be at least 1"
    );
}

fn shared_pool(store: Arc<dyn Store>, accounts: Vec<AccountConfig>) -> Pool {
    let opts = PoolOptions {
        shared_slots: Some(SharedSlots::new(store)),
        ..PoolOptions::default()
    };
    Pool::new(accounts, opts).unwrap()
}

#[tokio::test(start_paused = true)]
async fn replicas_share_concurrency_slots_through_the_store() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(MemoryLimits::default()));
    // Two replicas, each with a local limit of 2, sharing a limit of 2 for "a".
    let replica1 = shared_pool(Arc::clone(&store), vec![key("a", 0, 2), key("b", 1, 2)]);
    let replica2 = shared_pool(Arc::clone(&store), vec![key("a", 0, 2), key("b", 1, 2)]);
    let any = Selection::default();
    let first = pick(&replica1, &any).await;
    let second = pick(&replica1, &any).await;
    assert_eq!(names(&[first, second]), ["a", "a"]);
    // Store slots are given back by a spawned task: let it run.
    tokio::time::sleep(Duration::from_millis(1)).await;
    // Both leases above were dropped: each replica now takes one of a's two shared slots.
    let held = [pick(&replica1, &any).await, pick(&replica2, &any).await];
    assert_eq!(names(&held), ["a", "a"]);
    // "a" is full across replicas although replica2 holds only one local slot: b is used.
    assert_eq!(pick(&replica2, &any).await.name(), "b");

    // Only b left and it is full everywhere: replica2 waits until replica1 releases a.
    let only_a = ["b".to_owned()];
    let sel = Selection {
        preferred: None,
        exclude: &only_a,
    };
    let start = Instant::now();
    let [one, two] = held;
    let (waited, ()) = tokio::join!(pick(&replica2, &sel), async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(one);
    });
    assert_eq!(waited.name(), "a");
    assert!(
        start.elapsed() >= Duration::from_secs(1) && start.elapsed() <= Duration::from_millis(1250),
        "{:?}",
        start.elapsed()
    );
    drop(two);
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_outlived_its_shared_slot_frees_only_its_own() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(MemoryLimits::default()));
    let short = |store: &Arc<dyn Store>| {
        let opts = PoolOptions {
            shared_slots: Some(SharedSlots {
                ttl: Duration::from_secs(60),
                ..SharedSlots::new(Arc::clone(store))
            }),
            ..PoolOptions::default()
        };
        Pool::new(vec![key("a", 0, 1), key("b", 1, 1)], opts).unwrap()
    };
    let (replica1, replica2) = (short(&store), short(&store));
    let any = Selection::default();
    // Replica 1's request outlives the slot's TTL (a long stream): replica 2 then takes a.
    let long = pick(&replica1, &any).await;
    assert_eq!(long.name(), "a");
    advance(Duration::from_secs(61)).await;
    let next = pick(&replica2, &any).await;
    assert_eq!(next.name(), "a");
    // The long request ends: its late release must not free replica 2's slot.
    drop(long);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let third = pick(&replica1, &any).await;
    assert_eq!(third.name(), "b", "a is still held by replica 2");
    drop((next, third));
}

/// A store whose every operation fails, like an unreachable Redis.
#[derive(Debug)]
struct DownStore;

fn down<T>() -> BoxFuture<'static, Result<T, StoreError>> {
    Box::pin(async {
        Err(StoreError::Redis {
            op: "acquire_slot",
            reason: "connection refused".into(),
        })
    })
}

impl Store for DownStore {
    fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        down()
    }
    fn get_many<'a>(
        &'a self,
        _: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        down()
    }
    fn set<'a>(
        &'a self,
        _: &'a str,
        _: &'a [u8],
        _: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        down()
    }
    fn delete<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        down()
    }
    fn try_acquire_slot<'a>(
        &'a self,
        _: &'a str,
        _: u32,
        _: Duration,
    ) -> BoxFuture<'a, Result<Option<SlotToken>, StoreError>> {
        down()
    }
    fn release_slot<'a>(
        &'a self,
        _: &'a str,
        _: &'a SlotToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        down()
    }
    fn backend(&self) -> &'static str {
        "down"
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_falls_back_to_local_limits() {
    let pool = shared_pool(Arc::new(DownStore), vec![key("a", 0, 1)]);
    let any = Selection::default();
    let held = pick(&pool, &any).await;
    assert_eq!(held.name(), "a");
    let err = pool.acquire(&any).await.unwrap_err();
    assert!(
        matches!(
            err,
            AccountsError::AllUnavailable {
                kind: Unavailable::Overloaded,
                ..
            }
        ),
        "{err:?}"
    );
    drop(held);
    assert_eq!(pick(&pool, &any).await.name(), "a");
}

/// The admin snapshot: a cooldown's cause and end, in-flight counts, and the last errors
/// (bounded, oldest first), transport failures included.
#[tokio::test(start_paused = true)]
async fn snapshot_shows_cooldowns_in_flight_and_the_last_errors() {
    let pool = pool(vec![key("a", 0, 2), key("b", 1, 3)]);
    let any = Selection::default();
    let lease = pick(&pool, &any).await;
    let before = super::support::now_unix();
    let d = error(&pool, &lease, 429, &[("retry-after", "30")], "");
    drop(lease);
    let held = pick(&pool, &any).await;
    assert_eq!(held.name(), "b");
    let [a, b] = <[_; 2]>::try_from(pool.snapshot()).unwrap();
    assert_eq!(
        (a.name.as_str(), a.priority, a.concurrency, a.in_flight),
        ("a", 0, 2, 0)
    );
    assert_eq!(
        a.state,
        AccountState::CoolingDown {
            kind: CooldownKind::RateLimited,
            reason: FailoverReason::RateLimited,
            remaining: Duration::from_secs(30)
        }
    );
    let until = a.cooldown_until_unix.unwrap();
    assert!(
        (before + 30..=before + 32).contains(&until),
        "{until} vs {before}"
    );
    assert_eq!(
        a.last_errors
            .iter()
            .map(|e| (e.status, e.disposition))
            .collect::<Vec<_>>(),
        [(Some(429), d)]
    );
    assert!(a.last_errors[0].at_unix >= before);
    assert_eq!(
        (
            b.in_flight,
            b.state,
            b.cooldown_until_unix,
            b.last_errors.len()
        ),
        (1, AccountState::Ready, None, 0)
    );
    assert_eq!(b.codex_usage, None);

    // Only the last few errors are kept; a transport failure is one of them.
    for _ in 0..ferry_accounts::LAST_ERRORS {
        error(&pool, &held, 500, &[], "");
    }
    let t = pool.on_transport_failure(&held, ferry_accounts::TransportFailure::Connect);
    let b = &pool.snapshot()[1];
    assert_eq!(b.last_errors.len(), ferry_accounts::LAST_ERRORS);
    assert_eq!(
        b.last_errors.last().map(|e| (e.status, e.disposition)),
        Some((None, t))
    );
    assert_eq!(b.last_errors[0].status, Some(500));
}
