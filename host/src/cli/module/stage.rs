//! A pipeline stage as the target of a module: the kind of operator it
//! needs, and the version it runs now.

use std::path::Path;

use anyhow::{Context as _, bail};

use crate::contract::OperatorKind;
use crate::pipeline::{Pipeline, StageKind};
use crate::registry::Registry;

/// What a stage needs of a module: the stage's name, its kind, and whether
/// it must export `subtract` (a table aggregation).
pub(super) type Target = (String, OperatorKind, bool);

/// The kind a pipeline's stage needs.
pub(super) fn stage_kind(pipeline: &Pipeline, stage: &str) -> anyhow::Result<Target> {
    let s = pipeline.stages.iter().find(|s| s.name == stage).with_context(|| {
        format!(
            "{} has no stage {stage:?} (stages: {})",
            pipeline.file.display(),
            pipeline
                .stages
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let kind = match s.kind {
        StageKind::Process => OperatorKind::Processor,
        StageKind::Aggregate(_) => OperatorKind::Aggregator,
        StageKind::Join(_) => OperatorKind::Joiner,
        StageKind::Table(_) | StageKind::GlobalTable => bail!(
            "stage {stage} of {} is a table: it runs no module, so there is nothing to push or activate",
            pipeline.file.display()
        ),
    };
    let subtract = matches!(&s.kind, StageKind::Aggregate(a) if a.table);
    Ok((stage.to_owned(), kind, subtract))
}

/// The name and bytes of the version a stage runs now: its activation's,
/// else its pipeline file's module.
pub(super) fn current_version(
    registry: &Registry,
    pipeline: &Pipeline,
    stage: &str,
) -> anyhow::Result<(String, Vec<u8>)> {
    let snap = registry.snapshot()?;
    if let Some(a) = snap.active.get(&(pipeline.application_id.clone(), stage.to_owned()))
        && let Some(record) = snap.get(&a.module)
    {
        return Ok((record.name.clone(), registry.fetch(record)?));
    }
    let file = pipeline
        .stages
        .iter()
        .find(|s| s.name == stage)
        .and_then(|s| s.module.clone())
        .unwrap_or_default();
    let bytes = std::fs::read(&file)
        .with_context(|| format!("cannot read {}, the module stage {stage} runs", file.display()))?;
    Ok((module_name(&file, None), bytes))
}

/// The registry name of a module file: `name`, else the file name
/// without its extension.
pub(super) fn module_name(file: &Path, name: Option<&str>) -> String {
    name.map(str::to_owned).unwrap_or_else(|| {
        file.file_stem()
            .map_or_else(|| "module".to_owned(), |s| s.to_string_lossy().into_owned())
    })
}
