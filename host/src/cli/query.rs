//! `weir query` and `weir status`: ask a running instance's admin API and
//! print the JSON it answers.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;

use crate::admin::percent_encode;

/// Print a key's current value in a stateful stage (for a windowed stage,
/// its windows), from the instance that owns the key's partition.
#[derive(Debug, Args)]
pub struct Query {
    /// The instance's admin API address (printed by `weir run`).
    #[arg(long, value_name = "HOST:PORT")]
    pub admin: String,
    /// The stateful stage.
    pub stage: String,
    /// The record key (UTF-8).
    pub key: String,
    /// Windows starting at or after this time (ms since the epoch).
    #[arg(long, value_name = "MS")]
    pub from: Option<i64>,
    /// Windows starting before this time (ms since the epoch).
    #[arg(long, value_name = "MS")]
    pub to: Option<i64>,
}

impl Query {
    /// Runs the query.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let mut path = format!(
            "/stores/{}/{}",
            percent_encode(self.stage.as_bytes()),
            percent_encode(self.key.as_bytes())
        );
        let params: Vec<String> = [("from", self.from), ("to", self.to)]
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
            .collect();
        if !params.is_empty() {
            path = format!("{path}?{}", params.join("&"));
        }
        print_json(&self.admin, &path)
    }
}

/// Print a running instance's status: tasks, partitions, stages with module
/// versions, stores, restores and lag.
#[derive(Debug, Args)]
pub struct StatusCmd {
    /// The instance's admin API address (printed by `weir run`).
    #[arg(long, value_name = "HOST:PORT")]
    pub admin: String,
}

impl StatusCmd {
    /// Prints `/status`.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        print_json(&self.admin, "/status")
    }
}

fn print_json(addr: &str, path: &str) -> anyhow::Result<ExitCode> {
    let (code, body) = get(addr, path)?;
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(body);
    println!("{pretty}");
    Ok(if code == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A plain HTTP/1.0 GET: the admin API is local and tiny, so this is all
/// the client needed.
fn get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)
        .with_context(|| format!("cannot reach the admin API at {addr}; is `weir run` running there?"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("{addr} answered something that is not HTTP");
    };
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, body.to_owned()))
}
