//! Using trained models: [`forecast`] (a run folder forecasts a new file: `strata forecast`,
//! `strata serve`), [`zero_shot`] (pretrained foundation models without training) and
//! [`weights`] (a model's parameters as named arrays, and back); [`covariates`] (the
//! covariates a query reads).

pub mod covariates;
pub mod forecast;
pub mod input;
pub mod weights;
pub mod zero_shot;
