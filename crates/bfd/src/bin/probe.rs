//! `metallb-bfd-probe LOCAL PEER [TX_MS RX_MS DETECT_MULT]`: runs one BFD session and prints a
//! line on every change of its status, `status state=Up diag=none remote=Up ...`. SIGTERM stops
//! it gracefully (the session sends AdminDown first); it exits at once when its stdin closes
//! (the test that started it is gone), so it never outlives its test.

use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use metallb_bfd::{Bfd, SessionKey, session::Params};
use tokio::signal::unix::{SignalKind, signal};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (local, peer, params) = match args.as_slice() {
        [local, peer, rest @ ..] => {
            let params = match rest {
                [] => Params::default(),
                [tx, rx, mult] => Params {
                    desired_min_tx: Duration::from_millis(tx.parse().context("TX_MS")?),
                    required_min_rx: Duration::from_millis(rx.parse().context("RX_MS")?),
                    detect_mult: mult.parse().context("DETECT_MULT")?,
                    ..Params::default()
                },
                _ => bail!("usage: metallb-bfd-probe LOCAL PEER [TX_MS RX_MS DETECT_MULT]"),
            };
            (
                local.parse::<IpAddr>().context("LOCAL")?,
                peer.parse::<IpAddr>().context("PEER")?,
                params,
            )
        }
        _ => bail!("usage: metallb-bfd-probe LOCAL PEER [TX_MS RX_MS DETECT_MULT]"),
    };
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let bfd = Bfd::new();
        let key = bfd.add_session(local, peer, params)?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            printed = print_changes(&bfd, key) => printed?,
            _ = terminate.recv() => {}
        }
        bfd.shutdown().await;
        Ok(())
    })
}

async fn print_changes(bfd: &Bfd, key: SessionKey) -> anyhow::Result<()> {
    let mut states = bfd.states();
    loop {
        let status = states.borrow_and_update().get(&key).cloned();
        if let Some(s) = status {
            let c = bfd.counters();
            println!(
                "status state={} diag={} remote={} tx={:?} detect={:?} in={} out={} invalid={:?}",
                s.state.label(),
                s.diag.label(),
                s.remote_state.label(),
                s.tx_interval,
                s.detection_time,
                c.packets_in,
                c.packets_out,
                c.invalid
            );
            std::io::stdout().flush()?;
        }
        states.changed().await.context("the driver stopped")?;
    }
}
