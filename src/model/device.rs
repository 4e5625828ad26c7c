//! Which device the model runs on: `--device auto|cpu|metal|cuda`.

use candle_core::Device;

use super::ModelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// Metal where built and present, else CUDA, else the CPU.
    Auto,
    Cpu,
    Metal,
    Cuda,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "metal" => Ok(Self::Metal),
            "cuda" => Ok(Self::Cuda),
            other => Err(format!("unknown device {other:?} (auto, cpu, metal, cuda)")),
        }
    }
}

pub fn select_device(choice: DeviceChoice) -> Result<Device, ModelError> {
    let unavailable =
        |name: &str, e: candle_core::Error| ModelError::Device(name.into(), e.to_string());
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Metal => Device::new_metal(0).map_err(|e| unavailable("metal", e)),
        DeviceChoice::Cuda => Device::new_cuda(0).map_err(|e| unavailable("cuda", e)),
        DeviceChoice::Auto => {
            if candle_core::utils::metal_is_available() {
                if let Ok(d) = Device::new_metal(0) {
                    return Ok(d);
                }
            }
            if candle_core::utils::cuda_is_available() {
                if let Ok(d) = Device::new_cuda(0) {
                    return Ok(d);
                }
            }
            Ok(Device::Cpu)
        }
    }
}

/// The device's kind as the faces show it: `cpu`, `metal` or `cuda`.
pub fn device_name(device: &Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Metal(_) => "metal",
        Device::Cuda(_) => "cuda",
    }
}
