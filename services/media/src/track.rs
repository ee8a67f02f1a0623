//! Per-track packet accounting: counts, timeline extent and timestamp gaps.
//!
//! Gaps are measured between consecutive packets in *decode* order (DTS when there is one), so
//! B-frame reordering of presentation timestamps never looks like a jump.

use crate::caps::StreamInfo;
use recvault_core::probe::{TimestampGap, TrackReport};

/// At most this many gaps are kept per track: a report must stay small whatever the file does.
const MAX_GAPS: usize = 256;

/// Timestamps of one packet on the file timeline, ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Packet {
    pub(crate) pts: Option<u64>,
    pub(crate) dts: Option<u64>,
    pub(crate) duration: Option<u64>,
    pub(crate) size: u64,
}

/// What has been seen of one track so far.
#[derive(Debug, Clone)]
pub(crate) struct TrackStats {
    info: StreamInfo,
    gap_threshold_ns: u64,
    packets: u64,
    bytes: u64,
    first_pts: Option<u64>,
    end: Option<u64>,
    /// Decode timestamp of the previous packet.
    last_ts: Option<u64>,
    last_duration: Option<u64>,
    /// The last ordinary step between packets: the packet before a pause may carry a duration
    /// stretched over the whole pause (muxers derive durations from the next timestamp), so the
    /// pause is measured from where the regular cadence would have put the next packet.
    cadence: Option<u64>,
    gaps: Vec<TimestampGap>,
}

impl TrackStats {
    pub(crate) fn new(info: StreamInfo, gap_threshold_ns: u64) -> Self {
        Self {
            info,
            gap_threshold_ns,
            packets: 0,
            bytes: 0,
            first_pts: None,
            end: None,
            last_ts: None,
            last_duration: None,
            cadence: None,
            gaps: Vec::new(),
        }
    }

    /// New caps on the pad (a format change mid-stream keeps the counts).
    pub(crate) fn set_info(&mut self, info: StreamInfo) {
        self.info = info;
    }

    pub(crate) fn packet(&mut self, p: Packet) {
        self.packets += 1;
        self.bytes += p.size;
        if let Some(pts) = p.pts {
            self.first_pts = Some(self.first_pts.map_or(pts, |f| f.min(pts)));
        }
        if let Some(start) = p.pts.or(p.dts) {
            let end = start.saturating_add(p.duration.unwrap_or(0));
            self.end = Some(self.end.map_or(end, |e| e.max(end)));
        }
        let Some(ts) = p.dts.or(p.pts) else { return };
        if let Some(last) = self.last_ts
            && ts > last
        {
            let step = ts - last;
            // Where the next packet was due: the regular cadence, else the previous packet's
            // own duration when it is shorter than the step.
            let due = self.cadence.or(self.last_duration.filter(|&d| d < step)).unwrap_or(0);
            let length = step - due.min(step);
            if length > self.gap_threshold_ns {
                if self.gaps.len() < MAX_GAPS {
                    self.gaps.push(TimestampGap { at_ns: last + due.min(step), length_ns: length });
                }
            } else {
                self.cadence = Some(step);
            }
        }
        self.last_ts = Some(ts);
        self.last_duration = p.duration;
    }

    pub(crate) fn report(&self) -> TrackReport {
        let i = &self.info;
        TrackReport {
            kind: i.kind,
            codec: i.codec.clone(),
            profile: i.profile.clone(),
            width: i.width,
            height: i.height,
            frame_rate: i.frame_rate,
            sample_rate: i.sample_rate,
            channels: i.channels,
            packets: self.packets,
            bytes: self.bytes,
            first_pts_ns: self.first_pts,
            end_ns: self.end,
            gaps: self.gaps.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    fn stats() -> TrackStats {
        TrackStats::new(StreamInfo::unknown(), S)
    }

    fn frame(ts: u64, duration: u64) -> Packet {
        Packet { pts: Some(ts), dts: Some(ts), duration: Some(duration), size: 100 }
    }

    #[test]
    fn counts_and_extent() {
        let mut t = stats();
        for i in 0..30 {
            t.packet(frame(i * 40 * MS, 40 * MS));
        }
        let r = t.report();
        assert_eq!((r.packets, r.bytes, r.first_pts_ns, r.end_ns), (30, 3000, Some(0), Some(1200 * MS)));
        assert!(r.gaps.is_empty());
    }

    #[test]
    fn a_pause_with_a_stretched_duration_is_measured_from_the_cadence() {
        // as mp4mux writes it: the frame before the pause lasts until the frame after it
        let mut t = stats();
        for i in 0..10 {
            t.packet(frame(i * 100 * MS, 100 * MS));
        }
        t.packet(frame(1000 * MS, 4000 * MS));
        t.packet(frame(5000 * MS, 100 * MS));
        t.packet(frame(5100 * MS, 100 * MS));
        let r = t.report();
        assert_eq!(r.gaps, vec![TimestampGap { at_ns: 1100 * MS, length_ns: 3900 * MS }]);
        assert_eq!(r.end_ns, Some(5200 * MS));
    }

    #[test]
    fn a_pause_after_the_first_packet_uses_its_duration_when_plausible() {
        let mut t = stats();
        t.packet(frame(0, 64 * MS));
        t.packet(frame(3000 * MS, 64 * MS));
        assert_eq!(t.report().gaps, vec![TimestampGap { at_ns: 64 * MS, length_ns: 2936 * MS }]);
    }

    #[test]
    fn threshold_is_exclusive() {
        for (pause_ms, found) in [(1000, false), (1001, true)] {
            let mut t = stats();
            t.packet(frame(0, 100 * MS));
            t.packet(frame(100 * MS, 100 * MS));
            t.packet(frame((200 + pause_ms) * MS, 100 * MS));
            assert_eq!(t.report().gaps.len(), usize::from(found), "{pause_ms} ms");
        }
    }

    #[test]
    fn b_frame_reordering_is_not_a_gap() {
        // decode order I P B B with PTS jumping around; DTS steady
        let mut t = stats();
        let pts = [66, 200, 100, 133, 333, 233, 266];
        for (i, p) in pts.iter().enumerate() {
            t.packet(Packet { pts: Some(p * MS), dts: Some(i as u64 * 33 * MS), duration: Some(33 * MS), size: 1 });
        }
        let r = t.report();
        assert!(r.gaps.is_empty());
        assert_eq!((r.first_pts_ns, r.end_ns), (Some(66 * MS), Some(366 * MS)));
    }

    #[test]
    fn packets_without_timestamps_are_counted_only() {
        let mut t = stats();
        t.packet(Packet { size: 5, ..Packet::default() });
        let r = t.report();
        assert_eq!((r.packets, r.bytes, r.first_pts_ns, r.end_ns), (1, 5, None, None));
    }
}
