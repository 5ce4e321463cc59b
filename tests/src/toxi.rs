//! Network faults through the stack's Toxiproxy (`deploy/stack` runs one
//! `toxiproxy-server`; `REVDOOR_TOXIPROXY` names its HTTP API): proxies
//! created and deleted, toxics added and removed, proxies disabled and
//! enabled. The API is called with `curl` (a Debian package `deploy/stack`
//! installs), so no HTTP crate comes in for four verbs.
//!
//! Each [`Proxy`] has a name unique to its test and is deleted when
//! dropped, which also closes every connection through it.

use std::collections::HashMap;
use std::process::Command;

use anyhow::{bail, Context};

use crate::Stack;

/// The stack's Toxiproxy API.
#[derive(Debug, Clone)]
pub struct Toxi {
    api: String,
    /// The proxy for Kafka: listens on `kafka_proxy` (the address the
    /// broker's PROXIED listener advertises) and forwards to
    /// `kafka_upstream` (that listener).
    kafka_proxy: String,
    kafka_upstream: String,
}

impl Toxi {
    /// The Toxiproxy of `stack`: from the environment (`REVDOOR_TOXIPROXY`,
    /// `REVDOOR_KAFKA_PROXY`, `REVDOOR_KAFKA_PROXY_UPSTREAM`), else from
    /// `deploy/stack env`'s file in the stack's state directory.
    pub fn of(stack: &Stack) -> Toxi {
        let mut vars: HashMap<String, String> =
            std::fs::read_to_string(stack.state_dir.join("env"))
                .map(|t| crate::parse_env_lines(&t))
                .unwrap_or_default();
        vars.extend(std::env::vars());
        let get = |k: &str| {
            vars.get(k).cloned().unwrap_or_else(|| {
                panic!(
                    "{k} is not set and {} has none: start the stack with a deploy/stack that runs Toxiproxy ('deploy/stack up', then eval \"$(deploy/stack env)\")",
                    stack.state_dir.join("env").display()
                )
            })
        };
        Toxi {
            api: get("REVDOOR_TOXIPROXY"),
            kafka_proxy: get("REVDOOR_KAFKA_PROXY"),
            kafka_upstream: get("REVDOOR_KAFKA_PROXY_UPSTREAM"),
        }
    }

    /// A new proxy `name` to `upstream` (`host:port`) on a port Toxiproxy
    /// picks.
    pub fn proxy(&self, name: &str, upstream: &str) -> Proxy {
        self.create(name, "127.0.0.1:0", upstream)
    }

    /// The proxy to the Kafka broker's PROXIED listener, on the fixed port
    /// that listener advertises: a client bootstrapped at
    /// [`Proxy::listen`] stays on the proxy. One test at a time may hold it.
    pub fn kafka_proxy(&self, name: &str) -> Proxy {
        self.create(name, &self.kafka_proxy, &self.kafka_upstream)
    }

    fn create(&self, name: &str, listen: &str, upstream: &str) -> Proxy {
        let body = serde_json::json!({"name": name, "listen": listen, "upstream": upstream});
        let v = self
            .call("POST", "/proxies", Some(&body))
            .unwrap_or_else(|e| panic!("create proxy {name} ({listen} → {upstream}): {e:#}"));
        let listen = v["listen"]
            .as_str()
            .unwrap_or_else(|| {
                panic!("proxy {name}: Toxiproxy answered without a listen address: {v}")
            })
            .to_string();
        Proxy {
            toxi: self.clone(),
            name: name.to_string(),
            listen,
        }
    }

    /// `curl -X <method> <api><path>` with a JSON body; the JSON answer
    /// (`null` for none). An HTTP status ≥ 400 is an error naming it.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.api);
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}", &url]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
        }
        let out = cmd
            .output()
            .context("run curl (deploy/stack installs it)")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "curl {method} {url}: {}{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let (json, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let code: u16 = code.trim().parse().unwrap_or(0);
        if code >= 400 || code == 0 {
            bail!("{method} {url}: HTTP {code}: {json}");
        }
        Ok(serde_json::from_str(json).unwrap_or(serde_json::Value::Null))
    }
}

/// One proxy; deleted on drop.
pub struct Proxy {
    toxi: Toxi,
    pub name: String,
    /// `host:port` clients connect to.
    pub listen: String,
}

impl Proxy {
    /// Add toxic `toxic` of `kind` (`latency`, `reset_peer`, …) on the
    /// `stream` (`downstream`: server → client, or `upstream`) with
    /// `attributes`.
    pub fn add_toxic(&self, toxic: &str, kind: &str, stream: &str, attributes: serde_json::Value) {
        let body = serde_json::json!({
            "name": toxic, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes,
        });
        self.toxi
            .call(
                "POST",
                &format!("/proxies/{}/toxics", self.name),
                Some(&body),
            )
            .unwrap_or_else(|e| panic!("proxy {}: add toxic {toxic}: {e:#}", self.name));
    }

    pub fn remove_toxic(&self, toxic: &str) {
        self.toxi
            .call(
                "DELETE",
                &format!("/proxies/{}/toxics/{toxic}", self.name),
                None,
            )
            .unwrap_or_else(|e| panic!("proxy {}: remove toxic {toxic}: {e:#}", self.name));
    }

    /// Every reply delayed by `ms` milliseconds (toxic `latency`).
    pub fn latency(&self, ms: u64) {
        self.add_toxic(
            "latency",
            "latency",
            "downstream",
            serde_json::json!({"latency": ms, "jitter": 0}),
        );
    }

    /// Every connection reset (TCP RST) as soon as data arrives, new ones
    /// too, until [`Proxy::remove_toxic`]`("reset")` (toxic `reset_peer`).
    pub fn resets(&self) {
        self.add_toxic(
            "reset",
            "reset_peer",
            "upstream",
            serde_json::json!({"timeout": 0}),
        );
    }

    /// Disabled: every connection closed and new ones refused (a
    /// partition); enabled again: it forwards.
    pub fn set_enabled(&self, enabled: bool) {
        self.toxi
            .call(
                "POST",
                &format!("/proxies/{}", self.name),
                Some(&serde_json::json!({"enabled": enabled})),
            )
            .unwrap_or_else(|e| panic!("proxy {}: set enabled={enabled}: {e:#}", self.name));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Err(e) = self
            .toxi
            .call("DELETE", &format!("/proxies/{}", self.name), None)
        {
            eprintln!("delete proxy {}: {e:#}", self.name);
        }
    }
}
