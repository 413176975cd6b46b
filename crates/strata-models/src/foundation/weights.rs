//! Loading parameters by name from a flat `name -> tensor` map (a converted PyTorch state
//! dict, a safetensors file): every key must match a parameter of the same shape, so a wrong
//! checkpoint fails at the right key. Names are module paths (`layers.0.attention.query.weight`).

use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};

/// A named tensor: shape and row-major f32 values.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct NamedTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

struct Loader<'a> {
    path: Vec<String>,
    tensors: &'a BTreeMap<String, NamedTensor>,
    used: BTreeSet<String>,
    errors: Vec<String>,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let key = self.path.join(".");
        let want: Vec<usize> = param.shape().dims::<D>().to_vec();
        let Some(t) = self.tensors.get(&key) else {
            self.errors.push(format!("missing key `{key}` (model shape {want:?})"));
            return param;
        };
        self.used.insert(key.clone());
        if t.shape != want || t.data.len() != want.iter().product::<usize>() {
            self.errors.push(format!("key `{key}`: checkpoint shape {:?}, model shape {want:?}", t.shape));
            return param;
        }
        let data = TensorData::new(t.data.clone(), want);
        param.map(|old| Tensor::from_data(data, &old.device()))
    }
}

/// Replace every float parameter of `module` by the tensor of the same name. Errors list each
/// missing key, unexpected key and shape mismatch.
pub fn load_named<M: Module>(module: M, tensors: &BTreeMap<String, NamedTensor>) -> Result<M, String> {
    let mut loader = Loader { path: vec![], tensors, used: BTreeSet::new(), errors: vec![] };
    let module = module.map(&mut loader);
    for key in tensors.keys().filter(|k| !loader.used.contains(*k)) {
        loader.errors.push(format!("unexpected key `{key}` (shape {:?})", tensors[key].shape));
    }
    if loader.errors.is_empty() { Ok(module) } else { Err(loader.errors.join("; ")) }
}

/// Load a PyTorch-layout safetensors checkpoint (Hugging Face `model.safetensors`) into
/// `module` by name through burn-store (Linear weights transposed, LayerNorm weight/bias as
/// gamma/beta). A `module.` prefix (checkpoints saved from a wrapper) is stripped. Every missing
/// key, unexpected key and shape mismatch is reported, naming the key and both shapes.
pub fn load_safetensors<M: Module>(module: &mut M, path: &std::path::Path) -> Result<(), String> {
    use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
    if !path.exists() {
        return Err(format!("{}: file not found", path.display()));
    }
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .with_key_remapping(r"^module\.", "")
        .allow_partial(true)
        .validate(false);
    let r = module.load_from(&mut store).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut errors: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    errors.extend(r.missing.iter().map(|(key, _)| format!("missing key `{key}`")));
    errors.extend(r.unused.iter().map(|key| format!("unexpected key `{key}`")));
    if errors.is_empty() { Ok(()) } else { Err(format!("{}: {}", path.display(), errors.join("; "))) }
}

/// Save `module` as a PyTorch-layout safetensors checkpoint (the inverse of
/// [`load_safetensors`]: Linear weights `[out, in]`, norm `weight`), written to a temporary file
/// and renamed.
pub fn save_safetensors<M: Module>(module: &M, path: &std::path::Path) -> Result<(), String> {
    use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
    let tmp = path.with_extension("safetensors.tmp");
    let mut store = SafetensorsStore::from_file(&tmp).with_to_adapter(BurnToPyTorchAdapter);
    module.save_into(&mut store).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::Device;

    fn linear_weights(w_shape: Vec<usize>) -> BTreeMap<String, NamedTensor> {
        let n = w_shape.iter().product();
        BTreeMap::from([
            ("weight".to_string(), NamedTensor { shape: w_shape, data: (0..n).map(|i| i as f32).collect() }),
            ("bias".to_string(), NamedTensor { shape: vec![2], data: vec![5.0, 6.0] }),
        ])
    }

    #[test]
    fn loads_by_name_and_names_bad_keys() {
        let device = Device::flex();
        let lin = load_named(LinearConfig::new(3, 2).init(&device), &linear_weights(vec![3, 2])).unwrap();
        assert_eq!(lin.weight.val().into_data().try_to_vec::<f32>().unwrap(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let e = load_named(LinearConfig::new(3, 2).init(&device), &linear_weights(vec![2, 3])).unwrap_err();
        assert_eq!(e, "key `weight`: checkpoint shape [2, 3], model shape [3, 2]");
        let mut extra = linear_weights(vec![3, 2]);
        extra.insert("gamma".into(), NamedTensor { shape: vec![1], data: vec![1.0] });
        extra.remove("bias");
        let e = load_named(LinearConfig::new(3, 2).init(&device), &extra).unwrap_err();
        assert!(e.contains("missing key `bias` (model shape [2])") && e.contains("unexpected key `gamma` (shape [1])"), "{e}");
    }
}
