//! Provenance of a run's fetched inputs, recorded in `manifest.json`: the
//! dataset record of every data folder `ablate fetch dataset` wrote, and the
//! fetch record of every named or fetched weights file.

use super::plan::Plan;
use crate::fetch::dataset::Provenance;
use crate::fetch::weights::describe_pretrained;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// `{"datasets": {PATH: provenance or null}, "weights": {SPEC: record or null}}`
/// over the distinct data folders and `model.pretrained` values of the
/// plan's cells; `null` where nothing records where an input came from
/// (the synthetic dataset is not listed: its settings are in each cell).
pub fn of_plan(plan: &Plan) -> Value {
    let data: BTreeSet<_> = plan
        .cells
        .iter()
        .filter_map(|c| c.config.data.path.clone())
        .collect();
    let weights: BTreeSet<_> = plan
        .cells
        .iter()
        .filter_map(|c| c.config.model.pretrained.clone())
        .collect();
    let datasets: Map<String, Value> = data
        .into_iter()
        .map(|path| {
            let provenance = Provenance::read(&path)
                .ok()
                .flatten()
                .map_or(Value::Null, |p| p.summary());
            (path.display().to_string(), provenance)
        })
        .collect();
    let weights: Map<String, Value> = weights
        .into_iter()
        .map(|spec| {
            let record = describe_pretrained(&spec).map_or(Value::Null, |r| {
                serde_json::to_value(r).expect("record serialises")
            });
            (spec.display().to_string(), record)
        })
        .collect();
    json!({ "datasets": datasets, "weights": weights })
}

/// Resolves every distinct `model.pretrained` of the plan's cells (see
/// [`crate::fetch::weights::resolve_pretrained`]), so that weights that are
/// missing, changed, of another architecture or normalisation stop a run
/// before its first cell instead of failing every cell.
pub fn check_pretrained(plan: &Plan) -> Result<(), crate::fetch::weights::WeightsError> {
    let pairs: BTreeSet<_> = plan
        .cells
        .iter()
        .filter_map(|c| {
            Some((
                c.config.model.pretrained.clone()?,
                c.config.model.name.clone(),
            ))
        })
        .collect();
    for (spec, model) in pairs {
        // An invalid model name is reported by the cell itself.
        if let Ok(config) = crate::model::resnet::ResNetConfig::from_name(&model, 2) {
            crate::fetch::weights::resolve_pretrained(&spec, &config)?;
        }
    }
    Ok(())
}
