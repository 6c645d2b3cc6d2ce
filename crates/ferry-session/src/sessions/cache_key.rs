//! The prompt cache key of a request (explicit key, Claude Code session, `cache_control`
//! anchors, digest chain) and the digest-chain bindings that keep it stable across turns.

use ferry_apicompat::anthropic;

use super::Sessions;
use super::records::{ChainRecord, VERSION, chain_key, decode};
use crate::keys::{self, ClientHeaders, DigestChain, KeySource};

/// The prompt cache key of a request, with what ferry needs to keep it stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKey {
    /// The key: sent as `prompt_cache_key`, and the seed of the upstream session id
    /// ([`keys::session_uuid`]).
    pub key: String,
    /// Where it came from.
    pub source: KeySource,
    /// The request's digest chain (bound to the key after a success).
    pub chain: DigestChain,
    /// The earlier conversation this one extends, if a binding was found.
    pub chain_match: Option<ChainMatch>,
}

impl ResolvedKey {
    /// Whether the key goes upstream for this (mapped) upstream model: an explicit key
    /// always does, a derived one only for models where [`keys::should_auto_inject`]
    /// holds.
    pub fn applies_to(&self, upstream_model: &str) -> bool {
        self.source == KeySource::Explicit || keys::should_auto_inject(upstream_model)
    }
}

/// The longest prefix of a request's digest chain that has a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainMatch {
    /// The key that conversation ran under.
    pub key: String,
    /// Parts in the matched prefix.
    pub len: usize,
}

impl Sessions {
    /// The prompt cache key of a request, in the reference order: an explicit client key,
    /// the Claude Code session, the `cache_control` anchors ([`keys::identity_key`]), and
    /// last the digest chain: the key of the longest earlier conversation (of this client
    /// key) that this one extends, or a fresh key.
    ///
    /// The chain lookup runs for every source (one `MGET` on Redis), so that a
    /// conversation that moves to another key is seen ([`ResolvedKey::chain_match`]).
    /// Does not look at the model: see [`ResolvedKey::applies_to`]. `None` only for a
    /// request with neither an identity nor any content.
    pub async fn resolve_cache_key(
        &self,
        req: &anthropic::MessagesRequest,
        headers: &ClientHeaders<'_>,
        client_key_id: &str,
    ) -> Option<ResolvedKey> {
        let chain = DigestChain::from_request(req);
        let chain_match = self.lookup_chain(client_key_id, &chain).await;
        let (key, source) = match keys::identity_key(req, headers) {
            Some(found) => found,
            None => match &chain_match {
                Some(m) => (m.key.clone(), KeySource::Digest),
                None => (chain.fresh_key()?, KeySource::Digest),
            },
        };
        Some(ResolvedKey {
            key,
            source,
            chain,
            chain_match,
        })
    }

    async fn lookup_chain(&self, client_key_id: &str, chain: &DigestChain) -> Option<ChainMatch> {
        if chain.is_empty() {
            return None;
        }
        let ids: Vec<String> = (1..=chain.len())
            .rev()
            .filter_map(|len| chain.prefix_id(len))
            .map(|id| chain_key(client_key_id, &id))
            .collect();
        let values = match self.store.get_many(&ids).await {
            Ok(v) => v,
            Err(e) => {
                self.failed("lookup_chain", &e);
                return None;
            }
        };
        values
            .iter()
            .zip((1..=chain.len()).rev())
            .find_map(|(value, len)| {
                let record: ChainRecord = decode(value.as_deref()?)?;
                (!record.key.trim().is_empty()).then_some(ChainMatch {
                    key: record.key,
                    len,
                })
            })
    }

    /// Records that the request's conversation ran under its key, so a later turn that
    /// extends it finds the key again. The binding moves forward: the entry of the
    /// shorter chain this request matched is removed.
    pub async fn bind_chain(&self, client_key_id: &str, resolved: &ResolvedKey) -> bool {
        let Some(id) = resolved.chain.id() else {
            return false;
        };
        let record = ChainRecord {
            v: VERSION,
            key: resolved.key.clone(),
        };
        let stored = self
            .write("bind_chain", &chain_key(client_key_id, &id), &record)
            .await;
        if let Some(m) = &resolved.chain_match
            && m.len != resolved.chain.len()
            && let Some(old) = resolved.chain.prefix_id(m.len)
        {
            self.remove("bind_chain", &chain_key(client_key_id, &old))
                .await;
        }
        stored
    }
}
