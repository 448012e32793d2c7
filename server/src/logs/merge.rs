//! Merging the lines of many containers by timestamp while they are still
//! being read.
//!
//! Each container's log is already in time order, so a k-way merge over
//! its head line suffices. A container that has no hit to offer yet would
//! hold every other line back until its log is read to the end; instead
//! each reader sends a [`Item::Progress`] mark now and then ("nothing
//! before this time is still to come from me"), so a hit is handed on as
//! soon as no container can still produce an earlier one. Memory is one
//! head per container plus its channel's bounded buffer.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use opsdeck_wire::{LogHit, LogSourceError};
use tokio::sync::mpsc;

/// What a reader sends.
#[derive(Debug)]
pub enum Item {
    /// A hit or context line; later items of the same reader are not older.
    Line(LogHit),
    /// Every later line of this reader is at or after this time.
    Progress(DateTime<Utc>),
    /// The reader broke off (it closes its channel next).
    Error(LogSourceError),
}

/// What the merge hands on.
#[derive(Debug, PartialEq)]
pub enum Merged {
    Line(LogHit),
    Error(LogSourceError),
}

enum Head {
    /// Nothing heard yet: could still send anything.
    Unknown,
    /// Nothing at hand, but nothing older than this will come.
    Bound(DateTime<Utc>),
    Line(LogHit),
    Finished,
}

struct Slot {
    rx: mpsc::Receiver<Item>,
    head: Head,
}

/// The k-way merge of the readers' channels.
pub struct Merge {
    slots: Vec<Slot>,
    errors: VecDeque<LogSourceError>,
}

impl Merge {
    pub fn new(receivers: Vec<mpsc::Receiver<Item>>) -> Merge {
        Merge {
            slots: receivers
                .into_iter()
                .map(|rx| Slot {
                    rx,
                    head: Head::Unknown,
                })
                .collect(),
            errors: VecDeque::new(),
        }
    }

    /// The next line in timestamp order (ties: the earlier reader first) or
    /// error; `None` once every reader has finished.
    pub async fn next(&mut self) -> Option<Merged> {
        loop {
            if let Some(e) = self.errors.pop_front() {
                return Some(Merged::Error(e));
            }
            let min = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match &s.head {
                    Head::Line(h) => Some((h.ts, i)),
                    _ => None,
                })
                .min();
            let lagging = self.slots.iter().position(|s| match s.head {
                Head::Unknown => true,
                // `<=`: a reader at the same time may still send an equal one.
                Head::Bound(b) => min.is_none_or(|(ts, _)| b <= ts),
                Head::Line(_) | Head::Finished => false,
            });
            if let Some(i) = lagging {
                self.receive(i).await;
                continue;
            }
            let (ts, i) = min?;
            let head = std::mem::replace(&mut self.slots[i].head, Head::Bound(ts));
            let Head::Line(hit) = head else {
                unreachable!("min names a slot with a line")
            };
            return Some(Merged::Line(hit));
        }
    }

    async fn receive(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        match slot.rx.recv().await {
            Some(Item::Line(h)) => slot.head = Head::Line(h),
            Some(Item::Progress(ts)) => slot.head = Head::Bound(ts),
            Some(Item::Error(e)) => self.errors.push_back(e),
            None => slot.head = Head::Finished,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn hit(container: &str, s: i64) -> Item {
        Item::Line(LogHit {
            ts: at(s),
            service_id: 1,
            service: "web".into(),
            container: container.into(),
            line: format!("{container} at {s}"),
            level: None,
            hit: true,
        })
    }

    async fn drain(m: &mut Merge) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(x) = m.next().await {
            out.push(match x {
                Merged::Line(h) => h.line,
                Merged::Error(e) => format!("error {}", e.container),
            });
        }
        out
    }

    #[tokio::test]
    async fn lines_come_out_in_time_order_with_errors_on_the_way() {
        let (a, ra) = mpsc::channel(16);
        let (b, rb) = mpsc::channel(16);
        let (c, rc) = mpsc::channel(16);
        for s in [1, 4, 4, 9] {
            a.send(hit("a", s)).await.unwrap();
        }
        for s in [2, 3] {
            b.send(hit("b", s)).await.unwrap();
        }
        b.send(Item::Progress(at(6))).await.unwrap();
        b.send(hit("b", 7)).await.unwrap();
        c.send(hit("c", 4)).await.unwrap();
        c.send(Item::Error(LogSourceError {
            service: "web".into(),
            container: "c".into(),
            message: "engine gone".into(),
        }))
        .await
        .unwrap();
        drop((a, b, c));
        let mut m = Merge::new(vec![ra, rb, rc]);
        assert_eq!(
            drain(&mut m).await,
            [
                "a at 1", "b at 2", "b at 3", "a at 4", "a at 4", "c at 4", "error c", "b at 7",
                "a at 9"
            ]
        );
    }

    #[tokio::test]
    async fn a_hit_is_handed_on_once_no_reader_can_send_an_earlier_one() {
        let (a, ra) = mpsc::channel(16);
        let (slow, rslow) = mpsc::channel(16);
        a.send(hit("a", 5)).await.unwrap();
        let mut m = Merge::new(vec![ra, rslow]);
        // The slow reader has said nothing: the hit must wait.
        assert!(tokio::time::timeout(Duration::from_millis(50), m.next())
            .await
            .is_err());
        // It has read past the hit's time (still reading, channel open).
        slow.send(Item::Progress(at(6))).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), m.next())
            .await
            .expect("handed on without waiting for the end");
        assert!(matches!(got, Some(Merged::Line(h)) if h.line == "a at 5"));
        drop((a, slow));
        assert_eq!(m.next().await, None);
    }
}
