//! The vision-language model as a [`Policy`]: the conversation the harness built (system prompt,
//! images and the exact task strings, already within the memory budget) is rendered with the
//! checkpoint's chat template, the reply is streamed to the caller, and split into thought and
//! action the way each task expects.
//!
//! - Embodied-Reasoner: the thought is the reply before `<DecisionMaking>`; the harness parses the
//!   action from the raw reply (`Decision.action` is `None`).
//! - Robot-R1: the reply's `<answer>` is parsed here (`[[A]]`..`[[D]]` among the context's
//!   candidates, or open-ended `[x, y, z]`) into a keypoint action; a malformed answer is an
//!   error, never a guess.

use std::path::PathBuf;
use std::time::Instant;

use ember_agent::policy::{Context, Decision, DecisionTimings, EpisodeInfo, Policy};
use ember_agent::robot_r1;
use serde::{Deserialize, Serialize};

use crate::device::{BackendKind, Precision, runtime};
use crate::error::{ModelError, Result};
use crate::generate::SamplingConfig;
use crate::pipeline::Vlm;

/// Which task's reply format the policy speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyFormat {
    /// `... <DecisionMaking>action</DecisionMaking>` (Embodied-Reasoner).
    #[default]
    EmbodiedReasoner,
    /// `<think> .. </think> <answer> [[B]] </answer>` (Robot-R1, multiple choice when the context
    /// offers candidates, open-ended coordinates otherwise).
    RobotR1,
}

/// The settings of a VLM policy, as a launch file states them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlmPolicyConfig {
    /// The checkpoint directory (Hub format).
    pub model: PathBuf,
    /// `cpu` or `wgpu`.
    #[serde(default)]
    pub device: BackendKind,
    /// `f32`, `f16` or `bf16`.
    #[serde(default)]
    pub precision: Precision,
    /// The reply format.
    #[serde(default)]
    pub format: ReplyFormat,
    /// Sampling and stopping.
    #[serde(default = "er_sampling")]
    pub sampling: SamplingConfig,
    /// Refuse prompts longer than this many tokens (the memory budget should keep them shorter).
    #[serde(default = "default_max_prompt")]
    pub max_prompt_tokens: usize,
}

fn default_max_prompt() -> usize {
    32_768
}

/// Embodied-Reasoner's evaluation decoding: greedy, at most 1024 new tokens, stop after the
/// decision.
pub fn er_sampling() -> SamplingConfig {
    SamplingConfig {
        max_new_tokens: 1024,
        stop_strings: vec!["</DecisionMaking>".into()],
        ..Default::default()
    }
}

/// The policy.
pub struct VlmPolicy {
    vlm: Vlm,
    format: ReplyFormat,
    sampling: SamplingConfig,
    max_prompt_tokens: usize,
    episode_seed: u64,
}

impl VlmPolicy {
    /// Loads the checkpoint a config names.
    pub fn from_config(cfg: &VlmPolicyConfig) -> Result<Self> {
        let rt = runtime(cfg.device, cfg.precision)?;
        let vlm = Vlm::load(&cfg.model, rt)?;
        Ok(Self::new(
            vlm,
            cfg.format,
            cfg.sampling.clone(),
            cfg.max_prompt_tokens,
        ))
    }

    /// Wraps a loaded model.
    pub fn new(
        vlm: Vlm,
        format: ReplyFormat,
        sampling: SamplingConfig,
        max_prompt_tokens: usize,
    ) -> Self {
        Self {
            vlm,
            format,
            sampling,
            max_prompt_tokens,
            episode_seed: 0,
        }
    }

    /// The loaded model.
    pub fn vlm(&self) -> &Vlm {
        &self.vlm
    }

    fn run(&mut self, ctx: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Decision> {
        let t0 = Instant::now();
        if ctx.messages.is_empty() {
            return Err(ModelError::Input("the context has no messages".into()));
        }
        let prompt = self.vlm.prompt(&ctx.messages)?;
        if prompt.input_ids.len() > self.max_prompt_tokens {
            return Err(ModelError::Input(format!(
                "the prompt has {} tokens, over the limit of {} (tighten the memory budget)",
                prompt.input_ids.len(),
                self.max_prompt_tokens
            )));
        }
        // Deterministic per episode and step, whatever ran before.
        let mut sampling = self.sampling.clone();
        sampling.seed = self
            .sampling
            .seed
            .wrapping_add(self.episode_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add(ctx.step);
        let cancel = ctx.cancel.clone();
        let g = self
            .vlm
            .generate_cancellable(&prompt, &sampling, on_text, &|| cancel.is_cancelled())?;
        let timings = DecisionTimings {
            total: t0.elapsed().as_secs_f64(),
            vision: g.vision_s,
            prefill: g.prefill_s,
            decode: g.decode_s,
            prompt_tokens: g.prompt_tokens,
            generated_tokens: g.tokens.len(),
        };
        match self.format {
            ReplyFormat::EmbodiedReasoner => Ok(Decision {
                thought: er_thought(&g.text),
                raw: g.text,
                action: None,
                timings,
            }),
            ReplyFormat::RobotR1 => {
                let labels: Vec<char> = ctx.candidates.iter().map(|c| c.label).collect();
                let reply = robot_r1::parse_reply(&g.text, &labels).map_err(|e| {
                    ModelError::Input(format!("Robot-R1 reply: {e}; reply was: {:?}", g.text))
                })?;
                let action = robot_r1::to_action(&reply, &ctx.candidates)
                    .map_err(|e| ModelError::Input(format!("Robot-R1 reply: {e}")))?;
                Ok(Decision {
                    thought: reply.thought,
                    raw: g.text,
                    action: Some(action),
                    timings,
                })
            }
        }
    }
}

/// Embodied-Reasoner's thought: the reply before `<DecisionMaking>` (all of it when the tag is
/// missing), trimmed.
pub fn er_thought(reply: &str) -> String {
    reply
        .split("<DecisionMaking>")
        .next()
        .unwrap_or(reply)
        .trim()
        .to_string()
}

impl Policy for VlmPolicy {
    fn name(&self) -> &str {
        match self.vlm.model.config.family {
            crate::config::Family::Qwen2Vl => "qwen2-vl",
            crate::config::Family::Qwen25Vl => "qwen2.5-vl",
        }
    }

    fn reset(&mut self, episode: &EpisodeInfo) -> ember_agent::Result<()> {
        self.episode_seed = episode.seed;
        Ok(())
    }

    fn decide(
        &mut self,
        context: &Context,
        on_text: &mut dyn FnMut(&str),
    ) -> ember_agent::Result<Decision> {
        self.run(context, on_text)
            .map_err(|e| ember_agent::Error::Policy {
                step: context.step,
                message: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thought_is_the_text_before_the_decision() {
        assert_eq!(
            er_thought("I see a fridge.\n<DecisionMaking>open Fridge</DecisionMaking>"),
            "I see a fridge."
        );
        assert_eq!(er_thought("no decision"), "no decision");
    }

    #[test]
    fn config_reads_from_toml_like_json() {
        let c: VlmPolicyConfig = serde_json::from_value(serde_json::json!({
            "model": "/models/er-2b", "device": "wgpu", "precision": "f16", "format": "robot-r1",
            "sampling": {"temperature": 0.6, "top_k": 10, "repetition_penalty": 1.1, "seed": 3}
        }))
        .unwrap();
        assert_eq!(c.device, BackendKind::Wgpu);
        assert_eq!(c.precision, Precision::F16);
        assert_eq!(c.format, ReplyFormat::RobotR1);
        assert_eq!(c.sampling.top_k, 10);
        assert_eq!(c.sampling.max_new_tokens, 1024);
        let d: VlmPolicyConfig = serde_json::from_value(serde_json::json!({"model": "m"})).unwrap();
        assert_eq!(
            d.sampling.stop_strings,
            vec!["</DecisionMaking>".to_string()]
        );
        assert!(
            serde_json::from_value::<VlmPolicyConfig>(
                serde_json::json!({"model": "m", "devise": "cpu"})
            )
            .is_err()
        );
    }
}
