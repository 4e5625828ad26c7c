//! Exact top-k inner-product search through `tessera::index::topk::top_k`, on vectors read from
//! raw little-endian f32 files (made by benches/search_compare.py, which runs this bench and
//! the same search in faiss).
//!
//!   cargo bench --bench search_topk -- --base FILE --queries FILE [--dim 256] [--k 10]
//!       [--cases 1,16,1000] [--reps 9] [--json OUT]
//!
//! `--base` and `--queries` default to $TESSERA_SEARCH_BASE and $TESSERA_SEARCH_QUERIES. The
//! number of rows is the file size over 4 × dim; case `c` searches with the first `c` query
//! vectors. Each case runs once to warm up, then `--reps` times (at least 2, as many as fit in
//! about 10 s for slow cases); prints each case's median and writes JSON with every time and the
//! ids and scores found, for the comparison script to check against faiss.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use tessera::index::topk::top_k;

struct Args {
    base: PathBuf,
    queries: PathBuf,
    dim: usize,
    k: usize,
    cases: Vec<usize>,
    reps: usize,
    json: Option<PathBuf>,
}

fn usage(msg: &str) -> ! {
    eprintln!("search_topk: {msg}");
    eprintln!(
        "usage: search_topk --base FILE --queries FILE [--dim 256] [--k 10] \
         [--cases 1,16,1000] [--reps 9] [--json OUT]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let env_path = |v: &str| std::env::var_os(v).map(PathBuf::from);
    let mut base = env_path("TESSERA_SEARCH_BASE");
    let mut queries = env_path("TESSERA_SEARCH_QUERIES");
    let (mut dim, mut k, mut reps, mut json) = (256, 10, 9, None);
    let mut cases = vec![1, 16, 1000];
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        // `cargo bench` passes --bench to every bench binary.
        if a == "--bench" {
            continue;
        }
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        let num = |s: String| {
            s.parse::<usize>()
                .unwrap_or_else(|_| usage(&format!("bad number {s:?}")))
        };
        match a.as_str() {
            "--base" => base = Some(val().into()),
            "--queries" => queries = Some(val().into()),
            "--dim" => dim = num(val()),
            "--k" => k = num(val()),
            "--reps" => reps = num(val()).max(1),
            "--json" => json = Some(val().into()),
            "--cases" => {
                cases = val()
                    .split(',')
                    .map(|s| num(s.trim().to_string()))
                    .collect()
            }
            _ => usage(&format!("unknown argument {a:?}")),
        }
    }
    let base = base.unwrap_or_else(|| usage("no --base (or TESSERA_SEARCH_BASE)"));
    let queries = queries.unwrap_or_else(|| usage("no --queries (or TESSERA_SEARCH_QUERIES)"));
    if dim == 0 {
        usage("--dim must be positive");
    }
    Args {
        base,
        queries,
        dim,
        k,
        cases,
        reps,
        json,
    }
}

/// Reads a raw little-endian f32 file whose length is a whole number of `dim`-vectors.
fn read_f32(path: &PathBuf, dim: usize) -> Vec<f32> {
    let fail = |e: std::io::Error| -> ! {
        eprintln!("search_topk: {}: {e}", path.display());
        std::process::exit(1)
    };
    let mut f = File::open(path).unwrap_or_else(|e| fail(e));
    let bytes = f.metadata().unwrap_or_else(|e| fail(e)).len() as usize;
    if !bytes.is_multiple_of(4 * dim) {
        usage(&format!(
            "{}: {bytes} bytes is not a whole number of {dim}-d f32 vectors",
            path.display()
        ));
    }
    let mut v = vec![0f32; bytes / 4];
    // SAFETY: any bit pattern is a valid f32, and the byte view covers exactly `v`.
    let raw = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), bytes) };
    f.read_exact(raw).unwrap_or_else(|e| fail(e));
    if cfg!(target_endian = "big") {
        for x in &mut v {
            *x = f32::from_bits(x.to_bits().swap_bytes());
        }
    }
    v
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn main() {
    let a = parse_args();
    let t = Instant::now();
    let base = read_f32(&a.base, a.dim);
    let queries = read_f32(&a.queries, a.dim);
    let (n, nq) = (base.len() / a.dim, queries.len() / a.dim);
    eprintln!(
        "search_topk: {n} × {} base, {nq} queries, read in {:.1} s; {} rayon threads",
        a.dim,
        t.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    let mut out = Vec::new();
    println!(
        "{:>8} | {:>10} | {:>10} | {:>10}",
        "queries", "median ms", "min ms", "reps"
    );
    for &c in &a.cases {
        if c > nq {
            usage(&format!("case {c} needs {c} queries, the file has {nq}"));
        }
        let qs = &queries[..c * a.dim];
        let run = || top_k(&base, n, qs, c, a.dim, a.k).expect("lengths were checked");
        let t = Instant::now();
        let hits = run();
        let warm = t.elapsed().as_secs_f64();
        // Slow cases get fewer repetitions, but always at least two.
        let reps = a.reps.min(((10.0 / warm) as usize).max(2));
        let times: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(run());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let med = median(&times);
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        println!("{c:>8} | {med:>10.2} | {min:>10.2} | {reps:>10}");
        let ids: Vec<Vec<usize>> = hits
            .iter()
            .map(|h| h.iter().map(|x| x.0).collect())
            .collect();
        let scores: Vec<Vec<f32>> = hits
            .iter()
            .map(|h| h.iter().map(|x| x.1).collect())
            .collect();
        out.push(json!({
            "queries": c, "median_ms": med, "times_ms": times, "ids": ids, "scores": scores,
        }));
    }
    if let Some(path) = &a.json {
        let doc = json!({
            "impl": "tessera", "n": n, "dim": a.dim, "k": a.k,
            "threads": rayon::current_num_threads(), "cases": out,
        });
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, doc.to_string()).unwrap_or_else(|e| {
            eprintln!("search_topk: {}: {e}", path.display());
            std::process::exit(1)
        });
        eprintln!("search_topk: wrote {}", path.display());
    }
}
