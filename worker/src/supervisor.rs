//! The worker: registers with a lease, runs the capture and apply streams
//! the coordinator assigns to it, and reports their progress.
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
//! - A stream that stops, whatever stopped it, is reported and restarted
//!   while it is still assigned, with capped backoff (2 s → 30 s): an
//!   operator may have fixed what halted it, and a fenced one waits for its
//!   ownership key again. Transient errors are retried inside
//!   ([`StreamRun`]).

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::WatchStream;
use revdoor_apply::{ApplyMetrics, ApplyStream};
use revdoor_coordinator::lock::{LeaseLock, LockError};
use revdoor_coordinator::registry::Registry;
use revdoor_core::metrics::{StreamKey, StreamMetrics};
use revdoor_core::names::{NameError, StreamId, WorkflowName};
use revdoor_core::policy::{Backoff, Classify, ErrorKind};
use revdoor_core::workflow::{now_ms, StreamKind, StreamSpec, StreamState};
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{mysql_opts, CaptureSettings, ConfigError};
use crate::ownership;
use crate::status::Status;
use crate::stream::{RunError, Stream, StreamRun};

/// Restarts of a stopped stream: 2 s, doubling up to 30 s.
const RESTART: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(30));

/// A run that lasted this long before it stopped restarts after the first
/// delay again.
const RESTART_RESETS_AFTER: Duration = Duration::from_secs(60);

/// How often the worker looks after its streams (restarts due, reports).
const TICK: Duration = Duration::from_millis(200);

/// How often it reads its assignments when its watch of them saw no change
/// (a safety net: the watch makes it read them as soon as they change).
const READ_ASSIGNMENTS_EVERY: Duration = Duration::from_secs(5);

/// How often it reports its streams' status.
const REPORT_EVERY: Duration = Duration::from_millis(500);

/// How long an unassigned stream may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Unique name: the worker registers as `workers/<id>`.
    pub id: String,
    /// TTL of its registration and of its streams' ownership leases.
    pub lease_ttl: Duration,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Connections each apply stream writes through.
    pub apply_parallelism: usize,
    /// The largest message a capture stream's producer sends.
    pub max_message_bytes: u32,
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("register the worker in etcd")]
    Register(#[source] LockError),
    #[error("worker id {id} is registered by another live worker ({key}); pick another --id")]
    Taken { id: String, key: String },
    /// Handled inside [`run`]: the worker registers again.
    #[error("worker {id} lost its registration lease")]
    LeaseLost { id: String },
}

/// Run a worker until `cancel` fires. If it loses its registration lease
/// (etcd down or out of reach for longer than the TTL), its streams stop —
/// their ownership leases went with etcd too — and it registers again as
/// soon as etcd answers, then takes its assignments back with new fence
/// tokens. Only a first registration that fails ends it.
pub async fn run(reg: Registry, cfg: Config, cancel: CancellationToken) -> Result<(), WorkerError> {
    let cfg = Arc::new(cfg);
    let mut registration = register(&reg, &cfg).await?;
    let mut again = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    loop {
        tracing::info!(worker = %cfg.id, ttl = ?cfg.lease_ttl, "worker registered");
        let worker = Worker {
            shared: Shared {
                reg: reg.clone(),
                cfg: Arc::clone(&cfg),
            },
            lease: registration.lease_id(),
            cancel: cancel.clone(),
            tasks: HashMap::new(),
            last_report: Instant::now() - Duration::from_secs(1),
        };
        let result = worker.run(registration.lost()).await;
        let _ = registration.release().await;
        if !matches!(result, Err(WorkerError::LeaseLost { .. })) {
            return result;
        }
        tracing::warn!(worker = %cfg.id,
            "lost the registration lease (etcd out of reach longer than the lease TTL?): \
             streams stopped; registering again");
        registration = loop {
            match register(&reg, &cfg).await {
                Ok(r) => break r,
                Err(e) => {
                    let after = again.next_delay();
                    tracing::warn!(worker = %cfg.id, error = %e, retry_in = ?after, "register again");
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(after) => {}
                    }
                }
            }
        };
        again.reset();
    }
}

/// Take `workers/<id>`. A restarted worker may find its previous
/// registration still leased: wait it out (TTL), then give up with a clear
/// error.
async fn register(reg: &Registry, cfg: &Config) -> Result<LeaseLock, WorkerError> {
    let key = reg.prefix.worker(&cfg.id);
    let info = format!(
        "{{\"pid\":{},\"started_ms\":{}}}",
        std::process::id(),
        now_ms()
    );
    let since = Instant::now();
    loop {
        let r = LeaseLock::try_acquire(&reg.client, &key, &info, cfg.lease_ttl)
            .await
            .map_err(WorkerError::Register)?;
        match r {
            Some(r) => return Ok(r),
            None if since.elapsed() < cfg.lease_ttl * 2 + Duration::from_secs(1) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            None => {
                return Err(WorkerError::Taken {
                    id: cfg.id.clone(),
                    key,
                })
            }
        }
    }
}

/// What every stream task of a worker shares.
#[derive(Clone)]
struct Shared {
    reg: Registry,
    cfg: Arc<Config>,
}

struct Worker {
    shared: Shared,
    /// The registration's lease: status reports live under it.
    lease: i64,
    cancel: CancellationToken,
    tasks: HashMap<String, Task>,
    last_report: Instant,
}

/// One assigned stream.
struct Task {
    spec: StreamSpec,
    cancel: CancellationToken,
    handle: Option<JoinHandle<Result<(), TaskError>>>,
    status: Status,
    /// When to restart after an error; with the next backoff.
    restart_at: Option<Instant>,
    backoff: Backoff,
    /// When the current run started.
    started: Instant,
    /// Its lag and halt, as its reports say.
    metrics: StreamMetrics,
}

/// The metric handles of an assigned stream.
fn stream_metrics(spec: &StreamSpec) -> StreamMetrics {
    match spec.kind {
        StreamKind::Capture => StreamMetrics::new(StreamKey::Capture(&StreamId {
            workflow: spec.workflow.clone(),
            direction: spec.direction,
            shard: spec.shard,
        })),
        StreamKind::Apply => StreamMetrics::new(StreamKey::Apply {
            workflow: &spec.workflow,
            direction: spec.direction,
            partition: spec.partition,
        }),
    }
}

impl Worker {
    async fn run(mut self, lost: CancellationToken) -> Result<(), WorkerError> {
        let prefix = self.shared.reg.prefix.assignments(&self.shared.cfg.id);
        // Watched first, then read: no change is missed between the two.
        let mut changes = self.watch(&prefix).await;
        let mut assigned: Option<Vec<(String, StreamSpec)>> = None;
        let mut read_at = Instant::now();
        let result = loop {
            if assigned.is_none() || read_at.elapsed() >= READ_ASSIGNMENTS_EVERY {
                if changes.is_none() {
                    changes = self.watch(&prefix).await;
                }
                let reg = &self.shared.reg;
                match reg.list(&prefix).await {
                    Ok(a) => {
                        assigned = Some(a);
                        read_at = Instant::now();
                    }
                    Err(e) => tracing::warn!(error = %e, "read assignments"),
                }
            }
            if let Some(a) = &assigned {
                self.follow_assignments(a.clone()).await;
            }
            if self.last_report.elapsed() >= REPORT_EVERY {
                self.last_report = Instant::now();
                self.report().await;
            }
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break Ok(()),
                _ = lost.cancelled() => break Err(WorkerError::LeaseLost {
                    id: self.shared.cfg.id.clone(),
                }),
                msg = next_change(&mut changes) => match msg {
                    // Changed: read them again at once.
                    Some(()) => assigned = None,
                    // The watch ended: a new one (or none, and polling).
                    None => {
                        changes = self.watch(&prefix).await;
                        assigned = None;
                    }
                },
                _ = tokio::time::sleep(TICK) => {}
            }
        };
        for (_, t) in self.tasks.drain() {
            stop_task(&self.shared.reg, t).await;
        }
        result
    }

    /// A watch of this worker's assignments; `None` (and the assignments
    /// read every [`READ_ASSIGNMENTS_EVERY`]) when etcd refuses one.
    async fn watch(&self, prefix: &str) -> Option<WatchStream> {
        match self.shared.reg.watch_prefix(prefix).await {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "watch assignments; reading them every 5 s instead");
                None
            }
        }
    }

    /// Stop what is no longer assigned (or changed), start what is new,
    /// restart what stopped once its backoff has passed.
    async fn follow_assignments(&mut self, assigned: Vec<(String, StreamSpec)>) {
        let reg = &self.shared.reg;
        let wanted: HashMap<String, StreamSpec> = assigned.into_iter().collect();
        let stale: Vec<String> = self
            .tasks
            .iter()
            .filter(|(k, t)| wanted.get(*k) != Some(&t.spec))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(t) = self.tasks.remove(&k) {
                stop_task(reg, t).await;
            }
        }
        for (k, spec) in wanted {
            let t = self.tasks.entry(k.clone()).or_insert_with(|| Task {
                metrics: stream_metrics(&spec),
                spec,
                cancel: CancellationToken::new(),
                handle: None,
                status: Status::new(),
                restart_at: Some(Instant::now()),
                backoff: RESTART,
                started: Instant::now(),
            });
            if let Some(h) = t.handle.take_if(|h| h.is_finished()) {
                let (err, halts) = match h.await.unwrap_or_else(|e| Err(TaskError::Join(e))) {
                    Ok(()) => ("stopped".to_string(), false),
                    Err(e) => (with_causes(&e), e.halts()),
                };
                // A run that lasted starts the backoff again.
                if t.started.elapsed() >= RESTART_RESETS_AFTER {
                    t.backoff.reset();
                }
                let after = t.backoff.next_delay();
                tracing::error!(stream = %k, error = %err, halted = halts, retry_in = ?after, "stream stopped");
                if halts {
                    let updates = t.status.progress.snapshot().updates;
                    t.status.state.halt(&err, updates);
                } else {
                    t.status.state.set(StreamState::Error, &err);
                }
                t.restart_at = Some(Instant::now() + after);
            }
            if t.handle.is_none() && t.restart_at.is_some_and(|at| Instant::now() >= at) {
                t.restart_at = None;
                t.started = Instant::now();
                t.cancel = CancellationToken::new();
                let span = tracing::info_span!(
                    "stream",
                    workflow = %t.spec.workflow,
                    direction = t.spec.direction.as_str(),
                    stream = %t.spec.id(),
                );
                let fut = run_assigned(
                    self.shared.clone(),
                    t.spec.clone(),
                    &t.status,
                    t.cancel.clone(),
                );
                t.handle = Some(tokio::spawn(fut.instrument(span)));
            }
        }
        metrics::gauge!(revdoor_core::metrics::WORKER_STREAMS).set(self.tasks.len() as f64);
    }

    async fn report(&mut self) {
        let reg = &self.shared.reg;
        let worker = &self.shared.cfg.id;
        for t in self.tasks.values_mut() {
            let wf = &t.spec.workflow;
            let status = t.status.report(worker);
            t.metrics
                .report(status.lag_ms(now_ms()), status.state == StreamState::Halted);
            if let Err(e) = reg
                .put(
                    &reg.prefix.status(wf, &t.spec.id()),
                    &status,
                    Some(self.lease),
                )
                .await
            {
                tracing::warn!(error = %e, "report stream status");
            }
        }
    }
}

/// The next change on `changes`: `Some` when there was one, `None` when
/// the watch ended or failed; never ready without a watch.
async fn next_change(changes: &mut Option<WatchStream>) -> Option<()> {
    let Some(w) = changes else {
        return std::future::pending().await;
    };
    match w.message().await {
        Ok(Some(resp)) if !resp.canceled() => Some(()),
        _ => None,
    }
}

async fn stop_task(reg: &Registry, t: Task) {
    t.cancel.cancel();
    // No longer this worker's: its series here read 0 (not a stale lag
    // that would keep an alert firing); its new worker reports it.
    t.metrics.report(Some(0), false);
    if let Some(h) = t.handle {
        match tokio::time::timeout(STOP_TIMEOUT, h).await {
            Ok(_) => {}
            Err(_) => tracing::warn!(stream = %t.spec.id(), "stream did not stop within 30s"),
        }
    }
    {
        let _ = reg
            .client
            .clone()
            .delete(reg.prefix.status(&t.spec.workflow, &t.spec.id()), None)
            .await;
    }
    tracing::info!(workflow = %t.spec.workflow, stream = %t.spec.id(), "stream stopped (unassigned)");
}

/// Why an assigned stream's run ended; with its causes, the text of its
/// status report.
#[derive(Debug, thiserror::Error)]
enum TaskError {
    #[error(transparent)]
    Workflow(#[from] NameError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Run(#[from] RunError),
    /// The task panicked or was aborted (not a `#[source]`: the message
    /// holds it).
    #[error("task: {0}")]
    Join(JoinError),
}

impl TaskError {
    /// Whether the stream stopped on something only an operator can fix
    /// (a definite error), rather than on losing its ownership or its task.
    fn halts(&self) -> bool {
        let kind = match self {
            TaskError::Workflow(_) | TaskError::Config(_) => return true,
            TaskError::Run(RunError::Open { source, .. } | RunError::Capture(source)) => {
                source.kind()
            }
            TaskError::Run(RunError::Apply(e)) => e.kind(),
            TaskError::Run(RunError::LeaseLost { .. }) | TaskError::Join(_) => return false,
        };
        kind == ErrorKind::Definite
    }
}

/// One run of an assigned stream: take its ownership key, then run it.
fn run_assigned(
    shared: Shared,
    spec: StreamSpec,
    status: &Status,
    cancel: CancellationToken,
) -> impl std::future::Future<Output = Result<(), TaskError>> + Send + 'static {
    let progress = Arc::clone(&status.progress);
    let state = status.state.clone();
    async move {
        let Shared { reg, cfg } = shared;
        let wf: WorkflowName = spec.workflow.clone();
        let name = format!("{}/{}", spec.workflow, spec.id());
        state.set(StreamState::Starting, "");
        let key = reg.prefix.stream_owner(&wf, &spec.id());
        let Some(lock) =
            ownership::poll(&reg.client, &key, &cfg.id, cfg.lease_ttl, &name, &cancel).await
        else {
            return Ok(());
        };
        state.set(StreamState::Running, "");
        let stream = match spec.kind {
            StreamKind::Capture => Stream::Capture(Box::new(
                CaptureSettings::from_spec(&cfg.brokers, &spec, cfg.max_message_bytes, progress)
                    .and_then(CaptureSettings::config)?,
            )),
            StreamKind::Apply => Stream::Apply(ApplyStream {
                brokers: cfg.brokers.clone(),
                metrics: ApplyMetrics::new(&wf, spec.direction, spec.partition),
                workflow: wf,
                direction: spec.direction,
                partition: spec.partition,
                target: mysql_opts(&spec.url)?,
                fence_token: lock.token(),
                progress,
                parallelism: cfg.apply_parallelism.max(1),
            }),
        };
        let run = StreamRun {
            name,
            stream,
            owner: Some(lock),
            cancel,
        };
        Ok(run.run().await?)
    }
}

/// An error and its causes, `: `-separated, as the binary prints errors.
fn with_causes(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
