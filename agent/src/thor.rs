//! AI2-THOR's metadata schema (ai2thor 5.0) as Rust types.
//!
//! These are the shapes that `event.metadata` has in AI2-THOR's Python controller. thor-lite
//! produces them, the bridge carries them as JSON unchanged, and the executor and judge read
//! them. Field names serialise exactly as AI2-THOR spells them (`objectId`,
//! `receptacleObjectIds`...), so code written for AI2-THOR reads our metadata unchanged.
//! Every field has a default, so metadata from a real AI2-THOR build (which has more keys, and
//! sometimes fewer) deserialises too. Angles are degrees here, as in AI2-THOR; convert at use.

use serde::{Deserialize, Serialize};

/// A 3-vector as AI2-THOR writes it: `{"x": .., "y": .., "z": ..}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vec3 {
    /// x (metres, or degrees for rotations).
    #[serde(default)]
    pub x: f64,
    /// y (up).
    #[serde(default)]
    pub y: f64,
    /// z.
    #[serde(default)]
    pub z: f64,
}

impl Vec3 {
    /// A vector from components.
    pub const fn new(x: f64, y: f64, z: f64) -> Self {
        Self { x, y, z }
    }

    /// Horizontal (x, z) distance to another point, in metres.
    pub fn distance_xz(&self, other: &Vec3) -> f64 {
        ((self.x - other.x).powi(2) + (self.z - other.z).powi(2)).sqrt()
    }

    /// Euclidean distance to another point, in metres.
    pub fn distance(&self, other: &Vec3) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2) + (self.z - other.z).powi(2))
            .sqrt()
    }

    /// As an array.
    pub fn to_array(&self) -> [f64; 3] {
        [self.x, self.y, self.z]
    }
}

impl From<[f64; 3]> for Vec3 {
    fn from(a: [f64; 3]) -> Self {
        Self::new(a[0], a[1], a[2])
    }
}

/// An axis-aligned box: eight corners, centre and size.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AxisAlignedBox {
    /// The eight corner points.
    pub corner_points: Vec<[f64; 3]>,
    /// The centre.
    pub center: Vec3,
    /// The extent along x, y, z.
    pub size: Vec3,
}

impl AxisAlignedBox {
    /// Builds a box from its minimum and maximum corners, with AI2-THOR's corner order.
    pub fn from_min_max(min: Vec3, max: Vec3) -> Self {
        let corner_points = vec![
            [max.x, max.y, max.z],
            [max.x, max.y, min.z],
            [max.x, min.y, max.z],
            [max.x, min.y, min.z],
            [min.x, max.y, max.z],
            [min.x, max.y, min.z],
            [min.x, min.y, max.z],
            [min.x, min.y, min.z],
        ];
        Self {
            corner_points,
            center: Vec3::new(
                (min.x + max.x) / 2.0,
                (min.y + max.y) / 2.0,
                (min.z + max.z) / 2.0,
            ),
            size: Vec3::new(max.x - min.x, max.y - min.y, max.z - min.z),
        }
    }

    /// The minimum corner.
    pub fn min(&self) -> Vec3 {
        Vec3::new(
            self.center.x - self.size.x / 2.0,
            self.center.y - self.size.y / 2.0,
            self.center.z - self.size.z / 2.0,
        )
    }

    /// The maximum corner.
    pub fn max(&self) -> Vec3 {
        Vec3::new(
            self.center.x + self.size.x / 2.0,
            self.center.y + self.size.y / 2.0,
            self.center.z + self.size.z / 2.0,
        )
    }

    /// The volume in cubic metres.
    pub fn volume(&self) -> f64 {
        self.size.x * self.size.y * self.size.z
    }

    /// The area of the largest face in square metres.
    pub fn largest_face_area(&self) -> f64 {
        let s = &self.size;
        (s.x * s.y).max(s.x * s.z).max(s.y * s.z)
    }
}

/// An oriented box: eight corner points.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OrientedBox {
    /// The eight corner points.
    pub corner_points: Vec<[f64; 3]>,
}

/// One object of the scene, as AI2-THOR reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: String,
    pub position: Vec3,
    pub rotation: Vec3,
    pub visible: bool,
    pub is_interactable: bool,
    pub obstructed: bool,
    pub receptacle: bool,
    pub toggleable: bool,
    pub is_toggled: bool,
    pub breakable: bool,
    pub is_broken: bool,
    pub can_fill_with_liquid: bool,
    pub is_filled_with_liquid: bool,
    pub fill_liquid: Option<String>,
    pub dirtyable: bool,
    pub is_dirty: bool,
    pub can_be_used_up: bool,
    pub is_used_up: bool,
    pub cookable: bool,
    pub is_cooked: bool,
    pub temperature: String,
    pub is_heat_source: bool,
    pub is_cold_source: bool,
    pub sliceable: bool,
    pub is_sliced: bool,
    pub openable: bool,
    pub is_open: bool,
    pub openness: f64,
    pub pickupable: bool,
    pub is_picked_up: bool,
    pub moveable: bool,
    pub mass: f64,
    pub salient_materials: Option<Vec<String>>,
    pub receptacle_object_ids: Option<Vec<String>>,
    pub distance: f64,
    pub object_type: String,
    pub object_id: String,
    pub asset_id: String,
    pub parent_receptacles: Option<Vec<String>>,
    pub controlled_objects: Option<Vec<String>>,
    pub is_moving: bool,
    pub axis_aligned_bounding_box: AxisAlignedBox,
    pub object_oriented_bounding_box: Option<OrientedBox>,
}

/// The agent's pose and posture.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentMeta {
    pub name: String,
    pub position: Vec3,
    /// Degrees; `y` is the yaw (0 faces +z, 90 faces +x).
    pub rotation: Vec3,
    /// Pitch in degrees, positive looking down.
    pub camera_horizon: f64,
    pub is_standing: bool,
    pub in_high_friction_area: bool,
}

/// An entry of `inventoryObjects`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InventoryObject {
    pub object_id: String,
    pub object_type: String,
}

/// The scene bounds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SceneBounds {
    pub corner_points: Vec<[f64; 3]>,
    pub center: Vec3,
    pub size: Vec3,
}

/// `event.metadata`: the state after an action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metadata {
    pub objects: Vec<ObjectMeta>,
    pub agent: AgentMeta,
    pub held_object_pose: Option<serde_json::Value>,
    pub inventory_objects: Vec<InventoryObject>,
    pub scene_name: String,
    pub last_action: String,
    pub last_action_success: bool,
    pub error_message: String,
    pub error_code: String,
    pub action_return: serde_json::Value,
    pub screen_width: u32,
    pub screen_height: u32,
    pub fov: f64,
    pub camera_position: Vec3,
    pub scene_bounds: SceneBounds,
    pub collided: bool,
    pub collided_objects: Vec<String>,
    pub is_scene_at_rest: bool,
    pub depth_format: String,
}

impl Metadata {
    /// The object with this id, if present.
    pub fn object(&self, object_id: &str) -> Option<&ObjectMeta> {
        self.objects.iter().find(|o| o.object_id == object_id)
    }

    /// The objects of this type, in metadata order.
    pub fn objects_of_type<'a>(
        &'a self,
        object_type: &'a str,
    ) -> impl Iterator<Item = &'a ObjectMeta> + 'a {
        self.objects
            .iter()
            .filter(move |o| o.object_type == object_type)
    }

    /// The id of the held object, if any.
    pub fn held_object_id(&self) -> Option<&str> {
        self.inventory_objects.first().map(|o| o.object_id.as_str())
    }
}

/// AI2-THOR's objectId coordinate format: sign and two integer digits, two decimals
/// (`+01.15`, `-00.47`); a value that rounds to zero prints without sign (`00.00`).
pub fn format_id_coordinate(v: f64) -> String {
    let rounded = (v * 100.0).round() / 100.0;
    if rounded == 0.0 {
        return "00.00".to_string();
    }
    let sign = if rounded < 0.0 { '-' } else { '+' };
    format!("{sign}{:05.2}", rounded.abs())
}

/// Builds an objectId `Type|+x|+y|+z` from a type and a position.
pub fn make_object_id(object_type: &str, p: &Vec3) -> String {
    format!(
        "{object_type}|{}|{}|{}",
        format_id_coordinate(p.x),
        format_id_coordinate(p.y),
        format_id_coordinate(p.z)
    )
}

/// The object type encoded in an objectId (`Sink|..|SinkBasin` is a `SinkBasin`).
pub fn object_type_of_id(object_id: &str) -> &str {
    let mut parts = object_id.split('|');
    let first = parts.next().unwrap_or("");
    // Parts carry their own type as a fifth field.
    parts.nth(3).unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_coordinates_match_ai2thor() {
        assert_eq!(format_id_coordinate(1.149), "+01.15");
        assert_eq!(format_id_coordinate(-0.47), "-00.47");
        assert_eq!(format_id_coordinate(0.001), "00.00");
        assert_eq!(format_id_coordinate(-0.004), "00.00");
        assert_eq!(format_id_coordinate(-12.5), "-12.50");
        assert_eq!(
            make_object_id("Apple", &Vec3::new(-0.4652, 1.1512, 0.4757)),
            "Apple|-00.47|+01.15|+00.48"
        );
        assert_eq!(
            object_type_of_id("Sink|-01.90|+00.97|-01.50|SinkBasin"),
            "SinkBasin"
        );
        assert_eq!(object_type_of_id("Apple|-00.47|+01.15|+00.48"), "Apple");
    }

    #[test]
    fn metadata_reads_ai2thor_json_with_unknown_and_missing_keys() {
        let json = r#"{"objects":[{"objectId":"Apple|1|2|3","objectType":"Apple","visible":true,
            "someNewKey":42,"axisAlignedBoundingBox":{"center":{"x":1,"y":2,"z":3},"size":{"x":1,"y":1,"z":1}}}],
            "agent":{"position":{"x":1.0,"y":0.9,"z":2.0},"rotation":{"x":0,"y":90,"z":0},"cameraHorizon":30},
            "lastActionSuccess":false,"errorMessage":"nope","futureKey":[1,2]}"#;
        let m: Metadata = serde_json::from_str(json).unwrap();
        assert_eq!(m.objects[0].object_type, "Apple");
        assert!(m.objects[0].visible);
        assert_eq!(m.agent.rotation.y, 90.0);
        assert_eq!(m.error_message, "nope");
        assert!((m.objects[0].axis_aligned_bounding_box.volume() - 1.0).abs() < 1e-12);
        // And it writes AI2-THOR's key names.
        let back = serde_json::to_value(&m).unwrap();
        assert!(back["objects"][0].get("receptacleObjectIds").is_some());
        assert!(back.get("lastActionSuccess").is_some());
        assert!(back["agent"].get("cameraHorizon").is_some());
    }

    #[test]
    fn box_helpers() {
        let b = AxisAlignedBox::from_min_max(Vec3::new(0.0, 0.0, 0.0), Vec3::new(2.0, 1.0, 0.5));
        assert_eq!(b.min(), Vec3::new(0.0, 0.0, 0.0));
        assert_eq!(b.max(), Vec3::new(2.0, 1.0, 0.5));
        assert!((b.largest_face_area() - 2.0).abs() < 1e-12);
        assert_eq!(b.corner_points.len(), 8);
    }
}
