//! `--metrics-addr`: the Prometheus exporter (text format at `/metrics`)
//! of a coordinator, a worker or the demo. The metrics themselves are
//! declared in `revdoor_core::metrics`.

use std::net::SocketAddr;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use revdoor_core::metrics::{Type, ALL};

/// Buckets of the histograms in seconds: a Kafka commit, a switch window.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of the histograms in rows (a group's rows).
const ROWS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

/// Serve `/metrics` on `addr` from now on (nothing without one). Call it
/// inside the runtime: the listener runs on it.
pub(crate) fn serve(addr: Option<SocketAddr>) -> anyhow::Result<()> {
    let Some(addr) = addr else {
        return Ok(());
    };
    let mut builder = PrometheusBuilder::new().with_http_listener(addr);
    for m in ALL.iter().filter(|m| m.kind == Type::Histogram) {
        let buckets = if m.unit == metrics::Unit::Seconds {
            SECONDS
        } else {
            ROWS
        };
        builder = builder
            .set_buckets_for_metric(Matcher::Full(m.name.to_owned()), buckets)
            .with_context(|| format!("buckets of {}", m.name))?;
    }
    builder.install().with_context(|| {
        format!("serve metrics on --metrics-addr {addr} (in use? pick another address or port)")
    })?;
    revdoor_core::metrics::describe();
    tracing::info!(addr = %addr, "serving Prometheus metrics at /metrics");
    Ok(())
}
