//! `revdoor vdiff create|show|resume|stop`: compare a workflow's source and
//! target at one consistent point (`revdoor_coordinator::vdiff`).
//!
//! `create` and `resume` run the comparison in this process, in the
//! foreground, printing progress to stderr and the report to stdout; the
//! state lives in etcd, so `show` and `stop` work from anywhere and a
//! killed vdiff continues with `resume`. Exit status: 0 when the tables
//! match, 2 when differences were found, 1 on error.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use revdoor_coordinator::registry::Registry;
use revdoor_coordinator::vdiff::{self, VdiffOptions, VdiffRecord, VdiffState};
use revdoor_core::workflow::now_ms;

#[derive(Subcommand)]
pub enum VdiffCmd {
    /// Start a vdiff of the workflow's active direction and run it here.
    Create {
        workflow: String,
        /// Only these tables (`db.table`, comma-separated).
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        /// Rows per chunk (per source shard).
        #[arg(long, default_value_t = 10_000)]
        chunk_rows: u64,
        /// How long the streams may take to reach the consistent point.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        hold_timeout: Duration,
        /// Print the final record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a vdiff (default: the latest): progress, ETA, report.
    Show {
        workflow: String,
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Continue a stopped or killed vdiff (default: the latest) here.
    Resume {
        workflow: String,
        id: Option<String>,
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        hold_timeout: Duration,
        #[arg(long)]
        json: bool,
    },
    /// Stop a running vdiff after its current chunk (resume it later).
    Stop {
        workflow: String,
        id: Option<String>,
    },
}

/// Run a vdiff command; the process exit status it asks for.
pub async fn vdiff(reg: &Registry, cmd: VdiffCmd) -> anyhow::Result<i32> {
    match cmd {
        VdiffCmd::Create {
            workflow,
            tables,
            chunk_rows,
            hold_timeout,
            json,
        } => {
            let wf = crate::ops::wf_name(&workflow)?;
            let opts = VdiffOptions {
                tables,
                chunk_rows,
                hold_timeout,
            };
            let rec = vdiff::create(reg, &wf, &opts)
                .await
                .context("vdiff create")?;
            eprintln!("vdiff {} of workflow {wf} started", rec.id);
            run(reg, &wf, &rec.id, &opts, json).await
        }
        VdiffCmd::Resume {
            workflow,
            id,
            hold_timeout,
            json,
        } => {
            let wf = crate::ops::wf_name(&workflow)?;
            let rec = vdiff::get(reg, &wf, id.as_deref()).await?;
            let opts = VdiffOptions {
                hold_timeout,
                ..VdiffOptions::default()
            };
            eprintln!(
                "resuming vdiff {} of workflow {wf} at table {} of {}",
                rec.id,
                (rec.current + 1).min(rec.tables.len()),
                rec.tables.len()
            );
            run(reg, &wf, &rec.id, &opts, json).await
        }
        VdiffCmd::Show { workflow, id, json } => {
            let wf = crate::ops::wf_name(&workflow)?;
            let rec = vdiff::get(reg, &wf, id.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rec)?);
            } else {
                print!("{}", render(&rec));
            }
            Ok(0)
        }
        VdiffCmd::Stop { workflow, id } => {
            let wf = crate::ops::wf_name(&workflow)?;
            let rec = vdiff::stop(reg, &wf, id.as_deref()).await?;
            println!(
                "vdiff {} of workflow {wf}: {} (resume with `revdoor vdiff resume {wf} {}`)",
                rec.id,
                rec.state.as_str(),
                rec.id
            );
            Ok(0)
        }
    }
}

async fn run(
    reg: &Registry,
    wf: &revdoor_core::names::WorkflowName,
    id: &str,
    opts: &VdiffOptions,
    json: bool,
) -> anyhow::Result<i32> {
    let mut last = Instant::now();
    let mut printed_pause = 0;
    let rec = vdiff::run(reg, wf, id, opts, |r| {
        if r.pauses.len() > printed_pause {
            printed_pause = r.pauses.len();
            if let Some(p) = r.pauses.last() {
                eprintln!(
                    "consistent point: streams held {} ms{}; source positions {}",
                    p.ms,
                    origin_locks(p),
                    positions(p)
                );
            }
        }
        if last.elapsed() >= Duration::from_secs(1) && r.state == VdiffState::Running {
            last = Instant::now();
            eprintln!("{}", progress_line(r));
        }
    })
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        print!("{}", render(&rec));
    }
    Ok(match rec.state {
        VdiffState::Completed if rec.differences() == 0 => 0,
        VdiffState::Completed => 2,
        VdiffState::Stopped | VdiffState::Stopping | VdiffState::Running => 0,
        VdiffState::Failed => 1,
    })
}

fn positions(p: &vdiff::Pause) -> String {
    p.positions
        .iter()
        .map(|(shard, pos)| format!("{shard}: {pos}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `, source writes blocked N ms on SHARD (FLUSH TABLES WITH READ LOCK)`
/// for the MySQL origins; nothing for MariaDB ones (no lock).
fn origin_locks(p: &vdiff::Pause) -> String {
    if p.origin_locks.is_empty() {
        return String::new();
    }
    let each = p
        .origin_locks
        .iter()
        .map(|(shard, ms)| format!("{ms} ms on {shard}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(", source writes blocked {each} (FLUSH TABLES WITH READ LOCK)")
}

fn progress_line(r: &VdiffRecord) -> String {
    let done = r.processed();
    let pct = if r.rows_estimate > 0 {
        format!(" ({:.0} %)", 100.0 * done as f64 / r.rows_estimate as f64)
    } else {
        String::new()
    };
    let eta = r
        .eta_ms(now_ms())
        .map(|ms| {
            format!(
                ", ETA {}",
                humantime::format_duration(Duration::from_secs(ms / 1000))
            )
        })
        .unwrap_or_default();
    format!(
        "{done} of ≈ {} rows compared{pct}{eta}, {} differences so far",
        r.rows_estimate,
        r.differences()
    )
}

/// The human report.
pub fn render(r: &VdiffRecord) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vdiff {} of workflow {} ({}: {} → {}): {}",
        r.id,
        r.workflow,
        r.direction,
        r.source,
        r.target,
        r.state.as_str()
    );
    if !r.error.is_empty() {
        let _ = writeln!(out, "  error: {}", r.error);
    }
    for (i, p) in r.pauses.iter().enumerate() {
        let _ = writeln!(
            out,
            "  consistent point {}: streams held {} ms{}; source positions {}",
            i + 1,
            p.ms,
            origin_locks(p),
            positions(p)
        );
    }
    if matches!(r.state, VdiffState::Running | VdiffState::Stopping) {
        let _ = writeln!(out, "  {}", progress_line(r));
    }
    let _ = writeln!(
        out,
        "  {:<32} {:>10} {:>10} {:>8} {:>8} {:>10} {:>12} {:>11}",
        "table",
        "processed",
        "matching",
        "missing",
        "extra",
        "different",
        "wrong shard",
        "row by row"
    );
    for t in &r.tables {
        let _ = writeln!(
            out,
            "  {:<32} {:>10} {:>10} {:>8} {:>8} {:>10} {:>12} {:>11}{}",
            t.table,
            t.processed,
            t.matching,
            t.missing,
            t.extra,
            t.different,
            t.wrong_shard,
            t.row_by_row,
            if t.done { "" } else { "  (not finished)" }
        );
    }
    for t in &r.tables {
        for s in &t.samples {
            let _ = writeln!(out, "  {} {} {} ({})", s.kind, t.table, s.key, s.shard);
            if let Some(src) = &s.source {
                let _ = writeln!(out, "      source: {}", row(src));
            }
            if let Some(dst) = &s.target {
                let _ = writeln!(out, "      target: {}", row(dst));
            }
        }
    }
    if r.state == VdiffState::Completed {
        let _ = writeln!(
            out,
            "  {}",
            if r.differences() == 0 {
                "result: source and target match".to_string()
            } else {
                format!("result: {} differences", r.differences())
            }
        );
    }
    out
}

fn row(m: &std::collections::BTreeMap<String, Option<String>>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NULL")))
        .collect::<Vec<_>>()
        .join(" ")
}
