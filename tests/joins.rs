//! Tables and joins: the `orders-enriched` example (a stream-table left join
//! of orders with a table of customers read from a CDC topic), checked
//! against a plain reference implementation in this file — through the
//! broker-free driver, on the test broker while customers change and are
//! deleted, and under SIGKILL with both inputs flowing.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::crash;
use support::kafka::{Feeder, In, WeirProcess, admin_addr, broker, committed, create_topic, produce, unique, until};
use support::{guests, heavy, repo, weir};
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

/// The example pipeline's text before `[kafka]`, with `app` as its
/// application id, unique topic names and the built joiner.
fn example_body(app: &str, topics: &Topics) -> String {
    let _ = guests();
    let text = std::fs::read_to_string(repo().join("guest-examples/pipelines/orders-enriched.toml")).unwrap();
    let body = text.split("\n[kafka]").next().unwrap();
    body.replace(
        "application-id = \"orders-enriched\"",
        &format!("application-id = \"{app}\""),
    )
    .replace(
        "module = \"../dist/",
        &format!("module = \"{}/", repo().join("guest-examples/dist").display()),
    )
    .replace("\"orders-enriched\"", &format!("\"{}\"", topics.out))
    .replace("\"orders\"", &format!("\"{}\"", topics.orders))
    .replace("\"customers\"", &format!("\"{}\"", topics.customers))
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
    let mut want: Vec<(Order, String)> = Vec::new();
    let mut dropped = 0;
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
                // An order without a key cannot join: dropped, counted.
                let o = Order { seq: i, customer, ts };
                timeline.push((
                    "orders",
                    In {
                        key: None,
                        ..order_record(&o)
                    },
                ));
                dropped += 1;
            }
            _ => {
                let o = Order { seq: i, customer, ts };
                let v = enriched(&o, table.get(&o.customer));
                timeline.push(("orders", order_record(&o)));
                want.push((o, v));
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.toml");
    std::fs::write(
        &file,
        format!(
            "{}\n[kafka]\n\"bootstrap.servers\" = \"127.0.0.1:9\"\n",
            example_body("drive-enrich", &topics)
        ),
    )
    .unwrap();
    let pipeline = weir::pipeline::Pipeline::load(&file).unwrap();
    let runtime = weir::runtime::Runtime::new(weir::runtime::RuntimeConfig::default()).unwrap();
    let mut driver = weir::testing::Driver::new(&pipeline, &runtime, 1).unwrap();
    for (topic, r) in &timeline {
        let event = weir::event::Event {
            key: r.key.clone(),
            value: r.value.clone(),
            timestamp: r.timestamp.unwrap_or(0),
            ..weir::event::Event::default()
        };
        driver.pipe(topic, vec![event]).unwrap();
    }
    let got: Vec<(String, String, i64)> = driver
        .take_output("orders-enriched")
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key.unwrap()).unwrap(),
                String::from_utf8(r.value.unwrap()).unwrap(),
                r.timestamp,
            )
        })
        .collect();
    let want_list: Vec<(String, String, i64)> = want
        .iter()
        .map(|(o, v)| (o.customer.clone(), v.clone(), o.ts))
        .collect();
    assert_eq!(got.len(), want_list.len());
    assert_eq!(
        got, want_list,
        "one result per keyed order, in order, with the customer as it was then"
    );
    assert!(
        want.iter().any(|(_, v)| v.ends_with(r#""right":null}"#)),
        "some orders find no customer"
    );
    assert!(
        driver.outputs().keys().all(|t| t == "orders-enriched"),
        "{:?}",
        driver.outputs().keys()
    );
    let stages = driver.chain().metrics().snapshot().stages;
    assert_eq!(stages[1].dropped, dropped, "keyless orders are dropped and counted");
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
    let path = dir.join("orders-enriched.toml");
    std::fs::write(
        &path,
        format!(
            "{extra}\nstate-dir = \"{}\"\n{}\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\"transaction.timeout.ms\" = 10000\n\
             \"session.timeout.ms\" = 6000\n",
            dir.join("state").display(),
            example_body(app, topics),
            broker().bootstrap
        ),
    )
    .unwrap();
    path
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

/// The table's row of `customer` through `weir query` (`None`: no row).
fn row(addr: &str, customer: &str) -> Option<String> {
    let out = weir()
        .args(["query", "--admin", addr, "customer-table", customer])
        .output()
        .expect("run weir query");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("weir query printed no JSON ({e}): {text}"));
    v["value"]["value"].as_str().map(str::to_owned)
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
    let (mut w, done) = crash::run_with_kills(&file, crash::DENSE_FETCH, kills, &feeder, (300, 1800), &[&topics.out]);
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
    guests();
    let out = weir()
        .current_dir(repo())
        .args([
            "dev",
            "guest-examples/pipelines/orders-enriched.toml",
            "--for",
            "10s",
            "--every",
            "1s",
        ])
        .output()
        .expect("run weir dev");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("orders ← sample \"orders\"") && stdout.contains("customers ← sample \"customers\""),
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    let count = |stage: &str, what: &str| -> u64 {
        summary
            .split(&format!("{stage}: "))
            .nth(1)
            .and_then(|r| r.split(&format!("{what} ")).nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(count("enrich", "out") > 1000, "{summary}");
    assert!(count("customer-table", "in") > 1000, "{summary}");
    assert!(stdout.contains(r#""right":{"id":"#), "{stdout}");
}
