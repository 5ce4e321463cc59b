//! `deploy/stack` itself: start, env, down, port conflicts, failed starts.
//! Each test uses its own state directory, so it never touches the shared
//! stack the other tests run on.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use revdoor_tests::repo_root;

fn stack(state: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(repo_root().join("deploy/stack"));
    cmd.args(args).env("REVDOOR_STACK_DIR", state);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run deploy/stack")
}

fn temp_state(name: &str) -> PathBuf {
    let dir = repo_root()
        .join("target/test-stacks")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir state");
    dir
}

/// PIDs of live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            // Our own test process and zombies have no such command line.
            if cmd.contains(needle) && !cmd.contains("stack_script") {
                pids.push(pid);
            }
        }
    }
    pids
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn up_three_env_down_leaves_no_process_and_avoids_busy_ports() {
    let state = temp_state("full");
    // Occupy the port mariadb-1 would prefer: the stack must pick another.
    // Below the kernel's ephemeral range (32768+): there, a client socket
    // of another test could take a port between the script's check and
    // mariadbd's bind (seen once in CI).
    let (busy, busy_port) = (24_000..31_000)
        .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok().map(|l| (l, p)))
        .expect("a free port below the ephemeral range");
    let env = [("REVDOOR_MARIADB_BASE_PORT", busy_port.to_string())];

    let up = stack(&state, &["up", "--mariadb", "3"], &env);
    assert!(up.status.success(), "up failed:\n{}", text(&up));
    let again = stack(&state, &["up", "--mariadb", "3"], &env);
    assert!(
        again.status.success(),
        "second up failed:\n{}",
        text(&again)
    );
    assert!(
        text(&again).contains("already running"),
        "second up reuses:\n{}",
        text(&again)
    );

    let out = stack(&state, &["env"], &env);
    let env_text = String::from_utf8_lossy(&out.stdout).to_string();
    for var in [
        "REVDOOR_ETCD",
        "REVDOOR_KAFKA",
        "REVDOOR_TOXIPROXY",
        "REVDOOR_KAFKA_PROXY",
        "REVDOOR_MYSQL_1",
        "REVDOOR_MYSQL_2",
        "REVDOOR_MYSQL_3",
    ] {
        assert!(
            env_text.contains(&format!("export {var}=")),
            "env lacks {var}:\n{env_text}"
        );
    }
    assert!(
        !env_text.contains("REVDOOR_MYSQL_4="),
        "exactly 3 servers:\n{env_text}"
    );
    let mysql1 = env_text
        .lines()
        .find(|l| l.starts_with("export REVDOOR_MYSQL_1="))
        .expect("line");
    assert!(
        !mysql1.contains(&format!(":{busy_port}'")),
        "busy port {busy_port} was not reused: {mysql1}"
    );

    // Every server answers on its port with the admin account.
    for i in 1..=3 {
        let port_file = state.join(format!("mariadb-{i}/port"));
        let port = std::fs::read_to_string(&port_file).expect("port file");
        let ok = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h127.0.0.1",
                "-P",
                port.trim(),
                "-uadmin",
                "-padmin-pw",
                "-N",
                "-e",
                "SELECT @@binlog_format, @@binlog_row_metadata, @@server_id",
            ])
            .output()
            .expect("mariadb client");
        let line = String::from_utf8_lossy(&ok.stdout).to_string();
        assert_eq!(
            line.trim(),
            format!("ROW\tFULL\t{i}"),
            "mariadb-{i}: {}",
            text(&ok)
        );
    }
    let status = stack(&state, &["status"], &env);
    assert_eq!(
        text(&status).lines().filter(|l| l.contains(" up ")).count(),
        6,
        "{}",
        text(&status)
    );

    assert!(
        text(&status)
            .lines()
            .any(|l| l.starts_with("toxiproxy") && l.contains(" up ")),
        "{}",
        text(&status)
    );

    let needle = state.to_string_lossy().to_string();
    assert!(processes_mentioning(&needle).len() >= 6, "services run");
    let down = stack(&state, &["down"], &env);
    assert!(down.status.success(), "down failed:\n{}", text(&down));
    let left = processes_mentioning(&needle);
    assert!(
        left.is_empty(),
        "processes left behind after down: {left:?}"
    );
    drop(busy);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_service_that_fails_to_start_is_reported_and_the_rest_rolled_back() {
    let state = temp_state("broken");
    // etcd cannot use a data directory that is a regular file.
    std::fs::create_dir_all(state.join("etcd")).expect("mkdir");
    std::fs::write(state.join("etcd/data"), b"not a directory").expect("write");

    let up = stack(&state, &["up", "--mariadb", "1"], &[]);
    let out = text(&up);
    assert!(!up.status.success(), "up must fail:\n{out}");
    assert!(
        out.contains("FAILED to start etcd"),
        "names the service:\n{out}"
    );
    let log = state.join("etcd/etcd.log");
    assert!(
        out.contains(&log.to_string_lossy().to_string()),
        "names its log {}:\n{out}",
        log.display()
    );
    assert!(out.contains("rolling back"), "says it rolls back:\n{out}");
    let left = processes_mentioning(&state.to_string_lossy());
    assert!(
        left.is_empty(),
        "nothing half-started is left running: {left:?}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn mysql_servers_follow_mariadb_in_env_and_down_stops_them() {
    let state = temp_state("mysql");
    // Occupy the port mysql-1 would prefer (below the ephemeral range, as above).
    let (busy, busy_port) = (24_000..31_000)
        .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok().map(|l| (l, p)))
        .expect("a free port below the ephemeral range");
    let env = [("REVDOOR_MYSQL_BASE_PORT", busy_port.to_string())];

    let up = stack(&state, &["up", "--mariadb", "1", "--mysql", "1"], &env);
    assert!(up.status.success(), "up failed:\n{}", text(&up));
    // `up` never shrinks: without --mysql the MySQL server keeps running.
    let again = stack(&state, &["up", "--mariadb", "1"], &env);
    assert!(
        again.status.success(),
        "second up failed:\n{}",
        text(&again)
    );
    assert!(
        text(&again).contains("mysql-1 already running"),
        "second up reuses mysql-1:\n{}",
        text(&again)
    );

    let out = stack(&state, &["env"], &env);
    let env_text = String::from_utf8_lossy(&out.stdout).to_string();
    for line in [
        "export REVDOOR_ENGINE_1=mariadb",
        "export REVDOOR_ENGINE_2=mysql",
        "export REVDOOR_MYSQL_COUNT=2",
    ] {
        assert!(env_text.contains(line), "env lacks {line}:\n{env_text}");
    }
    assert!(
        !env_text.contains("REVDOOR_MYSQL_3="),
        "exactly 2 servers:\n{env_text}"
    );
    let port = std::fs::read_to_string(state.join("mysql-1/port")).expect("port file");
    let port = port.trim();
    assert_ne!(port, busy_port.to_string(), "busy port was not reused");
    assert!(
        env_text.contains(&format!(
            "export REVDOOR_MYSQL_2='mysql://admin:admin-pw@127.0.0.1:{port}'"
        )),
        "MySQL follows MariaDB:\n{env_text}"
    );

    let status = stack(&state, &["status"], &env);
    let status = text(&status);
    assert_eq!(
        status.lines().filter(|l| l.contains(" up ")).count(),
        5,
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("mysql-1") && l.contains(" up ")),
        "{status}"
    );

    let needle = state.to_string_lossy().to_string();
    let down = stack(&state, &["down"], &env);
    assert!(down.status.success(), "down failed:\n{}", text(&down));
    assert!(
        text(&down).contains("stopped mysql-1"),
        "down stops mysql-1:\n{}",
        text(&down)
    );
    let left = processes_mentioning(&needle);
    assert!(
        left.is_empty(),
        "processes left behind after down: {left:?}"
    );
    drop(busy);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_mysql_server_that_fails_to_start_is_reported_and_the_rest_rolled_back() {
    let state = temp_state("mysql-broken");
    // An initialised server whose data directory is a regular file.
    std::fs::create_dir_all(state.join("mysql-1")).expect("mkdir");
    std::fs::write(state.join("mysql-1/initialized"), b"").expect("write");
    std::fs::write(state.join("mysql-1/data"), b"not a directory").expect("write");

    let up = stack(&state, &["up", "--mariadb", "1", "--mysql", "1"], &[]);
    let out = text(&up);
    assert!(!up.status.success(), "up must fail:\n{out}");
    assert!(
        out.contains("FAILED to start mysql-1"),
        "names the service:\n{out}"
    );
    let log = state.join("mysql-1/error.log");
    assert!(
        out.contains(&log.to_string_lossy().to_string()),
        "names its log {}:\n{out}",
        log.display()
    );
    assert!(
        out.contains("stopped mariadb-1"),
        "rolls back mariadb-1:\n{out}"
    );
    let left = processes_mentioning(&state.to_string_lossy());
    assert!(
        left.is_empty(),
        "nothing half-started is left running: {left:?}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    let state = temp_state("args");
    let o = stack(&state, &["up", "--mariadb", "zero"], &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--mariadb needs a positive number"),
        "{}",
        text(&o)
    );
    let o = stack(&state, &["up", "--mysql", "-1"], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--mysql needs a number"), "{}", text(&o));
    let o = stack(&state, &["sideways"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("usage: deploy/stack"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&state);
}
