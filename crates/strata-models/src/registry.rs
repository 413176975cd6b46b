//! The model registry: `models!` turns the one list in `lib.rs` into the family modules, the
//! [`crate::ModelConfig`] enum (chosen by `name` in a run config's `[model]` table), the
//! [`crate::Model`] enum (the one module type the trainer and checkpoints handle) and their
//! dispatch to each model's [`crate::api::Architecture`] and [`crate::api::Forecast`].
//!
//! A family may name its other files (shared by its models): `pub mod spatial(graph_ops) { .. }`.
//! An entry reads `file: "name" ConfigVariant(ConfigType) => ModelVariant(ModuleType) | "alias";`
//! inside its family: the model lives in `<family>/<file>.rs`, is named `name` in configs
//! (aliases accepted), and is stored as `Model::ModelVariant` (the variant name is part of a
//! checkpoint's history: keep it when a model moves).

macro_rules! models {
    ($(
        $(#[$fdoc:meta])*
        pub mod $family:ident $(($($extra:ident),*))? {
            $( $file:ident: $name:literal $cv:ident($cfg:ident) => $mv:ident($module:ident) $(| $alias:literal)* ;)*
        }
    )*) => {
        $(
            $(#[$fdoc])*
            pub mod $family {
                $($(pub mod $extra;)*)?
                $(pub mod $file;)*
            }
            $(pub use $family::$file::{$cfg, $module};)*
        )*

        /// Any model's configuration, chosen by `name` in the `[model]` table of a run config.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "name")]
        pub enum ModelConfig {
            $($( #[serde(rename = $name $(, alias = $alias)*)] $cv($cfg), )*)*
        }

        /// Any model, as one module type the trainer and checkpoints handle.
        #[derive(burn::module::Module, Debug)]
        pub enum Model {
            $($( $mv($module), )*)*
        }

        impl ModelConfig {
            pub fn name(&self) -> &'static str {
                match self { $($( ModelConfig::$cv(_) => $name, )*)* }
            }

            /// Every configuration the shared conformance test runs (each model's examples).
            pub fn all_defaults() -> Vec<ModelConfig> {
                let mut all = Vec::new();
                $($( all.extend(<$cfg as $crate::api::Architecture>::examples().into_iter().map(ModelConfig::$cv)); )*)*
                all
            }

            pub fn capabilities(&self) -> $crate::api::Capabilities {
                match self { $($( ModelConfig::$cv(c) => $crate::api::Architecture::capabilities(c), )*)* }
            }

            /// Graph models: a sensor graph (or, for the convolutional seed models, a grid) is required.
            pub fn needs_graph(&self) -> bool {
                match self { $($( ModelConfig::$cv(c) => $crate::api::Architecture::needs_graph(c), )*)* }
            }

            /// Whether this model takes a graph per window (dynamic graphs).
            pub fn dynamic_graph(&self) -> bool {
                match self { $($( ModelConfig::$cv(c) => $crate::api::Architecture::dynamic_graph(c), )*)* }
            }

            /// The covariate kinds this model takes.
            pub fn covariates(&self) -> $crate::api::CovariateKinds {
                match self { $($( ModelConfig::$cv(c) => $crate::api::Architecture::covariates(c), )*)* }
            }

            /// Whether this model can be built for `shape` (with or without a graph); the error says why not.
            pub fn check(&self, shape: &$crate::api::Shape, has_graph: bool) -> Result<(), String> {
                match self { $($( ModelConfig::$cv(c) => $crate::api::Architecture::check(c, shape, has_graph), )*)* }
            }

            /// Build the model (models that load weights from disk can fail: the error says why).
            pub fn try_init(&self, shape: $crate::api::Shape, adj: Option<&[f32]>, device: &burn::tensor::Device) -> Result<Model, String> {
                match self { $($( ModelConfig::$cv(c) => $crate::api::Architecture::build(c, shape, adj, device).map(Model::$mv), )*)* }
            }
        }

        impl Model {
            /// [`Model::forward`] with the calendar features of the input and target rows, for
            /// models that use them; the others ignore them.
            pub fn forward_marked(&self, x: burn::tensor::Tensor<4>, marks: Option<$crate::api::Marks>) -> burn::tensor::Tensor<3> {
                match self { $($( Model::$mv(m) => $crate::api::Forecast::predict(m, x, marks), )*)* }
            }

            /// [`Model::forward_marked`] with each window's graph (`[batch, nodes, nodes]`) when
            /// the data has a graph per step.
            pub fn forward_graph(&self, x: burn::tensor::Tensor<4>, marks: Option<$crate::api::Marks>, graph: Option<burn::tensor::Tensor<3>>) -> burn::tensor::Tensor<3> {
                match graph {
                    None => self.forward_marked(x, marks),
                    Some(g) => match self { $($( Model::$mv(m) => $crate::api::Forecast::predict_graph(m, x, marks, g), )*)* },
                }
            }

            /// [`Model::forward_graph`] with the batch's covariates, for models that take them
            /// (the others are refused covariates when they are built).
            pub fn forward_inputs(&self, x: burn::tensor::Tensor<4>, marks: Option<$crate::api::Marks>, graph: Option<burn::tensor::Tensor<3>>, covariates: Option<$crate::api::Covariates>) -> burn::tensor::Tensor<3> {
                match covariates {
                    None => self.forward_graph(x, marks, graph),
                    Some(c) => match self { $($( Model::$mv(m) => $crate::api::Forecast::predict_covariates(m, x, marks, c), )*)* },
                }
            }

            /// The forecast distribution of every `(batch, step, node)` point, for probabilistic models.
            pub fn distribution(&self, x: burn::tensor::Tensor<4>, marks: Option<$crate::api::Marks>) -> Option<$crate::layers::distribution::Distribution> {
                match self { $($( Model::$mv(m) => $crate::api::Forecast::distribution(m, x, marks), )*)* }
            }

            /// Attention weights of every attention layer, named (`layer1`, `encoder1`,
            /// `decoder1_cross`), each `[batch (x channels for channel-independent models), heads,
            /// queries, keys]`; `None` for models without attention.
            pub fn attention(&self, x: burn::tensor::Tensor<4>, marks: Option<$crate::api::Marks>) -> Option<Vec<(String, burn::tensor::Tensor<4>)>> {
                match self { $($( Model::$mv(m) => $crate::api::Forecast::attention(m, x, marks), )*)* }
            }

            /// [`Model::attention`] with the batch's covariates (where the data has them).
            pub fn attention_inputs(&self, x: burn::tensor::Tensor<4>, marks: Option<$crate::api::Marks>, covariates: Option<$crate::api::Covariates>) -> Option<Vec<(String, burn::tensor::Tensor<4>)>> {
                match covariates {
                    None => self.attention(x, marks),
                    Some(c) => match self { $($( Model::$mv(m) => $crate::api::Forecast::attention_covariates(m, x, marks, c), )*)* },
                }
            }

            /// The adjacency a graph model learned (`[nodes, nodes]`): MTGNN's top-k graph, Graph
            /// WaveNet's self-adaptive one; `None` for other models.
            pub fn learned_adjacency(&self) -> Option<burn::tensor::Tensor<2>> {
                match self { $($( Model::$mv(m) => $crate::api::Forecast::learned_adjacency(m), )*)* }
            }

            /// Parameters that train (all of them, except for frozen parts of fine-tuned backbones).
            pub fn trainable(&self) -> usize {
                match self { $($( Model::$mv(m) => $crate::api::Forecast::trainable(m), )*)* }
            }

            /// See a training step's gradients (FSNet's averages; a no-op for other models).
            pub fn observe_gradients(&self, grads: &burn::optim::GradientsParams, online: bool) {
                match self { $($( Model::$mv(m) => $crate::api::Forecast::observe_gradients(m, grads, online), )*)* }
            }

            /// State outside the parameters that checkpoints keep (JSON), where the model has any.
            pub fn extra_state(&self) -> Option<String> {
                match self { $($( Model::$mv(m) => $crate::api::Forecast::extra_state(m), )*)* }
            }

            pub fn restore_extra_state(&self, json: &str) -> Result<(), String> {
                match self { $($( Model::$mv(m) => $crate::api::Forecast::restore_extra_state(m, json), )*)* }
            }
        }

        impl $crate::api::Forecaster for Model {
            fn forecast(&self, x: burn::tensor::Tensor<3>) -> burn::tensor::Tensor<3> {
                match self { $($( Model::$mv(m) => $crate::api::Forecast::predict_channels(m, x), )*)* }
            }
        }
    };
}
