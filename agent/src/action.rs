//! The action language: Embodied-Reasoner's discrete verbs and Robot-R1-style keypoints.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A verb of the discrete action language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    /// The harness's internal first action (place the agent).
    Init,
    /// `navigate to X`.
    NavigateTo,
    /// `pickup X`.
    Pickup,
    /// `put X`.
    Put,
    /// `put in X` (the API-model variant of `put`).
    PutIn,
    /// `open X`.
    Open,
    /// `close X`.
    Close,
    /// `toggle X`.
    Toggle,
    /// `observe`.
    Observe,
    /// `move forward`.
    MoveForward,
    /// `end`.
    End,
}

impl Verb {
    /// All verbs a model may emit, longest first where one is a prefix of another
    /// (`put in` before `put`).
    pub const EMITTABLE: [Verb; 10] = [
        Verb::NavigateTo,
        Verb::Pickup,
        Verb::PutIn,
        Verb::Put,
        Verb::Open,
        Verb::Close,
        Verb::Toggle,
        Verb::Observe,
        Verb::MoveForward,
        Verb::End,
    ];

    /// The verb as the action language writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verb::Init => "init",
            Verb::NavigateTo => "navigate to",
            Verb::Pickup => "pickup",
            Verb::Put => "put",
            Verb::PutIn => "put in",
            Verb::Open => "open",
            Verb::Close => "close",
            Verb::Toggle => "toggle",
            Verb::Observe => "observe",
            Verb::MoveForward => "move forward",
            Verb::End => "end",
        }
    }

    /// Parses a verb written exactly as the action language writes it.
    pub fn from_str_exact(s: &str) -> Option<Verb> {
        Verb::EMITTABLE
            .iter()
            .chain(std::iter::once(&Verb::Init))
            .copied()
            .find(|v| v.as_str() == s)
    }

    /// Whether the verb takes an object argument.
    pub fn takes_object(&self) -> bool {
        !matches!(
            self,
            Verb::Init | Verb::Observe | Verb::MoveForward | Verb::End
        )
    }

    /// Whether the verb interacts with an object (as opposed to moving or looking).
    pub fn is_interaction(&self) -> bool {
        matches!(
            self,
            Verb::Pickup | Verb::Put | Verb::PutIn | Verb::Open | Verb::Close | Verb::Toggle
        )
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A discrete action: a verb and, for most verbs, an object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiscreteAction {
    /// The verb.
    pub verb: Verb,
    /// The object type as written (`CounterTop`), for verbs that take one.
    pub object_type: Option<String>,
    /// The resolved instance, when known (strict mode addresses instances).
    pub object_id: Option<String>,
}

impl DiscreteAction {
    /// An action with no object.
    pub fn bare(verb: Verb) -> Self {
        Self {
            verb,
            object_type: None,
            object_id: None,
        }
    }

    /// An action on an object type.
    pub fn on(verb: Verb, object_type: impl Into<String>) -> Self {
        Self {
            verb,
            object_type: Some(object_type.into()),
            object_id: None,
        }
    }

    /// The object type, or "" for object-less verbs.
    pub fn object_str(&self) -> &str {
        self.object_type.as_deref().unwrap_or("")
    }
}

impl fmt::Display for DiscreteAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.object_type {
            Some(o) => write!(f, "{} {}", self.verb, o),
            None => write!(f, "{}", self.verb),
        }
    }
}

/// What to do with the gripper when a keypoint is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GripperIntent {
    /// Leave the gripper as it is.
    #[default]
    Keep,
    /// Open the gripper.
    Open,
    /// Close the gripper.
    Close,
}

/// A keypoint action: move the end effector to a position in a named frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeypointAction {
    /// The target position, metres.
    pub position: [f64; 3],
    /// The frame the position is stated in (`task`, `base`, `world`).
    pub frame: String,
    /// The gripper intent at the keypoint.
    pub gripper: GripperIntent,
    /// The multiple-choice label the model picked (`A`..`D`), when it chose among candidates.
    pub choice: Option<char>,
}

/// One action of either language.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A discrete action.
    Discrete(DiscreteAction),
    /// A keypoint.
    Keypoint(KeypointAction),
}

impl Action {
    /// The discrete action, if this is one.
    pub fn as_discrete(&self) -> Option<&DiscreteAction> {
        match self {
            Action::Discrete(d) => Some(d),
            Action::Keypoint(_) => None,
        }
    }
}

impl From<DiscreteAction> for Action {
    fn from(d: DiscreteAction) -> Self {
        Action::Discrete(d)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Discrete(d) => d.fmt(f),
            Action::Keypoint(k) => {
                write!(
                    f,
                    "keypoint [{:.3}, {:.3}, {:.3}] in {}",
                    k.position[0], k.position[1], k.position[2], k.frame
                )?;
                if let Some(c) = k.choice {
                    write!(f, " (choice {c})")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_round_trip_and_display() {
        for v in Verb::EMITTABLE {
            assert_eq!(Verb::from_str_exact(v.as_str()), Some(v));
        }
        assert_eq!(Verb::from_str_exact("init"), Some(Verb::Init));
        assert_eq!(Verb::from_str_exact("fly"), None);
        assert_eq!(
            DiscreteAction::on(Verb::NavigateTo, "Fridge").to_string(),
            "navigate to Fridge"
        );
        assert_eq!(DiscreteAction::bare(Verb::End).to_string(), "end");
        // `put in` must be tried before `put` when matching prefixes.
        let pi = Verb::EMITTABLE
            .iter()
            .position(|v| *v == Verb::PutIn)
            .unwrap();
        let p = Verb::EMITTABLE
            .iter()
            .position(|v| *v == Verb::Put)
            .unwrap();
        assert!(pi < p);
    }

    #[test]
    fn actions_serialise_with_a_kind_tag() {
        let a: Action = DiscreteAction::on(Verb::Pickup, "Apple").into();
        let j = serde_json::to_value(&a).unwrap();
        assert_eq!(j["kind"], "discrete");
        assert_eq!(j["verb"], "pickup");
        let back: Action = serde_json::from_value(j).unwrap();
        assert_eq!(back, a);
    }
}
