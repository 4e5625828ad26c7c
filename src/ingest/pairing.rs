//! From a transcript and an analysed video to keyframes and image-text pairs. Pure functions:
//! every choice here is testable without FFmpeg or Whisper.

use crate::media::{phash_distance, FrameSample};
use crate::store::{NewItem, SegmentRow};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PairingOptions {
    /// Consecutive transcript segments are merged until a caption has at least this many words.
    pub min_words: usize,
    /// Merged segments of context kept before and after each item.
    pub context: usize,
    /// Near-duplicate consecutive frames are folded into one item while its caption stays
    /// within this many words.
    pub max_caption_words: usize,
    /// Perceptual-hash distance (bits of 64) at or below which two frames are near-duplicates.
    pub duplicate_distance: u32,
    /// Luma change between samples (0..=1) above which a sample starts a new shot.
    pub cut_threshold: f64,
    /// Frames this close to a cut (seconds) are avoided: they may be mid-transition.
    pub cut_guard_s: f64,
    /// The mid-point frame is kept unless another candidate is this much sharper.
    pub sharper_factor: f64,
    /// Longer side of stored keyframes, in pixels.
    pub max_frame_side: u32,
}

impl Default for PairingOptions {
    fn default() -> Self {
        Self {
            min_words: 6,
            context: 1,
            max_caption_words: 48,
            duplicate_distance: 8,
            cut_threshold: 0.12,
            cut_guard_s: 0.3,
            sharper_factor: 1.5,
            max_frame_side: 1280,
        }
    }
}

/// A stretch of speech: one or more transcript segments merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Merges consecutive segments until each span has `min_words` words; a short tail joins the
/// span before it.
pub fn merge_segments(segments: &[SegmentRow], min_words: usize) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut open: Option<Span> = None;
    for s in segments.iter().filter(|s| !s.text.trim().is_empty()) {
        let cur = open.get_or_insert_with(|| Span {
            start: s.start_s,
            end: s.end_s,
            text: String::new(),
        });
        if !cur.text.is_empty() {
            cur.text.push(' ');
        }
        cur.text.push_str(s.text.trim());
        cur.end = s.end_s.max(cur.end);
        if word_count(&cur.text) >= min_words {
            spans.extend(open.take());
        }
    }
    if let Some(tail) = open {
        match spans.last_mut() {
            Some(last) => {
                last.text.push(' ');
                last.text.push_str(&tail.text);
                last.end = tail.end.max(last.end);
            }
            None => spans.push(tail),
        }
    }
    spans
}

/// Times at which a new shot starts: samples whose change exceeds the threshold and is the
/// largest within ±2 samples (one cut, however many samples see it).
pub fn detect_cuts(samples: &[FrameSample], threshold: f64) -> Vec<f64> {
    (1..samples.len())
        .filter(|&i| {
            let c = samples[i].change;
            c > threshold
                && (i.saturating_sub(2)..(i + 3).min(samples.len()))
                    .all(|j| j == i || samples[j].change < c || (samples[j].change == c && j > i))
        })
        .map(|i| samples[i].t)
        .collect()
}

/// A chosen keyframe, before its pixels are extracted.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Index of the frame in the video (see [`FrameSample::frame`]).
    pub frame: u64,
    pub t: f64,
    pub reason: &'static str,
    pub span_start: f64,
    pub span_end: f64,
    pub sharpness: f64,
    pub phash: Vec<u8>,
}

/// The best sample for [start, end): the one nearest the mid-point unless a candidate is
/// markedly sharper; candidates near a cut are avoided while others exist.
fn pick(
    samples: &[FrameSample],
    start: f64,
    end: f64,
    cuts: &[f64],
    opts: &PairingOptions,
) -> Option<FrameSample> {
    let mid = (start + end) / 2.0;
    let margin = (end - start) * 0.15;
    let inside: Vec<&FrameSample> = samples
        .iter()
        .filter(|s| s.t >= start + margin && s.t <= end - margin)
        .collect();
    let pool: Vec<&FrameSample> = if inside.is_empty() {
        // span shorter than the sampling interval: the nearest sample within the span
        samples
            .iter()
            .filter(|s| s.t >= start && s.t <= end)
            .collect()
    } else {
        inside
    };
    let clear: Vec<&FrameSample> = pool
        .iter()
        .copied()
        .filter(|s| cuts.iter().all(|c| (s.t - c).abs() > opts.cut_guard_s))
        .collect();
    let pool = if clear.is_empty() { pool } else { clear };
    let off_mid = |s: &FrameSample| (s.t - mid).abs();
    let nearest = pool
        .iter()
        .min_by(|a, b| off_mid(a).total_cmp(&off_mid(b)))?;
    let sharpest = pool.iter().max_by(|a, b| {
        a.sharpness
            .total_cmp(&b.sharpness)
            .then_with(|| off_mid(b).total_cmp(&off_mid(a)))
    })?;
    let chosen = if sharpest.sharpness > nearest.sharpness * opts.sharper_factor {
        sharpest
    } else {
        nearest
    };
    Some((*chosen).clone())
}

/// Keyframes for a video: one per speech span, then one for every shot that none of those shows.
pub fn choose_keyframes(
    samples: &[FrameSample],
    spans: &[Span],
    duration: f64,
    opts: &PairingOptions,
) -> Vec<Choice> {
    let cuts = detect_cuts(samples, opts.cut_threshold);
    let mut chosen: Vec<Choice> = spans
        .iter()
        .filter_map(|sp| {
            let s = pick(samples, sp.start, sp.end.min(duration), &cuts, opts)?;
            Some(Choice {
                frame: s.frame,
                t: s.t,
                reason: "speech",
                span_start: sp.start,
                span_end: sp.end,
                sharpness: s.sharpness,
                phash: s.phash,
            })
        })
        .collect();
    let mut bounds = vec![0.0];
    bounds.extend(cuts.iter().copied());
    bounds.push(duration);
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        if chosen.iter().any(|c| c.t >= a && c.t < b) {
            continue;
        }
        if let Some(s) = pick(samples, a, b, &cuts, opts) {
            chosen.push(Choice {
                frame: s.frame,
                t: s.t,
                reason: "scene",
                span_start: a,
                span_end: b,
                sharpness: s.sharpness,
                phash: s.phash,
            });
        }
    }
    chosen.sort_by(|a, b| a.t.total_cmp(&b.t));
    chosen.dedup_by(|b, a| a.frame == b.frame);
    chosen
}

/// A keyframe as stored: its time, image and perceptual hash.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFrame {
    pub t: f64,
    pub image_hash: String,
    pub phash: Vec<u8>,
    pub span_start: f64,
    pub span_end: f64,
}

/// Pairs keyframes with speech: each frame gets the span it falls in (or none: a frame in
/// silence); near-duplicate consecutive frames fold into one item whose caption joins their
/// speech; context is the spans just before and after.
pub fn pair(frames: &[StoredFrame], spans: &[Span], opts: &PairingOptions) -> Vec<NewItem> {
    struct Draft {
        frame: usize,
        start: f64,
        end: f64,
        /// indices into `spans`, ascending, distinct
        spans: Vec<usize>,
    }
    let span_at = |t: f64| spans.iter().position(|s| t >= s.start && t <= s.end);
    let mut drafts: Vec<Draft> = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let own = span_at(f.t);
        let (start, end) = match own {
            Some(k) => (spans[k].start, spans[k].end),
            None => (f.span_start, f.span_end),
        };
        if let Some(last) = drafts.last_mut() {
            let near =
                phash_distance(&frames[last.frame].phash, &f.phash) <= opts.duplicate_distance;
            let mut merged = last.spans.clone();
            merged.extend(own.filter(|k| !last.spans.contains(k)));
            let words: usize = merged.iter().map(|&k| word_count(&spans[k].text)).sum();
            if near && words <= opts.max_caption_words {
                last.spans = merged;
                last.start = last.start.min(start);
                last.end = last.end.max(end);
                continue;
            }
        }
        drafts.push(Draft {
            frame: i,
            start,
            end,
            spans: own.into_iter().collect(),
        });
    }
    let join = |range: std::ops::Range<usize>| {
        spans[range]
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    drafts
        .into_iter()
        .map(|d| {
            // spans wholly before / after the item, nearest first
            let first = d
                .spans
                .first()
                .copied()
                .unwrap_or_else(|| spans.iter().take_while(|s| s.end <= d.start).count());
            let after = d
                .spans
                .last()
                .map(|k| k + 1)
                .unwrap_or_else(|| spans.iter().take_while(|s| s.start < d.end).count());
            let before = first.saturating_sub(opts.context)..first;
            let after = after.min(spans.len())..(after + opts.context).min(spans.len());
            NewItem {
                image_hash: frames[d.frame].image_hash.clone(),
                caption: d
                    .spans
                    .iter()
                    .map(|&k| spans[k].text.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                context_before: join(before),
                context_after: join(after),
                start_s: d.start,
                end_s: d.end,
                frame_s: frames[d.frame].t,
                no_speech: d.spans.is_empty(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(a: f64, b: f64, text: &str) -> SegmentRow {
        SegmentRow {
            start_s: a,
            end_s: b,
            text: text.into(),
            no_speech_prob: 0.0,
        }
    }

    fn sample(t: f64, sharpness: f64, change: f64, phash: u8) -> FrameSample {
        FrameSample {
            frame: (t * 10.0).round() as u64,
            t,
            sharpness,
            change,
            phash: vec![phash; 8],
        }
    }

    #[test]
    fn short_segments_merge_up_to_min_words_and_a_short_tail_joins_the_last() {
        let segs = [
            seg(0.0, 1.0, "one two"),
            seg(1.0, 2.0, "three four"),
            seg(2.0, 3.0, "five six seven"),
            seg(3.0, 4.0, "  "),
            seg(4.0, 5.0, "eight"),
        ];
        let spans = merge_segments(&segs, 4);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].text, "one two three four");
        assert_eq!((spans[0].start, spans[0].end), (0.0, 2.0));
        assert_eq!(spans[1].text, "five six seven eight");
        assert_eq!((spans[1].start, spans[1].end), (2.0, 5.0));
        assert_eq!(merge_segments(&[seg(0.0, 1.0, "hi")], 5).len(), 1);
        assert!(merge_segments(&[], 5).is_empty());
    }

    #[test]
    fn cuts_are_local_maxima_above_threshold() {
        let changes = [0.0, 0.01, 0.3, 0.25, 0.02, 0.01, 0.05, 0.5, 0.01];
        let samples: Vec<_> = changes
            .iter()
            .enumerate()
            .map(|(i, c)| sample(i as f64 * 0.1, 1.0, *c, 0))
            .collect();
        let cuts = detect_cuts(&samples, 0.1);
        assert_eq!(cuts.len(), 2);
        assert!((cuts[0] - 0.2).abs() < 1e-9 && (cuts[1] - 0.7).abs() < 1e-9);
    }

    #[test]
    fn picks_mid_point_unless_much_sharper_and_avoids_cuts() {
        let opts = PairingOptions::default();
        // span 0..10, samples every second; mid-point 5 is fine
        let mut samples: Vec<_> = (0..=10).map(|i| sample(i as f64, 100.0, 0.0, 0)).collect();
        let c = choose_keyframes(
            &samples,
            &[Span {
                start: 0.0,
                end: 10.0,
                text: "x".into(),
            }],
            10.0,
            &opts,
        );
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].t, c[0].reason), (5.0, "speech"));
        // a markedly sharper frame wins
        samples[3].sharpness = 400.0;
        let c = choose_keyframes(
            &samples,
            &[Span {
                start: 0.0,
                end: 10.0,
                text: "x".into(),
            }],
            10.0,
            &opts,
        );
        assert_eq!(c[0].t, 3.0);
        // ... unless it sits on a cut: sample 3 starts a new shot, the cut shot 3..10 already
        // has the speech frame so no scene frame is added for it, but shot 0..3 gets one
        samples[3].change = 0.9;
        let c = choose_keyframes(
            &samples,
            &[Span {
                start: 0.0,
                end: 10.0,
                text: "x".into(),
            }],
            10.0,
            &opts,
        );
        let speech: Vec<_> = c.iter().filter(|c| c.reason == "speech").collect();
        assert_eq!(speech[0].t, 5.0);
        let scene: Vec<_> = c.iter().filter(|c| c.reason == "scene").collect();
        assert_eq!(scene.len(), 1);
        assert!(scene[0].t < 3.0);
    }

    #[test]
    fn silent_video_gets_one_frame_per_shot() {
        let opts = PairingOptions::default();
        let samples: Vec<_> = (0..40)
            .map(|i| sample(i as f64 * 0.25, 50.0, if i == 20 { 0.6 } else { 0.0 }, 0))
            .collect();
        let c = choose_keyframes(&samples, &[], 10.0, &opts);
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|c| c.reason == "scene"));
        assert!(c[0].t < 5.0 && c[1].t > 5.0);
    }

    fn frame(t: f64, phash: u8, span: (f64, f64)) -> StoredFrame {
        StoredFrame {
            t,
            image_hash: format!("img{t}"),
            phash: vec![phash; 8],
            span_start: span.0,
            span_end: span.1,
        }
    }

    #[test]
    fn pairs_with_context_and_folds_near_duplicates() {
        let opts = PairingOptions {
            context: 1,
            ..Default::default()
        };
        let spans = vec![
            Span {
                start: 0.0,
                end: 2.0,
                text: "alpha".into(),
            },
            Span {
                start: 2.0,
                end: 4.0,
                text: "beta".into(),
            },
            Span {
                start: 4.0,
                end: 6.0,
                text: "gamma".into(),
            },
            Span {
                start: 6.0,
                end: 8.0,
                text: "delta".into(),
            },
        ];
        // frames 2 and 3 look the same (identical phash): one item for beta+gamma
        let frames = vec![
            frame(1.0, 0x00, (0.0, 2.0)),
            frame(3.0, 0xff, (2.0, 4.0)),
            frame(5.0, 0xff, (4.0, 6.0)),
            frame(7.0, 0x0f, (6.0, 8.0)),
        ];
        let items = pair(&frames, &spans, &opts);
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].caption, "beta gamma");
        assert_eq!(
            (items[1].start_s, items[1].end_s, items[1].frame_s),
            (2.0, 6.0, 3.0)
        );
        assert_eq!(items[1].context_before, "alpha");
        assert_eq!(items[1].context_after, "delta");
        assert_eq!(items[0].context_before, "");
        assert_eq!(items[2].context_after, "");
        assert!(items.iter().all(|i| !i.no_speech));
    }

    #[test]
    fn folding_stops_at_the_caption_cap() {
        let opts = PairingOptions {
            max_caption_words: 2,
            ..Default::default()
        };
        let spans = vec![
            Span {
                start: 0.0,
                end: 2.0,
                text: "a b".into(),
            },
            Span {
                start: 2.0,
                end: 4.0,
                text: "c d".into(),
            },
        ];
        let frames = vec![frame(1.0, 0, (0.0, 2.0)), frame(3.0, 0, (2.0, 4.0))];
        assert_eq!(pair(&frames, &spans, &opts).len(), 2);
    }

    #[test]
    fn frames_in_silence_are_flagged_with_surrounding_context() {
        let opts = PairingOptions::default();
        let spans = vec![
            Span {
                start: 0.0,
                end: 2.0,
                text: "before".into(),
            },
            Span {
                start: 8.0,
                end: 9.0,
                text: "after".into(),
            },
        ];
        let frames = vec![frame(5.0, 0x33, (3.0, 7.0))];
        let items = pair(&frames, &spans, &opts);
        assert_eq!(items.len(), 1);
        assert!(items[0].no_speech);
        assert_eq!(items[0].caption, "");
        assert_eq!((items[0].start_s, items[0].end_s), (3.0, 7.0));
        assert_eq!(items[0].context_before, "before");
        assert_eq!(items[0].context_after, "after");
    }
}
