//! The default viewer layout (a Rerun blueprint), sent with the recording.
//!
//! ```text
//! +---------------------+----------------------+-------------------+
//! | camera: rgb +       | 3-D world: camera    | thought           |
//! | candidates/keypoint | frustum, agent, path,|-------------------|
//! |---------------------| object boxes         | log (action,      |
//! | depth | segmentation|----------------------|  feedback, reply) |
//! |  (tabs, per camera) | timings | metrics    |-------------------|
//! |                     | (tabs)               | reply | prompt |  |
//! |                     |                      | episode (tabs)    |
//! +---------------------+----------------------+-------------------+
//! ```
//! With several cameras, each gets a tab in the camera and depth/segmentation panels.

use rerun::blueprint::{
    Blueprint, ContainerLike, Horizontal, Spatial2DView, Spatial3DView, Tabs, TextDocumentView,
    TextLogView, TimePanel, TimeSeriesView, Vertical,
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
        Spatial3DView::new("3-D world")
            .with_origin(paths::WORLD)
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
        TextLogView::new("log").with_origin(paths::LOG).into(),
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
    .with_time_panel(TimePanel::new().with_timeline(paths::TIMELINE_STEP))
}
