//! A pipeline as a topology, as in Kafka Streams: sources, stages, sinks,
//! and sub-topologies cut at internal repartition topics. A task runs one
//! sub-topology for one partition of its source.
//!
//! Today a pipeline is a chain: its `[[stage]]` list in order, over its
//! inputs. An aggregate that repartitions (every aggregate after the first
//! stage, unless `repartition = false`) starts a new sub-topology that reads
//! `<application-id>-<stage>-repartition`, written by the one before it.
//! [`Topology::describe`] prints it, like Kafka Streams' `Topology.describe()`
//! (`weir topology PIPELINE.toml`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::pipeline::{Aggregation, Emit, ErrorPolicy, Pipeline, StageKind};
use crate::window::WindowKind;

/// A run of stages that one task executes, and where its records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubTopology {
    /// Index of its first stage.
    pub first: usize,
    /// One past its last stage.
    pub end: usize,
    /// The repartition topic it reads; `None` for the pipeline's inputs.
    pub source: Option<String>,
    /// Partitions of that repartition topic (`None`: as many as the inputs).
    pub partitions: Option<i32>,
}

/// A topic Weir creates and owns for a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    /// `<application>-<stage>-repartition` or `<application>-<stage>-changelog`.
    pub name: String,
    /// Partitions (`None`: as many as the inputs have).
    pub partitions: Option<i32>,
    /// What it holds, which decides how long the broker keeps it.
    pub kind: InternalKind,
}

/// What an internal topic holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalKind {
    /// Records between two sub-topologies: kept until the group has
    /// committed past them (then purged), whatever their timestamps.
    Repartition,
    /// A store's changelog: the latest record per key.
    Changelog {
        /// For a windowed store, how long (ms) its records are needed
        /// after they are written; older ones may be deleted as well as
        /// compacted. `None`: kept until compacted away.
        window_retention: Option<i64>,
    },
    /// A control topic (the module registry): compacted, kept forever.
    Control,
}

/// Inputs that one stateful task reads together have different partition
/// counts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "stage {stage} keeps state over inputs that are not co-partitioned: {topics}; give them the same \
     number of partitions, or let the stage repartition them (remove `repartition = false`)"
)]
pub struct CoPartitionError {
    /// The stateful stage.
    pub stage: String,
    /// Each input with its partition count.
    pub topics: String,
}

/// A pipeline's topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    application_id: String,
    inputs: Vec<String>,
    stages: Vec<StageNode>,
    subs: Vec<SubTopology>,
    default_sink: Option<String>,
    routes: BTreeMap<String, String>,
}

/// What the topology knows of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StageNode {
    name: String,
    module: String,
    aggregate: Option<Aggregation>,
    dead_letters: Option<String>,
}

impl Topology {
    /// The topology of a (checked) pipeline.
    pub fn from_pipeline(pipeline: &Pipeline) -> Topology {
        let stages: Vec<StageNode> = pipeline
            .stages
            .iter()
            .map(|s| StageNode {
                name: s.name.clone(),
                module: s.module.display().to_string(),
                aggregate: match &s.kind {
                    StageKind::Process => None,
                    StageKind::Aggregate(a) => Some(a.clone()),
                },
                dead_letters: match &s.on_error {
                    ErrorPolicy::DeadLetter(t) => Some(t.clone()),
                    _ => None,
                },
            })
            .collect();
        let subs = cut(&pipeline.application_id, &stages);
        Topology {
            application_id: pipeline.application_id.clone(),
            inputs: pipeline.inputs.clone(),
            stages,
            subs,
            default_sink: pipeline.outputs.default.clone(),
            routes: pipeline.outputs.routes.clone(),
        }
    }

    /// The sub-topologies, in the order records flow through them.
    pub fn sub_topologies(&self) -> &[SubTopology] {
        &self.subs
    }

    /// Checks that the topics a task reads together are co-partitioned:
    /// a sub-topology that keeps state and reads several inputs folds the
    /// records of one key in one task only if every input has the same
    /// number of partitions (a key's records then share a partition
    /// number, as the default partitioner puts them). `partitions` gives a
    /// topic's count, `None` when it is unknown (a missing topic is
    /// reported elsewhere).
    pub fn check_co_partitioning(&self, partitions: &dyn Fn(&str) -> Option<i32>) -> Result<(), CoPartitionError> {
        for sub in self.subs.iter().filter(|s| s.source.is_none()) {
            let Some(stage) = self.stages[sub.first..sub.end].iter().find(|s| s.aggregate.is_some()) else {
                continue;
            };
            let counts: Vec<(String, i32)> = self
                .inputs
                .iter()
                .filter_map(|t| partitions(t).map(|n| (t.clone(), n)))
                .collect();
            if counts.windows(2).any(|w| w[0].1 != w[1].1) {
                return Err(CoPartitionError {
                    stage: stage.name.clone(),
                    topics: counts
                        .iter()
                        .map(|(t, n)| format!("{t} ({n} partitions)"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }

    /// The changelog topic of stage `stage`'s store.
    pub fn changelog_topic(&self, stage: usize) -> String {
        format!("{}-{}-changelog", self.application_id, self.stages[stage].name)
    }

    /// The repartition topics (which the instance consumes as well).
    pub fn repartition_topics(&self) -> Vec<&str> {
        self.subs.iter().filter_map(|s| s.source.as_deref()).collect()
    }

    /// Topics Weir creates for this pipeline: repartition topics and the
    /// changelogs of stateful stages (as many partitions as their
    /// sub-topology's source).
    pub fn internal_topics(&self) -> Vec<InternalTopic> {
        let mut out = Vec::new();
        for sub in &self.subs {
            if let Some(source) = &sub.source {
                out.push(InternalTopic {
                    name: source.clone(),
                    partitions: sub.partitions,
                    kind: InternalKind::Repartition,
                });
            }
            for i in sub.first..sub.end {
                if let Some(agg) = &self.stages[i].aggregate {
                    out.push(InternalTopic {
                        name: self.changelog_topic(i),
                        partitions: sub.partitions,
                        kind: InternalKind::Changelog {
                            window_retention: agg.window.map(|w| w.retention()),
                        },
                    });
                }
            }
        }
        out
    }

    /// The topology as text: each sub-topology with its source, stages,
    /// stores and sinks, then the routes and internal topics.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Topology of {} ({} sub-topolog{})",
            self.application_id,
            self.subs.len(),
            if self.subs.len() == 1 { "y" } else { "ies" }
        );
        for (n, sub) in self.subs.iter().enumerate() {
            let sources = match &sub.source {
                Some(t) => vec![format!("{t} (repartition topic)")],
                None => self.inputs.clone(),
            };
            let _ = writeln!(out, "  Sub-topology {n}: one task per partition of its source");
            let _ = writeln!(out, "    Source: {}", sources.join(", "));
            let next = self.stages.get(sub.first).filter(|_| sub.first < sub.end);
            let _ = writeln!(
                out,
                "      --> {}",
                next.map_or_else(|| self.hop_after(n), |s| s.name.clone())
            );
            for i in sub.first..sub.end {
                let s = &self.stages[i];
                let _ = writeln!(out, "    Stage: {} ({})", s.name, self.stage_summary(s));
                if s.aggregate.is_some() {
                    let _ = writeln!(
                        out,
                        "      store: {} (RocksDB per task, changelog {})",
                        s.name,
                        self.changelog_topic(i)
                    );
                }
                if let Some(t) = &s.dead_letters {
                    let _ = writeln!(out, "      dead letters --> {t}");
                }
                let hop = if i + 1 < sub.end {
                    self.stages[i + 1].name.clone()
                } else {
                    self.hop_after(n)
                };
                let _ = writeln!(out, "      --> {hop}");
            }
        }
        if !self.routes.is_empty() {
            let routes: Vec<String> = self.routes.iter().map(|(r, t)| format!("{r} --> {t}")).collect();
            let _ = writeln!(out, "  Routes (from any stage): {}", routes.join(", "));
        }
        let internal = self.internal_topics();
        if !internal.is_empty() {
            let _ = writeln!(out, "  Internal topics:");
            for t in internal {
                let what = match t.kind {
                    InternalKind::Repartition => "repartition".to_owned(),
                    InternalKind::Changelog { window_retention: None } => "changelog".to_owned(),
                    InternalKind::Changelog {
                        window_retention: Some(ms),
                    } => format!("changelog, windows kept {ms} ms"),
                    InternalKind::Control => "control".to_owned(),
                };
                let partitions = t
                    .partitions
                    .map_or_else(|| "the inputs' partitions".to_owned(), |p| format!("{p} partition(s)"));
                let _ = writeln!(out, "    {} ({what}; {partitions})", t.name);
            }
        }
        out
    }

    /// Where the last stage of sub-topology `n` sends unrouted outputs.
    fn hop_after(&self, n: usize) -> String {
        match self.subs.get(n + 1).and_then(|s| s.source.as_deref()) {
            Some(t) => format!("{t} (repartition topic)"),
            None => self
                .default_sink
                .clone()
                .unwrap_or_else(|| "(no default output: routes only)".into()),
        }
    }

    fn stage_summary(&self, s: &StageNode) -> String {
        let Some(a) = &s.aggregate else {
            return format!("process, {}", s.module);
        };
        let window = match a.window.map(|w| (w.kind, w.grace)) {
            None => "per key".to_owned(),
            Some((kind, grace)) => {
                let kind = match kind {
                    WindowKind::Tumbling { size } => format!("tumbling {size} ms"),
                    WindowKind::Hopping { size, advance } => format!("hopping {size} ms every {advance} ms"),
                    WindowKind::Session { gap } => format!("session gap {gap} ms"),
                    WindowKind::Sliding { size } => format!("sliding {size} ms"),
                };
                format!("{kind}, grace {grace} ms")
            }
        };
        let emit = match a.emit {
            Emit::Update => "emit update",
            Emit::Final => "emit final",
        };
        format!("aggregate, {window}, {emit}, {}", s.module)
    }
}

/// Splits stages into sub-topologies at every aggregate that repartitions.
fn cut(application_id: &str, stages: &[StageNode]) -> Vec<SubTopology> {
    let mut out = vec![SubTopology {
        first: 0,
        end: stages.len(),
        source: None,
        partitions: None,
    }];
    for (i, s) in stages.iter().enumerate() {
        let Some(a) = s.aggregate.as_ref().filter(|a| a.repartition) else {
            continue;
        };
        let source = Some(format!("{application_id}-{}-repartition", s.name));
        if i > 0 {
            if let Some(last) = out.last_mut() {
                last.end = i;
            }
            out.push(SubTopology {
                first: i,
                end: stages.len(),
                source,
                partitions: a.partitions,
            });
        } else {
            // The first stage repartitions the inputs themselves: an empty
            // sub-topology writes them to the repartition topic unchanged.
            out[0].end = 0;
            out.push(SubTopology {
                first: 0,
                end: stages.len(),
                source,
                partitions: a.partitions,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn topology(text: &str) -> Topology {
        Topology::from_pipeline(&Pipeline::parse(Path::new("/p/pipe.toml"), text).unwrap())
    }

    const TWO_STAGES: &str = r#"
application-id = "wc"
inputs = ["sentences"]
[[stage]]
name = "words"
module = "w.wasm"
[[stage]]
name = "count"
kind = "aggregate"
module = "c.wasm"
window = { kind = "tumbling", size = "2s", grace = "1s" }
emit = "final"
[outputs]
default = "counts"
"#;

    #[test]
    fn an_aggregate_after_a_stage_reads_a_repartition_topic() {
        let t = topology(TWO_STAGES);
        assert_eq!(
            t.sub_topologies(),
            [
                SubTopology {
                    first: 0,
                    end: 1,
                    source: None,
                    partitions: None
                },
                SubTopology {
                    first: 1,
                    end: 2,
                    source: Some("wc-count-repartition".into()),
                    partitions: None
                },
            ]
        );
        assert_eq!(
            t.internal_topics(),
            [
                InternalTopic {
                    name: "wc-count-repartition".into(),
                    partitions: None,
                    kind: InternalKind::Repartition
                },
                InternalTopic {
                    name: "wc-count-changelog".into(),
                    partitions: None,
                    kind: InternalKind::Changelog {
                        window_retention: Some(3000)
                    }
                },
            ]
        );
        let text = t.describe();
        for line in [
            "Topology of wc (2 sub-topologies)",
            "Source: sentences",
            "Stage: words (process, /p/w.wasm)",
            "--> wc-count-repartition (repartition topic)",
            "Source: wc-count-repartition (repartition topic)",
            "Stage: count (aggregate, tumbling 2000 ms, grace 1000 ms, emit final, /p/c.wasm)",
            "store: count (RocksDB per task, changelog wc-count-changelog)",
            "--> counts",
            "wc-count-changelog (changelog, windows kept 3000 ms; the inputs' partitions)",
        ] {
            assert!(text.contains(line), "{line:?} missing in:\n{text}");
        }
    }

    #[test]
    fn a_first_stage_aggregate_repartitions_the_inputs_unchanged() {
        let t = topology(
            &TWO_STAGES
                .replace("[[stage]]\nname = \"words\"\nmodule = \"w.wasm\"\n", "")
                .replace("emit = \"final\"", "emit = \"final\"\nrepartition = true"),
        );
        let subs = t.sub_topologies();
        assert_eq!((subs[0].first, subs[0].end, subs[0].source.as_deref()), (0, 0, None));
        assert_eq!(subs[1].source.as_deref(), Some("wc-count-repartition"));
        assert!(
            t.describe()
                .contains("Source: sentences\n      --> wc-count-repartition"),
            "{}",
            t.describe()
        );
    }

    #[test]
    fn a_chain_without_state_is_one_sub_topology() {
        let t = topology(&TWO_STAGES.replace("kind = \"aggregate\"\n", "").replace(
            "window = { kind = \"tumbling\", size = \"2s\", grace = \"1s\" }\nemit = \"final\"\n",
            "",
        ));
        assert_eq!(t.sub_topologies().len(), 1);
        assert!(t.internal_topics().is_empty());
        assert!(t.repartition_topics().is_empty());
    }

    #[test]
    fn a_stateful_task_over_several_inputs_needs_them_co_partitioned() {
        let text = r#"
application-id = "j"
inputs = ["a", "b"]
[[stage]]
name = "count"
kind = "aggregate"
module = "c.wasm"
repartition = false
[outputs]
default = "out"
"#;
        let t = topology(text);
        let counts = |a: i32, b: i32| move |topic: &str| Some(if topic == "a" { a } else { b });
        assert_eq!(t.check_co_partitioning(&counts(3, 3)), Ok(()));
        let e = t.check_co_partitioning(&counts(3, 4)).unwrap_err();
        assert_eq!(e.topics, "a (3 partitions), b (4 partitions)");
        assert!(e.to_string().contains("stage count"), "{e}");
        // Repartitioned, the inputs need not match: the repartition topic does.
        let t = topology(&text.replace("repartition = false", "repartition = true"));
        assert_eq!(t.check_co_partitioning(&counts(3, 4)), Ok(()));
        // Stateless: nothing to co-partition.
        let t = topology(
            &text
                .replace("kind = \"aggregate\"\n", "")
                .replace("repartition = false\n", ""),
        );
        assert_eq!(t.check_co_partitioning(&counts(3, 4)), Ok(()));
    }
}
