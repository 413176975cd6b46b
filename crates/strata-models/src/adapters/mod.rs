//! Fine-tuning adapters: LoRA and MSFT's multi-scale adaptation ([`msft`]), AdaLoRA
//! ([`adalora`]), and their application to MOIRAI ([`moirai_msft`]) and TinyTimeMixer
//! ([`ttm_msft`]), prompts included.

pub mod adalora;
pub mod moirai_msft;
pub mod msft;
pub mod ttm_msft;
