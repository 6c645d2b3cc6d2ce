//! The Codex turn state (`x-codex-turn-state`) of a session: stored from an upstream
//! answer, sent with the next request of OAuth accounts.

use super::records::{TurnRecord, VERSION, turn_key};
use super::{SessionRef, Sessions};

impl Sessions {
    /// The `x-codex-turn-state` to send for the session (OAuth accounts), if one is bound.
    pub async fn turn_state(&self, session: &SessionRef<'_>) -> Option<String> {
        let key = turn_key(&session.id());
        let record: TurnRecord = self.read("turn_state", &key).await?;
        if record.state.trim().is_empty() {
            self.remove("turn_state", &key).await;
            return None;
        }
        Some(record.state)
    }

    /// Binds the `x-codex-turn-state` the upstream returned. A blank state removes the
    /// binding; a state over the store's value limit is not stored (and removes the old
    /// one). Returns whether the state was stored.
    pub async fn bind_turn_state(&self, session: &SessionRef<'_>, state: &str) -> bool {
        let key = turn_key(&session.id());
        if state.trim().is_empty() {
            self.remove("bind_turn_state", &key).await;
            return false;
        }
        self.write(
            "bind_turn_state",
            &key,
            &TurnRecord {
                v: VERSION,
                state: state.to_owned(),
            },
        )
        .await
    }
}
