//! VDiff (issue 6) on the real stack:
//! - a 1M-row table moved to a 2-shard target reports clean while the bank
//!   writer keeps writing;
//! - injected differences (per target shard: a missing row, an extra row, a
//!   changed column, a row on the wrong shard) are each reported exactly;
//! - a vdiff killed with SIGKILL midway resumes and ends with the same
//!   report;
//! - strings that differ only in case or trailing spaces are reported by
//!   the documented rule, and a column converted from latin1 to utf8mb4
//!   holding the same characters is not.

use std::collections::BTreeSet;
use std::time::Duration;

use revdoor_core::keyspace_id::{keyspace_id, KeyValue};
use revdoor_tests::door::Door;
use revdoor_tests::vdiff::{counts, samples, table, vdiff};
use revdoor_tests::{env_num, wait_for};
use serde_json::Value;

fn shard_of(id: i64) -> usize {
    usize::from(keyspace_id(&[KeyValue::Int(id)]) >= 1 << 63)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vdiff_on_a_2_shard_target_under_load_finds_injected_differences_and_resumes() {
    let accounts = i64::try_from(env_num("REVDOOR_VDIFF_ROWS", 1_000_000)).unwrap_or(1_000_000);
    let door = Door::create("vdiff_big", 1, &[("-80", 2), ("80-", 3)], accounts).await;
    let wf = door.ctx.workflow.clone();
    let out = door.create_workflow();
    assert!(out.ok, "workflow create: {}{}", out.stdout, out.stderr);
    let _coordinator = door.coordinator("c1", &[]);
    let _worker = door.worker("w1");
    door.wait_phase("running", Duration::from_secs(300)).await;
    door.wait_streams_running(Duration::from_secs(60)).await;

    // Refusals first: unknown table; nothing registered.
    let o = door.cmd(&["vdiff", "create", &wf, "--tables", "nope.nope"]);
    assert!(
        !o.ok && o.stderr.contains("not part of workflow"),
        "{}",
        o.stderr
    );

    // 1. Clean while the writer writes.
    let mut writer = door.writer("writer", 1, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, rec) = vdiff(&door, &["create", &wf]);
    assert_eq!(rec["state"], "completed", "{rec}");
    assert_eq!(code, 0, "{rec}");
    let acc = table(&rec, ".accounts");
    let c = counts(acc);
    assert_eq!(c[0], u64::try_from(accounts).unwrap_or(0), "{acc}");
    assert_eq!(c[0], c[1], "{acc}");
    assert_eq!(&c[2..], &[0, 0, 0, 0], "{acc}");
    let ledger = table(&rec, ".ledger");
    assert!(
        counts(ledger)[0] > 0,
        "the writer wrote ledger rows: {ledger}"
    );
    assert_eq!(counts(ledger)[0], counts(ledger)[1], "{ledger}");
    let pause = rec["pauses"][0]["ms"].as_u64().unwrap_or(u64::MAX);
    assert!(pause < 30_000, "{rec}");
    eprintln!("clean vdiff of {accounts} accounts: pause {pause} ms");
    door.finish_load(&mut writer, "writer").await;
    door.wait_converged(Duration::from_secs(60)).await;

    // 2. Inject, on each target shard: a missing row, an extra row, a
    // changed column, and a copy of a row on the wrong shard. Through the
    // session holding the target's fence pass (as apply does), without
    // binlog (no stream).
    let db = &door.ctx.db;
    let mut picks: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    for id in 1..accounts {
        let s = shard_of(id);
        if picks[s].len() < 3 {
            picks[s].push(id);
        }
        if picks.iter().all(|p| p.len() == 3) {
            break;
        }
    }
    let mut extra: [i64; 2] = [0, 0];
    for id in accounts + 1.. {
        let s = shard_of(id);
        if extra[s] == 0 {
            extra[s] = id;
        }
        if extra.iter().all(|e| *e != 0) {
            break;
        }
    }
    let ranges = ["-80", "80-"];
    let mut want = BTreeSet::new();
    for s in 0..2 {
        let server = door.target[s].1;
        let other = door.target[1 - s].1;
        let [missing, different, misplaced] = [picks[s][0], picks[s][1], picks[s][2]];
        let mut c = door.ctx.through_fence(server, "target").await;
        use mysql_async::prelude::Queryable;
        c.query_drop("SET SESSION sql_log_bin = 0").await.ok();
        for q in [
            format!("DELETE FROM {db}.accounts WHERE id = {missing}"),
            format!("UPDATE {db}.accounts SET balance = balance + 7 WHERE id = {different}"),
            format!(
                "INSERT INTO {db}.accounts (id, balance) VALUES ({}, 5)",
                extra[s]
            ),
        ] {
            c.query_drop(&q)
                .await
                .unwrap_or_else(|e| panic!("{q}: {e}"));
        }
        drop(c);
        let mut o = door.ctx.through_fence(other, "target").await;
        o.query_drop("SET SESSION sql_log_bin = 0").await.ok();
        // The row's values, copied by value onto the other shard.
        let src_row = door.ctx.rows(door.source, "accounts").await;
        let row = src_row
            .iter()
            .find(|r| r[0].as_deref() == Some(&misplaced.to_string()))
            .expect("row to misplace");
        let q = format!(
            "INSERT INTO {db}.accounts (id, balance, ops) VALUES ({misplaced}, {}, {})",
            row[1].as_deref().unwrap_or("0"),
            row[2].as_deref().unwrap_or("0")
        );
        o.query_drop(&q)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        want.insert((
            "missing".to_string(),
            format!("id={missing}"),
            ranges[s].to_string(),
        ));
        want.insert((
            "different".to_string(),
            format!("id={different}"),
            ranges[s].to_string(),
        ));
        want.insert((
            "extra".to_string(),
            format!("id={}", extra[s]),
            ranges[s].to_string(),
        ));
        want.insert((
            "wrong_shard".to_string(),
            format!("id={misplaced}"),
            format!("found on {}, belongs on {}", ranges[1 - s], ranges[s]),
        ));
    }
    let chunk = (accounts / 50).max(100).to_string();
    let (code, full) = vdiff(&door, &["create", &wf, "--chunk-rows", &chunk]);
    assert_eq!(full["state"], "completed", "{full}");
    assert_eq!(code, 2, "differences found → exit 2: {full}");
    let acc = table(&full, ".accounts");
    let n = u64::try_from(accounts).unwrap_or(0);
    assert_eq!(counts(acc), [n, n - 4, 2, 2, 2, 2], "{acc}");
    assert_eq!(samples(acc), want, "{acc}");
    let diff = acc["samples"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["kind"] == "different"))
        .expect("a different sample");
    let (sb, tb) = (
        diff["source"]["balance"]
            .as_str()
            .and_then(|b| b.parse::<i64>().ok()),
        diff["target"]["balance"]
            .as_str()
            .and_then(|b| b.parse::<i64>().ok()),
    );
    assert_eq!(
        tb.zip(sb).map(|(t, s)| t - s),
        Some(7),
        "both versions shown: {diff}"
    );
    assert_eq!(counts(table(&full, ".ledger"))[2..], [0, 0, 0, 0]);

    // `show` prints the same record, and the text report names the keys.
    let shown = door.ok(&["vdiff", "show", &wf]);
    for (kind, key, _) in &want {
        assert!(
            shown.contains(&format!("{kind} {db}.accounts {key} ")),
            "{shown}"
        );
    }

    // 3. SIGKILL midway, resume: the same report.
    let tiny = (accounts / 400).max(50).to_string();
    let mut p = door.ctx.spawn(
        "vdiff-killed",
        &["vdiff", "create", &wf, "--chunk-rows", &tiny],
    );
    let id = wait_for("vdiff midway", Duration::from_secs(120), || async {
        let o = door.cmd(&["vdiff", "show", &wf, "--json"]);
        let rec: Value = serde_json::from_str(&o.stdout).unwrap_or_default();
        let processed: u64 = rec["tables"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["processed"].as_u64()).sum())
            .unwrap_or(0);
        Ok((rec["id"] != full["id"] && processed > n / 4)
            .then(|| rec["id"].as_str().unwrap_or_default().to_string()))
    })
    .await
    .expect("vdiff progressed");
    p.kill9();
    let (_, killed) = vdiff(&door, &["show", &wf, &id]);
    assert_eq!(
        killed["state"], "running",
        "killed, so never finished: {killed}"
    );
    let acc = table(&killed, ".accounts");
    assert!(counts(acc)[0] < n, "killed midway: {acc}");
    let (code, resumed) = vdiff(&door, &["resume", &wf, &id]);
    assert_eq!(resumed["state"], "completed", "{resumed}");
    assert_eq!(code, 2);
    assert_eq!(
        resumed["pauses"].as_array().map(Vec::len),
        Some(2),
        "a new consistent point"
    );
    for t in [".accounts", ".ledger"] {
        assert_eq!(counts(table(&resumed, t)), counts(table(&full, t)), "{t}");
        assert_eq!(samples(table(&resumed, t)), samples(table(&full, t)), "{t}");
    }

    // 4. Stop: a running vdiff stops after its chunk; resume finishes it.
    let small = (accounts / 5000).max(20).to_string();
    let mut p = door.ctx.spawn(
        "vdiff-stopped",
        &["vdiff", "create", &wf, "--chunk-rows", &small],
    );
    let id = wait_for("vdiff started", Duration::from_secs(60), || async {
        let o = door.cmd(&["vdiff", "show", &wf, "--json"]);
        let rec: Value = serde_json::from_str(&o.stdout).unwrap_or_default();
        Ok((rec["id"] != resumed["id"]
            && rec["id"] != full["id"]
            && rec["pauses"].as_array().is_some_and(|p| !p.is_empty()))
        .then(|| rec["id"].as_str().unwrap_or_default().to_string()))
    })
    .await
    .expect("vdiff started");
    door.ok(&["vdiff", "stop", &wf, &id]);
    let code = p.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "{}", p.log_text());
    let (_, stopped) = vdiff(&door, &["show", &wf, &id]);
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    let (_, done) = vdiff(&door, &["resume", &wf, &id]);
    assert_eq!(done["state"], "completed");
    assert_eq!(
        counts(table(&done, ".accounts")),
        counts(table(&full, ".accounts"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vdiff_compares_strings_by_the_documented_rule() {
    let door = Door::create("vdiff_rule", 4, &[("-", 5)], 10).await;
    let db = door.ctx.db.clone();
    let wf = door.ctx.workflow.clone();
    door.ctx
        .sql(
            4,
            &[
                &format!(
                    "CREATE TABLE {db}.names (id INT PRIMARY KEY, \
                     v VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL, \
                     l VARCHAR(20) CHARACTER SET latin1 NULL)"
                ),
                &format!(
                    "INSERT INTO {db}.names VALUES (1, 'abc', 'café'), (2, 'abc', 'naïve'), \
                     (3, 'abc', NULL), (4, 'Ωmega', 'x')"
                ),
                // A case-insensitive primary key.
                &format!(
                    "CREATE TABLE {db}.tags (tag VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, n INT)"
                ),
                &format!("INSERT INTO {db}.tags VALUES ('alpha', 1), ('Beta', 2), ('gamma', 3)"),
            ],
        )
        .await;
    let out = door.create_workflow_with(&["names", "tags"]);
    assert!(out.ok, "workflow create: {}{}", out.stdout, out.stderr);
    let _coordinator = door.coordinator("c1", &[]);
    let _worker = door.worker("w1");
    door.wait_phase("running", Duration::from_secs(120)).await;
    door.wait_streams_running(Duration::from_secs(60)).await;
    // Same characters, another charset on the target: no difference.
    door.ctx
        .sql(
            5,
            &[&format!(
                "ALTER TABLE {db}.names MODIFY l VARCHAR(20) CHARACTER SET utf8mb4 NULL"
            )],
        )
        .await;
    let (code, rec) = vdiff(&door, &["create", &wf]);
    assert_eq!(
        (code, &rec["state"]),
        (0, &Value::from("completed")),
        "{rec}"
    );
    assert_eq!(counts(table(&rec, ".names")), [4, 4, 0, 0, 0, 0]);
    assert_eq!(counts(table(&rec, ".tags")), [3, 3, 0, 0, 0, 0]);

    // Case only, trailing space only (equal under the collation), and a
    // key that differs only in case: all reported as different.
    let mut c = door.ctx.through_fence(5, "target").await;
    use mysql_async::prelude::Queryable;
    for q in [
        format!("UPDATE {db}.names SET v = 'ABC' WHERE id = 1"),
        format!("UPDATE {db}.names SET v = 'abc ' WHERE id = 2"),
        format!("UPDATE {db}.tags SET tag = 'beta' WHERE tag = 'Beta'"),
    ] {
        c.query_drop(&q)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    let (equal,): (i64,) = c
        .query_first(format!("SELECT COUNT(*) FROM {db}.names WHERE v = 'abc'"))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(equal, 3, "the collation itself sees no difference");
    let (code, rec) = vdiff(&door, &["create", &wf]);
    assert_eq!(code, 2, "{rec}");
    let names = table(&rec, ".names");
    assert_eq!(counts(names), [4, 2, 0, 0, 2, 0], "{names}");
    let keys: BTreeSet<String> = samples(names).into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["id=1".to_string(), "id=2".to_string()])
    );
    let tags = table(&rec, ".tags");
    assert_eq!(counts(tags), [3, 2, 0, 0, 1, 0], "{tags}");
    let s = &tags["samples"][0];
    assert_eq!(
        (s["source"]["tag"].as_str(), s["target"]["tag"].as_str()),
        (Some("Beta"), Some("beta")),
        "{tags}"
    );
}
