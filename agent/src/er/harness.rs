//! [`ErHarness`]: the Embodied-Reasoner rules for one case, behind the
//! [`Harness`](crate::harness::Harness) contract.
//!
//! How the loop drives it:
//! ```text
//! let mut h = ErHarness::new(case, Mode::ErCompat, PromptVariant::Put, seed)
//!     .with_policy_name("qwen2-vl").with_reachable_cache(cache.clone());
//! let first = h.start(world)?;            // reset + init; messages = [system, user(image, task)]
//! while !h.is_done() {
//!     let decision = policy.decide(context)?;   // context.messages = memory of the messages
//!     memory.push(assistant(decision.raw));     // the loop appends the reply itself
//!     let step = h.act(&decision, world)?;      // step.messages = the next user turn
//!     memory.extend(step.messages);
//! }
//! cases_jsonl.write(h.summary());          // one CaseResult
//! ```
//! `HarnessStep::record` is a JSON list of the trajectory records the call appended (one, or two
//! when the episode ends right after the action; the `end` record alone when it ends on the
//! reply). Image names in the records (`step3.png`) name, in order, the images of the step's
//! user message.
//!
//! A decision that carries an [`Action`] (random, oracle and replay policies) is used as it is
//! instead of parsing `raw`; in `er-compat` mode its object id is ignored (types only).

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::cases::Case;
use super::executor::{self, ActionOutcome, ReachableCache, Resolver, Sim};
use super::legality::Legality;
use super::metrics::{CaseResult, score};
use super::parse::{ParsedReply, SceneIndex, parse_reply};
use super::prompts::{PromptVariant, Prompts};
use super::record::TrajectoryRecord;
use super::rules::{EndReason, EndRules, Verdict};
use super::{Mode, NO_SUITABLE_OBJECT};
use crate::action::{Action, DiscreteAction, Verb};
use crate::error::{Error, Result};
use crate::harness::{Harness, HarnessStep};
use crate::observation::{Observation, RgbImage};
use crate::policy::{
    ContentPart, Decision, EpisodeInfo, Feedback, FeedbackKind, Message, Privileged, Role,
};
use crate::world::{ResetRequest, World};

/// The Embodied-Reasoner harness for one case.
pub struct ErHarness {
    case: Case,
    mode: Mode,
    prompt: PromptVariant,
    seed: u64,
    index: u64,
    policy: String,
    cache: Arc<ReachableCache>,
    started: bool,
    simulator: String,
    resolver: Resolver,
    legality: Legality,
    rules: EndRules,
    trajectory: Vec<TrajectoryRecord>,
    last: Option<Arc<Observation>>,
}

impl ErHarness {
    /// A harness for a case, in a mode, with a prompt variant and a seed (passed to the world's
    /// reset; the harness itself is deterministic).
    pub fn new(case: Case, mode: Mode, prompt: PromptVariant, seed: u64) -> Self {
        let legality = Legality::new(&case.navigable_objects);
        let rules = EndRules::new(case.step_limit());
        ErHarness {
            case,
            mode,
            prompt,
            seed,
            index: 0,
            policy: String::new(),
            cache: Arc::new(ReachableCache::new()),
            started: false,
            simulator: String::new(),
            resolver: Resolver::default(),
            legality,
            rules,
            trajectory: Vec::new(),
            last: None,
        }
    }

    /// Sets the episode's index within the run.
    pub fn with_index(mut self, index: u64) -> Self {
        self.index = index;
        self
    }

    /// Sets the policy name written into the result.
    pub fn with_policy_name(mut self, policy: impl Into<String>) -> Self {
        self.policy = policy.into();
        self
    }

    /// Shares a reachable-positions cache between the harnesses of a run.
    pub fn with_reachable_cache(mut self, cache: Arc<ReachableCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The case.
    pub fn case(&self) -> &Case {
        &self.case
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The trajectory so far.
    pub fn trajectory(&self) -> &[TrajectoryRecord] {
        &self.trajectory
    }

    /// Executed steps so far (init included).
    pub fn steps(&self) -> u32 {
        self.rules.steps()
    }

    /// Why the episode ended, once it has.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.rules.ended()
    }

    /// The navigable and interactable sets now.
    pub fn legality(&self) -> &Legality {
        &self.legality
    }

    /// The scene's start objects (after `start`).
    pub fn scene(&self) -> &SceneIndex {
        self.resolver.scene()
    }

    /// The current observation (after `start`).
    pub fn last_observation(&self) -> Option<&Arc<Observation>> {
        self.last.as_ref()
    }

    /// The result so far (final once done).
    pub fn result(&self) -> CaseResult {
        CaseResult::new(
            &self.case,
            self.trajectory.clone(),
            self.rules.steps(),
            self.rules.ended(),
            self.mode,
            &self.policy,
            &self.simulator,
        )
    }

    fn put_verb(&self) -> Verb {
        match self.prompt {
            PromptVariant::Put => Verb::Put,
            PromptVariant::PutIn => Verb::PutIn,
        }
    }

    fn record(
        &self,
        response: &str,
        action: &str,
        object: Option<&str>,
        success: bool,
        error_info: String,
        images: Vec<String>,
    ) -> TrajectoryRecord {
        TrajectoryRecord {
            response: response.to_string(),
            action: action.to_string(),
            object: object.map(str::to_string),
            legal_locations: self.legality.navigable().to_vec(),
            legal_objects: self.legality.interactable().to_vec(),
            success: u8::from(success),
            error_info,
            images,
            object_id: None,
        }
    }

    fn end_record(&self, response: &str, reason: EndReason) -> TrajectoryRecord {
        let mut r = self.record(
            response,
            "end",
            None,
            reason.end_record_success(self.mode),
            String::new(),
            vec![],
        );
        if reason == EndReason::Repeated {
            // The reference writes empty sets into this record.
            r.legal_locations.clear();
            r.legal_objects.clear();
        }
        r
    }

    /// Reads a decision: its action when it carries one, else its text.
    fn read_decision(&self, decision: &Decision) -> Result<ParsedReply> {
        match &decision.action {
            Some(Action::Discrete(d)) => {
                let verb = (d.verb != Verb::Init).then_some(d.verb);
                let item = if d.verb.takes_object() {
                    Some(
                        d.object_type
                            .clone()
                            .unwrap_or_else(|| NO_SUITABLE_OBJECT.to_string()),
                    )
                } else {
                    None
                };
                let object_id = if self.mode == Mode::Strict {
                    d.object_id.clone()
                } else {
                    None
                };
                Ok(ParsedReply {
                    raw_action: Some(d.to_string()),
                    verb,
                    item,
                    object_id,
                })
            }
            Some(Action::Keypoint(_)) => Err(Error::Invalid(format!(
                "case {}: the Embodied-Reasoner harness takes discrete actions, not keypoints",
                self.case.identity
            ))),
            None => Ok(parse_reply(&decision.raw, self.resolver.scene(), self.mode)),
        }
    }

    fn image_names(&self, n: usize) -> Vec<String> {
        let step = self.rules.steps();
        match n {
            0 => vec![],
            1 => vec![format!("step{step}.png")],
            n => (0..n).map(|i| format!("step{step}_{i}.png")).collect(),
        }
    }

    /// Carries out a parsed action with a verb; returns the outcome and whether the failure (if
    /// any) came from the legality rules.
    fn execute(
        &mut self,
        sim: &mut Sim<'_>,
        p: &ParsedReply,
        verb: Verb,
    ) -> Result<(ActionOutcome, bool, Option<String>)> {
        let scene = self.case.scene.clone();
        match verb {
            Verb::Observe => Ok((executor::observe(sim, &mut self.legality)?, false, None)),
            Verb::MoveForward => Ok((
                executor::move_forward(sim, &self.case.related_objects, &mut self.legality)?,
                false,
                None,
            )),
            Verb::NavigateTo => {
                let Some(item) = p.item.as_deref().filter(|i| self.legality.can_navigate(i)) else {
                    return Ok((ActionOutcome::default(), true, None));
                };
                let hand_empty = sim.meta()?.inventory_objects.is_empty();
                let id = p
                    .object_id
                    .clone()
                    .or_else(|| self.resolver.resolve(item, true, hand_empty));
                let Some(id) = id else {
                    return Ok((ActionOutcome::default(), true, None));
                };
                let reachable = self.cache.get(&scene).unwrap_or_default();
                let nav = executor::navigate(
                    sim,
                    &scene,
                    &reachable,
                    &id,
                    &self.case.related_objects,
                    self.mode,
                    &mut self.legality,
                )?;
                Ok((nav.outcome, false, Some(id)))
            }
            Verb::Pickup | Verb::Put | Verb::PutIn | Verb::Open | Verb::Close | Verb::Toggle => {
                let Some(item) = p.item.as_deref().filter(|i| self.legality.can_interact(i)) else {
                    return Ok((ActionOutcome::default(), true, None));
                };
                let id = p
                    .object_id
                    .clone()
                    .or_else(|| self.resolver.resolve(item, false, true));
                let Some(id) = id else {
                    return Ok((ActionOutcome::default(), true, None));
                };
                Ok((
                    executor::interact(sim, verb, &id, &mut self.legality)?,
                    false,
                    Some(id),
                ))
            }
            Verb::Init | Verb::End => {
                Err(Error::Invalid(format!("'{verb}' is not executed by act")))
            }
        }
    }
}

fn user(images: &[Arc<RgbImage>], text: String) -> Message {
    let mut content: Vec<ContentPart> = images
        .iter()
        .map(|i| ContentPart::Image(i.clone()))
        .collect();
    content.push(ContentPart::Text(text));
    Message {
        role: Role::User,
        content,
    }
}

fn records_value(records: &[TrajectoryRecord]) -> Value {
    serde_json::to_value(records).unwrap_or(Value::Null)
}

impl Harness for ErHarness {
    fn episode(&self) -> EpisodeInfo {
        EpisodeInfo {
            index: self.index,
            id: self.case.identity.to_string(),
            scene: Some(self.case.scene.clone()),
            instruction: self.case.taskquery.clone(),
            task_type: Some(self.case.tasktype.clone()),
            seed: self.seed,
        }
    }

    fn start(&mut self, world: &mut dyn World) -> Result<HarnessStep> {
        let prompts = Prompts::get()?;
        self.simulator = world.info().kind;
        let t = Instant::now();
        let obs0 = world.reset(&ResetRequest {
            scene: Some(self.case.scene.clone()),
            seed: self.seed,
            episode: Some(self.case.identity.to_string()),
        })?;
        let reset_time = t.elapsed().as_secs_f64();
        let meta0 = obs0.sim.clone().ok_or_else(|| {
            Error::World(format!(
                "case {}: the world returned no simulator metadata after reset; the \
                 Embodied-Reasoner harness needs a world that speaks AI2-THOR",
                self.case.identity
            ))
        })?;
        let scene = SceneIndex::new(&meta0);
        self.resolver = Resolver::new(&self.case.target_objects, scene);
        self.legality = Legality::new(&self.case.navigable_objects);
        self.rules = EndRules::new(self.case.step_limit());
        self.trajectory.clear();
        self.started = true;

        let mut sim = Sim::new(world, Arc::new(obs0));
        let out = executor::init(&mut sim, &self.case.scene, &self.cache, &mut self.legality)?;
        let ended = self.rules.after_init();
        let names = self.image_names(out.images.len());
        let rec = self.record("", "init", None, true, String::new(), names);
        self.trajectory.push(rec.clone());
        let mut records = vec![rec];
        if let Some(reason) = ended {
            // Only with a step limit of 1; kept for completeness.
            let end = self.end_record("", reason);
            self.trajectory.push(end.clone());
            records.push(end);
        }
        let text = prompts.task_prefix(self.prompt, &self.case.taskquery)?;
        let messages = vec![
            Message::text(Role::System, prompts.EMBODIED_SYSTEM_PROMPT.clone()),
            user(&out.images, text),
        ];
        self.last = Some(sim.last().clone());
        Ok(HarnessStep {
            action: Some(Action::Discrete(DiscreteAction::bare(Verb::Init))),
            action_text: "init".into(),
            feedback: Feedback {
                success: true,
                kind: FeedbackKind::Executed,
                message: String::new(),
            },
            executed: true,
            observations: std::mem::take(&mut sim.observations),
            messages,
            world_time: reset_time + sim.world_time,
            record: records_value(&records),
        })
    }

    fn act(&mut self, decision: &Decision, world: &mut dyn World) -> Result<HarnessStep> {
        if !self.started {
            return Err(Error::Invalid(format!(
                "case {}: act before start",
                self.case.identity
            )));
        }
        if let Some(r) = self.rules.ended() {
            return Err(Error::Invalid(format!(
                "case {}: the episode has already ended ({r:?})",
                self.case.identity
            )));
        }
        let prompts = Prompts::get()?;
        let p = self.read_decision(decision)?;
        let action_name = p.action_name();
        let parsed_action = p.verb.map(|v| {
            Action::Discrete(DiscreteAction {
                verb: v,
                object_type: p.item.clone(),
                object_id: p.object_id.clone(),
            })
        });
        let action_text = match (&p.verb, &p.item) {
            (Some(v), Some(i)) => format!("{v} {i}"),
            (Some(v), None) => v.to_string(),
            _ => p.raw_action.clone().unwrap_or_else(|| decision.raw.clone()),
        };

        if let Verdict::End(reason) = self.rules.on_reply(action_name, p.item.as_deref()) {
            let rec = self.end_record(&decision.raw, reason);
            self.trajectory.push(rec.clone());
            return Ok(HarnessStep {
                action: parsed_action,
                action_text,
                feedback: Feedback {
                    success: rec.succeeded(),
                    kind: FeedbackKind::Executed,
                    message: format!("episode ended: {reason:?}"),
                },
                executed: false,
                observations: vec![],
                messages: vec![],
                world_time: 0.0,
                record: records_value(&[rec]),
            });
        }

        let mut records = Vec::with_capacity(2);
        let mut observations = Vec::new();
        let mut world_time = 0.0;
        let (feedback, message, executed) = match p.verb {
            None => {
                let rec = self.record(
                    &decision.raw,
                    "error",
                    p.item.as_deref(),
                    false,
                    prompts.INVALID_ACTION_PROMPT.clone(),
                    vec![],
                );
                records.push(rec);
                let kind = if p.raw_action.is_none() {
                    FeedbackKind::Unparseable
                } else {
                    FeedbackKind::Illegal
                };
                let text = prompts.after_invalid();
                (
                    Feedback {
                        success: false,
                        kind,
                        message: text.clone(),
                    },
                    user(&[], text),
                    false,
                )
            }
            Some(verb) => {
                let last = self
                    .last
                    .clone()
                    .ok_or_else(|| Error::Invalid("no observation".into()))?;
                let mut sim = Sim::new(world, last);
                let (out, illegal, object_id) = self.execute(&mut sim, &p, verb)?;
                world_time = sim.world_time;
                observations = std::mem::take(&mut sim.observations);
                self.last = Some(sim.last().clone());
                // Executed: counts as a step whatever happened.
                self.rules.after_handling(true);
                let success = out.success && !out.images.is_empty();
                let (feedback, message, mut rec) = if success {
                    let text = prompts.after_success(&action_text, verb == Verb::MoveForward)?;
                    let names = self.image_names(out.images.len());
                    let rec = self.record(
                        &decision.raw,
                        action_name,
                        p.item.as_deref(),
                        true,
                        String::new(),
                        names,
                    );
                    (
                        Feedback {
                            success: true,
                            kind: FeedbackKind::Executed,
                            message: text.clone(),
                        },
                        user(&out.images, text),
                        rec,
                    )
                } else {
                    let fb =
                        prompts.failure_feedback(verb.as_str(), p.item.as_deref(), p.raw_text())?;
                    let text = format!("{fb}{}", prompts.USER_IMAGE_PREFIX_ERROR);
                    let rec = self.record(
                        &decision.raw,
                        action_name,
                        p.item.as_deref(),
                        false,
                        fb,
                        vec![],
                    );
                    let kind = if illegal {
                        FeedbackKind::Illegal
                    } else {
                        FeedbackKind::Failed
                    };
                    let message = if out.error.is_empty() {
                        text.clone()
                    } else {
                        format!("{text}\n[simulator: {}]", out.error)
                    };
                    (
                        Feedback {
                            success: false,
                            kind,
                            message,
                        },
                        user(&[], text),
                        rec,
                    )
                };
                if self.mode == Mode::Strict {
                    rec.object_id = object_id.filter(|_| p.object_id.is_some());
                }
                records.push(rec);
                (feedback, message, true)
            }
        };
        if !executed {
            self.rules.after_handling(false);
        }
        if let Some(reason) = self.rules.ended() {
            let rec = self.end_record("", reason);
            records.push(rec);
        }
        self.trajectory.extend(records.iter().cloned());
        Ok(HarnessStep {
            action: parsed_action,
            action_text,
            feedback,
            executed,
            observations,
            messages: vec![message],
            world_time,
            record: records_value(&records),
        })
    }

    fn is_done(&self) -> bool {
        self.rules.ended().is_some()
    }

    fn legal_actions(&self) -> Vec<Action> {
        if !self.started || self.is_done() {
            return Vec::new();
        }
        let scene = self.resolver.scene();
        let mut out: Vec<Action> = Vec::new();
        for t in self.legality.navigable() {
            if scene.has_type(t) {
                out.push(DiscreteAction::on(Verb::NavigateTo, t.clone()).into());
            }
        }
        for t in self.legality.interactable() {
            for v in [
                Verb::Pickup,
                self.put_verb(),
                Verb::Open,
                Verb::Close,
                Verb::Toggle,
            ] {
                out.push(DiscreteAction::on(v, t.clone()).into());
            }
        }
        for v in [Verb::Observe, Verb::MoveForward, Verb::End] {
            out.push(DiscreteAction::bare(v).into());
        }
        out
    }

    fn privileged(&self) -> Option<Privileged> {
        let key_actions = self
            .case
            .task_metadata
            .actions
            .iter()
            .filter_map(|a| {
                let verb = Verb::from_str_exact(&a.action)?;
                Some(DiscreteAction {
                    verb,
                    object_type: (!a.object_type.is_empty()).then(|| a.object_type.clone()),
                    object_id: (!a.object_id.is_empty()).then(|| a.object_id.clone()),
                })
            })
            .collect();
        Some(Privileged {
            key_actions,
            metadata: self.last.as_ref().and_then(|o| o.sim.clone()),
        })
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        let s = score(
            &self.case.tasktype,
            &self.case.taskname,
            &self.case.key_actions(),
            &self.trajectory,
        );
        vec![
            ("steps".into(), f64::from(self.rules.steps())),
            ("max_steps".into(), f64::from(self.rules.max_steps())),
            ("reward".into(), f64::from(s.reward)),
            ("total_reward".into(), f64::from(s.total)),
            ("completeness".into(), s.completeness),
            ("success".into(), if s.success { 1.0 } else { 0.0 }),
        ]
    }

    fn summary(&self) -> Value {
        serde_json::to_value(self.result()).unwrap_or(Value::Null)
    }
}
