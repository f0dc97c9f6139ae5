//! The benchmark's cases: a JSON list of records, as `data/test_809.json` in the reference.
//!
//! Loading checks every field and names the file, the case (index and identity) and the field
//! path of anything wrong (`cases.json: case #3 (identity 17): field
//! task_metadata.actions[1].objectType: expected a string, found 12`).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// An integer or a string: the benchmark writes `identity` as an integer and `instruction_idx`
/// sometimes as an integer, sometimes as a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::Str(s) => f.write_str(s),
        }
    }
}

/// One entry of `task_metadata.actions`: a key action of the case.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseAction {
    /// The verb (`navigate to`, `pickup`, `put`, `open`, `close`, `toggle`, `end`).
    pub action: String,
    /// The object's id ("" for `end`).
    #[serde(rename = "objectId")]
    pub object_id: String,
    /// The object's type ("" for `end`).
    #[serde(rename = "objectType")]
    pub object_type: String,
    /// Unused by the harness; kept for round trips.
    #[serde(default)]
    pub baseaction: String,
    /// The action's reward in the data engine (unused by the metrics).
    #[serde(default)]
    pub reward: i64,
    /// Objects related to this action.
    #[serde(rename = "relatedObject", default)]
    pub related_object: Vec<String>,
}

impl CaseAction {
    /// The key action text: `(action + " " + objectType).strip()`.
    pub fn key(&self) -> String {
        format!("{} {}", self.action, self.object_type)
            .trim()
            .to_string()
    }
}

/// `task_metadata`: the task as the data engine generated it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskMetadata {
    /// The task's canonical name.
    pub taskname: String,
    /// The task type.
    pub tasktype: String,
    /// Where the data engine read the scene metadata (informational).
    #[serde(default)]
    pub metadatapath: String,
    /// The key actions, in order.
    pub actions: Vec<CaseAction>,
    /// The data engine's total reward (unused by the metrics).
    #[serde(default)]
    pub totalreward: i64,
}

/// One benchmark case.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The case's identity (unique within the benchmark).
    pub identity: IntOrString,
    /// The AI2-THOR scene (`FloorPlan1`).
    pub scene: String,
    /// The task type (see [`step_limit`] and [`Category`]).
    pub tasktype: String,
    /// Which paraphrase of the task this is.
    pub instruction_idx: IntOrString,
    /// The task name (the metrics' single_search rule reads it).
    pub taskname: String,
    /// The paraphrase the model sees.
    pub taskquery: String,
    /// The generated task with its key actions.
    pub task_metadata: TaskMetadata,
    /// objectIds that object types resolve to first.
    pub target_objects: Vec<String>,
    /// objectIds related to the task (navigation aims at them; move forward steps toward them).
    pub related_objects: Vec<String>,
    /// Object types navigable from the start.
    pub navigable_objects: Vec<String>,
}

impl Case {
    /// The key actions: `(action + " " + objectType).strip()` for each `task_metadata.actions`.
    pub fn key_actions(&self) -> Vec<String> {
        self.task_metadata
            .actions
            .iter()
            .map(CaseAction::key)
            .collect()
    }

    /// The step limit of the case's task type.
    pub fn step_limit(&self) -> u32 {
        step_limit(&self.tasktype)
    }

    /// The reporting category of the case's task type.
    pub fn category(&self) -> Category {
        Category::of(&self.tasktype)
    }

    /// A one-line label: `17 single_search FloorPlan1 0`, the reference's result folder name
    /// with spaces.
    pub fn label(&self) -> String {
        format!(
            "{} {} {} {}",
            self.identity, self.tasktype, self.scene, self.instruction_idx
        )
    }

    /// Reads a case from JSON, checking every field; `at` says where it came from (for errors).
    pub fn from_value(v: &Value, at: &str) -> Result<Case> {
        let obj = as_object(v, at, "")?;
        let identity: IntOrString = field(obj, at, "", "identity")?;
        let at = format!("{at} (identity {identity})");
        let at = at.as_str();
        let tm = obj
            .get("task_metadata")
            .ok_or_else(|| invalid(at, "task_metadata", "missing"))?;
        let tm_obj = as_object(tm, at, "task_metadata")?;
        let actions_v = tm_obj
            .get("actions")
            .ok_or_else(|| invalid(at, "task_metadata.actions", "missing"))?;
        let actions_arr = actions_v.as_array().ok_or_else(|| {
            invalid(
                at,
                "task_metadata.actions",
                &format!("expected a list, found {}", kind(actions_v)),
            )
        })?;
        let mut actions = Vec::with_capacity(actions_arr.len());
        for (i, a) in actions_arr.iter().enumerate() {
            let p = format!("task_metadata.actions[{i}]");
            let ao = as_object(a, at, &p)?;
            actions.push(CaseAction {
                action: field(ao, at, &p, "action")?,
                object_id: field(ao, at, &p, "objectId")?,
                object_type: field(ao, at, &p, "objectType")?,
                baseaction: opt_field(ao, at, &p, "baseaction")?.unwrap_or_default(),
                reward: opt_field(ao, at, &p, "reward")?.unwrap_or_default(),
                related_object: opt_field(ao, at, &p, "relatedObject")?.unwrap_or_default(),
            });
        }
        if actions.is_empty() {
            return Err(invalid(
                at,
                "task_metadata.actions",
                "is empty: a case needs key actions",
            ));
        }
        let task_metadata = TaskMetadata {
            taskname: field(tm_obj, at, "task_metadata", "taskname")?,
            tasktype: field(tm_obj, at, "task_metadata", "tasktype")?,
            metadatapath: opt_field(tm_obj, at, "task_metadata", "metadatapath")?
                .unwrap_or_default(),
            actions,
            totalreward: opt_field(tm_obj, at, "task_metadata", "totalreward")?.unwrap_or_default(),
        };
        let case = Case {
            identity,
            scene: field(obj, at, "", "scene")?,
            tasktype: field(obj, at, "", "tasktype")?,
            instruction_idx: opt_field(obj, at, "", "instruction_idx")?.unwrap_or_default(),
            taskname: field(obj, at, "", "taskname")?,
            taskquery: field(obj, at, "", "taskquery")?,
            task_metadata,
            target_objects: opt_field(obj, at, "", "target_objects")?.unwrap_or_default(),
            related_objects: opt_field(obj, at, "", "related_objects")?.unwrap_or_default(),
            navigable_objects: opt_field(obj, at, "", "navigable_objects")?.unwrap_or_default(),
        };
        if case.scene.trim().is_empty() {
            return Err(invalid(at, "scene", "is empty"));
        }
        Ok(case)
    }
}

/// Parses JSON text; a syntax error names `source`, line and column.
pub(crate) fn parse_json(text: &str, source: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        Error::Invalid(format!(
            "{source}:{}:{}: not valid JSON: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// Parses a benchmark file's text (a JSON list of cases); `source` names it in errors.
pub fn parse_cases(text: &str, source: &str) -> Result<Vec<Case>> {
    let v = parse_json(text, source)?;
    let arr = v.as_array().ok_or_else(|| {
        Error::Invalid(format!(
            "{source}: expected a JSON list of cases, found {}",
            kind(&v)
        ))
    })?;
    let mut seen = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(arr.len());
    for (i, c) in arr.iter().enumerate() {
        let case = Case::from_value(c, &format!("{source}: case #{i}"))?;
        if let Some(first) = seen.insert(case.identity.clone(), i) {
            return Err(Error::Invalid(format!(
                "{source}: case #{i}: identity {} already used by case #{first}",
                case.identity
            )));
        }
        out.push(case);
    }
    Ok(out)
}

/// Loads a benchmark file (a JSON list of cases).
pub fn load_cases(path: impl AsRef<Path>) -> Result<Vec<Case>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_cases(&text, &path.display().to_string())
}

/// The step limit of a task type (the reference's table; any other type: 36).
pub fn step_limit(tasktype: &str) -> u32 {
    match tasktype {
        "single_search"
        | "single_search_from_closerep"
        | "single_search_navigate_fault"
        | "single_search_unnecessary_repeat"
        | "single_search_from_closerep_open_fault" => 22,
        "single_toggle"
        | "single_toggle_navigate_fault"
        | "single_toggle_unnecessary_repeat"
        | "single_toggle_toggle_fault"
        | "single_pickup"
        | "single_pickup_unnecessary_repeat"
        | "single_pickup_pickup_fault"
        | "single_pickup_navigate_fault"
        | "single_pickup_from_closerep" => 24,
        "pickup_and_put"
        | "pickup_and_put_pickup_fault"
        | "pickup_and_put_navigate_fault"
        | "pickup_and_put_unnecessary_repeat"
        | "pickup_and_put_put_fault"
        | "pickup_and_put_in_closerep"
        | "pickup_from_closerep_and_put"
        | "pickup_from_closerep_and_put_close_fault"
        | "pickup_from_closerep_and_put_in_closerep"
        | "pickup_from_closerep_and_put_in_closerep_open_fault"
        | "pickup_from_closerep_and_put_in_closerep_close_fault" => 30,
        _ => 36,
    }
}

/// The reporting category of a task type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    /// single_search, single_search_from_closerep.
    Search,
    /// single_pickup, single_pickup_from_closerep, single_toggle.
    Manipulate,
    /// pickup_and_put, pickup_and_put_in_closerep, pickup_from_closerep_and_put,
    /// pickup_from_closerep_and_put_in_closerep.
    Transport,
    /// ordered_pickup_two_object_and_put, long-range tasks with dependency relationships.
    Composite,
    /// Any other task type (counted in the overall means only by the reference).
    Other,
}

impl Category {
    /// All categories in report order.
    pub const ALL: [Category; 5] = [
        Category::Search,
        Category::Manipulate,
        Category::Transport,
        Category::Composite,
        Category::Other,
    ];

    /// The category of a task type.
    pub fn of(tasktype: &str) -> Category {
        match tasktype {
            "single_search" | "single_search_from_closerep" => Category::Search,
            "single_pickup" | "single_pickup_from_closerep" | "single_toggle" => {
                Category::Manipulate
            }
            "pickup_and_put"
            | "pickup_and_put_in_closerep"
            | "pickup_from_closerep_and_put"
            | "pickup_from_closerep_and_put_in_closerep" => Category::Transport,
            "long-range tasks with dependency relationships" => Category::Composite,
            t if t.starts_with("ordered_pickup_two_object_and_put") => Category::Composite,
            _ => Category::Other,
        }
    }

    /// The category's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Category::Search => "Search",
            Category::Manipulate => "Manipulate",
            Category::Transport => "Transport",
            Category::Composite => "Composite",
            Category::Other => "Other",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("{n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(a) => format!("a list of {}", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

fn invalid(at: &str, path: &str, problem: &str) -> Error {
    if path.is_empty() {
        Error::Invalid(format!("{at}: {problem}"))
    } else {
        Error::Invalid(format!("{at}: field {path}: {problem}"))
    }
}

fn as_object<'a>(v: &'a Value, at: &str, path: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| invalid(at, path, &format!("expected an object, found {}", kind(v))))
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn expected<T>() -> &'static str {
    let t = std::any::type_name::<T>();
    if t.contains("Vec") {
        "a list of strings"
    } else if t.contains("IntOrString") {
        "an integer or a string"
    } else if t.contains("String") {
        "a string"
    } else if t.contains("i64") {
        "an integer"
    } else {
        "a value of another type"
    }
}

fn field<T: serde::de::DeserializeOwned>(
    obj: &Map<String, Value>,
    at: &str,
    prefix: &str,
    name: &str,
) -> Result<T> {
    match obj.get(name) {
        None => Err(invalid(at, &join(prefix, name), "missing")),
        Some(v) => T::deserialize(v).map_err(|_| {
            invalid(
                at,
                &join(prefix, name),
                &format!("expected {}, found {}", expected::<T>(), kind(v)),
            )
        }),
    }
}

fn opt_field<T: serde::de::DeserializeOwned>(
    obj: &Map<String, Value>,
    at: &str,
    prefix: &str,
    name: &str,
) -> Result<Option<T>> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => field(obj, at, prefix, name).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../tests/data/er-cases-sample.json");

    #[test]
    fn sample_cases_load_with_key_actions() {
        let cases = parse_cases(SAMPLE, "sample").unwrap();
        assert_eq!(cases.len(), 5);
        let c = &cases[1];
        assert_eq!(c.identity, IntOrString::Int(2));
        assert_eq!(
            c.key_actions(),
            vec![
                "navigate to Fridge",
                "open Fridge",
                "pickup Apple",
                "close Fridge",
                "end"
            ]
        );
        assert_eq!(c.step_limit(), 24);
        assert_eq!(c.category(), Category::Manipulate);
        assert_eq!(
            cases[0].key_actions(),
            vec!["navigate to CounterTop", "end"]
        );
        assert_eq!(cases[0].category(), Category::Search);
        assert_eq!(cases[4].category(), Category::Transport);
        assert_eq!(cases[4].step_limit(), 30);
    }

    #[test]
    fn step_limits_and_categories() {
        assert_eq!(step_limit("single_search"), 22);
        assert_eq!(step_limit("single_search_from_closerep"), 22);
        assert_eq!(step_limit("single_toggle"), 24);
        assert_eq!(step_limit("pickup_from_closerep_and_put_in_closerep"), 30);
        assert_eq!(step_limit("ordered_pickup_two_object_and_put"), 36);
        assert_eq!(
            step_limit("long-range tasks with dependency relationships"),
            36
        );
        assert_eq!(step_limit("something new"), 36);
        assert_eq!(
            Category::of("ordered_pickup_two_object_and_put_v2"),
            Category::Composite
        );
        assert_eq!(
            Category::of("long-range tasks with dependency relationships"),
            Category::Composite
        );
        assert_eq!(Category::of("single_toggle"), Category::Manipulate);
        assert_eq!(Category::of("mystery"), Category::Other);
    }

    #[test]
    fn instruction_idx_may_be_a_string() {
        let mut v: Value = serde_json::from_str(SAMPLE).unwrap();
        v[0]["instruction_idx"] = Value::String("3".into());
        let cases = parse_cases(&v.to_string(), "x").unwrap();
        assert_eq!(cases[0].instruction_idx, IntOrString::Str("3".into()));
        assert_eq!(cases[0].label(), "1 single_search FloorPlan5 3");
    }

    #[test]
    fn errors_name_file_case_and_field() {
        let mut v: Value = serde_json::from_str(SAMPLE).unwrap();
        v[3]["task_metadata"]["actions"][1]["objectType"] = Value::from(12);
        let e = parse_cases(&v.to_string(), "cases.json")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "cases.json: case #3 (identity 4): field task_metadata.actions[1].objectType: expected a string, found 12"
        );

        let mut v: Value = serde_json::from_str(SAMPLE).unwrap();
        v[2].as_object_mut().unwrap().remove("taskquery");
        let e = parse_cases(&v.to_string(), "cases.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("case #2 (identity 3): field taskquery: missing"),
            "{e}"
        );

        let mut v: Value = serde_json::from_str(SAMPLE).unwrap();
        v[4]["identity"] = Value::from(1);
        let e = parse_cases(&v.to_string(), "c.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("case #4: identity 1 already used by case #0"),
            "{e}"
        );

        let e = parse_cases("[{]", "bad.json").unwrap_err().to_string();
        assert!(e.starts_with("bad.json:1:"), "{e}");
        let e = parse_cases("{}", "obj.json").unwrap_err().to_string();
        assert!(e.contains("expected a JSON list of cases"), "{e}");
        let e = load_cases("/nonexistent/cases.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/cases.json"), "{e}");
    }

    #[test]
    fn cases_round_trip_through_serde() {
        let cases = parse_cases(SAMPLE, "sample").unwrap();
        let text = serde_json::to_string(&cases).unwrap();
        let back = parse_cases(&text, "again").unwrap();
        assert_eq!(back, cases);
    }
}
