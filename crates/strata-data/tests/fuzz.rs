//! Fuzzing every reader of strata-data on stable Rust (docs/reliability.md): a seeded mutator of
//! our own (ChaCha8) turns the real files of `../shared/data` (and generated ones) into broken
//! variants: truncations, byte flips, inserted and deleted chunks, delimiter and quote changes,
//! huge, tiny and non-finite numbers, ragged rows, giant shapes claimed by headers, deeply
//! nested JSON, unknown pickle opcodes, gzip bombs. Properties for every case:
//!
//! * no panic (each call runs under `catch_unwind`);
//! * no unbounded allocation: a counting global allocator records the largest single request;
//!   it must stay under 64 x the input's size + 64 MiB (a claimed size beyond the file is
//!   refused before allocating);
//! * every error names the file (its path appears in the message).
//!
//! `STRATA_FUZZ_CASES` (default 60 per target and seed file, as CI runs it) and
//! `STRATA_FUZZ_SEED` (default 2026) set the campaign; docs/reliability.md gives the long one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The system allocator, recording the largest single allocation since the last reset; a
/// request beyond 4 GiB fails (the process aborts, naming the size) instead of exhausting memory.
struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);
const HARD_CAP: usize = 4 << 30;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        if layout.size() > HARD_CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        if new_size > HARD_CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn data_root() -> PathBuf {
    std::env::var_os("STRATA_DATA").map(Into::into).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

fn cases() -> usize {
    std::env::var("STRATA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}

fn seed() -> u64 {
    std::env::var("STRATA_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(2026)
}

/// The first `max` bytes of a real file (gunzipped), cut at a line end: a seed input.
fn seed_file(rel: &str, max: usize) -> Vec<u8> {
    let path = data_root().join(rel);
    let bytes = strata_data::table::read_bytes(&path).unwrap_or_else(|e| panic!("seed {rel}: {e}"));
    if bytes.len() <= max {
        return bytes;
    }
    let cut = bytes[..max].iter().rposition(|&b| b == b'\n').map_or(max, |i| i + 1);
    bytes[..cut].to_vec()
}

const NUMBERS: &[&str] = &["1e309", "-1e309", "NaN", "nan", "inf", "-inf", "1e-320", "-0", "99999999999999999999999", "0x1F", "1,5", "", "\"\"", "1e", "--1", "18446744073709551616"];

/// One mutation of `input` (text-aware where it is text).
fn mutate(rng: &mut ChaCha8Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.random_range(0..3);
    for _ in 0..rounds {
        let n = out.len();
        match rng.random_range(0..11) {
            0 if n > 0 => out.truncate(rng.random_range(0..n)),
            1 if n > 0 => {
                for _ in 0..rng.random_range(1..9) {
                    let i = rng.random_range(0..out.len().max(1));
                    if let Some(b) = out.get_mut(i) {
                        *b ^= 1 << rng.random_range(0..8);
                    }
                }
            }
            2 => {
                let i = rng.random_range(0..=n);
                let mut junk = vec![0u8; rng.random_range(1..64)];
                rng.fill_bytes(&mut junk);
                out.splice(i..i, junk);
            }
            3 if n > 1 => {
                let a = rng.random_range(0..n);
                let b = (a + rng.random_range(1..256)).min(n);
                out.drain(a..b);
            }
            4 if n > 1 => {
                // Duplicate a chunk (repeated rows, repeated keys).
                let a = rng.random_range(0..n);
                let b = (a + rng.random_range(1..512)).min(n);
                let chunk = out[a..b].to_vec();
                out.splice(b..b, chunk);
            }
            5 => {
                // A number becomes a huge, tiny, non-finite or malformed one.
                let digits: Vec<usize> = (0..n).filter(|&i| out[i].is_ascii_digit()).collect();
                if let Some(&i) = digits.get(rng.random_range(0..digits.len().max(1))) {
                    let mut j = i;
                    while j < out.len() && (out[j].is_ascii_digit() || out[j] == b'.' || out[j] == b'-' || out[j] == b'e') {
                        j += 1;
                    }
                    let with = NUMBERS[rng.random_range(0..NUMBERS.len())].as_bytes().to_vec();
                    out.splice(i..j, with);
                }
            }
            6 => {
                // Change the delimiter of some lines.
                let to = [b';', b'\t', b'|', b' '][rng.random_range(0..4)];
                for b in out.iter_mut().filter(|b| **b == b',') {
                    if rng.random_bool(0.3) {
                        *b = to;
                    }
                }
            }
            7 => {
                let i = rng.random_range(0..=n);
                out.insert(i, [b'"', b'\'', b'\r', b'\n', 0u8][rng.random_range(0..5)]);
            }
            8 => {
                // A ragged row: a line loses or gains fields.
                let lines: Vec<usize> = (0..n).filter(|&i| out[i] == b'\n').collect();
                if let Some(&i) = lines.get(rng.random_range(0..lines.len().max(1))) {
                    if rng.random_bool(0.5) {
                        out.splice(i..i, b",1,2,3".iter().copied());
                    } else if let Some(c) = out[..i].iter().rposition(|&b| b == b',') {
                        out.drain(c..i);
                    }
                }
            }
            9 => {
                // A long line.
                let i = rng.random_range(0..=n);
                let junk = vec![b'9'; rng.random_range(1..200_000)];
                out.splice(i..i, junk);
            }
            _ => {}
        }
    }
    out
}

/// Run `read` on `cases()` mutations of each seed input, written to `name` in a fresh folder,
/// and check the properties. Returns (cases, errors) for the report.
fn campaign(target: &str, name: &str, seeds: &[Vec<u8>], read: impl Fn(&Path) -> Result<(), String> + std::panic::RefUnwindSafe) -> (usize, usize) {
    let dir = std::env::temp_dir().join(format!("strata-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ target.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
    let (mut total, mut errors) = (0, 0);
    for (s, input) in seeds.iter().enumerate() {
        for case in 0..cases() {
            let bytes = if case == 0 { input.clone() } else { mutate(&mut rng, input) };
            std::fs::write(&path, &bytes).unwrap();
            LARGEST.store(0, Ordering::Relaxed);
            let result = std::panic::catch_unwind(|| read(&path));
            let largest = LARGEST.load(Ordering::Relaxed);
            let keep = dir.join(format!("failing-{target}-{s}-{case}-{name}"));
            let fail = |why: String| -> ! {
                std::fs::write(&keep, &bytes).unwrap();
                panic!("{target}, seed input {s}, case {case}: {why} (input kept at {})", keep.display());
            };
            match result {
                Err(p) => fail(format!("panicked: {}", p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default())),
                Ok(Err(msg)) => {
                    errors += 1;
                    if !msg.contains(name) {
                        fail(format!("the error does not name the file: {msg}"));
                    }
                }
                Ok(Ok(())) => {}
            }
            let cap = 64 * bytes.len() + (64 << 20);
            if largest > cap {
                fail(format!("allocated {largest} bytes at once for a {}-byte input", bytes.len()));
            }
            total += 1;
        }
    }
    eprintln!("fuzz {target}: {total} cases, {errors} refused with an error naming the file, no panic, largest allocation within bounds");
    (total, errors)
}

fn err<T>(r: Result<T, strata_data::DataError>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn tslib_csv_tables() {
    let seeds = vec![seed_file("ETTh1/ETTh1.csv", 6000), seed_file("weather/weather.csv.gz", 8000), seed_file("illness/national_illness.csv", 4000)];
    campaign("tslib-csv", "table.csv", &seeds, |p| err(strata_data::table::read_table(p, Some("OT"))));
}

#[test]
fn wild_tables_wide_and_long() {
    use strata_data::source::ReadSpec;
    let mut long = String::from("unique_id,ds,y,temp\n");
    for id in ["a", "b"] {
        for t in 0..40 {
            long += &format!("{id},2021-03-01 {:02}:00:00,{}.5,{}\n", t % 24, t, 40 - t);
        }
    }
    let seeds = vec![seed_file("ETTh2/ETTh2.csv", 5000), long.into_bytes(), seed_file("los-loop/los_speed.csv", 6000)];
    campaign("wild-table", "wild.csv", &seeds, |p| err(strata_data::source::read_frame(p, &ReadSpec::default())));
}

#[test]
fn npy_arrays_and_npz_archives() {
    let adj = std::fs::read(data_root().join("metr-la_graph/adj_mx.derived.npy")).unwrap();
    let small = strata_data::npy::encode_f32(&[3, 4], &(0..12).map(|i| i as f32).collect::<Vec<_>>());
    // A header claiming a giant shape over a few bytes of data.
    let mut giant = small.clone();
    let text = String::from_utf8_lossy(&giant[10..]).replace("(3, 4)", "(99999999, 99999)");
    giant.truncate(10);
    giant.extend(text.as_bytes());
    let seeds = vec![adj[..adj.len().min(40_000)].to_vec(), small.clone(), giant];
    campaign("npy", "array.npy", &seeds, |p| err(strata_data::npy::read_npy(p)));
    // .npz: a zip archive holding `data.npy`.
    let mut zipped = Vec::new();
    {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zipped));
        w.start_file("data.npy", zip::write::FileOptions::default()).unwrap();
        std::io::Write::write_all(&mut w, &small).unwrap();
        w.finish().unwrap();
    }
    campaign("npz", "signal.npz", &[zipped], |p| err(strata_data::npy::read_npz(p, "data")));
}

#[test]
fn pygt_json_and_nesting() {
    let mut deep = "[".repeat(200_000);
    deep += &"]".repeat(200_000);
    let seeds = vec![seed_file("pygt/chickenpox.json", 1 << 20), deep.into_bytes()];
    campaign("pygt-json", "graph.json", &seeds, |p| err(strata_data::pygt::read_pygt(p)));
}

#[test]
fn graph_files_edge_lists_and_matrices() {
    let seeds = vec![seed_file("pems0x_graph/PEMS08.csv", 3000), seed_file("los-loop/los_adj.csv", 20_000), seed_file("pems-bay_graph/distances_bay_2017.csv", 3000)];
    campaign("graph", "adj.csv", &seeds, |p| err(strata_data::graph::read_graph(p, &Default::default())));
}

#[test]
fn dcrnn_pickles() {
    let pkl = std::fs::read(data_root().join("metr-la_graph/adj_mx.pkl")).unwrap();
    // Unknown opcodes and a huge claimed frame/string length.
    let mut odd = pkl[..64.min(pkl.len())].to_vec();
    odd.extend([0xFFu8, 0xFE, b'B', 0xFF, 0xFF, 0xFF, 0x7F]);
    campaign("pickle", "adj_mx.pkl", &[pkl, odd], |p| err(strata_data::graph::read_graph(p, &Default::default())));
}

#[test]
fn gluonts_json_lines_and_archives() {
    let tar = std::fs::read(data_root().join("gluonts_exchange_rate_nips/exchange_rate_nips.tar.gz")).unwrap();
    let mut lines = String::new();
    for k in 0..3 {
        lines += &format!("{{\"start\": \"2020-01-0{} 00:00:00\", \"target\": [{}], \"item_id\": {k}}}\n", k + 1, (0..50).map(|t| format!("{}.25", t + k)).collect::<Vec<_>>().join(", "));
    }
    // JSON lines: the mutated file is a dataset folder's train/data.json (beside an intact test
    // file and metadata).
    let clean = lines.clone();
    campaign("gluonts-jsonl", "data.json", &[lines.into_bytes()], move |p| {
        let ds = p.with_file_name("dataset");
        for part in ["train", "test"] {
            std::fs::create_dir_all(ds.join(part)).unwrap();
        }
        std::fs::copy(p, ds.join("train/data.json")).unwrap();
        std::fs::write(ds.join("test/data.json"), &clean).unwrap();
        std::fs::write(ds.join("metadata.json"), r#"{"freq": "D", "prediction_length": 10}"#).unwrap();
        err(strata_data::gluonts::read_gluonts(&ds, None))
    });
    // The archive is gzip: mutating its compressed bytes mostly tests the gzip and tar layers.
    campaign("gluonts-tar", "data.tar.gz", &[tar], |p| err(strata_data::gluonts::read_gluonts(p, None)));
}

#[test]
fn gzip_bombs_are_refused_before_they_fill_memory() {
    use std::io::Write;
    // 256 MiB of zeros in ~256 KiB: a table reader with a 64 MiB cap refuses it.
    let dir = std::env::temp_dir().join(format!("strata-fuzz-bomb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bomb.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"date,OT\n").unwrap();
    let zeros = vec![b'0'; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&zeros).unwrap();
    }
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    // SAFETY of the test: one variable read by this process's readers only.
    unsafe { std::env::set_var("STRATA_MAX_INPUT_BYTES", (64u64 << 20).to_string()) };
    LARGEST.store(0, Ordering::Relaxed);
    let e = strata_data::table::read_table(&path, Some("OT")).unwrap_err().to_string();
    let largest = LARGEST.load(Ordering::Relaxed);
    unsafe { std::env::remove_var("STRATA_MAX_INPUT_BYTES") };
    assert!(e.contains("bomb.csv.gz") && e.contains("STRATA_MAX_INPUT_BYTES"), "{e}");
    assert!(largest < 130 << 20, "allocated {largest} bytes at once");
}
