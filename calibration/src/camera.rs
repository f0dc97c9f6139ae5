//! The pinhole camera model.
//!
//! Pixel coordinates: `u` to the right, `v` down, origin at the top-left corner of the image,
//! pixel centres at half-integers. The optical frame used here is x right, y down, z forward
//! (the usual computer-vision convention); [`crate::thor`] converts AI2-THOR's y-up camera.

use nalgebra::{Point2, Point3};
use serde::{Deserialize, Serialize};

use crate::CalibrationError;

/// Pinhole intrinsics in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pinhole {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Focal length along u, in pixels.
    pub fx: f64,
    /// Focal length along v, in pixels.
    pub fy: f64,
    /// Principal point u, in pixels.
    pub cx: f64,
    /// Principal point v, in pixels.
    pub cy: f64,
}

impl Pinhole {
    /// Intrinsics from a vertical field of view (radians), as Unity's and hence AI2-THOR's
    /// `fieldOfView` means it. Square pixels, centred principal point.
    pub fn from_vertical_fov(
        width: u32,
        height: u32,
        fov_y: f64,
    ) -> Result<Self, CalibrationError> {
        Self::check(width, height, fov_y)?;
        let f = (height as f64 / 2.0) / (fov_y / 2.0).tan();
        Ok(Self::centred(width, height, f))
    }

    /// Intrinsics from a horizontal field of view (radians). Square pixels, centred principal
    /// point.
    pub fn from_horizontal_fov(
        width: u32,
        height: u32,
        fov_x: f64,
    ) -> Result<Self, CalibrationError> {
        Self::check(width, height, fov_x)?;
        let f = (width as f64 / 2.0) / (fov_x / 2.0).tan();
        Ok(Self::centred(width, height, f))
    }

    fn centred(width: u32, height: u32, f: f64) -> Self {
        Self {
            width,
            height,
            fx: f,
            fy: f,
            cx: width as f64 / 2.0,
            cy: height as f64 / 2.0,
        }
    }

    fn check(width: u32, height: u32, fov: f64) -> Result<(), CalibrationError> {
        if width == 0 || height == 0 {
            return Err(CalibrationError::InvalidCamera(format!(
                "image size {width}x{height} has a zero side"
            )));
        }
        if !(fov > 0.0 && fov < std::f64::consts::PI) {
            return Err(CalibrationError::InvalidCamera(format!(
                "field of view {fov} rad is outside (0, pi)"
            )));
        }
        Ok(())
    }

    /// The vertical field of view in radians.
    pub fn fov_y(&self) -> f64 {
        2.0 * ((self.height as f64 / 2.0) / self.fy).atan()
    }

    /// The horizontal field of view in radians.
    pub fn fov_x(&self) -> f64 {
        2.0 * ((self.width as f64 / 2.0) / self.fx).atan()
    }

    /// Projects a point in the optical frame (x right, y down, z forward) to pixel
    /// coordinates; `None` when the point is not in front of the camera.
    pub fn project(&self, p: &Point3<f64>) -> Option<Point2<f64>> {
        if p.z <= 1e-9 {
            return None;
        }
        Some(Point2::new(
            self.cx + self.fx * p.x / p.z,
            self.cy + self.fy * p.y / p.z,
        ))
    }

    /// Back-projects pixel `(u, v)` at depth `z` (metres along the optical axis) into the
    /// optical frame.
    pub fn unproject(&self, u: f64, v: f64, z: f64) -> Point3<f64> {
        Point3::new((u - self.cx) / self.fx * z, (v - self.cy) / self.fy * z, z)
    }

    /// Whether a pixel coordinate lies inside the image.
    pub fn contains(&self, px: &Point2<f64>) -> bool {
        px.x >= 0.0 && px.y >= 0.0 && px.x < self.width as f64 && px.y < self.height as f64
    }

    /// The 3x3 intrinsic matrix, row-major.
    pub fn matrix(&self) -> [[f64; 3]; 3] {
        [
            [self.fx, 0.0, self.cx],
            [0.0, self.fy, self.cy],
            [0.0, 0.0, 1.0],
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::FRAC_PI_2;

    #[test]
    fn ninety_degree_vertical_fov_at_800x450() {
        let cam = Pinhole::from_vertical_fov(800, 450, FRAC_PI_2).unwrap();
        assert!((cam.fy - 225.0).abs() < 1e-9);
        assert!((cam.fov_y() - FRAC_PI_2).abs() < 1e-12);
        // 16:9 with a 90 degree vertical fov is about 121.3 degrees horizontally.
        assert!((cam.fov_x().to_degrees() - 121.28).abs() < 0.01);
    }

    #[test]
    fn project_unproject_round_trip() {
        let cam = Pinhole::from_horizontal_fov(640, 480, 1.2).unwrap();
        let p = Point3::new(0.3, -0.2, 2.5);
        let px = cam.project(&p).unwrap();
        let back = cam.unproject(px.x, px.y, p.z);
        assert!((back - p).norm() < 1e-12);
        assert!(cam.project(&Point3::new(0.0, 0.0, -1.0)).is_none());
        assert!(cam.contains(&px));
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(Pinhole::from_vertical_fov(0, 10, 1.0).is_err());
        assert!(Pinhole::from_vertical_fov(10, 10, 0.0).is_err());
        assert!(Pinhole::from_vertical_fov(10, 10, 4.0).is_err());
    }
}
