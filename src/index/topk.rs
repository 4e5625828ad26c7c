//! Exact top-k maximum-inner-product search over a row-major `f32` matrix.
//!
//! Memory stays bounded: no queries × rows score matrix is ever held. The database is cut into
//! chunks that one worker per rayon thread pulls from a shared counter (so a thread slowed by
//! other load just takes fewer); each worker keeps, per query, its `k` best so far in a small
//! heap behind a threshold that almost every score fails at once, and the workers' lists are
//! merged at the end. Queries are taken in blocks whose packed copy stays in L2.
//!
//! Kernels, chosen per block by the CPU and the number of queries `q`:
//! - `q < 4`: dot products, each database row read once, straight from the caller's slice, by
//!   `R × Q` SIMD accumulators (the scan is memory-bound; nothing is packed).
//! - otherwise: queries packed `W` to a vector (16 with AVX-512) and each database element
//!   broadcast against them, so that an accumulator holds one row's scores for `W` queries and
//!   the threshold test is one vector compare; the database is still read in place, with
//!   software prefetch of the next rows.
//! - `q > 16` with AVX-512 BF16: the same layout in BF16 with VDPBF16PS (twice the
//!   multiply-adds per instruction), as a filter: every score whose BF16 value plus a proven
//!   error bound reaches the threshold is recomputed in f32 before it may enter a list, so the
//!   result is the f32 one.
//!
//! AVX-512 and AVX2+FMA on x86-64, detected at run time. Elsewhere (or without them) the same
//! kernels on plain arrays that the compiler vectorises, and the `gemm` crate for many queries,
//! scoring each chunk into a per-worker scratch buffer.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

/// Why a search could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopKError {
    #[error("vector dimension is 0")]
    ZeroDim,
    #[error("database slice holds {len} floats, but n × dim = {n} × {dim}")]
    DbLength { len: usize, n: usize, dim: usize },
    #[error("query slice holds {len} floats, but q × dim = {q} × {dim}")]
    QueryLength { len: usize, q: usize, dim: usize },
}

/// Row-major `[n, dim]` f32 database, `[q, dim]` queries; returns for each query the `k` best
/// (row index, inner product), best first; ties broken by lower index. k > n returns n rows.
///
/// Scores are f32 dot products (their rounding depends on the kernel, as in any BLAS). Rows
/// whose inner product with a query is NaN are never returned for it. Memory besides the
/// result: per rayon thread a `k`-entry list for each query of a block (a block's queries take
/// at most 1 MiB) and about 1 MiB of scratch, plus a packed copy of the block's queries.
pub fn top_k(
    db: &[f32],
    n: usize,
    queries: &[f32],
    q: usize,
    dim: usize,
    k: usize,
) -> Result<Vec<Vec<(usize, f32)>>, TopKError> {
    check(db, n, queries, q, dim)?;
    Ok(search(Isa::detect(), db, n, queries, q, dim, k))
}

fn check(db: &[f32], n: usize, queries: &[f32], q: usize, dim: usize) -> Result<(), TopKError> {
    if dim == 0 {
        return Err(TopKError::ZeroDim);
    }
    if n.checked_mul(dim) != Some(db.len()) {
        let len = db.len();
        return Err(TopKError::DbLength { len, n, dim });
    }
    if q.checked_mul(dim) != Some(queries.len()) {
        let len = queries.len();
        return Err(TopKError::QueryLength { len, q, dim });
    }
    Ok(())
}

/// Below this many queries the dot-product scan is used: the broadcast kernel's cost does not
/// shrink with fewer queries (a vector always holds `W` query lanes), the memory traffic does.
const DOT_MAX_Q: usize = 4;

/// Above this many queries (one AVX-512 panel) the BF16 filter pays for converting rows; at or
/// below it the scan is memory-bound either way.
#[cfg(target_arch = "x86_64")]
const BF16_MIN_Q: usize = 17;

/// From this many queries on, without AVX-512, scoring goes to `gemm` (faster there than the
/// broadcast kernel, which AVX2's 16 registers and lack of embedded broadcasts hold back).
const GEMM_MIN_Q: usize = 17;

/// Database rows per kernel call (one accumulator each, or `DOT_ROWS × 4` for the dot kernel):
/// as many as the register file holds next to the operands.
const DOT_ROWS: usize = 6;
const BCAST_ROWS_PORTABLE: usize = 8;
#[cfg(target_arch = "x86_64")]
const BCAST_ROWS_AVX2: usize = 8;
#[cfg(target_arch = "x86_64")]
const BCAST_ROWS_AVX512: usize = 16;

/// Which instruction set the kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    /// Plain Rust (autovectorised), and `gemm` for many queries.
    Portable,
    /// AVX2 and FMA, and `gemm` for many queries.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX-512 plus the BF16 filter for many queries.
    #[cfg(target_arch = "x86_64")]
    Avx512Bf16,
}

impl Isa {
    fn detect() -> Self {
        *Self::available().last().expect("Portable is always there")
    }

    /// Every instruction set this CPU can run, best last.
    fn available() -> Vec<Self> {
        #[allow(unused_mut)] // only x86-64 has more than one
        let mut v = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                v.push(Isa::Avx2);
            }
            if is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
                if is_x86_feature_detected!("avx512bf16") {
                    v.push(Isa::Avx512Bf16);
                }
            }
        }
        v
    }

    fn has_avx512(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if matches!(self, Isa::Avx512 | Isa::Avx512Bf16) {
            return true;
        }
        false
    }

    /// Queries per vector in the broadcast kernel.
    fn lanes(self) -> usize {
        match self {
            Isa::Portable => Lanes::W,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::Avx2::W,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx512Bf16 => x86::Avx512::W,
        }
    }
}

fn search(
    isa: Isa,
    db: &[f32],
    n: usize,
    queries: &[f32],
    q: usize,
    dim: usize,
    k: usize,
) -> Vec<Vec<(usize, f32)>> {
    let k = k.min(n);
    if k == 0 {
        return vec![Vec::new(); q];
    }
    let w = isa.lanes();
    // A block's packed queries (1 MiB) stay in L2 while the database streams past them.
    let block = ((1 << 18) / dim / w * w).max(w);
    let mut out = Vec::with_capacity(q);
    for start in (0..q).step_by(block) {
        let qs = &queries[start * dim..(start + block).min(q) * dim];
        out.extend(search_block(isa, db, n, qs, dim, k));
    }
    out
}

/// Rows per work unit: a multiple of every kernel's row group and about a millisecond of work,
/// so that the last chunks leave little imbalance between threads.
fn chunk_rows(qb: usize, dim: usize) -> usize {
    const MAX: usize = 48 * 341; // 16368
    let rows = if qb < DOT_MAX_Q {
        MAX
    } else {
        (1 << 26) / (qb * dim)
    };
    (rows / 48 * 48).clamp(48, MAX)
}

fn search_block(
    isa: Isa,
    db: &[f32],
    n: usize,
    qs: &[f32],
    dim: usize,
    k: usize,
) -> Vec<Vec<(usize, f32)>> {
    let qb = qs.len() / dim;
    let w = isa.lanes();
    let chunk = chunk_rows(qb, dim);
    let new_lists = || TopLists::new(qb, qb.div_ceil(w) * w, k);
    let lists = if qb < DOT_MAX_Q {
        scan_parallel(n, chunk, new_lists, |l, rows| {
            dot_scan(isa, db, dim, rows, qs, l)
        })
    } else if let Some(lists) = bf16_search(isa, db, n, qs, dim, chunk, &new_lists) {
        lists
    } else if qb >= GEMM_MIN_Q && !isa.has_avx512() {
        let init = || (new_lists(), Vec::new());
        let lists = scan_parallel(n, chunk, init, |(l, buf), rows| {
            gemm_scan(db, dim, rows, qs, buf, l)
        });
        lists.into_iter().map(|(l, _)| l).collect()
    } else {
        let packed = pack_queries(qs, dim, w);
        scan_parallel(n, chunk, new_lists, |l, rows| {
            bcast_scan(isa, db, dim, rows, &packed, l)
        })
    };
    merge(&lists, qb, k)
}

/// The many-query scan with the BF16 filter, where it applies: AVX-512 BF16, enough queries,
/// and query norms for which the error bound holds.
#[cfg(target_arch = "x86_64")]
fn bf16_search(
    isa: Isa,
    db: &[f32],
    n: usize,
    qs: &[f32],
    dim: usize,
    chunk: usize,
    new_lists: &(impl Fn() -> TopLists + Sync),
) -> Option<Vec<TopLists>> {
    if isa != Isa::Avx512Bf16 || qs.len() / dim < BF16_MIN_Q || dim > x86::BF16_MAX_DIM {
        return None;
    }
    let bq = x86::Bf16Queries::new(qs, dim)?;
    let init = || (new_lists(), x86::Bf16Scratch::default());
    let lists = scan_parallel(n, chunk, init, |(l, s), rows| {
        // SAFETY: only reached on a CPU with AVX-512 BF16; `bq` holds these queries.
        unsafe { x86::bf16_scan(db, dim, rows, &bq, qs, s, l) }
    });
    Some(lists.into_iter().map(|(l, _)| l).collect())
}

#[cfg(not(target_arch = "x86_64"))]
fn bf16_search(
    _: Isa,
    _: &[f32],
    _: usize,
    _: &[f32],
    _: usize,
    _: usize,
    _: &(impl Fn() -> TopLists + Sync),
) -> Option<Vec<TopLists>> {
    None
}

/// Runs `body` over `[0, n)` in chunks of `chunk` rows, handed out in order to one worker per
/// rayon thread through a shared counter, and returns the workers' states.
fn scan_parallel<S: Send>(
    n: usize,
    chunk: usize,
    init: impl Fn() -> S + Sync,
    body: impl Fn(&mut S, Range<usize>) + Sync,
) -> Vec<S> {
    let chunks = n.div_ceil(chunk);
    let workers = rayon::current_num_threads().clamp(1, chunks.max(1));
    let next = AtomicUsize::new(0);
    (0..workers)
        .into_par_iter()
        .map(|_| {
            let mut state = init();
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                body(&mut state, c * chunk..((c + 1) * chunk).min(n));
            }
            state
        })
        .collect()
}

/// One worker's running top-k for each query of a block.
struct TopLists {
    k: usize,
    /// `k` slots per query: a binary heap whose root is the worst hit kept.
    heap: Vec<(f32, usize)>,
    len: Vec<usize>,
    /// Admission threshold per query, padded to whole vectors: -inf until the heap is full,
    /// then the root's score; NaN in the padding lanes, which no `>=` passes.
    thr: Vec<f32>,
}

/// `a` ranks below `b`: lower score, or the same score and a higher row.
#[inline(always)]
fn worse(a: (f32, usize), b: (f32, usize)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 > b.1)
}

impl TopLists {
    fn new(q: usize, padded: usize, k: usize) -> Self {
        let mut thr = vec![f32::NAN; padded];
        thr[..q].fill(f32::NEG_INFINITY);
        Self {
            k,
            heap: vec![(0.0, 0); q * k],
            len: vec![0; q],
            thr,
        }
    }

    /// Offers row `id` with `score` (already `>=` the query's threshold) to query `qi`; it
    /// enters if it ranks above the worst kept (a tie at the threshold needs a lower row).
    #[inline(never)]
    fn push(&mut self, qi: usize, id: usize, score: f32) {
        let k = self.k;
        let h = &mut self.heap[qi * k..(qi + 1) * k];
        let len = &mut self.len[qi];
        let item = (score, id);
        if *len < k {
            let mut i = *len;
            *len += 1;
            while i > 0 {
                let parent = (i - 1) / 2;
                if !worse(item, h[parent]) {
                    break;
                }
                h[i] = h[parent];
                i = parent;
            }
            h[i] = item;
            if *len == k {
                self.thr[qi] = h[0].0;
            }
        } else if worse(h[0], item) {
            let mut i = 0;
            loop {
                let l = 2 * i + 1;
                if l >= k {
                    break;
                }
                let c = if l + 1 < k && worse(h[l + 1], h[l]) {
                    l + 1
                } else {
                    l
                };
                if !worse(h[c], item) {
                    break;
                }
                h[i] = h[c];
                i = c;
            }
            h[i] = item;
            self.thr[qi] = h[0].0;
        }
    }

    fn hits(&self, qi: usize) -> &[(f32, usize)] {
        &self.heap[qi * self.k..qi * self.k + self.len[qi]]
    }
}

fn merge(lists: &[TopLists], q: usize, k: usize) -> Vec<Vec<(usize, f32)>> {
    (0..q)
        .map(|qi| {
            let mut all: Vec<(f32, usize)> =
                lists.iter().flat_map(|l| l.hits(qi)).copied().collect();
            // No NaN gets in; -0.0 and 0.0 tie, as in `worse`.
            all.sort_unstable_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
            all.truncate(k);
            all.into_iter().map(|(s, i)| (i, s)).collect()
        })
        .collect()
}

/// Lays queries out `w` to a panel, dimension-major: `[panel][d][lane]`, zero-padded.
fn pack_queries(qs: &[f32], dim: usize, w: usize) -> Vec<f32> {
    let panels = (qs.len() / dim).div_ceil(w);
    let mut p = vec![0.0; panels * dim * w];
    for (qi, v) in qs.chunks_exact(dim).enumerate() {
        let base = (qi / w) * dim * w + qi % w;
        for (d, &x) in v.iter().enumerate() {
            p[base + d * w] = x;
        }
    }
    p
}

/// The vector operations the generic kernels are written in.
trait Simd: Copy {
    const W: usize;
    type V: Copy;
    unsafe fn zero() -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    /// The first `n < W` floats at `p`, zeros after.
    unsafe fn load_tail(p: *const f32, n: usize) -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    /// `a * b + c`
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn sum(v: Self::V) -> f32;
    /// Bit `i` set where `a[i] >= b[i]` (false for NaN).
    unsafe fn ge_mask(a: Self::V, b: Self::V) -> u32;
    unsafe fn store(p: *mut f32, v: Self::V);
}

/// Fixed-size arrays that the compiler vectorises for whatever the target has.
#[derive(Clone, Copy)]
struct Lanes;

impl Simd for Lanes {
    const W: usize = 8;
    type V = [f32; 8];
    #[inline(always)]
    unsafe fn zero() -> Self::V {
        [0.0; 8]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        std::ptr::read_unaligned(p.cast::<[f32; 8]>())
    }
    #[inline(always)]
    unsafe fn load_tail(p: *const f32, n: usize) -> Self::V {
        let mut v = [0.0; 8];
        std::ptr::copy_nonoverlapping(p, v.as_mut_ptr(), n);
        v
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self::V {
        [x; 8]
    }
    #[inline(always)]
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    unsafe fn sum(v: Self::V) -> f32 {
        ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
    }
    #[inline(always)]
    unsafe fn ge_mask(a: Self::V, b: Self::V) -> u32 {
        (0..8).fold(0, |m, i| m | (u32::from(a[i] >= b[i]) << i))
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        std::ptr::write_unaligned(p.cast::<[f32; 8]>(), v)
    }
}

/// Hints the cache line at `p` into L1 (x86-64 only; a no-op elsewhere). Never faults.
#[inline(always)]
fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 (SSE, always present on x86-64) never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

fn dot_scan(isa: Isa, db: &[f32], dim: usize, rows: Range<usize>, qs: &[f32], l: &mut TopLists) {
    assert!(rows.end * dim <= db.len() && qs.len().is_multiple_of(dim));
    // SAFETY: the kernels read rows `rows` of `db` and all of `qs`, checked above; the
    // instruction set was detected before dispatching here.
    unsafe {
        match isa {
            Isa::Portable => dot_scan_generic::<Lanes>(db, dim, rows, qs, l),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::dot_scan_avx2(db, dim, rows, qs, l),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx512Bf16 => x86::dot_scan_avx512(db, dim, rows, qs, l),
        }
    }
}

#[inline(always)]
unsafe fn dot_scan_generic<S: Simd>(
    db: &[f32],
    dim: usize,
    rows: Range<usize>,
    qs: &[f32],
    l: &mut TopLists,
) {
    let q = qs.len() / dim;
    let mut r = rows.start;
    while r < rows.end {
        let step = if rows.end - r >= DOT_ROWS {
            DOT_ROWS
        } else {
            1
        };
        let mut q0 = 0;
        while q0 < q {
            let g = (q - q0).min(4);
            match (step, g) {
                (DOT_ROWS, 4) => dot_group::<S, DOT_ROWS, 4>(db, dim, r, qs, q0, l),
                (DOT_ROWS, 3) => dot_group::<S, DOT_ROWS, 3>(db, dim, r, qs, q0, l),
                (DOT_ROWS, 2) => dot_group::<S, DOT_ROWS, 2>(db, dim, r, qs, q0, l),
                (DOT_ROWS, _) => dot_group::<S, DOT_ROWS, 1>(db, dim, r, qs, q0, l),
                (_, 4) => dot_group::<S, 1, 4>(db, dim, r, qs, q0, l),
                (_, 3) => dot_group::<S, 1, 3>(db, dim, r, qs, q0, l),
                (_, 2) => dot_group::<S, 1, 2>(db, dim, r, qs, q0, l),
                _ => dot_group::<S, 1, 1>(db, dim, r, qs, q0, l),
            }
            q0 += g;
        }
        r += step;
    }
}

/// Scores rows `r0..r0 + R` against queries `q0..q0 + Q` and offers those that pass.
#[inline(always)]
unsafe fn dot_group<S: Simd, const R: usize, const Q: usize>(
    db: &[f32],
    dim: usize,
    r0: usize,
    qs: &[f32],
    q0: usize,
    l: &mut TopLists,
) {
    let a = db.as_ptr().add(r0 * dim);
    let b = qs.as_ptr().add(q0 * dim);
    let mut acc = [[S::zero(); Q]; R];
    let full = dim / S::W * S::W;
    let mut d = 0;
    while d < full {
        let qv: [S::V; Q] = std::array::from_fn(|j| S::load(b.add(j * dim + d)));
        for (i, row) in acc.iter_mut().enumerate() {
            // The same place in the next group's row: a few hundred cycles ahead.
            prefetch(a.wrapping_add((R + i) * dim + d));
            let av = S::load(a.add(i * dim + d));
            for (x, &y) in row.iter_mut().zip(&qv) {
                *x = S::fma(av, y, *x);
            }
        }
        d += S::W;
    }
    if d < dim {
        let t = dim - d;
        let qv: [S::V; Q] = std::array::from_fn(|j| S::load_tail(b.add(j * dim + d), t));
        for (i, row) in acc.iter_mut().enumerate() {
            let av = S::load_tail(a.add(i * dim + d), t);
            for (x, &y) in row.iter_mut().zip(&qv) {
                *x = S::fma(av, y, *x);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let s = S::sum(v);
            if s >= l.thr[q0 + j] {
                l.push(q0 + j, r0 + i, s);
            }
        }
    }
}

fn bcast_scan(
    isa: Isa,
    db: &[f32],
    dim: usize,
    rows: Range<usize>,
    packed: &[f32],
    l: &mut TopLists,
) {
    assert!(rows.end * dim <= db.len() && l.thr.len() * dim == packed.len());
    // SAFETY: as in `dot_scan`; `packed` and the thresholds cover the same whole panels.
    unsafe {
        match isa {
            Isa::Portable => {
                bcast_scan_generic::<Lanes, BCAST_ROWS_PORTABLE>(db, dim, rows, packed, l)
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::bcast_scan_avx2(db, dim, rows, packed, l),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx512Bf16 => x86::bcast_scan_avx512(db, dim, rows, packed, l),
        }
    }
}

#[inline(always)]
unsafe fn bcast_scan_generic<S: Simd, const R: usize>(
    db: &[f32],
    dim: usize,
    rows: Range<usize>,
    packed: &[f32],
    l: &mut TopLists,
) {
    let mut r = rows.start;
    while r + R <= rows.end {
        bcast_group::<S, R>(db, dim, r, rows.end, packed, l);
        r += R;
    }
    while r < rows.end {
        bcast_group::<S, 1>(db, dim, r, rows.end, packed, l);
        r += 1;
    }
}

/// Scores rows `r0..r0 + R` against every query panel and offers those that pass.
#[inline(always)]
unsafe fn bcast_group<S: Simd, const R: usize>(
    db: &[f32],
    dim: usize,
    r0: usize,
    end: usize,
    packed: &[f32],
    l: &mut TopLists,
) {
    let a = db.as_ptr().add(r0 * dim);
    // Up to the next group's rows (16 floats a line), spread over the first panel's loop:
    // with few queries the scan would otherwise wait on memory.
    let next = (r0 + R).min(end);
    let lines = ((end - next).min(R) * dim).div_ceil(16);
    let per_step = lines.div_ceil(dim);
    let next = db.as_ptr().add(next * dim);
    for p in 0..packed.len() / (dim * S::W) {
        let b = packed.as_ptr().add(p * dim * S::W);
        let mut acc = [S::zero(); R];
        for d in 0..dim {
            if p == 0 {
                for j in d * per_step..((d + 1) * per_step).min(lines) {
                    prefetch(next.add(j * 16));
                }
            }
            let qv = S::load(b.add(d * S::W));
            for (i, x) in acc.iter_mut().enumerate() {
                *x = S::fma(qv, S::splat(*a.add(i * dim + d)), *x);
            }
        }
        let thr = S::load(l.thr.as_ptr().add(p * S::W));
        let masks: [u32; R] = std::array::from_fn(|i| S::ge_mask(acc[i], thr));
        if masks.iter().any(|&m| m != 0) {
            // Stored only here: taking `&acc` would keep the accumulators in memory.
            let mut scores = [[0f32; 16]; R];
            for (dst, &v) in scores.iter_mut().zip(&acc) {
                S::store(dst.as_mut_ptr(), v);
            }
            offer_masked(&scores, &masks, p * S::W, r0, l);
        }
    }
}

/// The rare path: some row reached some query's threshold.
#[inline(never)]
fn offer_masked(scores: &[[f32; 16]], masks: &[u32], q0: usize, r0: usize, l: &mut TopLists) {
    for (i, (row, &m)) in scores.iter().zip(masks).enumerate() {
        let mut m = m;
        while m != 0 {
            let j = m.trailing_zeros() as usize;
            m &= m - 1;
            l.push(q0 + j, r0 + i, row[j]);
        }
    }
}

/// The portable many-query path: `gemm` scores the chunk into `buf` (queries × rows), then
/// each query's scores are filtered against its threshold.
fn gemm_scan(
    db: &[f32],
    dim: usize,
    rows: Range<usize>,
    qs: &[f32],
    buf: &mut Vec<f32>,
    l: &mut TopLists,
) {
    let (m, qb) = (rows.len(), qs.len() / dim);
    let block = &db[rows.start * dim..rows.end * dim];
    buf.resize(qb * m, 0.0);
    // SAFETY: dst is qb × m with row stride m; lhs is qs (qb × dim, row-major); rhs is the
    // block read as dim × m (element (d, j) at j * dim + d); all within the slices.
    unsafe {
        gemm::gemm(
            qb,
            m,
            dim,
            buf.as_mut_ptr(),
            1,
            m as isize,
            false,
            qs.as_ptr(),
            1,
            dim as isize,
            block.as_ptr(),
            dim as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    for (qi, scores) in buf.chunks_exact(m).enumerate() {
        for (j, &s) in scores.iter().enumerate() {
            if s >= l.thr[qi] {
                l.push(qi, rows.start + j, s);
            }
        }
    }
}

// AVX-512 intrinsics are stable since Rust 1.89 (the crate needs 1.95).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{bcast_scan_generic, dot_scan_generic, Simd, TopLists};
    use super::{BCAST_ROWS_AVX2, BCAST_ROWS_AVX512};

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_scan_avx2(
        db: &[f32],
        dim: usize,
        rows: Range<usize>,
        qs: &[f32],
        l: &mut TopLists,
    ) {
        dot_scan_generic::<Avx2>(db, dim, rows, qs, l)
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_scan_avx512(
        db: &[f32],
        dim: usize,
        rows: Range<usize>,
        qs: &[f32],
        l: &mut TopLists,
    ) {
        dot_scan_generic::<Avx512>(db, dim, rows, qs, l)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn bcast_scan_avx2(
        db: &[f32],
        dim: usize,
        rows: Range<usize>,
        packed: &[f32],
        l: &mut TopLists,
    ) {
        bcast_scan_generic::<Avx2, BCAST_ROWS_AVX2>(db, dim, rows, packed, l)
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn bcast_scan_avx512(
        db: &[f32],
        dim: usize,
        rows: Range<usize>,
        packed: &[f32],
        l: &mut TopLists,
    ) {
        bcast_scan_generic::<Avx512, BCAST_ROWS_AVX512>(db, dim, rows, packed, l)
    }

    #[derive(Clone, Copy)]
    pub struct Avx512;

    impl Simd for Avx512 {
        const W: usize = 16;
        type V = __m512;
        #[inline(always)]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn load_tail(p: *const f32, n: usize) -> __m512 {
            _mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p)
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn sum(v: __m512) -> f32 {
            _mm512_reduce_add_ps(v)
        }
        #[inline(always)]
        unsafe fn ge_mask(a: __m512, b: __m512) -> u32 {
            u32::from(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, b))
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
    }

    /// Past this the BF16 error bound below would need more care than it is worth.
    pub const BF16_MAX_DIM: usize = 1 << 16;

    /// Vectors with larger norms (or non-finite ones) are scored in f32 only, so that no BF16
    /// product or sum can overflow and the bound stays finite.
    const BF16_MAX_NORM: f32 = (1u64 << 50) as f32;

    /// Bound on |BF16 score − f32 score| is `c·‖a‖·‖b‖ + t·(1 + ‖a‖ + max‖b‖)` with
    /// `c` (relative) and `t` (absolute) from here. Rounding both operands to BF16 (8-bit
    /// significand, round to nearest) errs by at most (2u + u²)·Σ|aᵢbᵢ|, u = 2⁻⁸; each of the
    /// two summations (VDPBF16PS, and the f32 check) by at most dim·2⁻²⁴ of the same sum; and
    /// Σ|aᵢbᵢ| ≤ ‖a‖·‖b‖. VDPBF16PS flushes subnormal inputs, products and sums to zero:
    /// at most dim·2⁻¹²⁵·(1 + ‖a‖ + ‖b‖) in all. Both terms get headroom (1 %, and 2×) that
    /// also covers rounding in computing the norms and the bound itself.
    fn bf16_bound(dim: usize) -> (f32, f32) {
        let d = dim as f32;
        let c = 1.01 * (2f32.powi(-7) + 2.5 * d * 2f32.powi(-24));
        (c, d * 2f32.powi(-124))
    }

    /// f32 to BF16, rounding to nearest even (inputs are finite).
    fn bf16(x: f32) -> u32 {
        let b = x.to_bits();
        (b + 0x7fff + ((b >> 16) & 1)) >> 16
    }

    /// One block's queries for the BF16 kernel.
    pub struct Bf16Queries {
        /// `[panel][pair][lane]`: lane `j` of pair `t` of panel `p` holds dims `2t`, `2t + 1`
        /// of query `16p + j` (zero past the end).
        packed: Vec<u32>,
        /// Per lane, 0 in the padding.
        norms: Vec<f32>,
        pairs: usize,
        max_norm: f32,
    }

    impl Bf16Queries {
        /// `None` if some query's norm is too large for the bound (or not finite).
        pub fn new(qs: &[f32], dim: usize) -> Option<Self> {
            let qb = qs.len() / dim;
            let pairs = dim.div_ceil(2);
            let panels = qb.div_ceil(16);
            let mut packed = vec![0u32; panels * pairs * 16];
            let mut norms = vec![0f32; panels * 16];
            for (qi, v) in qs.chunks_exact(dim).enumerate() {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if !norm.is_finite() || norm > BF16_MAX_NORM {
                    return None;
                }
                norms[qi] = norm;
                let base = (qi / 16) * pairs * 16 + qi % 16;
                for (t, pair) in v.chunks(2).enumerate() {
                    let hi = pair.get(1).map_or(0, |&x| bf16(x));
                    packed[base + t * 16] = bf16(pair[0]) | hi << 16;
                }
            }
            let max_norm = norms.iter().copied().fold(0.0, f32::max);
            Some(Self {
                packed,
                norms,
                pairs,
                max_norm,
            })
        }
    }

    /// A worker's BF16 copy of its current row group and the per-row terms of the bound.
    #[derive(Default)]
    pub struct Bf16Scratch {
        rows: Vec<u32>,
        /// `c·‖row‖`
        rel: Vec<f32>,
        /// `t·(1 + ‖row‖ + max‖q‖)`, or +inf for a row that must be scored in f32
        abs: Vec<f32>,
    }

    /// Database rows per BF16 kernel call (one accumulator each).
    const BF16_ROWS: usize = 24;

    /// Many queries, AVX-512 BF16: converts each group of rows to BF16, scores it with
    /// VDPBF16PS (twice the multiply-adds per instruction of f32 FMA) and recomputes in f32
    /// every score whose BF16 value plus the error bound reaches the query's threshold. Exact:
    /// a row that belongs in the top k always passes the filter, and what is kept is ranked by
    /// its f32 score.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn bf16_scan(
        db: &[f32],
        dim: usize,
        rows: Range<usize>,
        bq: &Bf16Queries,
        qs: &[f32],
        s: &mut Bf16Scratch,
        l: &mut TopLists,
    ) {
        assert!(rows.end * dim <= db.len() && bq.norms.len() == l.thr.len());
        s.rows.resize(BF16_ROWS * bq.pairs, 0);
        s.rel.resize(BF16_ROWS, 0.0);
        s.abs.resize(BF16_ROWS, 0.0);
        let mut r = rows.start;
        while r < rows.end {
            let g = (rows.end - r).min(BF16_ROWS);
            bf16_convert(db, dim, r, g, bq, s);
            if g == BF16_ROWS {
                bf16_group::<BF16_ROWS>(db, dim, r, 0, rows.end, bq, qs, s, l);
            } else {
                for i in 0..g {
                    bf16_group::<1>(db, dim, r + i, i, rows.end, bq, qs, s, l);
                }
            }
            r += g;
        }
    }

    /// Rows `r0..r0 + g` to BF16 pairs in `s.rows`, with their bound terms.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn bf16_convert(
        db: &[f32],
        dim: usize,
        r0: usize,
        g: usize,
        bq: &Bf16Queries,
        s: &mut Bf16Scratch,
    ) {
        let (c, t) = bf16_bound(dim);
        let pairs = bq.pairs;
        for i in 0..g {
            let src = db.as_ptr().add((r0 + i) * dim);
            let dst = s.rows.as_mut_ptr().add(i * pairs);
            let mut ss = _mm512_setzero_ps();
            let mut d = 0;
            while d < dim {
                let n0 = (dim - d).min(16);
                let n1 = (dim - d).saturating_sub(16).min(16);
                let lo = _mm512_maskz_loadu_ps(mask16(n0), src.add(d));
                let hi = _mm512_maskz_loadu_ps(mask16(n1), src.wrapping_add(d + 16));
                ss = _mm512_fmadd_ps(lo, lo, ss);
                ss = _mm512_fmadd_ps(hi, hi, ss);
                let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_mask_storeu_epi32(dst.add(d / 2).cast(), mask16((n0 + n1).div_ceil(2)), v);
                d += 32;
            }
            let norm = _mm512_reduce_add_ps(ss).sqrt();
            if norm <= BF16_MAX_NORM {
                s.rel[i] = c * norm;
                s.abs[i] = t * (1.0 + norm + bq.max_norm);
            } else {
                // Zero BF16 scores plus an infinite bound: every query checks it in f32.
                std::ptr::write_bytes(dst, 0, pairs);
                s.rel[i] = 0.0;
                s.abs[i] = f32::INFINITY;
            }
        }
    }

    /// Lanes `0..n` of a 16-lane mask.
    #[inline(always)]
    fn mask16(n: usize) -> u16 {
        ((1u32 << n) - 1) as u16
    }

    /// Scores the `R` converted rows at `s.rows[off..]` (database rows `r0..`) against every
    /// query panel and checks in f32 those that pass the filter; prefetches the next group.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn bf16_group<const R: usize>(
        db: &[f32],
        dim: usize,
        r0: usize,
        off: usize,
        end: usize,
        bq: &Bf16Queries,
        qs: &[f32],
        s: &Bf16Scratch,
        l: &mut TopLists,
    ) {
        let pairs = bq.pairs;
        let a = s.rows.as_ptr().add(off * pairs);
        // The next group's f32 rows, spread over the first panel's loop.
        let next = db.as_ptr().add((r0 + R).min(end) * dim).cast::<i8>();
        let lines = ((end - (r0 + R).min(end)).min(R) * dim).div_ceil(16);
        let per_step = lines.div_ceil(pairs);
        for p in 0..bq.norms.len() / 16 {
            let b = bq.packed.as_ptr().add(p * pairs * 16);
            let mut acc = [_mm512_setzero_ps(); R];
            for t in 0..pairs {
                if p == 0 {
                    for j in t * per_step..((t + 1) * per_step).min(lines) {
                        _mm_prefetch::<_MM_HINT_T0>(next.add(j * 64));
                    }
                }
                let qv = _mm512_loadu_ps(b.add(t * 16).cast());
                for (i, x) in acc.iter_mut().enumerate() {
                    // The broadcast folded into the instruction, which compilers do not do
                    // here: a separate VBROADCASTSS per product costs a third of the speed.
                    std::arch::asm!(
                        "vdpbf16ps {acc}, {q}, dword ptr [{p}]{{1to16}}",
                        acc = inout(zmm_reg) *x,
                        q = in(zmm_reg) qv,
                        p = in(reg) a.add(i * pairs + t),
                        options(pure, readonly, nostack, preserves_flags),
                    );
                }
            }
            let thr = _mm512_loadu_ps(l.thr.as_ptr().add(p * 16));
            let qn = _mm512_loadu_ps(bq.norms.as_ptr().add(p * 16));
            let masks: [u16; R] = std::array::from_fn(|i| {
                let rel = _mm512_set1_ps(s.rel[off + i]);
                let bound = _mm512_fmadd_ps(rel, qn, _mm512_set1_ps(s.abs[off + i]));
                _mm512_cmp_ps_mask::<_CMP_GE_OQ>(_mm512_add_ps(acc[i], bound), thr)
            });
            if masks.iter().any(|&m| m != 0) {
                bf16_verify(db, dim, r0, p * 16, &masks, qs, l);
            }
        }
    }

    /// Recomputes in f32 the scores that passed the BF16 filter and offers those that pass.
    #[inline(never)]
    #[target_feature(enable = "avx512f")]
    unsafe fn bf16_verify(
        db: &[f32],
        dim: usize,
        r0: usize,
        q0: usize,
        masks: &[u16],
        qs: &[f32],
        l: &mut TopLists,
    ) {
        for (i, &m) in masks.iter().enumerate() {
            let mut m = u32::from(m);
            while m != 0 {
                let qi = q0 + m.trailing_zeros() as usize;
                m &= m - 1;
                let r = r0 + i;
                let score = dot_f32(db.as_ptr().add(r * dim), qs.as_ptr().add(qi * dim), dim);
                if score >= l.thr[qi] {
                    l.push(qi, r, score);
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn dot_f32(a: *const f32, b: *const f32, dim: usize) -> f32 {
        let mut acc = _mm512_setzero_ps();
        let mut d = 0;
        while d + 16 <= dim {
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(a.add(d)), _mm512_loadu_ps(b.add(d)), acc);
            d += 16;
        }
        if d < dim {
            let k = mask16(dim - d);
            let x = _mm512_maskz_loadu_ps(k, a.add(d));
            acc = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(k, b.add(d)), acc);
        }
        _mm512_reduce_add_ps(acc)
    }

    #[derive(Clone, Copy)]
    pub struct Avx2;

    impl Simd for Avx2 {
        const W: usize = 8;
        type V = __m256;
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn load_tail(p: *const f32, n: usize) -> __m256 {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx);
            _mm256_maskload_ps(p, mask)
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn sum(v: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
        }
        #[inline(always)]
        unsafe fn ge_mask(a: __m256, b: __m256) -> u32 {
            _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(a, b)) as u32
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    /// Small integers: every inner product is exact in f32 whatever the summation order, so
    /// results can be compared exactly, and ties are common.
    fn small_int(rng: &mut ChaCha8Rng) -> f32 {
        rng.random_range(-2i32..=2) as f32
    }

    /// `top_k` on a given instruction set.
    fn top_k_with(
        isa: Isa,
        db: &[f32],
        n: usize,
        queries: &[f32],
        q: usize,
        dim: usize,
        k: usize,
    ) -> Vec<Vec<(usize, f32)>> {
        check(db, n, queries, q, dim).unwrap();
        search(isa, db, n, queries, q, dim, k)
    }

    /// Brute force in f64: rows sorted by score (desc), then index (asc); NaN scores left out.
    fn reference(db: &[f32], queries: &[f32], dim: usize, k: usize) -> Vec<Vec<(usize, f64)>> {
        queries
            .chunks_exact(dim)
            .map(|qv| {
                let mut all: Vec<(usize, f64)> = db
                    .chunks_exact(dim)
                    .map(|r| {
                        r.iter()
                            .zip(qv)
                            .map(|(&a, &b)| f64::from(a) * f64::from(b))
                            .sum()
                    })
                    .enumerate()
                    .filter(|(_, s): &(usize, f64)| !s.is_nan())
                    .collect();
                all.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
                all.truncate(k);
                all
            })
            .collect()
    }

    /// Every instruction set gives exactly the f64 reference (for data where f32 is exact).
    fn assert_exact(db: &[f32], n: usize, qs: &[f32], q: usize, dim: usize, k: usize) {
        let want: Vec<Vec<(usize, f32)>> = reference(db, qs, dim, k)
            .into_iter()
            .map(|w| w.into_iter().map(|(i, s)| (i, s as f32)).collect())
            .collect();
        for isa in Isa::available() {
            let got = top_k_with(isa, db, n, qs, q, dim, k);
            assert_eq!(got, want, "{isa:?} n={n} q={q} dim={dim} k={k}");
        }
    }

    /// (n, q, dim, k): every kernel, row and query remainders, k > n, several query blocks.
    const SHAPES: &[(usize, usize, usize, usize)] = &[
        (1, 1, 1, 1),
        (5, 3, 7, 10),
        (100, 1, 16, 10),
        (257, 7, 33, 5),
        (1000, 2, 256, 10),
        (1000, 9, 17, 1000),
        (16_369, 1, 64, 3),
        (16_369, 5, 64, 10),
        (3001, 16, 48, 7),
        (3001, 40, 48, 7),
        (2000, 130, 31, 20),
        (40_000, 17, 24, 10),
        (700, 1100, 300, 4),
    ];

    #[test]
    fn exact_on_integer_data_with_ties() {
        let mut rng = rng(1);
        for &(n, q, dim, k) in SHAPES {
            let db: Vec<f32> = (0..n * dim).map(|_| small_int(&mut rng)).collect();
            let qs: Vec<f32> = (0..q * dim).map(|_| small_int(&mut rng)).collect();
            assert_exact(&db, n, &qs, q, dim, k);
        }
    }

    #[test]
    fn matches_reference_on_float_data() {
        let mut rng = rng(2);
        for &(n, q, dim, k) in SHAPES {
            let db: Vec<f32> = (0..n * dim)
                .map(|_| rng.random_range(-1.0f32..1.0))
                .collect();
            let qs: Vec<f32> = (0..q * dim)
                .map(|_| rng.random_range(-1.0f32..1.0))
                .collect();
            // One more than asked: the boundary row may swap with its neighbour on rounding.
            let want = reference(&db, &qs, dim, k + 1);
            let tol = 1e-5 * dim as f64;
            for isa in Isa::available() {
                let got = top_k_with(isa, &db, n, &qs, q, dim, k);
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g.len(), k.min(n));
                    for (pos, &(i, s)) in g.iter().enumerate() {
                        let exact = w.iter().find(|x| x.0 == i).map_or(f64::NAN, |x| x.1);
                        assert!((f64::from(s) - exact).abs() <= tol, "{isa:?} row {i}");
                        // The rank agrees with the reference up to near-ties.
                        assert!((exact - w[pos].1).abs() <= tol, "{isa:?} rank {pos}");
                    }
                    assert!(g.windows(2).all(|p| p[0].1 >= p[1].1), "{isa:?} order");
                }
            }
        }
    }

    #[test]
    fn rows_that_bf16_cannot_tell_apart() {
        // Elements 1 + m·2⁻¹²: all round to 1.0 in BF16, so every BF16 score of a query is the
        // same, while the f32 scores (exact here) differ; only the f32 check can rank them.
        let mut rng = rng(3);
        let (n, q, dim) = (5000, 40, 64);
        let db: Vec<f32> = (0..n * dim)
            .map(|_| 1.0 + rng.random_range(0..16u32) as f32 / 4096.0)
            .collect();
        let qs: Vec<f32> = (0..q * dim).map(|_| small_int(&mut rng)).collect();
        assert_exact(&db, n, &qs, q, dim, 10);
    }

    #[test]
    fn huge_and_nan_rows() {
        // Norms past the BF16 bound's limit, in the database and in one query: scored in f32.
        let mut rng = rng(4);
        let (n, q, dim) = (3000, 40, 32);
        let mut db: Vec<f32> = (0..n * dim).map(|_| small_int(&mut rng)).collect();
        let big = 2f32.powi(100);
        for x in &mut db[17 * dim..18 * dim] {
            *x *= big;
        }
        db[2000 * dim + 3] = f32::NAN;
        let mut qs: Vec<f32> = (0..q * dim).map(|_| small_int(&mut rng)).collect();
        assert_exact(&db, n, &qs, q, dim, 5);
        for x in &mut qs[..dim] {
            *x *= big;
        }
        assert_exact(&db, n, &qs, q, dim, 5);
    }

    #[test]
    fn all_equal_scores_keep_the_lowest_rows() {
        let (n, dim) = (5000, 8);
        let db = vec![1.0; n * dim];
        let qs = vec![0.5; 40 * dim];
        for isa in Isa::available() {
            for q in [1, 5, 20, 40] {
                for g in top_k_with(isa, &db, n, &qs[..q * dim], q, dim, 3) {
                    assert_eq!(g, vec![(0, 4.0), (1, 4.0), (2, 4.0)], "{isa:?} q={q}");
                }
            }
        }
    }

    #[test]
    fn nan_rows_are_skipped() {
        let dim = 4;
        let mut db = vec![1.0; 6 * dim];
        db[dim] = f32::NAN;
        let got = top_k(&db, 6, &[1.0; 4], 1, dim, 10).unwrap();
        assert_eq!(
            got[0].iter().map(|h| h.0).collect::<Vec<_>>(),
            vec![0, 2, 3, 4, 5]
        );
    }

    #[test]
    fn degenerate_sizes() {
        assert_eq!(
            top_k(&[1.0; 6], 3, &[1.0; 4], 2, 2, 0).unwrap(),
            vec![vec![], vec![]]
        );
        assert_eq!(top_k(&[], 0, &[1.0; 2], 1, 2, 5).unwrap(), vec![vec![]]);
        assert!(top_k(&[1.0; 6], 3, &[], 0, 2, 5).unwrap().is_empty());
        let got = top_k(&[1.0, 2.0], 2, &[3.0], 1, 1, 5).unwrap();
        assert_eq!(got, vec![vec![(1, 6.0), (0, 3.0)]]);
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert_eq!(
            top_k(&[1.0; 6], 3, &[1.0; 2], 1, 0, 1),
            Err(TopKError::ZeroDim)
        );
        assert_eq!(
            top_k(&[1.0; 5], 3, &[1.0; 2], 1, 2, 1),
            Err(TopKError::DbLength {
                len: 5,
                n: 3,
                dim: 2
            })
        );
        assert_eq!(
            top_k(&[1.0; 6], 3, &[1.0; 3], 1, 2, 1),
            Err(TopKError::QueryLength {
                len: 3,
                q: 1,
                dim: 2
            })
        );
        assert_eq!(
            top_k(&[1.0; 6], usize::MAX, &[1.0; 2], 1, 2, 1),
            Err(TopKError::DbLength {
                len: 6,
                n: usize::MAX,
                dim: 2
            })
        );
        let msg = TopKError::QueryLength {
            len: 3,
            q: 1,
            dim: 2,
        }
        .to_string();
        assert!(msg.starts_with("query slice holds 3 floats"), "{msg}");
    }
}
