//! Hyper-parameter search: [`tune`] (`strata tune`).

pub mod tune;
