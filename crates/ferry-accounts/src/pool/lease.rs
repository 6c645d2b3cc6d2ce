//! A lease on one account's concurrency slot: the credential for its requests (OAuth refresh
//! included) and the slot's release, local and shared, on drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_session::SlotToken;
use tokio::time::Instant;

use super::{Account, AccountError, Inner, SharedSlots};
use crate::classify::{Cooldown, CooldownKind, Disposition, FailoverReason};
use crate::config::{AccountConfig, AccountKind, Secret};
use crate::error::AccountsError;

/// How long a transient token-refresh failure keeps an OAuth account out of rotation.
pub const REFRESH_FAILURE_COOLDOWN: Duration = Duration::from_secs(30);

/// A reserved concurrency slot on one account, released on drop.
#[derive(Debug)]
pub struct Lease {
    pub(super) pool: Arc<Inner>,
    pub(super) account: Arc<Account>,
    pub(super) generation: AtomicU64,
    /// The store slot this lease holds, if shared slots are on and the store answered.
    pub(super) shared: Option<SlotToken>,
}

/// The credential for one upstream request.
#[derive(Clone, Debug)]
pub struct Credential {
    /// The bearer token (API key or OAuth access token).
    pub token: Secret,
    /// OAuth: the ChatGPT account id for the `chatgpt-account-id` header.
    pub chatgpt_account_id: Option<String>,
    /// OAuth: the current refresh token. It is never sent upstream with a request; it is
    /// here so the caller can redact it (it rotates on refresh) from upstream text.
    pub refresh_token: Option<Secret>,
}

impl Lease {
    /// The leased account.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The leased account's config.
    pub fn config(&self) -> &AccountConfig {
        &self.account.config
    }

    /// The leased account's name.
    pub fn name(&self) -> &str {
        &self.account.config.name
    }

    /// The credential for the next upstream request on this account. OAuth accounts refresh
    /// their access token when it is about to expire or was rejected (single flight).
    ///
    /// A failed refresh disables the account (invalid refresh token) or cools it down for
    /// [`REFRESH_FAILURE_COOLDOWN`]; the error's [`AccountsError::is_account_failure`] is then
    /// true and the server fails over.
    pub async fn credential(&self) -> Result<Credential, AccountsError> {
        let account = &self.account;
        match account.config.kind {
            AccountKind::ApiKey => account
                .config
                .api_key
                .clone()
                .filter(|k| !k.is_blank())
                .map(|token| Credential {
                    token,
                    chatgpt_account_id: None,
                    refresh_token: None,
                })
                .ok_or_else(|| AccountsError::MissingCredential {
                    account: account.config.name.clone(),
                }),
            AccountKind::Oauth => {
                let Some(oauth) = &account.oauth else {
                    return Err(AccountsError::MissingCredential {
                        account: account.config.name.clone(),
                    });
                };
                match oauth.access_token().await {
                    Ok(token) => {
                        self.generation.store(token.generation, Ordering::Release);
                        Ok(Credential {
                            token: token.token,
                            chatgpt_account_id: token.chatgpt_account_id,
                            refresh_token: token.refresh_token,
                        })
                    }
                    Err(err) => {
                        match &err {
                            AccountsError::TokenRefresh {
                                permanent: true, ..
                            }
                            | AccountsError::MissingCredential { .. } => {
                                account.disable(FailoverReason::TokenRefresh);
                                account.note_error(AccountError::now(
                                    None,
                                    Disposition::Failover {
                                        cooldown: Cooldown::Disabled,
                                        reason: FailoverReason::TokenRefresh,
                                    },
                                ));
                            }
                            _ => {
                                account.set_cooldown(
                                    Instant::now() + REFRESH_FAILURE_COOLDOWN,
                                    CooldownKind::Error,
                                    FailoverReason::TokenRefresh,
                                );
                                account.note_error(AccountError::now(
                                    None,
                                    Disposition::Failover {
                                        cooldown: Cooldown::For {
                                            duration: REFRESH_FAILURE_COOLDOWN,
                                            kind: CooldownKind::Error,
                                        },
                                        reason: FailoverReason::TokenRefresh,
                                    },
                                ));
                            }
                        }
                        Err(err)
                    }
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.account.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Some(token) = self.shared.take() {
            self.release_shared(token);
        }
        self.pool.released.notify_waiters();
    }
}

impl Lease {
    fn release_shared(&self, token: SlotToken) {
        let Some(slots) = self.pool.opts.shared_slots.clone() else {
            return;
        };
        let key = SharedSlots::key(self.account.name());
        let account = self.account.name().to_owned();
        match tokio::runtime::Handle::try_current() {
            // Outlives the request on purpose: Drop cannot await, and the store slot must be
            // given back even though the request that held it is gone. It is one short store
            // call; if it fails, the slot's TTL frees it.
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(err) = slots.store.release_slot(&key, &token).await {
                        tracing::warn!(account = %account, error = %err, "cannot release shared concurrency slot; it expires with its ttl");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(account = %account, "no runtime to release the shared concurrency slot; it expires with its ttl");
            }
        }
    }
}

impl AccountsError {
    /// True when the error is about the leased account (its credential could not be obtained):
    /// exclude it and fail over ([`FailoverReason::TokenRefresh`]).
    pub fn is_account_failure(&self) -> bool {
        matches!(
            self,
            Self::TokenRefresh { .. } | Self::MissingCredential { .. }
        )
    }
}
