//! Where tensors live. burn 0.22 selects the backend at run time through `Device`; strata's
//! choice is made here, once: Flex on CPU (the default), CUDA with the `cuda` feature.

use burn::tensor::Device;

/// The compute device for training and inference, chosen by `STRATA_DEVICE` (`cpu` | `cuda`)
/// when the `cuda` feature is built, else the CPU (Flex).
pub fn compute_device() -> Device {
    #[cfg(feature = "cuda")]
    {
        if std::env::var("STRATA_DEVICE").map(|v| v != "cpu").unwrap_or(true) {
            return Device::cuda(0);
        }
    }
    Device::flex()
}

/// The same device with automatic differentiation, for training.
pub fn training_device() -> Device {
    compute_device().autodiff()
}

/// A short name for records.
pub fn device_name(device: &Device) -> String {
    format!("{device:?}")
}
