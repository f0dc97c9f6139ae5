//! The chat template: the checkpoint's own Jinja template rendered with minijinja (configured as
//! transformers configures Jinja: `trim_blocks`, `lstrip_blocks`, loop controls, Python string
//! methods), or, when a checkpoint ships none, the built-in Qwen2-VL format.

use std::path::Path;

use ember_agent::policy::{ContentPart, Message};
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value, context};
use serde::Serialize;

use crate::config::read_json;
use crate::error::{ModelError, Result};

/// One part of a chat message as templates see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChatPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image placeholder.
    Image,
}

/// One chat message as templates see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The parts in order.
    pub content: Vec<ChatPart>,
}

impl ChatMessage {
    /// The template view of an agent message (images become placeholders, in order).
    pub fn from_agent(m: &Message) -> Self {
        Self {
            role: m.role.as_str().to_string(),
            content: m
                .content
                .iter()
                .map(|p| match p {
                    ContentPart::Text(t) => ChatPart::Text { text: t.clone() },
                    ContentPart::Image(_) => ChatPart::Image,
                })
                .collect(),
        }
    }
}

enum Kind {
    Jinja(Box<Environment<'static>>),
    BuiltIn,
}

/// A chat template.
pub struct ChatTemplate {
    kind: Kind,
    source: String,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

fn raise_exception(msg: String) -> std::result::Result<Value, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
}

fn token_string(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o
            .get("content")
            .and_then(|c| c.as_str())
            .map(str::to_string),
        _ => None,
    }
}

impl ChatTemplate {
    /// The built-in Qwen2-VL format.
    pub fn builtin() -> Self {
        Self {
            kind: Kind::BuiltIn,
            source: "built-in Qwen2-VL format".into(),
            bos_token: None,
            eos_token: None,
        }
    }

    /// Compiles a Jinja template; `source` names it in errors.
    pub fn from_jinja(template: &str, source: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", template.to_string())
            .map_err(|e| ModelError::Template {
                source_name: source.to_string(),
                message: format!("{e:#}"),
            })?;
        Ok(Self {
            kind: Kind::Jinja(Box::new(env)),
            source: source.to_string(),
            bos_token: None,
            eos_token: None,
        })
    }

    /// The checkpoint's template: `chat_template.jinja`, `chat_template.json`, the
    /// `chat_template` of `tokenizer_config.json` or of `processor_config.json`, in that order;
    /// the built-in format when there is none.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let tcfg_path = dir.join("tokenizer_config.json");
        let tcfg = if tcfg_path.is_file() {
            Some(read_json(&tcfg_path)?)
        } else {
            None
        };
        let mut t = Self::find(dir, tcfg.as_ref(), &tcfg_path)?;
        if let Some(c) = &tcfg {
            t.bos_token = token_string(c.get("bos_token"));
            t.eos_token = token_string(c.get("eos_token"));
        }
        Ok(t)
    }

    fn find(dir: &Path, tcfg: Option<&serde_json::Value>, tcfg_path: &Path) -> Result<Self> {
        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            let s = std::fs::read_to_string(&jinja).map_err(|e| ModelError::io(&jinja, e))?;
            return Self::from_jinja(&s, &jinja.display().to_string());
        }
        let json = dir.join("chat_template.json");
        if json.is_file() {
            let v = read_json(&json)?;
            let s = v
                .get("chat_template")
                .and_then(|t| t.as_str())
                .ok_or_else(|| {
                    ModelError::config(&json, "chat_template", "missing or not a string")
                })?;
            return Self::from_jinja(s, &json.display().to_string());
        }
        if let Some(c) = tcfg
            && let Some(t) = c.get("chat_template")
        {
            let s = match t {
                serde_json::Value::String(s) => s.clone(),
                // A list of named templates: take `default`.
                serde_json::Value::Array(items) => items
                    .iter()
                    .find(|i| i.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .and_then(|i| i.get("template"))
                    .and_then(|t| t.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        ModelError::config(
                            tcfg_path,
                            "chat_template",
                            "no template named `default`",
                        )
                    })?,
                _ => {
                    return Err(ModelError::config(
                        tcfg_path,
                        "chat_template",
                        "expected a string or a list",
                    ));
                }
            };
            return Self::from_jinja(&s, &format!("{} chat_template", tcfg_path.display()));
        }
        let pcfg = dir.join("processor_config.json");
        if pcfg.is_file() {
            let v = read_json(&pcfg)?;
            if let Some(s) = v.get("chat_template").and_then(|t| t.as_str()) {
                return Self::from_jinja(s, &format!("{} chat_template", pcfg.display()));
            }
        }
        Ok(Self::builtin())
    }

    /// Where the template came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether this is the built-in format (the checkpoint had no template).
    pub fn is_builtin(&self) -> bool {
        matches!(self.kind, Kind::BuiltIn)
    }

    /// Renders a conversation; `add_generation_prompt` opens the assistant's turn.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        match &self.kind {
            Kind::BuiltIn => Ok(render_builtin(messages, add_generation_prompt)),
            Kind::Jinja(env) => {
                let tmpl = env.get_template("chat").map_err(|e| self.err(e))?;
                tmpl.render(context! {
                    messages => messages,
                    add_generation_prompt => add_generation_prompt,
                    bos_token => self.bos_token.clone().unwrap_or_default(),
                    eos_token => self.eos_token.clone().unwrap_or_default(),
                })
                .map_err(|e| self.err(e))
            }
        }
    }

    fn err(&self, e: JinjaError) -> ModelError {
        ModelError::Template {
            source_name: self.source.clone(),
            message: format!("{e:#}"),
        }
    }
}

/// The Qwen2-VL chat format: `<|im_start|>{role}\n{content}<|im_end|>\n` per message (a default
/// system message first when there is none), images as
/// `<|vision_start|><|image_pad|><|vision_end|>`, `<|im_start|>assistant\n` to prompt a reply.
pub fn render_builtin(messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    if messages.first().is_none_or(|m| m.role != "system") {
        out.push_str("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
    }
    for m in messages {
        out.push_str("<|im_start|>");
        out.push_str(&m.role);
        out.push('\n');
        for p in &m.content {
            match p {
                ChatPart::Text { text } => out.push_str(text),
                ChatPart::Image => out.push_str("<|vision_start|><|image_pad|><|vision_end|>"),
            }
        }
        out.push_str("<|im_end|>\n");
    }
    if add_generation_prompt {
        out.push_str("<|im_start|>assistant\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation() -> Vec<ChatMessage> {
        vec![
            ChatMessage {
                role: "system".into(),
                content: vec![ChatPart::Text {
                    text: "You are a robot.".into(),
                }],
            },
            ChatMessage {
                role: "user".into(),
                content: vec![
                    ChatPart::Image,
                    ChatPart::Text {
                        text: "Find the apple.".into(),
                    },
                ],
            },
            ChatMessage {
                role: "assistant".into(),
                content: vec![ChatPart::Text {
                    text: "<DecisionMaking>observe</DecisionMaking>".into(),
                }],
            },
            ChatMessage {
                role: "user".into(),
                content: vec![
                    ChatPart::Image,
                    ChatPart::Image,
                    ChatPart::Text {
                        text: "Next.".into(),
                    },
                ],
            },
        ]
    }

    const EXPECTED: &str = "<|im_start|>system\nYou are a robot.<|im_end|>\n\
<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Find the apple.<|im_end|>\n\
<|im_start|>assistant\n<DecisionMaking>observe</DecisionMaking><|im_end|>\n\
<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>Next.<|im_end|>\n\
<|im_start|>assistant\n";

    #[test]
    fn builtin_renders_the_qwen2_vl_format_for_a_multi_image_conversation() {
        assert_eq!(render_builtin(&conversation(), true), EXPECTED);
        let no_system = &conversation()[1..2];
        assert!(render_builtin(no_system, false).starts_with(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        ));
    }

    #[test]
    fn the_checkpoint_template_renders_the_same_multi_image_conversation() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/qwen2-vl-tiny");
        let t = ChatTemplate::from_dir(&dir).unwrap();
        assert!(!t.is_builtin(), "{}", t.source());
        assert_eq!(t.render(&conversation(), true).unwrap(), EXPECTED);
        // The same template found in the other places checkpoints keep it.
        for d in ["qwen2_5-vl-tiny", "qwen2_5-vl-tiny-bf16"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(d);
            let t = ChatTemplate::from_dir(&dir).unwrap();
            assert!(!t.is_builtin(), "{d}");
            assert_eq!(t.render(&conversation(), true).unwrap(), EXPECTED, "{d}");
        }
    }

    #[test]
    fn template_errors_name_the_source() {
        let e = ChatTemplate::from_jinja("{% for x in %}", "bad.jinja")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("bad.jinja"), "{e}");
        let t =
            ChatTemplate::from_jinja("{{ raise_exception('no system role') }}", "t.jinja").unwrap();
        let e = t.render(&[], true).unwrap_err().to_string();
        assert!(e.contains("no system role"), "{e}");
    }

    #[test]
    fn python_string_methods_work() {
        let t = ChatTemplate::from_jinja("{{ messages[0].content[0].text.strip().upper() }}", "t")
            .unwrap();
        let m = vec![ChatMessage {
            role: "user".into(),
            content: vec![ChatPart::Text {
                text: "  hi ".into(),
            }],
        }];
        assert_eq!(t.render(&m, false).unwrap(), "HI");
    }
}
