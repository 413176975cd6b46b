//! Using trained models: [`forecast`] (a run folder forecasts a new file: `strata forecast`,
//! `strata serve`) and [`zero_shot`] (pretrained foundation models without training).

pub mod forecast;
pub mod zero_shot;
