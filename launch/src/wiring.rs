//! Wiring: the one place that chooses implementations for the contracts from a launch file.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ember_agent::er::executor::ReachableCache;
use ember_agent::er::{Case, ErHarness, Mode, PromptVariant};
use ember_agent::faults::FaultyWorld;
use ember_agent::memory::{EstimatedTokens, TokenCounter};
use ember_agent::policies::{OraclePolicy, RandomPolicy, ReplayPolicy};
use ember_agent::{Harness, Policy, World};
use ember_models::generate::SamplingConfig;
use ember_models::policy::{ReplyFormat, VlmPolicy, VlmPolicyConfig, er_sampling};
use ember_models::tokenizer::QwenTokenCounter;
use ember_sim_bridge::backend::InitSettings;
use ember_sim_bridge::world::{SimWorld, SimWorldConfig};

use crate::config::{ErModeConfig, LaunchConfig, PolicyKind, WorldConfig, WorldKind};

/// The simulator settings a world config asks for.
pub fn sim_settings(w: &WorldConfig) -> InitSettings {
    InitSettings {
        width: w.width,
        height: w.height,
        field_of_view: w.fov,
        grid_size: w.grid_size,
        visibility_distance: w.visibility_distance,
        render_depth_image: w.render_depth,
        render_instance_segmentation: w.render_segmentation,
        ..InitSettings::default()
    }
}

/// The endpoint a world config names.
pub fn world_endpoint(w: &WorldConfig) -> String {
    match w.kind {
        WorldKind::ThorLite => "inproc://thor-lite".to_string(),
        WorldKind::Bridge => w.endpoint.clone().unwrap_or_default(),
    }
}

/// Builds the world (wrapped in a [`FaultyWorld`] when `[world.fault]` asks for one).
pub fn make_world(w: &WorldConfig) -> anyhow::Result<Box<dyn World>> {
    let config = SimWorldConfig {
        endpoint: world_endpoint(w),
        settings: sim_settings(w),
        default_scene: None,
        timeout: Duration::from_secs_f64(w.timeout_s),
    };
    let endpoint = config.endpoint.clone();
    let world: Box<dyn World> = Box::new(
        SimWorld::connect(config)
            .with_context(|| format!("connecting to the simulator at {endpoint}"))?,
    );
    Ok(match &w.fault {
        Some(plan) => Box::new(FaultyWorld::new(world, plan.clone())),
        None => world,
    })
}

/// Builds the policy.
pub fn make_policy(config: &LaunchConfig) -> anyhow::Result<Box<dyn Policy>> {
    let p = &config.policy;
    Ok(match p.kind {
        PolicyKind::Oracle => Box::new(OraclePolicy::new()),
        PolicyKind::Random => Box::new(RandomPolicy::new(p.seed)),
        PolicyKind::Replay => {
            let log = p
                .log
                .as_ref()
                .context("policy.log is required for replay")?;
            Box::new(ReplayPolicy::new(log)?)
        }
        PolicyKind::Vlm => {
            let cfg = vlm_policy_config(config)?;
            let policy = VlmPolicy::from_config(&cfg)
                .with_context(|| format!("loading the checkpoint {}", cfg.model.display()))?;
            Box::new(policy)
        }
    })
}

/// The VLM policy's settings from `[policy]`: the checkpoint, the device, Embodied-Reasoner's
/// reply format and the sampling settings (stopping after `</DecisionMaking>`).
pub fn vlm_policy_config(config: &LaunchConfig) -> anyhow::Result<VlmPolicyConfig> {
    let p = &config.policy;
    let model = p
        .model
        .clone()
        .context("policy.model is required for vlm")?;
    Ok(VlmPolicyConfig {
        model,
        device: p.device.parse()?,
        precision: Default::default(),
        format: ReplyFormat::EmbodiedReasoner,
        sampling: SamplingConfig {
            max_new_tokens: p.max_new_tokens,
            temperature: p.temperature as f32,
            top_k: p.top_k,
            top_p: p.top_p as f32,
            repetition_penalty: p.repetition_penalty as f32,
            seed: p.seed,
            ..er_sampling()
        },
        max_prompt_tokens: 32_768,
    })
}

/// The token counter of the memory budget: the checkpoint's own tokenizer and image sizing for
/// a VLM policy, an estimate for the others.
pub fn token_counter(config: &LaunchConfig) -> anyhow::Result<Arc<dyn TokenCounter>> {
    Ok(match (&config.policy.kind, &config.policy.model) {
        (PolicyKind::Vlm, Some(dir)) => Arc::new(
            QwenTokenCounter::from_dir(dir)
                .with_context(|| format!("reading the tokenizer of {}", dir.display()))?,
        ),
        _ => Arc::new(EstimatedTokens),
    })
}

/// The policy's and the world's names as a launch file states them (`oracle`, `thor-lite`;
/// for results of cases that never ran, when no running policy or world could say).
pub fn names(config: &LaunchConfig) -> (String, String) {
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    (
        name(serde_json::to_value(config.policy.kind)),
        name(serde_json::to_value(config.world.kind)),
    )
}

/// The harness mode a launch file asks for.
pub fn er_mode(config: &LaunchConfig) -> Mode {
    match config.task.mode {
        ErModeConfig::ErCompat => Mode::ErCompat,
        ErModeConfig::Strict => Mode::Strict,
    }
}

/// Builds the harness for one benchmark case.
pub fn make_harness(
    config: &LaunchConfig,
    case: Case,
    index: u64,
    policy_name: &str,
    reachable: Arc<ReachableCache>,
) -> Box<dyn Harness> {
    let prompt = if config.task.put_in_prompt {
        PromptVariant::PutIn
    } else {
        PromptVariant::Put
    };
    let seed = config.run.seed;
    Box::new(
        ErHarness::new(case, er_mode(config), prompt, seed)
            .with_index(index)
            .with_policy_name(policy_name)
            .with_reachable_cache(reachable),
    )
}
