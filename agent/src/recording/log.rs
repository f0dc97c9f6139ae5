//! Turning recorder events into Rerun archetypes (on the recorder thread).
//!
//! [`EventLogger`] keeps what the events alone do not carry: the episode and the global step
//! offset, the frame counter, the trajectory so far, the stable instance ids that colour
//! segmentation and boxes alike, and the last camera poses (to project 3-D points into the
//! images). See [`super::paths`] for what goes where.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ember_calibration::Pinhole;
use ember_calibration::frames::{Camera, Transform, World};
use rerun::components::{MediaType, TextLogLevel};
use rerun::datatypes::{ChannelDatatype, Quaternion};
use rerun::{RecordingStream, RecordingStreamResult};

use super::RecordingConfig;
use super::frames::{RecPose, WorldConvention};
use super::layout;
use super::paths;
use super::queue::QueueCounters;
use crate::action::Action;
use crate::observation::{CameraFrame, DepthImage, InstanceImage, Observation, RgbImage};
use crate::policy::{Candidate, Decision, EpisodeInfo, Feedback, FeedbackKind, PolicyInfo};
use crate::recorder::{RecordEvent, StepTimings};
use crate::thor;
use crate::world::WorldInfo;

/// The most trajectory points kept per episode; beyond this every other point is dropped.
const MAX_TRAJECTORY_POINTS: usize = 4096;
/// A move shorter than this (metres) does not extend the trajectory.
const TRAJECTORY_MIN_STEP: f32 = 0.01;
/// Object types that are the room itself: drawn with the other (grey, unlabelled) boxes even
/// when visible, so they do not cover the view.
const STRUCTURE: [&str; 3] = ["Floor", "Wall", "Ceiling"];
/// Instance id reserved for "more instances than ids".
const OVERFLOW_ID: u16 = u16::MAX;

/// A labelled point (label, position in metres).
type LabelledPoint = (String, [f64; 3]);

/// What the logger needs from the configuration.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// Log depth images.
    pub depth: bool,
    /// Log segmentation images.
    pub segmentation: bool,
    /// Log object boxes.
    pub objects: bool,
    /// Log the prompt.
    pub prompt: bool,
    /// Log streaming partial replies.
    pub partial_replies: bool,
    /// JPEG quality for colour images, if compressing.
    pub jpeg_quality: Option<u8>,
}

impl From<&RecordingConfig> for LogSettings {
    fn from(c: &RecordingConfig) -> Self {
        Self {
            depth: c.depth,
            segmentation: c.segmentation,
            objects: c.objects,
            prompt: c.prompt,
            partial_replies: c.records_partial_replies(),
            jpeg_quality: c.jpeg_quality,
        }
    }
}

#[derive(Clone)]
struct CameraView {
    pose: Transform<World, Camera>,
    intrinsics: Pinhole,
}

/// Logs events to a recording stream. Single-threaded: owned by the recorder thread.
pub struct EventLogger {
    rec: RecordingStream,
    settings: LogSettings,
    convention: Option<WorldConvention>,
    blueprint_sent: bool,
    episode: u64,
    step_offset: u64,
    max_global_step: Option<u64>,
    current_step: u64,
    sim_time: Option<f64>,
    frame: u64,
    trajectory: Vec<[f32; 3]>,
    instance_ids: HashMap<String, u16>,
    annotations: Vec<(u16, String)>,
    annotations_logged: usize,
    objects_hash: Option<u64>,
    cameras: HashMap<String, CameraView>,
    base: Option<([f64; 3], f64)>,
    errors: u64,
}

impl EventLogger {
    /// A logger writing to `rec`.
    pub fn new(rec: RecordingStream, settings: LogSettings) -> Self {
        rec.set_log_time_enabled(false);
        rec.set_log_tick_enabled(false);
        Self {
            rec,
            settings,
            convention: None,
            blueprint_sent: false,
            episode: 0,
            step_offset: 0,
            max_global_step: None,
            current_step: 0,
            sim_time: None,
            frame: 0,
            trajectory: Vec::new(),
            instance_ids: HashMap::new(),
            annotations: Vec::new(),
            annotations_logged: 0,
            objects_hash: None,
            cameras: HashMap::new(),
            base: None,
            errors: 0,
        }
    }

    /// The stream.
    pub fn stream(&self) -> &RecordingStream {
        &self.rec
    }

    /// How many log calls failed so far.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Logs one event. `counters` are the queue's counters, recorded with the timings.
    pub fn handle(&mut self, event: &RecordEvent, counters: &QueueCounters) {
        if let Err(e) = self.handle_inner(event, counters) {
            self.errors += 1;
            if self.errors == 1 || self.errors.is_power_of_two() {
                tracing::warn!(
                    "recorder: could not log an event ({} so far): {e}",
                    self.errors
                );
            }
        }
    }

    fn handle_inner(
        &mut self,
        event: &RecordEvent,
        counters: &QueueCounters,
    ) -> RecordingStreamResult<()> {
        match event {
            RecordEvent::EpisodeStart {
                episode,
                world,
                policy,
            } => self.episode_start(episode, world, policy),
            RecordEvent::Observation {
                step,
                label,
                observation,
            } => self.observation(*step, label, observation),
            RecordEvent::Prompt { step, text } => {
                if !self.settings.prompt {
                    return Ok(());
                }
                self.set_step(*step);
                self.rec
                    .log(paths::PROMPT, &rerun::TextDocument::new(text.as_str()))?;
                self.rec.log(
                    paths::LOG_PROMPT,
                    &rerun::TextLog::new(text.as_str()).with_level(TextLogLevel::DEBUG),
                )
            }
            RecordEvent::PartialReply { step, text } => {
                if !self.settings.partial_replies {
                    return Ok(());
                }
                self.set_step(*step);
                self.rec
                    .log(paths::REPLY, &rerun::TextDocument::new(text.as_str()))
            }
            RecordEvent::Decision { step, decision } => self.decision(*step, decision),
            RecordEvent::Action { step, action, text } => self.action(*step, action.as_ref(), text),
            RecordEvent::Candidates { step, candidates } => self.candidates(*step, candidates),
            RecordEvent::Feedback { step, feedback } => self.feedback(*step, feedback),
            RecordEvent::Timings { step, timings } => self.timings(*step, timings, counters),
            RecordEvent::Memory {
                step,
                images,
                tokens,
            } => {
                self.set_step(*step);
                self.scalar(&format!("{}/images", paths::MEMORY), *images as f64)?;
                self.scalar(&format!("{}/tokens", paths::MEMORY), *tokens as f64)
            }
            RecordEvent::Metrics { step, values } => {
                self.set_step(*step);
                for (name, v) in values {
                    self.scalar(&format!("{}/{}", paths::METRICS, paths::part(name)), *v)?;
                }
                Ok(())
            }
            RecordEvent::EpisodeEnd { episode, summary } => self.episode_end(*episode, summary),
        }
    }

    // ---- time -------------------------------------------------------------------------------

    fn set_step(&mut self, step: u64) {
        self.current_step = step;
        let global = self.step_offset + step;
        self.max_global_step = Some(self.max_global_step.map_or(global, |m| m.max(global)));
        self.rec
            .set_time_sequence(paths::TIMELINE_STEP, global as i64);
        self.rec
            .set_time_sequence(paths::TIMELINE_EPISODE, self.episode as i64);
        self.rec
            .set_time_sequence(paths::TIMELINE_EPISODE_STEP, step as i64);
        self.rec
            .set_time_sequence(paths::TIMELINE_FRAME, self.frame as i64);
        match self.sim_time {
            Some(t) if t.is_finite() => self.rec.set_duration_secs(paths::TIMELINE_SIM_TIME, t),
            _ => self.rec.disable_timeline(paths::TIMELINE_SIM_TIME),
        }
    }

    fn scalar(&self, path: &str, v: f64) -> RecordingStreamResult<()> {
        self.rec.log(path, &rerun::Scalars::single(v))
    }

    // ---- episodes -----------------------------------------------------------------------------

    fn episode_start(
        &mut self,
        episode: &EpisodeInfo,
        world: &WorldInfo,
        policy: &PolicyInfo,
    ) -> RecordingStreamResult<()> {
        if let Some(m) = self.max_global_step {
            self.step_offset = m + 1;
        }
        self.episode = episode.index;
        self.sim_time = None;
        self.trajectory.clear();
        self.objects_hash = None;
        self.base = None;
        if !self.blueprint_sent && !world.cameras.is_empty() {
            self.send_blueprint(&world.cameras)?;
        }
        self.set_step(0);
        let mut doc = format!(
            "# Episode {}\n\n**Instruction:** {}\n\n",
            episode.index, episode.instruction
        );
        doc.push_str(&format!("- id: `{}`\n", episode.id));
        if let Some(s) = &episode.scene {
            doc.push_str(&format!("- scene: {s}\n"));
        }
        if let Some(t) = &episode.task_type {
            doc.push_str(&format!("- task type: {t}\n"));
        }
        doc.push_str(&format!("- seed: {}\n", episode.seed));
        doc.push_str(&format!("- world: {} at {}\n", world.kind, world.endpoint));
        doc.push_str(&format!(
            "- policy: {}{}\n",
            policy.name,
            if policy.privileged {
                " (privileged: reads the answer key and the simulator's full state)"
            } else {
                ""
            }
        ));
        self.rec
            .log(paths::EPISODE, &rerun::TextDocument::from_markdown(doc))?;
        self.rec.log(
            paths::LOG_EPISODE,
            &rerun::TextLog::new(format!(
                "episode {} ({}) starts, played by the {} policy: {}",
                episode.index, episode.id, policy.name, episode.instruction
            ))
            .with_level(TextLogLevel::INFO),
        )?;
        // Forget the previous episode's transient things.
        self.rec
            .log(paths::TRAJECTORY, &rerun::LineStrips3D::clear_fields())?;
        self.rec
            .log(paths::OBJECTS_HELD, &rerun::Boxes3D::clear_fields())?;
        self.rec
            .log(paths::CANDIDATES, &rerun::Points3D::clear_fields())?;
        self.rec
            .log(paths::KEYPOINT, &rerun::Points3D::clear_fields())
    }

    fn episode_end(
        &mut self,
        episode: u64,
        summary: &serde_json::Value,
    ) -> RecordingStreamResult<()> {
        let step = self.current_step;
        self.set_step(step);
        let pretty = serde_json::to_string_pretty(summary).unwrap_or_else(|_| summary.to_string());
        self.rec.log(
            paths::EPISODE_SUMMARY,
            &rerun::TextDocument::from_markdown(format!(
                "# Episode {episode} result\n\n```json\n{pretty}\n```\n"
            )),
        )?;
        self.rec.log(
            paths::LOG_EPISODE,
            &rerun::TextLog::new(format!("episode {episode} ends: {summary}"))
                .with_level(TextLogLevel::INFO),
        )
    }

    fn send_blueprint(&mut self, cameras: &[String]) -> RecordingStreamResult<()> {
        self.blueprint_sent = true;
        layout::blueprint(cameras).send(&self.rec, rerun::blueprint::BlueprintActivation::default())
    }

    // ---- observations --------------------------------------------------------------------------

    fn observation(
        &mut self,
        step: u64,
        label: &str,
        obs: &Arc<Observation>,
    ) -> RecordingStreamResult<()> {
        if self.convention.is_none() {
            let convention = if obs.sim.is_some() {
                WorldConvention::UnityYUp
            } else {
                WorldConvention::RightHandedZUp
            };
            self.convention = Some(convention);
            let vc = match convention {
                WorldConvention::UnityYUp => rerun::ViewCoordinates::RFU(),
                WorldConvention::RightHandedZUp => rerun::ViewCoordinates::FLU(),
            };
            self.rec.log_static(paths::WORLD, &vc)?;
            self.log_static_series()?;
        }
        if !self.blueprint_sent {
            let names: Vec<String> = obs.cameras.iter().map(|c| c.name.clone()).collect();
            self.send_blueprint(&names)?;
        }
        self.frame += 1;
        if obs.sim_time.is_some() {
            self.sim_time = obs.sim_time;
        }
        self.set_step(step);
        let convention = self.convention.unwrap_or(WorldConvention::UnityYUp);

        let names: Vec<&str> = obs.cameras.iter().map(|c| c.name.as_str()).collect();
        self.rec.log(
            paths::LOG_OBSERVATION,
            &rerun::TextLog::new(format!("{label} ({})", names.join(", ")))
                .with_level(TextLogLevel::DEBUG),
        )?;

        // Segmentation ids first, so boxes and images share the colours.
        if let Some(meta) = &obs.sim {
            for o in &meta.objects {
                self.instance_id(&o.object_id);
            }
        }
        for cam in &obs.cameras {
            self.camera(convention, cam)?;
        }
        self.log_annotations()?;
        self.agent(convention, obs)?;
        if let Some(meta) = &obs.sim
            && self.settings.objects
        {
            let held = obs
                .proprio
                .held_object
                .as_deref()
                .or_else(|| meta.held_object_id())
                .map(str::to_string);
            self.objects(convention, meta, held.as_deref())?;
        }
        Ok(())
    }

    fn log_static_series(&self) -> RecordingStreamResult<()> {
        for name in ["step", "policy", "world", "executor", "memory", "recorder"] {
            self.rec.log_static(
                format!("{}/{name}", paths::TIMINGS),
                &rerun::SeriesLines::new().with_names([format!("{name} (s)")]),
            )?;
        }
        Ok(())
    }

    fn camera(
        &mut self,
        convention: WorldConvention,
        cam: &CameraFrame,
    ) -> RecordingStreamResult<()> {
        let name = cam.name.as_str();
        if let Some(pose) = &cam.world_from_camera {
            let p = convention.camera_pose(pose);
            self.rec.log(paths::camera(name), &transform(&p))?;
        }
        if let Some(k) = &cam.intrinsics {
            self.rec.log(
                paths::camera_image(name),
                &rerun::Pinhole::from_focal_length_and_resolution(
                    [k.fx as f32, k.fy as f32],
                    [k.width as f32, k.height as f32],
                )
                .with_principal_point([k.cx as f32, k.cy as f32])
                .with_camera_xyz(rerun::components::ViewCoordinates::RDF)
                .with_image_plane_distance(0.5),
            )?;
            if let Some(pose) = cam.world_from_camera {
                self.cameras.insert(
                    name.to_string(),
                    CameraView {
                        pose,
                        intrinsics: *k,
                    },
                );
            }
        }
        self.rgb(name, &cam.rgb)?;
        if self.settings.depth
            && let Some(d) = &cam.depth
        {
            self.rec
                .log(paths::camera_layer(name, "depth"), &depth_image(d))?;
        }
        if self.settings.segmentation
            && let Some(s) = &cam.instances
        {
            let img = self.segmentation_image(s);
            self.rec
                .log(paths::camera_layer(name, "segmentation"), &img)?;
        }
        Ok(())
    }

    fn rgb(&mut self, name: &str, rgb: &RgbImage) -> RecordingStreamResult<()> {
        let path = paths::camera_layer(name, "rgb");
        if let Some(q) = self.settings.jpeg_quality {
            let mut bytes = Vec::with_capacity(rgb.data.len() / 8);
            let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, q);
            match enc.encode(
                &rgb.data,
                rgb.width,
                rgb.height,
                image::ExtendedColorType::Rgb8,
            ) {
                Ok(()) => {
                    return self.rec.log(
                        path,
                        &rerun::EncodedImage::from_file_contents(bytes)
                            .with_media_type(MediaType::jpeg()),
                    );
                }
                Err(e) => tracing::warn!("recorder: JPEG encoding failed ({e}); logging raw RGB"),
            }
        }
        self.rec.log(
            path,
            &rerun::Image::from_rgb24(rgb.data.clone(), [rgb.width, rgb.height]),
        )
    }

    /// The stable id of an instance (by objectId), assigning the next one on first sight.
    fn instance_id(&mut self, object_id: &str) -> u16 {
        if let Some(id) = self.instance_ids.get(object_id) {
            return *id;
        }
        let next = self.instance_ids.len() + 1;
        if next >= OVERFLOW_ID as usize {
            return OVERFLOW_ID;
        }
        let id = next as u16;
        self.instance_ids.insert(object_id.to_string(), id);
        self.annotations
            .push((id, thor::object_type_of_id(object_id).to_string()));
        id
    }

    fn segmentation_image(&mut self, s: &InstanceImage) -> rerun::SegmentationImage {
        let lut: Vec<u16> = s
            .legend
            .iter()
            .enumerate()
            .map(|(i, id)| {
                if i == 0 || id.is_empty() {
                    0
                } else {
                    self.instance_id(id)
                }
            })
            .collect();
        let mut bytes = vec![0u8; s.data.len() * 2];
        for (out, &i) in bytes.chunks_exact_mut(2).zip(&s.data) {
            let id = lut.get(i as usize).copied().unwrap_or(0);
            out.copy_from_slice(&id.to_le_bytes());
        }
        rerun::SegmentationImage::new(
            bytes,
            rerun::components::ImageFormat::segmentation([s.width, s.height], ChannelDatatype::U16),
        )
        .with_opacity(0.6)
    }

    fn log_annotations(&mut self) -> RecordingStreamResult<()> {
        if self.annotations.len() == self.annotations_logged {
            return Ok(());
        }
        self.annotations_logged = self.annotations.len();
        let entries: Vec<(u16, &str, rerun::Rgba32)> =
            std::iter::once((0u16, "background", rerun::Rgba32::from_rgb(0, 0, 0)))
                .chain(
                    self.annotations
                        .iter()
                        .map(|(id, label)| (*id, label.as_str(), id_color(*id))),
                )
                .collect();
        self.rec
            .log(paths::WORLD, &rerun::AnnotationContext::new(entries))
    }

    fn agent(
        &mut self,
        convention: WorldConvention,
        obs: &Observation,
    ) -> RecordingStreamResult<()> {
        let base = obs
            .proprio
            .base
            .or_else(|| obs.sim.as_deref().map(Observation::base_from_metadata));
        let Some(base) = base else { return Ok(()) };
        self.base = Some((base.position, base.yaw));
        let pose = convention.base_pose(base.position, base.yaw);
        self.rec.log(paths::AGENT, &transform(&pose))?;
        self.rec.log(
            paths::AGENT_BODY,
            &rerun::Arrows3D::from_vectors([[0.4f32, 0.0, 0.0]])
                .with_origins([[0.0f32, 0.0, 0.0]])
                .with_labels(["agent"])
                .with_colors([rerun::Color::from_rgb(255, 60, 200)])
                .with_radii([0.02f32]),
        )?;
        let p = pose.translation;
        let moved = self.trajectory.last().is_none_or(|q| {
            let d = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt();
            d >= TRAJECTORY_MIN_STEP
        });
        if moved {
            self.trajectory.push(p);
            if self.trajectory.len() > MAX_TRAJECTORY_POINTS {
                let last = *self.trajectory.last().unwrap_or(&p);
                let mut keep: Vec<[f32; 3]> = self.trajectory.iter().step_by(2).copied().collect();
                if keep.last() != Some(&last) {
                    keep.push(last);
                }
                self.trajectory = keep;
            }
            self.rec.log(
                paths::TRAJECTORY,
                &rerun::LineStrips3D::new([self.trajectory.clone()])
                    .with_colors([rerun::Color::from_rgb(255, 60, 200)])
                    .with_radii([0.015f32]),
            )?;
        }
        if let Some(arm) = &obs.proprio.arm {
            for (i, q) in arm.joint_positions.iter().enumerate() {
                self.scalar(&format!("{}/joints/{i}", paths::ARM), *q)?;
            }
            if let Some(ee) = arm.end_effector_position {
                let q = arm.end_effector_orientation.unwrap_or([0.0, 0.0, 0.0, 1.0]);
                self.rec.log(
                    paths::END_EFFECTOR,
                    &rerun::Transform3D::from_translation_rotation(
                        ee.map(|v| v as f32),
                        Quaternion::from_xyzw(q.map(|v| v as f32)),
                    ),
                )?;
                self.rec
                    .log(paths::END_EFFECTOR, &rerun::TransformAxes3D::new(0.1f32))?;
            }
        }
        if let Some(g) = obs.proprio.gripper {
            self.scalar(&format!("{}/gripper", paths::ARM), g)?;
        }
        Ok(())
    }

    fn objects(
        &mut self,
        convention: WorldConvention,
        meta: &thor::Metadata,
        held: Option<&str>,
    ) -> RecordingStreamResult<()> {
        let mut h = DefaultHasher::new();
        held.hash(&mut h);
        for o in &meta.objects {
            o.object_id.hash(&mut h);
            o.visible.hash(&mut h);
            for v in [
                o.axis_aligned_bounding_box.center,
                o.axis_aligned_bounding_box.size,
            ] {
                v.x.to_bits().hash(&mut h);
                v.y.to_bits().hash(&mut h);
                v.z.to_bits().hash(&mut h);
            }
        }
        let hash = h.finish();
        if self.objects_hash == Some(hash) {
            return Ok(());
        }
        self.objects_hash = Some(hash);

        #[derive(Default)]
        struct Set {
            centers: Vec<[f32; 3]>,
            sizes: Vec<[f32; 3]>,
            labels: Vec<String>,
            ids: Vec<u16>,
        }
        let (mut visible, mut other, mut held_set) =
            (Set::default(), Set::default(), Set::default());
        for o in &meta.objects {
            let b = &o.axis_aligned_bounding_box;
            if !(b.size.x > 0.0 || b.size.y > 0.0 || b.size.z > 0.0) {
                continue;
            }
            let set = if Some(o.object_id.as_str()) == held {
                &mut held_set
            } else if o.visible && !STRUCTURE.contains(&o.object_type.as_str()) {
                &mut visible
            } else {
                &mut other
            };
            set.centers.push(convention.point(b.center.to_array()));
            set.sizes.push(convention.size(b.size.to_array()));
            set.labels.push(o.object_type.clone());
            set.ids.push(self.instance_id(&o.object_id));
        }
        self.log_annotations()?;
        self.rec.log(
            paths::OBJECTS_VISIBLE,
            &rerun::Boxes3D::from_centers_and_sizes(visible.centers, visible.sizes)
                .with_labels(visible.labels)
                .with_class_ids(visible.ids)
                .with_radii([0.008f32]),
        )?;
        self.rec.log(
            paths::OBJECTS_OTHER,
            &rerun::Boxes3D::from_centers_and_sizes(other.centers, other.sizes)
                .with_colors([rerun::Color::from_unmultiplied_rgba(150, 150, 150, 120)])
                .with_radii([0.003f32])
                .with_show_labels(false),
        )?;
        let labels: Vec<String> = held_set
            .labels
            .iter()
            .map(|l| format!("held: {l}"))
            .collect();
        self.rec.log(
            paths::OBJECTS_HELD,
            &rerun::Boxes3D::from_centers_and_sizes(held_set.centers, held_set.sizes)
                .with_labels(labels)
                .with_colors([rerun::Color::from_rgb(255, 140, 0)])
                .with_radii([0.02f32])
                .with_fill_mode(rerun::components::FillMode::Solid),
        )
    }

    // ---- reasoning ---------------------------------------------------------------------------

    fn decision(&mut self, step: u64, d: &Decision) -> RecordingStreamResult<()> {
        self.set_step(step);
        self.rec.log(
            paths::THOUGHT,
            &rerun::TextDocument::new(d.thought.as_str()),
        )?;
        self.rec
            .log(paths::REPLY, &rerun::TextDocument::new(d.raw.as_str()))?;
        self.rec.log(
            paths::LOG_REPLY,
            &rerun::TextLog::new(d.raw.as_str()).with_level(TextLogLevel::INFO),
        )?;
        let t = &d.timings;
        for (name, v) in [
            ("vision", t.vision),
            ("prefill", t.prefill),
            ("decode", t.decode),
        ] {
            self.scalar(&format!("{}/decision/{name}", paths::TIMINGS), v)?;
        }
        self.scalar(&format!("{}/prompt", paths::TOKENS), t.prompt_tokens as f64)?;
        self.scalar(
            &format!("{}/generated", paths::TOKENS),
            t.generated_tokens as f64,
        )
    }

    fn action(
        &mut self,
        step: u64,
        action: Option<&Action>,
        text: &str,
    ) -> RecordingStreamResult<()> {
        self.set_step(step);
        let (line, level) = match action {
            Some(a) if text.is_empty() => (a.to_string(), TextLogLevel::INFO),
            Some(_) => (text.to_string(), TextLogLevel::INFO),
            None => (format!("unparseable reply: {text}"), TextLogLevel::WARN),
        };
        self.rec.log(
            paths::LOG_ACTION,
            &rerun::TextLog::new(line).with_level(level),
        )?;
        if let Some(Action::Keypoint(k)) = action {
            let label = k
                .choice
                .map(|c| c.to_string())
                .unwrap_or_else(|| "keypoint".into());
            self.points(
                paths::KEYPOINT,
                "keypoint",
                &k.frame,
                &[(label, k.position)],
                rerun::Color::from_rgb(255, 215, 0),
            )?;
        }
        Ok(())
    }

    fn candidates(&mut self, step: u64, candidates: &[Candidate]) -> RecordingStreamResult<()> {
        self.set_step(step);
        // Candidates may come in several frames; group them.
        let mut by_frame: Vec<(String, Vec<LabelledPoint>)> = Vec::new();
        for c in candidates {
            match by_frame.iter_mut().find(|(f, _)| *f == c.frame) {
                Some((_, v)) => v.push((c.label.to_string(), c.position)),
                None => by_frame.push((c.frame.clone(), vec![(c.label.to_string(), c.position)])),
            }
        }
        if by_frame.is_empty() {
            return self
                .rec
                .log(paths::CANDIDATES, &rerun::Points3D::clear_fields());
        }
        for (frame, pts) in by_frame {
            self.points(
                paths::CANDIDATES,
                "candidates",
                &frame,
                &pts,
                rerun::Color::from_rgb(0, 200, 255),
            )?;
        }
        Ok(())
    }

    /// Logs labelled points stated in `frame` in 3-D (under `world` when the frame is `world`
    /// or `base`, else under `frames/{frame}`) and their projections into each camera image.
    fn points(
        &mut self,
        world_path: &str,
        layer: &str,
        frame: &str,
        pts: &[LabelledPoint],
        color: rerun::Color,
    ) -> RecordingStreamResult<()> {
        let convention = self.convention.unwrap_or(WorldConvention::UnityYUp);
        let world_pts: Option<Vec<[f64; 3]>> = match frame {
            "world" => Some(pts.iter().map(|(_, p)| *p).collect()),
            "base" => self.base.map(|(pos, yaw)| {
                pts.iter()
                    .map(|(_, p)| base_to_world(convention, pos, yaw, *p))
                    .collect()
            }),
            _ => None,
        };
        let labels: Vec<&str> = pts.iter().map(|(l, _)| l.as_str()).collect();
        let Some(world_pts) = world_pts else {
            let path = format!("frames/{}/{layer}", paths::part(frame));
            let raw: Vec<[f32; 3]> = pts.iter().map(|(_, p)| p.map(|v| v as f32)).collect();
            return self.rec.log(
                path,
                &rerun::Points3D::new(raw)
                    .with_labels(labels)
                    .with_colors([color])
                    .with_radii([0.02f32]),
            );
        };
        let rec_pts: Vec<[f32; 3]> = world_pts.iter().map(|p| convention.point(*p)).collect();
        self.rec.log(
            world_path,
            &rerun::Points3D::new(rec_pts)
                .with_labels(labels.clone())
                .with_colors([color])
                .with_radii([0.03f32]),
        )?;
        let mut cams: Vec<(&String, &CameraView)> = self.cameras.iter().collect();
        cams.sort_by(|a, b| a.0.cmp(b.0));
        for (name, view) in cams {
            let mut uv = Vec::new();
            let mut lab = Vec::new();
            for (p, l) in world_pts.iter().zip(&labels) {
                if let Some(px) = convention.project(&view.pose, &view.intrinsics, *p) {
                    uv.push(px);
                    lab.push(*l);
                }
            }
            self.rec.log(
                paths::camera_layer(name, layer),
                &rerun::Points2D::new(uv)
                    .with_labels(lab)
                    .with_colors([color])
                    .with_radii([-6.0f32]),
            )?;
        }
        Ok(())
    }

    fn feedback(&mut self, step: u64, f: &Feedback) -> RecordingStreamResult<()> {
        self.set_step(step);
        let kind = match f.kind {
            FeedbackKind::Executed => "executed",
            FeedbackKind::Failed => "failed",
            FeedbackKind::Illegal => "illegal",
            FeedbackKind::Unparseable => "unparseable",
            FeedbackKind::TimedOut => "timed out",
        };
        let level = if f.success && f.kind == FeedbackKind::Executed {
            TextLogLevel::INFO
        } else {
            TextLogLevel::WARN
        };
        self.rec.log(
            paths::LOG_FEEDBACK,
            &rerun::TextLog::new(format!("[{kind}] {}", f.message)).with_level(level),
        )
    }

    fn timings(
        &mut self,
        step: u64,
        t: &StepTimings,
        counters: &QueueCounters,
    ) -> RecordingStreamResult<()> {
        self.set_step(step);
        for (name, v) in [
            ("step", t.step),
            ("policy", t.policy),
            ("world", t.world),
            ("executor", t.executor),
            ("memory", t.memory),
            ("recorder", t.recorder),
        ] {
            self.scalar(&format!("{}/{name}", paths::TIMINGS), v)?;
        }
        self.scalar(
            &format!("{}/dropped", paths::RECORDER),
            counters.dropped as f64,
        )?;
        self.scalar(
            &format!("{}/queued", paths::RECORDER),
            counters.queued as f64,
        )
    }
}

fn transform(p: &RecPose) -> rerun::Transform3D {
    rerun::Transform3D::from_translation_rotation(
        p.translation,
        Quaternion::from_xyzw(p.quaternion),
    )
}

/// A point in the base frame (x forward, y left, z up) to world coordinates of the world's own
/// convention, for a base at `position` with heading `yaw`.
fn base_to_world(
    convention: WorldConvention,
    position: [f64; 3],
    yaw: f64,
    p: [f64; 3],
) -> [f64; 3] {
    let (s, c) = yaw.sin_cos();
    match convention {
        // Unity: forward (sin, 0, cos), left (-cos, 0, sin), up (0, 1, 0).
        WorldConvention::UnityYUp => [
            position[0] + p[0] * s - p[1] * c,
            position[1] + p[2],
            position[2] + p[0] * c + p[1] * s,
        ],
        WorldConvention::RightHandedZUp => [
            position[0] + p[0] * c - p[1] * s,
            position[1] + p[0] * s + p[1] * c,
            position[2] + p[2],
        ],
    }
}

fn depth_image(d: &DepthImage) -> rerun::DepthImage {
    let mut bytes = vec![0u8; d.data.len() * 2];
    for (out, &m) in bytes.chunks_exact_mut(2).zip(&d.data) {
        let mm = if m.is_finite() && m > 0.0 {
            (m * 1000.0).round().min(u16::MAX as f32) as u16
        } else {
            0
        };
        out.copy_from_slice(&mm.to_le_bytes());
    }
    rerun::DepthImage::from_data_type_and_bytes(bytes, [d.width, d.height], ChannelDatatype::U16)
        .with_meter(1000.0f32)
}

/// A distinct, deterministic colour for an instance id (golden-ratio hues).
fn id_color(id: u16) -> rerun::Rgba32 {
    let h = (id as f32 * 0.618_034).fract();
    let (s, v) = (0.65f32, 0.95f32);
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    let (r, g, b) = match i as i32 % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    rerun::Rgba32::from_rgb((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_to_world_matches_the_logged_base_pose() {
        for convention in [WorldConvention::UnityYUp, WorldConvention::RightHandedZUp] {
            let pos = [1.0, 0.9, -2.0];
            let yaw = 0.7;
            let local = [0.5, 0.2, 0.3];
            let w = convention.point(base_to_world(convention, pos, yaw, local));
            let pose = convention.base_pose(pos, yaw);
            let q = nalgebra::UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(
                pose.quaternion[3] as f64,
                pose.quaternion[0] as f64,
                pose.quaternion[1] as f64,
                pose.quaternion[2] as f64,
            ));
            let v = q * nalgebra::Vector3::new(local[0], local[1], local[2]);
            for i in 0..3 {
                assert!(
                    (w[i] as f64 - (pose.translation[i] as f64 + v[i])).abs() < 1e-5,
                    "{convention:?}: {w:?} vs {:?} + {v:?}",
                    pose.translation
                );
            }
        }
    }

    #[test]
    fn depth_is_millimetres_with_unknowns_zero() {
        let d = DepthImage {
            width: 4,
            height: 1,
            data: vec![1.2345, 0.0, f32::NAN, 100.0],
        };
        let img = depth_image(&d);
        let buf = img.buffer.expect("buffer");
        let arr = buf.array;
        let bytes: Vec<u8> = {
            use rerun::external::arrow::array::AsArray;
            let list = arr.as_list::<i32>();
            let vals = list.value(0);
            let prim = vals.as_primitive::<rerun::external::arrow::datatypes::UInt8Type>();
            (0..prim.len()).map(|i| prim.value(i)).collect()
        };
        let mm: Vec<u16> = bytes
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(mm, vec![1235, 0, 0, u16::MAX]);
    }

    /// Every kind of event, logged to a memory sink: no error, and each lands where
    /// `paths` says.
    #[test]
    fn every_event_kind_lands_on_its_entity() {
        use crate::action::{GripperIntent, KeypointAction};
        use crate::observation::{ArmState, BaseState, Proprioception};
        use crate::policy::Candidate;
        use crate::thor::{AxisAlignedBox, Metadata, ObjectMeta, Vec3};
        use ember_calibration::thor::camera_pose;

        let (rec, storage) = rerun::RecordingStreamBuilder::new("ember_test")
            .recording_id("log-test")
            .memory()
            .unwrap();
        let mut logger = EventLogger::new(
            rec.clone(),
            LogSettings {
                depth: true,
                segmentation: true,
                objects: true,
                prompt: true,
                partial_replies: true,
                jpeg_quality: Some(80),
            },
        );
        let (w, h) = (64u32, 48u32);
        let apple = ObjectMeta {
            object_id: "Apple|+00.00|+00.90|+01.00".into(),
            object_type: "Apple".into(),
            visible: true,
            axis_aligned_bounding_box: AxisAlignedBox::from_min_max(
                Vec3::new(-0.05, 0.85, 0.95),
                Vec3::new(0.05, 0.95, 1.05),
            ),
            ..Default::default()
        };
        let mug = ObjectMeta {
            object_id: "Mug|+00.50|+00.90|+01.00".into(),
            object_type: "Mug".into(),
            axis_aligned_bounding_box: AxisAlignedBox::from_min_max(
                Vec3::new(0.45, 0.85, 0.95),
                Vec3::new(0.55, 0.95, 1.05),
            ),
            ..Default::default()
        };
        let meta = Metadata {
            objects: vec![apple.clone(), mug.clone()],
            inventory_objects: vec![crate::thor::InventoryObject {
                object_id: mug.object_id.clone(),
                object_type: "Mug".into(),
            }],
            ..Default::default()
        };
        let obs = Observation {
            step: 0,
            sim_time: Some(0.5),
            cameras: vec![CameraFrame {
                name: "front".into(),
                rgb: Arc::new(RgbImage::black(w, h)),
                depth: Some(Arc::new(DepthImage {
                    width: w,
                    height: h,
                    data: vec![1.0; (w * h) as usize],
                })),
                instances: Some(Arc::new(InstanceImage {
                    width: w,
                    height: h,
                    data: vec![1; (w * h) as usize],
                    legend: vec![String::new(), apple.object_id.clone()],
                })),
                intrinsics: Some(Pinhole::from_vertical_fov(w, h, 1.2).unwrap()),
                world_from_camera: Some(camera_pose(
                    nalgebra::Point3::new(0.0, 0.9, 0.0),
                    0.0,
                    0.0,
                )),
            }],
            proprio: Proprioception {
                base: Some(BaseState {
                    position: [0.0, 0.9, 0.0],
                    yaw: 0.0,
                    camera_pitch: 0.0,
                    standing: true,
                }),
                arm: Some(ArmState {
                    joint_positions: vec![0.1, 0.2],
                    end_effector_position: Some([0.3, 0.0, 0.2]),
                    end_effector_orientation: None,
                }),
                gripper: Some(1.0),
                held_object: None,
            },
            sim: Some(Arc::new(meta)),
        };
        let c = QueueCounters::default();
        let events = vec![
            RecordEvent::EpisodeStart {
                episode: EpisodeInfo {
                    instruction: "find the apple".into(),
                    ..Default::default()
                },
                world: WorldInfo {
                    kind: "thor-lite".into(),
                    endpoint: "inproc".into(),
                    cameras: vec!["front".into()],
                },
                policy: PolicyInfo {
                    name: "oracle".into(),
                    privileged: true,
                },
            },
            RecordEvent::Observation {
                step: 0,
                label: "init".into(),
                observation: Arc::new(obs),
            },
            RecordEvent::Prompt {
                step: 1,
                text: "what next?".into(),
            },
            RecordEvent::PartialReply {
                step: 1,
                text: "<Think".into(),
            },
            RecordEvent::Decision {
                step: 1,
                decision: Decision {
                    raw: "r".into(),
                    thought: "t".into(),
                    ..Default::default()
                },
            },
            RecordEvent::Candidates {
                step: 1,
                candidates: vec![
                    Candidate {
                        label: 'A',
                        position: [0.0, 0.9, 1.0],
                        frame: "world".into(),
                    },
                    Candidate {
                        label: 'B',
                        position: [1.0, 0.0, 0.0],
                        frame: "base".into(),
                    },
                    Candidate {
                        label: 'C',
                        position: [0.1, 0.2, 0.3],
                        frame: "task".into(),
                    },
                ],
            },
            RecordEvent::Action {
                step: 1,
                action: Some(Action::Keypoint(KeypointAction {
                    position: [0.0, 0.9, 1.0],
                    frame: "world".into(),
                    gripper: GripperIntent::Close,
                    choice: Some('A'),
                })),
                text: String::new(),
            },
            RecordEvent::Action {
                step: 2,
                action: None,
                text: "gibberish".into(),
            },
            RecordEvent::Feedback {
                step: 1,
                feedback: Feedback {
                    success: false,
                    kind: FeedbackKind::Failed,
                    message: "no".into(),
                },
            },
            RecordEvent::Timings {
                step: 1,
                timings: StepTimings::default(),
            },
            RecordEvent::Memory {
                step: 1,
                images: 2,
                tokens: 30,
            },
            RecordEvent::Metrics {
                step: 1,
                values: vec![("success".into(), 1.0)],
            },
            RecordEvent::EpisodeEnd {
                episode: 0,
                summary: serde_json::json!({"success": true}),
            },
        ];
        for e in &events {
            logger.handle(e, &c);
        }
        assert_eq!(logger.errors(), 0);
        rec.flush_blocking().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for msg in storage.take() {
            if let rerun::log::LogMsg::ArrowMsg(store, arrow) = &msg
                && store.kind() == rerun::StoreKind::Recording
            {
                let chunk = rerun::log::Chunk::from_arrow_msg(arrow).unwrap();
                seen.insert(
                    chunk
                        .entity_path()
                        .to_string()
                        .trim_start_matches('/')
                        .to_string(),
                );
            }
        }
        for path in [
            paths::WORLD.to_string(),
            paths::camera("front"),
            paths::camera_image("front"),
            paths::camera_layer("front", "rgb"),
            paths::camera_layer("front", "depth"),
            paths::camera_layer("front", "segmentation"),
            paths::camera_layer("front", "candidates"),
            paths::camera_layer("front", "keypoint"),
            paths::AGENT.into(),
            paths::AGENT_BODY.into(),
            paths::END_EFFECTOR.into(),
            paths::TRAJECTORY.into(),
            paths::OBJECTS_VISIBLE.into(),
            paths::OBJECTS_OTHER.into(),
            paths::OBJECTS_HELD.into(),
            paths::CANDIDATES.into(),
            paths::KEYPOINT.into(),
            "frames/task/candidates".into(),
            paths::THOUGHT.into(),
            paths::REPLY.into(),
            paths::PROMPT.into(),
            paths::EPISODE.into(),
            paths::EPISODE_SUMMARY.into(),
            paths::LOG_EPISODE.into(),
            paths::LOG_OBSERVATION.into(),
            paths::LOG_PROMPT.into(),
            paths::LOG_REPLY.into(),
            paths::LOG_ACTION.into(),
            paths::LOG_FEEDBACK.into(),
            "timings/step".into(),
            "timings/decision/decode".into(),
            "tokens/prompt".into(),
            "memory/images".into(),
            "metrics/success".into(),
            "arm/joints/0".into(),
            "arm/gripper".into(),
            "recorder/dropped".into(),
        ] {
            assert!(seen.contains(&path), "{path} missing from {seen:?}");
        }
    }

    #[test]
    fn id_colours_differ() {
        let a = id_color(1);
        let b = id_color(2);
        assert_ne!(a, b);
        assert_eq!(id_color(7), id_color(7));
    }
}
