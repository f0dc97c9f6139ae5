//! The Policy contract: a context in, a decision out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::action::{Action, DiscreteAction};
use crate::error::Result;
use crate::observation::RgbImage;
use crate::thor;

/// Who speaks a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The system prompt.
    System,
    /// The user (the harness: task, images, feedback).
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The role's name as chat templates write it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One part of a message.
#[derive(Clone, Debug, PartialEq)]
pub enum ContentPart {
    /// Text.
    Text(String),
    /// An image.
    Image(Arc<RgbImage>),
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// Text and images, in order.
    pub content: Vec<ContentPart>,
}

impl Message {
    /// A text-only message.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![ContentPart::Text(text.into())],
        }
    }

    /// The message's text parts joined.
    pub fn joined_text(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text(t) => Some(t.as_str()),
                ContentPart::Image(_) => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }

    /// How many images the message carries.
    pub fn image_count(&self) -> usize {
        self.content
            .iter()
            .filter(|p| matches!(p, ContentPart::Image(_)))
            .count()
    }
}

/// What an episode is about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeInfo {
    /// The episode's number within the run (0-based).
    pub index: u64,
    /// A stable identifier (a benchmark case's identity, or a name).
    pub id: String,
    /// The scene, when there is one.
    pub scene: Option<String>,
    /// The instruction the model sees.
    pub instruction: String,
    /// The task type (benchmark tasktype), when there is one.
    pub task_type: Option<String>,
    /// The episode seed.
    pub seed: u64,
}

/// A keypoint candidate offered to the model (Robot-R1 multiple choice).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The label (`A`..`D`).
    pub label: char,
    /// The position, metres, in `frame`.
    pub position: [f64; 3],
    /// The frame the position is stated in.
    pub frame: String,
}

/// Privileged information, for policies that are allowed to cheat (the oracle).
#[derive(Clone, Debug, Default)]
pub struct Privileged {
    /// The case's key actions, in order, with resolved object ids where known.
    pub key_actions: Vec<DiscreteAction>,
    /// The simulator's full metadata at this step.
    pub metadata: Option<Arc<thor::Metadata>>,
}

/// How the previous action went, as the policy may read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// Whether the action was executed successfully.
    pub success: bool,
    /// What happened, in one of the kinds below.
    pub kind: FeedbackKind,
    /// The text shown to the model (or an error message).
    pub message: String,
}

/// The kinds of feedback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// The action ran and succeeded.
    #[default]
    Executed,
    /// The action ran and the world refused it.
    Failed,
    /// The action is not allowed now (legality rules).
    Illegal,
    /// The reply could not be parsed into an action.
    Unparseable,
    /// The policy did not answer in time.
    TimedOut,
}

/// What a policy sees when deciding.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The episode.
    pub episode: EpisodeInfo,
    /// The step about to be decided (executed steps so far).
    pub step: u64,
    /// The conversation within the memory budget (system prompt first).
    pub messages: Vec<Message>,
    /// Actions the harness would accept now (for random and search policies).
    pub legal_actions: Vec<Action>,
    /// How the previous action went.
    pub last_feedback: Option<Feedback>,
    /// Keypoint candidates, when the task offers them.
    pub candidates: Vec<Candidate>,
    /// Privileged information: filled by the event loop only for a policy whose
    /// [`Policy::needs_privileged`] is true (the oracle); `None` for every other policy.
    pub privileged: Option<Privileged>,
    /// Set when the loop no longer wants this decision (its timeout passed, or a stop was
    /// requested). Long-running policies check it between units of work (a model between
    /// tokens) and return early, so that they release the policy for the next episode.
    pub cancel: Cancel,
}

/// A flag the event loop raises to cancel a decision in progress; cheap to clone and check.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag that is not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag was raised.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What kind of policy plays an episode, for logs, recordings and results.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// The policy's kind ([`Policy::name`]).
    pub name: String,
    /// Whether it received privileged information ([`Policy::needs_privileged`]).
    pub privileged: bool,
}

impl Context {
    /// Number of images in the conversation.
    pub fn image_count(&self) -> usize {
        self.messages.iter().map(Message::image_count).sum()
    }
}

/// Time spent inside a decision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionTimings {
    /// The whole decision, seconds.
    pub total: f64,
    /// Image encoding, seconds (vision-language models).
    pub vision: f64,
    /// Prompt prefill, seconds.
    pub prefill: f64,
    /// Token generation, seconds.
    pub decode: f64,
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub generated_tokens: usize,
}

/// A policy's answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// The raw reply text (what a language model wrote; a rendering of the action otherwise).
    pub raw: String,
    /// The thought: the reasoning part of the reply.
    pub thought: String,
    /// The action, when the policy produced one directly; `None` asks the harness to parse
    /// `raw`.
    pub action: Option<Action>,
    /// Time spent.
    pub timings: DecisionTimings,
}

/// A policy: reads the context and decides. Calls block; the event loop runs them on a blocking
/// thread with a per-decision timeout.
pub trait Policy: Send {
    /// The policy's kind (`oracle`, `random`, `replay`, `qwen2-vl`...).
    fn name(&self) -> &str;
    /// Whether the policy needs privileged information (the harness's answer key and the
    /// simulator's full metadata). Only a policy that says so receives
    /// [`Context::privileged`]; the default, for every honest policy, is `false`.
    fn needs_privileged(&self) -> bool {
        false
    }
    /// The policy's kind and whether it sees privileged information.
    fn info(&self) -> PolicyInfo {
        PolicyInfo {
            name: self.name().to_string(),
            privileged: self.needs_privileged(),
        }
    }
    /// Called at the start of each episode.
    fn reset(&mut self, _episode: &EpisodeInfo) -> Result<()> {
        Ok(())
    }
    /// Decides the next action. `on_text` receives the reply as it is written (for live
    /// display); policies that do not stream may call it once with the whole reply. A policy
    /// that takes long should check `context.cancel` as it goes and return an error once it
    /// is raised.
    fn decide(&mut self, context: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Decision>;
}
