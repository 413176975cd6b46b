//! The fuzzing harness shared by the fuzz targets of several crates (`strata-data/tests/fuzz.rs`,
//! `strata-serve/tests/fuzz_inputs.rs`): a counting global allocator, the seeded mutator and the
//! campaign that checks the properties (docs/reliability.md).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::cell::Cell;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The system allocator, recording the largest single allocation of each thread since its last
/// [`reset_largest`] (per thread: the test harness runs targets side by side, and one target's
/// large allocation must not count against another's case); a request beyond 4 GiB fails (the
/// process aborts, naming the size) instead of exhausting memory.
pub struct Counting;
const HARD_CAP: usize = 4 << 30;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

/// Forget this thread's largest allocation so far.
pub fn reset_largest() {
    let _ = LARGEST.try_with(|l| l.set(0));
}

/// This thread's largest single allocation since [`reset_largest`].
pub fn largest() -> usize {
    LARGEST.try_with(|l| l.get()).unwrap_or(0)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        if layout.size() > HARD_CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        if new_size > HARD_CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

pub fn data_root() -> PathBuf {
    std::env::var_os("STRATA_DATA").map(Into::into).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

pub fn cases() -> usize {
    std::env::var("STRATA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}

pub fn seed() -> u64 {
    std::env::var("STRATA_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(2026)
}

/// The first `max` bytes of a real file (gunzipped), cut at a line end: a seed input.
pub fn seed_file(rel: &str, max: usize) -> Vec<u8> {
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
pub fn mutate(rng: &mut ChaCha8Rng, input: &[u8]) -> Vec<u8> {
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
pub fn campaign(target: &str, name: &str, seeds: &[Vec<u8>], read: impl Fn(&Path) -> Result<(), String> + std::panic::RefUnwindSafe) -> (usize, usize) {
    let dir = std::env::temp_dir().join(format!("strata-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ target.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
    let (mut total, mut errors) = (0, 0);
    for (s, input) in seeds.iter().enumerate() {
        for case in 0..cases() {
            let bytes = if case == 0 { input.clone() } else { mutate(&mut rng, input) };
            std::fs::write(&path, &bytes).unwrap();
            reset_largest();
            let result = std::panic::catch_unwind(|| read(&path));
            let largest = largest();
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

