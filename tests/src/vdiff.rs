//! `revdoor vdiff` run from tests and its JSON record read: the counts and
//! samples the vdiff tests assert on.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::door::Door;

/// Run `vdiff <args> --json`; its exit code and the record it printed.
pub fn vdiff(door: &Door, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["vdiff"];
    a.extend_from_slice(args);
    a.push("--json");
    let o = door.ctx.run(&a);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let rec: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "vdiff {args:?}: no JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code().unwrap_or(-1), rec)
}

/// The report of the table whose name ends with `name`.
pub fn table<'a>(rec: &'a Value, name: &str) -> &'a Value {
    rec["tables"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|t| t["table"].as_str().is_some_and(|n| n.ends_with(name)))
        })
        .unwrap_or_else(|| panic!("no table {name} in {rec}"))
}

/// processed, matching, missing, extra, different, wrong_shard.
pub fn counts(t: &Value) -> [u64; 6] {
    [
        "processed",
        "matching",
        "missing",
        "extra",
        "different",
        "wrong_shard",
    ]
    .map(|k| t[k].as_u64().unwrap_or(u64::MAX))
}

/// (kind, key, shard) of every sample.
pub fn samples(t: &Value) -> BTreeSet<(String, String, String)> {
    t["samples"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|s| {
                    (
                        s["kind"].as_str().unwrap_or_default().to_string(),
                        s["key"].as_str().unwrap_or_default().to_string(),
                        s["shard"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
