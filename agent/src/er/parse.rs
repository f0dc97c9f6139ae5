//! Reading a model reply: the `<DecisionMaking>` tag, the verb and the object.
//!
//! As the reference (`evaluate/utils.py`, `macth_action_item`):
//! - the first match of `<DecisionMaking>(.*?)</DecisionMaking>` (`.` does not match newlines);
//!   no match: the reply is unparseable (action `error`, no object);
//! - a decision starting with `end`, `observe`, `move forward` (or `error`) has no object;
//!   otherwise the object is the last space-separated token when it is an object type of the
//!   scene, else the fuzzy matcher's choice (below) or "No Suitable Object";
//! - the verb is the first of `navigate to`, `pickup`, `put`, `toggle`, `open`, `close`,
//!   `observe`, `move forward`, `end` that the decision starts with; in `er-compat` mode a
//!   decision that contains `put in` anywhere is `put in` (the reference's check); no verb:
//!   action `error` (illegal). The reference also accepts `init` from the model (re-placing the
//!   agent); we do not: `init` is the harness's own action, so a reply `init` is illegal.
//!
//! The fuzzy matcher (ours; the reference asks a sentence-embedding model, BAAI/bge-small-en-v1.5,
//! and accepts its best cosine similarity above 0.2). Tried in order, each against the scene's
//! object types in metadata order (the first wins a tie):
//! 1. the last token, then the phrase after the verb, compared case-insensitively;
//! 2. a small synonym table (`refrigerator` -> Fridge, `tv` -> Television, `couch` -> Sofa,
//!    `trash can` -> GarbageCan, `table` -> DiningTable/CoffeeTable/SideTable/Desk...; the
//!    first listed type present in the scene);
//! 3. normalised equality: lower case, articles (`the`, `a`, `an`) dropped, everything but
//!    letters and digits removed, a plural ending (`-ies`, `-es` after s/x/ch/sh, `-s`) removed
//!    on both sides (`coffee machines` = CoffeeMachine);
//! 4. Jaro-Winkler similarity (strsim) of the normalised forms, best over the last token and the
//!    phrase; accepted at [`FUZZY_THRESHOLD`] or above;
//! 5. otherwise "No Suitable Object".
//!
//! `strict` mode also trims the decision before reading it, takes `put in` only as a prefix, and
//! lets the object be an instance: an objectId present in the scene (`pickup
//! Apple|+01.83|+00.78|-00.65`) or `Type#k`, the k-th object of that type in the scene's start
//! metadata, counting from 1 (`open Cabinet#3`). The object then is the instance's type and the
//! action addresses that instance.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

use super::{Mode, NO_SUITABLE_OBJECT};
use crate::action::Verb;
use crate::thor::Metadata;

/// Jaro-Winkler similarity at or above which the fuzzy matcher accepts a type.
pub const FUZZY_THRESHOLD: f64 = 0.85;

/// The objects of a scene at the start of an episode, in metadata order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SceneIndex {
    /// Object types, each once, in order of first appearance.
    pub types: Vec<String>,
    /// objectIds per type, in metadata order.
    pub ids_by_type: HashMap<String, Vec<String>>,
    /// The type of each objectId.
    pub type_of_id: HashMap<String, String>,
}

impl SceneIndex {
    /// Indexes a scene's start metadata.
    pub fn new(meta: &Metadata) -> Self {
        let mut s = SceneIndex::default();
        for o in &meta.objects {
            if !s.ids_by_type.contains_key(&o.object_type) {
                s.types.push(o.object_type.clone());
            }
            s.ids_by_type
                .entry(o.object_type.clone())
                .or_default()
                .push(o.object_id.clone());
            s.type_of_id
                .insert(o.object_id.clone(), o.object_type.clone());
        }
        s
    }

    /// An index over a list of types (no instances), for parsing without a scene.
    pub fn from_types<S: AsRef<str>>(types: &[S]) -> Self {
        let mut s = SceneIndex::default();
        for t in types {
            let t = t.as_ref();
            if !s.ids_by_type.contains_key(t) {
                s.types.push(t.to_string());
                s.ids_by_type.insert(t.to_string(), Vec::new());
            }
        }
        s
    }

    /// Whether the scene has objects of this type.
    pub fn has_type(&self, t: &str) -> bool {
        self.ids_by_type.contains_key(t)
    }

    /// The first objectId of a type in the start metadata.
    pub fn first_of_type(&self, t: &str) -> Option<&str> {
        self.ids_by_type
            .get(t)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// A reply, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedReply {
    /// The text inside the tags; `None` when the reply has no tag.
    pub raw_action: Option<String>,
    /// The verb; `None` when the decision starts with no listed verb (or there is no tag).
    pub verb: Option<Verb>,
    /// The resolved object type, "No Suitable Object", or `None` for object-less decisions.
    pub item: Option<String>,
    /// The addressed instance (strict mode only).
    pub object_id: Option<String>,
}

impl ParsedReply {
    /// The action as the trajectory record names it: the verb, or `error`.
    pub fn action_name(&self) -> &'static str {
        self.verb.map(|v| v.as_str()).unwrap_or("error")
    }

    /// The decision text as the feedback strings quote it (the reference's `raw_action`, which
    /// is the word `response` when the reply had no tag).
    pub fn raw_text(&self) -> &str {
        self.raw_action.as_deref().unwrap_or("response")
    }
}

fn decision_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"<DecisionMaking>(.*?)</DecisionMaking>").expect("static regex is valid")
    })
}

/// The text of the first `<DecisionMaking>...</DecisionMaking>` on one line, if any.
pub fn decision_text(reply: &str) -> Option<&str> {
    decision_regex()
        .captures(reply)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

const VERBS_IN_ORDER: [Verb; 9] = [
    Verb::NavigateTo,
    Verb::Pickup,
    Verb::Put,
    Verb::Toggle,
    Verb::Open,
    Verb::Close,
    Verb::Observe,
    Verb::MoveForward,
    Verb::End,
];

/// The verb of a decision text.
pub fn verb_of(raw: &str, mode: Mode) -> Option<Verb> {
    match mode {
        Mode::ErCompat => {
            if raw.contains("put in") {
                return Some(Verb::PutIn);
            }
            VERBS_IN_ORDER
                .into_iter()
                .find(|v| raw.starts_with(v.as_str()))
        }
        Mode::Strict => {
            if raw.starts_with("put in") {
                return Some(Verb::PutIn);
            }
            VERBS_IN_ORDER
                .into_iter()
                .find(|v| raw.starts_with(v.as_str()))
        }
    }
}

/// Reads a reply.
pub fn parse_reply(reply: &str, scene: &SceneIndex, mode: Mode) -> ParsedReply {
    let Some(raw) = decision_text(reply) else {
        return ParsedReply {
            raw_action: None,
            verb: None,
            item: None,
            object_id: None,
        };
    };
    let text = match mode {
        Mode::ErCompat => raw,
        Mode::Strict => raw.trim(),
    };
    let verb = verb_of(text, mode);
    let objectless = ["end", "observe", "move forward", "error"]
        .iter()
        .any(|p| text.starts_with(p));
    let (item, object_id) = if objectless {
        (None, None)
    } else {
        let last = text.split(' ').next_back().unwrap_or("").trim();
        let instance = if mode == Mode::Strict {
            resolve_instance(last, scene)
        } else {
            None
        };
        match instance {
            Some((t, id)) => (Some(t), id),
            None if scene.has_type(last) => (Some(last.to_string()), None),
            None => {
                let phrase = match verb {
                    Some(v) => text.strip_prefix(v.as_str()).unwrap_or(text),
                    None => text,
                };
                (Some(match_object(phrase.trim(), last, scene)), None)
            }
        }
    };
    ParsedReply {
        raw_action: Some(raw.to_string()),
        verb,
        item,
        object_id,
    }
}

/// Strict-mode instance addressing: an objectId in the scene, or `Type#k` (1-based). Returns the
/// type and the id; `Some((NO_SUITABLE_OBJECT, None))` for an address that names nothing.
fn resolve_instance(token: &str, scene: &SceneIndex) -> Option<(String, Option<String>)> {
    if token.contains('|') {
        return Some(match scene.type_of_id.get(token) {
            Some(t) => (t.clone(), Some(token.to_string())),
            None => (NO_SUITABLE_OBJECT.to_string(), None),
        });
    }
    let (t, k) = token.split_once('#')?;
    let k: usize = k.parse().ok()?;
    let ty = if scene.has_type(t) {
        t.to_string()
    } else {
        let m = match_object(t, t, scene);
        if m == NO_SUITABLE_OBJECT {
            return Some((m, None));
        }
        m
    };
    match scene
        .ids_by_type
        .get(&ty)
        .and_then(|ids| ids.get(k.checked_sub(1)?))
    {
        Some(id) => Some((ty, Some(id.clone()))),
        None => Some((NO_SUITABLE_OBJECT.to_string(), None)),
    }
}

/// Words that name an object type in other words: (normalised phrase, types to try in order).
const SYNONYMS: &[(&str, &[&str])] = &[
    ("refrigerator", &["Fridge"]),
    ("icebox", &["Fridge"]),
    ("tv", &["Television"]),
    ("telly", &["Television"]),
    ("couch", &["Sofa"]),
    ("trashcan", &["GarbageCan"]),
    ("trash", &["GarbageCan"]),
    ("bin", &["GarbageCan"]),
    ("dustbin", &["GarbageCan"]),
    ("wastebasket", &["GarbageCan"]),
    ("stove", &["StoveBurner"]),
    ("oven", &["Microwave", "StoveBurner"]),
    ("counter", &["CounterTop"]),
    ("sink", &["SinkBasin", "Sink"]),
    ("bathtub", &["BathtubBasin", "Bathtub"]),
    ("tub", &["BathtubBasin", "Bathtub"]),
    (
        "table",
        &["DiningTable", "CoffeeTable", "SideTable", "Desk"],
    ),
    ("lamp", &["DeskLamp", "FloorLamp"]),
    ("phone", &["CellPhone"]),
    ("mobile", &["CellPhone"]),
    ("smartphone", &["CellPhone"]),
    ("remote", &["RemoteControl"]),
    ("key", &["KeyChain"]),
    ("keys", &["KeyChain"]),
    ("soap", &["SoapBar", "SoapBottle"]),
    ("towel", &["Towel", "HandTowel"]),
    ("computer", &["Laptop", "Desktop"]),
    ("coffeemaker", &["CoffeeMachine"]),
    ("light", &["LightSwitch", "DeskLamp", "FloorLamp"]),
    ("cupboard", &["Cabinet"]),
    ("closet", &["Cabinet"]),
    ("nightstand", &["SideTable"]),
    ("glass", &["Cup"]),
    ("trashbin", &["GarbageCan"]),
    ("garbage", &["GarbageCan"]),
];

/// Lower case, letters and digits only, articles dropped, a plural ending removed.
pub fn normalise(s: &str) -> String {
    let words: Vec<String> = s
        .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .filter(|w| !matches!(w.as_str(), "the" | "a" | "an"))
        .collect();
    let joined: String = words
        .concat()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    singular(&joined)
}

fn singular(s: &str) -> String {
    let n = s.len();
    if n > 4 && s.ends_with("ies") {
        return format!("{}y", &s[..n - 3]);
    }
    if n > 3 && s.ends_with("es") {
        let stem = &s[..n - 2];
        if stem.ends_with('s')
            || stem.ends_with('x')
            || stem.ends_with("ch")
            || stem.ends_with("sh")
        {
            return stem.to_string();
        }
    }
    if n > 3 && s.ends_with('s') && !s.ends_with("ss") {
        return s[..n - 1].to_string();
    }
    s.to_string()
}

/// The fuzzy matcher: the scene type `phrase` (the decision after its verb) or its `last` token
/// names, or "No Suitable Object". See the module doc for the rules.
pub fn match_object(phrase: &str, last: &str, scene: &SceneIndex) -> String {
    let candidates: Vec<&str> = [last, phrase]
        .into_iter()
        .filter(|c| !c.trim().is_empty())
        .collect();
    if candidates.is_empty() {
        return NO_SUITABLE_OBJECT.to_string();
    }
    // 1. Case-insensitive exact.
    for c in &candidates {
        if let Some(t) = scene
            .types
            .iter()
            .find(|t| t.eq_ignore_ascii_case(c.trim()))
        {
            return t.clone();
        }
    }
    let norm_types: Vec<String> = scene.types.iter().map(|t| normalise(t)).collect();
    let norm_cands: Vec<String> = candidates.iter().map(|c| normalise(c)).collect();
    // 2. Synonyms.
    for nc in &norm_cands {
        for (word, types) in SYNONYMS {
            if nc == word
                && let Some(t) = types.iter().find(|t| scene.has_type(t))
            {
                return t.to_string();
            }
        }
    }
    // 3. Normalised equality.
    for nc in &norm_cands {
        if let Some(i) = norm_types.iter().position(|t| t == nc) {
            return scene.types[i].clone();
        }
    }
    // 4. Similarity.
    let mut best: Option<(f64, usize)> = None;
    for nc in norm_cands.iter().filter(|c| !c.is_empty()) {
        for (i, nt) in norm_types.iter().enumerate() {
            let s = strsim::jaro_winkler(nc, nt);
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, i));
            }
        }
    }
    match best {
        Some((s, i)) if s >= FUZZY_THRESHOLD => scene.types[i].clone(),
        _ => NO_SUITABLE_OBJECT.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene() -> SceneIndex {
        SceneIndex::from_types(&[
            "CounterTop",
            "Fridge",
            "Apple",
            "CoffeeMachine",
            "Cabinet",
            "GarbageCan",
            "Television",
            "SinkBasin",
            "Sink",
            "Bread",
            "Pot",
            "Floor",
        ])
    }

    type Row = (Option<String>, &'static str, Option<String>);

    fn p(reply: &str) -> Row {
        let r = parse_reply(reply, &scene(), Mode::ErCompat);
        (r.raw_action.clone(), r.action_name(), r.item)
    }

    #[test]
    fn reply_table() {
        let nso = Some(NO_SUITABLE_OBJECT.to_string());
        let s = |x: &str| Some(x.to_string());
        let cases: Vec<(&str, Row)> = vec![
            // Well-formed.
            (
                "I think.<DecisionMaking>navigate to CounterTop</DecisionMaking>",
                (s("navigate to CounterTop"), "navigate to", s("CounterTop")),
            ),
            (
                "<DecisionMaking>pickup Apple</DecisionMaking>",
                (s("pickup Apple"), "pickup", s("Apple")),
            ),
            (
                "<DecisionMaking>observe</DecisionMaking>",
                (s("observe"), "observe", None),
            ),
            (
                "<DecisionMaking>move forward</DecisionMaking>",
                (s("move forward"), "move forward", None),
            ),
            (
                "<DecisionMaking>end</DecisionMaking>",
                (s("end"), "end", None),
            ),
            (
                "<DecisionMaking>toggle CoffeeMachine</DecisionMaking>",
                (s("toggle CoffeeMachine"), "toggle", s("CoffeeMachine")),
            ),
            (
                "<DecisionMaking>open Fridge</DecisionMaking>",
                (s("open Fridge"), "open", s("Fridge")),
            ),
            (
                "<DecisionMaking>close Fridge</DecisionMaking>",
                (s("close Fridge"), "close", s("Fridge")),
            ),
            (
                "<DecisionMaking>put GarbageCan</DecisionMaking>",
                (s("put GarbageCan"), "put", s("GarbageCan")),
            ),
            // `put in` before `put`.
            (
                "<DecisionMaking>put in Fridge</DecisionMaking>",
                (s("put in Fridge"), "put in", s("Fridge")),
            ),
            // The reference's check: `put in` anywhere wins.
            (
                "<DecisionMaking>navigate to put in Pot</DecisionMaking>",
                (s("navigate to put in Pot"), "put in", s("Pot")),
            ),
            // Missing tag, unclosed tag, tag split over lines.
            ("navigate to Fridge", (None, "error", None)),
            ("<DecisionMaking>navigate to Fridge", (None, "error", None)),
            (
                "<DecisionMaking>navigate to\nFridge</DecisionMaking>",
                (None, "error", None),
            ),
            // Two tags: the first counts.
            (
                "<DecisionMaking>observe</DecisionMaking> then <DecisionMaking>end</DecisionMaking>",
                (s("observe"), "observe", None),
            ),
            // Unknown verb: illegal, but the object is still matched (as the reference does).
            (
                "<DecisionMaking>grab Apple</DecisionMaking>",
                (s("grab Apple"), "error", s("Apple")),
            ),
            (
                "<DecisionMaking>init</DecisionMaking>",
                (s("init"), "error", nso.clone()),
            ),
            // Leading space: no verb in er-compat.
            (
                "<DecisionMaking> observe</DecisionMaking>",
                (s(" observe"), "error", nso.clone()),
            ),
            // Unknown object.
            (
                "<DecisionMaking>pickup Xylophone</DecisionMaking>",
                (s("pickup Xylophone"), "pickup", nso.clone()),
            ),
            // Fuzzy: case, spacing, plurals, synonyms, typos.
            (
                "<DecisionMaking>navigate to countertop</DecisionMaking>",
                (s("navigate to countertop"), "navigate to", s("CounterTop")),
            ),
            (
                "<DecisionMaking>navigate to the coffee machine</DecisionMaking>",
                (
                    s("navigate to the coffee machine"),
                    "navigate to",
                    s("CoffeeMachine"),
                ),
            ),
            (
                "<DecisionMaking>open Cabinets</DecisionMaking>",
                (s("open Cabinets"), "open", s("Cabinet")),
            ),
            (
                "<DecisionMaking>navigate to refrigerator</DecisionMaking>",
                (s("navigate to refrigerator"), "navigate to", s("Fridge")),
            ),
            (
                "<DecisionMaking>navigate to trash can</DecisionMaking>",
                (s("navigate to trash can"), "navigate to", s("GarbageCan")),
            ),
            (
                "<DecisionMaking>navigate to sink</DecisionMaking>",
                (s("navigate to sink"), "navigate to", s("Sink")),
            ),
            (
                "<DecisionMaking>pickup Appel</DecisionMaking>",
                (s("pickup Appel"), "pickup", s("Apple")),
            ),
            (
                "<DecisionMaking>navigate to Telivision</DecisionMaking>",
                (s("navigate to Telivision"), "navigate to", s("Television")),
            ),
            (
                "<DecisionMaking>navigate to</DecisionMaking>",
                (s("navigate to"), "navigate to", nso.clone()),
            ),
        ];
        for (reply, want) in cases {
            assert_eq!(p(reply), want, "reply {reply:?}");
        }
    }

    #[test]
    fn strict_mode_trims_and_addresses_instances() {
        let mut sc = scene();
        for (id, t) in [
            ("Cabinet|+00.10|+01.00|-02.00", "Cabinet"),
            ("Cabinet|+00.90|+01.00|-02.00", "Cabinet"),
        ] {
            sc.ids_by_type.get_mut(t).unwrap().push(id.into());
            sc.type_of_id.insert(id.into(), t.into());
        }
        let r = parse_reply(
            "<DecisionMaking> open Cabinet#2 </DecisionMaking>",
            &sc,
            Mode::Strict,
        );
        assert_eq!(r.verb, Some(Verb::Open));
        assert_eq!(r.item.as_deref(), Some("Cabinet"));
        assert_eq!(r.object_id.as_deref(), Some("Cabinet|+00.90|+01.00|-02.00"));
        let r = parse_reply(
            "<DecisionMaking>open Cabinet|+00.10|+01.00|-02.00</DecisionMaking>",
            &sc,
            Mode::Strict,
        );
        assert_eq!(r.object_id.as_deref(), Some("Cabinet|+00.10|+01.00|-02.00"));
        assert_eq!(r.item.as_deref(), Some("Cabinet"));
        let r = parse_reply(
            "<DecisionMaking>open Cabinet#3</DecisionMaking>",
            &sc,
            Mode::Strict,
        );
        assert_eq!(r.item.as_deref(), Some(NO_SUITABLE_OBJECT));
        let r = parse_reply(
            "<DecisionMaking>open Cabinet|9|9|9</DecisionMaking>",
            &sc,
            Mode::Strict,
        );
        assert_eq!(r.item.as_deref(), Some(NO_SUITABLE_OBJECT));
        // `put in` only as a prefix in strict mode.
        let r = parse_reply(
            "<DecisionMaking>navigate to put in Pot</DecisionMaking>",
            &sc,
            Mode::Strict,
        );
        assert_eq!(r.verb, Some(Verb::NavigateTo));
        let r = parse_reply(
            "<DecisionMaking> observe</DecisionMaking>",
            &sc,
            Mode::Strict,
        );
        assert_eq!(r.verb, Some(Verb::Observe));
        assert_eq!(r.item, None);
        // Instance syntax means nothing in er-compat.
        let r = parse_reply(
            "<DecisionMaking>open Cabinet#2</DecisionMaking>",
            &sc,
            Mode::ErCompat,
        );
        assert_eq!(r.object_id, None);
        assert_eq!(r.item.as_deref(), Some("Cabinet"));
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalise("The Coffee Machines"), "coffeemachine");
        assert_eq!(normalise("boxes"), "box");
        assert_eq!(normalise("Strawberries"), "strawberry");
        assert_eq!(normalise("Glass"), "glass");
        assert_eq!(normalise("Garbage_Can"), "garbagecan");
        assert_eq!(
            ParsedReply {
                raw_action: None,
                verb: None,
                item: None,
                object_id: None
            }
            .raw_text(),
            "response"
        );
    }
}
