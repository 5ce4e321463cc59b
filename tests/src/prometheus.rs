//! A real Prometheus server (Debian's `prometheus`, installed by
//! `deploy/stack install`) started on a free port, scraping the `revdoor`
//! processes of a test every second from static targets written here; its
//! HTTP API queried; and the `/metrics` text of a process read directly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("find a free port: {e}"))
}

/// A Prometheus server; killed on drop.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Prometheus {
    /// Start Prometheus with its data, config and log under `dir`, scraping
    /// `targets` (`host:port`, job `revdoor`) every second.
    pub fn start(dir: &Path, targets: &[String]) -> Prometheus {
        let bin = which("prometheus").unwrap_or_else(|| {
            panic!("prometheus is not installed: run 'deploy/stack install' (Debian package prometheus)")
        });
        let port = free_port();
        let config = dir.join("prometheus.yml");
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: revdoor\n    static_configs:\n      - targets: [{list}]\n"
            ),
        )
        .unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).expect("prometheus log");
        let err = out.try_clone().expect("dup prometheus log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start prometheus: {e}"));
        Prometheus { child, port, log }
    }

    /// Wait until Prometheus answers and has scraped every target
    /// successfully (`up == 1`).
    pub async fn wait_targets_up(&self, targets: usize, within: Duration) {
        let r = crate::wait_for("prometheus scraping every target", within, || async {
            Ok(self
                .query("sum(up{job=\"revdoor\"})")
                .ok()
                .and_then(|v| v.first().map(|(_, x)| *x))
                .filter(|up| *up as usize == targets))
        })
        .await;
        if let Err(e) = r {
            panic!(
                "{e}; prometheus log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// An instant query: each series' labels and value.
    pub fn query(&self, expr: &str) -> anyhow::Result<Vec<(serde_json::Value, f64)>> {
        let path = format!("/api/v1/query?query={}", url_encode(expr));
        let body = http_get(&format!("127.0.0.1:{}", self.port), &path)?;
        let v: serde_json::Value =
            serde_json::from_str(&body).with_context(|| format!("query {expr}: {body}"))?;
        if v["status"] != "success" {
            bail!("query {expr}: {v}");
        }
        let mut out = Vec::new();
        for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
            let value = r["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .with_context(|| format!("query {expr}: value of {r}"))?;
            out.push((r["metric"].clone(), value));
        }
        Ok(out)
    }

    /// The one value of `expr` (a query that must return one series).
    pub fn value(&self, expr: &str) -> anyhow::Result<Option<f64>> {
        let v = self.query(expr)?;
        match v.as_slice() {
            [] => Ok(None),
            [(_, x)] => Ok(Some(*x)),
            _ => bail!("query {expr} returned {} series: {v:?}", v.len()),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` from `addr` over HTTP/1.0; the body of a 200 answer.
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .with_context(|| format!("read GET {path} from {addr}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("GET {path} from {addr}: no HTTP header"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        bail!("GET {path} from {addr}: {status}: {body}");
    }
    Ok(body.to_string())
}

/// The metric names a `/metrics` text exposes (its `# TYPE` lines).
pub fn exposed_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A program on the PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

/// The value of the series `name` whose labels include every `labels`
/// pair, in a `/metrics` text; `None` when there is no such series.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            (n == name).then_some((rest, value))
        })
        .find(|(rest, _)| {
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, v)| v.parse().ok())
}
