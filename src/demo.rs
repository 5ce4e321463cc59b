//! `revdoor demo`: the README's main job, on the local stack.
//!
//! Today it runs the walking skeleton: a table on MariaDB #1 is captured from
//! its binlog into Kafka and applied to MariaDB #2 while a writer inserts,
//! updates and deletes; then both sides are compared row by row. It grows
//! into create → copy → switch → reverse → complete (issue 5).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use revdoor_apply::ApplyStream;
use revdoor_capture::binlog::{BinlogReader, LoopFilter};
use revdoor_capture::publish::StreamId;
use revdoor_capture::CaptureConfig;
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Source server (admin URL); default `REVDOOR_MYSQL_1`.
    #[arg(long, env = "REVDOOR_MYSQL_1")]
    source: String,
    /// Target server (admin URL); default `REVDOOR_MYSQL_2`.
    #[arg(long, env = "REVDOOR_MYSQL_2")]
    target: String,
    /// revdoor's own account on both servers.
    #[arg(long, env = "REVDOOR_MYSQL_USER", default_value = "revdoor")]
    revdoor_user: String,
    #[arg(
        long,
        env = "REVDOOR_MYSQL_PASSWORD",
        default_value = "revdoor-pw",
        hide_env_values = true
    )]
    revdoor_password: String,
    /// Source transactions the writer commits.
    #[arg(long, default_value_t = 3000)]
    transactions: u32,
}

const DB: &str = "revdoor_demo";

fn as_user(admin: &Opts, user: &str, password: &str) -> Opts {
    OptsBuilder::from_opts(admin.clone())
        .user(Some(user))
        .pass(Some(password))
        .into()
}

async fn checksum(conn: &mut Conn) -> anyhow::Result<(u64, String)> {
    let row: Option<(u64, Option<String>)> = conn
        .query_first(format!(
            "SELECT COUNT(*), SHA2(GROUP_CONCAT(CONCAT_WS('|', id, owner, balance, updated) \
             ORDER BY id SEPARATOR '\\n'), 256) FROM {DB}.accounts"
        ))
        .await?;
    let (n, sum) = row.context("checksum query returned nothing")?;
    Ok((n, sum.unwrap_or_default()))
}

pub(crate) async fn run(kafka: &str, args: DemoArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let src_admin = crate::mysql_opts(&args.source)?;
    let dst_admin = crate::mysql_opts(&args.target)?;
    let mut src = Conn::new(src_admin.clone())
        .await
        .with_context(|| format!("connect to source {}", crate::redact(&args.source)))?;
    let mut dst = Conn::new(dst_admin.clone())
        .await
        .with_context(|| format!("connect to target {}", crate::redact(&args.target)))?;
    // The session GTID sequence of the writer is what the stream must reproduce.
    let workflow = format!(
        "demo{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    println!("revdoor demo — workflow {workflow}: {DB}.accounts, MariaDB #1 → Kafka → MariaDB #2");
    let ddl = format!(
        "CREATE TABLE {DB}.accounts (id BIGINT UNSIGNED PRIMARY KEY, owner VARCHAR(64) CHARACTER SET utf8mb4, \
         balance DECIMAL(14,2) NOT NULL, updated DATETIME(6) NOT NULL)"
    );
    for conn in [&mut src, &mut dst] {
        conn.query_drop(format!("DROP DATABASE IF EXISTS {DB}"))
            .await?;
        conn.query_drop(format!("CREATE DATABASE {DB}")).await?;
        conn.query_drop(&ddl).await?;
    }
    let start = BinlogReader::current_position(&mut src).await?;
    println!("  1. tables created on both sides; source position {start}");

    let cancel = CancellationToken::new();
    let capture = CaptureConfig {
        brokers: kafka.to_string(),
        id: StreamId {
            workflow: workflow.clone(),
            direction: "forward".into(),
            shard: "-".into(),
        },
        router: revdoor_capture::route::Router::single(0),
        partitions: 1,
        reader: BinlogReader {
            opts: as_user(&src_admin, &args.revdoor_user, &args.revdoor_password),
            server_id: revdoor_capture::replica_server_id(&format!("revdoor.{workflow}.forward.-")),
            tables: [(DB.to_string(), "accounts".to_string())]
                .into_iter()
                .collect(),
            heartbeat: Duration::from_secs(1),
            watermark_stream: None,
            loop_filter: Some(LoopFilter {
                workflow: workflow.clone(),
                direction: "reverse".into(),
            }),
        },
        start_position: Some(start),
        batch_max_txns: 500,
        batch_interval: Duration::from_millis(10),
        on_ddl: Default::default(),
        copy: false,
        copy_chunk_rows: 5000,
        progress: Default::default(),
    };
    let apply = ApplyStream {
        brokers: kafka.to_string(),
        workflow: workflow.clone(),
        direction: "forward".into(),
        partition: 0,
        target: as_user(&dst_admin, &args.revdoor_user, &args.revdoor_password),
        fence_token: 1,
        progress: Default::default(),
    };
    let cap_task = tokio::spawn(revdoor_capture::run(capture, cancel.clone()));
    let apply_cancel = cancel.clone();
    let app_task = tokio::spawn(async move { apply.run(apply_cancel).await });
    println!("  2. capture and apply streams started (topic revdoor.{workflow}.forward)");

    // Writer: inserts, updates, deletes, several rows per transaction.
    let wt = Instant::now();
    let mut next_id: u64 = 1;
    for i in 0..args.transactions {
        let mut tx = src.start_transaction(Default::default()).await?;
        match i % 5 {
            0..=2 => {
                for _ in 0..3 {
                    tx.exec_drop(
                        format!("INSERT INTO {DB}.accounts VALUES (?, ?, ?, NOW(6))"),
                        (next_id, format!("owner-{next_id}-ü"), 100),
                    )
                    .await?;
                    next_id += 1;
                }
            }
            3 => {
                tx.exec_drop(
                    format!("UPDATE {DB}.accounts SET balance = balance + 1.25, updated = NOW(6) WHERE id BETWEEN ? AND ?"),
                    (next_id.saturating_sub(10), next_id.saturating_sub(6)),
                )
                .await?;
            }
            _ => {
                tx.exec_drop(
                    format!("DELETE FROM {DB}.accounts WHERE id = ?"),
                    (u64::from(i) / 2 + 1,),
                )
                .await?;
            }
        }
        tx.commit().await?;
        if (i + 1) % 1000 == 0 {
            println!("     writer: {} transactions committed", i + 1);
        }
    }
    let write_secs = wt.elapsed().as_secs_f64();
    println!(
        "  3. writer committed {} transactions in {write_secs:.1}s ({:.0} txn/s)",
        args.transactions,
        f64::from(args.transactions) / write_secs
    );

    let want = checksum(&mut src).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let caught_up = Instant::now();
    loop {
        if cap_task.is_finished() || app_task.is_finished() {
            cancel.cancel();
            let c = cap_task
                .await
                .map_err(|e| anyhow::anyhow!("capture task: {e}"))?;
            let a = app_task
                .await
                .map_err(|e| anyhow::anyhow!("apply task: {e}"))?;
            bail!("a stream stopped early: capture {c:?}, apply {a:?}");
        }
        let have = checksum(&mut dst).await?;
        if have == want {
            break;
        }
        if Instant::now() > deadline {
            cancel.cancel();
            bail!("target did not catch up within 120s: source {want:?}, target {have:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "  4. target caught up {:.2}s after the last write: {} rows, SHA-256 {} on both sides",
        caught_up.elapsed().as_secs_f64(),
        want.0,
        &want.1[..16.min(want.1.len())]
    );
    cancel.cancel();
    cap_task
        .await
        .map_err(|e| anyhow::anyhow!("capture task: {e}"))??;
    app_task
        .await
        .map_err(|e| anyhow::anyhow!("apply task: {e}"))??;
    println!(
        "  5. streams drained and stopped; demo passed in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
