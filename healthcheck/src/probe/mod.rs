//! The checks. Each is a future bounded by the check timeout; a round runs all of them
//! concurrently on the runtime's few threads, so hundreds of targets need no thread each.

pub mod http;
pub mod tcp;
pub mod tunnel;

use crate::metrics::{Metrics, Verdict};
use crate::targets::{CheckKind, Target};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tunnel::{Encap, TunnelChecker};

/// Runs checks and counts their outcomes.
#[derive(Debug)]
pub struct Prober {
    metrics: Arc<Metrics>,
    /// Opened on the first tunnel check (or by [`Prober::open_tunnel`]), so a table without
    /// gue/fou targets runs without CAP_NET_RAW. An open error is kept and reported by every
    /// tunnel check.
    tunnel: OnceLock<Result<TunnelChecker, String>>,
}

impl Prober {
    /// A prober counting into `metrics`.
    #[must_use]
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics, tunnel: OnceLock::new() }
    }

    /// Opens the raw ICMP socket now (at start-up, when the table has tunnel targets) so a
    /// missing CAP_NET_RAW is a clear start-up error. Must run inside a Tokio runtime.
    ///
    /// # Errors
    /// Why the socket could not be opened.
    pub fn open_tunnel(&self) -> Result<&TunnelChecker, String> {
        self.tunnel
            .get_or_init(|| {
                TunnelChecker::open(Arc::clone(&self.metrics)).map_err(|e| {
                    let msg = format!(
                        "cannot open the raw ICMP socket for gue/fou checks (needs CAP_NET_RAW): {e}"
                    );
                    log::error!("{msg}");
                    msg
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Runs one check within `timeout`. `Err` carries the reason it failed.
    ///
    /// # Errors
    /// The check failed or timed out.
    pub async fn check(&self, target: &Target, timeout: Duration) -> Result<(), String> {
        let work = async {
            // IP literals only: a health checker should not depend on (or send) DNS queries.
            let ip: IpAddr =
                target.ip.parse().map_err(|_| format!("{:?} is not an IP address", target.ip))?;
            match target.kind {
                CheckKind::Http => http::check(ip, target.port, &target.uri).await,
                CheckKind::Tcp => tcp::check(ip, target.port).await,
                CheckKind::Gue => self.open_tunnel()?.check(Encap::Gue, ip, target.port).await,
                CheckKind::Fou => self.open_tunnel()?.check(Encap::Fou, ip, target.port).await,
            }
        };
        let (verdict, result) = match tokio::time::timeout(timeout, work).await {
            Ok(Ok(())) => (Verdict::Pass, Ok(())),
            Ok(Err(e)) => (Verdict::Fail, Err(e)),
            Err(_) => {
                let what = match target.kind {
                    CheckKind::Gue | CheckKind::Fou => "no echo reply",
                    CheckKind::Http | CheckKind::Tcp => "no answer",
                };
                (Verdict::Timeout, Err(format!("{what} from {target} within {} ms", timeout.as_millis())))
            }
        };
        self.metrics.count_check(target.kind, verdict);
        log::debug!("check {target}: {result:?}");
        result
    }
}
