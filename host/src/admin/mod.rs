//! The admin HTTP API of a running instance, on loopback by default:
//!
//! - `GET /metrics`: Prometheus text — records in and out, per-stage
//!   outcomes, commits, aborts, time spent committing, assigned partitions;
//! - `GET /status`: JSON — application, instance, guarantee, stages with
//!   their module versions, assigned partitions, counters.
//!
//! - `GET /stores/<stage>/<key>[?from=MS&to=MS]`: JSON — a key's current
//!   value in a stateful stage (for a windowed stage, its windows whose start
//!   is in `[from, to)`), read from the committed state of this instance's
//!   tasks, shown through the stage's own `emit`.
//!
//! It serves from its own thread and reads only shared counters, views
//! refreshed at each commit, and committed state, so a slow client never
//! slows the pipeline.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;

use crate::shutdown::Shutdown;
use crate::status::{QueryError, Status, StoreView};

impl Status {
    /// `/status` as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let m = self.metrics.snapshot();
        let swaps = self.swaps.lock().map(|v| v.clone()).unwrap_or_default();
        json!({
            "application": self.application_id,
            "instance": self.instance_id,
            "guarantee": self.guarantee,
            "uptime_seconds": self.started.elapsed().as_secs(),
            "stages": self.stages.iter().zip(&m.stages).enumerate().map(|(i, ((name, module), c))| json!({
                "name": name,
                // The version running now (a hot swap changes it).
                "module": swaps.get(i).map_or(module, |v| &v.active),
                "counters": c,
            })).collect::<Vec<_>>(),
            "partitions": self.assigned().iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>(),
            "consumed": m.consumed,
            "produced": m.produced,
            "commits": m.commits,
            "aborts": m.aborts,
            "tasks": self.views().tasks,
            "lag": self.views().lag.iter().map(|((t, p), lag)| json!({"topic": t, "partition": p, "lag": lag})).collect::<Vec<_>>(),
            "stores": self.views().stores,
            "modules": swaps,
            "restores": self.restores().iter().map(|((stage, p), r)| json!({"stage": stage, "partition": p, "restore": r})).collect::<Vec<_>>(),
        })
    }

    /// `/metrics` in the Prometheus text format.
    pub fn to_prometheus(&self) -> String {
        let m = self.metrics.snapshot();
        let commit_seconds = self.metrics.commit_micros.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6;
        let base = format!(
            "application=\"{}\",instance=\"{}\"",
            escape(&self.application_id),
            escape(&self.instance_id)
        );
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{{{base}{labels}}} {value}");
            }
        };
        let one = |v: u64| vec![(String::new(), v.to_string())];
        metric(
            "weir_records_consumed_total",
            "counter",
            "Records consumed from the input topics.",
            &one(m.consumed),
        );
        metric(
            "weir_records_produced_total",
            "counter",
            "Records sent to output, route and dead-letter topics.",
            &one(m.produced),
        );
        metric(
            "weir_commits_total",
            "counter",
            "Transactions or offset commits that succeeded.",
            &one(m.commits),
        );
        metric(
            "weir_aborts_total",
            "counter",
            "Transactions aborted and rewound.",
            &one(m.aborts),
        );
        metric(
            "weir_commit_seconds_total",
            "counter",
            "Time spent committing.",
            &[(String::new(), format!("{commit_seconds:.6}"))],
        );
        metric(
            "weir_assigned_partitions",
            "gauge",
            "Input partitions assigned to this instance.",
            &one(self.assigned().len() as u64),
        );
        let per_stage = |f: &dyn Fn(&crate::metrics::StageSnapshot) -> u64| -> Vec<(String, String)> {
            m.stages
                .iter()
                .map(|s| (format!(",stage=\"{}\"", escape(&s.name)), f(s).to_string()))
                .collect()
        };
        metric(
            "weir_stage_events_total",
            "counter",
            "Events into a stage.",
            &per_stage(&|s| s.events),
        );
        metric(
            "weir_stage_outputs_total",
            "counter",
            "Outputs of a stage.",
            &per_stage(&|s| s.outputs),
        );
        let mut outcomes = Vec::new();
        for s in &m.stages {
            let stage = escape(&s.name);
            for (outcome, v) in [
                ("failed", s.failed),
                ("trapped", s.trapped),
                ("skipped", s.skipped),
                ("dead_lettered", s.dead_lettered),
            ] {
                outcomes.push((format!(",stage=\"{stage}\",outcome=\"{outcome}\""), v.to_string()));
            }
        }
        metric(
            "weir_stage_failures_total",
            "counter",
            "Events a stage failed on (failed = all; trapped = of those, traps) and what the error policy did.",
            &outcomes,
        );
        metric(
            "weir_stage_late_total",
            "counter",
            "Events later than their window's end plus grace.",
            &per_stage(&|s| s.late),
        );
        let views = self.views();
        let partition_labels = |t: &str, p: i32| format!(",topic=\"{}\",partition=\"{p}\"", escape(t));
        metric(
            "weir_consumer_lag_records",
            "gauge",
            "Records behind the end of an assigned partition.",
            &views
                .lag
                .iter()
                .map(|((t, p), l)| (partition_labels(t, *p), l.to_string()))
                .collect::<Vec<_>>(),
        );
        let store_labels = |s: &StoreView| format!(",stage=\"{}\",partition=\"{}\"", escape(&s.stage), s.partition);
        metric(
            "weir_state_keys",
            "gauge",
            "Entries in a state store (RocksDB's estimate).",
            &views
                .stores
                .iter()
                .map(|s| (store_labels(s), s.keys.to_string()))
                .collect::<Vec<_>>(),
        );
        metric(
            "weir_state_open_windows",
            "gauge",
            "Windows not yet closed in a state store.",
            &views
                .stores
                .iter()
                .map(|s| (store_labels(s), s.open_windows.to_string()))
                .collect::<Vec<_>>(),
        );
        let restores = self.restores();
        let restore_labels = |stage: &str, p: i32| format!(",stage=\"{}\",partition=\"{p}\"", escape(stage));
        metric(
            "weir_restore_records",
            "gauge",
            "Changelog records restored into a store.",
            &restores
                .iter()
                .map(|((s, p), r)| (restore_labels(s, *p), r.restored.to_string()))
                .collect::<Vec<_>>(),
        );
        metric(
            "weir_restore_remaining_records",
            "gauge",
            "Changelog records left to restore (0 when done).",
            &restores
                .iter()
                .map(|((s, p), r)| {
                    let left = if r.state == "done" {
                        0
                    } else {
                        r.total.saturating_sub(r.restored)
                    };
                    (restore_labels(s, *p), left.to_string())
                })
                .collect::<Vec<_>>(),
        );
        out
    }
}

/// Prometheus label values escape backslash, quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The admin server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve the admin API on {addr}: {reason} (choose another with --admin HOST:PORT, or --admin off)")]
pub struct AdminError {
    /// The address asked for.
    pub addr: String,
    /// Why.
    pub reason: String,
}

/// A running admin server; stops when dropped (not at the process's first
/// signal: it answers while the last batch commits).
pub struct Admin {
    stop: Shutdown,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Admin {
    /// Serves `status` on `addr` (`127.0.0.1:0` picks a free port).
    pub fn start(addr: &str, status: Arc<Status>) -> Result<Admin, AdminError> {
        let error = |reason: String| AdminError {
            addr: addr.to_owned(),
            reason,
        };
        let server = tiny_http::Server::http(addr).map_err(|e| error(e.to_string()))?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| error("not an IP address".into()))?;
        let stop = Shutdown::new();
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("weir-admin".into())
            .spawn(move || serve(&server, &status, &stopping))
            .map_err(|e| error(e.to_string()))?;
        Ok(Admin {
            stop,
            addr: bound,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        // `recv_timeout` does not see `unblock`, so the loop polls the token.
        self.stop.request();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &tiny_http::Server, status: &Status, stop: &Shutdown) {
    while !stop.requested() {
        let request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            // A dead listener.
            Err(_) => return,
        };
        let url = request.url().to_owned();
        let (code, content_type, body) = match (request.method(), url.as_str()) {
            (tiny_http::Method::Get, "/metrics") => (200, "text/plain; version=0.0.4", status.to_prometheus()),
            (tiny_http::Method::Get, "/status") => (200, "application/json", status.to_json().to_string()),
            (tiny_http::Method::Get, u) if u.starts_with("/stores/") => {
                let (code, body) = store_query(status, u);
                (code, "application/json", body.to_string())
            }
            _ => (
                404,
                "application/json",
                json!({"error": "not found", "endpoints": ["/metrics", "/status", "/stores/<stage>/<key>?from=&to="]})
                    .to_string(),
            ),
        };
        let mut response = tiny_http::Response::from_string(body).with_status_code(code);
        if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
            response = response.with_header(h);
        }
        // A client that went away is its own problem.
        let _ = request.respond(response);
    }
}

/// `/stores/<stage>/<key>[?from=MS&to=MS]` (stage and key percent-encoded).
fn store_query(status: &Status, url: &str) -> (u16, serde_json::Value) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let rest = &path["/stores/".len()..];
    let Some((stage, key)) = rest.split_once('/') else {
        return (400, json!({"error": "expected /stores/<stage>/<key>"}));
    };
    let (stage, key) = (percent_decode(stage), percent_decode(key));
    let Ok(stage) = String::from_utf8(stage) else {
        return (400, json!({"error": "the stage name is not UTF-8"}));
    };
    let mut range = (i64::MIN, i64::MAX);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let Ok(v) = v.parse::<i64>() else {
            return (
                400,
                json!({"error": format!("{k}: expected milliseconds, found {v:?}")}),
            );
        };
        match k {
            "from" => range.0 = v,
            "to" => range.1 = v,
            other => return (400, json!({"error": format!("unknown parameter {other:?} (from, to)")})),
        }
    }
    let Some(queries) = &status.queries else {
        return (404, json!({"error": "this pipeline keeps no state"}));
    };
    match queries.query(&stage, &key, range.0, range.1) {
        Ok(v) => (200, v),
        Err(e @ QueryError::NoStage(_)) => (404, json!({"error": e.to_string()})),
        Err(e) => (500, json!({"error": e.to_string()})),
    }
}

/// `%XX` escapes to bytes (keys may be any bytes).
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters.
pub fn percent_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            let _ = write!(out, "%{c:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::status::{RestoreState, Views};
    use std::sync::Mutex;
    use std::time::Instant;

    fn status() -> Status {
        let metrics = Metrics::new(["route"]);
        crate::metrics::add(&metrics.consumed, 7);
        crate::metrics::add(&metrics.stages[0].dead_lettered, 2);
        Status {
            application_id: "app".into(),
            instance_id: "0".into(),
            guarantee: "exactly-once".into(),
            stages: vec![("route".into(), "m@sha256:ab".into())],
            metrics,
            assigned: Arc::new(Mutex::new([("in".to_owned(), 1)].into_iter().collect())),
            started: Instant::now(),
            restores: Arc::new(Mutex::new(
                [(
                    ("count".to_owned(), 1),
                    RestoreState::done(5, 5, Duration::from_millis(3), false),
                )]
                .into(),
            )),
            views: Arc::new(Mutex::new(Views {
                tasks: vec![],
                stores: vec![],
                lag: [(("in".to_owned(), 1), 42)].into(),
            })),
            queries: None,
            swaps: Arc::default(),
        }
    }

    #[test]
    fn prometheus_text_has_help_type_and_labels() {
        let text = status().to_prometheus();
        assert!(text.contains("# TYPE weir_records_consumed_total counter"));
        assert!(
            text.contains("weir_records_consumed_total{application=\"app\",instance=\"0\"} 7"),
            "{text}"
        );
        assert!(text.contains(
            "weir_stage_failures_total{application=\"app\",instance=\"0\",stage=\"route\",outcome=\"dead_lettered\"} 2"
        ));
        assert!(text.contains("weir_assigned_partitions{application=\"app\",instance=\"0\"} 1"));
        assert!(
            text.contains(
                "weir_consumer_lag_records{application=\"app\",instance=\"0\",topic=\"in\",partition=\"1\"} 42"
            ),
            "{text}"
        );
        assert!(
            text.contains("weir_restore_records{application=\"app\",instance=\"0\",stage=\"count\",partition=\"1\"} 5"),
            "{text}"
        );
        assert_eq!(percent_decode(&percent_encode(b"a b/%\xff")), b"a b/%\xff");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn serves_metrics_status_and_404() {
        let admin = Admin::start("127.0.0.1:0", Arc::new(status())).unwrap();
        let get = |path: &str| {
            use std::io::{Read as _, Write as _};
            let mut s = std::net::TcpStream::connect(admin.addr()).unwrap();
            write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut body = String::new();
            s.read_to_string(&mut body).unwrap();
            body
        };
        assert!(get("/metrics").contains("weir_records_consumed_total"));
        let status = get("/status");
        assert!(
            status.contains("\"application\":\"app\"") && status.contains("\"topic\":\"in\""),
            "{status}"
        );
        assert!(get("/nope").starts_with("HTTP/1.0 404") || get("/nope").contains("404"));
    }
}
