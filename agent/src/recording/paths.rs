//! The recording's entity paths and timelines, in one place.
//!
//! ```text
//! world                                  ViewCoordinates RFU (static), AnnotationContext (ids)
//! world/camera/{name}                    Transform3D: the camera's optical frame in the world
//! world/camera/{name}/image              Pinhole (camera_xyz RDF, resolution)
//! world/camera/{name}/image/rgb          Image (RGB8) or EncodedImage (JPEG)
//! world/camera/{name}/image/depth        DepthImage (u16 millimetres, meter = 1000)
//! world/camera/{name}/image/segmentation SegmentationImage (u16 instance ids)
//! world/camera/{name}/image/candidates   Points2D: candidates projected into the image
//! world/camera/{name}/image/keypoint     Points2D: the chosen keypoint projected
//! world/agent                            Transform3D: the base (x forward, y left, z up)
//! world/agent/body                       Arrows3D: the heading, labelled "agent"
//! world/agent/end_effector               Transform3D + TransformAxes3D (arms)
//! world/trajectory                       LineStrips3D: the base's path this episode
//! world/objects/visible                  Boxes3D: objects the simulator reports visible
//! world/objects/other                    Boxes3D: the other objects (grey, unlabelled)
//! world/objects/held                     Boxes3D: the held object
//! world/candidates                       Points3D: keypoint candidates (A..D)
//! world/keypoint                         Points3D: the chosen keypoint
//! frames/{frame}/{candidates,keypoint}   Points3D stated in frames other than world/base
//! reasoning/thought                      TextDocument: the model's thought at this step
//! reasoning/reply                        TextDocument: the raw reply (streamed while live)
//! reasoning/prompt                       TextDocument: the prompt text sent
//! episode                                TextDocument: the episode (instruction, scene...)
//! episode/summary                        TextDocument: the episode's result (JSON)
//! log/{episode,observation,prompt,reply,action,feedback}   TextLog with levels
//! timings/{step,policy,world,executor,memory,recorder}     Scalars, seconds
//! timings/decision/{vision,prefill,decode}                 Scalars, seconds
//! tokens/{prompt,generated}              Scalars
//! memory/{images,tokens}                 Scalars
//! metrics/{name}                         Scalars (success, efficiency, completeness...)
//! arm/joints/{i}, arm/gripper            Scalars
//! recorder/{dropped,queued}              Scalars
//! ```

/// The agent step; global across the run (episode 1's steps follow episode 0's).
pub const TIMELINE_STEP: &str = "step";
/// The episode index.
pub const TIMELINE_EPISODE: &str = "episode";
/// The step within the episode (the step the loop and the policy count).
pub const TIMELINE_EPISODE_STEP: &str = "episode_step";
/// The simulator's time, seconds, where the world has one.
pub const TIMELINE_SIM_TIME: &str = "sim_time";
/// One tick per camera observation (several per step for `observe`).
pub const TIMELINE_FRAME: &str = "frame";

/// The root of the 3-D world.
pub const WORLD: &str = "world";
/// The agent's base.
pub const AGENT: &str = "world/agent";
/// The agent's heading arrow.
pub const AGENT_BODY: &str = "world/agent/body";
/// The arm's end effector.
pub const END_EFFECTOR: &str = "world/agent/end_effector";
/// The base's path.
pub const TRAJECTORY: &str = "world/trajectory";
/// All object boxes.
pub const OBJECTS: &str = "world/objects";
/// Boxes of visible objects.
pub const OBJECTS_VISIBLE: &str = "world/objects/visible";
/// Boxes of the other objects.
pub const OBJECTS_OTHER: &str = "world/objects/other";
/// The held object's box.
pub const OBJECTS_HELD: &str = "world/objects/held";
/// Keypoint candidates in 3-D.
pub const CANDIDATES: &str = "world/candidates";
/// The chosen keypoint in 3-D.
pub const KEYPOINT: &str = "world/keypoint";
/// The model's thought.
pub const THOUGHT: &str = "reasoning/thought";
/// The raw reply.
pub const REPLY: &str = "reasoning/reply";
/// The prompt sent.
pub const PROMPT: &str = "reasoning/prompt";
/// The episode description.
pub const EPISODE: &str = "episode";
/// The episode's result.
pub const EPISODE_SUMMARY: &str = "episode/summary";
/// Text logs root.
pub const LOG: &str = "log";
/// Episode start and end.
pub const LOG_EPISODE: &str = "log/episode";
/// Observation labels.
pub const LOG_OBSERVATION: &str = "log/observation";
/// The prompt, as a log entry.
pub const LOG_PROMPT: &str = "log/prompt";
/// The raw reply, as a log entry.
pub const LOG_REPLY: &str = "log/reply";
/// The parsed action.
pub const LOG_ACTION: &str = "log/action";
/// The feedback (failures as warnings).
pub const LOG_FEEDBACK: &str = "log/feedback";
/// Timings root.
pub const TIMINGS: &str = "timings";
/// Memory size root.
pub const MEMORY: &str = "memory";
/// Metrics root.
pub const METRICS: &str = "metrics";
/// Token counts root.
pub const TOKENS: &str = "tokens";
/// Recorder counters root.
pub const RECORDER: &str = "recorder";
/// Arm scalars root.
pub const ARM: &str = "arm";

/// A name made safe for one entity-path part (letters, digits, `_`, `-`).
pub fn part(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "_".to_string() } else { s }
}

/// The entity of a camera (its optical frame in the world).
pub fn camera(name: &str) -> String {
    format!("world/camera/{}", part(name))
}

/// The image plane of a camera (its Pinhole).
pub fn camera_image(name: &str) -> String {
    format!("{}/image", camera(name))
}

/// One layer of a camera's image (`rgb`, `depth`, `segmentation`, `candidates`, `keypoint`).
pub fn camera_layer(name: &str, layer: &str) -> String {
    format!("{}/image/{layer}", camera(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_paths_are_safe() {
        assert_eq!(camera_layer("front", "rgb"), "world/camera/front/image/rgb");
        assert_eq!(camera("wrist cam/2"), "world/camera/wrist_cam_2");
        assert_eq!(part(""), "_");
    }
}
