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

/// Print running instances' status: tasks, partitions, stages with module
/// versions and swaps in progress, stores, restores and lag.
#[derive(Debug, Args)]
pub struct StatusCmd {
    /// An instance's admin API address (printed by `weir run`); repeat it
    /// to see several instances.
    #[arg(long, value_name = "HOST:PORT", required = true)]
    pub admin: Vec<String>,
    /// Print only the module version of every stage per instance and task,
    /// and swaps in progress, as a table.
    #[arg(long)]
    pub versions: bool,
}

impl StatusCmd {
    /// Prints `/status` of each instance.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        if !self.versions && self.admin.len() == 1 {
            return print_json(&self.admin[0], "/status");
        }
        let mut all = Vec::new();
        for addr in &self.admin {
            let (code, body) = get(addr, "/status")?;
            if code != 200 {
                bail!("{addr} answered {code}: {body}");
            }
            all.push(serde_json::from_str::<serde_json::Value>(&body).with_context(|| format!("{addr}: not JSON"))?);
        }
        if !self.versions {
            println!("{}", serde_json::to_string_pretty(&all)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!("{:<20} {:<28} {:<16} VERSION", "INSTANCE", "TASK", "STAGE");
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        for st in &all {
            let instance = format!("{}/{}", text(&st["application"]), text(&st["instance"]));
            for t in st["tasks"].as_array().into_iter().flatten() {
                let task = format!("{}[{}]", text(&t["topic"]), t["partition"]);
                let stages = t["stages"].as_array().cloned().unwrap_or_default();
                let modules = t["modules"].as_array().cloned().unwrap_or_default();
                for (stage, module) in stages.iter().zip(&modules) {
                    println!("{instance:<20} {task:<28} {:<16} {}", text(stage), text(module));
                }
            }
            for m in st["modules"].as_array().into_iter().flatten() {
                if let Some(p) = m["pending"].as_str() {
                    println!(
                        "{instance:<20} {:<28} {:<16} swap in progress: {p}",
                        "-",
                        text(&m["stage"])
                    );
                }
                if let Some(g) = m.get("guard").filter(|g| !g.is_null()) {
                    println!(
                        "{instance:<20} {:<28} {:<16} guard: {} of {} record(s) failed (watching the first {})",
                        "-",
                        text(&m["stage"]),
                        g["failed"],
                        g["seen"],
                        g["first"]
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
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
