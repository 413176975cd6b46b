//! Layers shared by several models: [`attention`], [`distribution`] heads, seeded
//! [`dropout`], [`revin`] (reversible instance normalisation).

pub mod attention;
pub mod distribution;
pub mod dropout;
pub mod revin;
