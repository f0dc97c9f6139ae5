//! Which object types the model may navigate to and interact with.
//!
//! As the reference (`RocAgent.get_navigate_location`, `get_legal_navigations`,
//! `get_legal_interactions`):
//! - an object (any type but `Floor`) is *navigable in view* when it is visible and large enough
//!   for its 2-D distance `d` from the agent to its box centre: with `s` its largest box face and
//!   `v` its box volume, `(s>0.5 && d<10) || (s>0.15 && d<4) || (s>0.08 && d<2.5) || (v>0.005 &&
//!   d<2) || (v>0.001 && d<1.5) || d<1`, a test that applies when `v<0.01` or `v/d<=0.02`; any
//!   other visible object is navigable;
//! - the *navigable set* starts as the case's `navigable_objects` and grows, in order of
//!   discovery, with every type navigable in a view the harness looked at (after init, navigate,
//!   each observe view, move forward, and every interaction);
//! - the *interactable set* is recomputed after each of those actions from the final view: the
//!   types with an object that is navigable in view, or visible and inside the container last
//!   navigated to;
//! - `navigate to X` needs X in the navigable set; an interaction needs X in the interactable
//!   set as it was after the previous action.
//!
//! Types are listed in the reference's order: objects sorted by `v/d` ascending (stable).

use crate::thor::{Metadata, ObjectMeta, Vec3};

/// The size/distance rule: whether an object with largest face `s` (m^2) and volume `v` (m^3)
/// at distance `d` (m) is large enough to navigate to.
pub fn size_rule(s: f64, v: f64, d: f64) -> bool {
    (s > 0.5 && d < 10.0)
        || (s > 0.15 && d < 4.0)
        || (s > 0.08 && d < 2.5)
        || (v > 0.005 && d < 2.0)
        || (v > 0.001 && d < 1.5)
        || d < 1.0
}

/// The navigability of one object in the current view.
#[derive(Clone, Debug, PartialEq)]
pub struct NavInfo {
    /// The object.
    pub object_id: String,
    /// Its type.
    pub object_type: String,
    /// Whether it is visible.
    pub visible: bool,
    /// Box volume, m^3.
    pub volume: f64,
    /// Largest box face, m^2.
    pub face: f64,
    /// 2-D distance from the agent to the box centre, m.
    pub distance: f64,
    /// `volume / distance` (0 when the distance is 0).
    pub rate: f64,
    /// Whether it is navigable in this view.
    pub navigable: bool,
}

/// Whether a visible object with these measures is navigable (the rule with its guard).
pub fn navigable_measures(visible: bool, v: f64, s: f64, d: f64) -> bool {
    if !visible {
        return false;
    }
    let rate = if d != 0.0 { v / d } else { 0.0 };
    if v < 0.01 || rate <= 0.02 {
        size_rule(s, v, d)
    } else {
        true
    }
}

/// Navigability of one object seen from `agent`.
pub fn nav_info(o: &ObjectMeta, agent: &Vec3) -> NavInfo {
    let b = &o.axis_aligned_bounding_box;
    let v = b.volume();
    let s = b.largest_face_area();
    let d = agent.distance_xz(&b.center);
    let rate = if d != 0.0 { v / d } else { 0.0 };
    NavInfo {
        object_id: o.object_id.clone(),
        object_type: o.object_type.clone(),
        visible: o.visible,
        volume: v,
        face: s,
        distance: d,
        rate,
        navigable: navigable_measures(o.visible, v, s, d),
    }
}

/// All objects but the floor, with their navigability, sorted by `rate` ascending (stable).
pub fn navigate_locations(meta: &Metadata) -> Vec<NavInfo> {
    let agent = meta.agent.position;
    let mut v: Vec<NavInfo> = meta
        .objects
        .iter()
        .filter(|o| o.object_type != "Floor")
        .map(|o| nav_info(o, &agent))
        .collect();
    v.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    v
}

/// The navigable and interactable sets of an episode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Legality {
    navigable: Vec<String>,
    interactable: Vec<String>,
    container: Option<Vec<String>>,
}

fn push_unique(v: &mut Vec<String>, t: &str) {
    if !v.iter().any(|x| x == t) {
        v.push(t.to_string());
    }
}

impl Legality {
    /// Starts from the case's navigable types.
    pub fn new<S: AsRef<str>>(navigable_objects: &[S]) -> Self {
        let mut l = Legality::default();
        for t in navigable_objects {
            push_unique(&mut l.navigable, t.as_ref());
        }
        l
    }

    /// The navigable set, in order of discovery.
    pub fn navigable(&self) -> &[String] {
        &self.navigable
    }

    /// The interactable set computed after the last action.
    pub fn interactable(&self) -> &[String] {
        &self.interactable
    }

    /// Whether `navigate to t` is allowed.
    pub fn can_navigate(&self, t: &str) -> bool {
        self.navigable.iter().any(|x| x == t)
    }

    /// Whether interacting with type `t` is allowed.
    pub fn can_interact(&self, t: &str) -> bool {
        self.interactable.iter().any(|x| x == t)
    }

    /// Adds the types navigable in this view to the navigable set.
    pub fn update_navigable(&mut self, meta: &Metadata) {
        for n in navigate_locations(meta) {
            if n.navigable {
                push_unique(&mut self.navigable, &n.object_type);
            }
        }
    }

    /// Recomputes the interactable set from this view.
    pub fn update_interactable(&mut self, meta: &Metadata) {
        let mut out = Vec::new();
        for n in navigate_locations(meta) {
            let in_container = n.visible
                && self
                    .container
                    .as_ref()
                    .is_some_and(|c| c.contains(&n.object_type));
            if in_container || n.navigable {
                push_unique(&mut out, &n.object_type);
            }
        }
        self.interactable = out;
    }

    /// Both updates, as after most actions.
    pub fn update(&mut self, meta: &Metadata) {
        self.update_navigable(meta);
        self.update_interactable(meta);
    }

    /// Records the container last navigated to, by the types of what it held then.
    pub fn set_container(&mut self, content_types: Vec<String>) {
        self.container = Some(content_types);
    }

    /// The types inside the container last navigated to, if any.
    pub fn container(&self) -> Option<&[String]> {
        self.container.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thor::AxisAlignedBox;

    fn obj(id: &str, t: &str, visible: bool, center: [f64; 3], size: [f64; 3]) -> ObjectMeta {
        let c = Vec3::from(center);
        let h = Vec3::new(size[0] / 2.0, size[1] / 2.0, size[2] / 2.0);
        ObjectMeta {
            object_id: id.into(),
            object_type: t.into(),
            visible,
            axis_aligned_bounding_box: AxisAlignedBox::from_min_max(
                Vec3::new(c.x - h.x, c.y - h.y, c.z - h.z),
                Vec3::new(c.x + h.x, c.y + h.y, c.z + h.z),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn size_rule_thresholds() {
        // Big face: navigable up to 10 m.
        assert!(size_rule(0.6, 0.001, 9.9));
        assert!(!size_rule(0.6, 0.001, 10.0));
        // Medium face: up to 4 m, small face: up to 2.5 m.
        assert!(size_rule(0.2, 0.0, 3.9));
        assert!(!size_rule(0.2, 0.0, 4.1));
        assert!(size_rule(0.09, 0.0, 2.4));
        assert!(!size_rule(0.09, 0.0, 2.6));
        // Volume alone.
        assert!(size_rule(0.01, 0.006, 1.9));
        assert!(!size_rule(0.01, 0.006, 2.1));
        assert!(size_rule(0.01, 0.002, 1.4));
        assert!(!size_rule(0.01, 0.002, 1.6));
        // Anything within 1 m.
        assert!(size_rule(0.0, 0.0, 0.99));
        assert!(!size_rule(0.0, 0.0, 1.0));
    }

    #[test]
    fn navigability_guard() {
        // Invisible: never.
        assert!(!navigable_measures(false, 5.0, 5.0, 1.0));
        // Small (v < 0.01): the size rule. An apple (7 cm cube-ish) at 1.2 m: v=0.000343,
        // s=0.0049 -> only d<1 would do.
        assert!(!navigable_measures(true, 0.000343, 0.0049, 1.2));
        assert!(navigable_measures(true, 0.000343, 0.0049, 0.9));
        // Large and near (v/d > 0.02): always.
        assert!(navigable_measures(true, 1.0, 1.0, 30.0));
        // Large but far (v/d <= 0.02): the size rule decides; a 0.05 m^3 box 3 m away with a 0.1
        // face: rate 0.0167 -> needs d < 2.5 for s > 0.08 -> no.
        assert!(!navigable_measures(true, 0.05, 0.1, 3.0));
        assert!(navigable_measures(true, 0.05, 0.2, 3.0));
        // Distance zero: rate 0, the rule with d = 0 -> yes.
        assert!(navigable_measures(true, 0.5, 0.5, 0.0));
    }

    #[test]
    fn sets_grow_and_interactions_follow_the_view_and_the_container() {
        let mut meta = Metadata::default();
        meta.agent.position = Vec3::new(0.0, 0.9, 0.0);
        meta.objects = vec![
            obj(
                "CounterTop|1",
                "CounterTop",
                true,
                [2.0, 0.9, 0.0],
                [1.0, 0.1, 0.6],
            ),
            obj(
                "Apple|1",
                "Apple",
                true,
                [2.0, 1.0, 0.0],
                [0.07, 0.07, 0.07],
            ),
            obj(
                "Fridge|1",
                "Fridge",
                false,
                [0.0, 0.9, 3.0],
                [0.8, 1.8, 0.8],
            ),
            obj("Egg|1", "Egg", true, [0.0, 0.9, 3.0], [0.05, 0.06, 0.05]),
            obj(
                "Floor|1",
                "Floor",
                true,
                [0.0, 0.0, 0.0],
                [10.0, 0.01, 10.0],
            ),
        ];
        let mut l = Legality::new(&["Fridge", "Fridge", "Cabinet"]);
        assert_eq!(l.navigable(), ["Fridge", "Cabinet"]);
        l.update(&meta);
        assert_eq!(l.navigable(), ["Fridge", "Cabinet", "CounterTop"]);
        assert_eq!(l.interactable(), ["CounterTop"]);
        assert!(
            l.can_navigate("CounterTop") && !l.can_navigate("Apple") && !l.can_navigate("Floor")
        );
        assert!(!l.can_interact("Apple"));
        // The egg is visible and inside the container we navigated to: interactable, not navigable.
        l.set_container(vec!["Egg".into()]);
        l.update(&meta);
        assert_eq!(l.interactable(), ["Egg", "CounterTop"]);
        assert!(!l.can_navigate("Egg"));
        // Walk up to the apple: within 1 m it becomes navigable.
        meta.agent.position = Vec3::new(1.3, 0.9, 0.0);
        l.update(&meta);
        assert!(l.can_navigate("Apple"));
        assert!(l.can_interact("Apple"));
    }
}
