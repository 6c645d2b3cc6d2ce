//! `ferry-relay`: a byte-level TCP relay, the floor of the gateway benchmark
//! (`cargo xtask bench-gateway`).
//!
//! ```text
//! ferry-relay LISTEN_ADDR TARGET_ADDR
//! ```
//!
//! Every accepted connection gets its own connection to `TARGET_ADDR`, and bytes are copied
//! both ways until either side closes. It parses nothing, so what it adds to a request's
//! latency is what any process in the middle costs on the machine: two more socket hops and
//! the wake-ups of a process on another core. Measured next to a gateway in the same run,
//! it splits the gateway's added latency into that floor and the gateway's own work.
//!
//! It prints `ferry-relay listening on http://ADDR` to stderr once ready, and runs on one
//! thread, as the gateways in the benchmark are pinned to one core.
#![forbid(unsafe_code)]

use std::io::Write as _;

use tokio::net::{TcpListener, TcpStream};

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(target), None) = (args.next(), args.next(), args.next()) else {
        let _ = writeln!(
            std::io::stderr().lock(),
            "ferry-relay: usage: ferry-relay LISTEN_ADDR TARGET_ADDR"
        );
        return std::process::ExitCode::FAILURE;
    };
    let run = || -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(serve(&listen, target))
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "ferry-relay: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(listen: &str, target: String) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let _ = writeln!(
        std::io::stderr().lock(),
        "ferry-relay listening on http://{}",
        listener.local_addr()?
    );
    loop {
        let (mut client, _) = listener.accept().await?;
        let target = target.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "one task per relayed connection, for as long as the client keeps it open"
        )]
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            let Ok(mut upstream) = TcpStream::connect(&target).await else {
                return;
            };
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}
