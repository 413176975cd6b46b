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

mod fuzz_support;

use std::path::Path;

use fuzz_support::{campaign, data_root, largest, reset_largest, seed_file};

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
    reset_largest();
    let e = strata_data::table::read_table(&path, Some("OT")).unwrap_err().to_string();
    let largest = largest();
    unsafe { std::env::remove_var("STRATA_MAX_INPUT_BYTES") };
    assert!(e.contains("bomb.csv.gz") && e.contains("STRATA_MAX_INPUT_BYTES"), "{e}");
    assert!(largest < 130 << 20, "allocated {largest} bytes at once");
}

/// Parquet and Arrow IPC files (written here by the parquet and arrow-ipc crates' writers, the
/// readers' own project), mutated: their decoders are third-party code.
#[test]
fn parquet_and_arrow_files() {
    use std::sync::Arc;
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    let dates: Vec<String> = (0..64).map(|t| format!("2021-03-{:02} {:02}:00:00", 1 + t / 24, t % 24)).collect();
    let batch = RecordBatch::try_from_iter(vec![
        ("date", Arc::new(StringArray::from(dates)) as ArrayRef),
        ("a", Arc::new(Float64Array::from((0..64).map(|t| (t as f64 * 0.3).sin()).collect::<Vec<_>>())) as ArrayRef),
        ("OT", Arc::new(Float64Array::from((0..64).map(|t| t as f64 * 0.5).collect::<Vec<_>>())) as ArrayRef),
    ])
    .unwrap();
    let mut parquet = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut parquet, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let mut arrow = Vec::new();
    let mut w = arrow_ipc::writer::FileWriter::try_new(&mut arrow, &batch.schema()).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    drop(w);
    use strata_data::source::ReadSpec;
    campaign("parquet", "table.parquet", &[parquet], |p| err(strata_data::source::read_frame(p, &ReadSpec::default())));
    campaign("arrow", "table.arrow", &[arrow], |p| err(strata_data::source::read_frame(p, &ReadSpec::default())));
}

/// Regression inputs found by the campaigns above, each now a clear error naming the file.
#[test]
fn regressions_found_by_fuzzing_are_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    // An Arrow IPC file whose buffer offsets point far beyond it: arrow-buffer panicked
    // ("the offset of the new Buffer cannot exceed the existing length").
    let e = strata_data::source::read_frame(&dir.join("arrow_slice_offset.arrow"), &Default::default()).unwrap_err().to_string();
    assert!(e.contains("arrow_slice_offset.arrow") && e.contains("not a readable Arrow IPC file"), "{e}");
    // An Arrow IPC file of 3.4 KB claiming a 256 MB footer: the reader allocated it.
    reset_largest();
    let e = strata_data::source::read_frame(&dir.join("arrow_claimed_block.arrow"), &Default::default()).unwrap_err().to_string();
    assert!(e.contains("arrow_claimed_block.arrow") && e.contains("claims") && e.contains("of a 3432-byte file"), "{e}");
    assert!(largest() < 16 << 20, "no large allocation before the refusal");
}
