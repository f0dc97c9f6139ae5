//! Coordinate conventions: from the world's frames to the recording's frame.
//!
//! Rerun draws right-handed frames only. AI2-THOR's world (Unity) is y up and LEFT-handed,
//! and so is its camera frame (x right, y up, z forward). The recording therefore stores
//! simulator worlds in a right-handed z-up frame made by swapping Unity's y and z:
//!
//! ```text
//! recording (x, y, z) = Unity (x, z, y)     x right, y = Unity forward (+z), z up
//! ```
//!
//! The swap is a reflection, so it turns the left-handed frame into a right-handed one
//! (`ViewCoordinates::RFU` on `world`), keeps lengths, and shows a top-down view of the
//! recording exactly as AI2-THOR's top-down maps look (x right, Unity z up the page).
//!
//! Cameras are logged with their optical frame (x right, y down, z forward; `Pinhole`'s
//! `camera_xyz = RDF`), so the rotation logged for an AI2-THOR camera is
//! `S * R_unity * F`, where `S` is the swap above, `R_unity` the camera's rotation in Unity and
//! `F = diag(1, -1, 1)` turns the optical frame into AI2-THOR's camera frame. Both `S` and `F`
//! are reflections, so the product is a proper rotation and images line up with the 3-D boxes.
//!
//! Robot worlds ([`WorldConvention::RightHandedZUp`]) are already right-handed and z up (REP
//! 103), and their cameras report optical frames: nothing is converted.

use ember_calibration::Pinhole;
use ember_calibration::frames::{Camera, Transform, World};
use nalgebra::{Matrix3, Point3, Rotation3, UnitQuaternion, Vector3};

/// How the world reports positions and camera poses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorldConvention {
    /// AI2-THOR / Unity: y up, left-handed; cameras x right, y up, z forward.
    UnityYUp,
    /// A robot map: z up, right-handed; cameras in the optical frame (x right, y down, z
    /// forward).
    RightHandedZUp,
}

/// A rigid pose in the recording's frame, ready to log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecPose {
    /// Translation, metres.
    pub translation: [f32; 3],
    /// Rotation as a unit quaternion (x, y, z, w).
    pub quaternion: [f32; 4],
}

impl RecPose {
    fn from_parts(t: Vector3<f64>, r: &Matrix3<f64>) -> Self {
        let q = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(*r));
        Self {
            translation: [t.x as f32, t.y as f32, t.z as f32],
            quaternion: [q.i as f32, q.j as f32, q.k as f32, q.w as f32],
        }
    }
}

/// The Unity-to-recording swap of y and z.
fn swap_yz() -> Matrix3<f64> {
    Matrix3::new(1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0)
}

/// AI2-THOR camera frame (y up) from optical frame (y down).
fn thor_from_optical() -> Matrix3<f64> {
    Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
}

impl WorldConvention {
    /// A world point, in metres, in the recording's frame.
    pub fn point(&self, p: [f64; 3]) -> [f32; 3] {
        match self {
            WorldConvention::UnityYUp => [p[0] as f32, p[2] as f32, p[1] as f32],
            WorldConvention::RightHandedZUp => [p[0] as f32, p[1] as f32, p[2] as f32],
        }
    }

    /// An axis-aligned box size (x, y, z extents) in the recording's frame.
    pub fn size(&self, s: [f64; 3]) -> [f32; 3] {
        self.point(s).map(f32::abs)
    }

    /// The camera's optical frame in the recording: the pose to log on the camera entity, whose
    /// `Pinhole` then uses `camera_xyz = RDF`.
    pub fn camera_pose(&self, world_from_camera: &Transform<World, Camera>) -> RecPose {
        let r = world_from_camera
            .rotation()
            .to_rotation_matrix()
            .into_inner();
        let t = world_from_camera.translation();
        match self {
            WorldConvention::UnityYUp => {
                let s = swap_yz();
                RecPose::from_parts(s * t, &(s * r * thor_from_optical()))
            }
            WorldConvention::RightHandedZUp => RecPose::from_parts(t, &r),
        }
    }

    /// The mobile base's pose in the recording (base frame: x forward, y left, z up), from its
    /// position in the world and its heading about the world's up axis (radians; for Unity, 0
    /// faces +z and 90 degrees faces +x).
    pub fn base_pose(&self, position: [f64; 3], yaw: f64) -> RecPose {
        let (s, c) = yaw.sin_cos();
        let (forward, left) = match self {
            // Unity forward (sin yaw, 0, cos yaw) becomes (sin yaw, cos yaw, 0).
            WorldConvention::UnityYUp => (Vector3::new(s, c, 0.0), Vector3::new(-c, s, 0.0)),
            WorldConvention::RightHandedZUp => (Vector3::new(c, s, 0.0), Vector3::new(-s, c, 0.0)),
        };
        let r = Matrix3::from_columns(&[forward, left, Vector3::z()]);
        let p = self.point(position);
        RecPose::from_parts(Vector3::new(p[0] as f64, p[1] as f64, p[2] as f64), &r)
    }

    /// Projects a world point into a camera's image: pixel (u, v), or `None` when the point is
    /// behind the camera or outside the image.
    pub fn project(
        &self,
        world_from_camera: &Transform<World, Camera>,
        intrinsics: &Pinhole,
        p: [f64; 3],
    ) -> Option<[f32; 2]> {
        let cam = world_from_camera
            .isometry()
            .inverse_transform_point(&Point3::new(p[0], p[1], p[2]));
        let optical = match self {
            WorldConvention::UnityYUp => ember_calibration::thor::optical_from_thor_camera(&cam),
            WorldConvention::RightHandedZUp => cam,
        };
        let px = intrinsics.project(&optical)?;
        intrinsics
            .contains(&px)
            .then_some([px.x as f32, px.y as f32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_calibration::thor::camera_pose;
    use std::f64::consts::FRAC_PI_2;

    fn rotate(q: [f32; 4], v: Vector3<f64>) -> Vector3<f64> {
        let q = UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(
            q[3] as f64,
            q[0] as f64,
            q[1] as f64,
            q[2] as f64,
        ));
        q * v
    }

    #[test]
    fn unity_points_swap_y_and_z() {
        let c = WorldConvention::UnityYUp;
        assert_eq!(c.point([1.0, 2.0, 3.0]), [1.0, 3.0, 2.0]);
        assert_eq!(c.size([0.5, 1.5, 2.5]), [0.5, 2.5, 1.5]);
        assert_eq!(
            WorldConvention::RightHandedZUp.point([1.0, 2.0, 3.0]),
            [1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn thor_camera_looks_where_it_should_in_the_recording() {
        // Camera at Unity (1, 1.5, 2), facing +x (yaw 90 deg), looking 30 deg down.
        let pitch = 30f64.to_radians();
        let pose = camera_pose(Point3::new(1.0, 1.5, 2.0), FRAC_PI_2, pitch);
        let rec = WorldConvention::UnityYUp.camera_pose(&pose);
        assert_eq!(rec.translation, [1.0, 2.0, 1.5]);
        // Optical z (forward) points along recording +x and down (-z).
        let fwd = rotate(rec.quaternion, Vector3::z());
        assert!(
            (fwd - Vector3::new(pitch.cos(), 0.0, -pitch.sin())).norm() < 1e-5,
            "{fwd:?}"
        );
        // Optical y (down in the image) points mostly down in the recording.
        let down = rotate(rec.quaternion, Vector3::y());
        assert!(down.z < -0.8, "{down:?}");
        // Optical x (right in the image): facing +x in Unity, right is Unity -z = recording -y.
        let right = rotate(rec.quaternion, Vector3::x());
        assert!(
            (right - Vector3::new(0.0, -1.0, 0.0)).norm() < 1e-5,
            "{right:?}"
        );
    }

    #[test]
    fn projection_agrees_with_the_logged_pose() {
        // A point in front of and below the camera projects into the lower half of the image,
        // and the same point seen through the recording's pose and an RDF pinhole lands on the
        // same pixel.
        let pitch = 10f64.to_radians();
        let pose = camera_pose(Point3::new(0.0, 1.5, 0.0), 0.3, pitch);
        let cam = Pinhole::from_vertical_fov(800, 450, FRAC_PI_2).unwrap();
        let p = [0.5, 0.8, 2.0];
        let c = WorldConvention::UnityYUp;
        let uv = c.project(&pose, &cam, p).expect("visible");
        assert!(uv[1] > 225.0, "below the horizon: {uv:?}");
        let rec = c.camera_pose(&pose);
        let q = UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(
            rec.quaternion[3] as f64,
            rec.quaternion[0] as f64,
            rec.quaternion[1] as f64,
            rec.quaternion[2] as f64,
        ));
        let t = Vector3::new(
            rec.translation[0] as f64,
            rec.translation[1] as f64,
            rec.translation[2] as f64,
        );
        let pr = c.point(p);
        let local = q.inverse() * (Vector3::new(pr[0] as f64, pr[1] as f64, pr[2] as f64) - t);
        let px = cam.project(&Point3::from(local)).unwrap();
        assert!((px.x as f32 - uv[0]).abs() < 0.05 && (px.y as f32 - uv[1]).abs() < 0.05);
        // Behind the camera: nothing.
        assert!(c.project(&pose, &cam, [0.0, 1.5, -3.0]).is_none());
    }

    #[test]
    fn base_pose_faces_its_heading() {
        let c = WorldConvention::UnityYUp;
        let pose = c.base_pose([0.0, 0.9, 0.0], FRAC_PI_2);
        let fwd = rotate(pose.quaternion, Vector3::x());
        assert!((fwd - Vector3::x()).norm() < 1e-5, "{fwd:?}");
        let up = rotate(pose.quaternion, Vector3::z());
        assert!((up - Vector3::z()).norm() < 1e-5);
        let pose = c.base_pose([0.0, 0.9, 0.0], 0.0);
        let fwd = rotate(pose.quaternion, Vector3::x());
        assert!(
            (fwd - Vector3::y()).norm() < 1e-5,
            "yaw 0 faces Unity +z: {fwd:?}"
        );
    }
}
