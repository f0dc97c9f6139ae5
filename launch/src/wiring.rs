//! Wiring: the one place that chooses implementations for the contracts from a launch file.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ember_agent::er::executor::ReachableCache;
use ember_agent::er::{Case, ErHarness, Mode, PromptVariant};
use ember_agent::policies::{OraclePolicy, RandomPolicy, ReplayPolicy};
use ember_agent::{Harness, Policy, World};
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

/// Builds the world.
pub fn make_world(w: &WorldConfig) -> anyhow::Result<Box<dyn World>> {
    let config = SimWorldConfig {
        endpoint: world_endpoint(w),
        settings: sim_settings(w),
        default_scene: None,
        timeout: Duration::from_secs_f64(w.timeout_s),
    };
    let endpoint = config.endpoint.clone();
    let world = SimWorld::connect(config)
        .with_context(|| format!("connecting to the simulator at {endpoint}"))?;
    Ok(Box::new(world))
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
        PolicyKind::Vlm => anyhow::bail!("policy.kind = \"vlm\" is not available in this build"),
    })
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
