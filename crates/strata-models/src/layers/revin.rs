//! Reversible instance normalisation (Kim et al., ICLR 2022), as PatchTST uses it.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

/// Normalises each series of a window by its own mean and standard deviation, with an optional
/// learned per-channel affine map, and undoes both on the forecast.
#[derive(Module, Debug)]
pub struct RevIN {
    pub weight: Option<Param<Tensor<1>>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub eps: f64,
    pub subtract_last: bool,
}

/// Statistics of one batch, kept between [`RevIN::norm`] and [`RevIN::denorm`].
pub struct RevINStats {
    center: Tensor<3>,
    stdev: Tensor<3>,
}

impl RevIN {
    pub fn new(channels: usize, affine: bool, subtract_last: bool, device: &Device) -> Self {
        RevIN {
            weight: affine.then(|| Param::from_tensor(Tensor::ones([channels], device))),
            bias: affine.then(|| Param::from_tensor(Tensor::zeros([channels], device))),
            eps: 1e-5,
            subtract_last,
        }
    }

    /// `x: [batch, time, channels]`; statistics over time, detached as in the reference.
    pub fn norm(&self, x: Tensor<3>) -> (Tensor<3>, RevINStats) {
        let [_, t, _] = x.dims();
        let center = if self.subtract_last { x.clone().narrow(1, t - 1, 1) } else { x.clone().mean_dim(1) }.detach();
        let (var, _) = x.clone().var_mean_bias(1);
        let stdev = var.add_scalar(self.eps).sqrt().detach();
        let mut y = (x - center.clone()) / stdev.clone();
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            y = y * w.val().unsqueeze::<3>() + b.val().unsqueeze::<3>();
        }
        (y, RevINStats { center, stdev })
    }

    pub fn denorm(&self, y: Tensor<3>, stats: &RevINStats) -> Tensor<3> {
        let mut y = y;
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            y = (y - b.val().unsqueeze::<3>()) / w.val().add_scalar(self.eps * self.eps).unsqueeze::<3>();
        }
        y * stats.stdev.clone() + stats.center.clone()
    }
}

/// The Non-stationary Transformer's normalisation, as TSLib's models inline it: each series of
/// `x: [batch, time, series]` minus its mean over time (detached), divided by its population
/// standard deviation (+ 1e-5 under the root). Returns the normalised series, the means and
/// the standard deviations (`[batch, 1, series]`) that undo it.
pub fn standardise(x: Tensor<3>) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
    let mean = x.clone().mean_dim(1).detach();
    let centred = x - mean.clone();
    let std = (centred.clone().powi_scalar(2).mean_dim(1) + 1e-5).sqrt();
    (centred / std.clone(), mean, std)
}
