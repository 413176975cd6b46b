//! Generative models of series windows: the [`vae`].

pub mod vae;
