//! The simulated upstream behind `simulated` accounts: one `ferry-sim` server on a
//! loopback port, started when the config has such an account (at [`crate::bind`] or on a
//! reload) and stopped with the gateway. A simulated account is an ordinary API-key account
//! whose `base_url` is [`SIMULATED_BASE_URL`]; this module points it at the running
//! simulator, so its requests take the same path as any upstream's (real HTTP, loopback).

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::config::{Config, SIMULATED_BASE_URL};
use crate::error::StartError;

/// A running simulator; dropping it stops it.
pub(crate) struct EmbeddedSim {
    base_url: String,
    _stop: oneshot::Sender<()>,
}

impl EmbeddedSim {
    /// Starts the simulator on `127.0.0.1:0`. Needs a running tokio runtime.
    fn start() -> Result<Self, StartError> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| StartError::Startup(format!("simulated upstream: {e}")))?;
        let addr = std_listener
            .local_addr()
            .map_err(|e| StartError::Startup(format!("simulated upstream: {e}")))?;
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .map_err(|e| StartError::Startup(format!("simulated upstream: {e}")))?;
        let (stop, stopped) = oneshot::channel::<()>();
        #[expect(
            clippy::disallowed_methods,
            reason = "the simulator serves for the gateway's lifetime; dropping EmbeddedSim stops it"
        )]
        tokio::spawn(ferry_sim::run_sim_upstream(
            listener,
            ferry_sim::SimOptions::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        tracing::info!(target: "ferry::sim", %addr, "built-in simulated upstream started");
        Ok(Self {
            base_url: format!("http://{addr}/v1"),
            _stop: stop,
        })
    }
}

/// The simulator of one gateway, started on first need and kept across reloads.
#[derive(Default)]
pub(crate) struct SimSlot(Mutex<Option<Arc<EmbeddedSim>>>);

impl SimSlot {
    /// Points every simulated account of `config` at the simulator, starting it first if
    /// this is the first config that has one.
    pub(crate) fn resolve(&self, config: &mut Config) -> Result<(), StartError> {
        let wanted = config
            .accounts
            .iter()
            .any(|a| a.base_url.as_deref() == Some(SIMULATED_BASE_URL));
        if !wanted {
            return Ok(());
        }
        let sim = {
            let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            match slot.as_ref() {
                Some(sim) => Arc::clone(sim),
                None => {
                    let sim = Arc::new(EmbeddedSim::start()?);
                    *slot = Some(Arc::clone(&sim));
                    sim
                }
            }
        };
        for a in &mut config.accounts {
            if a.base_url.as_deref() == Some(SIMULATED_BASE_URL) {
                a.base_url = Some(sim.base_url.clone());
            }
        }
        Ok(())
    }
}
