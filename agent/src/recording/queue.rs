//! The bounded queue between the loop thread and the recorder thread.
//!
//! Two bounds: the number of events, and the number of camera observations (the heavy events).
//! When a bound is reached, a lossless queue (file recordings) makes the producer wait for room;
//! a lossy queue (live viewers) drops the oldest queued observation instead (or, with no
//! observation queued, the oldest event) and counts it. Streaming partial replies of the same
//! step supersede each other: a newer one replaces a queued older one, which is not counted as
//! a drop.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::recorder::RecordEvent;

/// What to do when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Wait for room (never lose an event).
    Block,
    /// Drop the oldest observation (or event) and count it.
    DropOldest,
}

/// Counters of the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Events accepted by `push`.
    pub accepted: u64,
    /// Events handed to the consumer and finished.
    pub written: u64,
    /// Events dropped (lossy mode, or pushed after close).
    pub dropped: u64,
    /// Partial replies replaced by a newer one before being written.
    pub superseded: u64,
    /// Events waiting.
    pub queued: usize,
    /// Events taken by the consumer and not finished yet (0 or 1).
    pub in_flight: usize,
}

struct State {
    events: VecDeque<(u64, RecordEvent)>,
    frames: usize,
    next_seq: u64,
    in_progress: Option<u64>,
    closed: bool,
    counters: QueueCounters,
}

impl State {
    fn oldest_pending(&self) -> u64 {
        self.in_progress
            .or_else(|| self.events.front().map(|(s, _)| *s))
            .unwrap_or(self.next_seq)
    }

    fn remove(&mut self, index: usize) -> Option<RecordEvent> {
        let (_, ev) = self.events.remove(index)?;
        if matches!(ev, RecordEvent::Observation { .. }) {
            self.frames -= 1;
        }
        Some(ev)
    }
}

/// A bounded multi-producer, single-consumer queue of recorder events.
pub struct EventQueue {
    state: Mutex<State>,
    not_empty: Condvar,
    not_full: Condvar,
    progress: Condvar,
    capacity: usize,
    max_frames: usize,
    overflow: Overflow,
}

fn is_frame(ev: &RecordEvent) -> bool {
    matches!(ev, RecordEvent::Observation { .. })
}

impl EventQueue {
    /// A queue holding at most `capacity` events of which at most `max_frames` observations.
    pub fn new(capacity: usize, max_frames: usize, overflow: Overflow) -> Self {
        Self {
            state: Mutex::new(State {
                events: VecDeque::with_capacity(capacity.min(4096)),
                frames: 0,
                next_seq: 0,
                in_progress: None,
                closed: false,
                counters: QueueCounters::default(),
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            progress: Condvar::new(),
            capacity: capacity.max(1),
            max_frames: max_frames.max(1),
            overflow,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while holding it; the queue's
        // state is still consistent (every mutation is completed before unlocking).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn full(&self, st: &State, ev: &RecordEvent) -> bool {
        st.events.len() >= self.capacity || (is_frame(ev) && st.frames >= self.max_frames)
    }

    /// Enqueues an event; returns how many events were dropped to make room.
    pub fn push(&self, ev: RecordEvent) -> u64 {
        let mut st = self.lock();
        if st.closed {
            st.counters.dropped += 1;
            return 1;
        }
        // A newer partial reply supersedes a queued one of the same step.
        if let RecordEvent::PartialReply { step, .. } = &ev {
            let step = *step;
            if let Some(slot) = st.events.iter_mut().rev().find_map(|(_, e)| match e {
                RecordEvent::PartialReply { step: s, .. } if *s == step => Some(e),
                _ => None,
            }) {
                *slot = ev;
                st.counters.accepted += 1;
                st.counters.superseded += 1;
                return 0;
            }
        }
        let mut dropped = 0;
        while self.full(&st, &ev) {
            match self.overflow {
                Overflow::Block => {
                    st = self.not_full.wait(st).unwrap_or_else(|e| e.into_inner());
                    if st.closed {
                        st.counters.dropped += 1;
                        return 1;
                    }
                }
                Overflow::DropOldest => {
                    let victim = st
                        .events
                        .iter()
                        .position(|(_, e)| is_frame(e))
                        .filter(|_| is_frame(&ev) || st.events.len() >= self.capacity)
                        .unwrap_or(0);
                    if st.remove(victim).is_none() {
                        break;
                    }
                    st.counters.dropped += 1;
                    dropped += 1;
                }
            }
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        if is_frame(&ev) {
            st.frames += 1;
        }
        st.events.push_back((seq, ev));
        st.counters.accepted += 1;
        drop(st);
        self.not_empty.notify_one();
        if dropped > 0 {
            self.progress.notify_all();
        }
        dropped
    }

    /// Takes the next event, waiting for one; `None` once the queue is closed and empty. The
    /// caller must call [`EventQueue::done`] when it has finished with the event.
    pub fn pop(&self) -> Option<RecordEvent> {
        let mut st = self.lock();
        loop {
            if let Some((seq, ev)) = st.events.pop_front() {
                if is_frame(&ev) {
                    st.frames -= 1;
                }
                st.in_progress = Some(seq);
                drop(st);
                self.not_full.notify_all();
                return Some(ev);
            }
            if st.closed {
                return None;
            }
            st = self.not_empty.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Marks the event taken by the last `pop` as finished.
    pub fn done(&self) {
        let mut st = self.lock();
        if st.in_progress.take().is_some() {
            st.counters.written += 1;
        }
        drop(st);
        self.progress.notify_all();
    }

    /// Waits until every event pushed before this call is finished (or dropped), at most
    /// `timeout`; returns whether it got there.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.lock();
        let target = st.next_seq;
        while st.oldest_pending() < target {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .progress
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Refuses new events and wakes the consumer; queued events are still delivered.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Discards everything still queued (counted as dropped) and closes the queue.
    pub fn abandon(&self) {
        let mut st = self.lock();
        let n = st.events.len() as u64;
        st.events.clear();
        st.frames = 0;
        st.counters.dropped += n;
        st.closed = true;
        drop(st);
        self.not_empty.notify_all();
        self.not_full.notify_all();
        self.progress.notify_all();
    }

    /// The consumer is gone: the event it was working on (if any) and everything queued are
    /// counted as dropped, and the queue is closed (nobody waits for room or progress again).
    pub fn consumer_gone(&self) {
        {
            let mut st = self.lock();
            if st.in_progress.take().is_some() {
                st.counters.dropped += 1;
            }
        }
        self.abandon();
    }

    /// The counters now.
    pub fn counters(&self) -> QueueCounters {
        let st = self.lock();
        QueueCounters {
            queued: st.events.len(),
            in_flight: usize::from(st.in_progress.is_some()),
            ..st.counters
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::Observation;
    use crate::recorder::StepTimings;
    use std::sync::Arc;

    fn frame(step: u64) -> RecordEvent {
        RecordEvent::Observation {
            step,
            label: format!("f{step}"),
            observation: Arc::new(Observation {
                step,
                sim_time: None,
                cameras: vec![],
                proprio: Default::default(),
                sim: None,
            }),
        }
    }

    fn timing(step: u64) -> RecordEvent {
        RecordEvent::Timings {
            step,
            timings: StepTimings::default(),
        }
    }

    fn step_of(ev: &RecordEvent) -> u64 {
        match ev {
            RecordEvent::Observation { step, .. }
            | RecordEvent::Timings { step, .. }
            | RecordEvent::PartialReply { step, .. } => *step,
            _ => u64::MAX,
        }
    }

    #[test]
    fn lossy_queue_drops_the_oldest_frames_and_keeps_text() {
        let q = EventQueue::new(100, 2, Overflow::DropOldest);
        q.push(frame(0));
        q.push(timing(0));
        q.push(frame(1));
        assert_eq!(q.push(frame(2)), 1, "the third frame pushes out the first");
        let c = q.counters();
        assert_eq!((c.accepted, c.dropped, c.queued), (4, 1, 3));
        let mut seen = vec![];
        q.close();
        while let Some(ev) = q.pop() {
            seen.push((is_frame(&ev), step_of(&ev)));
            q.done();
        }
        assert_eq!(seen, vec![(false, 0), (true, 1), (true, 2)]);
    }

    #[test]
    fn lossy_queue_bounds_events_too() {
        let q = EventQueue::new(3, 10, Overflow::DropOldest);
        for s in 0..5 {
            q.push(timing(s));
        }
        let c = q.counters();
        assert_eq!((c.dropped, c.queued), (2, 3));
        q.close();
        assert_eq!(q.pop().map(|e| step_of(&e)), Some(2));
    }

    #[test]
    fn lossless_queue_waits_for_room_and_loses_nothing() {
        let q = Arc::new(EventQueue::new(2, 1, Overflow::Block));
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut steps = vec![];
                while let Some(ev) = q.pop() {
                    std::thread::sleep(Duration::from_millis(1));
                    steps.push(step_of(&ev));
                    q.done();
                }
                steps
            })
        };
        for s in 0..50 {
            q.push(if s % 2 == 0 { frame(s) } else { timing(s) });
        }
        assert!(q.wait_drained(Duration::from_secs(30)));
        q.close();
        let steps = consumer.join().unwrap();
        assert_eq!(steps, (0..50).collect::<Vec<_>>());
        let c = q.counters();
        assert_eq!((c.accepted, c.written, c.dropped, c.queued), (50, 50, 0, 0));
    }

    #[test]
    fn partial_replies_of_a_step_supersede_each_other() {
        let q = EventQueue::new(10, 10, Overflow::Block);
        for text in ["a", "ab", "abc"] {
            q.push(RecordEvent::PartialReply {
                step: 3,
                text: text.into(),
            });
        }
        q.push(RecordEvent::PartialReply {
            step: 4,
            text: "x".into(),
        });
        let c = q.counters();
        assert_eq!((c.queued, c.superseded, c.dropped), (2, 2, 0));
        q.close();
        match q.pop() {
            Some(RecordEvent::PartialReply { step: 3, text }) => assert_eq!(text, "abc"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_vanished_consumer_releases_waiting_producers() {
        let q = Arc::new(EventQueue::new(1, 1, Overflow::Block));
        q.push(timing(0));
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || q.push(timing(1)))
        };
        // The consumer takes one event and dies without finishing it.
        assert!(q.pop().is_some());
        q.consumer_gone();
        producer.join().unwrap();
        assert!(q.wait_drained(Duration::from_secs(5)));
        let c = q.counters();
        // Two pushes: neither was written; both are counted as dropped, whichever way the race
        // between the producer and the vanishing consumer went.
        assert_eq!((c.written, c.queued, c.dropped), (0, 0, 2), "{c:?}");
    }

    #[test]
    fn push_after_close_is_counted_as_dropped() {
        let q = EventQueue::new(4, 4, Overflow::Block);
        q.close();
        q.push(timing(0));
        assert_eq!(q.counters().dropped, 1);
        assert!(q.pop().is_none());
        assert!(q.wait_drained(Duration::from_millis(10)));
    }
}
