//! `ember sim ...`: the embedded simulator (thor-lite) from the command line.
//!
//! - `ember sim scenes`: list the 120 iTHOR scenes with room type and object counts.
//! - `ember sim shot`: render one view of a scene to PNG (RGB, optional depth and
//!   segmentation).
//! - `ember sim serve`: serve thor-lite over the bridge protocol (ZeroMQ) until Ctrl-C.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ember_sim_bridge::thor::ThorLite;
use ember_sim_bridge::{InitSettings, Simulator};
use serde_json::{Map, Value, json};

/// The `sim` command family.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// List the embedded iTHOR scenes: name, room type, object counts, start pose.
    Scenes(ScenesArgs),
    /// Render one view of a scene to PNG files (thor-lite's CPU renderer).
    Shot(ShotArgs),
    /// Serve thor-lite over the bridge protocol (ember-sim/1, ZeroMQ) until Ctrl-C or a
    /// `close` request.
    Serve(ServeArgs),
}

/// Options of `ember sim scenes`.
#[derive(Debug, Args)]
pub struct ScenesArgs {
    /// Only scenes of this room type (kitchens, living_rooms, bedrooms, bathrooms).
    #[arg(long)]
    pub room: Option<String>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `ember sim shot`.
#[derive(Debug, Args)]
pub struct ShotArgs {
    /// The scene, e.g. FloorPlan5 (`ember sim scenes` lists them).
    #[arg(long)]
    pub scene: String,
    /// Agent pose `x,z,yaw[,horizon]` (metres, degrees; horizon positive looks down).
    /// Default: the scene's start pose.
    #[arg(long, allow_hyphen_values = true)]
    pub pose: Option<String>,
    /// Crouch (camera at the agent's position height) instead of standing.
    #[arg(long)]
    pub crouch: bool,
    /// Image width in pixels.
    #[arg(long, default_value_t = 800)]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 450)]
    pub height: u32,
    /// Vertical field of view in degrees (AI2-THOR's `fieldOfView` is vertical, as in Unity).
    #[arg(long, default_value_t = 90.0)]
    pub fov: f64,
    /// Also write the depth image: 16-bit PNG, millimetres along the optical axis.
    #[arg(long)]
    pub depth: Option<PathBuf>,
    /// Also write the instance segmentation: one colour per object, background black.
    #[arg(long)]
    pub segmentation: Option<PathBuf>,
    /// Print the objects visible in the view.
    #[arg(long)]
    pub list_visible: bool,
    /// An AI2-THOR action (JSON) to run before the shot, after placing the camera; repeat
    /// for several, e.g. `--act '{"action":"OpenObject","objectId":"Fridge|+01.98|+00.00|-00.54","forceAction":true}'`.
    #[arg(long = "act", value_name = "JSON")]
    pub actions: Vec<String>,
    /// The RGB output file.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs a `sim` subcommand.
pub fn run(cmd: SimCommand) -> Result<()> {
    match cmd {
        SimCommand::Scenes(a) => scenes(a),
        SimCommand::Shot(a) => shot(a),
        SimCommand::Serve(a) => serve(a),
    }
}

/// Writes a line to stdout; a closed pipe (`| head`) ends the listing quietly.
macro_rules! out {
    ($($t:tt)*) => {
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
    };
}

fn scenes(a: ScenesArgs) -> Result<()> {
    if !a.json {
        out!(
            "{:<14} {:<13} {:>7} {:>10} {:>11} {:>8}  start (x, z, yaw)",
            "scene",
            "room",
            "objects",
            "pickupable",
            "receptacles",
            "openable"
        );
    }
    for name in ThorLite::scene_names() {
        let s = ThorLite::scene_summary(&name).with_context(|| format!("reading scene {name}"))?;
        if a.room.as_deref().is_some_and(|r| r != s.room_type) {
            continue;
        }
        if a.json {
            out!("{}", serde_json::to_string(&s)?);
        } else {
            out!(
                "{:<14} {:<13} {:>7} {:>10} {:>11} {:>8}  ({:.2}, {:.2}, {:.0})",
                s.name,
                s.room_type,
                s.objects,
                s.pickupable,
                s.receptacles,
                s.openable,
                s.start_pose.x,
                s.start_pose.z,
                s.start_pose.rotation
            );
        }
    }
    Ok(())
}

fn parse_pose(text: &str) -> Result<(f64, f64, f64, f64)> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() != 3 && parts.len() != 4 {
        bail!("--pose '{text}': expected x,z,yaw or x,z,yaw,horizon");
    }
    let mut v = Vec::new();
    for (k, p) in parts.iter().enumerate() {
        let f: f64 = p
            .parse()
            .with_context(|| format!("--pose '{text}': field {} ('{p}') is not a number", k + 1))?;
        if !f.is_finite() {
            bail!("--pose '{text}': field {} is not finite", k + 1);
        }
        v.push(f);
    }
    Ok((v[0], v[1], v[2], v.get(3).copied().unwrap_or(0.0)))
}

fn action(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn shot(a: ShotArgs) -> Result<()> {
    let settings = InitSettings {
        width: a.width,
        height: a.height,
        field_of_view: a.fov,
        render_depth_image: a.depth.is_some(),
        render_instance_segmentation: a.segmentation.is_some(),
        visibility_distance: 20.0,
        ..InitSettings::default()
    };
    let mut sim = ThorLite::new();
    let mut ev = sim
        .reset(&a.scene, &settings)
        .with_context(|| format!("loading scene {}", a.scene))?;
    if a.pose.is_some() || a.crouch {
        let ag = &ev.metadata.agent;
        let (x, z, yaw, horizon) = match &a.pose {
            Some(p) => parse_pose(p)?,
            None => (
                ag.position.x,
                ag.position.z,
                ag.rotation.y,
                ag.camera_horizon,
            ),
        };
        ev = sim.step(&action(json!({
            "action": "TeleportFull",
            "position": {"x": x, "y": ag.position.y, "z": z},
            "rotation": {"x": 0.0, "y": yaw, "z": 0.0},
            "horizon": horizon,
            "standing": !a.crouch,
            "forceAction": true,
        })))?;
        if !ev.metadata.last_action_success {
            bail!("could not place the camera: {}", ev.metadata.error_message);
        }
    }
    for (k, text) in a.actions.iter().enumerate() {
        let v: Value = serde_json::from_str(text)
            .with_context(|| format!("--act #{}: not JSON: {text}", k + 1))?;
        let Value::Object(map) = v else {
            bail!(
                "--act #{}: expected a JSON object like {{\"action\": \"OpenObject\", ...}}",
                k + 1
            );
        };
        ev = sim
            .step(&map)
            .with_context(|| format!("--act #{}", k + 1))?;
        if !ev.metadata.last_action_success {
            eprintln!(
                "--act #{} ({}) failed: {}",
                k + 1,
                ev.metadata.last_action,
                ev.metadata.error_message
            );
        }
    }
    let rgb = ev
        .frames
        .rgb
        .as_ref()
        .context("the simulator returned no RGB frame")?;
    write_rgb(&a.out, rgb.width, rgb.height, rgb.data.clone())?;
    if let (Some(path), Some(d)) = (&a.depth, &ev.frames.depth) {
        let mm: Vec<u16> = d
            .data
            .iter()
            .map(|&m| (m * 1000.0).round().clamp(0.0, 65535.0) as u16)
            .collect();
        let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(d.width, d.height, mm)
            .context("depth buffer size")?;
        img.save(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let (Some(path), Some(s)) = (&a.segmentation, &ev.frames.instances) {
        let mut data = Vec::with_capacity(s.data.len() * 3);
        for &id in &s.data {
            data.extend_from_slice(&id_colour(id));
        }
        write_rgb(path, s.width, s.height, data)?;
    }
    let m = &ev.metadata;
    out!(
        "{}: agent ({:.2}, {:.2}, {:.2}) yaw {:.0} horizon {:.0}, {} of {} objects visible -> {}",
        m.scene_name,
        m.agent.position.x,
        m.agent.position.y,
        m.agent.position.z,
        m.agent.rotation.y,
        m.agent.camera_horizon,
        m.objects.iter().filter(|o| o.visible).count(),
        m.objects.len(),
        a.out.display()
    );
    if a.list_visible {
        for o in m.objects.iter().filter(|o| o.visible) {
            out!(
                "  {:<50} {:>5.2} m{}",
                o.object_id,
                o.distance,
                if o.is_interactable {
                    "  interactable"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

fn write_rgb(path: &Path, w: u32, h: u32, data: Vec<u8>) -> Result<()> {
    let img = image::RgbImage::from_raw(w, h, data).context("image buffer size")?;
    img.save(path)
        .with_context(|| format!("writing {}", path.display()))
}

fn id_colour(id: u32) -> [u8; 3] {
    if id == 0 {
        return [0, 0, 0];
    }
    let mut h = id.wrapping_mul(0x9E37_79B1);
    h ^= h >> 15;
    [
        (h & 0xff) as u8 | 0x20,
        ((h >> 8) & 0xff) as u8 | 0x20,
        ((h >> 16) & 0xff) as u8 | 0x20,
    ]
}

/// Options of `ember sim serve`. The size and render options are the defaults a `reset`
/// request gets for the settings it leaves out.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// ZeroMQ endpoint to bind: tcp://HOST:PORT (PORT may be * for a free port) or ipc://PATH.
    #[arg(long, default_value = "tcp://127.0.0.1:5555")]
    pub endpoint: String,
    /// Default frame width in pixels.
    #[arg(long, default_value_t = InitSettings::default().width)]
    pub width: u32,
    /// Default frame height in pixels.
    #[arg(long, default_value_t = InitSettings::default().height)]
    pub height: u32,
    /// Default vertical field of view in degrees.
    #[arg(long, default_value_t = InitSettings::default().field_of_view)]
    pub fov: f64,
    /// Default grid size for moves, metres.
    #[arg(long, default_value_t = InitSettings::default().grid_size)]
    pub grid_size: f64,
    /// Default visibility distance, metres.
    #[arg(long, default_value_t = InitSettings::default().visibility_distance)]
    pub visibility_distance: f64,
    /// Render depth frames unless a reset says otherwise.
    #[arg(long)]
    pub depth: bool,
    /// Render instance segmentation unless a reset says otherwise.
    #[arg(long)]
    pub instances: bool,
    /// Largest width or height a reset may ask for, pixels.
    #[arg(long, default_value_t = ember_sim_bridge::protocol::Limits::default().max_side)]
    pub max_side: u32,
}

fn serve(a: ServeArgs) -> Result<()> {
    use ember_sim_bridge::protocol::{Limits, PROTOCOL_VERSION};
    use ember_sim_bridge::{Server, ServerConfig};

    let defaults = InitSettings {
        width: a.width,
        height: a.height,
        field_of_view: a.fov,
        grid_size: a.grid_size,
        visibility_distance: a.visibility_distance,
        render_depth_image: a.depth,
        render_instance_segmentation: a.instances,
        ..InitSettings::default()
    };
    let limits = Limits {
        max_side: a.max_side,
        ..Limits::default()
    };
    // Refuse defaults that every reset would then fail on.
    ember_sim_bridge::protocol::resolve_settings(&defaults, &Map::new(), &limits)
        .map_err(|e| anyhow::anyhow!("default settings: {e}"))?;
    let mut server = Server::bind(
        &a.endpoint,
        Box::new(ThorLite::new()),
        ServerConfig { defaults, limits },
    )?;
    let stop = server.stop_handle();
    ctrlc::set_handler(move || stop.stop()).context("installing the Ctrl-C handler")?;
    // A stable line that scripts and tests wait for.
    println!(
        "ember sim serve: serving {PROTOCOL_VERSION} (thor-lite) on {}",
        server.endpoint()
    );
    let summary = server.serve()?;
    println!(
        "ember sim serve: stopped after {} requests ({} error replies){}",
        summary.requests,
        summary.errors,
        if summary.closed_by_request {
            ", by a close request"
        } else {
            ""
        }
    );
    Ok(())
}
