//! Full-text caption search on 100,000 items through `Store::search_items`, the function the
//! CLI and the app's browser call.
//!
//!   cargo bench --bench fts_search
//!
//! Captions and their context are generated deterministically: words drawn with a Zipf law
//! (s = 1.07, as English text) over 300 common caption words followed by a 20,000-word
//! synthetic long tail, so common words match most items and rare ones a handful, as in real
//! data. 200 queries of seven kinds (one common, mid-frequency or rare word, two words, a
//! phrase, a prefix, OR), each with the default limit of 20 and snippets. Prints a table and
//! writes target/bench/fts_search.json (median and p95 per kind and overall; target: median
//! under 20 ms).

use std::time::Instant;

use tessera::store::{ImageBlob, ImportedItem, SearchOptions, Store};

const ITEMS: usize = 100_000;
const QUERIES: usize = 200;
const TAIL: usize = 20_000;

const COMMON: &str = "a the of and in on with at to is man woman person people dog cat \
    car street table white black red blue green two three young old large small front top \
    next sitting standing walking holding looking playing riding wearing near down up side \
    water field grass tree building sign room kitchen bathroom bed window door wall floor \
    road bus train truck bike motorcycle plane boat sky clouds beach ocean snow mountain \
    park city food plate pizza sandwich cake bowl cup glass bottle phone laptop computer \
    screen book paper bag umbrella hat shirt jacket dress shoes hand face hair head group \
    child children boy girl baby player ball game tennis baseball soccer frisbee kite \
    skateboard surfboard horse cow sheep elephant giraffe zebra bird bear fish flower \
    flowers light lights pole fence bench chair couch desk shelf box clock picture \
    sitting covered filled parked lying flying eating drinking talking smiling cutting \
    cooking reading writing showing says so we you it this that they here there now then \
    just very really going get make see know think want look right left back over under \
    through around into out from for by as about some many other another each every all \
    one four five first last long short high low big little bright dark wooden metal \
    plastic stone brick glass open closed empty busy quiet slide chart graph data model \
    training loss accuracy image text video frame caption speech word sentence question \
    answer example result method paper figure table equation layer network attention \
    token patch pixel mask encoder decoder vision language transformer pretraining \
    dataset benchmark score error test train split sample batch epoch learning rate \
    weight gradient function value point line curve axis number percent time second \
    minute hour day night morning evening summer winter spring autumn rain sun wind";

/// SplitMix64: deterministic and good enough to draw words.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
}

/// Pronounceable made-up words for the long tail ("bakelu", "tomira", …).
fn tail_word(mut i: usize) -> String {
    const ONSETS: &[&str] = &[
        "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v",
    ];
    const VOWELS: &[&str] = &["a", "e", "i", "o", "u"];
    let mut w = String::new();
    for _ in 0..3 {
        w.push_str(ONSETS[i % ONSETS.len()]);
        i /= ONSETS.len();
        w.push_str(VOWELS[i % VOWELS.len()]);
        i /= VOWELS.len();
    }
    w
}

struct Vocabulary {
    words: Vec<String>,
    /// Cumulative Zipf probabilities, for sampling by binary search.
    cdf: Vec<f64>,
}

impl Vocabulary {
    fn new() -> Self {
        let mut words: Vec<String> = Vec::new();
        for w in COMMON.split_whitespace() {
            if !words.iter().any(|x| x == w) {
                words.push(w.to_string());
            }
        }
        words.extend((0..TAIL).map(tail_word));
        let weights: Vec<f64> = (1..=words.len())
            .map(|r| 1.0 / (r as f64).powf(1.07))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Self { words, cdf }
    }

    fn draw(&self, rng: &mut Rng) -> &str {
        let u = rng.unit();
        let i = self
            .cdf
            .partition_point(|&c| c < u)
            .min(self.words.len() - 1);
        &self.words[i]
    }

    fn text(&self, rng: &mut Rng, lo: usize, hi: usize) -> String {
        let n = rng.range(lo, hi);
        (0..n).map(|_| self.draw(rng)).collect::<Vec<_>>().join(" ")
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let vocab = Vocabulary::new();
    let mut rng = Rng(2024);

    // One image for all items: the bench is about text, and blobs cost nothing here.
    let hash = store.blobs().put(b"image").unwrap();
    let thumb = store.blobs().put(b"thumb").unwrap();
    let image = ImageBlob {
        hash: hash.clone(),
        size: 5,
        mime: "image/jpeg".into(),
        width: 1,
        height: 1,
        thumb_hash: thumb,
        thumb_size: 5,
        thumb_width: 1,
        thumb_height: 1,
    };
    let mut captions = Vec::with_capacity(ITEMS);
    let items: Vec<ImportedItem> = (0..ITEMS)
        .map(|i| {
            let caption = vocab.text(&mut rng, 5, 30);
            captions.push(caption.clone());
            ImportedItem {
                image_hash: hash.clone(),
                caption,
                source_path: format!("/bench/{i:06}.jpg"),
                split: None,
                meta_json: None,
                question: None,
            }
        })
        .collect();
    let ds = store.ensure_dataset("bench").unwrap();
    let t = Instant::now();
    store.save_imported_items(ds, &[image], &items).unwrap();
    let insert_s = t.elapsed().as_secs_f64();

    // Query kinds, by where their words sit in the frequency ranking.
    let rank_word = |rng: &mut Rng, lo: usize, hi: usize| vocab.words[rng.range(lo, hi)].clone();
    let mut queries: Vec<(&str, String)> = Vec::new();
    for q in 0..QUERIES {
        let kind = match q % 7 {
            0 => ("common word", rank_word(&mut rng, 10, 60)),
            1 => ("mid word", rank_word(&mut rng, 100, 300)),
            2 => ("rare word", rank_word(&mut rng, 2_000, TAIL)),
            3 => (
                "two words",
                format!(
                    "{} {}",
                    rank_word(&mut rng, 10, 200),
                    rank_word(&mut rng, 10, 200)
                ),
            ),
            4 => {
                // Two adjacent words of a real caption.
                let c: Vec<&str> = captions[rng.range(0, ITEMS)].split(' ').collect();
                let at = rng.range(0, c.len() - 1);
                ("phrase", format!("\"{} {}\"", c[at], c[at + 1]))
            }
            5 => {
                let w = rank_word(&mut rng, 60, 300);
                ("prefix", format!("{}*", &w[..w.len().min(3)]))
            }
            _ => (
                "or",
                format!(
                    "{} OR {}",
                    rank_word(&mut rng, 100, 300),
                    rank_word(&mut rng, 100, 300)
                ),
            ),
        };
        queries.push(kind);
    }

    let opts = SearchOptions::default();
    // Warm the page cache and the statement cache, as a running app has.
    for (_, q) in queries.iter().take(10) {
        store.search_items("bench", q, &opts).unwrap();
    }
    let mut times: Vec<(&str, f64, usize)> = Vec::new();
    for (kind, q) in &queries {
        let t = Instant::now();
        let hits = store.search_items("bench", q, &opts).unwrap();
        times.push((kind, t.elapsed().as_secs_f64() * 1e3, hits.len()));
    }

    let kinds = [
        "common word",
        "mid word",
        "rare word",
        "two words",
        "phrase",
        "prefix",
        "or",
    ];
    let summarise = |sel: Vec<(f64, usize)>| {
        let mut ms: Vec<f64> = sel.iter().map(|s| s.0).collect();
        ms.sort_by(f64::total_cmp);
        let hits = sel.iter().map(|s| s.1).sum::<usize>() as f64 / sel.len() as f64;
        (
            ms.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            ms[ms.len() - 1],
            hits,
        )
    };
    println!(
        "{ITEMS} items ({:.1} s to insert and index), {QUERIES} queries, limit {}",
        insert_s, opts.limit
    );
    println!(
        "{:<12} {:>4} {:>10} {:>10} {:>10} {:>6}",
        "kind", "n", "median ms", "p95 ms", "max ms", "hits"
    );
    let mut rows = Vec::new();
    for kind in kinds.iter().copied().chain(["all"]) {
        let sel: Vec<(f64, usize)> = times
            .iter()
            .filter(|t| kind == "all" || t.0 == kind)
            .map(|t| (t.1, t.2))
            .collect();
        let (n, median, p95, max, hits) = summarise(sel);
        println!("{kind:<12} {n:>4} {median:>10.2} {p95:>10.2} {max:>10.2} {hits:>6.1}");
        rows.push(serde_json::json!({
            "kind": kind, "queries": n, "median_ms": median, "p95_ms": p95, "max_ms": max,
            "mean_hits": hits,
        }));
    }
    // Not in the 200: the words nearly every caption has, the worst a user can type.
    let mut worst = Vec::new();
    for q in ["a", "the", "a the"] {
        let mut ms: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                store.search_items("bench", q, &opts).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        println!("worst case {q:<8} median of 5: {:.2} ms", ms[2]);
        worst.push(serde_json::json!({"query": q, "median_ms": ms[2]}));
    }
    let all = rows.last().unwrap().clone();
    let report = serde_json::json!({
        "items": ITEMS,
        "queries": QUERIES,
        "limit": opts.limit,
        "insert_and_index_s": insert_s,
        "median_ms": all["median_ms"],
        "p95_ms": all["p95_ms"],
        "target_median_ms": 20.0,
        "by_kind": rows,
        "stop_words": worst,
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let file = out.join("fts_search.json");
    std::fs::write(&file, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("wrote {}", file.display());
}
