//! The default viewer layout (a Rerun blueprint), sent with the recording.
//!
//! ```text
//! +---------------------+----------------------+-------------------+
//! | camera: rgb +       | 3-D world: camera    | thought           |
//! | candidates/keypoint | frustum, agent, path,|-------------------|
//! |---------------------| object boxes         | log (action,      |
//! | depth | segmentation| (tab: with the depth |  feedback, reply) |
//! |  (tabs, per camera) |  images as points)   |-------------------|
//! |                     |----------------------|                   |
//! |                     | timings | metrics    |                   |
//! |                     | (tabs)               | reply | prompt |  |
//! |                     |                      | episode (tabs)    |
//! +---------------------+----------------------+-------------------+
//! ```
//! With several cameras, each gets a tab in the camera and depth/segmentation panels. A second
//! camera tab shows the 3-D object boxes projected through the camera by the viewer, the
//! quickest visual check that the camera pose and the world line up. The side panels start
//! collapsed and the time cursor follows the newest step.

use rerun::blueprint::components::{PanelState, PlayState};
use rerun::blueprint::{
    Blueprint, BlueprintPanel, ContainerLike, Horizontal, SelectionPanel, Spatial2DView,
    Spatial3DView, Tabs, TextDocumentView, TextLogView, TimePanel, TimeSeriesView, Vertical,
};

use super::paths;

/// The layout for a recording whose world has these cameras (none: the `world/camera` subtree
/// is shown as a whole).
pub fn blueprint(cameras: &[String]) -> Blueprint {
    let mut rgb_views: Vec<ContainerLike> = Vec::new();
    let mut other_views: Vec<ContainerLike> = Vec::new();
    for name in cameras {
        let image = paths::camera_image(name);
        rgb_views.push(
            Spatial2DView::new(format!("camera {name}"))
                .with_origin(image.as_str())
                .with_contents([
                    "$origin/rgb".to_string(),
                    "$origin/candidates".to_string(),
                    "$origin/keypoint".to_string(),
                ])
                .into(),
        );
        // The same image with the 3-D boxes projected through the camera by the viewer: what
        // the simulator says is there, and a check that the camera and the world line up.
        rgb_views.push(
            Spatial2DView::new(format!("camera {name} + boxes"))
                .with_origin(image.as_str())
                .with_contents([
                    "$origin/rgb".to_string(),
                    "$origin/candidates".to_string(),
                    "$origin/keypoint".to_string(),
                    format!("/{}", paths::OBJECTS_VISIBLE),
                    format!("/{}", paths::OBJECTS_HELD),
                ])
                .into(),
        );
        other_views.push(
            Spatial2DView::new(format!("depth {name}"))
                .with_origin(image.as_str())
                .with_contents(["$origin/depth".to_string()])
                .into(),
        );
        other_views.push(
            Spatial2DView::new(format!("segmentation {name}"))
                .with_origin(image.as_str())
                .with_contents([
                    "$origin/rgb".to_string(),
                    "$origin/segmentation".to_string(),
                ])
                .into(),
        );
    }
    if rgb_views.is_empty() {
        rgb_views.push(
            Spatial2DView::new("camera")
                .with_origin("world/camera")
                .into(),
        );
    }
    let camera_column = Vertical::new([Tabs::new(rgb_views).into(), Tabs::new(other_views).into()])
        .with_row_shares([0.55, 0.45]);

    let world_column = Vertical::new([
        Tabs::new([
            Spatial3DView::new("3-D world")
                .with_origin(paths::WORLD)
                .with_contents(world_contents(cameras, &["depth", "segmentation"], false))
                .into(),
            Spatial3DView::new("3-D with depth points")
                .with_origin(paths::WORLD)
                .with_contents(world_contents(cameras, &["rgb", "segmentation"], true))
                .into(),
        ])
        .into(),
        Tabs::new([
            TimeSeriesView::new("timings (s)")
                .with_origin(paths::TIMINGS)
                .with_contents([
                    "$origin/step".to_string(),
                    "$origin/policy".to_string(),
                    "$origin/world".to_string(),
                    "$origin/executor".to_string(),
                    "$origin/memory".to_string(),
                    "$origin/recorder".to_string(),
                ])
                .into(),
            TimeSeriesView::new("metrics")
                .with_origin(paths::METRICS)
                .into(),
            TimeSeriesView::new("memory")
                .with_origin(paths::MEMORY)
                .into(),
            TimeSeriesView::new("tokens")
                .with_origin(paths::TOKENS)
                .into(),
            TimeSeriesView::new("decision timings (s)")
                .with_origin(format!("{}/decision", paths::TIMINGS))
                .into(),
            TimeSeriesView::new("recorder")
                .with_origin(paths::RECORDER)
                .into(),
        ])
        .into(),
    ])
    .with_row_shares([0.6, 0.4]);

    let reasoning_column = Vertical::new([
        TextDocumentView::new("thought")
            .with_origin(paths::THOUGHT)
            .into(),
        TextLogView::new("log")
            .with_origin(paths::LOG)
            // The prompt (the whole conversation) is in the `prompt` tab; in the log it would
            // drown the actions and feedback.
            .with_contents([
                "$origin/**".to_string(),
                format!("- /{}", paths::LOG_PROMPT),
            ])
            .into(),
        Tabs::new([
            TextDocumentView::new("reply")
                .with_origin(paths::REPLY)
                .into(),
            TextDocumentView::new("prompt")
                .with_origin(paths::PROMPT)
                .into(),
            TextDocumentView::new("episode")
                .with_origin(paths::EPISODE)
                .with_contents(["$origin".to_string()])
                .into(),
            TextDocumentView::new("result")
                .with_origin(paths::EPISODE_SUMMARY)
                .into(),
        ])
        .into(),
    ])
    .with_row_shares([0.3, 0.35, 0.35]);

    Blueprint::new(
        Horizontal::new([
            camera_column.into(),
            world_column.into(),
            reasoning_column.into(),
        ])
        .with_column_shares([0.36, 0.36, 0.28]),
    )
    .with_blueprint_panel(BlueprintPanel::new().with_state(PanelState::Collapsed))
    .with_selection_panel(SelectionPanel::new().with_state(PanelState::Collapsed))
    .with_time_panel(
        TimePanel::new()
            .with_timeline(paths::TIMELINE_STEP)
            .with_play_state(PlayState::Following)
            .with_state(PanelState::Collapsed),
    )
}

/// The 3-D view's contents: the whole world minus the given image layers of every camera (the
/// viewer draws depth images under a pinhole as point clouds, and colour images on the frustum),
/// and minus the unlabelled "other" boxes when `hide_other`.
fn world_contents(cameras: &[String], hidden_layers: &[&str], hide_other: bool) -> Vec<String> {
    let mut v = vec!["+ $origin/**".to_string()];
    for name in cameras {
        for layer in hidden_layers {
            v.push(format!("- /{}", paths::camera_layer(name, layer)));
        }
    }
    if hide_other {
        v.push(format!("- /{}", paths::OBJECTS_OTHER));
    }
    v
}
