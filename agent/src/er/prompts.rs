//! The conversation strings, verbatim, and Python `str.format` semantics.
//!
//! The strings live in `agent/data/er/prompts.json` (embedded at build time), copied from the
//! reference (`evaluate/prompt.py`, and the feedback f-strings of `evaluate/evaluate.py`), Mulan
//! PSL v2; see `agent/data/er/NOTICE`. Trained checkpoints expect them exactly.
//!
//! Which string is used when (the reference's `get_trajectory`):
//! - system: `EMBODIED_SYSTEM_PROMPT`;
//! - first user turn: the start image, then `TASK_PREFIX_PUT` (or `TASK_PREFIX_PUT_IN`, the API
//!   variant) formatted with `task_name` = the case's `taskquery`;
//! - after a successful action: its image(s), then `USER_IMAGE_PREFIX` with `action` = the verb
//!   and the resolved object (`navigate to CounterTop`), or `USER_IMAGE_PREFIX_MOVE_FORWARD`
//!   with `action` = `move forward`;
//! - after an unparseable reply or one with no known verb: `INVALID_ACTION_PROMPT` +
//!   `USER_IMAGE_PREFIX_ERROR`, no image;
//! - after a failed action: a `FEEDBACK_*` string + `USER_IMAGE_PREFIX_ERROR`, no image:
//!   for `navigate to`, `FEEDBACK_NAVIGATE_NO_MATCH` when the object is "No Suitable Object",
//!   else `FEEDBACK_NAVIGATE_NOT_NAVIGABLE`; for every other verb (observe and move forward
//!   included), `FEEDBACK_INTERACT_NO_MATCH` / `FEEDBACK_INTERACT_UNAVAILABLE` likewise. In
//!   these, `action` is the verb alone, `item` the resolved object (`None` when there is none,
//!   as Python prints it) and `raw_action` the text inside the DecisionMaking tags.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The embedded prompts file.
pub const PROMPTS_JSON: &str = include_str!("../../data/er/prompts.json");

/// Which task prefix the first user turn uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptVariant {
    /// `TASK_PREFIX_PUT` (`"put <object>"`), what local checkpoints were trained with.
    #[default]
    Put,
    /// `TASK_PREFIX_PUT_IN` (`"put in <object>"`), the reference's API-model variant.
    PutIn,
}

impl PromptVariant {
    /// The variant's name (`put`, `put-in`).
    pub fn as_str(&self) -> &'static str {
        match self {
            PromptVariant::Put => "put",
            PromptVariant::PutIn => "put-in",
        }
    }
}

impl fmt::Display for PromptVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PromptVariant {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "put" => Ok(PromptVariant::Put),
            "put-in" | "put_in" => Ok(PromptVariant::PutIn),
            other => Err(Error::Invalid(format!(
                "unknown prompt variant '{other}' (expected 'put' or 'put-in')"
            ))),
        }
    }
}

/// The conversation strings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct Prompts {
    pub EMBODIED_SYSTEM_PROMPT: String,
    pub TASK_PREFIX_PUT: String,
    pub TASK_PREFIX_PUT_IN: String,
    pub USER_IMAGE_PREFIX: String,
    pub USER_IMAGE_PREFIX_ERROR: String,
    pub USER_IMAGE_PREFIX_MOVE_FORWARD: String,
    pub INVALID_ACTION_PROMPT: String,
    pub FEEDBACK_NAVIGATE_NO_MATCH: String,
    pub FEEDBACK_NAVIGATE_NOT_NAVIGABLE: String,
    pub FEEDBACK_INTERACT_NO_MATCH: String,
    pub FEEDBACK_INTERACT_UNAVAILABLE: String,
    /// Attribution.
    #[serde(rename = "_note")]
    pub note: String,
}

impl Prompts {
    /// The embedded strings (parsed once).
    pub fn get() -> Result<&'static Prompts> {
        static P: OnceLock<std::result::Result<Prompts, String>> = OnceLock::new();
        P.get_or_init(|| {
            serde_json::from_str(PROMPTS_JSON)
                .map_err(|e| format!("agent/data/er/prompts.json: {e}"))
        })
        .as_ref()
        .map_err(|e| Error::Invalid(e.clone()))
    }

    /// The first user turn's text (after the start image).
    pub fn task_prefix(&self, variant: PromptVariant, task_name: &str) -> Result<String> {
        let t = match variant {
            PromptVariant::Put => &self.TASK_PREFIX_PUT,
            PromptVariant::PutIn => &self.TASK_PREFIX_PUT_IN,
        };
        py_format(t, &[("task_name", task_name)])
    }

    /// The text after a successful action (after its image).
    pub fn after_success(&self, action_text: &str, move_forward: bool) -> Result<String> {
        let t = if move_forward {
            &self.USER_IMAGE_PREFIX_MOVE_FORWARD
        } else {
            &self.USER_IMAGE_PREFIX
        };
        py_format(t, &[("action", action_text)])
    }

    /// The text after an unparseable reply or one without a known verb.
    pub fn after_invalid(&self) -> String {
        format!(
            "{}{}",
            self.INVALID_ACTION_PROMPT, self.USER_IMAGE_PREFIX_ERROR
        )
    }

    /// The feedback string for a failed action (without `USER_IMAGE_PREFIX_ERROR`).
    ///
    /// `verb` is the action as the reference names it (`navigate to`, `pickup`...), `item` the
    /// resolved object (`None` prints as Python's `None`), `raw_action` the decision text.
    pub fn failure_feedback(
        &self,
        verb: &str,
        item: Option<&str>,
        raw_action: &str,
    ) -> Result<String> {
        let item_s = item.unwrap_or("None");
        let no_match = item == Some(super::NO_SUITABLE_OBJECT);
        let args = [
            ("action", verb),
            ("item", item_s),
            ("raw_action", raw_action),
        ];
        if verb.contains("navigate to") {
            if no_match {
                py_format(&self.FEEDBACK_NAVIGATE_NO_MATCH, &args)
            } else {
                py_format(&self.FEEDBACK_NAVIGATE_NOT_NAVIGABLE, &args)
            }
        } else if no_match {
            py_format(&self.FEEDBACK_INTERACT_NO_MATCH, &args)
        } else {
            py_format(&self.FEEDBACK_INTERACT_UNAVAILABLE, &args)
        }
    }

    /// The whole user text after a failed action.
    pub fn after_failure(
        &self,
        verb: &str,
        item: Option<&str>,
        raw_action: &str,
    ) -> Result<String> {
        Ok(format!(
            "{}{}",
            self.failure_feedback(verb, item, raw_action)?,
            self.USER_IMAGE_PREFIX_ERROR
        ))
    }
}

/// Python's `str.format` with keyword arguments: `{name}` is replaced, `{{` and `}}` are literal
/// braces. Positional fields, format specs and conversions are not supported (the prompts use
/// none); a missing key, an unmatched brace or an unsupported field is an error.
pub fn py_format(template: &str, args: &[(&str, &str)]) -> Result<String> {
    let map: HashMap<&str, &str> = args.iter().copied().collect();
    let mut out = String::with_capacity(template.len() + 64);
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => {
                if let Some(&(_, '{')) = chars.peek() {
                    chars.next();
                    out.push('{');
                    continue;
                }
                let rest = &template[i + 1..];
                let end = rest.find('}').ok_or_else(|| {
                    Error::Invalid(format!("format string: '{{' at byte {i} is never closed"))
                })?;
                let name = &rest[..end];
                if name.is_empty() || name.contains(['{', ':', '!', '[', '.']) {
                    return Err(Error::Invalid(format!(
                        "format string: unsupported field '{{{name}}}' at byte {i}"
                    )));
                }
                let value = map.get(name).ok_or_else(|| {
                    Error::Invalid(format!("format string: no value for '{{{name}}}'"))
                })?;
                out.push_str(value);
                // Skip the field's characters and the closing brace.
                for _ in 0..name.chars().count() + 1 {
                    chars.next();
                }
            }
            '}' => {
                if let Some(&(_, '}')) = chars.peek() {
                    chars.next();
                    out.push('}');
                } else {
                    return Err(Error::Invalid(format!(
                        "format string: single '}}' at byte {i}"
                    )));
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn py_format_semantics() {
        assert_eq!(py_format("a {x} b", &[("x", "1")]).unwrap(), "a 1 b");
        assert_eq!(
            py_format("{{literal}} {x}", &[("x", "é")]).unwrap(),
            "{literal} é"
        );
        assert_eq!(py_format("{x}{x}}}", &[("x", "{y}")]).unwrap(), "{y}{y}}");
        assert!(py_format("{missing}", &[]).is_err());
        assert!(py_format("open {", &[]).is_err());
        assert!(py_format("close }", &[]).is_err());
        assert!(py_format("{x:>3}", &[("x", "1")]).is_err());
        // Unicode before a field keeps byte offsets right.
        assert_eq!(py_format("ü{a}ß", &[("a", "→")]).unwrap(), "ü→ß");
    }

    #[test]
    fn embedded_prompts_load_and_keep_attribution() {
        let p = Prompts::get().unwrap();
        assert!(p.note.contains("Mulan PSL v2"));
        assert!(
            p.EMBODIED_SYSTEM_PROMPT
                .starts_with("You are a robot in given room.")
        );
    }

    #[test]
    fn task_prefix_formats_the_query_and_unescapes_braces() {
        let p = Prompts::get().unwrap();
        let t = p
            .task_prefix(PromptVariant::Put, "Find the Bread.")
            .unwrap();
        assert!(
            t.contains("Task: \"Find the Bread.\"\nAvailable_Actions: {\n\"navigate to <object>\"")
        );
        assert!(t.contains("\"put <object>\": Put the item"));
        assert!(t.contains("please output \"end\".}\nBefore making"));
        assert!(!t.contains("{{") && !t.contains("}}"));
        let t = p.task_prefix(PromptVariant::PutIn, "x").unwrap();
        assert!(t.contains("\"put in <object>\": Put the item"));
    }

    #[test]
    fn turn_texts_are_the_reference_strings() {
        let p = Prompts::get().unwrap();
        assert_eq!(
            p.after_success("navigate to CounterTop", false)
                .unwrap()
                .lines()
                .next()
                .unwrap(),
            "After executing your previous \"navigate to CounterTop\", you get this new image above."
        );
        let mf = p.after_success("move forward", true).unwrap();
        assert!(mf.contains("You can use \"navigate to <object>\" to reach nearby"));
        assert!(p.after_invalid().starts_with(
            "Action is illegal. Please select an action from the Available_Actions.To complete your task"
        ));
        assert_eq!(
            p.failure_feedback(
                "navigate to",
                Some("No Suitable Object"),
                "navigate to the thing"
            )
            .unwrap(),
            "<|feedback|>Action: \"navigate to\" is illegal, the name of the navigated object doesn't quite match the obejct in the image, please try navigating to another object first.\n"
        );
        assert_eq!(
            p.failure_feedback("navigate to", Some("Apple"), "navigate to Apple")
                .unwrap(),
            "<|feedback|>Action: \"navigate to\" is illegal, \"Apple\" is the most relevant item in this room and \"navigate to Apple\". Object: \"Apple\" is not currently navigable, you can try \"navigate to <object>\" to reach nearby, larger objects for closer observation.\n"
        );
        assert_eq!(
            p.failure_feedback("pickup", Some("No Suitable Object"), "pickup zork")
                .unwrap(),
            "<|feedback|>Action: \"pickup\" is illegal, the name of the object doesn't quite match the obejct in the image, Please try interacting with another object or navigating to another object.\n"
        );
        let f = p
            .failure_feedback("pickup", Some("Apple"), "pickup Apple")
            .unwrap();
        assert!(f.starts_with("<|feedback|>Action: pickup Apple is illegal, Object: Apple is currently unavailable for interaction."));
        assert!(
            f.contains("the Apple cannot perform operation pickup.\nYou can try \"move forward\"")
        );
        let f = p
            .failure_feedback("move forward", None, "move forward")
            .unwrap();
        assert!(f.contains("Object: None is currently unavailable"));
        let whole = p
            .after_failure("pickup", Some("Apple"), "pickup Apple")
            .unwrap();
        assert!(whole.ends_with(&p.USER_IMAGE_PREFIX_ERROR));
        assert!(whole.contains("closer inspection.To complete your task"));
    }
}
