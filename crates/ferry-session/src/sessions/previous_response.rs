//! Continuation: the upstream response a session may continue from
//! (`previous_response_id`), and the per-session flag that turns continuation off.

use super::records::{
    ContinuationRecord, ResponseRecord, VERSION, continuation_key, decode, response_key,
};
use super::{SessionRef, Sessions};
use crate::keys::DigestChain;

/// How many "previous response not found" answers within one session's lifetime turn
/// continuation off for it.
const NOT_FOUND_STRIKES: u32 = 2;

/// The upstream response a session can continue from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBinding {
    /// The upstream response id.
    pub response_id: String,
    /// Length of the digest chain of the request that got the response.
    pub chain_len: usize,
    /// [`DigestChain::prefix_id`] of that chain.
    pub chain_id: String,
}

impl Sessions {
    /// The upstream response this request may continue from, as `previous_response_id`.
    ///
    /// `None` when continuation is disabled for the session, when no response is bound,
    /// or when the request does not continue the conversation that got the bound
    /// response ([`DigestChain::continues`]): that happens when two conversations share a
    /// key (Claude Code's sub-agents and side requests share its session), after the
    /// client compacted or edited its history, or when another request of the session
    /// ran in between. Sending the id then would splice the new turn onto the wrong
    /// conversation.
    pub async fn previous_response_id(
        &self,
        session: &SessionRef<'_>,
        chain: &DigestChain,
    ) -> Option<String> {
        let id = session.id();
        let keys = [continuation_key(&id), response_key(&id)];
        let values = match self.store.get_many(&keys).await {
            Ok(v) => v,
            Err(e) => {
                self.failed("previous_response_id", &e);
                return None;
            }
        };
        let cont: Option<ContinuationRecord> = values.first()?.as_deref().and_then(decode);
        if cont.is_some_and(|c| c.disabled) {
            return None;
        }
        let record: ResponseRecord = values.get(1)?.as_deref().and_then(decode)?;
        if record.id.trim().is_empty() {
            self.remove("previous_response_id", &keys[1]).await;
            return None;
        }
        chain
            .continues(record.len, &record.chain)
            .then_some(record.id)
    }

    /// The stored response binding as it is (no continuation check); for diagnostics.
    pub async fn response_binding(&self, session: &SessionRef<'_>) -> Option<ResponseBinding> {
        let record: ResponseRecord = self
            .read("response_binding", &response_key(&session.id()))
            .await?;
        Some(ResponseBinding {
            response_id: record.id,
            chain_len: record.len,
            chain_id: record.chain,
        })
    }

    /// Binds the upstream response id of a successful turn, with the digest chain of the
    /// request that got it. When continuation is disabled for the session, nothing is
    /// bound (the disabled flag's time to live is refreshed instead). Returns whether an
    /// id was bound.
    pub async fn bind_response_id(
        &self,
        session: &SessionRef<'_>,
        response_id: &str,
        chain: &DigestChain,
    ) -> bool {
        let id = session.id();
        let response_id = response_id.trim();
        let cont_key = continuation_key(&id);
        if let Some(cont) = self
            .read::<ContinuationRecord>("bind_response_id", &cont_key)
            .await
            && cont.disabled
        {
            self.write("bind_response_id", &cont_key, &cont).await;
            self.remove("bind_response_id", &response_key(&id)).await;
            return false;
        }
        if response_id.is_empty() {
            self.remove("bind_response_id", &response_key(&id)).await;
            return false;
        }
        let record = ResponseRecord {
            v: VERSION,
            id: response_id.to_owned(),
            len: chain.len(),
            chain: chain.id().unwrap_or_default(),
        };
        self.write("bind_response_id", &response_key(&id), &record)
            .await
    }

    /// Forgets the bound response id after the upstream said "previous response not
    /// found" (the caller then replays the full history once). A second such answer
    /// within the session's lifetime also disables continuation for it: an upstream that
    /// keeps losing responses (for example one that does not store them) would otherwise
    /// cost two calls per turn. Returns whether continuation is now disabled.
    pub async fn forget_response_id(&self, session: &SessionRef<'_>) -> bool {
        let id = session.id();
        self.remove("forget_response_id", &response_key(&id)).await;
        let cont_key = continuation_key(&id);
        let mut cont = self
            .read::<ContinuationRecord>("forget_response_id", &cont_key)
            .await
            .unwrap_or_default();
        cont.v = VERSION;
        cont.not_found = cont.not_found.saturating_add(1);
        cont.disabled |= cont.not_found >= NOT_FOUND_STRIKES;
        self.write("forget_response_id", &cont_key, &cont).await;
        cont.disabled
    }

    /// Disables continuation for the session (the upstream does not support
    /// `previous_response_id`), and forgets its response id. The turn state is kept.
    pub async fn disable_continuation(&self, session: &SessionRef<'_>) {
        let id = session.id();
        let cont_key = continuation_key(&id);
        let mut cont = self
            .read::<ContinuationRecord>("disable_continuation", &cont_key)
            .await
            .unwrap_or_default();
        cont.v = VERSION;
        cont.disabled = true;
        self.write("disable_continuation", &cont_key, &cont).await;
        self.remove("disable_continuation", &response_key(&id))
            .await;
    }

    /// Whether continuation is disabled for the session (until its flag expires).
    pub async fn is_continuation_disabled(&self, session: &SessionRef<'_>) -> bool {
        self.read::<ContinuationRecord>(
            "is_continuation_disabled",
            &continuation_key(&session.id()),
        )
        .await
        .is_some_and(|c| c.disabled)
    }
}
