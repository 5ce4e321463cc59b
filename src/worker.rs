//! `revdoor worker run`: registers with a lease, runs the capture and apply
//! streams the coordinator assigns to it, and reports their progress.
//!
//! - Registration: `workers/<id>` under the worker's lease. If the worker
//!   dies, the key expires after the TTL and the coordinator moves its
//!   streams to live workers.
//! - Each stream first takes its ownership key `workflows/<wf>/owners/<id>`
//!   (a lease lock). Its revision is the apply stream's fence token; a
//!   capture's transactional producer fences the previous owner by itself.
//!   A successor therefore waits until the old owner let go or its lease
//!   expired, and a paused old owner can no longer write.
//! - Status: `workflows/<wf>/status/<id>` (position, lag source, events/s,
//!   copy progress, error), under the worker's lease, every 500 ms.
//! - A stream that stops with an error is reported and restarted with
//!   capped backoff (2 s → 30 s); transient errors are retried inside.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use revdoor_apply::ApplyStream;
use revdoor_capture::binlog::{BinlogReader, LoopFilter};
use revdoor_capture::publish::StreamId;
use revdoor_capture::route::Router;
use revdoor_capture::CaptureConfig;
use revdoor_coordinator::lock::LeaseLock;
use revdoor_coordinator::registry::Registry;
use revdoor_core::names::WorkflowName;
use revdoor_core::progress::Progress;
use revdoor_core::workflow::{now_ms, StreamKind, StreamSpec, StreamStatus};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// State and last error of a stream task, shared with the reporter.
#[derive(Default)]
struct TaskState {
    state: String,
    error: String,
}

struct Task {
    spec: StreamSpec,
    cancel: CancellationToken,
    handle: Option<JoinHandle<Result<(), String>>>,
    progress: Arc<Progress>,
    state: Arc<Mutex<TaskState>>,
    /// When to restart after an error; with the next backoff.
    restart_at: Option<Instant>,
    backoff: Duration,
    last_events: (u64, Instant),
}

fn set_state(s: &Mutex<TaskState>, state: &str, error: &str) {
    if let Ok(mut t) = s.lock() {
        t.state = state.to_string();
        t.error = error.to_string();
    }
}

/// Run the worker until `cancel` fires or its registration lease is lost.
pub async fn run(
    reg: Registry,
    brokers: String,
    id: String,
    ttl: Duration,
    apply_parallelism: usize,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let key = reg.prefix.worker(&id);
    let info = format!(
        "{{\"pid\":{},\"started_ms\":{}}}",
        std::process::id(),
        now_ms()
    );
    // A restarted worker may find its previous registration still leased:
    // wait it out (TTL), then give up with a clear error.
    let since = Instant::now();
    let registration = loop {
        let r = LeaseLock::try_acquire(&reg.client, &key, &info, ttl)
            .await
            .context("register the worker in etcd")?;
        match r {
            Some(r) => break r,
            None if since.elapsed() < ttl * 2 + Duration::from_secs(1) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            None => bail!(
                "worker id {id} is registered by another live worker ({key}); pick another --id"
            ),
        }
    };
    let lease = registration.lease_id();
    let lost = registration.lost();
    tracing::info!(worker = %id, ttl = ?ttl, "worker registered");
    let mut tasks: HashMap<String, Task> = HashMap::new();
    let mut last_report = Instant::now() - Duration::from_secs(1);
    let result: anyhow::Result<()> = loop {
        tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            _ = lost.cancelled() => break Err(anyhow::anyhow!(
                "worker {id} lost its registration lease; its streams move to other workers — stopping")),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let assigned: Vec<(String, StreamSpec)> = match reg.list(&reg.prefix.assignments(&id)).await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "read assignments");
                continue;
            }
        };
        let wanted: HashMap<String, StreamSpec> = assigned.into_iter().collect();
        // Stop streams no longer assigned to us, or whose spec changed.
        let stale: Vec<String> = tasks
            .iter()
            .filter(|(k, t)| wanted.get(*k) != Some(&t.spec))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(t) = tasks.remove(&k) {
                stop_task(&reg, t).await;
            }
        }
        // Start new ones; restart failed ones after their backoff.
        for (k, spec) in wanted {
            let t = tasks.entry(k.clone()).or_insert_with(|| Task {
                spec: spec.clone(),
                cancel: CancellationToken::new(),
                handle: None,
                progress: Arc::new(Progress::default()),
                state: Arc::new(Mutex::new(TaskState::default())),
                restart_at: Some(Instant::now()),
                backoff: Duration::from_secs(2),
                last_events: (0, Instant::now()),
            });
            if let Some(h) = &t.handle {
                if h.is_finished() {
                    let h = t.handle.take();
                    let r = match h {
                        Some(h) => h.await.unwrap_or_else(|e| Err(format!("task: {e}"))),
                        None => Ok(()),
                    };
                    let err = r.err().unwrap_or_else(|| "stopped".into());
                    tracing::error!(stream = %k, error = %err, retry_in = ?t.backoff, "stream stopped");
                    set_state(&t.state, "error", &err);
                    t.restart_at = Some(Instant::now() + t.backoff);
                    t.backoff = (t.backoff * 2).min(Duration::from_secs(30));
                }
            }
            if t.handle.is_none() && t.restart_at.is_some_and(|at| Instant::now() >= at) {
                t.restart_at = None;
                t.cancel = CancellationToken::new();
                let fut = run_stream(
                    reg.clone(),
                    brokers.clone(),
                    id.clone(),
                    spec.clone(),
                    Arc::clone(&t.progress),
                    Arc::clone(&t.state),
                    t.cancel.clone(),
                    ttl,
                    apply_parallelism,
                );
                t.handle = Some(tokio::spawn(fut));
            }
        }
        if last_report.elapsed() >= Duration::from_millis(500) {
            last_report = Instant::now();
            for t in tasks.values_mut() {
                report(&reg, &id, lease, t).await;
            }
        }
    };
    for (_, t) in tasks.drain() {
        stop_task(&reg, t).await;
    }
    let _ = registration.release().await;
    result
}

async fn report(reg: &Registry, worker: &str, lease: i64, t: &mut Task) {
    let Ok(wf) = t.spec.workflow.parse::<WorkflowName>() else {
        return;
    };
    let p = t.progress.snapshot();
    let (state, error) = t
        .state
        .lock()
        .map(|s| (s.state.clone(), s.error.clone()))
        .unwrap_or_default();
    let elapsed = t.last_events.1.elapsed().as_secs_f64().max(0.001);
    let rate = p.events.saturating_sub(t.last_events.0) as f64 / elapsed;
    t.last_events = (p.events, Instant::now());
    let status = StreamStatus {
        worker: worker.to_string(),
        state,
        error,
        position: p.position,
        source_ts_ms: p.source_ts_ms,
        events: p.events,
        events_per_s: (rate * 10.0).round() / 10.0,
        copy_rows: p.copy_rows,
        copy_total: p.copy_total,
        copy_done: p.copy_done,
        updated_ms: now_ms(),
    };
    if let Err(e) = reg
        .put(&reg.prefix.status(&wf, &t.spec.id()), &status, Some(lease))
        .await
    {
        tracing::warn!(error = %e, "report stream status");
    }
}

async fn stop_task(reg: &Registry, t: Task) {
    t.cancel.cancel();
    if let Some(h) = t.handle {
        match tokio::time::timeout(Duration::from_secs(30), h).await {
            Ok(_) => {}
            Err(_) => tracing::warn!(stream = %t.spec.id(), "stream did not stop within 30s"),
        }
    }
    if let Ok(wf) = t.spec.workflow.parse::<WorkflowName>() {
        let _ = reg
            .client
            .clone()
            .delete(reg.prefix.status(&wf, &t.spec.id()), None)
            .await;
    }
    tracing::info!(workflow = %t.spec.workflow, stream = %t.spec.id(), "stream stopped (unassigned)");
}

#[allow(clippy::too_many_arguments)]
async fn run_stream(
    reg: Registry,
    brokers: String,
    worker: String,
    spec: StreamSpec,
    progress: Arc<Progress>,
    state: Arc<Mutex<TaskState>>,
    cancel: CancellationToken,
    ttl: Duration,
    apply_parallelism: usize,
) -> Result<(), String> {
    let wf: WorkflowName = spec.workflow.parse().map_err(|e| format!("{e}"))?;
    let name = format!("{}/{}", spec.workflow, spec.id());
    set_state(&state, "starting", "");
    let key = reg.prefix.stream_owner(&wf, &spec.id());
    let lock = loop {
        match LeaseLock::try_acquire(&reg.client, &key, &worker, ttl).await {
            Ok(Some(l)) => break l,
            Ok(None) => {}
            Err(e) => tracing::warn!(stream = %name, error = %e, "take stream ownership"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    };
    tracing::info!(stream = %name, token = %lock.token(), "stream owned");
    let run_cancel = cancel.child_token();
    let lost = lock.lost();
    {
        let c = run_cancel.clone();
        let lost = lost.clone();
        tokio::spawn(async move {
            lost.cancelled().await;
            c.cancel();
        });
    }
    set_state(&state, "running", "");
    let result = match spec.kind {
        StreamKind::Capture => {
            let cfg = capture_config(&brokers, &spec, Arc::clone(&progress))
                .map_err(|e| format!("{e:#}"))?;
            match crate::open_capture(cfg, &run_cancel).await {
                Ok(Some(capture)) => {
                    crate::with_retries(&name, &run_cancel, || capture.stream(run_cancel.clone()))
                        .await
                        .map_err(|e| e.to_string())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(format!("{e:#}")),
            }
        }
        StreamKind::Apply => {
            let target = crate::mysql_opts(&spec.url).map_err(|e| format!("{e:#}"))?;
            let apply = ApplyStream {
                brokers: brokers.clone(),
                workflow: spec.workflow.clone(),
                direction: spec.direction.as_str().to_string(),
                partition: spec.partition,
                target,
                fence_token: lock.token().get(),
                progress: Arc::clone(&progress),
                parallelism: apply_parallelism.max(1),
            };
            crate::with_retries(&name, &run_cancel, || apply.run(run_cancel.clone()))
                .await
                .map_err(|e| e.to_string())
        }
    };
    if lost.is_cancelled() && !cancel.is_cancelled() {
        return Err(format!(
            "{name}: lost the ownership lease; a newer owner may run it now"
        ));
    }
    let _ = lock.release().await;
    result
}

fn capture_config(
    brokers: &str,
    spec: &StreamSpec,
    progress: Arc<Progress>,
) -> anyhow::Result<CaptureConfig> {
    let id = StreamId {
        workflow: spec.workflow.clone(),
        direction: spec.direction.as_str().to_string(),
        shard: spec.shard.to_string(),
    };
    let mut keys = HashMap::new();
    for (t, cols) in &spec.sharding_keys {
        if let Some((db, table)) = t.split_once('.') {
            keys.insert((db.to_string(), table.to_string()), cols.clone());
        }
    }
    let router = if spec.routes.is_empty() {
        Router::single(0)
    } else {
        Router::by_range(spec.routes.clone(), keys)?
    };
    let on_ddl = spec
        .on_ddl
        .parse()
        .map_err(|e| anyhow::anyhow!("on_ddl '{}': {e}", spec.on_ddl))?;
    Ok(CaptureConfig {
        brokers: brokers.to_string(),
        id: id.clone(),
        router,
        partitions: spec.partitions,
        reader: BinlogReader {
            opts: crate::mysql_opts(&spec.url)?,
            server_id: revdoor_capture::replica_server_id(&id.transactional_id()),
            tables: crate::parse_tables(&spec.tables)?,
            heartbeat: Duration::from_secs(1),
            watermark_stream: None,
            loop_filter: Some(LoopFilter {
                workflow: spec.workflow.clone(),
                direction: spec.direction.opposite().as_str().to_string(),
            }),
        },
        start_position: spec.start_position.clone(),
        batch_max_txns: 500,
        batch_interval: Duration::from_millis(10),
        on_ddl,
        copy: spec.copy,
        copy_chunk_rows: 5000,
        progress,
    })
}
