//! Robot-R1's interface (next-keypoint prediction): the prompt (environment metadata, task,
//! current state, `[[A]]`..`[[D]]` candidates or an open-ended question) and the answer parser
//! (`<think> .. </think> <answer> [[B]] </answer>`, or `<answer> [x, y, z] # comment </answer>`).
//! Pure text in, typed values out; a malformed answer is a reported error, never a guess.

use std::fmt;

use regex::Regex;

use crate::action::{Action, GripperIntent, KeypointAction};
use crate::policy::Candidate;

/// The frame Robot-R1 states positions in (RLBench's world frame).
pub const TASK_FRAME: &str = "task";

/// Which camera the image comes from (the wrist view flips the Y axis).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum View {
    /// The front camera.
    #[default]
    Front,
    /// The wrist camera.
    Wrist,
}

/// The environment metadata stated in every prompt.
pub fn environment_metadata(view: View) -> String {
    let y_axis = match view {
        View::Front => "Y axis: from left (negative) to right (positive).",
        View::Wrist => "Y axis: from right (negative) to left (positive) (wrist view).",
    };
    format!(
        "Environment metadata:\n\
         - The world origin [0.25, 0, 0.752] is the centre of the table surface.\n\
         - X axis: from the front of the table (positive) to the back (negative).\n\
         - {y_axis}\n\
         - Z axis: from down (negative) to up (positive).\n\
         - Gripper size: 0.06 m wide (x), 0.2 m long (y), 0.09 m high (z); the fingers are 0.04 m long.\n\
         All positions are end-effector positions [x, y, z] in metres in this frame."
    )
}

/// A position written as the prompts write it: `[x, y, z]` with 3 decimals.
pub fn format_position(p: [f64; 3]) -> String {
    format!("[{:.3}, {:.3}, {:.3}]", p[0], p[1], p[2])
}

const REPLY_FORMAT_CHOICE: &str = "First think about the scene and the motion in <think> </think>, then give the option in \
     <answer> </answer>, for example: <think> ... </think> <answer> [[B]] </answer>.";
const REPLY_FORMAT_POINT: &str = "First think about the scene and the motion in <think> </think>, then give the position in \
     <answer> </answer>, for example: <think> ... </think> <answer> [0.275, -0.009, 0.850] </answer>.";

/// The multiple-choice next-keypoint prompt: metadata, task, current state, and the candidates
/// as `[[A]] [x, y, z]` lines.
pub fn next_keypoint_prompt(
    task: &str,
    current: [f64; 3],
    candidates: &[Candidate],
    view: View,
) -> String {
    let mut s = environment_metadata(view);
    s.push_str(&format!(
        "\nTask: {task}\nCurrent robot state: Position: {}\n",
        format_position(current)
    ));
    s.push_str("Question: which position should the end effector move to next (the next keypoint)? Options:\n");
    for c in candidates {
        s.push_str(&format!(
            "[[{}]] {}\n",
            c.label,
            format_position(c.position)
        ));
    }
    s.push_str(REPLY_FORMAT_CHOICE);
    s
}

/// The open-ended next-keypoint prompt: the model writes the coordinates.
pub fn next_keypoint_open_prompt(task: &str, current: [f64; 3], view: View) -> String {
    let mut s = environment_metadata(view);
    s.push_str(&format!(
        "\nTask: {task}\nCurrent robot state: Position: {}\n",
        format_position(current)
    ));
    s.push_str("Question: what is the next keypoint position [x, y, z] of the end effector?\n");
    s.push_str(REPLY_FORMAT_POINT);
    s
}

/// The movement phrase for a motion (the auxiliary "movement" question): per axis up/down,
/// left/right, forward/backward; an axis whose change is at most half the largest is "slightly";
/// axes that do not move are left out.
pub fn movement_phrase(from: [f64; 3], to: [f64; 3]) -> String {
    let d = [to[0] - from[0], to[1] - from[1], to[2] - from[2]];
    let largest = d.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if largest == 0.0 {
        return "stay".into();
    }
    // Order: vertical, lateral, depth. +x is toward the front of the table (forward for the
    // camera facing the robot), +y right, +z up.
    let words = [
        (2usize, "up", "down"),
        (1, "right", "left"),
        (0, "forward", "backward"),
    ];
    let mut parts = Vec::new();
    for (axis, pos, neg) in words {
        let v = d[axis];
        if v == 0.0 {
            continue;
        }
        let w = if v > 0.0 { pos } else { neg };
        if v.abs() <= largest / 2.0 {
            parts.push(format!("slightly {w}"));
        } else {
            parts.push(w.to_string());
        }
    }
    parts.join(", ")
}

/// What the model answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A candidate's label.
    Choice(char),
    /// Coordinates (open-ended).
    Point([f64; 3]),
}

/// A parsed reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The text inside `<think> </think>` (empty when the model wrote none).
    pub thought: String,
    /// The answer.
    pub answer: Answer,
    /// Whether the reply has the `<think>..</think><answer>..</answer>` shape (format reward).
    pub well_formed: bool,
}

/// What went wrong with a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// No `<answer> </answer>` block.
    MissingAnswer,
    /// The answer block holds no option label and no coordinates.
    Malformed(String),
    /// The option is not among those offered.
    UnknownOption {
        /// The label written.
        label: char,
        /// The labels offered.
        offered: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::MissingAnswer => write!(f, "the reply has no <answer> </answer> block"),
            ParseError::Malformed(a) => write!(
                f,
                "the answer `{a}` holds neither an option [[A]]-[[D]] nor a position [x, y, z]"
            ),
            ParseError::UnknownOption { label, offered } => {
                write!(
                    f,
                    "the answer picks option {label}, but the options were {offered}"
                )
            }
        }
    }
}

impl std::error::Error for ParseError {}

fn regexes() -> &'static (Regex, Regex, Regex, Regex, Regex) {
    static R: std::sync::OnceLock<(Regex, Regex, Regex, Regex, Regex)> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        let num = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?";
        (
            Regex::new(r"(?s)<answer>(.*?)</answer>").expect("a valid regex"),
            Regex::new(r"(?s)<think>(.*?)</think>").expect("a valid regex"),
            Regex::new(r"\[\[\s*([A-Za-z])\s*\]\]").expect("a valid regex"),
            Regex::new(&format!(r"\[\s*({num})\s*,\s*({num})\s*,\s*({num})\s*\]"))
                .expect("a valid regex"),
            Regex::new(r"(?s)^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$")
                .expect("a valid regex"),
        )
    })
}

/// Parses a reply. With `offered` labels (multiple choice) the answer must be one of them; with
/// none (open-ended) the first `[x, y, z]` in the answer is taken (a trailing `# comment` is
/// fine).
pub fn parse_reply(reply: &str, offered: &[char]) -> Result<Reply, ParseError> {
    let (answer_re, think_re, label_re, point_re, shape_re) = regexes();
    let answer = answer_re
        .captures(reply)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
        .ok_or(ParseError::MissingAnswer)?;
    let thought = think_re
        .captures(reply)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim().to_string())
        .unwrap_or_default();
    let well_formed = shape_re.is_match(reply);
    if !offered.is_empty() {
        let c = label_re
            .captures(answer)
            .and_then(|c| c.get(1))
            .and_then(|m| m.as_str().chars().next())
            .ok_or_else(|| ParseError::Malformed(answer.trim().to_string()))?;
        let label = c.to_ascii_uppercase();
        if !offered.contains(&label) {
            return Err(ParseError::UnknownOption {
                label,
                offered: offered.iter().collect(),
            });
        }
        return Ok(Reply {
            thought,
            answer: Answer::Choice(label),
            well_formed,
        });
    }
    let caps = point_re
        .captures(answer)
        .ok_or_else(|| ParseError::Malformed(answer.trim().to_string()))?;
    let mut p = [0.0; 3];
    for (i, v) in p.iter_mut().enumerate() {
        *v = caps
            .get(i + 1)
            .and_then(|m| m.as_str().parse::<f64>().ok())
            .filter(|x| x.is_finite())
            .ok_or_else(|| ParseError::Malformed(answer.trim().to_string()))?;
    }
    Ok(Reply {
        thought,
        answer: Answer::Point(p),
        well_formed,
    })
}

/// The keypoint action a reply asks for: the chosen candidate's position, or the written
/// coordinates in the task frame. The gripper is left as it is (Robot-R1 predicts positions
/// only; the executor's rules decide the gripper).
pub fn to_action(reply: &Reply, candidates: &[Candidate]) -> Result<Action, ParseError> {
    match reply.answer {
        Answer::Choice(label) => {
            let c = candidates
                .iter()
                .find(|c| c.label == label)
                .ok_or_else(|| ParseError::UnknownOption {
                    label,
                    offered: candidates.iter().map(|c| c.label).collect(),
                })?;
            Ok(Action::Keypoint(KeypointAction {
                position: c.position,
                frame: c.frame.clone(),
                gripper: GripperIntent::Keep,
                choice: Some(label),
            }))
        }
        Answer::Point(p) => Ok(Action::Keypoint(KeypointAction {
            position: p,
            frame: TASK_FRAME.to_string(),
            gripper: GripperIntent::Keep,
            choice: None,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates() -> Vec<Candidate> {
        ['A', 'B', 'C', 'D']
            .iter()
            .enumerate()
            .map(|(i, &label)| Candidate {
                label,
                position: [0.1 * i as f64, -0.05, 0.8 + 0.01 * i as f64],
                frame: TASK_FRAME.into(),
            })
            .collect()
    }

    #[test]
    fn prompt_lists_metadata_state_and_options() {
        let p = next_keypoint_prompt(
            "put the cube in the box",
            [0.275, -0.009, 0.85],
            &candidates(),
            View::Front,
        );
        assert!(p.contains("[0.25, 0, 0.752] is the centre of the table surface"));
        assert!(p.contains("Task: put the cube in the box"));
        assert!(p.contains("Position: [0.275, -0.009, 0.850]"));
        assert!(p.contains("[[A]] [0.000, -0.050, 0.800]\n[[B]] [0.100, -0.050, 0.810]"));
        assert!(p.contains("<think>") && p.contains("<answer> [[B]] </answer>"));
        assert!(environment_metadata(View::Wrist).contains("right (negative) to left (positive)"));
        assert!(next_keypoint_open_prompt("t", [0.0; 3], View::Front).contains("[x, y, z]"));
    }

    #[test]
    fn parses_choices() {
        let r = parse_reply(
            "<think> The cube is left. </think> <answer> [[B]] </answer>",
            &['A', 'B', 'C', 'D'],
        )
        .unwrap();
        assert_eq!(r.answer, Answer::Choice('B'));
        assert_eq!(r.thought, "The cube is left.");
        assert!(r.well_formed);
        let a = to_action(&r, &candidates()).unwrap();
        match a {
            Action::Keypoint(k) => {
                assert_eq!(k.choice, Some('B'));
                assert_eq!(k.position, [0.1, -0.05, 0.81]);
            }
            other => panic!("{other:?}"),
        }
        // Lower case and spaces inside the brackets are accepted; no think block is a format
        // miss, not a parse failure.
        let r = parse_reply("<answer>[[ c ]]</answer>", &['A', 'B', 'C', 'D']).unwrap();
        assert_eq!(r.answer, Answer::Choice('C'));
        assert!(!r.well_formed);
    }

    #[test]
    fn parses_open_ended_coordinates_with_a_comment() {
        let r = parse_reply(
            "<think>lift</think>\n<answer> [0.275, -0.009, 0.85] # above the cube </answer>",
            &[],
        )
        .unwrap();
        assert_eq!(r.answer, Answer::Point([0.275, -0.009, 0.85]));
        assert!(r.well_formed);
        let r = parse_reply("<answer>[1e-1,-.5, +2]</answer>", &[]).unwrap();
        assert_eq!(r.answer, Answer::Point([0.1, -0.5, 2.0]));
        match to_action(&r, &[]).unwrap() {
            Action::Keypoint(k) => assert_eq!(k.frame, TASK_FRAME),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_answers_are_errors_never_guesses() {
        let opts = ['A', 'B', 'C', 'D'];
        assert_eq!(
            parse_reply("<think>x</think> [[B]]", &opts),
            Err(ParseError::MissingAnswer)
        );
        assert!(matches!(
            parse_reply("<answer> B </answer>", &opts),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_reply("<answer> [[E]] </answer>", &opts),
            Err(ParseError::UnknownOption { label: 'E', .. })
        ));
        assert!(matches!(
            parse_reply("<answer> [0.1, 0.2] </answer>", &[]),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_reply("<answer> up </answer>", &[]),
            Err(ParseError::Malformed(_))
        ));
        let e = parse_reply("<answer> B </answer>", &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`B`"), "{e}");
    }

    #[test]
    fn movement_phrases() {
        assert_eq!(movement_phrase([0.0; 3], [0.0, 0.0, 0.2]), "up");
        assert_eq!(
            movement_phrase([0.0; 3], [0.05, -0.2, 0.0]),
            "left, slightly forward"
        );
        assert_eq!(
            movement_phrase([0.0; 3], [-0.2, 0.0, -0.15]),
            "down, backward"
        );
        assert_eq!(movement_phrase([0.0; 3], [0.0; 3]), "stay");
    }
}
