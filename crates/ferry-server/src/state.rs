//! Process-wide state shared by every request.

use tokio::sync::watch;

use crate::config::Config;
use crate::error::Error;
use crate::metrics::Metrics;

/// Everything a request handler needs, built once at start-up.
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) metrics: Metrics,
    pub(crate) shutdown: Shutdown,
}

impl AppState {
    pub(crate) async fn new(config: Config) -> Result<std::sync::Arc<Self>, Error> {
        let metrics = Metrics::new();
        for a in &config.accounts {
            metrics.account_available.set([a.name.as_str()], 1);
        }
        Ok(std::sync::Arc::new(Self {
            config,
            metrics,
            shutdown: Shutdown::new(),
        }))
    }

    /// Accounts that can take traffic now.
    pub(crate) fn available_accounts(&self) -> usize {
        self.config.accounts.len()
    }
}

/// Tells open streams that the shutdown grace period is over.
pub(crate) struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    pub(crate) fn force_close(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once [`Shutdown::force_close`] was called.
    pub(crate) fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }
}
