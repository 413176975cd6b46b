//! CPU kernels faster than burn's generic ones for strata's shapes: [`fastmath`] (vectorised
//! exp/tanh), [`gelu`], [`softmax`].

pub mod fastmath;
pub mod gelu;
pub mod softmax;
