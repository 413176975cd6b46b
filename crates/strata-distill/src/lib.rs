//! strata-distill: compressing a spatio-temporal training set in time and space
//! (`../shared/docs/stemdist.md`).
//!
//! * [`cluster`]: STemDist's location clustering (k-means++ on each location's flattened
//!   normalised training inputs, empty-cluster repair, cluster sizes as loss weights) and the
//!   aggregation of windows onto clusters.

//! * [`matching`]: gradient matching's layer-wise cosine distance and its gradient with
//!   respect to the synthetic data (Hessian-vector products by central differences).

//! * [`stdata`]: series, windows, location-encoder inputs and masked metrics.
//! * [`config`]: the settings; [`shared`]: the types every method shares (the distilled set,
//!   the synthetic set, the backbone); [`method`]: the method dispatch; [`evaluate`]: a model
//!   trained on a distilled set (through strata-train's engine) and scored on the real data.
//! * [`stemdist`]: gradient matching (STemDist and DC).
//! * [`coreset`]: random, k-center and herding; [`dm`]: distribution matching; [`mtt`]:
//!   trajectory matching (MTT) and CondTSF.

pub mod cluster;
pub mod config;
pub mod coreset;
pub mod dm;
pub mod evaluate;
pub mod matching;
pub mod method;
pub mod mtt;
pub mod run;
pub mod shared;
pub mod stdata;
pub mod stemdist;
#[cfg(test)]
pub(crate) mod testutil;
