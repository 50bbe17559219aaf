//! A pipeline as a topology, as in Kafka Streams: sources, a graph of
//! stages, sinks, and sub-topologies cut at internal repartition topics. A
//! task runs one sub-topology for one partition number, and reads that
//! partition of every source of its sub-topology.
//!
//! The stages form a graph: each reads input topics or earlier stages (a
//! `[[stage]]` list without `inputs` is a chain), and a stage's unrouted
//! outputs go to every stage that reads it. An aggregate that repartitions
//! (by default, one that reads another stage) reads
//! `<application-id>-<stage>-repartition` instead, which the stages and
//! topics it names write. The sub-topologies are what stays connected once
//! those edges are cut. [`Topology::describe`] prints it, like Kafka
//! Streams' `Topology.describe()` (`weir topology PIPELINE.toml`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::pipeline::{Emit, JoinShape, LookupKey, Pipeline, Stage, StageInput, StageKind};
use crate::state::{Durability, Scope, StoreSpec};
use crate::window::WindowKind;

/// Stages that one task executes, and the topics it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubTopology {
    /// The topics its tasks read (input topics and repartition topics), in
    /// the order the pipeline names them.
    pub sources: Vec<String>,
    /// Its stages (indices into the pipeline's stages), in pipeline order,
    /// which is an order of the graph: a stage comes after what it reads.
    pub stages: Vec<usize>,
    /// Partitions of its repartition topic (`None`: as many as the inputs).
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

/// Topics that one stateful task reads together have different partition
/// counts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "stage {stage} keeps state over topics that are not co-partitioned: {topics}; give them the same \
     number of partitions, or let the stage repartition them (`repartition = true`)"
)]
pub struct CoPartitionError {
    /// The stateful stage.
    pub stage: String,
    /// Each topic with its partition count.
    pub topics: String,
}

/// Where one stage's or source's records go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hops {
    /// Stages of the same task that read them, in pipeline order.
    pub stages: Vec<usize>,
    /// Stages of the same task that look a table's rows up instead
    /// (stream-table joins): they read the table's store, not its changes,
    /// so the changes are not sent to them.
    pub lookups: Vec<usize>,
    /// Repartition topics they are written to (read by another task).
    pub repartition: Vec<String>,
    /// The topic that gets them as the pipeline's output: the stage's `to`,
    /// or `[outputs] default` for a stage that nothing reads.
    pub sink: Option<String>,
}

/// A pipeline's topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    application_id: String,
    inputs: Vec<String>,
    /// The stages as the pipeline file defines them: the one definition
    /// that the chain and the routing borrow.
    stages: Vec<Arc<Stage>>,
    subs: Vec<SubTopology>,
    /// Where each stage's unrouted outputs go (index = stage).
    stage_hops: Vec<Hops>,
    /// Where each source topic's records go, by topic.
    source_hops: BTreeMap<String, Hops>,
    default_sink: Option<String>,
    routes: BTreeMap<String, String>,
}

impl Topology {
    /// The topology of a (checked) pipeline.
    pub fn from_pipeline(pipeline: &Pipeline) -> Topology {
        let stages: Vec<Arc<Stage>> = pipeline.stages.iter().cloned().map(Arc::new).collect();
        let app = &pipeline.application_id;
        let mut stage_hops = vec![Hops::default(); stages.len()];
        let mut source_hops: BTreeMap<String, Hops> =
            pipeline.inputs.iter().map(|t| (t.clone(), Hops::default())).collect();
        for (i, s) in stages.iter().enumerate() {
            if s.kind == StageKind::GlobalTable {
                // Read by every instance whole, outside the tasks.
                continue;
            }
            let repartition = s.repartition_topic(app);
            if let Some(r) = &repartition {
                source_hops.insert(
                    r.clone(),
                    Hops {
                        stages: vec![i],
                        ..Hops::default()
                    },
                );
            }
            for (n, input) in s.inputs.iter().enumerate() {
                let hops = match input {
                    StageInput::Topic(t) => source_hops.entry(t.clone()).or_default(),
                    // A global table's changes reach no stage.
                    StageInput::Stage(u) if stages[*u].kind == StageKind::GlobalTable => continue,
                    StageInput::Stage(u) if s.looks_up(*u) => {
                        stage_hops[*u].lookups.push(i);
                        continue;
                    }
                    StageInput::Stage(u) => &mut stage_hops[*u],
                };
                match &repartition {
                    Some(r) if s.repartitions(n) => hops.repartition.push(r.clone()),
                    _ => hops.stages.push(i),
                }
            }
        }
        for (i, s) in stages.iter().enumerate() {
            let read = !stage_hops[i].stages.is_empty()
                || !stage_hops[i].repartition.is_empty()
                || !stage_hops[i].lookups.is_empty();
            stage_hops[i].sink =
                s.to.clone()
                    .or_else(|| if read { None } else { pipeline.outputs.default.clone() });
        }
        let subs = cut(app, &pipeline.inputs, &stages);
        Topology {
            application_id: app.clone(),
            inputs: pipeline.inputs.clone(),
            stages,
            subs,
            stage_hops,
            source_hops,
            default_sink: pipeline.outputs.default.clone(),
            routes: pipeline.outputs.routes.clone(),
        }
    }

    /// The sub-topologies, in the order records first reach them.
    pub fn sub_topologies(&self) -> &[SubTopology] {
        &self.subs
    }

    /// The sub-topology that reads `topic` (an input or repartition topic).
    pub fn sub_of_topic(&self, topic: &str) -> Option<usize> {
        self.subs.iter().position(|s| s.sources.iter().any(|t| t == topic))
    }

    /// The sub-topology that runs stage `stage`.
    pub fn sub_of_stage(&self, stage: usize) -> Option<usize> {
        self.subs.iter().position(|s| s.stages.contains(&stage))
    }

    /// The stages as the pipeline defines them (index = stage).
    pub fn stages(&self) -> &[Arc<Stage>] {
        &self.stages
    }

    /// Where a stage's unrouted outputs go.
    pub fn stage_hops(&self, stage: usize) -> &Hops {
        &self.stage_hops[stage]
    }

    /// Where the records of a source topic go (`None`: not a source).
    pub fn source_hops(&self, topic: &str) -> Option<&Hops> {
        self.source_hops.get(topic)
    }

    /// Whether a task of some sub-topology keeps state over more than one
    /// topic: then a partition number of all of them must be assigned to one
    /// instance together (the consumer uses a co-locating assignor).
    pub fn needs_co_location(&self) -> bool {
        self.subs
            .iter()
            .any(|s| s.sources.len() > 1 && s.stages.iter().any(|&i| self.stages[i].keyed()))
    }

    /// Checks that the topics a task reads together are co-partitioned:
    /// a sub-topology that keeps state and reads several topics folds the
    /// records of one key in one task only if every topic has the same
    /// number of partitions (a key's records then share a partition
    /// number, as the default partitioner puts them). `partitions` gives a
    /// topic's count, `None` when it is unknown (a missing topic is
    /// reported elsewhere).
    pub fn check_co_partitioning(&self, partitions: &dyn Fn(&str) -> Option<i32>) -> Result<(), CoPartitionError> {
        for sub in self.subs.iter().filter(|s| s.sources.len() > 1) {
            let Some(&stage) = sub.stages.iter().find(|&&i| self.stages[i].keyed()) else {
                continue;
            };
            let counts: Vec<(String, i32)> = sub
                .sources
                .iter()
                .filter_map(|t| partitions(t).map(|n| (t.clone(), n)))
                .collect();
            if counts.windows(2).any(|w| w[0].1 != w[1].1) {
                return Err(CoPartitionError {
                    stage: self.stages[stage].name.clone(),
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

    /// The store stage `stage` declares, if it keeps state, per task: an
    /// aggregate's and a table-table join's (its result table), with their
    /// own changelog; a table's, restored from the topic it reads. A
    /// stream-table join reads its table's store.
    pub fn store(&self, stage: usize) -> Option<StoreSpec> {
        let node = self.stages.get(stage)?;
        let durability = match (&node.kind, node.inputs.as_slice()) {
            (StageKind::Aggregate(_), _) => Durability::Changelog(self.changelog_topic(stage)),
            (StageKind::Join(j), _)
                if matches!(j.shape, JoinShape::TableTable { .. } | JoinShape::StreamStream { .. }) =>
            {
                Durability::Changelog(self.changelog_topic(stage))
            }
            (StageKind::Table(_), [StageInput::Topic(t)]) => Durability::SourceTopic(t.clone()),
            (StageKind::Table(_), [StageInput::Stage(_)]) => Durability::Changelog(self.changelog_topic(stage)),
            (StageKind::GlobalTable, [StageInput::Topic(t)]) => {
                return Some(StoreSpec {
                    name: node.name.clone(),
                    scope: Scope::Global,
                    durability: Durability::SourceTopic(t.clone()),
                });
            }
            _ => return None,
        };
        Some(StoreSpec {
            name: node.name.clone(),
            scope: Scope::Task,
            durability,
        })
    }

    /// The changelog topic of stage `stage`'s store.
    pub fn changelog_topic(&self, stage: usize) -> String {
        format!("{}-{}-changelog", self.application_id, self.stages[stage].name)
    }

    /// The repartition topics (which the instance consumes as well).
    pub fn repartition_topics(&self) -> Vec<String> {
        self.stages
            .iter()
            .filter_map(|s| s.repartition_topic(&self.application_id))
            .collect()
    }

    /// Topics Weir creates for this pipeline: repartition topics and the
    /// changelogs of stateful stages (as many partitions as their
    /// sub-topology's tasks).
    pub fn internal_topics(&self) -> Vec<InternalTopic> {
        let mut out = Vec::new();
        for sub in &self.subs {
            for source in sub.sources.iter().filter(|t| !self.inputs.contains(t)) {
                out.push(InternalTopic {
                    name: source.clone(),
                    partitions: sub.partitions,
                    kind: InternalKind::Repartition,
                });
            }
            for &i in &sub.stages {
                if let Some(StoreSpec {
                    durability: Durability::Changelog(name),
                    ..
                }) = self.store(i)
                {
                    let window_retention = match &self.stages[i].kind {
                        StageKind::Aggregate(a) => a.window.map(|w| w.retention()),
                        StageKind::Join(j) => match &j.shape {
                            JoinShape::StreamStream { window } => Some(window.retention()),
                            _ => None,
                        },
                        _ => None,
                    };
                    out.push(InternalTopic {
                        name,
                        partitions: sub.partitions,
                        kind: InternalKind::Changelog { window_retention },
                    });
                }
            }
        }
        out
    }

    /// The topology as text: each sub-topology with its sources, stages,
    /// stores and where records go, then the routes and internal topics.
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
            let _ = writeln!(
                out,
                "  Sub-topology {n}: one task per partition number, reading it of every source"
            );
            for t in &sub.sources {
                let what = if self.inputs.contains(t) {
                    ""
                } else {
                    " (repartition topic)"
                };
                let _ = writeln!(out, "    Source: {t}{what}");
                if let Some(h) = self.source_hops.get(t) {
                    let _ = writeln!(out, "      --> {}", self.hop_list(h));
                }
            }
            for &i in &sub.stages {
                let s = &self.stages[i];
                let _ = writeln!(out, "    Stage: {} ({})", s.name, self.stage_summary(s));
                match (&s.kind, s.inputs.as_slice()) {
                    (StageKind::Table(_), [StageInput::Topic(t)]) => {
                        let _ = writeln!(
                            out,
                            "      store: {} (key-value store per task, restored from {t}, no changelog of its own)",
                            s.name
                        );
                    }
                    (StageKind::Table(_), _) => {
                        let _ = writeln!(
                            out,
                            "      store: {} (key-value store per task, changelog {})",
                            s.name,
                            self.changelog_topic(i)
                        );
                    }
                    _ => {}
                }
                if let StageKind::Join(j) = &s.kind {
                    let what = match &j.shape {
                        JoinShape::TableTable { .. } => Some("its result table: key-value store per task"),
                        JoinShape::StreamStream { .. } => Some("both sides' records: window store per task"),
                        JoinShape::StreamTable { .. } | JoinShape::StreamGlobal { .. } => None,
                    };
                    if let Some(what) = what {
                        let _ = writeln!(
                            out,
                            "      store: {} ({what}, changelog {})",
                            s.name,
                            self.changelog_topic(i)
                        );
                    }
                }
                if let Some(a) = s.aggregation() {
                    let kind = match a.window.map(|w| w.kind) {
                        None => "key-value store",
                        Some(WindowKind::Session { .. }) => "session store",
                        Some(_) => "window store",
                    };
                    let _ = writeln!(
                        out,
                        "      store: {} ({kind} per task, changelog {})",
                        s.name,
                        self.changelog_topic(i)
                    );
                }
                if let Some(t) = s.dead_letter_topic() {
                    let _ = writeln!(out, "      dead letters --> {t}");
                }
                let _ = writeln!(out, "      --> {}", self.hop_list(&self.stage_hops[i]));
            }
        }
        for s in self.stages.iter().filter(|s| s.kind == StageKind::GlobalTable) {
            let topic = match s.inputs.as_slice() {
                [StageInput::Topic(t)] => t.as_str(),
                _ => "?",
            };
            let _ = writeln!(
                out,
                "  Global table: {} (every partition of {topic}, held whole by every instance; no changelog of its own)",
                s.name
            );
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

    /// Where records go, as text.
    fn hop_list(&self, h: &Hops) -> String {
        let mut to: Vec<String> = h.stages.iter().map(|&i| self.stages[i].name.clone()).collect();
        to.extend(
            h.lookups
                .iter()
                .map(|&i| format!("{} (looks up its rows)", self.stages[i].name)),
        );
        to.extend(h.repartition.iter().map(|t| format!("{t} (repartition topic)")));
        to.extend(h.sink.iter().cloned());
        if to.is_empty() {
            "(routes only: no default output)".into()
        } else {
            to.join(", ")
        }
    }

    fn stage_summary(&self, s: &Stage) -> String {
        let module = s.module_display();
        let a = match &s.kind {
            StageKind::Process => return format!("process, {}", module),
            StageKind::Table(t) => {
                return match &t.group_by {
                    Some(m) => format!(
                        "table, grouped by {}",
                        m.file_name().map_or(m.to_string_lossy(), |n| n.to_string_lossy())
                    ),
                    None => "table".to_owned(),
                };
            }
            StageKind::GlobalTable => return "global table".to_owned(),
            StageKind::Join(j) => {
                return match &j.shape {
                    JoinShape::StreamTable { table } => {
                        format!(
                            "{} join, stream-table with {}, {}",
                            j.kind, self.stages[*table].name, module
                        )
                    }
                    JoinShape::TableTable { left, right } => format!(
                        "{} join, table-table of {} and {}, {}",
                        j.kind, self.stages[*left].name, self.stages[*right].name, module
                    ),
                    JoinShape::StreamGlobal { table, key } => format!(
                        "{} join, stream with global table {} by {}, {}",
                        j.kind,
                        self.stages[*table].name,
                        match key {
                            LookupKey::RecordKey => "the record key".to_owned(),
                            LookupKey::Field(f) => format!("field {f:?} of the value"),
                            LookupKey::Module(m) => format!("the key {} makes", m.display()),
                        },
                        module
                    ),
                    JoinShape::StreamStream { window } => format!(
                        "{} join, stream-stream, {} ms before to {} ms after, grace {} ms, {}",
                        j.kind, window.before, window.after, window.grace, module
                    ),
                };
            }
            StageKind::Aggregate(a) => a,
        };
        let window = match a.window.map(|w| (w.kind, w.grace)) {
            None if a.table => "of a grouped table (old values subtracted)".to_owned(),
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
        format!("aggregate, {window}, {emit}, {}", module)
    }
}

/// The sub-topologies: stages and topics that stay connected once the
/// edges into repartitioning stages are cut, in the order records first
/// reach them (input topics, then stages, as the pipeline names them).
fn cut(application_id: &str, inputs: &[String], stages: &[Arc<Stage>]) -> Vec<SubTopology> {
    // Union-find over topics and stages.
    let mut topics: Vec<String> = inputs.to_vec();
    let mut parent: Vec<usize> = Vec::new();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let stage_node = |i: usize| i;
    let n_stages = stages.len();
    let topic_node = |topics: &mut Vec<String>, t: &str| -> usize {
        let k = topics.iter().position(|x| x == t).unwrap_or_else(|| {
            topics.push(t.to_owned());
            topics.len() - 1
        });
        n_stages + k
    };
    let global = |i: usize| stages[i].kind == StageKind::GlobalTable;
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for (i, s) in stages.iter().enumerate() {
        if global(i) {
            continue;
        }
        let repartition = s.repartition_topic(application_id);
        if let Some(r) = &repartition {
            let t = topic_node(&mut topics, r);
            edges.push((stage_node(i), t));
        }
        for (n, input) in s.inputs.iter().enumerate() {
            if repartition.is_some() && s.repartitions(n) {
                continue;
            }
            let other = match input {
                StageInput::Topic(t) => topic_node(&mut topics, t),
                StageInput::Stage(u) if global(*u) => continue,
                StageInput::Stage(u) => stage_node(*u),
            };
            edges.push((stage_node(i), other));
        }
    }
    parent.extend(0..n_stages + topics.len());
    for (a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        parent[ra] = rb;
    }
    // Order: input topics first, then stages in pipeline order.
    let mut order: Vec<usize> = (0..inputs.len()).map(|k| n_stages + k).collect();
    order.extend((0..n_stages).filter(|&i| !global(i)));
    let mut roots: Vec<usize> = Vec::new();
    for x in order {
        let r = find(&mut parent, x);
        if !roots.contains(&r) {
            roots.push(r);
        }
    }
    roots
        .iter()
        .map(|&root| {
            let mut sources = Vec::new();
            for (k, t) in topics.iter().enumerate() {
                if find(&mut parent, n_stages + k) == root {
                    sources.push(t.clone());
                }
            }
            let members: Vec<usize> = (0..n_stages)
                .filter(|&i| !global(i) && find(&mut parent, i) == root)
                .collect();
            let partitions = members.iter().find_map(|&i| stages[i].repartition_partitions());
            SubTopology {
                sources,
                stages: members,
                partitions,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn topology(text: &str) -> Topology {
        Topology::from_pipeline(&Pipeline::parse(Path::new("/p/pipe.toml"), text).unwrap())
    }

    #[test]
    fn a_stream_table_join_looks_its_table_up_and_gets_none_of_its_changes() {
        let t = topology(crate::pipeline::tests::ENRICH);
        let table = t.stage_hops(0);
        assert_eq!(table.stages, Vec::<usize>::new(), "the join gets no batch of changes");
        assert_eq!(table.lookups, [1]);
        assert_eq!(table.sink, None, "a table that is looked up is read: no default output");
        assert_eq!(t.source_hops("orders").map(|h| h.stages.clone()), Some(vec![1]));
        assert_eq!(t.sub_topologies().len(), 1, "the join and its table share a task");
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
                    sources: vec!["sentences".into()],
                    stages: vec![0],
                    partitions: None
                },
                SubTopology {
                    sources: vec!["wc-count-repartition".into()],
                    stages: vec![1],
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
            "store: count (window store per task, changelog wc-count-changelog)",
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
        assert_eq!(
            (subs[0].sources.as_slice(), subs[0].stages.as_slice()),
            (&["sentences".to_owned()][..], &[][..])
        );
        assert_eq!(subs[1].sources, ["wc-count-repartition"]);
        assert!(
            t.describe()
                .contains("Source: sentences\n      --> wc-count-repartition (repartition topic)"),
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
        assert!(t.needs_co_location());
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

    const GRAPH: &str = r#"
application-id = "g"
inputs = ["orders", "refunds"]
[[stage]]
name = "parse-orders"
module = "p.wasm"
inputs = ["orders"]
[[stage]]
name = "parse-refunds"
module = "p.wasm"
inputs = ["refunds"]
[[stage]]
name = "audit"
module = "a.wasm"
inputs = ["parse-orders", "parse-refunds"]
to = "audit-log"
[[stage]]
name = "total"
kind = "aggregate"
module = "t.wasm"
inputs = ["parse-orders", "parse-refunds"]
[[stage]]
name = "alerts"
module = "x.wasm"
inputs = ["total"]
[outputs]
default = "out"
"#;

    #[test]
    fn stages_that_name_their_inputs_make_a_graph_cut_at_repartition_topics() {
        let t = topology(GRAPH);
        assert_eq!(
            t.sub_topologies(),
            [
                SubTopology {
                    sources: vec!["orders".into(), "refunds".into()],
                    stages: vec![0, 1, 2],
                    partitions: None
                },
                SubTopology {
                    sources: vec!["g-total-repartition".into()],
                    stages: vec![3, 4],
                    partitions: None
                },
            ]
        );
        assert_eq!(t.sub_of_topic("g-total-repartition"), Some(1));
        assert_eq!(t.sub_of_stage(4), Some(1));
        // Fan-out: both parse stages feed audit and the repartition topic.
        let h = t.stage_hops(0);
        assert_eq!(h.stages, [2]);
        assert_eq!(h.repartition, ["g-total-repartition"]);
        assert_eq!(h.sink, None);
        // `to` sinks; a stage nothing reads goes to the default output.
        assert_eq!(t.stage_hops(2).sink.as_deref(), Some("audit-log"));
        assert_eq!(t.stage_hops(3).stages, [4]);
        assert_eq!(t.stage_hops(4).sink.as_deref(), Some("out"));
        // Two sources, but no state in that task: nothing to co-locate.
        assert!(!t.needs_co_location());
        let text = t.describe();
        for line in [
            "Source: orders\n      --> parse-orders",
            "Source: refunds\n      --> parse-refunds",
            "Stage: parse-orders (process, /p/p.wasm)\n      --> audit, g-total-repartition (repartition topic)",
            "Stage: audit (process, /p/a.wasm)\n      --> audit-log",
            "Source: g-total-repartition (repartition topic)\n      --> total",
            "Stage: total (aggregate, per key, emit update, /p/t.wasm)\n      store: total (key-value store per task, changelog g-total-changelog)\n      --> alerts",
        ] {
            assert!(text.contains(line), "{line:?} missing in:\n{text}");
        }
    }

    #[test]
    fn a_stage_that_reads_an_input_and_a_repartitioned_stage_joins_their_tasks() {
        let t = topology(&GRAPH.replace("inputs = [\"total\"]", "inputs = [\"total\", \"refunds\"]"));
        assert_eq!(t.sub_topologies().len(), 1);
        assert_eq!(
            t.sub_topologies()[0].sources,
            ["orders", "refunds", "g-total-repartition"]
        );
        assert!(t.needs_co_location());
    }
}
