//! The switch plan: what a `switch-traffic` / `reverse-traffic` would do
//! from a workflow's spec, state and keyspaces — pure, no I/O. The cutover
//! runs it; `--dry-run` prints it ([`SwitchPlan::describe`]) with the
//! check, positions and lags read by the caller.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use revdoor_core::gtid::StoredPosition;
use revdoor_core::names::{Direction, WorkflowName};
use revdoor_core::workflow::{
    plan_streams, Epoch, KeyspaceSpec, Phase, StreamKind, StreamSpec, WorkflowSpec, WorkflowState,
};

/// A cutover of one workflow in its current phase: which side is fenced,
/// which takes over, the directions, the next epoch and phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchPlan {
    /// `switch-traffic` (to the target) or `reverse-traffic`.
    pub to_target: bool,
    /// The phase the plan was made in.
    pub phase: Phase,
    /// The side serving now: fenced by the cutover.
    pub old: KeyspaceSpec,
    /// The side taking over: unfenced by the cutover.
    pub new: KeyspaceSpec,
    /// The running direction (whose applies catch up to the fence).
    pub old_dir: Direction,
    /// The direction started at the flip.
    pub new_dir: Direction,
    /// Origin and destination keyspaces of `new_dir`'s streams.
    pub new_origin: KeyspaceSpec,
    pub new_destination: KeyspaceSpec,
    /// The routing epoch after the flip.
    pub epoch: Epoch,
    /// The phase after the flip (`switched` / `reversed`).
    pub next_phase: Phase,
}

impl SwitchPlan {
    /// The plan of a cutover in `state`'s phase; `to_target` for
    /// switch-traffic. `source` and `target` are the workflow's keyspaces.
    pub fn new(
        state: &WorkflowState,
        source: &KeyspaceSpec,
        target: &KeyspaceSpec,
        to_target: bool,
    ) -> Self {
        let phase = state.phase;
        let old_dir = phase.active().unwrap_or(Direction::Forward);
        let new_dir = old_dir.opposite();
        let (old, new) = if phase.serving_target() {
            (target, source)
        } else {
            (source, target)
        };
        let (new_origin, new_destination) = if new_dir == Direction::Reverse {
            (target, source)
        } else {
            (source, target)
        };
        SwitchPlan {
            to_target,
            phase,
            old: old.clone(),
            new: new.clone(),
            old_dir,
            new_dir,
            new_origin: new_origin.clone(),
            new_destination: new_destination.clone(),
            epoch: state.epoch.next(),
            next_phase: if to_target {
                Phase::Switched
            } else {
                Phase::Reversed
            },
        }
    }

    /// `switch-traffic` or `reverse-traffic`.
    pub fn action(&self) -> &'static str {
        if self.to_target {
            "switch-traffic"
        } else {
            "reverse-traffic"
        }
    }

    /// Whether the phase allows this cutover.
    pub fn allowed(&self) -> bool {
        if self.to_target {
            matches!(self.phase, Phase::Running | Phase::Reversed)
        } else {
            self.phase == Phase::Switched
        }
    }

    /// Why the cutover is refused in this phase, if it is.
    pub fn refusal(&self, wf: &WorkflowName) -> Option<String> {
        (!self.allowed()).then(|| {
            format!(
                "{} is not possible while workflow {wf} is {}{}",
                self.action(),
                self.phase,
                match self.phase {
                    Phase::Copying => ": the copy is still running (see `revdoor workflow status`)",
                    Phase::Switched =>
                        ": traffic is already on the target (reverse-traffic moves it back)",
                    Phase::Running | Phase::Reversed => ": traffic is already on the source",
                    Phase::Completed | Phase::Cancelled => ": the workflow is finished",
                }
            )
        })
    }

    /// The new direction's streams, as created at the switch: captures
    /// start at `starts` (new-side positions by shard), a stream that
    /// existed keeps its `copy` flag.
    pub fn new_streams(
        &self,
        spec: &WorkflowSpec,
        existing: &[StreamSpec],
        starts: &BTreeMap<String, StoredPosition>,
    ) -> Vec<StreamSpec> {
        let existing: BTreeMap<String, &StreamSpec> =
            existing.iter().map(|s| (s.id(), s)).collect();
        let mut streams = plan_streams(spec, &self.new_origin, &self.new_destination, self.new_dir);
        for s in &mut streams {
            if let Some(old) = existing.get(&s.id()) {
                s.copy = old.copy;
            }
            if s.kind == StreamKind::Capture {
                s.start_position = starts.get(&s.shard.to_string()).cloned();
            }
        }
        streams
    }

    /// Partitions of the new direction's topic.
    pub fn new_partitions(&self, spec: &WorkflowSpec) -> i32 {
        plan_streams(spec, &self.new_origin, &self.new_destination, self.new_dir)
            .first()
            .map(|s| s.partitions)
            .unwrap_or(1)
    }

    /// The workflow state written at the flip: the next epoch and phase,
    /// the new direction's start positions, the old side read-only when
    /// `read_only`.
    pub fn flipped_state(
        &self,
        state: &WorkflowState,
        starts: &BTreeMap<String, StoredPosition>,
        read_only: bool,
        now_ms: u64,
    ) -> WorkflowState {
        let mut next = state.clone();
        next.epoch = self.epoch;
        next.phase = self.next_phase;
        if self.new_dir == Direction::Reverse {
            next.reverse_created = true;
        }
        next.resume
            .insert(self.new_dir.as_str().to_string(), starts.clone());
        if read_only {
            next.read_only.insert(self.old.name.clone());
        }
        next.updated_ms = now_ms;
        next
    }

    /// The message a fenced writer gets.
    pub fn fence_message(&self, wf: &WorkflowName) -> String {
        let serving = &self.new.name;
        format!(
            "revdoor: workflow {wf} switched these tables to keyspace {serving} (epoch {}); write there \
             (`revdoor routing get {serving}`)",
            self.epoch
        )
    }

    /// The `--dry-run` text: the plan with what the caller read — the
    /// check's verdict (`Err`: why it would be refused) and each shard's
    /// current position (or why it cannot be read), old side then new
    /// side, in shard order.
    pub fn describe(
        &self,
        wf: &WorkflowName,
        spec: &WorkflowSpec,
        check: Result<&str, &str>,
        old_positions: &[String],
        new_positions: &[String],
    ) -> String {
        let (old, new) = (&self.old.name, &self.new.name);
        let mut out = String::new();
        let mut line = |args: std::fmt::Arguments<'_>| {
            let _ = out.write_fmt(args);
            out.push('\n');
        };
        line(format_args!(
            "plan for {} of workflow {wf} (phase {}):",
            self.action(),
            self.phase
        ));
        if !self.allowed() {
            line(format_args!(
                "  would be refused: phase {} does not allow it",
                self.phase
            ));
        }
        match check {
            Ok(detail) => line(format_args!("  1. check      {detail}")),
            Err(e) => line(format_args!("  1. check      would be refused: {e}")),
        }
        for (s, pos) in self.old.shards.iter().zip(old_positions) {
            line(format_args!(
                "  2. fence      {old} shard {} (now at {pos})",
                s.range
            ));
        }
        line(format_args!(
            "  3. catch-up   {} apply streams to the fence positions",
            self.old_dir
        ));
        for (s, pos) in self.new.shards.iter().zip(new_positions) {
            line(format_args!(
                "  4. positions  {new} shard {} (now at {pos})",
                s.range
            ));
        }
        line(format_args!(
            "  5. streams    {} direction starts there",
            self.new_dir
        ));
        line(format_args!(
            "  6. routing    {} tables served by {new}, epoch {}",
            spec.tables.len(),
            self.epoch
        ));
        line(format_args!("  7. unfence    {new}"));
        line(format_args!("dry run: nothing changed"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use revdoor_core::workflow::ShardSpec;

    fn ks(name: &str, ranges: &[&str]) -> KeyspaceSpec {
        KeyspaceSpec {
            name: name.parse().expect("keyspace name"),
            shards: ranges
                .iter()
                .map(|r| ShardSpec {
                    range: r.parse().expect("range"),
                    url: format!("mysql://{name}{r}"),
                })
                .collect(),
        }
    }

    fn spec() -> WorkflowSpec {
        WorkflowSpec {
            name: "wf".parse().expect("workflow name"),
            source: "a".parse().expect("keyspace name"),
            target: "b".parse().expect("keyspace name"),
            tables: vec!["d.t".into(), "d.u".into()],
            sharding_keys: BTreeMap::new(),
            on_ddl: "stop".into(),
            created_ms: 0,
        }
    }

    fn state(phase: Phase, epoch: u64) -> WorkflowState {
        WorkflowState {
            phase,
            epoch: Epoch::new(epoch),
            resume: BTreeMap::new(),
            reverse_created: false,
            switches: Vec::new(),
            read_only: Default::default(),
            updated_ms: 0,
        }
    }

    fn wf() -> WorkflowName {
        "wf".parse().expect("name")
    }

    #[test]
    fn switch_from_running_fences_the_source_and_starts_reverse() {
        let (a, b) = (ks("a", &["-"]), ks("b", &["-80", "80-"]));
        let p = SwitchPlan::new(&state(Phase::Running, 4), &a, &b, true);
        assert!(p.allowed() && p.refusal(&wf()).is_none());
        assert_eq!((p.old.name.as_str(), p.new.name.as_str()), ("a", "b"));
        assert_eq!(
            (p.old_dir, p.new_dir),
            (Direction::Forward, Direction::Reverse)
        );
        assert_eq!(p.epoch, Epoch::new(5));
        assert_eq!(p.next_phase, Phase::Switched);
        assert_eq!(p.new_partitions(&spec()), 2);
        assert!(p.fence_message(&wf()).contains("keyspace b (epoch 5)"));

        let starts = BTreeMap::from([
            ("-80".to_string(), pos("0-2-7")),
            ("80-".to_string(), pos("0-3-9")),
        ]);
        let streams = p.new_streams(&spec(), &[], &starts);
        let ids: Vec<String> = streams.iter().map(StreamSpec::id).collect();
        assert_eq!(
            ids,
            [
                "reverse.capture.-80",
                "reverse.capture.80-",
                "reverse.apply.0",
                "reverse.apply.1"
            ]
        );
        assert_eq!(streams[0].start_position, Some(pos("0-2-7")));
        assert_eq!(streams[2].start_position, None);
        assert_eq!(streams[2].url, "mysql://a-");

        let next = p.flipped_state(&state(Phase::Running, 4), &starts, true, 11);
        assert_eq!(next.phase, Phase::Switched);
        assert_eq!(next.epoch, Epoch::new(5));
        assert!(
            next.reverse_created
                && next
                    .read_only
                    .contains(&"a".parse().expect("keyspace name"))
        );
        assert_eq!(next.resume["reverse"], starts);
        assert_eq!(next.updated_ms, 11);
    }

    fn pos(text: &str) -> StoredPosition {
        text.parse().expect("position")
    }

    #[test]
    fn reverse_from_switched_fences_the_target_and_restarts_forward() {
        let (a, b) = (ks("a", &["-"]), ks("b", &["-80", "80-"]));
        let p = SwitchPlan::new(&state(Phase::Switched, 5), &a, &b, false);
        assert!(p.allowed());
        assert_eq!((p.old.name.as_str(), p.new.name.as_str()), ("b", "a"));
        assert_eq!(
            (p.old_dir, p.new_dir),
            (Direction::Reverse, Direction::Forward)
        );
        assert_eq!((p.epoch, p.next_phase), (Epoch::new(6), Phase::Reversed));
        // Forward streams that copied keep their flag; captures skip ahead.
        let mut old = plan_streams(&spec(), &a, &b, Direction::Forward);
        old[0].copy = true;
        let starts = BTreeMap::from([("-".to_string(), pos("0-1-3"))]);
        let streams = p.new_streams(&spec(), &old, &starts);
        assert!(streams[0].copy && !streams[1].copy);
        assert_eq!(streams[0].start_position, Some(pos("0-1-3")));
        let next = p.flipped_state(&state(Phase::Switched, 5), &starts, false, 1);
        assert!(!next.reverse_created && next.read_only.is_empty());
        assert_eq!(next.resume["forward"], starts);
    }

    #[test]
    fn phases_that_do_not_allow_it_are_refused_with_why() {
        let (a, b) = (ks("a", &["-"]), ks("b", &["-"]));
        for (phase, to_target, why) in [
            (Phase::Copying, true, "the copy is still running"),
            (Phase::Switched, true, "traffic is already on the target"),
            (Phase::Running, false, "traffic is already on the source"),
            (Phase::Completed, false, "the workflow is finished"),
        ] {
            let p = SwitchPlan::new(&state(phase, 0), &a, &b, to_target);
            let refusal = p.refusal(&wf()).expect("refused");
            assert!(refusal.contains(why), "{refusal}");
            assert!(refusal.starts_with(&format!(
                "{} is not possible while workflow wf is {phase}",
                p.action()
            )));
        }
    }

    #[test]
    fn describe_prints_the_dry_run_plan() {
        let (a, b) = (ks("a", &["-"]), ks("b", &["-80", "80-"]));
        let p = SwitchPlan::new(&state(Phase::Running, 2), &a, &b, true);
        let text = p.describe(
            &wf(),
            &spec(),
            Ok("3 streams running, worst apply lag 0.1s"),
            &["0-1-10".to_string()],
            &["0-2-7".to_string(), "unreachable: x".to_string()],
        );
        assert_eq!(
            text,
            "plan for switch-traffic of workflow wf (phase running):\n\
             \x20 1. check      3 streams running, worst apply lag 0.1s\n\
             \x20 2. fence      a shard - (now at 0-1-10)\n\
             \x20 3. catch-up   forward apply streams to the fence positions\n\
             \x20 4. positions  b shard -80 (now at 0-2-7)\n\
             \x20 4. positions  b shard 80- (now at unreachable: x)\n\
             \x20 5. streams    reverse direction starts there\n\
             \x20 6. routing    2 tables served by b, epoch 3\n\
             \x20 7. unfence    b\n\
             dry run: nothing changed\n"
        );
        let p = SwitchPlan::new(&state(Phase::Switched, 3), &a, &b, true);
        let text = p.describe(&wf(), &spec(), Err("stream x lags"), &[], &[]);
        assert!(text.contains("  would be refused: phase switched does not allow it\n"));
        assert!(text.contains("  1. check      would be refused: stream x lags\n"));
    }
}
