//! Provenance of a run's fetched inputs, recorded in `manifest.json`: the
//! dataset record of every data folder `ablate fetch dataset` wrote.

use super::plan::Plan;
use crate::fetch::dataset::Provenance;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// `{"datasets": {PATH: provenance or null}}` over the distinct data
/// folders of the plan's cells; `null` where nothing records where the data
/// came from (the synthetic dataset is not listed: its settings are in each
/// cell).
pub fn of_plan(plan: &Plan) -> Value {
    let data: BTreeSet<_> = plan
        .cells
        .iter()
        .filter_map(|c| c.config.data.path.clone())
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
    json!({ "datasets": datasets })
}
