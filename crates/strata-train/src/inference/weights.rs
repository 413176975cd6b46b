//! A trained model's parameters as named arrays, and back: what the Python package's
//! `get_weights` / `set_weights` and federated learning exchange. Names are burn's parameter
//! paths (`burn::store`'s, enum variants included, e.g. `DLinear.seasonal.weight`); BatchNorm's
//! running statistics are parameters here too, so a model set from another's arrays forecasts
//! exactly as that one did.

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::tensor::TensorData;

use crate::engine::RunPaths;
use crate::engine::checkpoint::{TrainState, save_module};

/// One parameter: its path, shape and values (row-major f32).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedArray {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Every parameter of `module`, in the module's order.
pub fn get_weights<M: Module>(module: &M) -> Result<Vec<NamedArray>> {
    module
        .collect(None, None, false)
        .into_iter()
        .map(|t| {
            let name = t.name.clone();
            let data = burn::store::bridge::into_data(t).map_err(|e| anyhow!("parameter `{name}`: {e:?}"))?;
            let shape = data.shape().to_vec();
            let values = data.convert::<f32>().try_into_vec::<f32>().map_err(|e| anyhow!("parameter `{name}`: {e:?}"))?;
            Ok(NamedArray { name, shape, values })
        })
        .collect()
}

/// What [`set_weights`] did without `strict`: the model's parameters no array named, and the
/// arrays no parameter took.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetReport {
    pub set: usize,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
}

/// Replace `module`'s parameters by `arrays` (by name). Every array must match its parameter's
/// shape. With `strict`, every parameter must be given and every array used; otherwise the
/// parameters not given keep their values and the report lists both kinds of mismatch.
pub fn set_weights<M: Module>(mut module: M, arrays: Vec<NamedArray>, strict: bool) -> Result<(M, SetReport)> {
    let own: Vec<(String, Vec<usize>)> = module.collect(None, None, false).into_iter().map(|t| (t.name.clone(), t.shape.to_vec())).collect();
    let mut report = SetReport::default();
    for a in &arrays {
        match own.iter().find(|(n, _)| *n == a.name) {
            Some((_, shape)) if *shape != a.shape => bail!("weight `{}`: shape {:?} given; the model's is {:?}", a.name, a.shape, shape),
            Some(_) if a.values.len() != a.shape.iter().product::<usize>() => bail!("weight `{}`: {} values for shape {:?}", a.name, a.values.len(), a.shape),
            Some(_) => report.set += 1,
            None => report.unexpected.push(a.name.clone()),
        }
    }
    report.missing = own.iter().filter(|(n, _)| !arrays.iter().any(|a| a.name == *n)).map(|(n, _)| n.clone()).collect();
    if strict && !(report.missing.is_empty() && report.unexpected.is_empty()) {
        let mut parts = Vec::new();
        if !report.missing.is_empty() {
            parts.push(format!("missing {:?}", report.missing));
        }
        if !report.unexpected.is_empty() {
            parts.push(format!("unexpected {:?} (the model's names are burn paths such as `{}`)", report.unexpected, own.first().map_or("", |o| o.0.as_str())));
        }
        bail!("weights do not match the model: {}; pass strict=False to set only the names that match", parts.join("; "));
    }
    let tensors = arrays
        .into_iter()
        .filter(|a| own.iter().any(|(n, _)| *n == a.name))
        .map(|a| burn::store::bridge::from_data(TensorData::new(a.values, a.shape), a.name, None))
        .collect();
    let r = module.apply(tensors, None, None, false);
    if !r.errors.is_empty() {
        bail!("weights: {}", r.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "));
    }
    Ok((module, report))
}

/// Make `module` the model of a trained run folder: it becomes the best checkpoint (what
/// forecasting and evaluation use) and the point training continues from. Its validation loss
/// is unknown, so the next epoch trained becomes the best whatever its score.
pub fn write_run_model<M: Module>(run_dir: &Path, module: &M) -> Result<()> {
    let paths = RunPaths::new(run_dir);
    if !paths.state.exists() {
        bail!("{} is not a trained run folder (no state.json)", run_dir.display());
    }
    let mut state = TrainState::load(&paths.state)?;
    save_module(module, &paths.best)?;
    save_module(module, &paths.last)?;
    (state.best_val, state.bad_epochs, state.stopped_early) = (None, 0, false);
    state.save(&paths.state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Net {
        fc: Linear,
        norm: BatchNorm,
    }

    fn net() -> Net {
        let d = Device::flex();
        Net { fc: LinearConfig::new(3, 2).init(&d), norm: BatchNormConfig::new(2).init(&d) }
    }

    #[test]
    fn names_shapes_and_batchnorm_statistics_round_trip() {
        let w = get_weights(&net()).unwrap();
        let names: Vec<&str> = w.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["fc.weight", "fc.bias", "norm.gamma", "norm.beta", "norm.running_mean", "norm.running_var"]);
        assert_eq!(w[0].shape, [3, 2]);
        // Values by hand: weight 0..6, running mean [7, 8]; the rest unchanged.
        let mut given = w.clone();
        given[0].values = (0..6).map(|i| i as f32).collect();
        given[4].values = vec![7.0, 8.0];
        let (m, r) = set_weights(net(), given.clone(), true).unwrap();
        assert_eq!(r, SetReport { set: 6, ..Default::default() });
        let back = get_weights(&m).unwrap();
        assert_eq!(back[0].values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(back[4].values, [7.0, 8.0]);
        assert_eq!(back[5].values, [1.0, 1.0]);
    }

    #[test]
    fn mismatches_are_named() {
        let mut w = get_weights(&net()).unwrap();
        w[0].shape = vec![2, 3];
        let e = set_weights(net(), w, true).unwrap_err().to_string();
        assert!(e.contains("weight `fc.weight`: shape [2, 3] given; the model's is [3, 2]"), "{e}");
        let mut w = get_weights(&net()).unwrap();
        w.remove(1);
        w[0].name = "fc.w".into();
        let e = set_weights(net(), w.clone(), true).unwrap_err().to_string();
        assert!(e.contains("missing [\"fc.weight\", \"fc.bias\"]") && e.contains("unexpected [\"fc.w\"]") && e.contains("strict=False"), "{e}");
        let (_, r) = set_weights(net(), w, false).unwrap();
        assert_eq!((r.set, r.missing.len(), r.unexpected.len()), (4, 2, 1));
    }
}
