//! The spatial operator of the seed models (ST-CNN, ConvLSTM): a `k x k` convolution when the
//! nodes form a grid, else a graph convolution `[Z, A Z] W` with `A` the renormalised adjacency
//! (a first-order Chebyshev / GCN filter with a separate self weight).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::spatial::graph_ops::{gcn_norm, tensor, transpose};

#[derive(Module, Debug)]
pub struct SpatialMix {
    conv: Option<Conv2d>,
    linear: Option<Linear>,
    /// `A^T` (a constant), for the graph form.
    adj_t: Option<Tensor<2>>,
    height: usize,
    width: usize,
}

impl SpatialMix {
    /// `grid` = `[height, width]` with `height * width` nodes, or a graph `adj` of `n` nodes.
    pub fn new(c_in: usize, c_out: usize, kernel: usize, grid: Option<[usize; 2]>, adj: Option<&[f32]>, n: usize, device: &Device) -> Self {
        match grid {
            Some([h, w]) => SpatialMix {
                conv: Some(Conv2dConfig::new([c_in, c_out], [kernel, kernel]).with_padding(PaddingConfig2d::Same).init(device)),
                linear: None,
                adj_t: None,
                height: h,
                width: w,
            },
            None => {
                let a = adj.expect("a graph model needs data.graph (or data.grid for gridded fields)");
                SpatialMix { conv: None, linear: Some(LinearConfig::new(2 * c_in, c_out).init(device)), adj_t: Some(tensor(transpose(&gcn_norm(a, n), n), n, device)), height: 0, width: 0 }
            }
        }
    }

    /// `z`: `[batch, nodes, c_in]` -> `[batch, nodes, c_out]`.
    pub fn forward(&self, z: Tensor<3>) -> Tensor<3> {
        let [b, n, c] = z.dims();
        if let Some(conv) = &self.conv {
            let img = z.permute([0, 2, 1]).reshape([b, c, self.height, self.width]);
            let y = conv.forward(img);
            let c_out = y.dims()[1];
            return y.reshape([b, c_out, n]).permute([0, 2, 1]);
        }
        let adj_t = self.adj_t.as_ref().expect("graph form");
        let mixed = z.clone().permute([0, 2, 1]).reshape([b * c, n]).matmul(adj_t.clone()).reshape([b, c, n]).permute([0, 2, 1]);
        self.linear.as_ref().expect("graph form").forward(Tensor::cat(vec![z, mixed], 2))
    }
}
