//! Tables and joins, each example checked against a plain reference
//! implementation in this file — through the broker-free driver, on the
//! test broker, under SIGKILL with both inputs flowing, and in `weir dev`:
//! - `orders-enriched`: a stream-table left join of orders with a table of
//!   customers read from a CDC topic, while customers change and are deleted;
//! - `accounts-limits`: a table-table join of two compacted topics (inner,
//!   left and outer), its result a table of its own;
//! - `searches-clicks`: a windowed stream-stream join (inner, left and
//!   outer), unmatched searches coming out as their windows close;
//! - `trades-instruments`: trades joined with a global table of instruments
//!   by a field of the trade;
//! - `users-per-region`: a table re-grouped and counted (a table
//!   aggregation), as users move between regions and leave.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::crash;
use support::kafka::{
    Feeder, In, WeirProcess, admin_addr, broker, committed, create_topic, produce, produce_as_java, unique, until,
};
use support::{example_body as body_of, guests, heavy, repo, weir};
use weir_test_harness::committed::CommittedRecord;

const EXIT_WAIT: Duration = Duration::from_secs(60);

/// A change of the customers topic: a new value, or a delete (`None`).
#[derive(Debug, Clone)]
struct Change {
    customer: String,
    value: Option<String>,
    ts: i64,
}

/// An order of a customer.
#[derive(Debug, Clone)]
struct Order {
    seq: usize,
    customer: String,
    ts: i64,
}

impl Order {
    fn json(&self) -> String {
        format!(r#"{{"order":{},"customer":"{}"}}"#, self.seq, self.customer)
    }
}

/// A seeded xorshift, so runs repeat.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The reference: what the `pair` joiner makes of an order and the
/// customer's current value (a left join: `null` without one).
fn enriched(order: &Order, customer: Option<&String>) -> String {
    format!(
        r#"{{"left":{},"right":{}}}"#,
        order.json(),
        customer.map_or("null", String::as_str)
    )
}

/// A pipeline file for the test broker in `dir`: `extra` top-level keys, a
/// state directory in `dir`, `body`, and `[kafka]`.
fn broker_file(dir: &Path, body: &str, extra: &str) -> PathBuf {
    let path = dir.join("pipeline.toml");
    std::fs::write(
        &path,
        format!(
            "{extra}\nstate-dir = \"{}\"\n{body}\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\
             \"transaction.timeout.ms\" = 10000\n\"linger.ms\" = 5\n\"session.timeout.ms\" = 6000\n",
            dir.join("state").display(),
            broker().bootstrap
        ),
    )
    .unwrap();
    path
}

/// The broker-free driver for the pipeline `body`, record by record.
fn driver_for(body: &str) -> weir::testing::Driver {
    let pipeline = weir::pipeline::Pipeline::parse(Path::new("/driven/pipeline.toml"), body).unwrap();
    let runtime = weir::runtime::Runtime::new(weir::runtime::RuntimeConfig::default()).unwrap();
    weir::testing::Driver::new(&pipeline, &runtime, 1).unwrap()
}

/// An input record as the driver takes it.
fn event_of(r: &In) -> weir::event::Event {
    weir::event::Event {
        key: r.key.clone(),
        value: r.value.clone(),
        timestamp: r.timestamp.unwrap_or(0),
        ..weir::event::Event::default()
    }
}

/// What the driver sent to `topic`: key, value (UTF-8), timestamp.
fn driven(driver: &mut weir::testing::Driver, topic: &str) -> Vec<(String, String, i64)> {
    driver
        .take_output(topic)
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key.unwrap_or_default()).unwrap(),
                String::from_utf8(r.value.unwrap_or_default()).unwrap(),
                r.timestamp,
            )
        })
        .collect()
}

/// A store's row of `key` through `weir query` (`None`: no row).
fn query_row(addr: &str, stage: &str, key: &str) -> Option<String> {
    let out = weir()
        .args(["query", "--admin", addr, stage, key])
        .output()
        .expect("run weir query");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("weir query printed no JSON ({e}): {text}"));
    v["value"]["value"].as_str().map(str::to_owned)
}

/// The orders-enriched example with `app` and `topics`.
fn example_body(app: &str, topics: &Topics) -> String {
    body_of(
        "orders-enriched.toml",
        app,
        &[
            ("orders-enriched", &topics.out),
            ("orders", &topics.orders),
            ("customers", &topics.customers),
        ],
    )
}

struct Topics {
    orders: String,
    customers: String,
    out: String,
}

fn change_record(c: &Change) -> In {
    In {
        key: Some(c.customer.clone().into_bytes()),
        value: c.value.clone().map(String::into_bytes),
        timestamp: Some(c.ts),
        ..In::default()
    }
}

fn order_record(o: &Order) -> In {
    In {
        key: Some(o.customer.clone().into_bytes()),
        value: Some(o.json().into_bytes()),
        timestamp: Some(o.ts),
        ..In::default()
    }
}

/// Results by order number: (key, value, timestamp).
fn by_order(records: &[CommittedRecord]) -> ByOrder {
    let mut out: BTreeMap<u64, Vec<(String, String, i64)>> = BTreeMap::new();
    for r in records {
        let value = String::from_utf8(r.value.clone().unwrap_or_default()).unwrap();
        let v: Value = serde_json::from_str(&value).unwrap_or_else(|e| panic!("{e}: {value}"));
        let seq = v["left"]["order"].as_u64().expect("an order number");
        let key = String::from_utf8(r.key.clone().unwrap_or_default()).unwrap();
        out.entry(seq).or_default().push((key, value, r.timestamp));
    }
    out
}

fn want_by_order(want: &[(Order, String)]) -> ByOrder {
    want.iter()
        .map(|(o, v)| (o.seq as u64, vec![(o.customer.clone(), v.clone(), o.ts)]))
        .collect()
}

type ByOrder = BTreeMap<u64, Vec<(String, String, i64)>>;

/// Asserts equal results per order, listing the first differences only.
#[track_caller]
fn assert_same(got: &ByOrder, want: &ByOrder, what: &str) {
    let diffs: Vec<String> = want
        .keys()
        .chain(got.keys().filter(|k| !want.contains_key(k)))
        .filter(|k| got.get(k) != want.get(k))
        .take(10)
        .map(|k| format!("order {k}: got {:?}, want {:?}", got.get(k), want.get(k)))
        .collect();
    assert!(
        diffs.is_empty(),
        "{what}: {} orders, {} expected; first differences:\n{}",
        got.len(),
        want.len(),
        diffs.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Through the driver: one timeline of changes and orders, by timestamp.

#[test]
fn orders_enriched_through_the_driver_as_the_reference_says() {
    let topics = Topics {
        orders: "orders".into(),
        customers: "customers".into(),
        out: "orders-enriched".into(),
    };
    let mut rng = Rng(7);
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    let mut timeline: Vec<(&str, In)> = Vec::new();
    // Key, value, timestamp.
    let mut want: Vec<(String, String, i64)> = Vec::new();
    let mut keyless = 0;
    for i in 0..600 {
        let ts = 1_000 + i as i64;
        let customer = format!("c{}", rng.below(12));
        match rng.below(10) {
            0..=2 => {
                let c = Change {
                    customer: customer.clone(),
                    value: Some(format!(r#"{{"id":"{customer}","v":{i}}}"#)),
                    ts,
                };
                table.insert(customer, c.value.clone().unwrap());
                timeline.push(("customers", change_record(&c)));
            }
            3 => {
                let c = Change {
                    customer: customer.clone(),
                    value: None,
                    ts,
                };
                table.remove(&customer);
                timeline.push(("customers", change_record(&c)));
            }
            4 if i % 5 == 0 => {
                // An order without a key: a left join joins it with an
                // absent customer (KIP-962), keyless.
                let o = Order { seq: i, customer, ts };
                timeline.push((
                    "orders",
                    In {
                        key: None,
                        ..order_record(&o)
                    },
                ));
                want.push((String::new(), enriched(&o, None), ts));
                keyless += 1;
            }
            _ => {
                let o = Order { seq: i, customer, ts };
                let v = enriched(&o, table.get(&o.customer));
                timeline.push(("orders", order_record(&o)));
                want.push((o.customer.clone(), v, ts));
            }
        }
    }
    let mut driver = driver_for(&example_body("drive-enrich", &topics));
    for (topic, r) in &timeline {
        let event = event_of(r);
        driver.pipe(topic, vec![event]).unwrap();
    }
    let got = driven(&mut driver, "orders-enriched");
    assert_eq!(got.len(), want.len());
    assert_eq!(
        got, want,
        "one result per order, in order, with the customer as it was then"
    );
    assert!(
        want.iter()
            .any(|(k, v, _)| !k.is_empty() && v.ends_with(r#""right":null}"#)),
        "some orders find no customer"
    );
    assert!(keyless > 0, "some orders have no key");
    assert!(
        driver.outputs().keys().all(|t| *t == "orders-enriched"),
        "{:?}",
        driver.outputs().keys()
    );
    let stages = driver.chain().metrics().snapshot().stages;
    assert_eq!(stages[1].dropped, 0, "keyless orders are joined, not dropped");
    // The table is the last value of each customer; deleted ones are gone.
    let state: BTreeMap<String, String> = driver
        .state()
        .unwrap()
        .into_iter()
        .map(|e| {
            assert_eq!(e["store"], "customer-table");
            (
                e["key"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(state, table);
}

// ---------------------------------------------------------------------------
// On the broker.

/// A file for the example on the test broker.
fn pipeline(dir: &Path, app: &str, topics: &Topics, extra: &str) -> PathBuf {
    broker_file(dir, &example_body(app, topics), extra)
}

fn new_topics(partitions: i32) -> Topics {
    let t = Topics {
        orders: unique("orders"),
        customers: unique("customers"),
        out: unique("enriched"),
    };
    for topic in [&t.orders, &t.customers, &t.out] {
        create_topic(topic, partitions);
    }
    t
}

/// The customer table's row of `customer` (`None`: no row).
fn row(addr: &str, customer: &str) -> Option<String> {
    query_row(addr, "customer-table", customer)
}

/// Waits until the table shows `table` for each of `customers`.
fn wait_rows(addr: &str, customers: &[String], table: &BTreeMap<String, String>) {
    let want: Vec<Option<String>> = customers.iter().map(|c| table.get(c).cloned()).collect();
    let got = until(&want, Duration::from_secs(60), || {
        customers.iter().map(|c| row(addr, c)).collect::<Vec<_>>()
    });
    assert_eq!(got, want, "the table shows the changes");
}

/// Customers change and are deleted while orders flow: rounds of changes
/// (waited for through interactive queries of the table), then orders that
/// must see them.
#[test]
fn orders_enriched_on_the_broker_while_customers_change() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let topics = new_topics(2);
    let app = unique("enrich");
    let file = pipeline(dir.path(), &app, &topics, "");
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    let mut rng = Rng(11);
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    let mut want: Vec<(Order, String)> = Vec::new();
    let mut ts = 1_000;
    let mut seq = 0;
    for round in 0..6 {
        let mut changes = Vec::new();
        for _ in 0..20 {
            ts += 1;
            let customer = format!("c{}", rng.below(15));
            let value = (round == 0 || rng.below(4) != 0).then(|| format!(r#"{{"id":"{customer}","round":{round}}}"#));
            match &value {
                Some(v) => table.insert(customer.clone(), v.clone()),
                None => table.remove(&customer),
            };
            changes.push(Change { customer, value, ts });
        }
        produce(
            &topics.customers,
            &changes.iter().map(change_record).collect::<Vec<_>>(),
        );
        let mut changed: Vec<String> = changes.iter().map(|c| c.customer.clone()).collect();
        changed.sort();
        changed.dedup();
        wait_rows(&addr, &changed, &table);
        let mut orders = Vec::new();
        for _ in 0..100 {
            ts += 1;
            seq += 1;
            let o = Order {
                seq,
                customer: format!("c{}", rng.below(18)),
                ts,
            };
            want.push((o.clone(), enriched(&o, table.get(&o.customer))));
            orders.push(o);
        }
        produce(&topics.orders, &orders.iter().map(order_record).collect::<Vec<_>>());
        // The next round's changes must not overtake these orders.
        let n = want.len();
        until(&n, Duration::from_secs(60), || committed(&topics.out).len());
    }
    let got = by_order(&committed(&topics.out));
    assert_same(
        &got,
        &want_by_order(&want),
        "each order once, with its customer as the round left it",
    );
    assert!(
        want.iter().any(|(_, v)| v.ends_with(r#""right":null}"#)),
        "deleted and unknown customers"
    );
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

/// Both inputs flow while `weir run` is killed at least five times: orders
/// for customers loaded before the start, and sign-ups of new customers. The
/// output has each order exactly once with its customer, and after the kills
/// the table holds every customer exactly as the topic says (it is restored
/// from the customers topic up to the committed offset on each restart):
/// orders for the new customers, sent once the kills are over, find them.
#[test]
fn orders_enriched_survive_sigkill_exactly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let topics = new_topics(2);
    let app = unique("enrich-crash");
    // Transactions open for a second: the kills land inside them.
    let file = pipeline(dir.path(), &app, &topics, "commit-interval = \"1s\"");
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    let mut loaded = Vec::new();
    for i in 0..40 {
        for version in 0..3 {
            let customer = format!("c{i}");
            let value = (i % 7 != 0 || version < 2).then(|| format!(r#"{{"id":"{customer}","version":{version}}}"#));
            match &value {
                Some(v) => table.insert(customer.clone(), v.clone()),
                None => table.remove(&customer),
            };
            loaded.push(Change {
                customer,
                value,
                ts: 1_000 + i * 3 + version,
            });
        }
    }
    produce(&topics.customers, &loaded.iter().map(change_record).collect::<Vec<_>>());
    let mut rng = Rng(5);
    let mut want: Vec<(Order, String)> = Vec::new();
    let mut orders = Vec::new();
    for seq in 0..2_000 {
        let o = Order {
            seq,
            customer: format!("c{}", rng.below(45)),
            ts: 10_000 + seq as i64,
        };
        want.push((o.clone(), enriched(&o, table.get(&o.customer))));
        orders.push(order_record(&o));
    }
    let signups: Vec<Change> = (0..300)
        .map(|i| Change {
            customer: format!("new{i}"),
            value: Some(format!(r#"{{"id":"new{i}","signup":{i}}}"#)),
            ts: 10_000 + i,
        })
        .collect();
    let kills = 5;
    let customers_feed = Feeder::paced(
        &topics.customers,
        signups.iter().map(change_record).collect(),
        5,
        Duration::from_millis(40),
        &[],
    );
    let feeder = Feeder::for_lives(&topics.orders, orders, Duration::from_secs(1), kills + 1);
    let (mut w, done) = crash::run_with_kills(&file, crash::CRASH_ARGS, kills, &feeder, (300, 1800), &[&topics.out]);
    feeder.finish();
    customers_feed.finish();
    for s in &signups {
        table.insert(s.customer.clone(), s.value.clone().unwrap());
    }
    let n = want.len();
    until(&n, Duration::from_secs(120), || committed(&topics.out).len());
    // The last sign-ups of both partitions are in the table before orders
    // for them go out (the join does not wait for a lagging table).
    let addr = admin_addr(&mut w);
    let last: Vec<String> = (290..300).map(|i| format!("new{i}")).collect();
    wait_rows(&addr, &last, &table);
    // Orders for the customers that signed up during the kills.
    let late: Vec<Order> = (0..100)
        .map(|i| Order {
            seq: 2_000 + i,
            customer: format!("new{}", i * 3),
            ts: 20_000 + i as i64,
        })
        .collect();
    for o in &late {
        want.push((o.clone(), enriched(o, table.get(&o.customer))));
    }
    produce(&topics.orders, &late.iter().map(order_record).collect::<Vec<_>>());
    let n = want.len();
    until(&n, Duration::from_secs(120), || committed(&topics.out).len());
    let got = by_order(&committed(&topics.out));
    assert_same(
        &got,
        &want_by_order(&want),
        "each order exactly once, with its customer",
    );
    let customers: Vec<String> = (0..45)
        .map(|i| format!("c{i}"))
        .chain((0..300).step_by(37).map(|i| format!("new{i}")))
        .collect();
    wait_rows(&addr, &customers, &table);
    crash::assert_kills_left_open_transactions(std::slice::from_ref(&topics.out), &done);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

/// `weir dev` runs the example on its embedded broker, each input fed by
/// its own sample (orders, and a customers CDC topic with deletes): orders
/// come out enriched, some with a customer and some without.
#[test]
fn weir_dev_runs_orders_enriched() {
    let stdout = weir_dev("orders-enriched.toml");
    assert!(
        stdout.contains("orders ← sample \"orders\"") && stdout.contains("customers ← sample \"customers\""),
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(stage_count(summary, "enrich", "out") > 1000, "{summary}");
    assert!(stage_count(summary, "customer-table", "in") > 1000, "{summary}");
    assert!(stdout.contains(r#""right":{"id":"#), "{stdout}");
}

/// `weir dev` runs the accounts-limits example: both tables fill, and the
/// join emits on updates of either side.
#[test]
fn weir_dev_runs_accounts_limits() {
    let stdout = weir_dev("accounts-limits.toml");
    let summary = stdout.lines().last().unwrap_or_default();
    for table in ["account-table", "limit-table"] {
        assert!(stage_count(summary, table, "in") > 1000, "{summary}");
    }
    assert!(stage_count(summary, "with-limits", "out") > 1000, "{summary}");
}

/// `weir dev` runs the users-per-region example: the users table fills, and
/// every change (users move and leave, so old rows are subtracted) reaches
/// the counts.
#[test]
fn weir_dev_runs_users_per_region() {
    let stdout = weir_dev("users-per-region.toml");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(stage_count(summary, "user-table", "in") > 1000, "{summary}");
    assert!(stage_count(summary, "per-region", "in") > 1000, "{summary}");
    // Each batch emits each region it changed once: four regions.
    assert!(stage_count(summary, "per-region", "out") > 10, "{summary}");
}

/// `weir dev` runs the searches-clicks example: searches meet the clicks
/// that follow them (wall-clock timestamps, so pairs come out at once).
#[test]
fn weir_dev_runs_searches_clicks() {
    let stdout = weir_dev("searches-clicks.toml");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(stage_count(summary, "clicked", "in") > 1000, "{summary}");
    assert!(stage_count(summary, "clicked", "out") > 100, "{summary}");
    assert!(stdout.contains(r#""right":{"user":"#), "{stdout}");
}

/// A count in `weir dev`'s summary line, e.g. stage `enrich`, `out`.
fn stage_count(summary: &str, stage: &str, what: &str) -> u64 {
    summary
        .split(&format!("{stage}: "))
        .nth(1)
        .and_then(|r| r.split(&format!("{what} ")).nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `weir dev` on an example for 10 s; its standard output.
fn weir_dev(example: &str) -> String {
    guests().for_pipeline_file(&repo().join("guest-examples/pipelines").join(example));
    let out = weir()
        .current_dir(repo())
        .args([
            "dev",
            &format!("guest-examples/pipelines/{example}"),
            "--for",
            "10s",
            "--every",
            "1s",
        ])
        .output()
        .expect("run weir dev");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

// ---------------------------------------------------------------------------
// Accounts and limits: a table-table join (inner, left, outer).

/// A change of one side of the accounts-limits join.
#[derive(Debug, Clone)]
struct SideChange {
    /// `accounts` (left) or `limits` (right).
    left: bool,
    change: Change,
}

/// Random upserts and deletes of accounts and limits, by account id.
fn account_changes(n: usize, seed: u64) -> Vec<SideChange> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let left = rng.below(2) == 0;
            let id = format!("a{}", rng.below(12));
            let value = (rng.below(5) != 0).then(|| {
                if left {
                    format!(r#"{{"id":"{id}","balance":{i}}}"#)
                } else {
                    format!(r#"{{"limit":{}}}"#, 1000 * (1 + rng.below(9)))
                }
            });
            SideChange {
                left,
                change: Change {
                    customer: id,
                    value,
                    ts: 1_000 + (i as i64) * 10 + rng.below(7) as i64,
                },
            }
        })
        .collect()
}

/// The reference table-table join: the outputs (key, value, timestamp) in
/// the order of the changes, and the final result table.
#[expect(clippy::type_complexity, reason = "a test's reference")]
fn table_join_reference(
    changes: &[SideChange],
    kind: &str,
) -> (Vec<(String, Option<String>, i64)>, BTreeMap<String, String>) {
    let mut sides: [BTreeMap<String, (i64, String)>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut result: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for c in changes {
        let (key, side) = (&c.change.customer, usize::from(!c.left));
        match &c.change.value {
            Some(v) => sides[side].insert(key.clone(), (c.change.ts, v.clone())),
            None => sides[side].remove(key),
        };
        let (l, r) = (sides[0].get(key), sides[1].get(key));
        let joins = match kind {
            "inner" => l.is_some() && r.is_some(),
            "left" => l.is_some(),
            _ => l.is_some() || r.is_some(),
        };
        // The larger of the change's and the other side's row's, whenever
        // the other side has a row (Kafka Streams).
        let other = if c.left { r } else { l };
        let ts = other.map_or(c.change.ts, |o| o.0.max(c.change.ts));
        if joins {
            let v = format!(
                r#"{{"left":{},"right":{}}}"#,
                l.map_or("null", |x| x.1.as_str()),
                r.map_or("null", |x| x.1.as_str())
            );
            result.insert(key.clone(), v.clone());
            out.push((key.clone(), Some(v), ts));
        } else if result.remove(key).is_some() || other.is_some() {
            // A tombstone where there was a result — or, as Kafka Streams
            // forwards every change while the other side has a row, there.
            out.push((key.clone(), None, ts));
        }
    }
    (out, result)
}

fn accounts_body(app: &str, t: &AccountTopics, kind: &str) -> String {
    body_of(
        "accounts-limits.toml",
        app,
        &[
            ("account-limits", &t.out),
            ("accounts", &t.accounts),
            ("limits", &t.limits),
        ],
    )
    .replace("join = \"outer\"", &format!("join = \"{kind}\""))
}

struct AccountTopics {
    accounts: String,
    limits: String,
    out: String,
}

#[test]
fn accounts_and_limits_through_the_driver_for_every_join_kind() {
    let changes = account_changes(500, 3);
    let t = AccountTopics {
        accounts: "accounts".into(),
        limits: "limits".into(),
        out: "account-limits".into(),
    };
    for kind in ["inner", "left", "outer"] {
        let (want, table) = table_join_reference(&changes, kind);
        let mut driver = driver_for(&accounts_body(&format!("drive-{kind}"), &t, kind));
        for c in &changes {
            let topic = if c.left { "accounts" } else { "limits" };
            let r = change_record(&c.change);
            let event = event_of(&r);
            driver.pipe(topic, vec![event]).unwrap();
        }
        let got: Vec<(String, Option<String>, i64)> = driver
            .take_output("account-limits")
            .into_iter()
            .map(|r| {
                (
                    String::from_utf8(r.key.unwrap()).unwrap(),
                    r.value.map(|v| String::from_utf8(v).unwrap()),
                    r.timestamp,
                )
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{kind}");
        assert_eq!(got, want, "{kind}: every change's result, tombstones included");
        assert!(
            want.iter().any(|(_, v, _)| v.is_none()),
            "{kind}: some pairs stop matching"
        );
        let state: BTreeMap<String, String> = driver
            .state()
            .unwrap()
            .into_iter()
            .filter(|e| e["store"] == "with-limits")
            .map(|e| {
                (
                    e["key"].as_str().unwrap().to_owned(),
                    e["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(state, table, "{kind}: the result table");
    }
}

/// The last value per key of a table's output (`None`: its last record is a
/// tombstone).
fn last_values(records: &[CommittedRecord]) -> BTreeMap<String, Option<String>> {
    records
        .iter()
        .map(|r| {
            (
                String::from_utf8(r.key.clone().unwrap_or_default()).unwrap(),
                r.value.clone().map(|v| String::from_utf8(v).unwrap()),
            )
        })
        .collect()
}

/// What the last output per key must be once every change is in: the
/// final result, or a tombstone for a key that had one and lost it.
fn want_last(want: &[(String, Option<String>, i64)]) -> BTreeMap<String, Option<String>> {
    want.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect()
}

/// The with-limits row of `key` (`None`: no row).
fn result_row(addr: &str, key: &str) -> Option<String> {
    query_row(addr, "with-limits", key)
}

fn account_topics() -> AccountTopics {
    let t = AccountTopics {
        accounts: unique("accounts"),
        limits: unique("limits"),
        out: unique("account-limits"),
    };
    for topic in [&t.accounts, &t.limits, &t.out] {
        create_topic(topic, 2);
    }
    t
}

fn account_pipeline(dir: &Path, app: &str, t: &AccountTopics, kind: &str, extra: &str) -> PathBuf {
    broker_file(dir, &accounts_body(app, t, kind), extra)
}

/// Checks the result table through queries, and the last output per key.
#[track_caller]
fn assert_result_table(
    addr: &str,
    out: &str,
    want: &[(String, Option<String>, i64)],
    table: &BTreeMap<String, String>,
) {
    // A key without a final result may end in a tombstone or have none at
    // all, depending on how the two topics interleaved: compare the rest.
    let present = |m: BTreeMap<String, Option<String>>| -> BTreeMap<String, String> {
        m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
    };
    let last = present(want_last(want));
    let got = until(&last, Duration::from_secs(90), || present(last_values(&committed(out))));
    assert_eq!(got, last, "the last result of every key");
    let keys: Vec<String> = (0..12).map(|i| format!("a{i}")).collect();
    let rows: BTreeMap<String, String> = keys
        .iter()
        .filter_map(|k| result_row(addr, k).map(|v| (k.clone(), v)))
        .collect();
    assert_eq!(&rows, table, "the result table, queried");
}

/// Updates and deletes on both sides, in both topics at once: whatever
/// order the task takes them in, each key's last result is the join of
/// the final rows, and the result table (queried) holds exactly those.
#[test]
fn accounts_and_limits_on_the_broker_inner_and_outer() {
    let _turn = heavy();
    let changes = account_changes(600, 9);
    for kind in ["inner", "outer"] {
        let dir = tempfile::tempdir().unwrap();
        let t = account_topics();
        let file = account_pipeline(dir.path(), &unique("accounts"), &t, kind, "");
        let mut w = WeirProcess::start(&file, "0", &[]);
        let addr = admin_addr(&mut w);
        let (left, right): (Vec<&SideChange>, Vec<&SideChange>) = changes.iter().partition(|c| c.left);
        produce(
            &t.accounts,
            &left.iter().map(|c| change_record(&c.change)).collect::<Vec<_>>(),
        );
        produce(
            &t.limits,
            &right.iter().map(|c| change_record(&c.change)).collect::<Vec<_>>(),
        );
        let (want, table) = table_join_reference(&changes, kind);
        assert_result_table(&addr, &t.out, &want, &table);
        assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    }
}

/// Both sides change while `weir run` is killed five times: the result
/// table (restored from its changelog, its inputs from their topics) and
/// each key's last result are exact.
#[test]
fn accounts_and_limits_survive_sigkill_exactly() {
    let _turn = heavy();
    let changes = account_changes(2_000, 17);
    let dir = tempfile::tempdir().unwrap();
    let t = account_topics();
    let app = unique("accounts-crash");
    let file = account_pipeline(dir.path(), &app, &t, "outer", "commit-interval = \"1s\"");
    let (left, right): (Vec<SideChange>, Vec<SideChange>) = changes.iter().cloned().partition(|c| c.left);
    let kills = 5;
    let limits_feed = Feeder::paced(
        &t.limits,
        right.iter().map(|c| change_record(&c.change)).collect(),
        10,
        Duration::from_millis(100),
        &[],
    );
    let feeder = Feeder::for_lives(
        &t.accounts,
        left.iter().map(|c| change_record(&c.change)).collect(),
        Duration::from_secs(1),
        kills + 1,
    );
    let (mut w, done) = crash::run_with_kills(&file, crash::CRASH_ARGS, kills, &feeder, (300, 1800), &[&t.out]);
    feeder.finish();
    limits_feed.finish();
    let addr = admin_addr(&mut w);
    let (want, table) = table_join_reference(&changes, "outer");
    assert_result_table(&addr, &t.out, &want, &table);
    let mut evidence = vec![t.out.clone()];
    evidence.extend(crash::internal_topics(&app));
    crash::assert_kills_left_open_transactions(&evidence, &done);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

// ---------------------------------------------------------------------------
// Searches and clicks: a windowed stream-stream join.

/// A search (left) or a click (right) of a user.
#[derive(Debug, Clone)]
struct Act {
    left: bool,
    user: String,
    value: String,
    ts: i64,
}

/// The join's window, in ms.
#[derive(Debug, Clone, Copy)]
struct Win {
    before: i64,
    after: i64,
    grace: i64,
}

/// A result: key, left, right, timestamp.
type Joined = (String, Option<String>, Option<String>, i64);

/// The reference windowed join over the records in processing order, as
/// Kafka Streams' `KStreamKStreamJoin` does it: every result, and how many
/// records arrived after their own window had closed (they still join).
fn window_join_reference(acts: &[Act], kind: &str, w: Win) -> (Vec<Joined>, usize) {
    struct Kept {
        left: bool,
        user: String,
        value: String,
        ts: i64,
        done: bool,
    }
    let emits = |left: bool| kind == "outer" || (kind == "left" && left);
    let reach = |left: bool| if left { w.after } else { w.before };
    let close = |left: bool, ts: i64| ts + reach(left) + w.grace;
    let retention = w.before + w.after + w.grace;
    let unjoined = |k: &Kept| {
        let v = Some(k.value.clone());
        let (l, r) = if k.left { (v, None) } else { (None, v) };
        (k.user.clone(), l, r, k.ts)
    };
    let mut kept: Vec<Kept> = Vec::new();
    // Stream time, and each side's (left, right).
    let mut st = i64::MIN;
    let mut side_time = [i64::MIN; 2];
    let side = |left: bool| usize::from(!left);
    let mut out = Vec::new();
    let mut late = 0;
    for a in acts {
        st = st.max(a.ts);
        if close(a.left, a.ts) < st {
            late += 1;
        }
        if a.ts == st {
            // Unmatched records whose window closed: by time, right before
            // left, key, arrival.
            let mut due: Vec<usize> = (0..kept.len())
                .filter(|&i| !kept[i].done && emits(kept[i].left) && close(kept[i].left, kept[i].ts) < st)
                .collect();
            due.sort_by_key(|&i| (kept[i].ts, kept[i].left, kept[i].user.clone(), i));
            for i in due {
                kept[i].done = true;
                out.push(unjoined(&kept[i]));
            }
        }
        let (from, to) = if a.left {
            (a.ts - w.before, a.ts + w.after)
        } else {
            (a.ts - w.after, a.ts + w.before)
        };
        let other_time = side_time[side(!a.left)];
        let mut found = false;
        for k in kept.iter_mut().filter(|k| {
            k.left != a.left && k.user == a.user && (from..=to).contains(&k.ts) && k.ts + retention > other_time
        }) {
            found = true;
            k.done = true;
            let (l, r) = if a.left {
                (&a.value, &k.value)
            } else {
                (&k.value, &a.value)
            };
            out.push((a.user.clone(), Some(l.clone()), Some(r.clone()), a.ts.max(k.ts)));
        }
        let mut record = Kept {
            left: a.left,
            user: a.user.clone(),
            value: a.value.clone(),
            ts: a.ts,
            done: found,
        };
        if !found && emits(a.left) && to < st {
            record.done = true;
            out.push(unjoined(&record));
        }
        let own = &mut side_time[side(a.left)];
        *own = (*own).max(a.ts);
        if a.ts + retention > *own {
            kept.push(record);
        } else if !record.done && emits(a.left) {
            out.push(unjoined(&record));
        }
    }
    (out, late)
}

/// Reads a `pair` result back: key, left, right (JSON text), timestamp.
fn joined(key: Option<Vec<u8>>, value: Option<Vec<u8>>, ts: i64) -> Joined {
    let text = String::from_utf8(value.expect("a value")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let side = |s: &str| (!v[s].is_null()).then(|| v[s].to_string());
    (
        String::from_utf8(key.unwrap_or_default()).unwrap(),
        side("left"),
        side("right"),
        ts,
    )
}

fn canonical(j: &Joined) -> Joined {
    let norm = |s: &Option<String>| {
        s.as_ref()
            .map(|t| serde_json::from_str::<Value>(t).unwrap().to_string())
    };
    (j.0.clone(), norm(&j.1), norm(&j.2), j.3)
}

/// Asserts the same results, listing what is missing and what is extra.
#[track_caller]
fn assert_same_joined(got: Vec<Joined>, want: Vec<Joined>, what: &str) {
    let (got, want) = (sorted(got), sorted(want));
    if got == want {
        return;
    }
    let mut missing = want.clone();
    let mut extra = Vec::new();
    for g in &got {
        match missing.iter().position(|w| w == g) {
            Some(i) => {
                missing.remove(i);
            }
            None => extra.push(g.clone()),
        }
    }
    panic!(
        "{what}: {} results, {} expected; {} missing, first {:?}; {} extra, first {:?}",
        got.len(),
        want.len(),
        missing.len(),
        &missing[..missing.len().min(5)],
        extra.len(),
        &extra[..extra.len().min(5)]
    );
}

fn sorted(mut v: Vec<Joined>) -> Vec<Joined> {
    v = v.iter().map(canonical).collect();
    v.sort();
    v
}

/// Searches and clicks of 8 users, event time mostly rising (steps of up
/// to `step` ms), with `jitter` records a little out of order and a few
/// far behind (late).
fn acts(n: usize, seed: u64, step: u64, disorder: bool) -> Vec<Act> {
    let mut rng = Rng(seed);
    let mut ts = 1_000_000;
    (0..n)
        .map(|i| {
            ts += rng.below(step) as i64;
            let left = rng.below(2) == 0;
            let user = format!("u{}", rng.below(8));
            let at = match rng.below(40) {
                0 if disorder => ts - 600_000,
                1..=4 if disorder => ts - rng.below(90_000) as i64,
                _ => ts,
            };
            let value = if left {
                format!(r#"{{"search":{i},"user":"{user}"}}"#)
            } else {
                format!(r#"{{"click":{i},"user":"{user}"}}"#)
            };
            Act {
                left,
                user,
                value,
                ts: at,
            }
        })
        .collect()
}

fn act_record(a: &Act) -> In {
    In {
        key: Some(a.user.clone().into_bytes()),
        value: Some(a.value.clone().into_bytes()),
        timestamp: Some(a.ts),
        ..In::default()
    }
}

struct ClickTopics {
    searches: String,
    clicks: String,
    out: String,
}

fn clicks_body(app: &str, t: &ClickTopics, kind: &str, window: &str) -> String {
    body_of(
        "searches-clicks.toml",
        app,
        &[
            ("search-clicks", &t.out),
            ("searches", &t.searches),
            ("clicks", &t.clicks),
        ],
    )
    .replace("join = \"left\"", &format!("join = \"{kind}\""))
    .replace("window = { before = \"0s\", after = \"5m\", grace = \"1m\" }", window)
}

/// Through the driver, record by record (out of order and late ones
/// included), for every kind: the results are the reference's, and no
/// unmatched record comes out before its window's end.
#[test]
fn searches_and_clicks_through_the_driver_for_every_join_kind() {
    let w = Win {
        before: 0,
        after: 300_000,
        grace: 60_000,
    };
    let data = acts(1_500, 21, 40_000, true);
    let t = driver_click_topics();
    for kind in ["inner", "left", "outer"] {
        let (want, late) = window_join_reference(&data, kind, w);
        let window = "window = { before = \"0s\", after = \"5m\", grace = \"1m\" }";
        let mut driver = driver_for(&clicks_body(&format!("drive-{kind}"), &t, kind, window));
        let mut got: Vec<Joined> = Vec::new();
        let mut st = i64::MIN;
        for a in &data {
            let r = act_record(a);
            st = st.max(a.ts);
            let event = event_of(&r);
            driver
                .pipe(if a.left { "searches" } else { "clicks" }, vec![event])
                .unwrap();
            for r in driver.take_output("search-clicks") {
                let j = joined(r.key, r.value, r.timestamp);
                // Never before its window's end is behind stream time.
                match (&j.1, &j.2) {
                    (Some(_), None) => assert!(j.3 + w.after < st, "{kind}: {j:?} early at {st}"),
                    (None, Some(_)) => assert!(j.3 + w.before < st, "{kind}: {j:?} early at {st}"),
                    _ => {}
                }
                got.push(j);
            }
        }
        assert_eq!(got.len(), want.len(), "{kind}");
        assert_eq!(sorted(got), sorted(want.clone()), "{kind}: the reference's results");
        assert!(late > 0, "some records arrive after their window closed");
        let stages = driver.chain().metrics().snapshot().stages;
        assert_eq!(stages[0].late, 0, "{kind}: nothing is dropped as late");
        if kind != "inner" {
            assert!(want.iter().any(|j| j.2.is_none()), "{kind}: searches without a click");
        }
    }
}

/// Records exactly `before` and `after` apart join, one millisecond
/// further do not: both ends of the window are inclusive, from either side.
#[test]
fn stream_stream_window_ends_are_inclusive() {
    let w = Win {
        before: 60_000,
        after: 300_000,
        grace: 60_000,
    };
    let act = |left: bool, user: &str, n: usize, ts: i64| Act {
        left,
        user: user.into(),
        value: if left {
            format!(r#"{{"search":{n},"user":"{user}"}}"#)
        } else {
            format!(r#"{{"click":{n},"user":"{user}"}}"#)
        },
        ts,
    };
    let (t1, t2) = (10_000_000, 11_000_000);
    let data = vec![
        // A search, then clicks at its window's ends (found scanning the
        // searches from a click's lower bound) and just past them.
        act(true, "u1", 0, t1),
        act(false, "u1", 1, t1 - w.before),
        act(false, "u1", 2, t1 - w.before - 1),
        act(false, "u1", 3, t1 + w.after),
        act(false, "u1", 4, t1 + w.after + 1),
        // Clicks, then a search whose lower bound is exactly one of them.
        act(false, "u2", 5, t2 - 1),
        act(false, "u2", 6, t2),
        act(true, "u2", 7, t2 + w.before),
        // Far ahead on both sides: every window above closes.
        act(true, "u9", 8, t2 + 10_000_000),
        act(false, "u9", 9, t2 + 10_000_000),
    ];
    let t = driver_click_topics();
    for kind in ["inner", "left", "outer"] {
        let (want, late) = window_join_reference(&data, kind, w);
        assert_eq!(late, 0);
        let mut pairs: Vec<(Option<String>, Option<String>)> = want
            .iter()
            .filter(|j| j.0 != "u9" && j.1.is_some() && j.2.is_some())
            .map(|j| (j.1.clone(), j.2.clone()))
            .collect();
        pairs.sort();
        let value = |i: usize| Some(data[i].value.clone());
        let mut ends = vec![(value(0), value(1)), (value(0), value(3)), (value(7), value(6))];
        ends.sort();
        assert_eq!(
            pairs, ends,
            "{kind}: the reference joins exactly the records at the ends"
        );
        let window = "window = { before = \"1m\", after = \"5m\", grace = \"1m\" }";
        let mut driver = driver_for(&clicks_body(&format!("ends-{kind}"), &t, kind, window));
        for a in &data {
            let event = event_of(&act_record(a));
            driver
                .pipe(if a.left { "searches" } else { "clicks" }, vec![event])
                .unwrap();
        }
        let got: Vec<Joined> = driver
            .take_output("search-clicks")
            .into_iter()
            .map(|r| joined(r.key, r.value, r.timestamp))
            .collect();
        if kind == "outer" {
            assert!(
                want.iter().any(|j| j.0 == "u2" && j.1.is_none()),
                "click 5 goes out alone"
            );
        }
        assert_same_joined(got, want, kind);
    }
}

/// KIP-962: a record without a key on a side that emits unmatched records
/// (a left join's searches; an outer join's both sides) goes out at once
/// with an absent other side, keyless; elsewhere it is dropped and counted.
/// A keyed record without a value is dropped and counted everywhere.
#[test]
fn keyless_records_of_an_outer_side_go_out_at_once() {
    let t = driver_click_topics();
    let window = "window = { before = \"0s\", after = \"5m\", grace = \"1m\" }";
    let keyless = |topic: &str, value: &str| weir::event::Event {
        key: None,
        value: Some(value.as_bytes().to_vec()),
        timestamp: 1_000,
        topic: topic.into(),
        ..weir::event::Event::default()
    };
    for (kind, want, dropped) in [
        ("inner", vec![], 3),
        ("left", vec![(r#"{"s":1}"#, "null")], 2),
        ("outer", vec![(r#"{"s":1}"#, "null"), ("null", r#"{"c":1}"#)], 1),
    ] {
        let mut driver = driver_for(&clicks_body(&format!("keyless-{kind}"), &t, kind, window));
        driver
            .pipe("searches", vec![keyless("searches", r#"{"s":1}"#)])
            .unwrap();
        driver.pipe("clicks", vec![keyless("clicks", r#"{"c":1}"#)]).unwrap();
        let no_value = weir::event::Event {
            key: Some(b"u1".to_vec()),
            value: None,
            timestamp: 1_000,
            ..weir::event::Event::default()
        };
        driver.pipe("searches", vec![no_value]).unwrap();
        let got: Vec<(Option<Vec<u8>>, String, String, i64)> = driver
            .take_output("search-clicks")
            .into_iter()
            .map(|r| {
                let v: Value = serde_json::from_slice(&r.value.unwrap()).unwrap();
                (r.key, v["left"].to_string(), v["right"].to_string(), r.timestamp)
            })
            .collect();
        let want: Vec<(Option<Vec<u8>>, String, String, i64)> = want
            .into_iter()
            .map(|(l, r)| (None, l.to_owned(), r.to_owned(), 1_000))
            .collect();
        assert_eq!(got, want, "{kind}");
        let stages = driver.chain().metrics().snapshot().stages;
        assert_eq!(stages[0].dropped, dropped, "{kind}: dropped and counted");
    }
}

/// The topics of `searches-clicks` as the driver runs it./// The topics of `searches-clicks` as the driver runs it.
fn driver_click_topics() -> ClickTopics {
    ClickTopics {
        searches: "searches".into(),
        clicks: "clicks".into(),
        out: "search-clicks".into(),
    }
}

fn click_topics() -> ClickTopics {
    let t = ClickTopics {
        searches: unique("searches"),
        clicks: unique("clicks"),
        out: unique("search-clicks"),
    };
    for topic in [&t.searches, &t.clicks, &t.out] {
        create_topic(topic, 2);
    }
    t
}

/// A window whose grace (2 h of event time) covers how far one topic's
/// records may lag the other's in a task, so that results do not depend on
/// how the two topics interleave (Weir does not wait for a lagging
/// partition: see docs/topology.md, "Record order in a task").
const TOLERANT: &str = "window = { before = \"0s\", after = \"5m\", grace = \"2h\" }";

fn tolerant() -> Win {
    Win {
        before: 0,
        after: 300_000,
        grace: 7_200_000,
    }
}

/// In-order searches and clicks, two closing records far ahead (a pair of
/// their own) so that every window closes.
fn broker_acts(n: usize, seed: u64) -> Vec<Act> {
    let mut data = acts(n, seed, 10_000, false);
    let end = data.iter().map(|a| a.ts).max().unwrap_or(0) + 10_000_000;
    for left in [true, false] {
        data.push(Act {
            left,
            user: "closer".into(),
            value: format!(r#"{{"closer":{left}}}"#),
            ts: end,
        });
    }
    data
}

fn click_pipeline(dir: &Path, app: &str, t: &ClickTopics, extra: &str) -> PathBuf {
    broker_file(dir, &clicks_body(app, t, "left", TOLERANT), extra)
}

fn click_results(topic: &str) -> Vec<Joined> {
    committed(topic)
        .into_iter()
        .map(|r| joined(r.key, r.value, r.timestamp))
        .collect()
}

/// Both topics fed side by side on the broker: each search with each click
/// of its user within 5 minutes after it, once; searches without one once
/// their windows close.
#[test]
fn searches_and_clicks_on_the_broker() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let t = click_topics();
    let file = click_pipeline(dir.path(), &unique("clicks"), &t, "");
    let data = broker_acts(1_200, 31);
    let (want, late) = window_join_reference(&data, "left", tolerant());
    assert_eq!(late, 0);
    let mut w = WeirProcess::start(&file, "0", &[]);
    let (searches, clicks): (Vec<&Act>, Vec<&Act>) = data.iter().partition(|a| a.left);
    let feeds = [
        Feeder::paced(
            &t.searches,
            searches.iter().map(|a| act_record(a)).collect(),
            10,
            Duration::from_millis(50),
            &[],
        ),
        Feeder::paced(
            &t.clicks,
            clicks.iter().map(|a| act_record(a)).collect(),
            10,
            Duration::from_millis(50),
            &[],
        ),
    ];
    for f in feeds {
        f.finish();
    }
    let n = want.len();
    until(&n, Duration::from_secs(90), || committed(&t.out).len());
    assert_same_joined(click_results(&t.out), want.clone(), "every result once");
    assert!(want.iter().any(|j| j.2.is_none()) && want.iter().any(|j| j.2.is_some()));
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

/// Both topics flow while `weir run` is killed five times: every result
/// exactly once (the kept records, their marks and stream time come back
/// from the changelog).
#[test]
fn searches_and_clicks_survive_sigkill_exactly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let t = click_topics();
    let app = unique("clicks-crash");
    let file = click_pipeline(dir.path(), &app, &t, "commit-interval = \"1s\"");
    let data = broker_acts(3_000, 37);
    let (want, _) = window_join_reference(&data, "left", tolerant());
    let kills = 5;
    // Both topics in event-time order, pausing together at each restart.
    let records = data
        .iter()
        .map(|a| (if a.left { &t.searches } else { &t.clicks }.clone(), act_record(a)))
        .collect();
    let feeder = Feeder::for_lives_to(records, Duration::from_secs(1), kills + 1);
    let (mut w, done) = crash::run_with_kills(&file, crash::CRASH_ARGS, kills, &feeder, (300, 1800), &[&t.out]);
    feeder.finish();
    let n = want.len();
    until(&n, Duration::from_secs(120), || committed(&t.out).len());
    assert_same_joined(click_results(&t.out), want, "every result exactly once");
    let mut evidence = vec![t.out.clone()];
    evidence.extend(crash::internal_topics(&app));
    crash::assert_kills_left_open_transactions(&evidence, &done);
    assert!(w.running(), "{}", w.log_text());
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

// ---------------------------------------------------------------------------
// Trades and instruments: a join with a global table, by a field of the trade.

/// A trade: its symbol (the record key) and the ISIN it names (or none).
#[derive(Debug, Clone)]
struct Trade {
    seq: usize,
    symbol: String,
    isin: Option<String>,
    ts: i64,
}

impl Trade {
    fn json(&self) -> String {
        match &self.isin {
            Some(isin) => format!(
                r#"{{"isinStockCode":"{isin}","seq":{},"symbol":"{}"}}"#,
                self.seq, self.symbol
            ),
            None => format!(r#"{{"seq":{},"symbol":"{}"}}"#, self.seq, self.symbol),
        }
    }

    fn record(&self) -> In {
        In {
            key: Some(self.symbol.clone().into_bytes()),
            value: Some(self.json().into_bytes()),
            timestamp: Some(self.ts),
            ..In::default()
        }
    }
}

/// The reference: a left join of the trade with its instrument's current
/// value (`null` without one); a trade without an ISIN has no lookup key
/// and is dropped, as in Kafka Streams.
fn trade_enriched(t: &Trade, instruments: &BTreeMap<String, String>) -> Option<String> {
    let right = instruments.get(t.isin.as_ref()?);
    Some(format!(
        r#"{{"left":{},"right":{}}}"#,
        t.json(),
        right.map_or("null", String::as_str)
    ))
}

fn instrument_change(isin: &str, value: Option<String>, ts: i64) -> Change {
    Change {
        customer: isin.to_owned(),
        value,
        ts,
    }
}

struct TradeTopics {
    trades: String,
    instruments: String,
    out: String,
}

fn trades_body(app: &str, t: &TradeTopics) -> String {
    body_of(
        "trades-instruments.toml",
        app,
        &[
            ("trades-enriched", &t.out),
            ("trades", &t.trades),
            ("instruments", &t.instruments),
        ],
    )
}

/// Results by trade number: (key, value, timestamp).
fn by_trade(records: &[CommittedRecord]) -> ByOrder {
    let mut out: ByOrder = BTreeMap::new();
    for r in records {
        let value = String::from_utf8(r.value.clone().unwrap_or_default()).unwrap();
        let v: Value = serde_json::from_str(&value).unwrap_or_else(|e| panic!("{e}: {value}"));
        let seq = v["left"]["seq"].as_u64().expect("a trade number");
        let key = String::from_utf8(r.key.clone().unwrap_or_default()).unwrap();
        out.entry(seq).or_default().push((key, value, r.timestamp));
    }
    out
}

fn want_by_trade(want: &[(Trade, String)]) -> ByOrder {
    want.iter()
        .map(|(t, v)| (t.seq as u64, vec![(t.symbol.clone(), v.clone(), t.ts)]))
        .collect()
}

fn isin(i: u64) -> String {
    format!("XS{i:010}")
}

#[test]
fn trades_and_instruments_through_the_driver() {
    let t = TradeTopics {
        trades: "trades".into(),
        instruments: "instruments".into(),
        out: "trades-enriched".into(),
    };
    let mut rng = Rng(13);
    let mut instruments: BTreeMap<String, String> = BTreeMap::new();
    let mut steps: Vec<(&str, In)> = Vec::new();
    let mut want = Vec::new();
    for i in 0..800 {
        let ts = 1_000 + i as i64;
        match rng.below(10) {
            0..=1 => {
                let id = isin(rng.below(15));
                let value = (rng.below(6) != 0).then(|| format!(r#"{{"isin":"{id}","lot":{i}}}"#));
                match &value {
                    Some(v) => instruments.insert(id.clone(), v.clone()),
                    None => instruments.remove(&id),
                };
                steps.push(("instruments", change_record(&instrument_change(&id, value, ts))));
            }
            _ => {
                let trade = Trade {
                    seq: i,
                    symbol: format!("S{}", rng.below(5)),
                    isin: (rng.below(8) != 0).then(|| isin(rng.below(18))),
                    ts,
                };
                want.extend(trade_enriched(&trade, &instruments).map(|e| (trade.clone(), e)));
                steps.push(("trades", trade.record()));
            }
        }
    }
    let mut driver = driver_for(&trades_body("drive-trades", &t));
    for (topic, r) in &steps {
        let event = event_of(r);
        driver.pipe(topic, vec![event]).unwrap();
    }
    let got = driven(&mut driver, "trades-enriched");
    let want_list: Vec<(String, String, i64)> = want.iter().map(|(t, v)| (t.symbol.clone(), v.clone(), t.ts)).collect();
    assert_eq!(
        got, want_list,
        "each trade with its instrument as it was then, keyed by the trade's symbol"
    );
    assert!(want.iter().any(|(_, v)| v.ends_with(r#""right":null}"#)));
    let state: BTreeMap<String, String> = driver
        .state()
        .unwrap()
        .into_iter()
        .filter(|e| e["store"] == "instrument-table")
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(state, instruments, "the global table");
}

fn trade_topics(partitions: i32) -> TradeTopics {
    let t = TradeTopics {
        trades: unique("trades"),
        instruments: unique("instruments"),
        out: unique("trades-enriched"),
    };
    for topic in [&t.trades, &t.instruments, &t.out] {
        create_topic(topic, partitions);
    }
    t
}

fn trades_pipeline(dir: &Path, app: &str, t: &TradeTopics, extra: &str) -> PathBuf {
    broker_file(dir, &trades_body(app, t), extra)
}

/// The instrument-table row of `isin` (`None`: no row).
fn instrument_row(addr: &str, isin: &str) -> Option<String> {
    query_row(addr, "instrument-table", isin)
}

fn wait_instruments(addr: &str, ids: &[String], table: &BTreeMap<String, String>) {
    let want: Vec<Option<String>> = ids.iter().map(|c| table.get(c).cloned()).collect();
    let got = until(&want, Duration::from_secs(60), || {
        ids.iter().map(|c| instrument_row(addr, c)).collect::<Vec<_>>()
    });
    assert_eq!(got, want, "the global table shows the changes");
}

/// Two instances, each holding the whole global table (no co-partitioning:
/// trades are keyed by symbol, instruments by ISIN, in topics of different
/// partition counts); instruments change while trades flow.
#[test]
fn trades_and_instruments_on_the_broker() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let t = TradeTopics {
        trades: unique("trades"),
        instruments: unique("instruments"),
        out: unique("trades-enriched"),
    };
    create_topic(&t.trades, 2);
    create_topic(&t.instruments, 3);
    create_topic(&t.out, 2);
    let file = trades_pipeline(dir.path(), &unique("trades"), &t, "");
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    let first: Vec<Change> = (0..20)
        .map(|i| {
            let v = format!(r#"{{"isin":"{}","round":0}}"#, isin(i));
            table.insert(isin(i), v.clone());
            instrument_change(&isin(i), Some(v), 100 + i as i64)
        })
        .collect();
    produce(&t.instruments, &first.iter().map(change_record).collect::<Vec<_>>());
    let mut ws: Vec<WeirProcess> = (0..2).map(|i| WeirProcess::start(&file, &i.to_string(), &[])).collect();
    let addrs: Vec<String> = ws.iter_mut().map(admin_addr).collect();
    let mut rng = Rng(19);
    let mut want: Vec<(Trade, String)> = Vec::new();
    let mut seq = 0;
    for round in 1..5 {
        let mut changes = Vec::new();
        for _ in 0..8 {
            let id = isin(rng.below(24));
            let value = (rng.below(4) != 0).then(|| format!(r#"{{"isin":"{id}","round":{round}}}"#));
            match &value {
                Some(v) => table.insert(id.clone(), v.clone()),
                None => table.remove(&id),
            };
            changes.push(instrument_change(&id, value, 1_000 * round));
        }
        produce(&t.instruments, &changes.iter().map(change_record).collect::<Vec<_>>());
        let ids: Vec<String> = (0..24).map(isin).collect();
        // Every instance holds the whole table.
        for addr in &addrs {
            wait_instruments(addr, &ids, &table);
        }
        let trades: Vec<Trade> = (0..100)
            .map(|_| {
                seq += 1;
                Trade {
                    seq,
                    symbol: format!("S{}", rng.below(7)),
                    isin: (rng.below(10) != 0).then(|| isin(rng.below(26))),
                    ts: 1_000 * round + 500,
                }
            })
            .collect();
        for tr in &trades {
            want.extend(trade_enriched(tr, &table).map(|e| (tr.clone(), e)));
        }
        produce(&t.trades, &trades.iter().map(Trade::record).collect::<Vec<_>>());
        let n = want.len();
        until(&n, Duration::from_secs(60), || committed(&t.out).len());
    }
    assert_same(
        &by_trade(&committed(&t.out)),
        &want_by_trade(&want),
        "each trade once, with its instrument",
    );
    for w in &mut ws {
        assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    }
}

/// Trades and instruments flow while `weir run` is killed five times:
/// trades of instruments loaded before the start, and new instruments. Each
/// trade comes out exactly once with its instrument; after the kills the
/// global table (read on from where each life left it) holds every
/// instrument, and trades of the new ones find them.
#[test]
fn trades_and_instruments_survive_sigkill_exactly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let t = trade_topics(2);
    let app = unique("trades-crash");
    let file = trades_pipeline(dir.path(), &app, &t, "commit-interval = \"1s\"");
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    let loaded: Vec<Change> = (0..30)
        .map(|i| {
            let v = format!(r#"{{"isin":"{}","loaded":true}}"#, isin(i));
            table.insert(isin(i), v.clone());
            instrument_change(&isin(i), Some(v), 100)
        })
        .collect();
    produce(&t.instruments, &loaded.iter().map(change_record).collect::<Vec<_>>());
    let mut rng = Rng(23);
    let trades: Vec<Trade> = (0..2_000)
        .map(|seq| Trade {
            seq,
            symbol: format!("S{}", rng.below(9)),
            isin: (rng.below(10) != 0).then(|| isin(rng.below(33))),
            ts: 10_000 + seq as i64,
        })
        .collect();
    let mut want: Vec<(Trade, String)> = trades
        .iter()
        .filter_map(|tr| Some((tr.clone(), trade_enriched(tr, &table)?)))
        .collect();
    let fresh: Vec<Change> = (100..400)
        .map(|i| instrument_change(&isin(i), Some(format!(r#"{{"isin":"{}","new":true}}"#, isin(i))), 200))
        .collect();
    let kills = 5;
    let fresh_feed = Feeder::paced(
        &t.instruments,
        fresh.iter().map(change_record).collect(),
        5,
        Duration::from_millis(40),
        &[],
    );
    let feeder = Feeder::for_lives(
        &t.trades,
        trades.iter().map(Trade::record).collect(),
        Duration::from_secs(1),
        kills + 1,
    );
    let (mut w, done) = crash::run_with_kills(&file, crash::CRASH_ARGS, kills, &feeder, (300, 1800), &[&t.out]);
    feeder.finish();
    fresh_feed.finish();
    for c in &fresh {
        table.insert(c.customer.clone(), c.value.clone().unwrap());
    }
    let n = want.len();
    until(&n, Duration::from_secs(120), || committed(&t.out).len());
    let addr = admin_addr(&mut w);
    let last: Vec<String> = (390..400).map(isin).collect();
    wait_instruments(&addr, &last, &table);
    let late: Vec<Trade> = (0..100)
        .map(|i| Trade {
            seq: 2_000 + i,
            symbol: "NEW".into(),
            isin: Some(isin(100 + 3 * i as u64)),
            ts: 20_000 + i as i64,
        })
        .collect();
    for tr in &late {
        want.extend(trade_enriched(tr, &table).map(|e| (tr.clone(), e)));
    }
    produce(&t.trades, &late.iter().map(Trade::record).collect::<Vec<_>>());
    let n = want.len();
    until(&n, Duration::from_secs(120), || committed(&t.out).len());
    assert_same(
        &by_trade(&committed(&t.out)),
        &want_by_trade(&want),
        "each trade exactly once, with its instrument",
    );
    let ids: Vec<String> = (0..33).map(isin).chain((100..400).step_by(29).map(isin)).collect();
    wait_instruments(&addr, &ids, &table);
    crash::assert_kills_left_open_transactions(std::slice::from_ref(&t.out), &done);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

/// `weir dev` runs the trades-instruments example, feeding the global
/// table's topic too: trades come out joined (the lines it shows are cut
/// before the instrument).
#[test]
fn weir_dev_runs_trades_instruments() {
    let stdout = weir_dev("trades-instruments.toml");
    assert!(stdout.contains("instruments ← sample \"instruments\""), "{stdout}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(stage_count(summary, "enrich", "out") > 1000, "{summary}");
}

/// A joiner is hot-swapped like any module: `weir deploy` replaces the
/// Rust `pair` of a running stream-table join with the JavaScript build of
/// the same joiner; orders before the swap come out of the one, orders
/// after it out of the other (per the `weir.module` header), each exactly
/// once and the same.
#[test]
fn a_joiner_is_hot_swapped_mid_stream() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let topics = new_topics(2);
    let app = unique("enrich-swap");
    let file = pipeline(dir.path(), &app, &topics, "");
    let mut table = BTreeMap::new();
    let customers: Vec<Change> = (0..10)
        .map(|i| {
            let v = format!(r#"{{"id":"c{i}"}}"#);
            table.insert(format!("c{i}"), v.clone());
            Change {
                customer: format!("c{i}"),
                value: Some(v),
                ts: 1,
            }
        })
        .collect();
    produce(
        &topics.customers,
        &customers.iter().map(change_record).collect::<Vec<_>>(),
    );
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    wait_rows(&addr, &["c9".to_owned()], &table);
    let orders: Vec<Order> = (0..400)
        .map(|seq| Order {
            seq,
            customer: format!("c{}", seq % 12),
            ts: 10 + seq as i64,
        })
        .collect();
    let want: Vec<(Order, String)> = orders
        .iter()
        .map(|o| (o.clone(), enriched(o, table.get(&o.customer))))
        .collect();
    produce(
        &topics.orders,
        &orders[..200].iter().map(order_record).collect::<Vec<_>>(),
    );
    until(&200, Duration::from_secs(60), || committed(&topics.out).len());
    let name = unique("js-pair");
    let js = support::guests().example("js", "pair");
    let out = weir()
        .args([
            "deploy",
            file.to_str().unwrap(),
            "enrich",
            js.to_str().unwrap(),
            "--name",
            &name,
        ])
        .output()
        .expect("run weir deploy");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("activated"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The instance runs it once `/status` says so.
    let running = until(&true, Duration::from_secs(120), || {
        support::kafka::http_get(&addr, "/status").contains(&format!("\"active\":\"{name}@"))
    });
    assert!(running, "the new joiner never became active:\n{}", w.log_text());
    produce(
        &topics.orders,
        &orders[200..].iter().map(order_record).collect::<Vec<_>>(),
    );
    until(&400, Duration::from_secs(60), || committed(&topics.out).len());
    let records = committed(&topics.out);
    assert_same(
        &by_order(&records),
        &want_by_order(&want),
        "each order once, the same from both joiners",
    );
    for r in &records {
        let seq = by_order(std::slice::from_ref(r)).into_keys().next().unwrap();
        let label = String::from_utf8_lossy(r.header("weir.module").flatten().unwrap_or_default()).into_owned();
        let want = if seq < 200 { "rust-pair@" } else { &format!("{name}@") };
        assert!(label.starts_with(want), "order {seq} made by {label}");
    }
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

// ---------------------------------------------------------------------------
// A re-keyed stream joins a table through a repartition topic; topics that
// are not co-partitioned stop the start.

/// Trades keyed by symbol, re-keyed by ISIN (`isin-key`), joined with a
/// table of instruments keyed by ISIN: the join reads the re-keyed trades
/// through `<app>-enrich-repartition`.
fn rekeyed_body(app: &str, trades: &str, instruments: &str, out: &str) -> String {
    let g = guests();
    format!(
        "application-id = \"{app}\"\ninputs = [\"{trades}\", \"{instruments}\"]\n\
         [[stage]]\nname = \"by-isin\"\ninputs = [\"{trades}\"]\nmodule = \"{}\"\non-error = \"skip\"\n\
         [[stage]]\nname = \"instrument-table\"\nkind = \"table\"\ninputs = [\"{instruments}\"]\n\
         [[stage]]\nname = \"enrich\"\nkind = \"join\"\njoin = \"left\"\ninputs = [\"by-isin\", \"instrument-table\"]\n\
         module = \"{}\"\n[outputs]\ndefault = \"{out}\"\n",
        g.example("rust", "isin-key").display(),
        g.example("rust", "pair").display()
    )
}

/// [`rekeyed_body`] for trades of 3 partitions and instruments of 2: the
/// repartition topic gets 2, so that the join's task reads partition p of
/// both.
fn rekeyed_body_into_two_partitions(app: &str, trades: &str, instruments: &str, out: &str) -> String {
    rekeyed_body(app, trades, instruments, out).replace(
        "inputs = [\"by-isin\", \"instrument-table\"]\n",
        "inputs = [\"by-isin\", \"instrument-table\"]\npartitions = 2\n",
    )
}

/// Trades (3 partitions), instruments and output (2 each), new.
fn rekeyed_topics() -> (String, String, String) {
    let (trades, instruments, out) = (unique("trades"), unique("instruments"), unique("out"));
    create_topic(&trades, 3);
    create_topic(&instruments, 2);
    create_topic(&out, 2);
    (trades, instruments, out)
}

/// Loads instruments `0..n` into `topic`, partitioned as the repartitioned
/// trades are (murmur2, as Java clients are), and returns them by ISIN.
fn load_instruments(topic: &str, n: u64) -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    let loaded: Vec<Change> = (0..n)
        .map(|i| {
            let v = format!(r#"{{"isin":"{}"}}"#, isin(i));
            table.insert(isin(i), v.clone());
            instrument_change(&isin(i), Some(v), 1)
        })
        .collect();
    produce_as_java(topic, &loaded.iter().map(change_record).collect::<Vec<_>>());
    table
}

#[test]
fn a_rekeyed_stream_joins_a_table_through_a_repartition_topic_in_the_driver() {
    let body = rekeyed_body("rekeyed", "trades", "instruments", "out");
    let pipeline = weir::pipeline::Pipeline::parse(Path::new("/x/p.toml"), &body).unwrap();
    let topology = weir::topology::Topology::from_pipeline(&pipeline);
    assert_eq!(
        topology.repartition_topics(),
        vec!["rekeyed-enrich-repartition".to_owned()]
    );
    let subs = topology.sub_topologies();
    assert_eq!(subs.len(), 2, "{subs:?}");
    assert_eq!(
        subs[1].sources,
        vec!["instruments".to_owned(), "rekeyed-enrich-repartition".to_owned()],
        "the join's task reads the table's topic and the repartitioned trades together"
    );
    let runtime = weir::runtime::Runtime::new(weir::runtime::RuntimeConfig::default()).unwrap();
    let mut driver = weir::testing::Driver::new(&pipeline, &runtime, 1).unwrap();
    let mut rng = Rng(29);
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    let mut want: Vec<(String, String, i64)> = Vec::new();
    for i in 0..400 {
        let ts = 1_000 + i as i64;
        if rng.below(4) == 0 {
            let id = isin(rng.below(6));
            let v = format!(r#"{{"isin":"{id}","v":{i}}}"#);
            table.insert(id.clone(), v.clone());
            let r = change_record(&instrument_change(&id, Some(v), ts));
            let event = event_of(&r);
            driver.pipe("instruments", vec![event]).unwrap();
        } else {
            let trade = Trade {
                seq: i,
                symbol: format!("S{}", rng.below(3)),
                isin: (rng.below(10) != 0).then(|| isin(rng.below(8))),
                ts,
            };
            if let Some(id) = &trade.isin {
                // Re-keyed by its ISIN: the result's key.
                want.extend(trade_enriched(&trade, &table).map(|e| (id.clone(), e, ts)));
            }
            let r = trade.record();
            let event = event_of(&r);
            driver.pipe("trades", vec![event]).unwrap();
        }
    }
    let got = driven(&mut driver, "out");
    assert_eq!(
        got, want,
        "each trade with an ISIN, keyed by it, with its instrument then"
    );
}

/// On the broker, the re-keyed trades reach the instruments' task through
/// the repartition topic (instruments loaded first, waited for through a
/// query), and a stream-table join over topics of different partition counts
/// does not start, naming both.
#[test]
fn a_rekeyed_stream_joins_a_table_on_the_broker_and_co_partitioning_is_checked() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (trades, instruments, out) = rekeyed_topics();
    let app = unique("rekeyed");
    let file = dir.path().join("rekeyed.toml");
    let body = rekeyed_body_into_two_partitions(&app, &trades, &instruments, &out);
    std::fs::write(
        &file,
        format!(
            "state-dir = \"{}\"\n{body}[kafka]\n\"bootstrap.servers\" = \"{}\"\n\"transaction.timeout.ms\" = 10000\n\"linger.ms\" = 5\n\
             \"session.timeout.ms\" = 6000\n",
            dir.path().join("state").display(),
            broker().bootstrap
        ),
    )
    .unwrap();
    let table = load_instruments(&instruments, 8);
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    let ids: Vec<String> = (0..8).map(isin).collect();
    let got = until(&true, Duration::from_secs(60), || {
        ids.iter().all(|id| {
            let out = weir()
                .args(["query", "--admin", &addr, "instrument-table", id])
                .output()
                .expect("run weir query");
            serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| v["found"] == true)
        })
    });
    assert!(got, "the table never held every instrument:\n{}", w.log_text());
    let trades_in: Vec<Trade> = (0..300)
        .map(|seq| Trade {
            seq,
            symbol: format!("S{}", seq % 5),
            isin: Some(isin(seq as u64 % 10)),
            ts: 100 + seq as i64,
        })
        .collect();
    let want: Vec<(Trade, String)> = trades_in
        .iter()
        .filter_map(|t| Some((t.clone(), trade_enriched(t, &table)?)))
        .collect();
    produce(&trades, &trades_in.iter().map(Trade::record).collect::<Vec<_>>());
    until(&300, Duration::from_secs(90), || committed(&out).len());
    let by_isin: ByOrder = want
        .iter()
        .map(|(t, v)| (t.seq as u64, vec![(t.isin.clone().unwrap(), v.clone(), t.ts)]))
        .collect();
    assert_same(
        &by_trade(&committed(&out)),
        &by_isin,
        "each trade once, keyed by its ISIN, with its instrument",
    );
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());

    // Orders and customers of different partition counts: no start.
    let (orders, customers) = (unique("orders"), unique("customers"));
    create_topic(&orders, 2);
    create_topic(&customers, 3);
    let t = Topics {
        orders: orders.clone(),
        customers: customers.clone(),
        out: out.clone(),
    };
    let bad = pipeline(dir.path(), &unique("copart"), &t, "");
    let run = weir().args(["run", bad.to_str().unwrap()]).output().expect("run weir");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains("not co-partitioned")
            && stderr.contains(&format!("{orders} (2 partitions)"))
            && stderr.contains(&format!("{customers} (3 partitions)")),
        "{stderr}"
    );
}

/// A stream re-keyed through a repartition topic joins a table while `weir
/// run` is killed five times: each trade is joined exactly once. The join
/// reads the repartition topic with librdkafka under `read_committed`, so a
/// killed life's aborted repartition records must not reach it (they would
/// join a second time): exact only on a broker that lists aborted
/// transactions in its Fetch responses, as Kafka and the patched test broker
/// do.
#[test]
fn a_rekeyed_stream_joins_a_table_across_sigkill_exactly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (trades, instruments, out) = rekeyed_topics();
    let app = unique("rekeyed-crash");
    let body = rekeyed_body_into_two_partitions(&app, &trades, &instruments, &out);
    let file = broker_file(dir.path(), &body, "commit-interval = \"1s\"");
    let table = load_instruments(&instruments, 12);
    let trades_in: Vec<Trade> = (0..3_000)
        .map(|seq| Trade {
            seq,
            symbol: format!("S{}", seq % 7),
            isin: Some(isin(seq as u64 % 12)),
            ts: 100 + seq as i64,
        })
        .collect();
    let want: ByOrder = trades_in
        .iter()
        .map(|t| {
            let joined = trade_enriched(t, &table).expect("every ISIN is in the table");
            (t.seq as u64, vec![(t.isin.clone().unwrap(), joined, t.ts)])
        })
        .collect();
    let kills = 5;
    let feeder = Feeder::for_lives(
        &trades,
        trades_in.iter().map(Trade::record).collect(),
        Duration::from_secs(1),
        kills + 1,
    );
    let (mut w, done) = crash::run_with_kills(&file, crash::CRASH_ARGS, kills, &feeder, (300, 1800), &[&out]);
    feeder.finish();
    until(&want.len(), Duration::from_secs(120), || committed(&out).len());
    assert_same(
        &by_trade(&committed(&out)),
        &want,
        "each trade exactly once, keyed by its ISIN, with its instrument",
    );
    let repartition = format!("{app}-enrich-repartition");
    let aborted = support::kafka::log_counts(&repartition).aborted;
    eprintln!("{repartition}: {aborted} aborted records");
    assert!(aborted > 0, "no kill left aborted records in {repartition}");
    let mut evidence = vec![out.clone()];
    evidence.extend(crash::internal_topics(&app));
    crash::assert_kills_left_open_transactions(&evidence, &done);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

// ---------------------------------------------------------------------------
// A table of a stage's results: a process stage on a table's changes, made
// a table again (repartitioned, with a changelog of its own), joined.

fn loud_body(app: &str, orders: &str, customers: &str, out: &str) -> String {
    loud_body_in("rust", app, orders, customers, out)
}

/// [`loud_body`] with the `uppercase` and `pair` operators of `language`.
fn loud_body_in(language: &str, app: &str, orders: &str, customers: &str, out: &str) -> String {
    let g = guests();
    format!(
        "application-id = \"{app}\"\ninputs = [\"{orders}\", \"{customers}\"]\n\
         [[stage]]\nname = \"customer-table\"\nkind = \"table\"\ninputs = [\"{customers}\"]\n\
         [[stage]]\nname = \"shout\"\ninputs = [\"customer-table\"]\nmodule = \"{}\"\n\
         [[stage]]\nname = \"loud-table\"\nkind = \"table\"\ninputs = [\"shout\"]\n\
         [[stage]]\nname = \"enrich\"\nkind = \"join\"\njoin = \"left\"\ninputs = [\"{orders}\", \"loud-table\"]\n\
         module = \"{}\"\n[outputs]\ndefault = \"{out}\"\n",
        g.example(language, "uppercase").display(),
        g.example(language, "pair").display()
    )
}

fn loud(v: &str) -> String {
    v.to_ascii_uppercase()
}

/// Through the driver, with the Rust operators and with the Go ones.
#[test]
fn a_table_of_a_stage_s_results_joins_in_the_driver() {
    for language in ["rust", "go"] {
        a_table_of_a_stage_s_results_joins_in_the_driver_in(language);
    }
}

fn a_table_of_a_stage_s_results_joins_in_the_driver_in(language: &str) {
    let body = loud_body_in(language, "loud", "orders", "customers", "out");
    let pipeline = weir::pipeline::Pipeline::parse(Path::new("/x/p.toml"), &body).unwrap();
    let topology = weir::topology::Topology::from_pipeline(&pipeline);
    assert_eq!(
        topology.repartition_topics(),
        vec!["loud-loud-table-repartition".to_owned()]
    );
    assert!(
        topology
            .describe()
            .contains("store: loud-table (key-value store per task, changelog loud-loud-table-changelog)"),
        "{}",
        topology.describe()
    );
    let runtime = weir::runtime::Runtime::new(weir::runtime::RuntimeConfig::default()).unwrap();
    let mut driver = weir::testing::Driver::new(&pipeline, &runtime, 1).unwrap();
    let mut rng = Rng(41);
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    let mut want: Vec<(String, String, i64)> = Vec::new();
    for i in 0..400 {
        let ts = 1_000 + i as i64;
        let customer = format!("c{}", rng.below(8));
        let (topic, r) = match rng.below(5) {
            0 => {
                let value = (rng.below(4) != 0).then(|| format!(r#"{{"id":"{customer}","name":"n{i}"}}"#));
                match &value {
                    Some(v) => table.insert(customer.clone(), loud(v)),
                    None => table.remove(&customer),
                };
                ("customers", change_record(&Change { customer, value, ts }))
            }
            _ => {
                let o = Order { seq: i, customer, ts };
                want.push((o.customer.clone(), enriched(&o, table.get(&o.customer)), ts));
                ("orders", order_record(&o))
            }
        };
        let event = event_of(&r);
        driver.pipe(topic, vec![event]).unwrap();
    }
    let got = driven(&mut driver, "out");
    assert_eq!(
        got, want,
        "{language}: orders see the upper-cased customers, deletes included"
    );
    let rows: BTreeMap<String, String> = driver
        .state()
        .unwrap()
        .into_iter()
        .filter(|e| e["store"] == "loud-table")
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(rows, table, "{language}");
}

/// On the broker the table of a stage's results comes back from its own
/// changelog on a new machine (no state directory), and joins as before.
#[test]
fn a_table_of_a_stage_s_results_restores_from_its_changelog() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let topics = new_topics(2);
    let app = unique("loud");
    let file = dir.path().join("loud.toml");
    std::fs::write(
        &file,
        format!(
            "state-dir = \"{}\"\n{}[kafka]\n\"bootstrap.servers\" = \"{}\"\n\"transaction.timeout.ms\" = 10000\n\"linger.ms\" = 5\n\
             \"session.timeout.ms\" = 6000\n",
            dir.path().join("state").display(),
            loud_body(&app, &topics.orders, &topics.customers, &topics.out),
            broker().bootstrap
        ),
    )
    .unwrap();
    let mut table = BTreeMap::new();
    let changes: Vec<Change> = (0..30)
        .map(|i| {
            let customer = format!("c{}", i % 12);
            let value = (i % 7 != 6).then(|| format!(r#"{{"id":"{customer}","v":{i}}}"#));
            match &value {
                Some(v) => table.insert(customer.clone(), loud(v)),
                None => table.remove(&customer),
            };
            Change { customer, value, ts: i }
        })
        .collect();
    produce(
        &topics.customers,
        &changes.iter().map(change_record).collect::<Vec<_>>(),
    );
    let keys: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
    let rows = |addr: &str| -> Vec<Option<String>> {
        keys.iter()
            .map(|k| {
                let out = weir()
                    .args(["query", "--admin", addr, "loud-table", k])
                    .output()
                    .expect("run weir query");
                let v: Value = serde_json::from_slice(&out.stdout).expect("weir query prints JSON");
                v["value"]["value"].as_str().map(str::to_owned)
            })
            .collect()
    };
    let want_rows: Vec<Option<String>> = keys.iter().map(|k| table.get(k).cloned()).collect();
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    assert_eq!(until(&want_rows, Duration::from_secs(60), || rows(&addr)), want_rows);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    // A new machine: the table comes back from its changelog.
    std::fs::remove_dir_all(dir.path().join("state")).unwrap();
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    assert_eq!(until(&want_rows, Duration::from_secs(60), || rows(&addr)), want_rows);
    assert!(
        w.log_text()
            .contains(&format!("restoring state from {app}-loud-table-changelog"))
            || w.log_text()
                .contains(&format!("restored state from {app}-loud-table-changelog")),
        "{}",
        w.log_text()
    );
    let orders: Vec<Order> = (0..50)
        .map(|seq| Order {
            seq,
            customer: format!("c{}", seq % 14),
            ts: 100 + seq as i64,
        })
        .collect();
    let want: Vec<(Order, String)> = orders
        .iter()
        .map(|o| (o.clone(), enriched(o, table.get(&o.customer))))
        .collect();
    // Partitioned as the table's repartitioned rows are (murmur2, as Java clients are).
    produce_as_java(&topics.orders, &orders.iter().map(order_record).collect::<Vec<_>>());
    until(&50, Duration::from_secs(60), || committed(&topics.out).len());
    assert_same(
        &by_order(&committed(&topics.out)),
        &want_by_order(&want),
        "orders joined with the restored table",
    );
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

/// `idle-close` lets unmatched searches out on the wall clock once the task
/// has been quiet that long, before stream time would; once out, they do
/// not come again when stream time passes.
#[test]
fn idle_close_emits_unmatched_searches_on_the_wall_clock() {
    let t = driver_click_topics();
    let window = "window = { before = \"0s\", after = \"5m\", grace = \"1m\" }";
    let mut driver = driver_for(&clicks_body("idle", &t, "left", window));
    let event = |user: &str, value: &str, ts: i64| weir::event::Event {
        key: Some(user.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        timestamp: ts,
        ..weir::event::Event::default()
    };
    driver.pipe("searches", vec![event("u1", r#"{"s":1}"#, 0)]).unwrap();
    driver.pipe("clicks", vec![event("u1", r#"{"c":1}"#, 1_000)]).unwrap();
    driver.pipe("searches", vec![event("u2", r#"{"s":2}"#, 2_000)]).unwrap();
    let joined = driver.take_output("search-clicks");
    assert_eq!(joined.len(), 1, "u1's search and click");
    // 29 s of quiet: not yet (idle-close is 30 s).
    driver.advance_wall_clock(Duration::from_secs(29)).unwrap();
    assert!(driver.take_output("search-clicks").is_empty());
    driver.advance_wall_clock(Duration::from_secs(2)).unwrap();
    let out = driver.take_output("search-clicks");
    assert_eq!(out.len(), 1, "u2's search, unmatched, on the wall clock");
    let j = joined_one(&out[0]);
    assert_eq!((j.0.as_str(), j.2.is_none(), j.3), ("u2", true, 2_000));
    // Stream time passes its window later: it does not come again.
    driver
        .pipe("searches", vec![event("u3", r#"{"s":3}"#, 10_000_000)])
        .unwrap();
    assert!(driver.take_output("search-clicks").is_empty(), "u2 went out once");
}

fn joined_one(r: &weir::task::SentRecord) -> Joined {
    joined(r.key.clone(), r.value.clone(), r.timestamp)
}

/// A global table looked up by the key a `process` guest makes of each
/// record (`key-module`, here `isin-key`): the result keeps the trade's
/// key; a trade the guest fails on goes to the stage's error policy.
#[test]
fn a_global_table_is_looked_up_by_a_key_module() {
    let t = TradeTopics {
        trades: "trades".into(),
        instruments: "instruments".into(),
        out: "trades-enriched".into(),
    };
    let body = trades_body("keymod", &t).replace(
        "key-field = \"isinStockCode\"",
        &format!(
            "key-module = \"{}\"\non-error = \"skip\"",
            guests().example("rust", "isin-key").display()
        ),
    );
    let pipeline = weir::pipeline::Pipeline::parse(Path::new("/x/p.toml"), &body).unwrap();
    let runtime = weir::runtime::Runtime::new(weir::runtime::RuntimeConfig::default()).unwrap();
    let mut driver = weir::testing::Driver::new(&pipeline, &runtime, 4).unwrap();
    let mut table = BTreeMap::new();
    let loaded: Vec<weir::event::Event> = (0..5)
        .map(|i| {
            let v = format!(r#"{{"isin":"{}"}}"#, isin(i));
            table.insert(isin(i), v.clone());
            weir::event::Event {
                key: Some(isin(i).into_bytes()),
                value: Some(v.into_bytes()),
                ..weir::event::Event::default()
            }
        })
        .collect();
    driver.pipe("instruments", loaded).unwrap();
    let trades: Vec<Trade> = (0..40)
        .map(|seq| Trade {
            seq,
            symbol: format!("S{}", seq % 3),
            isin: (seq % 4 != 0).then(|| isin(seq as u64 % 7)),
            ts: seq as i64,
        })
        .collect();
    let events: Vec<weir::event::Event> = trades
        .iter()
        .map(|tr| {
            let r = tr.record();
            weir::event::Event {
                key: r.key,
                value: r.value,
                timestamp: tr.ts,
                ..weir::event::Event::default()
            }
        })
        .collect();
    driver.pipe("trades", events).unwrap();
    let got: Vec<(String, String)> = driver
        .take_output("trades-enriched")
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key.unwrap()).unwrap(),
                String::from_utf8(r.value.unwrap()).unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = trades
        .iter()
        .filter(|tr| tr.isin.is_some())
        .filter_map(|tr| Some((tr.symbol.clone(), trade_enriched(tr, &table)?)))
        .collect();
    assert_eq!(
        got, want,
        "trades with an ISIN, keyed by their symbol, with their instrument"
    );
    let enrich = &driver.chain().metrics().snapshot().stages[1];
    assert_eq!(
        enrich.skipped, 10,
        "the trades without an ISIN fail isin-key and are skipped"
    );
}

/// A global table whose topic does not exist stops the start, naming the
/// stage and the topic.
#[test]
fn a_missing_global_topic_is_named_at_start() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let t = TradeTopics {
        trades: unique("trades"),
        instruments: unique("no-such-instruments"),
        out: unique("trades-enriched"),
    };
    create_topic(&t.trades, 1);
    create_topic(&t.out, 1);
    let file = trades_pipeline(dir.path(), &unique("missing-global"), &t, "");
    let run = weir().args(["run", file.to_str().unwrap()]).output().expect("run weir");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains("global table instrument-table")
            && stderr.contains(&t.instruments)
            && stderr.contains("does not exist"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------
// Users per region: a table re-grouped and counted (a table aggregation).

const REGIONS: [&str; 4] = ["eu", "us", "apac", "latam"];

/// Users `u0`…`u29` joining, moving between regions and leaving (about one
/// change in eight a delete), in time order.
fn user_changes(n: usize, seed: u64) -> Vec<Change> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| Change {
            customer: format!("u{}", rng.below(30)),
            value: (rng.below(8) != 0).then(|| REGIONS[rng.below(4) as usize].to_owned()),
            ts: 1_000 + 10 * i as i64,
        })
        .collect()
}

/// The reference, as Kafka Streams' `KTableRepartitionMap` and
/// `KTableAggregate` count: every result (region, count, timestamp) in
/// order, and the final counts. A user's old row leaves its region (one
/// less) before its new row joins one (one more); when both are the same
/// region, that is one change and one result. A result's timestamp is the
/// change's, or the region's last one if later.
#[expect(clippy::type_complexity, reason = "a test's reference")]
fn region_count_reference(changes: &[Change]) -> (Vec<(String, String, i64)>, BTreeMap<String, (u64, i64)>) {
    let mut users: BTreeMap<String, String> = BTreeMap::new();
    let mut counts: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut out = Vec::new();
    for c in changes {
        let old = match &c.value {
            Some(region) => users.insert(c.customer.clone(), region.clone()),
            None => users.remove(&c.customer),
        };
        let mut bump = |region: &String, delta: i64| {
            let (n, ts) = counts
                .get(region)
                .copied()
                .map_or((0, c.ts), |(n, ts)| (n, ts.max(c.ts)));
            let n = n.checked_add_signed(delta).expect("never below 0");
            counts.insert(region.clone(), (n, ts));
            (n, ts)
        };
        match (old, &c.value) {
            (Some(o), Some(n)) if o == *n => {
                bump(&o, -1);
                let (count, ts) = bump(&o, 1);
                out.push((o, count.to_string(), ts));
            }
            (old, new) => {
                for (region, delta) in old.iter().map(|o| (o, -1)).chain(new.iter().map(|n| (n, 1))) {
                    let (count, ts) = bump(region, delta);
                    out.push((region.clone(), count.to_string(), ts));
                }
            }
        }
    }
    (out, counts)
}

struct UserTopics {
    users: String,
    out: String,
}

fn users_body(app: &str, t: &UserTopics) -> String {
    body_of(
        "users-per-region.toml",
        app,
        &[("users", &t.users), ("users-per-region", &t.out)],
    )
}

/// Through the driver, record by record: every count, in order and with
/// Kafka Streams' timestamps, as users move and leave; at a larger batch
/// each region's last count; and the two stores — with the count's
/// `subtract` in Rust, Python, JavaScript and Go.
#[test]
fn users_per_region_through_the_driver() {
    let changes = user_changes(800, 5);
    let (want, counts) = region_count_reference(&changes);
    let t = UserTopics {
        users: "users".into(),
        out: "users-per-region".into(),
    };
    assert!(want.iter().any(|(_, n, _)| n == "0"), "some region empties");
    for (language, batch) in [
        ("rust", 1),
        ("rust", 64),
        ("python", 1),
        ("js", 1),
        ("go", 1),
        ("go", 64),
    ] {
        let body = users_body("drive-users", &t).replace("rust-count.wasm", &format!("{language}-count.wasm"));
        let pipeline = weir::pipeline::Pipeline::parse(Path::new("/x/p.toml"), &body).unwrap();
        let runtime = weir::runtime::Runtime::new(weir::runtime::RuntimeConfig::default()).unwrap();
        let mut driver = weir::testing::Driver::new(&pipeline, &runtime, batch).unwrap();
        driver
            .pipe_in_order(changes.iter().map(|c| weir::testing::Piped::Record {
                topic: "users".into(),
                event: event_of(&change_record(c)),
            }))
            .unwrap();
        let got = driven(&mut driver, "users-per-region");
        if batch == 1 {
            assert_eq!(got, want, "{language}: every count, in order, with its timestamp");
        }
        let last: BTreeMap<String, String> = got.into_iter().map(|(k, v, _)| (k, v)).collect();
        let final_counts: BTreeMap<String, String> =
            counts.iter().map(|(k, (n, _))| (k.clone(), n.to_string())).collect();
        assert_eq!(
            last, final_counts,
            "{language}, batch {batch}: each region's last count"
        );
        let state = driver.state().unwrap();
        let stored: BTreeMap<String, Value> = state
            .iter()
            .filter(|e| e["store"] == "per-region")
            .map(|e| (e["key"].as_str().unwrap().to_owned(), e["value"][0].clone()))
            .collect();
        let want_stored: BTreeMap<String, Value> = counts
            .iter()
            .map(|(k, (n, _))| (k.clone(), Value::from(n.to_string())))
            .collect();
        assert_eq!(stored, want_stored, "{language}, batch {batch}: the counts' store");
        let rows = state.iter().filter(|e| e["store"] == "user-table").count();
        let mut users = BTreeMap::new();
        for c in &changes {
            match &c.value {
                Some(r) => users.insert(&c.customer, r),
                None => users.remove(&c.customer),
            };
        }
        assert_eq!(rows, users.len(), "{language}, batch {batch}: the users table");
    }
}

/// A grouped table is only for table aggregations, and a table
/// aggregation needs its module's `subtract`: both refused at load,
/// saying why.
#[test]
fn a_table_aggregation_is_checked_at_load() {
    let t = UserTopics {
        users: "users".into(),
        out: "out".into(),
    };
    let body = users_body("checks", &t);
    let without = body.replace("rust-count.wasm", "rust-price-stats.wasm");
    let pipeline = weir::pipeline::Pipeline::parse(Path::new("/x/p.toml"), &without).unwrap();
    let runtime = weir::runtime::Runtime::new(weir::runtime::RuntimeConfig::default()).unwrap();
    let Err(err) = weir::testing::Driver::new(&pipeline, &runtime, 1) else {
        panic!("a table aggregation without subtract was accepted");
    };
    let err = err.to_string();
    assert!(
        err.contains("per-region") && err.contains("subtract") && err.contains("rust-price-stats.wasm"),
        "{err}"
    );
    let read_by_process = body.replace("kind = \"aggregate\"", "kind = \"process\"");
    let err = weir::pipeline::Pipeline::parse(Path::new("/x/p.toml"), &read_by_process)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("group-by") && err.contains("per-region"), "{err}");
    let windowed = body.replace(
        "kind = \"aggregate\"",
        "kind = \"aggregate\"\nwindow = { kind = \"tumbling\", size = \"1m\" }",
    );
    let err = weir::pipeline::Pipeline::parse(Path::new("/x/p.toml"), &windowed)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("window") && err.contains("grouped table"), "{err}");
}

/// On the broker (users over 3 partitions, regions through the
/// repartition topic): each region's last count is the reference's, with
/// the count in Rust, Python, JavaScript and Go; a deploy of an aggregator
/// without `subtract` to the stage is refused.
#[test]
fn users_per_region_on_the_broker() {
    let _turn = heavy();
    let changes = user_changes(600, 11);
    let (_, counts) = region_count_reference(&changes);
    let want: BTreeMap<String, Option<String>> = counts
        .iter()
        .map(|(k, (n, _))| (k.clone(), Some(n.to_string())))
        .collect();
    for language in ["rust", "python", "js", "go"] {
        let dir = tempfile::tempdir().unwrap();
        let t = UserTopics {
            users: unique("users"),
            out: unique("users-per-region"),
        };
        create_topic(&t.users, 3);
        create_topic(&t.out, 3);
        let body = users_body(&unique("users-app"), &t).replace("rust-count.wasm", &format!("{language}-count.wasm"));
        let file = broker_file(dir.path(), &body, "");
        let mut w = WeirProcess::start(&file, "0", &[]);
        produce(&t.users, &changes.iter().map(change_record).collect::<Vec<_>>());
        let got = until(&want, Duration::from_secs(90), || last_values(&committed(&t.out)));
        assert_eq!(got, want, "{language}: each region's last count");
        if language == "rust" {
            // A hot swap to an aggregator without `subtract` is refused.
            let out = weir()
                .args([
                    "deploy",
                    &file.display().to_string(),
                    "per-region",
                    &guests().example("rust", "price-stats").display().to_string(),
                    "--name",
                    &unique("no-subtract"),
                ])
                .output()
                .expect("run weir deploy");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success()
                    && stderr.contains("refused, nothing changed")
                    && stderr.contains("needs `subtract`"),
                "{stderr}"
            );
        }
        assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    }
}

/// Users change while `weir run` is killed five times: each region's last
/// count is exact. The table is re-grouped by region through its
/// repartition topic, which the count reads with librdkafka under
/// `read_committed`: a killed life's aborted repartition records (a
/// subtraction and an addition each) must not reach it. The grouped table's
/// store comes back from its topic, the counts from their changelog.
#[test]
fn users_per_region_survive_sigkill_exactly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let t = UserTopics {
        users: unique("users"),
        out: unique("users-per-region"),
    };
    create_topic(&t.users, 1);
    create_topic(&t.out, 1);
    let app = unique("users-crash");
    let file = broker_file(dir.path(), &users_body(&app, &t), "commit-interval = \"1s\"");
    let changes = user_changes(2_000, 23);
    let kills = 5;
    let feeder = Feeder::for_lives(
        &t.users,
        changes.iter().map(change_record).collect(),
        Duration::from_secs(1),
        kills + 1,
    );
    let (mut w, done) = crash::run_with_kills(&file, crash::CRASH_ARGS, kills, &feeder, (300, 1800), &[&t.out]);
    feeder.finish();
    let (_, counts) = region_count_reference(&changes);
    let want: BTreeMap<String, Option<String>> = counts
        .iter()
        .map(|(k, (n, _))| (k.clone(), Some(n.to_string())))
        .collect();
    let got = until(&want, Duration::from_secs(120), || last_values(&committed(&t.out)));
    assert_eq!(got, want, "each region's last count, exactly");
    let repartitions: Vec<String> = crash::internal_topics(&app)
        .into_iter()
        .filter(|t| t.ends_with("-repartition"))
        .collect();
    let aborted: usize = repartitions.iter().map(|t| support::kafka::log_counts(t).aborted).sum();
    eprintln!("{repartitions:?}: {aborted} aborted records");
    assert!(aborted > 0, "no kill left aborted records in {repartitions:?}");
    let mut evidence = vec![t.out.clone()];
    evidence.extend(crash::internal_topics(&app));
    crash::assert_kills_left_open_transactions(&evidence, &done);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}
