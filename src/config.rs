//! The config file: `--config FILE` or `REVDOOR_CONFIG` names one TOML
//! file holding values for any flag of any command.
//!
//! # Keys
//!
//! The accepted keys are derived from clap's command tree, never listed by
//! hand, so a flag added to any command has its key at once: a global flag
//! (`--kafka`, `--etcd`, …) is a top-level key, a subcommand's flag sits in
//! the table named by the subcommand's path (`[worker.run]`,
//! `[coordinator.run]`, `[workflow.create]`, `[workflow.switch_traffic]`);
//! `-` becomes `_` in keys and table names. Positional arguments (the
//! workflow or keyspace a command acts on) have no key: they name the
//! object of one invocation, and a file that named it would let
//! `revdoor workflow cancel` act on a workflow nobody typed.
//! `deploy/revdoor.example.toml` documents every key; a test fails when a
//! flag has no entry there.
//!
//! # Precedence
//!
//! flag > environment (the flags that have an `env` variable) > file >
//! default: a file's value becomes the flag's default, which clap uses only
//! when neither the command line nor the variable gives one. A required
//! flag given by the file is no longer required on the command line.
//!
//! # Errors
//!
//! Like `serde(deny_unknown_fields)`: an unknown key is refused naming the
//! key, its table and the closest known key; a bad value names the key, what
//! is wrong with it and the form expected; a missing or unreadable file, or
//! one that is not TOML, says so. Nothing runs until the file is good.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue};
use clap::{Arg, ArgAction, Command, CommandFactory, FromArgMatches};
use toml_edit::{Document, Item, TableLike, Value};

/// The flag naming the file, and the variable used without it.
const FLAG: &str = "config";
const ENV: &str = "REVDOOR_CONFIG";

/// Why the command line and the config file give no command to run.
#[derive(Debug)]
pub enum Error {
    /// The file: unreadable, not TOML, an unknown key or a bad value.
    Config(String),
    /// The command line itself (clap prints it, with usage).
    Cli(clap::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(m) => f.write_str(m),
            Error::Cli(e) => write!(f, "{e}"),
        }
    }
}

/// Parse the process's command line with the config file it names, or
/// print why not and exit (2, like clap's own usage errors).
pub fn parse<P: CommandFactory + FromArgMatches>() -> P {
    match parse_from(std::env::args_os().collect(), std::env::var_os(ENV)) {
        Ok(p) => p,
        Err(Error::Cli(e)) => e.exit(),
        Err(Error::Config(m)) => {
            eprintln!("revdoor: {m}");
            std::process::exit(2);
        }
    }
}

/// [`parse`] of `argv`, with `env_config` standing for `REVDOOR_CONFIG`.
pub fn parse_from<P: CommandFactory + FromArgMatches>(
    argv: Vec<OsString>,
    env_config: Option<OsString>,
) -> Result<P, Error> {
    let cmd = P::command();
    let Some((path, source)) = config_path(&argv, env_config) else {
        return clap_parse(cmd, argv, &[]);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Config(format!(
            "config file {} ({source}): cannot read it: {e}; give an existing TOML file, \
             or no --config and no {ENV}",
            path.display()
        ))
    })?;
    let entries = entries(&cmd, &path, &text)?;
    clap_parse(with_defaults(cmd, &entries), argv, &entries)
}

/// One value of the file: the flag it sets and where.
#[derive(Debug, Clone)]
struct Entry {
    /// Subcommand names from the root (clap's, with `-`).
    path: Vec<String>,
    /// The argument's id.
    id: String,
    /// `[worker.run] lease_ttl`, for messages.
    key: String,
    /// The flag, `--lease-ttl`, for messages.
    flag: String,
    values: Vec<String>,
    /// The form of the flag's value, for messages.
    expected: String,
    file: PathBuf,
    line: usize,
}

/// The file named by `--config FILE` / `--config=FILE`, else by the
/// variable; with where it was named, for messages.
fn config_path(argv: &[OsString], env: Option<OsString>) -> Option<(PathBuf, String)> {
    let long = format!("--{FLAG}");
    let with_eq = format!("--{FLAG}=");
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        let Some(a) = a.to_str() else { continue };
        if a == "--" {
            break;
        }
        if a == long {
            return args.next().map(|p| (PathBuf::from(p), format!("--{FLAG}")));
        }
        if let Some(p) = a.strip_prefix(&with_eq) {
            return Some((PathBuf::from(p), format!("--{FLAG}")));
        }
    }
    env.filter(|v| !v.is_empty())
        .map(|v| (PathBuf::from(v), ENV.to_string()))
}

/// The key of an argument or a subcommand: `-` → `_`.
fn key_of(name: &str) -> String {
    name.replace('-', "_")
}

/// The key of an option: its long name (`--sharding-key` → `sharding_key`),
/// else its id.
fn arg_key(a: &Arg) -> String {
    key_of(a.get_long().unwrap_or(a.get_id().as_str()))
}

/// The arguments of `cmd` that have a key in its table: options and
/// switches, not positionals, not help/version, not the config flag; the
/// root's global flags at the top level only.
fn keyed_args(cmd: &Command, root: bool) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(move |a| {
        !a.is_positional()
            && !matches!(
                a.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            )
            && a.get_id() != FLAG
            && (root || !a.is_global_set())
    })
}

/// Every key of the command tree as (table path, key), the top level's
/// with an empty path; for the example file's test and its listing.
#[cfg(test)]
pub fn all_keys(cmd: &Command) -> Vec<(Vec<String>, String)> {
    fn walk(cmd: &Command, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
        for a in keyed_args(cmd, path.is_empty()) {
            out.push((path.clone(), arg_key(a)));
        }
        for sub in cmd.get_subcommands() {
            path.push(key_of(sub.get_name()));
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(cmd, &mut Vec::new(), &mut out);
    out
}

/// The file's values, checked against the command tree.
fn entries(cmd: &Command, file: &Path, text: &str) -> Result<Vec<Entry>, Error> {
    let doc = Document::parse(text.to_string()).map_err(|e| {
        Error::Config(format!(
            "config file {}: not valid TOML: {}",
            file.display(),
            e.to_string().trim_end()
        ))
    })?;
    let mut out = Vec::new();
    let cx = Cx { file, text };
    cx.table(cmd, doc.as_table(), &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// The file being read, for messages.
struct Cx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Cx<'_> {
    fn line(&self, span: Option<std::ops::Range<usize>>) -> usize {
        span.map(|s| {
            self.text.as_bytes()[..s.start.min(self.text.len())]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1
        })
        .unwrap_or(0)
    }

    fn at(&self, line: usize) -> String {
        if line == 0 {
            format!("config file {}", self.file.display())
        } else {
            format!("config file {}, line {line}", self.file.display())
        }
    }

    fn table(
        &self,
        cmd: &Command,
        table: &dyn TableLike,
        path: &mut Vec<String>,
        out: &mut Vec<Entry>,
    ) -> Result<(), Error> {
        let root = path.is_empty();
        let table_name = if root {
            "the top level".to_string()
        } else {
            format!(
                "[{}]",
                path.iter().map(|p| key_of(p)).collect::<Vec<_>>().join(".")
            )
        };
        for (key, item) in table.iter() {
            let line = self.line(table.key(key).and_then(|k| k.span()));
            if let Some(sub) = cmd.get_subcommands().find(|s| key_of(s.get_name()) == key) {
                let Some(t) = item.as_table_like() else {
                    return Err(Error::Config(format!(
                        "{}: `{key}` in {table_name} is the `{}` command: write its flags as a \
                         table, [{}]",
                        self.at(line),
                        sub.get_name(),
                        path.iter()
                            .chain(std::iter::once(&sub.get_name().to_string()))
                            .map(|p| key_of(p))
                            .collect::<Vec<_>>()
                            .join(".")
                    )));
                };
                path.push(sub.get_name().to_string());
                self.table(sub, t, path, out)?;
                path.pop();
                continue;
            }
            let Some(arg) = keyed_args(cmd, root).find(|a| arg_key(a) == key) else {
                return Err(Error::Config(self.unknown(
                    cmd,
                    root,
                    &table_name,
                    key,
                    line,
                )));
            };
            let flag = match arg.get_long() {
                Some(l) => format!("--{l}"),
                None => format!("-{}", arg.get_short().unwrap_or('?')),
            };
            let full_key = if root {
                key.to_string()
            } else {
                format!("{table_name} {key}")
            };
            let values = self.values(arg, item).map_err(|why| {
                Error::Config(format!(
                    "{}: {full_key}: {why}; expected {} (what {flag} takes)",
                    self.at(line),
                    expected(arg)
                ))
            })?;
            out.push(Entry {
                path: path.clone(),
                id: arg.get_id().to_string(),
                key: full_key,
                flag,
                values,
                expected: expected(arg),
                file: self.file.to_path_buf(),
                line,
            });
        }
        Ok(())
    }

    /// An unknown key: where, and the closest known one.
    fn unknown(&self, cmd: &Command, root: bool, table: &str, key: &str, line: usize) -> String {
        let mut known: Vec<String> = keyed_args(cmd, root)
            .map(arg_key)
            .chain(cmd.get_subcommands().map(|s| key_of(s.get_name())))
            .collect();
        known.sort();
        let mut m = format!("{}: unknown key `{key}` in {table}", self.at(line));
        let closest = known
            .iter()
            .map(|k| (strsim::jaro_winkler(k, key), k))
            .filter(|(score, _)| *score > 0.7)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match closest {
            Some((_, k)) => {
                let _ = write!(m, "; the closest known key is `{k}`");
            }
            None if known.is_empty() => {
                let _ = write!(m, "; this table takes no keys");
            }
            None => {
                let _ = write!(m, "; known keys here: {}", known.join(", "));
            }
        }
        if !root {
            m.push_str(
                " (flags every command takes, like kafka and etcd, are top-level keys, \
                 above the first [table])",
            );
        }
        m
    }

    /// The value(s) of `item` for `arg`, as the text the flag would take.
    fn values(&self, arg: &Arg, item: &Item) -> Result<Vec<String>, String> {
        let Some(v) = item.as_value() else {
            return Err(format!("a {} is not a value", item.type_name()));
        };
        let switch = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        if switch && v.as_bool().is_none() {
            return Err(format!("{} is not true or false", shown(v)));
        }
        let many = matches!(arg.get_action(), ArgAction::Append)
            || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        match v.as_array() {
            Some(items) if many => items.iter().map(scalar).collect(),
            Some(_) => Err("this flag takes one value, not a list".into()),
            None => scalar(v).map(|s| vec![s]),
        }
    }
}

/// A scalar as the command-line text.
fn scalar(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.value().clone()),
        Value::Integer(i) => Ok(i.value().to_string()),
        Value::Float(f) => Ok(f.value().to_string()),
        Value::Boolean(b) => Ok(b.value().to_string()),
        Value::Datetime(_) => Err("a date-time is not a value here".into()),
        Value::Array(_) => Err("a list inside a list is not a value".into()),
        Value::InlineTable(_) => Err("a table is not a value".into()),
    }
}

/// A TOML value as written, for messages.
fn shown(v: &Value) -> String {
    match scalar(v) {
        Ok(s) if v.as_str().is_some() => format!("\"{s}\""),
        Ok(s) => s,
        Err(_) => v.type_name().to_string(),
    }
}

/// The form a flag's value takes, for messages.
fn expected(arg: &Arg) -> String {
    if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
        return "true or false".into();
    }
    let many = matches!(arg.get_action(), ArgAction::Append);
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| format!("\"{}\"", p.get_name()))
        .collect();
    let one = if !possible.is_empty() {
        format!("one of {}", possible.join(", "))
    } else {
        let name = arg
            .get_value_names()
            .and_then(|n| n.first())
            .map(|n| n.to_string())
            .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
        format!("a {name}")
    };
    if many {
        format!("{one}, or a list of them")
    } else {
        one
    }
}

/// `cmd` with every entry's values as its flag's default (so the command
/// line and the environment still win), and a required flag the file
/// gives no longer required.
fn with_defaults(cmd: Command, entries: &[Entry]) -> Command {
    fn set(cmd: Command, path: &[String], e: &Entry) -> Command {
        match path.split_first() {
            Some((sub, rest)) => cmd.mut_subcommand(sub, |c| set(c, rest, e)),
            None => cmd.mut_arg(&e.id, |a| {
                a.default_values(e.values.clone()).required(false)
            }),
        }
    }
    entries.iter().fold(cmd, |cmd, e| set(cmd, &e.path, e))
}

/// clap's parse; an invalid value that came from the file is named by its
/// key and line instead of as a flag.
fn clap_parse<P: FromArgMatches>(
    cmd: Command,
    argv: Vec<OsString>,
    entries: &[Entry],
) -> Result<P, Error> {
    let mut m = cmd
        .try_get_matches_from(argv)
        .map_err(|e| from_file(e, entries))?;
    P::from_arg_matches_mut(&mut m).map_err(|e| from_file(e, entries))
}

/// A clap error about a value the file gave, as a config error.
fn from_file(e: clap::Error, entries: &[Entry]) -> Error {
    let text = |k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let (Some(arg), Some(value)) = (
        text(ContextKind::InvalidArg),
        text(ContextKind::InvalidValue),
    ) else {
        return Error::Cli(e);
    };
    let flag = arg.split_whitespace().next().unwrap_or_default();
    let Some(entry) = entries
        .iter()
        .find(|en| en.flag == flag && en.values.contains(&value))
    else {
        return Error::Cli(e);
    };
    let rendered = e.render().to_string();
    let why = rendered
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    let at = if entry.line == 0 {
        format!("config file {}", entry.file.display())
    } else {
        format!("config file {}, line {}", entry.file.display(), entry.line)
    };
    Error::Config(format!(
        "{at}: {} = \"{value}\": {why}; expected {} (what {} takes)",
        entry.key, entry.expected, entry.flag
    ))
}

/// The entries of `cmd`'s keys in the example file's form: each table's
/// header, each key's help and its default, commented out. For the test
/// that keeps `deploy/revdoor.example.toml` complete (it prints what is
/// missing in this form).
#[cfg(test)]
pub fn example_entries(cmd: &Command, only: &[(Vec<String>, String)]) -> String {
    fn walk(
        cmd: &Command,
        path: &mut Vec<String>,
        only: &[(Vec<String>, String)],
        out: &mut String,
    ) {
        let mut header = false;
        for a in keyed_args(cmd, path.is_empty()) {
            let key = arg_key(a);
            if !only.iter().any(|(p, k)| p == path && *k == key) {
                continue;
            }
            if !header && !path.is_empty() {
                let _ = writeln!(out, "\n[{}]", path.join("."));
                header = true;
            }
            let help = a
                .get_long_help()
                .or(a.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            for l in help.lines() {
                let _ = writeln!(out, "# {l}").map(|_| ());
            }
            let value = |v: &str| {
                if v.parse::<i64>().is_ok() || v == "true" || v == "false" {
                    v.to_string()
                } else {
                    format!("\"{v}\"")
                }
            };
            let defaults: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|d| value(&d.to_string_lossy()))
                .collect();
            let shown = match (a.get_action(), defaults.as_slice()) {
                (ArgAction::SetTrue, _) => "false".into(),
                (ArgAction::Append, d) => format!("[{}]", d.join(", ")),
                (_, [one]) => one.clone(),
                _ => "\"\"".into(),
            };
            let _ = writeln!(out, "# {key} = {shown}");
        }
        for sub in cmd.get_subcommands() {
            path.push(key_of(sub.get_name()));
            walk(sub, path, only, out);
            path.pop();
        }
    }
    let mut out = String::new();
    walk(cmd, &mut Vec::new(), only, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand};
    use std::time::Duration;

    #[derive(Parser, Debug)]
    struct T {
        #[arg(
            long,
            global = true,
            env = "REVDOOR_CONFIG_TEST_KAFKA",
            default_value = "k0"
        )]
        kafka: String,
        #[arg(long, global = true)]
        log_json: bool,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Subcommand, Debug)]
    enum Cmd {
        Worker {
            #[command(subcommand)]
            cmd: Sub,
        },
        SwitchTraffic {
            workflow: String,
            #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
            max_lag: Duration,
            #[arg(long, value_delimiter = ',', required = true)]
            tables: Vec<String>,
            #[arg(long = "shard", allow_hyphen_values = true)]
            shards: Vec<String>,
            #[arg(long, default_value = "stop", value_parser = ["stop", "ignore", "exec"])]
            on_ddl: String,
        },
    }

    #[derive(Subcommand, Debug)]
    enum Sub {
        Run {
            #[arg(long, default_value_t = 4)]
            apply_parallelism: usize,
            #[arg(long)]
            id: Option<String>,
        },
    }

    fn file(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(text)
    }

    /// A file under the target dir, removed when dropped.
    mod tempfile_path {
        use std::path::PathBuf;
        use std::sync::atomic::{AtomicUsize, Ordering};

        pub struct TempPath(pub PathBuf);

        impl TempPath {
            pub fn with(text: &str) -> TempPath {
                static N: AtomicUsize = AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "revdoor-config-test-{}-{}.toml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::write(&p, text).expect("write temp config");
                TempPath(p)
            }
        }

        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn parse(args: &[&str], path: Option<&Path>) -> Result<T, Error> {
        parse_from(
            std::iter::once("revdoor")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect(),
            path.map(|p| p.as_os_str().to_owned()),
        )
    }

    fn config_err(r: Result<T, Error>) -> String {
        match r {
            Err(Error::Config(m)) => m,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn keys_come_from_the_command_tree() {
        let keys: Vec<String> = all_keys(&T::command())
            .into_iter()
            .map(|(p, k)| format!("{}:{k}", p.join(".")))
            .collect();
        assert_eq!(
            keys,
            [
                ":kafka",
                ":log_json",
                "worker.run:apply_parallelism",
                "worker.run:id",
                "switch_traffic:max_lag",
                "switch_traffic:tables",
                "switch_traffic:shard",
                "switch_traffic:on_ddl",
            ]
        );
    }

    #[test]
    fn flag_beats_environment_beats_file_beats_default() {
        let f = file("kafka = \"from-file\"\n[worker.run]\napply_parallelism = 8\n");
        // Default without a file; the file's value without flag or variable.
        let t = parse(&["worker", "run"], None).expect("parse");
        assert_eq!(t.kafka, "k0");
        let t = parse(&["worker", "run"], Some(&f.0)).expect("parse");
        assert_eq!(t.kafka, "from-file");
        let Cmd::Worker {
            cmd: Sub::Run {
                apply_parallelism,
                id,
            },
        } = t.cmd
        else {
            panic!("{:?}", t.cmd)
        };
        assert_eq!((apply_parallelism, id), (8, None));
        // --config on the command line instead of the variable.
        let p = f.0.to_str().expect("utf-8 path");
        let t = parse(
            &["--config", p, "worker", "run", "--apply-parallelism", "2"],
            None,
        )
        .expect("parse");
        let Cmd::Worker {
            cmd: Sub::Run {
                apply_parallelism, ..
            },
        } = t.cmd
        else {
            panic!()
        };
        assert_eq!(apply_parallelism, 2, "the flag wins over the file");
        // The variable wins over the file, the flag over the variable.
        std::env::set_var("REVDOOR_CONFIG_TEST_KAFKA", "from-env");
        let t = parse(&["worker", "run"], Some(&f.0)).expect("parse");
        let t2 = parse(&["worker", "run", "--kafka", "from-flag"], Some(&f.0)).expect("parse");
        std::env::remove_var("REVDOOR_CONFIG_TEST_KAFKA");
        assert_eq!(t.kafka, "from-env");
        assert_eq!(t2.kafka, "from-flag");
    }

    #[test]
    fn a_required_flag_and_lists_come_from_the_file() {
        let f = file(
            "log_json = true\n[switch_traffic]\ntables = [\"a.t\", \"b.u\"]\n\
             shard = [\"-80=mysql://h:1\", \"80-=mysql://h:2\"]\nmax_lag = \"250ms\"\n",
        );
        let t = parse(&["switch-traffic", "wf"], Some(&f.0)).expect("parse");
        assert!(t.log_json);
        let Cmd::SwitchTraffic {
            workflow,
            max_lag,
            tables,
            shards,
            on_ddl,
        } = t.cmd
        else {
            panic!()
        };
        assert_eq!(workflow, "wf");
        assert_eq!(max_lag, Duration::from_millis(250));
        assert_eq!(tables, ["a.t", "b.u"]);
        assert_eq!(shards, ["-80=mysql://h:1", "80-=mysql://h:2"]);
        assert_eq!(on_ddl, "stop");
        // Without the file the flag is required again.
        assert!(matches!(
            parse(&["switch-traffic", "wf"], None),
            Err(Error::Cli(_))
        ));
    }

    #[test]
    fn unknown_keys_are_refused_with_the_closest_known_one() {
        let f = file("[worker.run]\napply_paralelism = 8\n");
        let m = config_err(parse(&["worker", "run"], Some(&f.0)));
        assert!(m.contains("line 2"), "{m}");
        assert!(
            m.contains("unknown key `apply_paralelism` in [worker.run]"),
            "{m}"
        );
        assert!(
            m.contains("the closest known key is `apply_parallelism`"),
            "{m}"
        );
        let f = file("kafak = \"x\"\n");
        let m = config_err(parse(&["worker", "run"], Some(&f.0)));
        assert!(m.contains("unknown key `kafak` in the top level"), "{m}");
        assert!(m.contains("closest known key is `kafka`"), "{m}");
        // A global flag inside a command's table.
        let f = file("[worker.run]\nkafka = \"x\"\n");
        let m = config_err(parse(&["worker", "run"], Some(&f.0)));
        assert!(m.contains("unknown key `kafka` in [worker.run]"), "{m}");
        assert!(m.contains("top-level keys"), "{m}");
        // An unknown table.
        let f = file("[wroker.run]\nid = \"x\"\n");
        let m = config_err(parse(&["worker", "run"], Some(&f.0)));
        assert!(m.contains("unknown key `wroker` in the top level"), "{m}");
        assert!(m.contains("`worker`"), "{m}");
    }

    #[test]
    fn bad_values_name_the_key_the_problem_and_the_form() {
        let f = file("[worker.run]\napply_parallelism = \"many\"\n");
        let m = config_err(parse(&["worker", "run"], Some(&f.0)));
        assert!(
            m.contains("line 2: [worker.run] apply_parallelism = \"many\""),
            "{m}"
        );
        assert!(m.contains("invalid digit"), "{m}");
        assert!(m.contains("--apply-parallelism"), "{m}");
        // The command line overrides the bad value: no error.
        parse(&["worker", "run", "--apply-parallelism", "3"], Some(&f.0)).expect("flag wins");
        let f = file("[switch_traffic]\nmax_lag = \"5 parsecs\"\ntables = \"a.t\"\n");
        let m = config_err(parse(&["switch-traffic", "wf"], Some(&f.0)));
        assert!(
            m.contains("[switch_traffic] max_lag = \"5 parsecs\""),
            "{m}"
        );
        assert!(m.contains("unknown time unit"), "{m}");
        let f = file("[switch_traffic]\non_ddl = \"drop\"\ntables = \"a.t\"\n");
        let m = config_err(parse(&["switch-traffic", "wf"], Some(&f.0)));
        assert!(m.contains("on_ddl = \"drop\""), "{m}");
        assert!(
            m.contains("expected one of \"stop\", \"ignore\", \"exec\""),
            "{m}"
        );
        let f = file("log_json = \"yes\"\n");
        let m = config_err(parse(&["worker", "run"], Some(&f.0)));
        assert!(
            m.contains("log_json: \"yes\" is not true or false; expected true or false"),
            "{m}"
        );
        let f = file("[worker.run]\nid = [\"a\", \"b\"]\n");
        let m = config_err(parse(&["worker", "run"], Some(&f.0)));
        assert!(
            m.contains("[worker.run] id: this flag takes one value, not a list"),
            "{m}"
        );
        let f = file("[worker]\nrun = 3\n");
        let m = config_err(parse(&["worker", "run"], Some(&f.0)));
        assert!(
            m.contains("write its flags as a table, [worker.run]"),
            "{m}"
        );
        let f = file("[worker.run\n");
        let m = config_err(parse(&["worker", "run"], Some(&f.0)));
        assert!(m.contains("not valid TOML"), "{m}");
    }

    #[test]
    fn a_missing_file_says_so() {
        let m = config_err(parse(
            &["worker", "run"],
            Some(Path::new("/nonexistent/revdoor.toml")),
        ));
        assert!(
            m.starts_with(
                "config file /nonexistent/revdoor.toml (REVDOOR_CONFIG): cannot read it:"
            ),
            "{m}"
        );
        let m = config_err(parse(
            &["--config=/nonexistent/x.toml", "worker", "run"],
            None,
        ));
        assert!(
            m.starts_with("config file /nonexistent/x.toml (--config)"),
            "{m}"
        );
    }

    /// `deploy/revdoor.example.toml` with every `# key = value` line
    /// uncommented.
    fn example_uncommented() -> String {
        let text = include_str!("../deploy/revdoor.example.toml");
        text.lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty()
                            && k.chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every flag of every command has its entry in the example file, and
    /// every entry there is a key of today's commands with a value of the
    /// right shape: a flag someone adds without documenting it fails here.
    #[test]
    fn the_example_file_documents_every_key() {
        let cmd = crate::Cli::command();
        let text = example_uncommented();
        let found = entries(&cmd, Path::new("deploy/revdoor.example.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}"));
        let documented: Vec<(Vec<String>, String)> = found
            .iter()
            .map(|e| {
                let key = e.key.rsplit(' ').next().unwrap_or_default().to_string();
                (e.path.iter().map(|p| key_of(p)).collect(), key)
            })
            .collect();
        let missing: Vec<(Vec<String>, String)> = all_keys(&cmd)
            .into_iter()
            .filter(|k| !documented.contains(k))
            .collect();
        assert!(
            missing.is_empty(),
            "deploy/revdoor.example.toml lacks {} key(s); add (and edit) these entries:\n{}",
            missing.len(),
            example_entries(&cmd, &missing)
        );
    }
}
