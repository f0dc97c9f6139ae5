//! AI2-THOR pose conventions, converted to typed poses in SI units.
//!
//! AI2-THOR (Unity) world: y up, left-handed, metres. The agent's yaw is `rotation.y` in
//! degrees (0 faces +z, 90 faces +x); the camera horizon is the pitch in degrees, positive
//! looking down. Unity's camera looks along +z with x right and y up.
//!
//! The camera pose returned here maps AI2-THOR camera coordinates (x right, y up, z forward)
//! to the world; [`optical_from_thor_camera`] flips y to reach the optical frame
//! (x right, y down, z forward) used by [`crate::Pinhole`].

use nalgebra::{Matrix3, Point3, Rotation3, UnitQuaternion, Vector3};

use crate::frames::{Camera, Transform, World};

/// Camera height above the agent's position when standing, in metres (AI2-THOR default agent).
pub const STANDING_CAMERA_OFFSET: f64 = 0.675;
/// Camera height above the agent's position when crouching, in metres.
pub const CROUCHING_CAMERA_OFFSET: f64 = 0.0;

/// The forward unit vector for a yaw (radians, about +y, 0 facing +z) and a pitch (radians,
/// positive looking down).
pub fn forward(yaw: f64, pitch: f64) -> Vector3<f64> {
    Vector3::new(
        yaw.sin() * pitch.cos(),
        -pitch.sin(),
        yaw.cos() * pitch.cos(),
    )
}

/// The rotation whose columns are the camera's right, up and forward axes in the world.
pub fn camera_rotation(yaw: f64, pitch: f64) -> UnitQuaternion<f64> {
    let right = Vector3::new(yaw.cos(), 0.0, -yaw.sin());
    let up = Vector3::new(
        yaw.sin() * pitch.sin(),
        pitch.cos(),
        yaw.cos() * pitch.sin(),
    );
    let fwd = forward(yaw, pitch);
    let m = Matrix3::from_columns(&[right, up, fwd]);
    UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(m))
}

/// The camera pose in the world for a camera at `position` with the given yaw and pitch
/// (radians).
pub fn camera_pose(position: Point3<f64>, yaw: f64, pitch: f64) -> Transform<World, Camera> {
    Transform::from_parts(position.coords, camera_rotation(yaw, pitch))
}

/// Converts a point from AI2-THOR camera coordinates (y up) to the optical frame (y down).
pub fn optical_from_thor_camera(p: &Point3<f64>) -> Point3<f64> {
    Point3::new(p.x, -p.y, p.z)
}

/// Yaw in degrees (AI2-THOR) to radians, wrapped to [0, 2pi).
pub fn yaw_from_degrees(deg: f64) -> f64 {
    deg.rem_euclid(360.0).to_radians()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::FRAC_PI_2;

    #[test]
    fn yaw_ninety_faces_plus_x_and_right_is_minus_z() {
        let pose = camera_pose(Point3::origin(), FRAC_PI_2, 0.0);
        let f = pose.transform_vector(&Vector3::z());
        let r = pose.transform_vector(&Vector3::x());
        assert!((f - Vector3::x()).norm() < 1e-12);
        assert!((r + Vector3::z()).norm() < 1e-12);
    }

    #[test]
    fn positive_horizon_looks_down() {
        let f = forward(0.0, 30f64.to_radians());
        assert!(f.y < 0.0 && f.z > 0.0);
        let pose = camera_pose(Point3::new(0.0, 1.5, 0.0), 0.0, 30f64.to_radians());
        let up = pose.transform_vector(&Vector3::y());
        assert!(
            up.y > 0.0 && up.z > 0.0,
            "up tilts forward when looking down: {up:?}"
        );
    }

    #[test]
    fn rotation_is_proper() {
        let q = camera_rotation(1.1, -0.4);
        let m = q.to_rotation_matrix();
        assert!((m.matrix().determinant() - 1.0).abs() < 1e-12);
    }
}
