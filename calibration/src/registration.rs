//! Least-squares alignment of corresponding point sets.
//!
//! [`rigid`] finds the rotation and translation minimising the summed squared distance
//! between `R * a_i + t` and `b_i` (Kabsch); [`similarity`] also estimates a uniform scale
//! (Umeyama, 1991). Both reject degenerate inputs instead of returning an arbitrary answer.

use nalgebra::{Matrix3, Point3, Rotation3, UnitQuaternion, Vector3};

use crate::CalibrationError;

/// A similarity transform `b = scale * R * a + t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    /// The rotation.
    pub rotation: UnitQuaternion<f64>,
    /// The translation.
    pub translation: Vector3<f64>,
    /// The uniform scale (1 for [`rigid`]).
    pub scale: f64,
    /// Root-mean-square residual over the point pairs, in the target's units.
    pub rms_error: f64,
}

impl Similarity {
    /// Applies the transform to a point.
    pub fn apply(&self, p: &Point3<f64>) -> Point3<f64> {
        Point3::from(self.scale * (self.rotation * p.coords) + self.translation)
    }
}

/// Rigid alignment (rotation + translation) of `source` onto `target`.
pub fn rigid(
    source: &[Point3<f64>],
    target: &[Point3<f64>],
) -> Result<Similarity, CalibrationError> {
    estimate(source, target, false)
}

/// Similarity alignment (rotation + translation + uniform scale) of `source` onto `target`.
pub fn similarity(
    source: &[Point3<f64>],
    target: &[Point3<f64>],
) -> Result<Similarity, CalibrationError> {
    estimate(source, target, true)
}

fn estimate(
    source: &[Point3<f64>],
    target: &[Point3<f64>],
    with_scale: bool,
) -> Result<Similarity, CalibrationError> {
    if source.len() != target.len() {
        return Err(CalibrationError::LengthMismatch(source.len(), target.len()));
    }
    let n = source.len();
    if n < 3 {
        return Err(CalibrationError::TooFewPoints { needed: 3, got: n });
    }
    let inv_n = 1.0 / n as f64;
    let mean_a = source.iter().fold(Vector3::zeros(), |s, p| s + p.coords) * inv_n;
    let mean_b = target.iter().fold(Vector3::zeros(), |s, p| s + p.coords) * inv_n;
    let mut cov = Matrix3::zeros();
    let mut var_a = 0.0;
    for (a, b) in source.iter().zip(target) {
        let da = a.coords - mean_a;
        let db = b.coords - mean_b;
        cov += db * da.transpose();
        var_a += da.norm_squared();
    }
    cov *= inv_n;
    var_a *= inv_n;
    if var_a < 1e-18 {
        return Err(CalibrationError::Degenerate("all source points coincide"));
    }
    let svd = cov.svd(true, true);
    let (u, v_t) = match (svd.u, svd.v_t) {
        (Some(u), Some(v_t)) => (u, v_t),
        _ => return Err(CalibrationError::Degenerate("SVD did not converge")),
    };
    let mut sv = svd.singular_values;
    // Sort-independent rank check: a rotation is unique only if the cross-covariance has
    // rank >= 2.
    let mut sorted = [sv[0], sv[1], sv[2]];
    sorted.sort_by(|a, b| b.total_cmp(a));
    if sorted[1] <= 1e-12 * sorted[0].max(1e-300) {
        return Err(CalibrationError::Degenerate("points are collinear"));
    }
    let mut s = Matrix3::identity();
    if (u * v_t).determinant() < 0.0 {
        // Flip the axis of the smallest singular value to avoid a reflection.
        let (idx, _) = sv
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .expect("three singular values");
        s[(idx, idx)] = -1.0;
        sv[idx] = -sv[idx];
    }
    let r = u * s * v_t;
    let scale = if with_scale {
        (sv[0] * s[(0, 0)].abs() + sv[1] * s[(1, 1)].abs() + sv[2] * s[(2, 2)].abs()) / var_a
    } else {
        1.0
    };
    let rotation = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(r));
    let translation = mean_b - scale * (rotation * mean_a);
    let mut result = Similarity {
        rotation,
        translation,
        scale,
        rms_error: 0.0,
    };
    let sq: f64 = source
        .iter()
        .zip(target)
        .map(|(a, b)| (result.apply(a) - b).norm_squared())
        .sum();
    result.rms_error = (sq * inv_n).sqrt();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_points(rng: &mut ChaCha8Rng, n: usize) -> Vec<Point3<f64>> {
        (0..n)
            .map(|_| {
                Point3::new(
                    rng.random_range(-1.0..1.0),
                    rng.random_range(-1.0..1.0),
                    rng.random_range(-1.0..1.0),
                )
            })
            .collect()
    }

    #[test]
    fn recovers_a_known_rigid_transform() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let a = random_points(&mut rng, 20);
        let rot = UnitQuaternion::from_euler_angles(0.3, -1.2, 2.0);
        let t = Vector3::new(0.5, -0.25, 1.5);
        let b: Vec<_> = a.iter().map(|p| Point3::from(rot * p.coords + t)).collect();
        let est = rigid(&a, &b).unwrap();
        assert!(est.rotation.angle_to(&rot) < 1e-9);
        assert!((est.translation - t).norm() < 1e-9);
        assert!(est.rms_error < 1e-9);
    }

    #[test]
    fn recovers_scale_with_noise() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let a = random_points(&mut rng, 200);
        let rot = UnitQuaternion::from_euler_angles(-0.7, 0.2, 0.9);
        let t = Vector3::new(-1.0, 2.0, 0.1);
        let b: Vec<_> = a
            .iter()
            .map(|p| {
                let noise = Vector3::new(
                    rng.random_range(-1e-3..1e-3),
                    rng.random_range(-1e-3..1e-3),
                    rng.random_range(-1e-3..1e-3),
                );
                Point3::from(2.5 * (rot * p.coords) + t + noise)
            })
            .collect();
        let est = similarity(&a, &b).unwrap();
        assert!((est.scale - 2.5).abs() < 1e-3, "scale {}", est.scale);
        assert!(est.rotation.angle_to(&rot) < 1e-3);
        assert!(est.rms_error < 2e-3);
    }

    #[test]
    fn never_returns_a_reflection() {
        // A mirrored point set: the best proper rotation is still a rotation.
        let a = vec![
            Point3::new(1.0, 0.0, 0.0),
            Point3::new(0.0, 1.0, 0.0),
            Point3::new(0.0, 0.0, 1.0),
            Point3::new(1.0, 1.0, 1.0),
        ];
        let b: Vec<_> = a.iter().map(|p| Point3::new(-p.x, p.y, p.z)).collect();
        let est = rigid(&a, &b).unwrap();
        let det = est.rotation.to_rotation_matrix().matrix().determinant();
        assert!((det - 1.0).abs() < 1e-9);
        assert!(est.rms_error > 0.1);
    }

    #[test]
    fn rejects_bad_inputs() {
        let p = Point3::new(0.0, 0.0, 0.0);
        assert_eq!(
            rigid(&[p, p], &[p, p]).unwrap_err(),
            CalibrationError::TooFewPoints { needed: 3, got: 2 }
        );
        assert_eq!(
            rigid(&[p, p, p], &[p, p]).unwrap_err(),
            CalibrationError::LengthMismatch(3, 2)
        );
        assert!(matches!(
            rigid(&[p, p, p], &[p, p, p]),
            Err(CalibrationError::Degenerate(_))
        ));
        let line: Vec<_> = (0..5).map(|i| Point3::new(i as f64, 0.0, 0.0)).collect();
        assert!(matches!(
            rigid(&line, &line),
            Err(CalibrationError::Degenerate(_))
        ));
    }
}
