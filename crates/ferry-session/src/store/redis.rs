//! The Redis store: state shared by every replica.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{BoxFuture, SlotToken, Store, stored_key};
use crate::StoreError;

/// Atomically drops expired holders of a slot, then takes one if fewer than `limit` are
/// held. Holders are the members of a sorted set, named by their [`SlotToken`] and scored
/// by their expiry in server milliseconds (`TIME`), so a holder that never releases stops
/// counting after `ttl`. The set itself lives as long as its last-expiring holder.
/// KEYS[1] = slot key; ARGV = limit, ttl in ms, the new holder's token.
/// `INCRBY`, and the window's expiry when this add created the counter.
const ADD_COUNTER: &str = r"
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v == tonumber(ARGV[1]) or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
";

const ACQUIRE_SLOT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(last[2]) - now, 1))
return 1
";

/// Drops expired holders and the holder named ARGV[1] (and no other); deletes the set
/// when empty. KEYS[1] = slot key.
const RELEASE_SLOT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
end
return 1
";

/// Settings of a [`RedisStore`]. `Debug` shows the URL with its password redacted.
#[derive(Clone, PartialEq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://`).
    pub url: String,
    /// Prepended to every key, so several deployments can share one server
    /// (default `ferry:`).
    pub key_prefix: String,
    /// Largest value accepted (default 64 KiB); a larger one is refused.
    pub max_value_bytes: usize,
    /// Longest key (before the prefix) stored as is (default 512); a longer one is
    /// stored as `sha256:<hex>`.
    pub max_key_bytes: usize,
    /// How long one command may take before it fails (default 2 s).
    pub response_timeout: Duration,
    /// How long connecting may take (default 2 s).
    pub connect_timeout: Duration,
    /// [`super::BreakerStore`]: longest wait for one operation before the breaker opens and
    /// the store serves on local state (default 250 ms).
    pub op_timeout: Duration,
    /// [`super::BreakerStore`]: how often Redis is probed while the breaker is open (1 s).
    pub probe_interval: Duration,
}

impl RedisConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: "ferry:".to_owned(),
            max_value_bytes: 64 << 10,
            max_key_bytes: 512,
            response_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            op_timeout: Duration::from_millis(250),
            probe_interval: Duration::from_secs(1),
        }
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("key_prefix", &self.key_prefix)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("max_key_bytes", &self.max_key_bytes)
            .field("response_timeout", &self.response_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("op_timeout", &self.op_timeout)
            .field("probe_interval", &self.probe_interval)
            .finish()
    }
}

/// The Redis [`Store`]: every key is `<prefix><key>`, every key has a time to live
/// (`SET … PX`, `PEXPIRE`), slots are sorted sets updated by Lua scripts (atomic).
/// Commands go through one multiplexed [`ConnectionManager`] that reconnects by itself.
#[derive(Clone)]
pub struct RedisStore {
    con: ConnectionManager,
    config: RedisConfig,
    /// The URL's password, to scrub from any error text.
    password: Option<String>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server (once, so a wrong address fails here, at start-up).
    pub async fn connect(config: RedisConfig) -> Result<Self, StoreError> {
        let password = url_password(&config.url).map(str::to_owned);
        let scrub = |e: &redis::RedisError| scrub_secret(&e.to_string(), password.as_deref());
        let client =
            redis::Client::open(config.url.as_str()).map_err(|e| StoreError::InvalidUrl {
                url: config.redacted_url(),
                reason: scrub(&e),
            })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connect_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let con = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(|e| StoreError::Connect {
                url: config.redacted_url(),
                reason: scrub(&e),
            })?;
        Ok(Self {
            con,
            config,
            password,
        })
    }

    /// The settings this store was opened with.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    fn key(&self, key: &str) -> String {
        format!(
            "{}{}",
            self.config.key_prefix,
            stored_key(key, self.config.max_key_bytes)
        )
    }

    fn error(&self, op: &'static str, e: &redis::RedisError) -> StoreError {
        StoreError::Redis {
            op,
            reason: scrub_secret(&e.to_string(), self.password.as_deref()),
        }
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut con = self.con.clone();
        cmd.query_async(&mut con)
            .await
            .map_err(|e| self.error(op, &e))
    }
}

/// Milliseconds for `PX` / `PEXPIRE`: at least 1, so a sub-millisecond TTL still expires
/// instead of being rejected.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.key(key));
            self.query("get", &cmd).await
        })
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let mut cmd = redis::cmd("MGET");
            for key in keys {
                cmd.arg(self.key(key));
            }
            self.query("get_many", &cmd).await
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if value.len() > self.config.max_value_bytes {
                self.delete(key).await?;
                return Err(StoreError::ValueTooLarge {
                    len: value.len(),
                    limit: self.config.max_value_bytes,
                });
            }
            if ttl.is_zero() {
                return self.delete(key).await;
            }
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.key(key)).arg(value).arg("PX").arg(millis(ttl));
            self.query::<()>("set", &cmd).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(self.key(key));
            self.query::<()>("delete", &cmd).await
        })
    }

    fn try_acquire_slot<'a>(
        &'a self,
        key: &'a str,
        limit: u32,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<SlotToken>, StoreError>> {
        Box::pin(async move {
            if ttl.is_zero() {
                return Ok(None);
            }
            let token = SlotToken::new();
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(ACQUIRE_SLOT)
                .arg(1)
                .arg(self.key(key))
                .arg(limit)
                .arg(millis(ttl))
                .arg(token.to_string());
            let taken: i64 = self.query("acquire_slot", &cmd).await?;
            Ok((taken == 1).then_some(token))
        })
    }

    fn release_slot<'a>(
        &'a self,
        key: &'a str,
        token: &'a SlotToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(RELEASE_SLOT)
                .arg(1)
                .arg(self.key(key))
                .arg(token.to_string());
            self.query::<i64>("release_slot", &cmd).await.map(drop)
        })
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        by: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(ADD_COUNTER)
                .arg(1)
                .arg(self.key(key))
                .arg(by)
                .arg(millis(ttl).max(1));
            self.query("add", &cmd).await
        })
    }

    fn counter<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.key(key));
            let v: Option<u64> = self.query("counter", &cmd).await?;
            Ok(v.unwrap_or(0))
        })
    }

    fn counters<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<u64>, StoreError>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let mut cmd = redis::cmd("MGET");
            for key in keys {
                cmd.arg(self.key(key));
            }
            let v: Vec<Option<u64>> = self.query("counters", &cmd).await?;
            Ok(v.into_iter().map(Option::unwrap_or_default).collect())
        })
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// The password part of `scheme://user:password@host…`, if any.
pub(crate) fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// `url` with its password replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    match url_password(url) {
        Some(password) => {
            // The password sits between the first ':' after "://" and the last '@' of
            // the authority: rebuild around it rather than replacing text elsewhere.
            let scheme_end = url.find("://").map_or(0, |i| i + 3);
            let start = url[scheme_end..]
                .find(':')
                .map_or(scheme_end, |i| scheme_end + i + 1);
            let end = start + password.len();
            format!("{}***{}", &url[..start], &url[end..])
        }
        None => url.to_owned(),
    }
}

/// `text` with every occurrence of `secret` replaced by `***`.
fn scrub_secret(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "***"),
        _ => text.to_owned(),
    }
}
