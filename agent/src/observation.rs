//! What the world reports each step: camera frames, proprioception, simulator metadata.

use std::sync::Arc;

use ember_calibration::Pinhole;
use ember_calibration::frames::{Camera, Transform, World};
use serde::{Deserialize, Serialize};

use crate::thor;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `RGBRGB...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// An image from raw bytes; `None` when the length does not match the size.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Option<Self> {
        (data.len() == width as usize * height as usize * 3).then_some(Self {
            width,
            height,
            data,
        })
    }

    /// A black image.
    pub fn black(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            data: vec![0; width as usize * height as usize * 3],
        }
    }

    /// The pixel at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Places images side by side (left to right), padding shorter ones with black.
    pub fn hstack(images: &[&RgbImage]) -> RgbImage {
        let width: u32 = images.iter().map(|i| i.width).sum();
        let height = images.iter().map(|i| i.height).max().unwrap_or(0);
        let mut out = RgbImage::black(width, height);
        let mut x0 = 0usize;
        for img in images {
            for y in 0..img.height as usize {
                let src = &img.data[y * img.width as usize * 3..(y + 1) * img.width as usize * 3];
                let dst_start = (y * width as usize + x0) * 3;
                out.data[dst_start..dst_start + src.len()].copy_from_slice(src);
            }
            x0 += img.width as usize;
        }
        out
    }
}

/// A depth image in metres (float32), rows top to bottom; 0 or non-finite where unknown.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` depths in metres along the optical axis.
    pub data: Vec<f32>,
}

/// An instance segmentation image: per pixel an index into `legend` (0 = background).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` instance indices.
    pub data: Vec<u32>,
    /// `legend[i]` is the objectId of instance index `i`; `legend[0]` is the background.
    pub legend: Vec<String>,
}

/// One camera's frame at one step.
#[derive(Clone, Debug)]
pub struct CameraFrame {
    /// The camera's name (`front`, `wrist`...).
    pub name: String,
    /// The colour image.
    pub rgb: Arc<RgbImage>,
    /// Depth in metres, when the camera provides it.
    pub depth: Option<Arc<DepthImage>>,
    /// Instance segmentation, when the camera provides it.
    pub instances: Option<Arc<InstanceImage>>,
    /// Intrinsics, when known.
    pub intrinsics: Option<Pinhole>,
    /// The camera's pose in the world (AI2-THOR cameras: x right, y up, z forward), when known.
    pub world_from_camera: Option<Transform<World, Camera>>,
}

/// The mobile base's state, in SI units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BaseState {
    /// Position of the base in the world, metres.
    pub position: [f64; 3],
    /// Heading about the world's up axis, radians.
    pub yaw: f64,
    /// Head/camera pitch, radians, positive looking down.
    pub camera_pitch: f64,
    /// Whether the agent stands (AI2-THOR) or crouches.
    pub standing: bool,
}

/// An arm's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmState {
    /// Joint positions, radians (or metres for prismatic joints).
    pub joint_positions: Vec<f64>,
    /// End-effector position in the base frame, metres, when known.
    pub end_effector_position: Option<[f64; 3]>,
    /// End-effector orientation as a unit quaternion (x, y, z, w), when known.
    pub end_effector_orientation: Option<[f64; 4]>,
}

/// Proprioception: what the robot knows about its own body.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Proprioception {
    /// The base, when there is one.
    pub base: Option<BaseState>,
    /// The arm, when there is one.
    pub arm: Option<ArmState>,
    /// Gripper opening, 0 = closed, 1 = open, when there is a gripper.
    pub gripper: Option<f64>,
    /// The id of the held object, when the world knows it.
    pub held_object: Option<String>,
}

/// Everything the world reports after a reset or a step.
#[derive(Clone, Debug)]
pub struct Observation {
    /// The step clock: 0 after reset, +1 per world step.
    pub step: u64,
    /// Simulator time in seconds, where the world has one.
    pub sim_time: Option<f64>,
    /// Named camera frames.
    pub cameras: Vec<CameraFrame>,
    /// Proprioception.
    pub proprio: Proprioception,
    /// Simulator metadata (AI2-THOR schema) when the world is a simulator.
    pub sim: Option<Arc<thor::Metadata>>,
}

impl Observation {
    /// The camera with this name.
    pub fn camera(&self, name: &str) -> Option<&CameraFrame> {
        self.cameras.iter().find(|c| c.name == name)
    }

    /// The first camera (the main view).
    pub fn main_camera(&self) -> Option<&CameraFrame> {
        self.cameras.first()
    }

    /// Base state derived from simulator metadata (AI2-THOR degrees converted to radians).
    pub fn base_from_metadata(meta: &thor::Metadata) -> BaseState {
        BaseState {
            position: meta.agent.position.to_array(),
            yaw: meta.agent.rotation.y.to_radians(),
            camera_pitch: meta.agent.camera_horizon.to_radians(),
            standing: meta.agent.is_standing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_image_checks_length_and_stacks() {
        assert!(RgbImage::new(2, 2, vec![0; 11]).is_none());
        let a = RgbImage::new(1, 2, vec![1, 1, 1, 2, 2, 2]).unwrap();
        let b = RgbImage::new(2, 1, vec![3, 3, 3, 4, 4, 4]).unwrap();
        let s = RgbImage::hstack(&[&a, &b]);
        assert_eq!((s.width, s.height), (3, 2));
        assert_eq!(s.pixel(0, 1), [2, 2, 2]);
        assert_eq!(s.pixel(2, 0), [4, 4, 4]);
        assert_eq!(s.pixel(2, 1), [0, 0, 0]);
    }
}
