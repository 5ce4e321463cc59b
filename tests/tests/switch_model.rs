//! The switch protocol's Promela model (`docs/model/switch.pml`) checked
//! with spin: the model as coded verifies exhaustively, and the broken
//! variants are refuted. Needs `spin` and `gcc` (`deploy/stack install`),
//! not the stack.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `./pan` printed for one variant of the model.
struct Verdict {
    output: String,
}

impl Verdict {
    fn errors(&self) -> Option<u64> {
        let at = self.output.find("errors: ")? + "errors: ".len();
        self.output[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    fn states(&self) -> Option<u64> {
        let line = self.output.lines().find(|l| l.contains("states, stored"))?;
        line.split_whitespace().next()?.parse().ok()
    }

    /// The text of the first violated assertion.
    fn violation(&self) -> Option<&str> {
        self.output
            .lines()
            .find(|l| l.contains("assertion violated"))
    }

    /// An exhaustive search that was not cut short.
    fn complete(&self) -> bool {
        self.output.contains("Full statespace search for:")
            && !self.output.contains("Search not completed")
            && !self.output.contains("search depth too small")
            && !self.output.contains("out of memory")
            && !self.output.contains("-DMEMLIM bound")
    }
}

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/model/switch.pml")
}

/// `program` must be installed: fail, naming the fix, when it is not.
fn require(program: &str, arg: &str) {
    match Command::new(program).arg(arg).output() {
        Ok(_) => {}
        Err(e) => panic!(
            "`{program}` cannot be run ({e}): the switch model is checked with spin and gcc; \
             run `deploy/stack install` (it installs the Debian packages spin and g++)"
        ),
    }
}

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {program} {args:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() || program == "./pan",
        "{program} {args:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// Generate, compile and run the verifier for the model with `defines`.
fn verify(name: &str, defines: &[&str]) -> Verdict {
    require("spin", "-V");
    require("gcc", "--version");
    let dir = std::env::temp_dir().join(format!(
        "revdoor-switch-model-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create a directory for the verifier");
    std::fs::copy(model(), dir.join("switch.pml")).expect("copy docs/model/switch.pml");
    let mut args = vec!["-a"];
    args.extend_from_slice(defines);
    args.push("switch.pml");
    run(&dir, "spin", &args);
    run(
        &dir,
        "gcc",
        &[
            "-O1",
            "-w",
            "-DSAFETY",
            "-DMEMLIM=2048",
            "-o",
            "pan",
            "pan.c",
        ],
    );
    let output = run(&dir, "./pan", &["-m100000"]);
    let _ = std::fs::remove_dir_all(&dir);
    println!("--- {name} ---\n{output}");
    Verdict { output }
}

/// The protocol as coded: every interleaving of two coordinators, two
/// leader losses, one failed call, two requests and two application writes
/// keeps at most the routed side writable, loses no acknowledged write, and
/// ends every request done or rolled back, none dropped unrun.
#[test]
fn the_switch_protocol_verifies_exhaustively() {
    let v = verify("model", &[]);
    assert!(v.complete(), "the search was not exhaustive:\n{}", v.output);
    assert_eq!(v.errors(), Some(0), "spin found an error:\n{}", v.output);
    assert!(v.violation().is_none(), "{}", v.output);
    assert!(v.output.contains("invalid end states\t+"), "{}", v.output);
    assert!(
        v.states().is_some_and(|n| n > 10_000),
        "suspiciously small state space:\n{}",
        v.output
    );
    // Not vacuous: the end-state checks ran (spin lists no statement of
    // `Final` as unreached).
    assert!(
        v.output.contains("unreached in proctype Final\n\t(0 of"),
        "the end-state checks never ran:\n{}",
        v.output
    );
}

/// Negative model: the final position read before the fence is installed
/// lets a write commit after it; the old direction stops short of it and
/// the write is lost.
#[test]
fn reading_the_fence_position_before_the_fence_loses_a_write() {
    let v = verify("broken-fence-pos", &["-DBROKEN_FENCE_POS"]);
    assert!(
        v.errors().is_some_and(|n| n > 0),
        "spin did not refute the broken fence step:\n{}",
        v.output
    );
    let what = v.violation().expect("an assertion violated");
    assert!(
        what.contains("rep[") || what.contains("lost"),
        "not the lost-write property: {what}"
    );
}

/// Finding 1 (docs/model/README.md), closed: a coordinator that lost its
/// lease but runs on still executes its fence statements, but each carries
/// its fencing token and a successor claims the rows before it resumes, so
/// every interleaving with one such leader loss verifies, end states
/// included.
#[test]
fn a_deposed_coordinator_still_running_changes_no_fence() {
    let v = verify("zombie", &["-DZOMBIE", "-DCRASHES=1"]);
    assert!(v.complete(), "the search was not exhaustive:\n{}", v.output);
    assert_eq!(v.errors(), Some(0), "spin found an error:\n{}", v.output);
    assert!(v.violation().is_none(), "{}", v.output);
    assert!(
        v.output.contains("unreached in proctype Final\n\t(0 of"),
        "the end-state checks never ran:\n{}",
        v.output
    );
}

/// The same without the token guard (the code before it): spin finds both
/// sides writable, so the guard is what the verification above rests on.
#[test]
fn without_the_token_guard_a_deposed_coordinator_breaks_the_fences() {
    let v = verify(
        "zombie-no-token",
        &[
            "-DZOMBIE",
            "-DNO_TOKEN",
            "-DNO_FINAL",
            "-DERRORS=0",
            "-DCRASHES=1",
        ],
    );
    assert!(v.errors().is_some_and(|n| n > 0), "{}", v.output);
    let what = v.violation().expect("an assertion violated");
    assert!(
        what.contains("fenced["),
        "not a writable-side property: {what}"
    );
}

/// Finding 2 (docs/model/README.md), closed: negative model — closing a
/// request deletes the request key whatever it holds; a close that landed
/// but reported a failure is retried by `recover`, and its delete drops the
/// operator's next request unrun. The model as coded (the delete compares
/// the key's revision) verifies with that check on, above.
#[test]
fn a_finish_deleting_any_request_drops_the_next_one() {
    let v = verify("broken-finish", &["-DBROKEN_FINISH"]);
    assert!(v.errors().is_some_and(|n| n > 0), "{}", v.output);
    let what = v.violation().expect("an assertion violated");
    assert!(
        what.contains("jout[i]!=0"),
        "not the kept-request check: {what}"
    );
}
