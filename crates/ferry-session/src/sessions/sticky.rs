//! The sticky account: which account a session was last served by, and where its
//! conversation stood then.

use super::Sessions;
use super::records::{StickyRecord, VERSION, sticky_key};
use crate::keys::DigestChain;

/// The account a session is bound to, and where its conversation stood then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyBinding {
    /// The account (its configured name).
    pub account: String,
    /// Length of the digest chain of the last request served.
    pub chain_len: usize,
    /// [`DigestChain::prefix_id`] of that chain.
    pub chain_id: String,
}

impl Sessions {
    /// The account the session was last served by, if the binding is alive.
    pub async fn sticky_account(
        &self,
        client_key_id: &str,
        cache_key: &str,
    ) -> Option<StickyBinding> {
        let record: StickyRecord = self
            .read("sticky_account", &sticky_key(client_key_id, cache_key))
            .await?;
        Some(StickyBinding {
            account: record.account,
            chain_len: record.len,
            chain_id: record.chain,
        })
    }

    /// Binds the session to the account that served it (refreshing the time to live),
    /// remembering where the conversation stood.
    pub async fn bind_sticky_account(
        &self,
        client_key_id: &str,
        cache_key: &str,
        account: &str,
        chain: &DigestChain,
    ) -> bool {
        let record = StickyRecord {
            v: VERSION,
            account: account.to_owned(),
            len: chain.len(),
            chain: chain.id().unwrap_or_default(),
        };
        self.write(
            "bind_sticky_account",
            &sticky_key(client_key_id, cache_key),
            &record,
        )
        .await
    }

    /// Removes the session's sticky binding if it points at `account` (after a failover
    /// away from it). Returns whether a binding was removed.
    pub async fn clear_sticky_account_if(
        &self,
        client_key_id: &str,
        cache_key: &str,
        account: &str,
    ) -> bool {
        let key = sticky_key(client_key_id, cache_key);
        match self
            .read::<StickyRecord>("clear_sticky_account", &key)
            .await
        {
            Some(record) if record.account == account => {
                self.remove("clear_sticky_account", &key).await;
                true
            }
            _ => false,
        }
    }
}
