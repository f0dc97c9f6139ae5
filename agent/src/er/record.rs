//! The trajectory record: one per handled reply (and one for `init`, one final `end`), in the
//! reference's shape `{response, action, object, legal_locations, legal_objects, success,
//! errorInfo, images}`.
//!
//! - `action`: the verb (`init`, `navigate to`, `pickup`, `put`, `put in`, `toggle`, `open`,
//!   `close`, `observe`, `move forward`, `end`) or `error` for a reply without a known verb;
//! - `object`: the resolved object type, "No Suitable Object", or null;
//! - `legal_locations` / `legal_objects`: the navigable and interactable sets after the action;
//! - `success`: 1 when the action was carried out (and shown to the model), else 0;
//! - `errorInfo`: the feedback text the model was given for a failure ("" otherwise);
//! - `images`: names of the images shown to the model after this action, `step{N}.png` with N
//!   the executed-step count (init is step 1); the i-th name is the i-th image of the next user
//!   turn. (The reference also lists frames it saved for failed actions; we list only what the
//!   model saw, so failures have none.)
//! - `object_id` (ours, strict mode only): the addressed instance.

use serde::{Deserialize, Serialize};

/// One step of a trajectory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryRecord {
    /// The model's whole reply that led to this record ("" for `init`).
    pub response: String,
    /// The action name (see the module doc).
    pub action: String,
    /// The object type, "No Suitable Object", or null.
    pub object: Option<String>,
    /// The navigable set after the action.
    pub legal_locations: Vec<String>,
    /// The interactable set after the action.
    pub legal_objects: Vec<String>,
    /// 1 when the action was carried out, else 0.
    pub success: u8,
    /// The feedback shown for a failure.
    #[serde(rename = "errorInfo")]
    pub error_info: String,
    /// Names of the images shown after the action.
    pub images: Vec<String>,
    /// The addressed instance, when the model addressed one (strict mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
}

impl TrajectoryRecord {
    /// Whether the record counts as successful.
    pub fn succeeded(&self) -> bool {
        self.success != 0
    }

    /// A record for the tests and metrics examples: action, object, success.
    pub fn simple(action: &str, object: Option<&str>, success: bool) -> Self {
        TrajectoryRecord {
            action: action.to_string(),
            object: object.map(str::to_string),
            success: u8::from(success),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_in_the_reference_shape() {
        let r = TrajectoryRecord {
            response: "<DecisionMaking>observe</DecisionMaking>".into(),
            action: "observe".into(),
            object: None,
            legal_locations: vec!["Fridge".into()],
            legal_objects: vec![],
            success: 1,
            error_info: String::new(),
            images: vec!["step2.png".into()],
            object_id: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "response",
            "action",
            "object",
            "legal_locations",
            "legal_objects",
            "success",
            "errorInfo",
            "images",
        ];
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(v["object"], serde_json::Value::Null);
        assert_eq!(v["success"], 1);
        let back: TrajectoryRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
