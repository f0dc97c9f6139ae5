//! Memory: the interaction history, the episode log on disk, the budgeted model context and a
//! semantic map of what was seen where.
//!
//! - The conversation (system prompt, user turns with images, assistant replies) grows as the
//!   harness and the policy add messages. [`Memory::context`] returns it within a budget: at
//!   most `max_images` images (the first image, the task's start view, is always kept; older
//!   images go first) and at most `max_tokens` tokens (older images go first, then the oldest
//!   exchanges after the first user turn; the system prompt, the first user turn and the last
//!   message always stay).
//! - The episode log is JSON lines, one object per line, written and flushed by a writer
//!   thread of its own as soon as it is appended (so the event loop never waits on the disk),
//!   so a crashed or killed run leaves a readable log: an `episode` line, one `step` line per
//!   harness call, and an `end` line. It holds no wall-clock data, so a seeded run with a
//!   deterministic policy writes the same log twice.
//! - The semantic map records, per object type, where (world position) and when (step) each
//!   instance was last seen.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::observation::Observation;
use crate::policy::{ContentPart, EpisodeInfo, Message, Role};

/// Counts tokens for the budget. The VLM policy supplies one backed by its tokenizer; the
/// default estimates.
pub trait TokenCounter: Send + Sync {
    /// Tokens of a text.
    fn text_tokens(&self, text: &str) -> usize;
    /// Tokens an image of this size becomes.
    fn image_tokens(&self, width: u32, height: u32) -> usize;
}

/// An estimate: a token per 4 bytes of text; an image as Qwen2-VL sees it (one token per
/// 28x28 pixels after rounding each side to a multiple of 28, plus 2 for the vision markers).
#[derive(Clone, Copy, Debug, Default)]
pub struct EstimatedTokens;

impl TokenCounter for EstimatedTokens {
    fn text_tokens(&self, text: &str) -> usize {
        text.len().div_ceil(4)
    }
    fn image_tokens(&self, width: u32, height: u32) -> usize {
        let round = |v: u32| ((v as f64 / 28.0).round().max(1.0)) as usize;
        round(width) * round(height) + 2
    }
}

/// Limits on what the policy sees; 0 means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budget {
    /// At most this many images in the context (the first image always stays).
    pub max_images: usize,
    /// At most this many tokens in the context (estimated or counted).
    pub max_tokens: usize,
}

/// What the context builder kept and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextStats {
    /// Images in the context.
    pub images: usize,
    /// Tokens in the context.
    pub tokens: usize,
    /// Images dropped to meet the budget.
    pub dropped_images: usize,
    /// Messages dropped to meet the budget.
    pub dropped_messages: usize,
}

/// One sighting in the semantic map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    /// The instance (objectId in simulators).
    pub object_id: String,
    /// World position, metres.
    pub position: [f64; 3],
    /// The step at which it was last seen.
    pub step: u64,
}

/// Which object types were seen, where, and when.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SemanticMap {
    /// Object type -> sightings, one per instance (the latest).
    pub by_type: BTreeMap<String, Vec<Sighting>>,
}

impl SemanticMap {
    /// Updates the map from an observation's simulator metadata (visible objects).
    pub fn update(&mut self, step: u64, observation: &Observation) {
        let Some(meta) = &observation.sim else { return };
        for obj in meta.objects.iter().filter(|o| o.visible) {
            let sightings = self.by_type.entry(obj.object_type.clone()).or_default();
            let s = Sighting {
                object_id: obj.object_id.clone(),
                position: obj.position.to_array(),
                step,
            };
            match sightings.iter_mut().find(|x| x.object_id == obj.object_id) {
                Some(existing) => *existing = s,
                None => sightings.push(s),
            }
        }
    }

    /// The sightings of a type.
    pub fn where_is(&self, object_type: &str) -> &[Sighting] {
        self.by_type.get(object_type).map_or(&[], Vec::as_slice)
    }

    /// Number of distinct object types seen.
    pub fn type_count(&self) -> usize {
        self.by_type.len()
    }
}

/// One step of the interaction history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepEntry {
    /// The step number (executed steps before this call).
    pub step: u64,
    /// Whether this call counted as an executed step.
    pub executed: bool,
    /// The policy's raw reply.
    pub reply: String,
    /// The thought part of the reply.
    pub thought: String,
    /// The parsed action as text.
    pub action: String,
    /// Whether the action succeeded.
    pub success: bool,
    /// Feedback kind and message.
    pub feedback: crate::policy::Feedback,
    /// Labels of the observations produced.
    pub observations: Vec<String>,
    /// The agent's pose after the step (x, y, z, yaw degrees, horizon degrees), in simulators.
    pub agent_pose: Option<[f64; 5]>,
    /// The harness's record (benchmark trajectory record).
    pub record: Value,
}

/// What the episode log's writer thread receives.
enum LogMessage {
    /// A line to write and flush.
    Line(Vec<u8>),
    /// Answer once everything before this message is written.
    Sync(Sender<()>),
}

/// The append-only episode log (JSON lines). [`EpisodeLog::append`] serialises the line and
/// hands it to the log's writer thread, which writes and flushes it to the operating system at
/// once; a write error is reported by the next `append` or by [`EpisodeLog::close`].
pub struct EpisodeLog {
    path: PathBuf,
    lines: Option<Sender<LogMessage>>,
    writer: Option<JoinHandle<()>>,
    write_error: Arc<Mutex<Option<std::io::Error>>>,
}

impl EpisodeLog {
    /// Creates (truncates) a log file, creating parent directories, and starts its writer.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let (tx, rx) = channel::<LogMessage>();
        let write_error: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
        let failed = write_error.clone();
        let writer = std::thread::Builder::new()
            .name("ember-episode-log".into())
            .spawn(move || {
                for message in rx {
                    match message {
                        LogMessage::Line(line) => {
                            if let Err(e) = file.write_all(&line).and_then(|_| file.flush()) {
                                // Keep the first error; later lines are dropped with it.
                                failed
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .get_or_insert(e);
                            }
                        }
                        LogMessage::Sync(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            path,
            lines: Some(tx),
            writer: Some(writer),
            write_error,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn take_error(&self) -> Result<()> {
        match self
            .write_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Some(e) => Err(Error::io(&self.path, e)),
            None => Ok(()),
        }
    }

    /// Appends one JSON line: serialises it and hands it to the writer thread, which writes
    /// and flushes it. Returns at once; fails if an earlier write failed or the log is closed.
    pub fn append(&mut self, value: &Value) -> Result<()> {
        self.take_error()?;
        let mut line = serde_json::to_vec(value)
            .map_err(|e| Error::Invalid(format!("episode log entry not serialisable: {e}")))?;
        line.push(b'\n');
        let sent = self
            .lines
            .as_ref()
            .map(|tx| tx.send(LogMessage::Line(line)).is_ok());
        if sent != Some(true) {
            return Err(Error::io(
                &self.path,
                std::io::Error::other("the episode log is closed"),
            ));
        }
        Ok(())
    }

    /// Waits until every line appended so far is written (blocks: call it from a blocking
    /// thread); reports a write error.
    pub fn sync(&self) -> Result<()> {
        let (tx, rx) = channel();
        if let Some(lines) = &self.lines
            && lines.send(LogMessage::Sync(tx)).is_ok()
        {
            let _ = rx.recv();
        }
        self.take_error()
    }

    /// Waits until every appended line is written, then stops the writer. Blocks on the disk:
    /// call it from a blocking thread. Later appends fail.
    pub fn close(&mut self) -> Result<()> {
        self.lines = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            return Err(Error::io(
                &self.path,
                std::io::Error::other("the episode log's writer thread panicked"),
            ));
        }
        self.take_error()
    }

    /// Reads a log back, skipping a final line cut short by a crash. Errors name the file and
    /// line of any other malformed line.
    pub fn read(path: impl AsRef<Path>) -> Result<Vec<Value>> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io(path, e))?;
        let mut out = Vec::with_capacity(lines.len());
        let last = lines.len().saturating_sub(1);
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(v) => out.push(v),
                // A torn last line is what a kill leaves; anything else is corruption.
                Err(_) if i == last => break,
                Err(e) => {
                    return Err(Error::Invalid(format!(
                        "{}:{}: not a JSON line: {e}",
                        path.display(),
                        i + 1
                    )));
                }
            }
        }
        Ok(out)
    }
}

impl Drop for EpisodeLog {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!("{e}");
        }
    }
}

/// The agent's memory for one episode.
pub struct Memory {
    budget: Budget,
    counter: Arc<dyn TokenCounter>,
    conversation: Vec<Message>,
    history: Vec<StepEntry>,
    map: SemanticMap,
    log: Option<EpisodeLog>,
}

impl Memory {
    /// A memory with a budget, a token counter and an optional episode log.
    pub fn new(budget: Budget, counter: Arc<dyn TokenCounter>, log: Option<EpisodeLog>) -> Self {
        Self {
            budget,
            counter,
            conversation: Vec::new(),
            history: Vec::new(),
            map: SemanticMap::default(),
            log,
        }
    }

    /// Writes the episode header line.
    pub fn begin(&mut self, episode: &EpisodeInfo, extra: Value) -> Result<()> {
        if let Some(log) = &mut self.log {
            log.append(&json!({"type": "episode", "episode": episode, "info": extra}))?;
        }
        Ok(())
    }

    /// Appends messages to the conversation.
    pub fn push_messages(&mut self, messages: impl IntoIterator<Item = Message>) {
        self.conversation.extend(messages);
    }

    /// Notes an observation (semantic map).
    pub fn observe(&mut self, step: u64, observation: &Observation) {
        self.map.update(step, observation);
    }

    /// Records a step in the history and the log.
    pub fn record_step(&mut self, entry: StepEntry) -> Result<()> {
        if let Some(log) = &mut self.log {
            let mut v = serde_json::to_value(&entry)
                .map_err(|e| Error::Invalid(format!("step entry not serialisable: {e}")))?;
            if let Value::Object(m) = &mut v {
                m.insert("type".into(), Value::String("step".into()));
            }
            log.append(&v)?;
        }
        self.history.push(entry);
        Ok(())
    }

    /// Writes the final line of the log.
    pub fn end(&mut self, summary: &Value) -> Result<()> {
        if let Some(log) = &mut self.log {
            log.append(&json!({"type": "end", "summary": summary}))?;
        }
        Ok(())
    }

    /// Waits until everything logged so far is on disk (blocks: call it from a blocking
    /// thread). A memory without a log returns at once.
    pub fn sync_log(&self) -> Result<()> {
        match &self.log {
            Some(log) => log.sync(),
            None => Ok(()),
        }
    }

    /// Waits until the episode log is on disk and closes it (blocks: call it from a blocking
    /// thread). A memory without a log returns at once.
    pub fn close_log(&mut self) -> Result<()> {
        match &mut self.log {
            Some(log) => log.close(),
            None => Ok(()),
        }
    }

    /// The history so far.
    pub fn history(&self) -> &[StepEntry] {
        &self.history
    }

    /// The full conversation (unbudgeted).
    pub fn conversation(&self) -> &[Message] {
        &self.conversation
    }

    /// The semantic map.
    pub fn semantic_map(&self) -> &SemanticMap {
        &self.map
    }

    /// The log file's path, if logging.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_ref().map(EpisodeLog::path)
    }

    fn message_tokens(&self, m: &Message) -> usize {
        m.content
            .iter()
            .map(|p| match p {
                ContentPart::Text(t) => self.counter.text_tokens(t),
                ContentPart::Image(img) => self.counter.image_tokens(img.width, img.height),
            })
            .sum::<usize>()
            + 4 // role markers
    }

    /// The conversation within the budget, and what was kept and dropped.
    pub fn context(&self) -> (Vec<Message>, ContextStats) {
        let mut msgs = self.conversation.clone();
        let mut stats = ContextStats::default();
        // Positions of all images, oldest first: (message, part).
        let image_slots = |msgs: &[Message]| -> Vec<(usize, usize)> {
            msgs.iter()
                .enumerate()
                .flat_map(|(i, m)| {
                    m.content
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| matches!(p, ContentPart::Image(_)))
                        .map(move |(j, _)| (i, j))
                })
                .collect()
        };
        let drop_oldest_image = |msgs: &mut Vec<Message>| -> bool {
            let slots = image_slots(msgs);
            // The first image always stays.
            if slots.len() <= 1 {
                return false;
            }
            let (i, j) = slots[1];
            msgs[i].content.remove(j);
            true
        };
        if self.budget.max_images > 0 {
            while image_slots(&msgs).len() > self.budget.max_images.max(1) {
                if !drop_oldest_image(&mut msgs) {
                    break;
                }
                stats.dropped_images += 1;
            }
        }
        let total = |msgs: &[Message]| msgs.iter().map(|m| self.message_tokens(m)).sum::<usize>();
        if self.budget.max_tokens > 0 {
            while total(&msgs) > self.budget.max_tokens && drop_oldest_image(&mut msgs) {
                stats.dropped_images += 1;
            }
            // Then whole exchanges (a reply and the user turn after it) following the first
            // user turn, oldest first, so the kept conversation still alternates; the last
            // message always stays.
            let first_user = msgs.iter().position(|m| m.role == Role::User).unwrap_or(0);
            while total(&msgs) > self.budget.max_tokens && msgs.len() >= first_user + 4 {
                let n = if msgs[first_user + 1].role == Role::Assistant {
                    2
                } else {
                    1
                };
                msgs.drain(first_user + 1..first_user + 1 + n);
                stats.dropped_messages += n;
            }
        }
        stats.images = image_slots(&msgs).len();
        stats.tokens = total(&msgs);
        (msgs, stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::RgbImage;
    use crate::policy::{Feedback, FeedbackKind};

    fn img(w: u32, h: u32) -> ContentPart {
        ContentPart::Image(Arc::new(RgbImage::black(w, h)))
    }

    fn conversation(images_after_first: usize) -> Vec<Message> {
        let mut msgs = vec![
            Message::text(Role::System, "system prompt"),
            Message {
                role: Role::User,
                content: vec![img(56, 56), ContentPart::Text("task".into())],
            },
        ];
        for k in 0..images_after_first {
            msgs.push(Message::text(Role::Assistant, format!("reply {k}")));
            msgs.push(Message {
                role: Role::User,
                content: vec![img(28, 28), ContentPart::Text(format!("after {k}"))],
            });
        }
        msgs
    }

    fn memory(budget: Budget) -> Memory {
        Memory::new(budget, Arc::new(EstimatedTokens), None)
    }

    #[test]
    fn unlimited_budget_keeps_everything() {
        let mut m = memory(Budget::default());
        m.push_messages(conversation(5));
        let (ctx, stats) = m.context();
        assert_eq!(ctx.len(), 12);
        assert_eq!(stats.images, 6);
        assert_eq!(stats.dropped_images, 0);
    }

    #[test]
    fn image_budget_keeps_first_and_newest() {
        let mut m = memory(Budget {
            max_images: 3,
            max_tokens: 0,
        });
        m.push_messages(conversation(5));
        let (ctx, stats) = m.context();
        assert_eq!(stats.images, 3);
        assert_eq!(stats.dropped_images, 3);
        // The first image (56x56) is still there, in the first user turn.
        assert!(matches!(&ctx[1].content[0], ContentPart::Image(i) if i.width == 56));
        // The last two user turns keep their images; the text of every turn stays.
        assert_eq!(ctx[11].image_count(), 1);
        assert_eq!(ctx[9].image_count(), 1);
        assert_eq!(ctx[7].image_count(), 0);
        assert_eq!(ctx[7].joined_text(), "after 2");
        // A budget of 1 (or 0 meaning unlimited) never drops the first image.
        let mut m1 = memory(Budget {
            max_images: 1,
            max_tokens: 0,
        });
        m1.push_messages(conversation(2));
        assert_eq!(m1.context().1.images, 1);
        assert_eq!(m1.context().0[1].image_count(), 1);
    }

    #[test]
    fn token_budget_drops_images_then_old_exchanges() {
        let mut m = memory(Budget::default());
        m.push_messages(conversation(6));
        let (_, full) = m.context();
        let mut tight = memory(Budget {
            max_images: 0,
            max_tokens: full.tokens - 3,
        });
        tight.push_messages(conversation(6));
        let (_, s) = tight.context();
        assert!(s.tokens <= full.tokens - 3);
        assert_eq!(s.dropped_images, 1);
        assert_eq!(s.dropped_messages, 0);

        let mut very_tight = memory(Budget {
            max_images: 0,
            max_tokens: 40,
        });
        very_tight.push_messages(conversation(6));
        let (ctx, s) = very_tight.context();
        assert!(s.dropped_messages > 0);
        assert_eq!(ctx[0].role, Role::System);
        assert_eq!(ctx[1].image_count(), 1, "first user turn keeps its image");
        assert_eq!(ctx.last().unwrap().joined_text(), "after 5");
        // The kept conversation still alternates reply / user turn.
        for pair in ctx[1..].windows(2) {
            assert_ne!(pair[0].role, pair[1].role);
        }
    }

    #[test]
    fn log_is_readable_line_by_line_and_tolerates_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/episode.jsonl");
        let mut m = Memory::new(
            Budget::default(),
            Arc::new(EstimatedTokens),
            Some(EpisodeLog::create(&path).unwrap()),
        );
        m.begin(&EpisodeInfo::default(), json!({"world": "test"}))
            .unwrap();
        m.record_step(StepEntry {
            step: 0,
            executed: true,
            reply: "<DecisionMaking>observe</DecisionMaking>".into(),
            thought: String::new(),
            action: "observe".into(),
            success: true,
            feedback: Feedback {
                success: true,
                kind: FeedbackKind::Executed,
                message: String::new(),
            },
            observations: vec!["observe".into()],
            agent_pose: None,
            record: json!({"action": "observe"}),
        })
        .unwrap();
        // Readable while the episode is still running (as after a kill), once the writer
        // thread has caught up.
        m.sync_log().unwrap();
        let lines = EpisodeLog::read(&path).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["type"], "step");
        assert_eq!(lines[1]["action"], "observe");
        // A torn final line is skipped; a torn middle line is an error naming the line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"type\": \"st")
            .unwrap();
        assert_eq!(EpisodeLog::read(&path).unwrap().len(), 2);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"\n{\"type\": \"end\"}\n")
            .unwrap();
        let err = EpisodeLog::read(&path).unwrap_err().to_string();
        assert!(err.contains(":3:"), "{err}");
    }

    #[test]
    fn semantic_map_tracks_visible_objects() {
        use crate::thor::{Metadata, ObjectMeta, Vec3};
        let mut meta = Metadata::default();
        meta.objects.push(ObjectMeta {
            object_id: "Apple|1".into(),
            object_type: "Apple".into(),
            visible: true,
            position: Vec3::new(1.0, 0.9, 2.0),
            ..Default::default()
        });
        meta.objects.push(ObjectMeta {
            object_id: "Mug|1".into(),
            object_type: "Mug".into(),
            visible: false,
            ..Default::default()
        });
        let obs = Observation {
            step: 3,
            sim_time: None,
            cameras: vec![],
            proprio: Default::default(),
            sim: Some(Arc::new(meta)),
        };
        let mut map = SemanticMap::default();
        map.update(3, &obs);
        assert_eq!(map.where_is("Apple")[0].position, [1.0, 0.9, 2.0]);
        assert_eq!(map.where_is("Apple")[0].step, 3);
        assert!(map.where_is("Mug").is_empty());
        map.update(7, &obs);
        assert_eq!(map.where_is("Apple").len(), 1);
        assert_eq!(map.where_is("Apple")[0].step, 7);
    }
}
