//! The Embodied-Reasoner data engine: benchmark cases for the *training* scenes, derived from a
//! scene's initial AI2-THOR metadata, in exactly the benchmark's case format.
//!
//! The reference (zwq2018/embodied_reasoner, `data_engine/TaskGenerate.py`) generates tasks per
//! scene for ten sub-types from the objects' parent-receptacle relations and properties; its
//! benchmark files then add `target_objects`, `related_objects` and `navigable_objects`. This
//! module does the same with its own rules, stated here (the differences from the reference are
//! listed at the end).
//!
//! # Where an object is
//! - The *parents* of an object are its `parentReceptacles` that exist in the scene, minus the
//!   floor; of two objects that list each other (AI2-THOR reports some cycles, e.g. a
//!   `SinkBasin` "inside" the `Cup` it holds) the one with the larger box is the parent.
//! - The *immediate parent* is the innermost parent: a parent that another listed parent sits on
//!   is dropped (a `Spatula` in a `Pot` on a `StoveBurner` lists both; the `Pot` is immediate);
//!   a tie goes to the parent whose box centre is nearest in the horizontal plane, then to the
//!   smaller objectId. `parentReceptacles` is sorted by id, so the reference's "last entry" is
//!   not the innermost parent; we compute it.
//! - The *chain* of an object: its immediate parent, that parent's immediate parent, and so on,
//!   up to the first one that cannot be picked up (a `Spoon`: `Bowl`, `CounterTop`). What a piece
//!   of furniture stands on or overlaps is not followed (AI2-THOR lists counters "inside" cups
//!   and fridges "inside" cabinets). An object with an empty chain (on the floor, or no parent)
//!   gets no task.
//! - The *enclosure*: the first closed openable receptacle on the chain (`Fridge`, `Cabinet`,
//!   `Drawer`, `Microwave`, `Safe`, `LaundryHamper`). An object with an enclosure is *enclosed*,
//!   otherwise *exposed*. Objects under a second closed receptacle, or whose enclosure is a
//!   `Toilet` (its lid, not a container), get no task.
//! - The *anchor* (where the agent navigates): the enclosure for an enclosed object, else the
//!   first receptacle on the chain that cannot be picked up (a `CounterTop`, not the `Bowl` on
//!   it). The harness aims at the object itself when the anchor is a non-openable receptacle
//!   holding it (the object is a related object).
//!
//! # Sub-types and key actions
//! With `O` the object, `A` its anchor, `E` its enclosure (= `A`), `R` the receptacle it goes to:
//! - `single_search` (exposed O): navigate to A, end.
//! - `single_search_from_closerep` (enclosed O): navigate to E, open E, end.
//! - `single_pickup` (exposed O): navigate to A, pickup O, end.
//! - `single_pickup_from_closerep` (enclosed O): navigate to E, open E, pickup O, close E, end.
//! - `single_toggle` (an exposed toggleable O other than `Candle`, `LightSwitch`, `StoveBurner`,
//!   `StoveKnob`, as the reference): navigate to A, toggle O, end; the task says "turn on" or
//!   "turn off" from O's start state.
//! - the four transfers: the source part is as the two pickups above (`pickup_and_put*`: exposed
//!   O; `pickup_from_closerep_and_put*`: enclosed O); then for an exposed R (`..._and_put`):
//!   navigate to R, put R, or, when R can be picked up itself (a `Plate` on a `CounterTop`),
//!   navigate to R's anchor, put R; for a closed R (`..._put_in_closerep`): navigate to R, open
//!   R, put R (no close after the put, as the reference and its benchmark); end.
//! - `ordered_pickup_two_object_and_put`: two such transfers in a row, for two objects of
//!   different types, each source exposed or enclosed and each R exposed or closed; unlike the
//!   single transfers, a closed R is closed again after the put (as the reference); end.
//!
//! Every action has reward 1 and `totalreward` is their number. `relatedObject` per action and
//! `baseaction` follow the reference: navigate `[A, O]` for an exposed source, `[E]` for an
//! enclosed one (`[E, O]` in the two search types), `[R]` or `[RA, R]` for the destination;
//! pickup `[O]`; open/close `[E]`/`[R]`; end: every object of the task (empty for `ordered`).
//! `baseaction` is `pickup`/`put` on the pickups and nested puts of the transfers, else empty
//! (the harness ignores it).
//!
//! # Which receptacle R
//! R is a receptacle of the scene whose type accepts O's type in AI2-THOR's placement table
//! (`data/er/receptacles.json`, ALFWorld's `VAL_RECEPTACLE_OBJECTS` united with the pairs the
//! scene dumps show; see [`Compatibility`]) and is one of the destination types the reference
//! uses ([`DESTINATION_TYPES`]). It is not O, not inside O, not of O's type, not of the type of
//! any receptacle on O's chain (the reference drops the parent's type: no "put the apple on the
//! counter" when it is on a counter), not under a closed receptacle, and when it can be picked
//! up itself it must be exposed with an anchor. The agent must navigate somewhere else than
//! where it picked O up (a `Plate` on the counter the object came from is no transfer). One R
//! type is drawn per object with the seed.
//!
//! # The case fields (as the benchmark derives them)
//! - `target_objects`: the navigated objectIds whose type occurs more than once in the scene,
//!   each once, in order (types resolve to these first);
//! - `related_objects`: every objectId in the `relatedObject` lists of the navigate and end
//!   actions that is not itself navigated to, each once, in order (these reproduce the 809
//!   benchmark cases' fields for all ten sub-types but a few hand-edited ones);
//! - `navigable_objects`: the navigated types in order, each once (the benchmark lists the
//!   types its expert trajectory navigated to, decoy searches included; ours has none);
//! - `taskname` = `task_metadata.taskname`: a canonical name from a small template list;
//!   `taskquery`: a paraphrase the model sees, from a second list (see [`templates`]); with
//!   `queries > 1` each task gives that many cases with different paraphrases, sharing the
//!   `instruction_idx` (as the benchmark's three paraphrases per task);
//! - `instruction_idx`: the task's index among the scene's tasks of its type;
//!   `metadatapath`: `taskgenerate/<room type>/<scene>/metadata.json`, as the reference.
//!
//! # Resolvable by type
//! The model (and the oracle) names object *types*; the harness resolves a type to the first
//! objectId of that type in `target_objects`, else the first in the scene (for `navigate to`,
//! the second target once the hand holds something). Every generated case is checked against
//! that rule with the harness's own [`Resolver`]: each key action must resolve to the object the
//! task means, else the candidate is dropped (e.g. picking up the second `Apple` of a scene, or
//! putting on a second `CounterTop` when the first is also a target).
//!
//! # Determinism
//! Candidates are enumerated in metadata order; each (seed, scene, sub-type) seeds its own
//! ChaCha8 generator, which draws the destinations, shuffles the candidates (the first
//! `per_type` are kept) and picks the templates. Same metadata, options and seed: the same cases.
//!
//! # Differences from the reference
//! - The immediate parent, chain, enclosure and anchor above replace the reference's
//!   "last `parentReceptacles` entry" and its "grandparent is the floor" filters; objects on a
//!   `Plate` or in a `Bowl` therefore get tasks (navigate to the counter under them), and
//!   receptacles that do not stand on the floor (a `Microwave` on a counter) can be enclosures.
//! - The reference keeps the first object of each type for most sub-types; we try each object of
//!   a type in order and keep the first whose case passes the resolvability check.
//! - Destinations come from AI2-THOR's placement table (restricted to the reference's destination
//!   types) rather than the reference's hand-written table; both are derived from AI2-THOR's.
//! - `ordered`: the reference's room-specific object lists are replaced by the same rules as the
//!   single transfers; its task type suffixes (`...put0101`) are not written (the benchmark's
//!   files do not have them either).
//! - No decoy searches in `navigable_objects` (they belong to trajectory synthesis).
//! - Evaluation scenes are refused: this engine makes training data.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cases::{Case, CaseAction, IntOrString, TaskMetadata};
use super::executor::Resolver;
use super::parse::SceneIndex;
use crate::error::{Error, Result};
use crate::thor::{Metadata, ObjectMeta};

/// AI2-THOR's placement table as embedded (`data/er/receptacles.json`): which object types each
/// restricted receptacle type accepts. A copy of `sim_bridge/data/ithor/receptacles.json`.
pub const RECEPTACLES_JSON: &str = include_str!("../../data/er/receptacles.json");

/// The benchmark's evaluation scenes; the data engine refuses them.
pub const EVALUATION_SCENES: [&str; 16] = [
    "FloorPlan1",
    "FloorPlan2",
    "FloorPlan3",
    "FloorPlan4",
    "FloorPlan7",
    "FloorPlan22",
    "FloorPlan27",
    "FloorPlan201",
    "FloorPlan202",
    "FloorPlan203",
    "FloorPlan301",
    "FloorPlan302",
    "FloorPlan303",
    "FloorPlan401",
    "FloorPlan403",
    "FloorPlan404",
];

/// Whether a scene is one of the benchmark's evaluation scenes.
pub fn is_evaluation_scene(scene: &str) -> bool {
    EVALUATION_SCENES.contains(&scene)
}

/// The iTHOR room type of a floor plan (`kitchens` 1-30, `living_rooms` 201-230, `bedrooms`
/// 301-330, `bathrooms` 401-430), as the reference names its metadata folders.
pub fn room_type(scene: &str) -> Option<&'static str> {
    let n: u32 = scene.strip_prefix("FloorPlan")?.parse().ok()?;
    match n {
        1..=30 => Some("kitchens"),
        201..=230 => Some("living_rooms"),
        301..=330 => Some("bedrooms"),
        401..=430 => Some("bathrooms"),
        _ => None,
    }
}

/// The iTHOR floor plans of one room type (`kitchens`, `living_rooms`, `bedrooms`,
/// `bathrooms`), evaluation scenes included, in number order.
pub fn scenes_of_room_type(room: &str) -> Option<Vec<String>> {
    let base = match room {
        "kitchens" => 0,
        "living_rooms" => 200,
        "bedrooms" => 300,
        "bathrooms" => 400,
        _ => return None,
    };
    Some((1..=30).map(|i| format!("FloorPlan{}", base + i)).collect())
}

/// The 104 iTHOR floor plans that are not evaluation scenes, in number order.
pub fn training_scenes() -> Vec<String> {
    ["kitchens", "living_rooms", "bedrooms", "bathrooms"]
        .iter()
        .flat_map(|r| scenes_of_room_type(r).unwrap_or_default())
        .filter(|s| !is_evaluation_scene(s))
        .collect()
}

/// The ten sub-types of the data engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskType {
    /// Exposed object search.
    SingleSearch,
    /// Enclosed object search.
    SingleSearchFromCloserep,
    /// Exposed object grasping.
    SinglePickup,
    /// Enclosed object grasping.
    SinglePickupFromCloserep,
    /// Exposed object toggle.
    SingleToggle,
    /// Exposed-to-exposed transfer.
    PickupAndPut,
    /// Exposed-to-enclosed transfer.
    PickupAndPutInCloserep,
    /// Enclosed-to-exposed transfer.
    PickupFromCloserepAndPut,
    /// Enclosed-to-enclosed transfer.
    PickupFromCloserepAndPutInCloserep,
    /// Sequential transfer of two objects.
    OrderedPickupTwoObjectAndPut,
}

impl TaskType {
    /// All sub-types, in the reference's order.
    pub const ALL: [TaskType; 10] = [
        TaskType::SingleSearch,
        TaskType::SingleSearchFromCloserep,
        TaskType::SinglePickup,
        TaskType::SinglePickupFromCloserep,
        TaskType::SingleToggle,
        TaskType::PickupAndPut,
        TaskType::PickupAndPutInCloserep,
        TaskType::PickupFromCloserepAndPut,
        TaskType::PickupFromCloserepAndPutInCloserep,
        TaskType::OrderedPickupTwoObjectAndPut,
    ];

    /// The benchmark's name of the sub-type (`tasktype`).
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskType::SingleSearch => "single_search",
            TaskType::SingleSearchFromCloserep => "single_search_from_closerep",
            TaskType::SinglePickup => "single_pickup",
            TaskType::SinglePickupFromCloserep => "single_pickup_from_closerep",
            TaskType::SingleToggle => "single_toggle",
            TaskType::PickupAndPut => "pickup_and_put",
            TaskType::PickupAndPutInCloserep => "pickup_and_put_in_closerep",
            TaskType::PickupFromCloserepAndPut => "pickup_from_closerep_and_put",
            TaskType::PickupFromCloserepAndPutInCloserep => {
                "pickup_from_closerep_and_put_in_closerep"
            }
            TaskType::OrderedPickupTwoObjectAndPut => "ordered_pickup_two_object_and_put",
        }
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        TaskType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown task type '{s}' (expected one of: {})",
                    TaskType::ALL.map(|t| t.as_str()).join(", ")
                ))
            })
    }
}

/// Receptacle types a transfer may put an object in or on (the destinations the reference's
/// tables use).
pub const DESTINATION_TYPES: [&str; 33] = [
    "ArmChair",
    "BathtubBasin",
    "Bed",
    "Bowl",
    "Box",
    "Cabinet",
    "Cart",
    "CoffeeTable",
    "CounterTop",
    "Cup",
    "Desk",
    "DiningTable",
    "Drawer",
    "Dresser",
    "Fridge",
    "GarbageCan",
    "HandTowelHolder",
    "LaundryHamper",
    "Microwave",
    "Mug",
    "Ottoman",
    "Pan",
    "Plate",
    "Pot",
    "Safe",
    "Shelf",
    "SideTable",
    "SinkBasin",
    "Sofa",
    "StoveBurner",
    "TVStand",
    "ToiletPaperHanger",
    "TowelHolder",
];

/// Toggleable types the toggle sub-type leaves out (as the reference).
const TOGGLE_EXCLUDED: [&str; 4] = ["Candle", "LightSwitch", "StoveBurner", "StoveKnob"];

/// Receptacle types whose "closed" state is a lid, not an enclosure.
const NOT_ENCLOSURES: [&str; 1] = ["Toilet"];

/// Which object types each receptacle type accepts (AI2-THOR's placement restrictions).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Compatibility {
    accepts: BTreeMap<String, BTreeSet<String>>,
}

impl Compatibility {
    /// The embedded table ([`RECEPTACLES_JSON`]).
    pub fn embedded() -> Result<Self> {
        Self::from_json(RECEPTACLES_JSON, "data/er/receptacles.json")
    }

    /// Reads a table `{"receptacles": {ReceptacleType: [ObjectType, ...]}}` (or the bare inner
    /// map); `source` names it in errors.
    pub fn from_json(text: &str, source: &str) -> Result<Self> {
        let v = super::cases::parse_json(text, source)?;
        let inner = v.get("receptacles").unwrap_or(&v);
        let map = inner.as_object().ok_or_else(|| {
            Error::Invalid(format!(
                "{source}: expected an object of receptacle type -> list of object types"
            ))
        })?;
        let mut accepts = BTreeMap::new();
        for (rec, list) in map {
            let arr = list.as_array().ok_or_else(|| {
                Error::Invalid(format!(
                    "{source}: field receptacles.{rec}: expected a list of object types"
                ))
            })?;
            let mut set = BTreeSet::new();
            for (i, t) in arr.iter().enumerate() {
                let t = t.as_str().ok_or_else(|| {
                    Error::Invalid(format!(
                        "{source}: field receptacles.{rec}[{i}]: expected a string"
                    ))
                })?;
                set.insert(t.to_string());
            }
            accepts.insert(rec.clone(), set);
        }
        Ok(Compatibility { accepts })
    }

    /// A table from pairs (receptacle type, accepted object types).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [&'a str])>) -> Self {
        let accepts = pairs
            .into_iter()
            .map(|(r, objs)| (r.to_string(), objs.iter().map(|s| s.to_string()).collect()))
            .collect();
        Compatibility { accepts }
    }

    /// Whether a receptacle type is listed and accepts the object type. Unlisted receptacle
    /// types accept nothing here (the data engine only uses listed destinations).
    pub fn accepts(&self, receptacle: &str, object: &str) -> bool {
        self.accepts
            .get(receptacle)
            .is_some_and(|s| s.contains(object))
    }
}

/// What to generate per scene.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// Tasks per sub-type per scene, at most (fewer when the scene has fewer candidates).
    pub per_type: usize,
    /// The sub-types to generate, in output order.
    pub types: Vec<TaskType>,
    /// Cases per task, each with a different paraphrase (`taskquery`); at least 1.
    pub queries: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            per_type: 3,
            types: TaskType::ALL.to_vec(),
            queries: 1,
        }
    }
}

/// Task names and paraphrases. `{o}` is the object type, `{a}` its article (`a`/`an`), `{r}`
/// the destination type and `{p}` its preposition (`in`/`on`); `{o2}`, `{r2}`, `{p2}` the second
/// object of an ordered task. Names always contain the object's type as written in AI2-THOR
/// (the benchmark's `single_search` end rule looks for it in the name).
pub mod templates {
    /// Canonical names of the two search sub-types.
    pub const SEARCH_NAMES: &[&str] = &[
        "Find the {o} in the room.",
        "Locate the {o} in the room.",
        "Look for the {o} in the room.",
        "Search the room for the {o}.",
        "Track down the {o} in the room.",
        "Spot the {o} somewhere in the room.",
    ];
    /// Paraphrases of the two search sub-types.
    pub const SEARCH_QUERIES: &[&str] = &[
        "Could you find the {o} for me?",
        "Please locate the {o} in this room.",
        "Can you help me look for the {o}?",
        "Where is the {o}? Please find it.",
        "Would you search the room and find the {o}?",
        "Please help me find where the {o} is.",
        "I can't see the {o} anywhere. Can you find it?",
        "Have a look around and find the {o}, please.",
    ];
    /// Canonical names of the two pickup sub-types.
    pub const PICKUP_NAMES: &[&str] = &[
        "Pick up {a} {o}.",
        "Take {a} {o} from the room.",
        "Grab {a} {o} in the room.",
        "Get {a} {o} from the room.",
        "Fetch {a} {o}.",
    ];
    /// Paraphrases of the two pickup sub-types.
    pub const PICKUP_QUERIES: &[&str] = &[
        "Could you pick up {a} {o} for me?",
        "Please grab {a} {o}.",
        "Can you get me {a} {o}?",
        "I need {a} {o}. Please pick one up.",
        "Would you fetch {a} {o} from the room?",
        "Please find {a} {o} and pick it up.",
        "Could you bring me {a} {o}?",
    ];
    /// Canonical names of the toggle sub-type, object off at the start.
    pub const TOGGLE_ON_NAMES: &[&str] = &[
        "Turn on the {o}.",
        "Switch on the {o}.",
        "Power on the {o}.",
    ];
    /// Paraphrases of the toggle sub-type, object off at the start.
    pub const TOGGLE_ON_QUERIES: &[&str] = &[
        "Could you turn on the {o}?",
        "Please switch the {o} on.",
        "Can you power on the {o} for me?",
        "I'd like the {o} on. Please turn it on.",
        "Would you switch on the {o}, please?",
    ];
    /// Canonical names of the toggle sub-type, object on at the start.
    pub const TOGGLE_OFF_NAMES: &[&str] = &[
        "Turn off the {o}.",
        "Switch off the {o}.",
        "Power off the {o}.",
    ];
    /// Paraphrases of the toggle sub-type, object on at the start.
    pub const TOGGLE_OFF_QUERIES: &[&str] = &[
        "Could you turn off the {o}?",
        "Please switch the {o} off.",
        "Can you power off the {o} for me?",
        "The {o} is on. Please turn it off.",
        "Would you switch off the {o}, please?",
    ];
    /// Canonical name of the four transfers (the reference's form).
    pub const TRANSFER_NAMES: &[&str] = &["put the {o} in the {r}"];
    /// Paraphrases of the four transfers.
    pub const TRANSFER_QUERIES: &[&str] = &[
        "Please put the {o} {p} the {r}.",
        "Could you move the {o} to the {r}?",
        "Can you place the {o} {p} the {r}?",
        "Take the {o} and put it {p} the {r}, please.",
        "I'd like the {o} {p} the {r}. Could you do that?",
        "Would you carry the {o} over and put it {p} the {r}?",
    ];
    /// Canonical names of the ordered transfer.
    pub const ORDERED_NAMES: &[&str] =
        &["First, place the {o} {p} the {r}, then place the {o2} {p2} the {r2}."];
    /// Paraphrases of the ordered transfer.
    pub const ORDERED_QUERIES: &[&str] = &[
        "Could you first place the {o} {p} the {r}, and then place the {o2} {p2} the {r2}?",
        "Please put the {o} {p} the {r} first; after that, put the {o2} {p2} the {r2}.",
        "Start by putting the {o} {p} the {r}, then put the {o2} {p2} the {r2}.",
        "Two things, in this order: the {o} goes {p} the {r}, then the {o2} goes {p2} the {r2}.",
        "First put the {o} {p} the {r}. Once that is done, put the {o2} {p2} the {r2}.",
    ];
}

/// Receptacle types one puts things *in* (others: *on*).
const IN_TYPES: [&str; 16] = [
    "BathtubBasin",
    "Bowl",
    "Box",
    "Cabinet",
    "Cup",
    "Drawer",
    "Fridge",
    "GarbageCan",
    "LaundryHamper",
    "Microwave",
    "Mug",
    "Pan",
    "Pot",
    "Safe",
    "SinkBasin",
    "Toilet",
];

fn preposition(receptacle: &str) -> &'static str {
    if IN_TYPES.contains(&receptacle) {
        "in"
    } else {
        "on"
    }
}

fn article(word: &str) -> &'static str {
    match word.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// Fills a template's placeholders.
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    // Longer names first so that `{o2}` is not read as `{o}` + "2}".
    let mut vars = vars.to_vec();
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

// ---------------------------------------------------------------------------------------------
// The scene: parents, chains, placements

/// A scene's start metadata with the lookups the rules need.
struct SceneView<'a> {
    objects: &'a [ObjectMeta],
    by_id: HashMap<&'a str, usize>,
    type_count: HashMap<&'a str, usize>,
    index: SceneIndex,
}

/// Where an object is and how the agent gets to it.
#[derive(Clone, Copy, Debug)]
struct Placement {
    /// The enclosure (a closed openable receptacle on the chain), if any.
    enclosure: Option<usize>,
    /// Where the agent navigates.
    anchor: usize,
}

const MAX_CHAIN: usize = 8;

impl<'a> SceneView<'a> {
    fn new(meta: &'a Metadata) -> Self {
        let mut by_id = HashMap::new();
        let mut type_count: HashMap<&str, usize> = HashMap::new();
        for (i, o) in meta.objects.iter().enumerate() {
            by_id.entry(o.object_id.as_str()).or_insert(i);
            *type_count.entry(o.object_type.as_str()).or_default() += 1;
        }
        SceneView {
            objects: &meta.objects,
            by_id,
            type_count,
            index: SceneIndex::new(meta),
        }
    }

    fn obj(&self, i: usize) -> &'a ObjectMeta {
        &self.objects[i]
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    fn is_floor(&self, i: usize) -> bool {
        self.obj(i).object_type == "Floor"
    }

    fn is_closed(&self, i: usize) -> bool {
        let o = self.obj(i);
        o.receptacle && o.openable && !o.is_open
    }

    fn listed_parents(&self, i: usize) -> Vec<usize> {
        self.obj(i)
            .parent_receptacles
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|id| self.find(id))
            .collect()
    }

    /// The object's parents: listed, present, not the floor, not itself; of a cycle (each
    /// lists the other) the larger box is the parent.
    fn parents(&self, i: usize) -> Vec<usize> {
        let vol = |k: usize| self.obj(k).axis_aligned_bounding_box.volume();
        self.listed_parents(i)
            .into_iter()
            .filter(|&p| {
                p != i
                    && !self.is_floor(p)
                    && !(self.listed_parents(p).contains(&i) && vol(p) < vol(i))
            })
            .collect()
    }

    /// The innermost parent (see the module doc).
    fn immediate_parent(&self, i: usize) -> Option<usize> {
        let ps = self.parents(i);
        let inner: Vec<usize> = ps
            .iter()
            .copied()
            .filter(|&q| {
                !ps.iter()
                    .any(|&p| p != q && self.listed_parents(p).contains(&q))
            })
            .collect();
        let pool = if inner.is_empty() { ps } else { inner };
        let pos = self.obj(i).position;
        pool.into_iter().min_by(|&a, &b| {
            let da = pos.distance_xz(&self.obj(a).axis_aligned_bounding_box.center);
            let db = pos.distance_xz(&self.obj(b).axis_aligned_bounding_box.center);
            da.total_cmp(&db)
                .then_with(|| self.obj(a).object_id.cmp(&self.obj(b).object_id))
        })
    }

    /// The chain of immediate parents upward, up to and including the first one that cannot be
    /// picked up (furniture: what it stands on, or overlaps, says nothing about the object).
    fn chain(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut cur = i;
        while let Some(p) = self.immediate_parent(cur) {
            if p == i || out.contains(&p) || out.len() >= MAX_CHAIN {
                break;
            }
            out.push(p);
            if !self.obj(p).pickupable {
                break;
            }
            cur = p;
        }
        out
    }

    /// Where an object is (see the module doc); `None` when it gets no task.
    fn placement(&self, i: usize) -> Option<Placement> {
        let chain = self.chain(i);
        let mut closed = chain.iter().copied().filter(|&p| self.is_closed(p));
        let enclosure = closed.next();
        if closed.next().is_some() {
            return None;
        }
        if let Some(e) = enclosure {
            if NOT_ENCLOSURES.contains(&self.obj(e).object_type.as_str()) {
                return None;
            }
            let anchor = if self.obj(e).pickupable {
                chain
                    .iter()
                    .copied()
                    .skip_while(|&p| p != e)
                    .find(|&p| !self.obj(p).pickupable)?
            } else {
                e
            };
            return Some(Placement {
                enclosure: Some(e),
                anchor,
            });
        }
        let anchor = chain.iter().copied().find(|&p| !self.obj(p).pickupable)?;
        Some(Placement {
            enclosure: None,
            anchor,
        })
    }

    fn count_of_type(&self, t: &str) -> usize {
        self.type_count.get(t).copied().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// Building actions

fn act(verb: &str, o: Option<&ObjectMeta>, base: &str, related: Vec<String>) -> CaseAction {
    CaseAction {
        action: verb.to_string(),
        object_id: o.map(|o| o.object_id.clone()).unwrap_or_default(),
        object_type: o.map(|o| o.object_type.clone()).unwrap_or_default(),
        baseaction: base.to_string(),
        reward: 1,
        related_object: related,
    }
}

fn dedup(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// A source: the object and where it is.
#[derive(Clone, Copy, Debug)]
struct Source {
    obj: usize,
    place: Placement,
}

/// A destination: the receptacle and where the agent navigates to reach it.
#[derive(Clone, Copy, Debug)]
struct Destination {
    rec: usize,
    /// The navigation target: the receptacle itself, or its anchor when it can be picked up.
    nav: usize,
    closed: bool,
}

/// A generated task before it becomes cases.
#[derive(Clone, Debug)]
struct Task {
    ty: TaskType,
    actions: Vec<CaseAction>,
    name_vars: Vec<(&'static str, String)>,
    names: &'static [&'static str],
    queries: &'static [&'static str],
}

impl SceneView<'_> {
    fn id(&self, i: usize) -> String {
        self.obj(i).object_id.clone()
    }

    /// The source part of a transfer or pickup: navigate [, open], pickup [, close].
    fn pickup_actions(&self, s: Source, base: &str, out: &mut Vec<CaseAction>) {
        let o = self.obj(s.obj);
        let a = self.obj(s.place.anchor);
        match s.place.enclosure {
            Some(e) => {
                let e = self.obj(e);
                out.push(act("navigate to", Some(a), "", vec![a.object_id.clone()]));
                out.push(act("open", Some(e), "", vec![e.object_id.clone()]));
                out.push(act("pickup", Some(o), base, vec![o.object_id.clone()]));
                out.push(act("close", Some(e), "", vec![e.object_id.clone()]));
            }
            None => {
                out.push(act(
                    "navigate to",
                    Some(a),
                    "",
                    vec![a.object_id.clone(), o.object_id.clone()],
                ));
                out.push(act("pickup", Some(o), base, vec![o.object_id.clone()]));
            }
        }
    }

    /// The destination part: navigate [, open], put [, close when `close_after`].
    fn put_actions(&self, d: Destination, close_after: bool, out: &mut Vec<CaseAction>) {
        let r = self.obj(d.rec);
        let n = self.obj(d.nav);
        let rel: Vec<String> = dedup([n.object_id.clone(), r.object_id.clone()]);
        let nested = d.nav != d.rec;
        out.push(act("navigate to", Some(n), "", rel.clone()));
        if d.closed {
            out.push(act("open", Some(r), "", vec![r.object_id.clone()]));
        }
        out.push(act(
            "put",
            Some(r),
            if nested { "put" } else { "" },
            if nested {
                rel
            } else {
                vec![r.object_id.clone()]
            },
        ));
        if d.closed && close_after {
            out.push(act("close", Some(r), "", vec![r.object_id.clone()]));
        }
    }

    fn end_action(&self, related: Vec<String>) -> CaseAction {
        act("end", None, "", dedup(related))
    }

    /// Objects that can be sources: pickupable, placed, exposed or enclosed as asked.
    fn sources(&self, enclosed: bool) -> Vec<Source> {
        (0..self.objects.len())
            .filter(|&i| self.obj(i).pickupable)
            .filter_map(|i| {
                let place = self.placement(i)?;
                (place.enclosure.is_some() == enclosed).then_some(Source { obj: i, place })
            })
            .collect()
    }

    /// The destinations for an object (see the module doc), one per receptacle type (the first
    /// of the type that qualifies), in metadata order.
    fn destinations(&self, s: Source, closed: bool, compat: &Compatibility) -> Vec<Destination> {
        let o = self.obj(s.obj);
        let chain = self.chain(s.obj);
        let chain_types: Vec<&str> = chain
            .iter()
            .map(|&p| self.obj(p).object_type.as_str())
            .collect();
        let mut seen_types: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for (i, r) in self.objects.iter().enumerate() {
            let t = r.object_type.as_str();
            if seen_types.contains(&t)
                || !r.receptacle
                || i == s.obj
                || t == o.object_type
                || chain_types.contains(&t)
                || !DESTINATION_TYPES.contains(&t)
                || !compat.accepts(t, &o.object_type)
                || self.is_closed(i) != closed
            {
                continue;
            }
            let r_chain = self.chain(i);
            if r_chain.contains(&s.obj) || r_chain.iter().any(|&p| self.is_closed(p)) {
                continue;
            }
            let nav = if r.pickupable {
                match r_chain.iter().copied().find(|&p| !self.obj(p).pickupable) {
                    Some(a) => a,
                    None => continue,
                }
            } else {
                i
            };
            // Putting it back where it was picked up is no transfer.
            if nav == s.place.anchor {
                continue;
            }
            seen_types.push(t);
            out.push(Destination {
                rec: i,
                nav,
                closed,
            });
        }
        out
    }
}

/// The case fields the benchmark derives from the key actions.
struct Derived {
    target_objects: Vec<String>,
    related_objects: Vec<String>,
    navigable_objects: Vec<String>,
}

fn derive(view: &SceneView<'_>, actions: &[CaseAction]) -> Derived {
    let navs: Vec<&CaseAction> = actions
        .iter()
        .filter(|a| a.action == "navigate to")
        .collect();
    let target_objects = dedup(
        navs.iter()
            .filter(|a| view.count_of_type(&a.object_type) > 1)
            .map(|a| a.object_id.clone()),
    );
    let nav_ids: Vec<&str> = navs.iter().map(|a| a.object_id.as_str()).collect();
    let related_objects = dedup(
        actions
            .iter()
            .filter(|a| a.action == "navigate to" || a.action == "end")
            .flat_map(|a| a.related_object.iter())
            .filter(|id| !nav_ids.contains(&id.as_str()))
            .cloned(),
    );
    let navigable_objects = dedup(navs.iter().map(|a| a.object_type.clone()));
    Derived {
        target_objects,
        related_objects,
        navigable_objects,
    }
}

/// Checks that every key action, named by type, resolves to the object the task means under
/// the harness's rule; returns the first that does not.
fn check_resolvable(
    index: &SceneIndex,
    target_objects: &[String],
    actions: &[CaseAction],
) -> std::result::Result<(), String> {
    let resolver = Resolver::new(target_objects, index.clone());
    let mut hand_empty = true;
    for a in actions {
        let navigating = a.action == "navigate to";
        if a.action == "end" {
            continue;
        }
        let got = resolver.resolve(&a.object_type, navigating, hand_empty);
        if got.as_deref() != Some(a.object_id.as_str()) {
            return Err(format!(
                "'{} {}' resolves to {} instead of {}",
                a.action,
                a.object_type,
                got.as_deref().unwrap_or("nothing"),
                a.object_id
            ));
        }
        match a.action.as_str() {
            "pickup" => hand_empty = false,
            "put" => hand_empty = true,
            _ => {}
        }
    }
    Ok(())
}

impl SceneView<'_> {
    /// Whether a task's actions resolve (see [`check_resolvable`]).
    fn resolvable(&self, actions: &[CaseAction]) -> bool {
        let d = derive(self, actions);
        check_resolvable(&self.index, &d.target_objects, actions).is_ok()
    }

    /// All candidate tasks of a sub-type, in metadata order; destinations drawn with `rng`.
    fn candidates(&self, ty: TaskType, compat: &Compatibility, rng: &mut ChaCha8Rng) -> Vec<Task> {
        match ty {
            TaskType::SingleSearch
            | TaskType::SingleSearchFromCloserep
            | TaskType::SinglePickup
            | TaskType::SinglePickupFromCloserep => self.single_tasks(ty),
            TaskType::SingleToggle => self.toggle_tasks(),
            TaskType::PickupAndPut
            | TaskType::PickupAndPutInCloserep
            | TaskType::PickupFromCloserepAndPut
            | TaskType::PickupFromCloserepAndPutInCloserep => self.transfer_tasks(ty, compat, rng),
            TaskType::OrderedPickupTwoObjectAndPut => self.ordered_tasks(compat, rng),
        }
    }

    /// The first source of each type (in metadata order) for which `make` gives a resolvable
    /// task.
    fn per_type_first<F>(&self, sources: Vec<Source>, mut make: F) -> Vec<Task>
    where
        F: FnMut(Source) -> Option<Task>,
    {
        let mut done: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for s in sources {
            let t = self.obj(s.obj).object_type.as_str();
            if done.contains(&t) {
                continue;
            }
            if let Some(task) = make(s).filter(|task| self.resolvable(&task.actions)) {
                done.push(t);
                out.push(task);
            }
        }
        out
    }

    fn single_tasks(&self, ty: TaskType) -> Vec<Task> {
        let enclosed = matches!(
            ty,
            TaskType::SingleSearchFromCloserep | TaskType::SinglePickupFromCloserep
        );
        let sources = self.sources(enclosed);
        self.per_type_first(sources, |s| {
            let o = self.obj(s.obj);
            let a = self.obj(s.place.anchor);
            let mut actions = Vec::new();
            let (names, queries) = match ty {
                TaskType::SingleSearch => {
                    actions.push(act(
                        "navigate to",
                        Some(a),
                        "",
                        vec![a.object_id.clone(), o.object_id.clone()],
                    ));
                    (templates::SEARCH_NAMES, templates::SEARCH_QUERIES)
                }
                TaskType::SingleSearchFromCloserep => {
                    let e = self.obj(s.place.enclosure?);
                    actions.push(act(
                        "navigate to",
                        Some(a),
                        "",
                        vec![a.object_id.clone(), o.object_id.clone()],
                    ));
                    actions.push(act("open", Some(e), "", vec![e.object_id.clone()]));
                    (templates::SEARCH_NAMES, templates::SEARCH_QUERIES)
                }
                _ => {
                    self.pickup_actions(s, "", &mut actions);
                    (templates::PICKUP_NAMES, templates::PICKUP_QUERIES)
                }
            };
            let end_ids = vec![
                s.place
                    .enclosure
                    .map_or(a.object_id.clone(), |e| self.id(e)),
                o.object_id.clone(),
            ];
            actions.push(self.end_action(end_ids));
            Some(Task {
                ty,
                actions,
                name_vars: vec![
                    ("o", o.object_type.clone()),
                    ("a", article(&o.object_type).to_string()),
                ],
                names,
                queries,
            })
        })
    }

    fn toggle_tasks(&self) -> Vec<Task> {
        let sources: Vec<Source> = (0..self.objects.len())
            .filter(|&i| {
                let o = self.obj(i);
                o.toggleable && !TOGGLE_EXCLUDED.contains(&o.object_type.as_str())
            })
            .filter_map(|i| {
                let place = self.placement(i)?;
                place
                    .enclosure
                    .is_none()
                    .then_some(Source { obj: i, place })
            })
            .collect();
        self.per_type_first(sources, |s| {
            let o = self.obj(s.obj);
            let a = self.obj(s.place.anchor);
            let actions = vec![
                act(
                    "navigate to",
                    Some(a),
                    "",
                    vec![a.object_id.clone(), o.object_id.clone()],
                ),
                act("toggle", Some(o), "", vec![o.object_id.clone()]),
                self.end_action(vec![a.object_id.clone(), o.object_id.clone()]),
            ];
            let (names, queries) = if o.is_toggled {
                (templates::TOGGLE_OFF_NAMES, templates::TOGGLE_OFF_QUERIES)
            } else {
                (templates::TOGGLE_ON_NAMES, templates::TOGGLE_ON_QUERIES)
            };
            Some(Task {
                ty: TaskType::SingleToggle,
                actions,
                name_vars: vec![
                    ("o", o.object_type.clone()),
                    ("a", article(&o.object_type).to_string()),
                ],
                names,
                queries,
            })
        })
    }

    /// The actions of one transfer (without the end).
    fn transfer_actions(&self, s: Source, d: Destination, close_after: bool) -> Vec<CaseAction> {
        let mut actions = Vec::new();
        self.pickup_actions(s, "pickup", &mut actions);
        self.put_actions(d, close_after, &mut actions);
        actions
    }

    fn end_ids_of_transfer(&self, s: Source, d: Destination) -> Vec<String> {
        let first = s
            .place
            .enclosure
            .map_or(self.id(s.place.anchor), |e| self.id(e));
        vec![first, self.id(s.obj), self.id(d.nav), self.id(d.rec)]
    }

    fn transfer_tasks(
        &self,
        ty: TaskType,
        compat: &Compatibility,
        rng: &mut ChaCha8Rng,
    ) -> Vec<Task> {
        let enclosed_source = matches!(
            ty,
            TaskType::PickupFromCloserepAndPut | TaskType::PickupFromCloserepAndPutInCloserep
        );
        let closed_dest = matches!(
            ty,
            TaskType::PickupAndPutInCloserep | TaskType::PickupFromCloserepAndPutInCloserep
        );
        let sources = self.sources(enclosed_source);
        // Destinations are drawn for every source in order, so the draw does not depend on
        // which earlier sources were kept.
        let drawn: Vec<(Source, Vec<Destination>)> = sources
            .into_iter()
            .map(|s| {
                let mut ds = self.destinations(s, closed_dest, compat);
                ds.shuffle(rng);
                (s, ds)
            })
            .collect();
        let mut done: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for (s, ds) in drawn {
            let t = self.obj(s.obj).object_type.as_str();
            if done.contains(&t) {
                continue;
            }
            for d in ds {
                let mut actions = self.transfer_actions(s, d, false);
                actions.push(self.end_action(self.end_ids_of_transfer(s, d)));
                if !self.resolvable(&actions) {
                    continue;
                }
                let r = &self.obj(d.rec).object_type;
                done.push(t);
                out.push(Task {
                    ty,
                    actions,
                    name_vars: vec![
                        ("o", t.to_string()),
                        ("a", article(t).to_string()),
                        ("r", r.clone()),
                        ("p", preposition(r).to_string()),
                    ],
                    names: templates::TRANSFER_NAMES,
                    queries: templates::TRANSFER_QUERIES,
                });
                break;
            }
        }
        out
    }

    /// Whether `a` is `b` or inside/on it (on `a`'s chain).
    fn within(&self, a: usize, b: usize) -> bool {
        a == b || self.chain(a).contains(&b)
    }

    fn ordered_tasks(&self, compat: &Compatibility, rng: &mut ChaCha8Rng) -> Vec<Task> {
        let mut sources = self.sources(false);
        sources.extend(self.sources(true));
        sources.sort_by_key(|s| s.obj);
        // Options per source: every destination, exposed or closed.
        let options: Vec<(Source, Vec<Destination>)> = sources
            .iter()
            .map(|&s| {
                let mut ds = self.destinations(s, false, compat);
                ds.extend(self.destinations(s, true, compat));
                ds.sort_by_key(|d| d.rec);
                (s, ds)
            })
            .filter(|(_, ds)| !ds.is_empty())
            .collect();
        let mut done: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for (i, (s1, ds1)) in options.iter().enumerate() {
            let t1 = self.obj(s1.obj).object_type.as_str();
            // One draw per first object, whatever was kept before.
            let mut pairs: Vec<(usize, usize, usize)> = Vec::new();
            for (j, (s2, ds2)) in options.iter().enumerate() {
                if j == i || self.obj(s2.obj).object_type == t1 {
                    continue;
                }
                for (a, _) in ds1.iter().enumerate() {
                    for (b, _) in ds2.iter().enumerate() {
                        pairs.push((j, a, b));
                    }
                }
            }
            pairs.shuffle(rng);
            if done.contains(&t1) {
                continue;
            }
            for (j, a, b) in pairs.into_iter().take(64) {
                let (s2, ds2) = &options[j];
                let (d1, d2) = (ds1[a], ds2[b]);
                // The two transfers must not disturb each other: neither object inside the
                // other, and no destination (or its support) inside either object.
                if self.within(s1.obj, s2.obj)
                    || self.within(s2.obj, s1.obj)
                    || self.within(d1.rec, s2.obj)
                    || self.within(d2.rec, s1.obj)
                    || self.within(d1.nav, s2.obj)
                    || self.within(d2.nav, s1.obj)
                {
                    continue;
                }
                let mut actions = self.transfer_actions(*s1, d1, true);
                actions.extend(self.transfer_actions(*s2, d2, true));
                actions.push(self.end_action(Vec::new()));
                if !self.resolvable(&actions) {
                    continue;
                }
                let (o1, r1) = (t1, &self.obj(d1.rec).object_type);
                let (o2, r2) = (&self.obj(s2.obj).object_type, &self.obj(d2.rec).object_type);
                done.push(t1);
                out.push(Task {
                    ty: TaskType::OrderedPickupTwoObjectAndPut,
                    actions,
                    name_vars: vec![
                        ("o", o1.to_string()),
                        ("a", article(o1).to_string()),
                        ("r", r1.clone()),
                        ("p", preposition(r1).to_string()),
                        ("o2", o2.clone()),
                        ("r2", r2.clone()),
                        ("p2", preposition(r2).to_string()),
                    ],
                    names: templates::ORDERED_NAMES,
                    queries: templates::ORDERED_QUERIES,
                });
                break;
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The entry points

/// FNV-1a, for a seed per (seed, scene, sub-type) that does not depend on the Rust version.
fn mix(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Generates the cases of one training scene from its initial metadata. Identities are
/// numbered from 1 within the scene (see [`renumber`] for a combined list). Fails for an
/// evaluation scene, for a scene name that is not an iTHOR floor plan, for metadata of another
/// scene, and for `queries == 0`.
pub fn generate_scene(
    scene: &str,
    meta: &Metadata,
    compat: &Compatibility,
    opts: &GenerateOptions,
    seed: u64,
) -> Result<Vec<Case>> {
    if is_evaluation_scene(scene) {
        return Err(Error::Invalid(format!(
            "{scene} is an evaluation scene of the Embodied-Reasoner benchmark; the data engine \
             makes training data and refuses it (evaluation scenes: {})",
            EVALUATION_SCENES.join(", ")
        )));
    }
    let room = room_type(scene).ok_or_else(|| {
        Error::Invalid(format!(
            "'{scene}' is not an iTHOR floor plan (FloorPlan1-30, 201-230, 301-330, 401-430)"
        ))
    })?;
    let named = meta.scene_name.trim_end_matches("_physics");
    if !named.is_empty() && named != scene {
        return Err(Error::Invalid(format!(
            "the metadata given for {scene} is the metadata of {}",
            meta.scene_name
        )));
    }
    if opts.queries == 0 {
        return Err(Error::Invalid(
            "queries must be at least 1 (cases per task)".into(),
        ));
    }
    let view = SceneView::new(meta);
    let metadatapath = format!("taskgenerate/{room}/{scene}/metadata.json");
    let mut cases = Vec::new();
    for &ty in &opts.types {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, &[scene, ty.as_str()]));
        let mut tasks = view.candidates(ty, compat, &mut rng);
        tasks.shuffle(&mut rng);
        tasks.truncate(opts.per_type);
        for (idx, task) in tasks.into_iter().enumerate() {
            cases.extend(task_cases(
                &view,
                scene,
                task,
                idx,
                &metadatapath,
                opts.queries,
                &mut rng,
            ));
        }
    }
    renumber(&mut cases, 1);
    Ok(cases)
}

fn task_cases(
    view: &SceneView<'_>,
    scene: &str,
    task: Task,
    idx: usize,
    metadatapath: &str,
    queries: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Case> {
    let vars: Vec<(&str, &str)> = task
        .name_vars
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let name_t = task.names[rng.random_range(0..task.names.len())];
    let taskname = fill(name_t, &vars);
    let chosen: Vec<&&str> = task
        .queries
        .choose_multiple(rng, queries.min(task.queries.len()))
        .collect();
    let d = derive(view, &task.actions);
    let totalreward = task.actions.iter().map(|a| a.reward).sum();
    let metadata = TaskMetadata {
        taskname: taskname.clone(),
        tasktype: task.ty.as_str().to_string(),
        metadatapath: metadatapath.to_string(),
        actions: task.actions,
        totalreward,
    };
    (0..queries)
        .map(|q| {
            // More cases than paraphrases: cycle through them.
            let query_t = chosen.get(q % chosen.len().max(1)).map_or(name_t, |s| **s);
            Case {
                identity: IntOrString::Int(0),
                scene: scene.to_string(),
                tasktype: task.ty.as_str().to_string(),
                instruction_idx: IntOrString::Int(idx as i64),
                taskname: taskname.clone(),
                taskquery: fill(query_t, &vars),
                task_metadata: metadata.clone(),
                target_objects: d.target_objects.clone(),
                related_objects: d.related_objects.clone(),
                navigable_objects: d.navigable_objects.clone(),
            }
        })
        .collect()
}

/// Numbers cases' identities consecutively from `first`.
pub fn renumber(cases: &mut [Case], first: i64) {
    for (i, c) in cases.iter_mut().enumerate() {
        c.identity = IntOrString::Int(first + i as i64);
    }
}

/// Keeps at most `max` tasks per sub-type from a list of cases (several scenes), drawn with the
/// seed; a task's cases (its paraphrases: same scene, type and `instruction_idx`) stay together
/// and the kept cases keep their order. For a small set that still spreads over the scenes.
pub fn cap_tasks_per_type(cases: Vec<Case>, max: usize, seed: u64) -> Vec<Case> {
    // Tasks per sub-type, in order of first appearance.
    let mut tasks: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for c in &cases {
        let key = (c.scene.clone(), c.instruction_idx.to_string());
        let v = tasks.entry(c.tasktype.clone()).or_default();
        if !v.contains(&key) {
            v.push(key);
        }
    }
    let mut keep: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (ty, mut v) in tasks {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, &["cap", &ty]));
        v.shuffle(&mut rng);
        for (scene, idx) in v.into_iter().take(max) {
            keep.insert((ty.clone(), scene, idx));
        }
    }
    cases
        .into_iter()
        .filter(|c| {
            keep.contains(&(
                c.tasktype.clone(),
                c.scene.clone(),
                c.instruction_idx.to_string(),
            ))
        })
        .collect()
}

/// Checks a generated (or any) case's key actions against the harness's type resolution on the
/// scene's start metadata: every key action must resolve to its `objectId`. Returns the first
/// that does not, as a sentence.
pub fn check_case_resolves(case: &Case, meta: &Metadata) -> std::result::Result<(), String> {
    check_resolvable(
        &SceneIndex::new(meta),
        &case.target_objects,
        &case.task_metadata.actions,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::er::cases::parse_cases;
    use crate::thor::{AxisAlignedBox, Vec3, make_object_id};

    /// An object at `pos` with a box of `size`; `parents` by id.
    fn obj(ty: &str, pos: [f64; 3], size: [f64; 3], parents: &[&str]) -> ObjectMeta {
        let p = Vec3::from(pos);
        let h = Vec3::new(size[0] / 2.0, size[1] / 2.0, size[2] / 2.0);
        ObjectMeta {
            object_id: make_object_id(ty, &p),
            object_type: ty.to_string(),
            name: ty.to_string(),
            position: p,
            parent_receptacles: (!parents.is_empty())
                .then(|| parents.iter().map(|s| s.to_string()).collect()),
            axis_aligned_bounding_box: AxisAlignedBox::from_min_max(
                Vec3::new(p.x - h.x, p.y - h.y, p.z - h.z),
                Vec3::new(p.x + h.x, p.y + h.y, p.z + h.z),
            ),
            ..Default::default()
        }
    }

    fn receptacle(mut o: ObjectMeta) -> ObjectMeta {
        o.receptacle = true;
        o
    }

    fn closed(mut o: ObjectMeta) -> ObjectMeta {
        o.receptacle = true;
        o.openable = true;
        o
    }

    fn pickup(mut o: ObjectMeta) -> ObjectMeta {
        o.pickupable = true;
        o
    }

    const FLOOR: &str = "Floor|+00.00|+00.00|+00.00";
    const CT1: &str = "CounterTop|-01.00|+00.95|00.00";
    const CT2: &str = "CounterTop|+01.00|+00.95|00.00";
    const FRIDGE: &str = "Fridge|+02.00|00.00|+02.00";
    const CAB1: &str = "Cabinet|-02.00|+02.00|00.00";
    const BOWL: &str = "Bowl|+00.90|+01.00|+00.10";
    const SINK: &str = "Sink|00.00|+00.90|-01.00|SinkBasin";
    const CUP: &str = "Cup|00.00|+00.85|-01.00";

    /// A small kitchen: two counters, a fridge with an egg and a second apple, two cabinets (a
    /// mug in the first), a microwave on a counter, a sink basin with a cup (and AI2-THOR's
    /// cycle: the basin lists the cup as its parent), a bowl with a spoon, a coffee machine that
    /// is on, a garbage can, and an apple on the first counter.
    fn kitchen() -> Metadata {
        let mut sink = receptacle(obj("SinkBasin", [0.0, 0.9, -1.0], [0.5, 0.2, 0.4], &[CUP]));
        sink.object_id = SINK.to_string();
        let mut coffee = receptacle(obj(
            "CoffeeMachine",
            [1.1, 0.95, -0.2],
            [0.3, 0.4, 0.3],
            &[CT2],
        ));
        coffee.toggleable = true;
        coffee.is_toggled = true;
        let mut micro = closed(obj("Microwave", [1.2, 1.0, 0.0], [0.6, 0.4, 0.4], &[CT2]));
        micro.toggleable = true;
        let mut floor = receptacle(obj("Floor", [0.0, 0.0, 0.0], [8.0, 0.01, 8.0], &[]));
        floor.object_id = FLOOR.to_string();
        let objects = vec![
            floor,
            pickup(obj("Apple", [-1.1, 1.0, 0.0], [0.1, 0.1, 0.1], &[CT1])),
            receptacle(obj("CounterTop", [-1.0, 0.95, 0.0], [1.0, 0.05, 0.6], &[])),
            receptacle(obj("CounterTop", [1.0, 0.95, 0.0], [1.0, 0.05, 0.6], &[])),
            closed(obj("Fridge", [2.0, 0.0, 2.0], [0.8, 1.8, 0.8], &[FLOOR])),
            closed(obj("Cabinet", [-2.0, 2.0, 0.0], [0.5, 0.5, 0.4], &[])),
            closed(obj("Cabinet", [-2.0, 0.4, 0.0], [0.5, 0.5, 0.4], &[])),
            micro,
            receptacle(obj(
                "GarbageCan",
                [0.0, 0.0, 2.0],
                [0.3, 0.4, 0.3],
                &[FLOOR],
            )),
            sink,
            pickup(receptacle(obj(
                "Cup",
                [0.0, 0.85, -1.0],
                [0.08, 0.1, 0.08],
                &[SINK],
            ))),
            pickup(obj("Egg", [2.0, 0.8, 2.0], [0.05, 0.06, 0.05], &[FRIDGE])),
            pickup(obj("Apple", [2.1, 0.8, 2.0], [0.1, 0.1, 0.1], &[FRIDGE])),
            pickup(receptacle(obj(
                "Bowl",
                [0.9, 1.0, 0.1],
                [0.2, 0.08, 0.2],
                &[CT2],
            ))),
            pickup(obj(
                "Spoon",
                [0.9, 1.02, 0.1],
                [0.15, 0.02, 0.03],
                &[BOWL, CT2],
            )),
            pickup(receptacle(obj(
                "Mug",
                [-2.0, 2.0, 0.1],
                [0.1, 0.1, 0.1],
                &[CAB1],
            ))),
            coffee,
        ];
        Metadata {
            objects,
            scene_name: "FloorPlan5_physics".into(),
            ..Default::default()
        }
    }

    fn generate_all(seed: u64) -> Vec<Case> {
        let opts = GenerateOptions {
            per_type: 100,
            ..GenerateOptions::default()
        };
        generate_scene(
            "FloorPlan5",
            &kitchen(),
            &Compatibility::embedded().unwrap(),
            &opts,
            seed,
        )
        .unwrap()
    }

    fn verbs(c: &Case) -> Vec<&str> {
        c.task_metadata
            .actions
            .iter()
            .map(|a| a.action.as_str())
            .collect()
    }

    #[test]
    fn the_kitchen_fixture_ids_are_consistent() {
        let m = kitchen();
        for id in [FLOOR, CT1, CT2, FRIDGE, CAB1, BOWL, SINK, CUP] {
            assert!(m.object(id).is_some(), "{id} missing");
        }
    }

    #[test]
    fn placements_follow_the_parent_relations() {
        let m = kitchen();
        let v = SceneView::new(&m);
        let at = |id: &str| v.find(id).unwrap();
        let spoon = v
            .objects
            .iter()
            .position(|o| o.object_type == "Spoon")
            .unwrap();
        // The spoon lists the bowl and the counter; the bowl is on the counter: bowl first.
        assert_eq!(v.immediate_parent(spoon), Some(at(BOWL)));
        assert_eq!(v.chain(spoon), vec![at(BOWL), at(CT2)]);
        let p = v.placement(spoon).unwrap();
        assert_eq!((p.enclosure, p.anchor), (None, at(CT2)));
        // The egg is enclosed by the fridge, which is also where the agent goes.
        let egg = v
            .objects
            .iter()
            .position(|o| o.object_type == "Egg")
            .unwrap();
        let p = v.placement(egg).unwrap();
        assert_eq!((p.enclosure, p.anchor), (Some(at(FRIDGE)), at(FRIDGE)));
        // The basin's cycle through the cup is dropped: the cup sits in a top-level basin.
        assert_eq!(v.parents(at(SINK)), Vec::<usize>::new());
        let p = v.placement(at(CUP)).unwrap();
        assert_eq!((p.enclosure, p.anchor), (None, at(SINK)));
        // Nothing on the floor or without a parent gets a placement.
        assert!(v.placement(at(FRIDGE)).is_none());
        assert!(v.placement(at(CT1)).is_none());
    }

    #[test]
    fn every_sub_type_is_generated_with_the_reference_structure() {
        let cases = generate_all(0);
        let m = kitchen();
        let count = |t: &str| m.objects.iter().filter(|o| o.object_type == t).count();
        for ty in TaskType::ALL {
            assert!(
                cases.iter().any(|c| c.tasktype == ty.as_str()),
                "no {ty} case"
            );
        }
        for c in &cases {
            let v = verbs(c);
            let expected: &[&str] = match c.tasktype.as_str() {
                "single_search" => &["navigate to", "end"],
                "single_search_from_closerep" => &["navigate to", "open", "end"],
                "single_pickup" => &["navigate to", "pickup", "end"],
                "single_pickup_from_closerep" => &["navigate to", "open", "pickup", "close", "end"],
                "single_toggle" => &["navigate to", "toggle", "end"],
                "pickup_and_put" => &["navigate to", "pickup", "navigate to", "put", "end"],
                "pickup_and_put_in_closerep" => {
                    &["navigate to", "pickup", "navigate to", "open", "put", "end"]
                }
                "pickup_from_closerep_and_put" => &[
                    "navigate to",
                    "open",
                    "pickup",
                    "close",
                    "navigate to",
                    "put",
                    "end",
                ],
                "pickup_from_closerep_and_put_in_closerep" => &[
                    "navigate to",
                    "open",
                    "pickup",
                    "close",
                    "navigate to",
                    "open",
                    "put",
                    "end",
                ],
                "ordered_pickup_two_object_and_put" => &[],
                other => panic!("unexpected type {other}"),
            };
            if c.tasktype == "ordered_pickup_two_object_and_put" {
                assert_eq!(v.iter().filter(|&&a| a == "pickup").count(), 2);
                assert_eq!(v.iter().filter(|&&a| a == "put").count(), 2);
                assert_eq!(v.last(), Some(&"end"));
                // Every open is closed again.
                assert_eq!(
                    v.iter().filter(|&&a| a == "open").count(),
                    v.iter().filter(|&&a| a == "close").count()
                );
                assert!(
                    c.task_metadata
                        .actions
                        .last()
                        .unwrap()
                        .related_object
                        .is_empty()
                );
            } else {
                assert_eq!(v, expected, "case {}", c.label());
            }
            let acts = &c.task_metadata.actions;
            assert_eq!(c.task_metadata.totalreward, acts.len() as i64);
            assert!(acts.iter().all(|a| a.reward == 1));
            assert_eq!(c.taskname, c.task_metadata.taskname);
            assert_eq!(c.task_metadata.tasktype, c.tasktype);
            assert_eq!(
                c.task_metadata.metadatapath,
                "taskgenerate/kitchens/FloorPlan5/metadata.json"
            );
            // Ids and types agree; the end has neither.
            for a in acts {
                if a.action == "end" {
                    assert_eq!((a.object_id.as_str(), a.object_type.as_str()), ("", ""));
                } else {
                    assert_eq!(
                        m.object(&a.object_id).map(|o| o.object_type.as_str()),
                        Some(a.object_type.as_str())
                    );
                }
            }
            // The derived fields.
            let navs: Vec<&CaseAction> =
                acts.iter().filter(|a| a.action == "navigate to").collect();
            for n in &navs {
                assert_eq!(
                    c.target_objects.contains(&n.object_id),
                    count(&n.object_type) > 1,
                    "{}: target_objects {:?}",
                    c.label(),
                    c.target_objects
                );
                assert!(c.navigable_objects.contains(&n.object_type));
                assert!(!c.related_objects.contains(&n.object_id));
            }
            assert_eq!(c.navigable_objects.len(), {
                let mut t: Vec<&str> = navs.iter().map(|a| a.object_type.as_str()).collect();
                t.dedup();
                t.sort();
                t.dedup();
                t.len()
            });
            // The task names the objects it is about.
            for a in acts
                .iter()
                .filter(|a| a.action == "pickup" || a.action == "toggle")
            {
                assert!(c.taskname.contains(&a.object_type), "{}", c.taskname);
                assert!(c.taskquery.contains(&a.object_type), "{}", c.taskquery);
                assert!(
                    c.related_objects.contains(&a.object_id) || c.tasktype.starts_with("ordered")
                );
            }
            assert!(!c.taskquery.contains('{') && !c.taskname.contains('{'));
            // Every key action resolves to its object under the harness's rule.
            check_case_resolves(c, &m).unwrap();
        }
    }

    #[test]
    fn the_cases_have_the_benchmarks_shapes() {
        let cases = generate_all(3);
        let find = |ty: &str| cases.iter().find(|c| c.tasktype == ty).unwrap();
        // Enclosed grasping: the fridge's egg (the second apple of the scene is in the fridge
        // too, but "pickup Apple" would take the counter's apple: no case for it).
        let c = find("single_pickup_from_closerep");
        assert_eq!(
            c.key_actions(),
            [
                "navigate to Fridge",
                "open Fridge",
                "pickup Egg",
                "close Fridge",
                "end"
            ]
        );
        assert_eq!(c.task_metadata.actions[0].related_object, vec![FRIDGE]);
        assert!(c.target_objects.is_empty(), "one fridge: no target needed");
        assert_eq!(c.related_objects, vec!["Egg|+02.00|+00.80|+02.00"]);
        assert_eq!(c.navigable_objects, vec!["Fridge"]);
        assert!(
            !cases
                .iter()
                .any(|c| c.tasktype == "single_pickup_from_closerep"
                    && c.key_actions().contains(&"pickup Apple".to_string()))
        );
        // The search of the fridge's apple is fine (it touches only the fridge).
        assert!(
            cases.iter().any(
                |c| c.tasktype == "single_search_from_closerep" && c.taskname.contains("Apple")
            )
        );
        // Exposed grasping of the spoon in the bowl: navigate to the counter under the bowl.
        let spoon = cases
            .iter()
            .find(|c| c.tasktype == "single_pickup" && c.taskname.contains("Spoon"))
            .unwrap();
        assert_eq!(
            spoon.key_actions(),
            ["navigate to CounterTop", "pickup Spoon", "end"]
        );
        assert_eq!(spoon.target_objects, vec![CT2]);
        assert_eq!(spoon.related_objects, vec!["Spoon|+00.90|+01.02|+00.10"]);
        // Toggle: the coffee machine is on, so the task turns it off.
        let t = cases
            .iter()
            .find(|c| c.tasktype == "single_toggle" && c.taskname.contains("CoffeeMachine"))
            .unwrap();
        assert!(t.taskname.to_lowercase().contains("off"), "{}", t.taskname);
        assert_eq!(
            t.key_actions(),
            ["navigate to CounterTop", "toggle CoffeeMachine", "end"]
        );
        // A transfer to a pickupable receptacle goes to the counter under it.
        for c in cases.iter().filter(|c| c.tasktype.starts_with("pickup")) {
            let acts = &c.task_metadata.actions;
            let put = acts.iter().position(|a| a.action == "put").unwrap();
            let r = &acts[put];
            let nav = acts[..put]
                .iter()
                .rev()
                .find(|a| a.action == "navigate to")
                .unwrap();
            match r.object_type.as_str() {
                // Pickupable receptacles: the furniture under them.
                "Bowl" | "Cup" => {
                    let under = if r.object_type == "Bowl" { CT2 } else { SINK };
                    assert_eq!(nav.object_id, under);
                    assert_eq!(
                        r.related_object,
                        vec![under.to_string(), r.object_id.clone()]
                    );
                    assert_eq!(r.baseaction, "put");
                    assert!(c.related_objects.contains(&r.object_id));
                }
                _ => assert_eq!(nav.object_id, r.object_id),
            }
            // Never back where it came from.
            assert_ne!(nav.object_id, acts[0].object_id);
        }
    }

    #[test]
    fn generated_cases_load_with_the_harness_loader() {
        let cases = generate_all(1);
        let text = serde_json::to_string(&cases).unwrap();
        let back = parse_cases(&text, "generated").unwrap();
        assert_eq!(back, cases);
        let ids: Vec<i64> = back
            .iter()
            .map(|c| match c.identity {
                IntOrString::Int(i) => i,
                IntOrString::Str(_) => panic!("string identity"),
            })
            .collect();
        assert_eq!(ids, (1..=cases.len() as i64).collect::<Vec<_>>());
    }

    #[test]
    fn generation_is_deterministic_for_a_seed() {
        let a = serde_json::to_string(&generate_all(7)).unwrap();
        assert_eq!(a, serde_json::to_string(&generate_all(7)).unwrap());
        // Some seed gives other choices (templates, destinations, order).
        assert!((0..8).any(|s| serde_json::to_string(&generate_all(s)).unwrap() != a));
        // Per-type generators are independent: asking for fewer types changes nothing else.
        let opts = GenerateOptions {
            per_type: 100,
            types: vec![TaskType::SinglePickup],
            queries: 1,
        };
        let only = generate_scene(
            "FloorPlan5",
            &kitchen(),
            &Compatibility::embedded().unwrap(),
            &opts,
            7,
        )
        .unwrap();
        let all: Vec<Case> = generate_all(7)
            .into_iter()
            .filter(|c| c.tasktype == "single_pickup")
            .collect();
        let strip = |v: Vec<Case>| {
            v.into_iter()
                .map(|mut c| {
                    c.identity = IntOrString::Int(0);
                    c
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(only), strip(all));
    }

    #[test]
    fn per_type_and_queries_shape_the_output() {
        let compat = Compatibility::embedded().unwrap();
        let opts = GenerateOptions {
            per_type: 1,
            types: vec![TaskType::SingleSearch, TaskType::PickupAndPut],
            queries: 3,
        };
        let cases = generate_scene("FloorPlan5", &kitchen(), &compat, &opts, 0).unwrap();
        assert_eq!(cases.len(), 6);
        for group in cases.chunks(3) {
            let q: BTreeSet<&str> = group.iter().map(|c| c.taskquery.as_str()).collect();
            assert_eq!(q.len(), 3, "three different paraphrases");
            assert!(
                group
                    .iter()
                    .all(|c| c.task_metadata == group[0].task_metadata
                        && c.instruction_idx == IntOrString::Int(0))
            );
        }
        let zero = GenerateOptions {
            queries: 0,
            ..opts.clone()
        };
        assert!(generate_scene("FloorPlan5", &kitchen(), &compat, &zero, 0).is_err());
    }

    #[test]
    fn capping_keeps_whole_tasks_per_type() {
        let compat = Compatibility::embedded().unwrap();
        let opts = GenerateOptions {
            per_type: 100,
            types: vec![TaskType::SingleSearch, TaskType::SinglePickup],
            queries: 2,
        };
        let cases = generate_scene("FloorPlan5", &kitchen(), &compat, &opts, 0).unwrap();
        let n = |v: &[Case], t: &str| v.iter().filter(|c| c.tasktype == t).count();
        assert!(n(&cases, "single_search") > 2 && n(&cases, "single_pickup") > 2);
        let capped = cap_tasks_per_type(cases.clone(), 1, 0);
        assert_eq!(n(&capped, "single_search"), 2, "one task, two paraphrases");
        assert_eq!(n(&capped, "single_pickup"), 2);
        assert_eq!(capped[0].task_metadata, capped[1].task_metadata);
        // Order kept, deterministic.
        let pos: Vec<usize> = capped
            .iter()
            .map(|c| cases.iter().position(|x| x == c).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(capped, cap_tasks_per_type(cases.clone(), 1, 0));
        assert_eq!(cap_tasks_per_type(cases.clone(), 100, 0), cases);
    }

    #[test]
    fn evaluation_and_unknown_scenes_are_refused() {
        let compat = Compatibility::embedded().unwrap();
        let opts = GenerateOptions::default();
        let mut m = kitchen();
        m.scene_name = "FloorPlan1_physics".into();
        let e = generate_scene("FloorPlan1", &m, &compat, &opts, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("FloorPlan1 is an evaluation scene"), "{e}");
        for s in EVALUATION_SCENES {
            assert!(generate_scene(s, &m, &compat, &opts, 0).is_err());
        }
        let e = generate_scene("Kitchen7", &kitchen(), &compat, &opts, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an iTHOR floor plan"), "{e}");
        // Metadata of another scene.
        let e = generate_scene("FloorPlan6", &kitchen(), &compat, &opts, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("metadata of FloorPlan5"), "{e}");
    }

    #[test]
    fn scene_lists() {
        let train = training_scenes();
        assert_eq!(train.len(), 104);
        assert!(train.iter().all(|s| !is_evaluation_scene(s)));
        assert!(train.contains(&"FloorPlan5".to_string()));
        assert!(train.contains(&"FloorPlan430".to_string()));
        assert_eq!(room_type("FloorPlan205"), Some("living_rooms"));
        assert_eq!(room_type("FloorPlan31"), None);
        assert_eq!(room_type("Floorplan5"), None);
        assert_eq!(scenes_of_room_type("bathrooms").unwrap().len(), 30);
        assert!(scenes_of_room_type("garages").is_none());
    }

    #[test]
    fn task_types_round_trip_their_names() {
        for t in TaskType::ALL {
            assert_eq!(t.as_str().parse::<TaskType>().unwrap(), t);
        }
        let e = "single_serach".parse::<TaskType>().unwrap_err().to_string();
        assert!(e.contains("unknown task type 'single_serach'"), "{e}");
    }

    #[test]
    fn templates_fill_and_name_their_objects() {
        assert_eq!(
            fill(
                templates::ORDERED_NAMES[0],
                &[
                    ("o", "Cup"),
                    ("p", "in"),
                    ("r", "Sink"),
                    ("o2", "Mug"),
                    ("p2", "on"),
                    ("r2", "Desk")
                ]
            ),
            "First, place the Cup in the Sink, then place the Mug on the Desk."
        );
        assert_eq!(article("Apple"), "an");
        assert_eq!(article("Mug"), "a");
        let all = [
            templates::SEARCH_NAMES,
            templates::SEARCH_QUERIES,
            templates::PICKUP_NAMES,
            templates::PICKUP_QUERIES,
            templates::TOGGLE_ON_NAMES,
            templates::TOGGLE_ON_QUERIES,
            templates::TOGGLE_OFF_NAMES,
            templates::TOGGLE_OFF_QUERIES,
            templates::TRANSFER_NAMES,
            templates::TRANSFER_QUERIES,
            templates::ORDERED_NAMES,
            templates::ORDERED_QUERIES,
        ];
        for list in all {
            for t in list {
                assert!(t.contains("{o}"), "{t}");
            }
        }
        for list in [templates::TRANSFER_QUERIES, templates::ORDERED_QUERIES] {
            for t in list {
                assert!(t.contains("{r}"), "{t}");
            }
        }
        for t in templates::ORDERED_QUERIES {
            assert!(t.contains("{o2}") && t.contains("{r2}"), "{t}");
        }
    }

    #[test]
    fn compatibility_reads_the_table_and_reports_errors() {
        let c = Compatibility::embedded().unwrap();
        assert!(c.accepts("Fridge", "Apple"));
        assert!(!c.accepts("Fridge", "Laptop"));
        assert!(
            !c.accepts("Floor", "Apple"),
            "unlisted receptacles accept nothing here"
        );
        let c = Compatibility::from_json(r#"{"Box": ["Pen"]}"#, "t.json").unwrap();
        assert!(c.accepts("Box", "Pen"));
        let e = Compatibility::from_json(r#"{"Box": "Pen"}"#, "t.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.json: field receptacles.Box"), "{e}");
        let e = Compatibility::from_json("[", "t.json")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.json:1:"), "{e}");
        let c = Compatibility::from_pairs([("Mug", &["Pen"][..])]);
        assert!(c.accepts("Mug", "Pen"));
    }

    #[test]
    fn resolution_check_names_the_action_that_goes_astray() {
        let m = kitchen();
        let mut c = generate_all(0)
            .into_iter()
            .find(|c| c.tasktype == "single_pickup" && c.taskname.contains("Spoon"))
            .unwrap();
        // Without its target the counter resolves to the first counter of the scene.
        c.target_objects.clear();
        let e = check_case_resolves(&c, &m).unwrap_err();
        assert!(e.contains("'navigate to CounterTop' resolves to"), "{e}");
    }
}
