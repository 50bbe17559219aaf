//! The WIT contract (`wit/weir.wit`) as the host knows it: interface names,
//! operator kinds, and which world a component implements.

use serde::{Deserialize, Serialize};

/// The WIT package source, embedded so `weir` needs no files at run time
/// (`weir componentize` embeds it into core modules).
pub const WIT: &str = include_str!("../../wit/weir.wit");

/// The WIT package every operator implements.
pub const PACKAGE: &str = "weir:stream@0.1.0";
/// Export of stateless operators.
pub const PROCESSOR: &str = "weir:stream/processor@0.1.0";
/// Export of aggregators.
pub const AGGREGATOR: &str = "weir:stream/aggregator@0.1.0";
/// Export of joiners.
pub const JOINER: &str = "weir:stream/joiner@0.1.0";
/// Optional export of aggregators that can read older state.
pub const MIGRATOR: &str = "weir:stream/migrator@0.1.0";
/// Optional export of aggregators that can take values back out (table
/// aggregations).
pub const SUBTRACTOR: &str = "weir:stream/subtractor@0.1.0";

/// What kind of stage an operator can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperatorKind {
    /// Stateless: map, filter, flat-map, re-key, route (`process` world).
    Processor,
    /// Keyed aggregation (`aggregate` world).
    Aggregator,
    /// Combines the two sides of a join (`join` world).
    Joiner,
}

impl OperatorKind {
    /// The WIT world an operator of this kind implements.
    pub fn world(self) -> &'static str {
        match self {
            OperatorKind::Processor => "weir:stream/process@0.1.0",
            OperatorKind::Aggregator => "weir:stream/aggregate@0.1.0",
            OperatorKind::Joiner => "weir:stream/join@0.1.0",
        }
    }

    /// "a processor" or "an aggregator", for messages.
    pub fn with_article(self) -> &'static str {
        match self {
            OperatorKind::Processor => "a processor",
            OperatorKind::Aggregator => "an aggregator",
            OperatorKind::Joiner => "a joiner",
        }
    }

    /// The interface it exports.
    pub fn interface(self) -> &'static str {
        match self {
            OperatorKind::Processor => PROCESSOR,
            OperatorKind::Aggregator => AGGREGATOR,
            OperatorKind::Joiner => JOINER,
        }
    }
}

impl std::fmt::Display for OperatorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OperatorKind::Processor => "processor",
            OperatorKind::Aggregator => "aggregator",
            OperatorKind::Joiner => "joiner",
        })
    }
}
