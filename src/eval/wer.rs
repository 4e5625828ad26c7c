//! Word error rate with the usual English normalisation (a subset of Whisper's
//! `EnglishTextNormalizer`: case, punctuation, hyphens, contractions, spelled-out titles).

/// Lower-cases, expands contractions and abbreviated titles, turns hyphens into spaces and drops
/// all other punctuation; returns the words.
pub fn normalize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace(['’', '‘'], "'");
    let mut words = Vec::new();
    for raw in lower.split(|c: char| c.is_whitespace() || c == '-' || c == '—' || c == '–') {
        let w: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '\'')
            .collect();
        let w = w.trim_matches('\'');
        if w.is_empty() {
            continue;
        }
        words.extend(expand(w).split(' ').map(str::to_string));
    }
    words
}

fn expand(w: &str) -> String {
    let title = match w {
        "mr" => Some("mister"),
        "mrs" => Some("missus"),
        "dr" => Some("doctor"),
        "st" => Some("saint"),
        "jr" => Some("junior"),
        "sr" => Some("senior"),
        "won't" => Some("will not"),
        "can't" => Some("can not"),
        "cannot" => Some("can not"),
        _ => None,
    };
    if let Some(t) = title {
        return t.to_string();
    }
    for (suffix, full) in [
        ("n't", " not"),
        ("'re", " are"),
        ("'ll", " will"),
        ("'ve", " have"),
        ("'m", " am"),
        ("'d", " would"),
    ] {
        if let Some(stem) = w.strip_suffix(suffix) {
            if !stem.is_empty() {
                return format!("{stem}{full}");
            }
        }
    }
    w.replace('\'', "")
}

/// Counts of a word alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WerCounts {
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
    pub reference_words: usize,
}

impl WerCounts {
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// Errors per reference word (0 when the reference is empty and so is the hypothesis).
    pub fn rate(&self) -> f64 {
        if self.reference_words == 0 {
            return if self.insertions == 0 { 0.0 } else { 1.0 };
        }
        self.errors() as f64 / self.reference_words as f64
    }
}

impl std::ops::Add for WerCounts {
    type Output = WerCounts;

    fn add(self, other: WerCounts) -> WerCounts {
        WerCounts {
            substitutions: self.substitutions + other.substitutions,
            deletions: self.deletions + other.deletions,
            insertions: self.insertions + other.insertions,
            reference_words: self.reference_words + other.reference_words,
        }
    }
}

/// Aligns two word sequences by minimum edit distance.
pub fn align<S: AsRef<str>>(reference: &[S], hypothesis: &[S]) -> WerCounts {
    let (n, m) = (reference.len(), hypothesis.len());
    // cost, substitutions, deletions, insertions along the best path to each cell
    let mut prev: Vec<(usize, usize, usize, usize)> = (0..=m).map(|j| (j, 0, 0, j)).collect();
    for i in 1..=n {
        let mut cur = vec![(i, 0, i, 0); m + 1];
        for j in 1..=m {
            let same = reference[i - 1].as_ref() == hypothesis[j - 1].as_ref();
            let diag = prev[j - 1];
            let sub = (
                diag.0 + usize::from(!same),
                diag.1 + usize::from(!same),
                diag.2,
                diag.3,
            );
            let up = prev[j];
            let del = (up.0 + 1, up.1, up.2 + 1, up.3);
            let left = cur[j - 1];
            let ins = (left.0 + 1, left.1, left.2, left.3 + 1);
            cur[j] = [sub, del, ins]
                .into_iter()
                .min_by_key(|c| c.0)
                .expect("three");
        }
        prev = cur;
    }
    let (_, substitutions, deletions, insertions) = prev[m];
    WerCounts {
        substitutions,
        deletions,
        insertions,
        reference_words: n,
    }
}

/// Word error rate of `hypothesis` against `reference`, after [`normalize`].
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    align(&normalize(reference), &normalize(hypothesis)).rate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_matches_whisper_conventions() {
        assert_eq!(
            normalize("Mr. Dashwood wasn't ill-disposed, \"really\"!"),
            vec!["mister", "dashwood", "was", "not", "ill", "disposed", "really"]
        );
        assert_eq!(normalize("  "), Vec::<String>::new());
        assert_eq!(
            normalize("Won't you? I'm here."),
            vec!["will", "not", "you", "i", "am", "here"]
        );
    }

    #[test]
    fn hand_computed_alignments() {
        fn r(s: &str) -> Vec<&str> {
            s.split_whitespace().collect()
        }
        // identical
        assert_eq!(align(&r("a b c"), &r("a b c")).errors(), 0);
        // one substitution
        let c = align(&r("a b c d"), &r("a x c d"));
        assert_eq!((c.substitutions, c.deletions, c.insertions), (1, 0, 0));
        assert_eq!(c.rate(), 0.25);
        // one deletion and one insertion
        let c = align(&r("a b c d"), &r("a c d e"));
        assert_eq!((c.substitutions, c.deletions, c.insertions), (0, 1, 1));
        // everything inserted into an empty reference
        let c = align(&r(""), &r("x y"));
        assert_eq!((c.insertions, c.rate()), (2, 1.0));
        // everything deleted
        let c = align(&r("a b"), &r(""));
        assert_eq!((c.deletions, c.rate()), (2, 1.0));
        // kitten/sitting at word level: 2 substitutions + 1 insertion over 6 words
        let c = align(&r("k i t t e n"), &r("s i t t i n g"));
        assert_eq!((c.errors(), c.reference_words), (3, 6));
    }

    #[test]
    fn wer_normalises_both_sides() {
        assert_eq!(wer("Mister Smith is here.", "mr smith is here"), 0.0);
        assert!((wer("one two three four", "one too three") - 0.5).abs() < 1e-9);
    }
}
