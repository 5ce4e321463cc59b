//! Capture checkpoints written by today's code (`revdoor.<wf>.offsets`)
//! still load, and are written back byte for byte.
//!
//! `fixtures/checkpoint.jsonl` holds one checkpoint a line, exactly as
//! [`Checkpoint::to_text`] wrote it when this test was added (positions of
//! both engines, empty, and copy progress with every kind of key value). It
//! is never regenerated: a change of the types behind a checkpoint must keep
//! its stored form.

use revdoor_capture::Checkpoint;

#[test]
fn checkpoints_load_and_write_back_the_same() {
    let text = include_str!("fixtures/checkpoint.jsonl");
    for (n, line) in text.lines().enumerate() {
        let checkpoint: Checkpoint = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("checkpoint.jsonl:{}: no longer loads: {e}", n + 1));
        assert_eq!(
            Checkpoint::parse(line).expect("parses"),
            checkpoint,
            "line {}",
            n + 1
        );
        assert_eq!(checkpoint.to_text(), line, "line {}: form changed", n + 1);
    }
    assert!(!text.is_empty());
}

/// The oldest form: a bare position, not JSON.
#[test]
fn a_bare_position_still_loads() {
    let checkpoint = Checkpoint::parse("0-1-5,1-2-9").expect("parses");
    assert_eq!(checkpoint.position, "0-1-5,1-2-9");
    assert_eq!(checkpoint.copy, None);
}
