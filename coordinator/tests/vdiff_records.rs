//! vdiff records written by today's code (`workflows/<wf>/vdiffs/<id>`)
//! still load, and are written back byte for byte.
//!
//! `fixtures/vdiff_record.jsonl` holds one record a line, exactly as
//! [`registry::json`] wrote it when this test was added (every state, both
//! directions, every kind of sample and key part, pauses with positions of
//! both engines). It is never regenerated: a change of the types behind the
//! record must keep its stored form. Lines are added when the record gains
//! a field: the last one has MySQL origins' lock times (`origin_locks`)
//! and rows compared row by row (`row_by_row`, issue 13), which the
//! earlier lines, without them, must not grow.

use revdoor_coordinator::registry;
use revdoor_coordinator::vdiff::VdiffRecord;

#[test]
fn vdiff_records_load_and_write_back_the_same() {
    let text = include_str!("fixtures/vdiff_record.jsonl");
    for (n, line) in text.lines().enumerate() {
        let record: VdiffRecord = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("vdiff_record.jsonl:{}: no longer loads: {e}", n + 1));
        assert_eq!(
            registry::json(&record),
            line,
            "line {}: form changed",
            n + 1
        );
    }
    assert!(!text.is_empty());
}
