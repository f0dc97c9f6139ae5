//! Named frames and typed rigid transforms.
//!
//! `Transform<To, From>` maps coordinates expressed in frame `From` into frame `To`
//! (it is the pose of `From` seen from `To`). Composition type-checks:
//! `Transform<A, B> * Transform<B, C> = Transform<A, C>`.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Mul;

use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};

/// A named coordinate frame (a zero-sized marker type).
pub trait Frame: Copy + Clone + fmt::Debug + Send + Sync + 'static {
    /// The frame's name, as it appears in logs and recordings.
    const NAME: &'static str;
}

macro_rules! frame {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name;
        impl Frame for $name {
            const NAME: &'static str = $label;
        }
    };
}

frame!(
    /// The world (simulator scene or map) frame. For AI2-THOR scenes this is Unity's frame:
    /// y up, left-handed, metres.
    World,
    "world"
);
frame!(
    /// The mobile base (agent body) frame.
    Base,
    "base"
);
frame!(
    /// A camera's optical frame. For AI2-THOR cameras: x right, y up, z forward.
    Camera,
    "camera"
);
frame!(
    /// The end-effector (tool) frame of an arm.
    EndEffector,
    "end_effector"
);
frame!(
    /// A task frame in which a model states keypoints (e.g. RLBench's world frame).
    Task,
    "task"
);

/// A rigid transform taking coordinates in `From` to coordinates in `To`.
#[derive(Clone, Copy, PartialEq)]
pub struct Transform<To: Frame, From: Frame> {
    iso: Isometry3<f64>,
    _frames: PhantomData<(To, From)>,
}

impl<To: Frame, From: Frame> fmt::Debug for Transform<To, From> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.iso.translation.vector;
        let (r, p, y) = self.iso.rotation.euler_angles();
        write!(
            f,
            "Transform<{} <- {}>(t=[{:.4}, {:.4}, {:.4}], rpy=[{:.4}, {:.4}, {:.4}])",
            To::NAME,
            From::NAME,
            t.x,
            t.y,
            t.z,
            r,
            p,
            y
        )
    }
}

impl<To: Frame, From: Frame> Transform<To, From> {
    /// Wraps an isometry that maps `From` coordinates into `To`.
    pub fn from_isometry(iso: Isometry3<f64>) -> Self {
        Self {
            iso,
            _frames: PhantomData,
        }
    }

    /// The identity transform.
    pub fn identity() -> Self {
        Self::from_isometry(Isometry3::identity())
    }

    /// A transform from a translation and a rotation.
    pub fn from_parts(translation: Vector3<f64>, rotation: UnitQuaternion<f64>) -> Self {
        Self::from_isometry(Isometry3::from_parts(
            Translation3::from(translation),
            rotation,
        ))
    }

    /// The underlying isometry.
    pub fn isometry(&self) -> &Isometry3<f64> {
        &self.iso
    }

    /// The translation part (the origin of `From` expressed in `To`).
    pub fn translation(&self) -> Vector3<f64> {
        self.iso.translation.vector
    }

    /// The rotation part.
    pub fn rotation(&self) -> UnitQuaternion<f64> {
        self.iso.rotation
    }

    /// The inverse transform.
    pub fn inverse(&self) -> Transform<From, To> {
        Transform::from_isometry(self.iso.inverse())
    }

    /// Maps a point from `From` into `To`.
    pub fn transform_point(&self, p: &Point<From>) -> Point<To> {
        Point::new(self.iso.transform_point(&p.coords))
    }

    /// Maps a direction (rotation only) from `From` into `To`.
    pub fn transform_vector(&self, v: &Vector3<f64>) -> Vector3<f64> {
        self.iso.transform_vector(v)
    }
}

impl<A: Frame, B: Frame, C: Frame> Mul<Transform<B, C>> for Transform<A, B> {
    type Output = Transform<A, C>;
    fn mul(self, rhs: Transform<B, C>) -> Transform<A, C> {
        Transform::from_isometry(self.iso * rhs.iso)
    }
}

/// A point expressed in frame `F`.
#[derive(Clone, Copy, PartialEq)]
pub struct Point<F: Frame> {
    /// The coordinates, in metres.
    pub coords: Point3<f64>,
    _frame: PhantomData<F>,
}

impl<F: Frame> fmt::Debug for Point<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Point<{}>[{:.4}, {:.4}, {:.4}]",
            F::NAME,
            self.coords.x,
            self.coords.y,
            self.coords.z
        )
    }
}

impl<F: Frame> Point<F> {
    /// A point from nalgebra coordinates.
    pub fn new(coords: Point3<f64>) -> Self {
        Self {
            coords,
            _frame: PhantomData,
        }
    }

    /// A point from x, y, z in metres.
    pub fn xyz(x: f64, y: f64, z: f64) -> Self {
        Self::new(Point3::new(x, y, z))
    }

    /// The coordinates as an array.
    pub fn to_array(&self) -> [f64; 3] {
        [self.coords.x, self.coords.y, self.coords.z]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::FRAC_PI_2;

    #[test]
    fn composition_and_inverse_round_trip() {
        let world_from_base: Transform<World, Base> = Transform::from_parts(
            Vector3::new(1.0, 0.0, 2.0),
            UnitQuaternion::from_axis_angle(&Vector3::y_axis(), FRAC_PI_2),
        );
        let base_from_camera: Transform<Base, Camera> =
            Transform::from_parts(Vector3::new(0.0, 0.675, 0.0), UnitQuaternion::identity());
        let world_from_camera = world_from_base * base_from_camera;
        let p_cam = Point::<Camera>::xyz(0.0, 0.0, 1.0);
        let p_world = world_from_camera.transform_point(&p_cam);
        // A quarter turn about +y sends +z to +x.
        assert!((p_world.coords - Point3::new(2.0, 0.675, 2.0)).norm() < 1e-12);
        let back = world_from_camera.inverse().transform_point(&p_world);
        assert!((back.coords - p_cam.coords).norm() < 1e-12);
    }

    #[test]
    fn debug_names_the_frames() {
        let t: Transform<World, Camera> = Transform::identity();
        assert!(format!("{t:?}").contains("world <- camera"));
    }
}
