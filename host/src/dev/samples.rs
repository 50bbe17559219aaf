//! Sample events for `weir dev`: deterministic, endless, a little dirty
//! (about 1% of events are malformed, so that error policies have work).
//! Trades are keyed by symbol, clicks by user, orders and customers (a CDC
//! topic: upserts, and about 5% deletes) by customer id, accounts and
//! limits (both CDC topics) by account id, and users (a CDC topic of each
//! user's region: users move, and leave) by user id, as their producers
//! would.

/// The sample generators by name.
pub const NAMES: &[&str] = &[
    "trades",
    "logs",
    "operations",
    "sentences",
    "clicks",
    "orders",
    "customers",
    "accounts",
    "limits",
    "searches",
    "instruments",
    "users",
];

/// One generated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Record key.
    pub key: Option<String>,
    /// Record value (`None`: a delete, for a table's topic).
    pub value: Option<String>,
}

/// An endless stream of samples of one kind.
#[derive(Debug, Clone)]
pub struct Samples {
    kind: Kind,
    rng: XorShift,
    n: u64,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Trades,
    Logs,
    Operations,
    Sentences,
    Clicks,
    Orders,
    Customers,
    Accounts,
    Limits,
    Searches,
    Instruments,
    Users,
}

/// An unknown generator name.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown sample {0:?}; expected one of trades, logs, operations, sentences, clicks, orders, customers, accounts, limits, searches, instruments, users"
)]
pub struct UnknownSample(pub String);

impl Samples {
    /// The generator called `name` (see [`NAMES`]), seeded for repeatability.
    pub fn new(name: &str, seed: u64) -> Result<Samples, UnknownSample> {
        let kind = match name {
            "trades" => Kind::Trades,
            "logs" => Kind::Logs,
            "operations" => Kind::Operations,
            "sentences" => Kind::Sentences,
            "clicks" => Kind::Clicks,
            "orders" => Kind::Orders,
            "customers" => Kind::Customers,
            "accounts" => Kind::Accounts,
            "limits" => Kind::Limits,
            "searches" => Kind::Searches,
            "instruments" => Kind::Instruments,
            "users" => Kind::Users,
            other => return Err(UnknownSample(other.to_owned())),
        };
        Ok(Samples {
            kind,
            rng: XorShift(seed | 1),
            n: 0,
        })
    }
}

const STOCKS: &[(&str, &str, f64)] = &[
    ("US0378331005", "AAPL", 190.0),
    ("US5949181045", "MSFT", 410.0),
    ("US0231351067", "AMZN", 180.0),
    ("US02079K3059", "GOOGL", 165.0),
    ("US67066G1040", "NVDA", 120.0),
    ("DE0007164600", "SAP", 190.0),
    ("NL0010273215", "ASML", 900.0),
    ("GB0002374006", "DGE", 27.0),
];

const LEVELS: &[(&str, u64)] = &[("DEBUG", 20), ("INFO", 60), ("WARN", 13), ("ERROR", 7)];
const MESSAGES: &[&str] = &[
    "request served",
    "cache miss",
    "disk usage above 80%",
    "connection reset by peer",
    "retrying upstream call",
    "disk full",
    "user logged in",
];
/// Customer ids of the orders and customers samples: `c0`…`c49`.
const CUSTOMERS: u64 = 50;
/// Account ids of the accounts and limits samples: `a0`…`a29`.
const ACCOUNTS: u64 = 30;
const TIERS: &[&str] = &["bronze", "silver", "gold"];
/// User ids of the users sample: `u0`…`u39`, and their regions.
const USERS: u64 = 40;
const REGIONS: &[&str] = &["eu", "us", "apac", "latam"];
const QUERIES: &[&str] = &["boots", "rain jacket", "tent", "stove", "headlamp"];
const PAGES: &[&str] = &["/", "/search", "/product", "/cart", "/checkout", "/help"];
const OPERATIONS: &[&str] = &["payment", "refund", "login", "logout", "audit"];
const SENTENCES: &[&str] = &[
    "The quick brown fox jumps over the lazy dog.",
    "Streams flow; state stays. Exactly once, please!",
    "Hello, WORLD! Hello... world?",
    "Weir holds the water back, then lets it through.",
    "It's a \"quoted\" -- (parenthetical) [word]",
];

impl Iterator for Samples {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        self.n += 1;
        let n = self.n;
        let r = &mut self.rng;
        let dirty = r.below(100) == 0;
        Some(match self.kind {
            Kind::Trades => {
                let (isin, symbol, base) = STOCKS[r.below(STOCKS.len() as u64) as usize];
                if dirty {
                    Sample {
                        key: Some(symbol.into()),
                        value: Some(format!(r#"{{"symbol":"{symbol}","type":"quote","bid":{base:.2}}}"#)),
                    }
                } else {
                    let price = base * (1.0 + (r.below(2001) as f64 - 1000.0) / 50_000.0);
                    let quantity = 1 + r.below(500);
                    Sample {
                        key: Some(symbol.into()),
                        value: Some(format!(
                            r#"{{"isinStockCode":"{isin}","symbol":"{symbol}","price":{price:.2},"quantity":{quantity},"type":"trade","seq":{n}}}"#
                        )),
                    }
                }
            }
            Kind::Logs => {
                let host = format!("web-{}", 1 + r.below(3));
                if dirty {
                    Sample {
                        key: Some(host),
                        value: Some("ERROR: this line is not JSON".into()),
                    }
                } else {
                    let mut pick = r.below(100);
                    let level = LEVELS
                        .iter()
                        .find(|(_, w)| {
                            let hit = pick < *w;
                            pick = pick.saturating_sub(*w);
                            hit
                        })
                        .map_or("INFO", |(l, _)| l);
                    let msg = MESSAGES[r.below(MESSAGES.len() as u64) as usize];
                    Sample {
                        value: Some(format!(
                            r#"{{"level":"{level}","host":"{host}","msg":"{msg}","seq":{n}}}"#
                        )),
                        key: Some(host),
                    }
                }
            }
            Kind::Operations => {
                let account = format!("acct-{}", 1 + r.below(20));
                if dirty {
                    Sample {
                        key: Some(account),
                        value: Some("{not json".into()),
                    }
                } else {
                    let op = OPERATIONS[r.below(OPERATIONS.len() as u64) as usize];
                    let amount = r.below(100_000) as f64 / 100.0;
                    Sample {
                        value: Some(format!(
                            r#"{{"type":"{op}","account":"{account}","amount":{amount:.2},"id":{n}}}"#
                        )),
                        key: Some(account),
                    }
                }
            }
            Kind::Sentences => Sample {
                key: Some(format!("s{n}")),
                value: Some(SENTENCES[r.below(SENTENCES.len() as u64) as usize].into()),
            },
            Kind::Orders => {
                let customer = format!("c{}", r.below(CUSTOMERS));
                let amount = r.below(50_000) as f64 / 100.0;
                Sample {
                    value: Some(format!(
                        r#"{{"order":{n},"customer":"{customer}","amount":{amount:.2}}}"#
                    )),
                    // A dirty order has lost its key: a join drops it.
                    key: (!dirty).then_some(customer),
                }
            }
            Kind::Customers => {
                // A customer changes tier now and then, or leaves.
                let id = format!("c{}", r.below(CUSTOMERS));
                let value = (r.below(20) != 0).then(|| {
                    let tier = TIERS[r.below(TIERS.len() as u64) as usize];
                    format!(r#"{{"id":"{id}","tier":"{tier}","version":{n}}}"#)
                });
                Sample { key: Some(id), value }
            }
            Kind::Accounts => {
                let id = format!("a{}", r.below(ACCOUNTS));
                let value = (r.below(20) != 0).then(|| {
                    let balance = r.below(1_000_000) as f64 / 100.0;
                    format!(r#"{{"id":"{id}","balance":{balance:.2},"version":{n}}}"#)
                });
                Sample { key: Some(id), value }
            }
            Kind::Limits => {
                let id = format!("a{}", r.below(ACCOUNTS));
                let value =
                    (r.below(20) != 0).then(|| format!(r#"{{"limit":{},"version":{n}}}"#, 1000 * (1 + r.below(50))));
                Sample { key: Some(id), value }
            }
            Kind::Users => {
                // A user moves to another region now and then, or leaves.
                let id = format!("u{}", r.below(USERS));
                let value = (r.below(10) != 0).then(|| REGIONS[r.below(REGIONS.len() as u64) as usize].to_owned());
                Sample { key: Some(id), value }
            }
            Kind::Instruments => {
                // Reference data of the trades' instruments, keyed by ISIN,
                // restated now and then.
                let (isin, symbol, base) = STOCKS[r.below(STOCKS.len() as u64) as usize];
                let lot = [1, 10, 100][r.below(3) as usize];
                Sample {
                    value: Some(format!(
                        r#"{{"isin":"{isin}","symbol":"{symbol}","lot":{lot},"reference":{base:.2},"version":{n}}}"#
                    )),
                    key: Some(isin.into()),
                }
            }
            Kind::Searches => {
                // The users of the clicks sample, searching.
                let user = format!("user-{}", 1 + r.below(12));
                let query = QUERIES[r.below(QUERIES.len() as u64) as usize];
                Sample {
                    value: Some(format!(r#"{{"user":"{user}","query":"{query}","search":{n}}}"#)),
                    // A dirty search has lost its key: a join drops it.
                    key: (!dirty).then_some(user),
                }
            }
            Kind::Clicks => {
                // A few users, each active in bursts: sessions form and end.
                let user = format!("user-{}", 1 + r.below(12));
                let page = PAGES[r.below(PAGES.len() as u64) as usize];
                if dirty {
                    Sample {
                        key: None,
                        value: Some(format!(r#"{{"page":"{page}"}}"#)),
                    }
                } else {
                    Sample {
                        key: Some(user.clone()),
                        value: Some(format!(r#"{{"user":"{user}","page":"{page}","seq":{n}}}"#)),
                    }
                }
            }
        })
    }
}

/// xorshift64: enough randomness for sample data, and no dependency.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generator_makes_mostly_json() {
        for name in NAMES {
            let samples: Vec<_> = Samples::new(name, 7).unwrap().take(1000).collect();
            // Dirty trades are quotes without an ISIN; other dirty samples are not JSON.
            let clean =
                |s: &Sample| match serde_json::from_str::<serde_json::Value>(s.value.as_deref().unwrap_or("null")) {
                    Ok(v) => {
                        (*name != "trades" || v.get("isinStockCode").is_some())
                            && (!["clicks", "orders", "searches"].contains(name) || s.key.is_some())
                    }
                    Err(_) => false,
                };
            let json = samples.iter().filter(|s| clean(s)).count();
            if *name == "sentences" {
                assert_eq!(json, 0);
            } else if *name == "users" {
                // Regions as plain text, and leaving users.
                let deletes = samples.iter().filter(|s| s.value.is_none()).count();
                assert!((50..150).contains(&deletes), "users: {deletes} deletes of 1000");
                assert!(
                    samples
                        .iter()
                        .flat_map(|s| s.value.as_deref())
                        .all(|v| REGIONS.contains(&v))
                );
            } else if *name == "instruments" {
                assert_eq!(json, 1000, "instruments are all clean");
            } else if ["customers", "accounts", "limits"].contains(name) {
                let deletes = samples.iter().filter(|s| s.value.is_none()).count();
                assert!((20..90).contains(&deletes), "{name}: {deletes} deletes of 1000");
            } else {
                assert!((950..1000).contains(&json), "{name}: {json} of 1000 are JSON");
            }
        }
        let trades: Vec<_> = Samples::new("trades", 7).unwrap().take(5).collect();
        assert_eq!(trades, Samples::new("trades", 7).unwrap().take(5).collect::<Vec<_>>());
        assert!(Samples::new("nope", 1).is_err());
    }
}
