//! Fuzzing the inputs outside strata-data's readers (docs/reliability.md), with the harness of
//! `strata-data/tests/fuzz_support`: run configs (TOML with `--set` overrides), TTM and MOIRAI
//! `config.json`, safetensors checkpoints (loaded by name into a model), and the server's
//! request bodies (JSON and CSV). Properties: no panic, no allocation beyond 64 x the input +
//! 64 MiB, every error names its file (or, for an override, the override).

#[path = "../../strata-data/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::Path;

use fuzz_support::{campaign, data_root, seed_file};
use rand::{Rng, SeedableRng};

fn repo_file(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)).unwrap()
}

const OVERRIDES: &[&str] = &["train.epochs=-1", "train.epochs=1e99", "model.d_model=0", "data.seq_len=\"x\"", "a.b.c.d=1", "=", "train=5", "data.path=", "model.name=nosuch", "train.lr=nan", "data.split=[0.9, 0.9, 0.9]", "..=1", "data.covariates.static_file=/nonexistent"];

#[test]
fn run_configs_with_overrides() {
    let seeds = vec![repo_file("configs/etth1_patchtst_336_96.toml"), repo_file("configs/los-loop_stid.toml"), repo_file("configs/etth1_tide_720_96.toml")];
    let pick = std::sync::atomic::AtomicU64::new(fuzz_support::seed());
    campaign("run-config", "run.toml", &seeds, |p| {
        let k = pick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(k);
        let sets: Vec<String> = (0..rng.random_range(0..3)).map(|_| OVERRIDES[rng.random_range(0..OVERRIDES.len())].to_string()).collect();
        match strata_train::RunConfig::load(p, &sets) {
            Ok(_) => Ok(()),
            // An override's error names the override, the file's errors name the file.
            Err(e) => {
                let msg = format!("{e:#}");
                match sets.iter().find(|s| msg.contains(&format!("override `{s}`"))) {
                    Some(_) => Ok(()),
                    None => Err(msg),
                }
            }
        }
    });
}

#[test]
fn foundation_model_configs() {
    let ttm = std::fs::read(data_root().join("ttm-r2/config.json")).unwrap();
    campaign("ttm-config", "config.json", &[ttm], |p| strata_models::foundation::ttm::TTMConfig::from_file(p).map(|_| ()));
    let moirai = repo_file("fixtures/moirai/tiny/config.json");
    campaign("moirai-config", "config.json", &[moirai], |p| strata_models::foundation::moirai::MoiraiConfig::from_file(p).map(|_| ()));
}

#[test]
fn safetensors_checkpoints() {
    use strata_models::foundation::weights::{load_safetensors, save_safetensors};
    let device = burn::tensor::Device::flex();
    let shape = strata_models::Shape::lsf(48, 12, 3);
    let model = strata_models::DLinearConfig::default().init(shape, &device);
    let dir = std::env::temp_dir().join(format!("strata-fuzz-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    save_safetensors(&model, &dir.join("seed.safetensors")).unwrap();
    let good = std::fs::read(dir.join("seed.safetensors")).unwrap();
    // A header claiming a tensor far beyond the file.
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8_lossy(&good[8..8 + header_len]).to_string();
    let giant = header.replacen("\"data_offsets\":[0,", "\"data_offsets\":[0,999999999999", 1);
    let mut forged = (giant.len() as u64).to_le_bytes().to_vec();
    forged.extend(giant.as_bytes());
    forged.extend(&good[8 + header_len..]);
    campaign("safetensors", "model.safetensors", &[good, forged], |p| {
        let mut m = strata_models::DLinearConfig::default().init(shape, &burn::tensor::Device::flex());
        load_safetensors(&mut m, p)
    });
}

#[test]
fn server_request_bodies() {
    let body = br#"{"columns": ["OT"], "timestamps": ["2018-02-20 21:00:00", "2018-02-20 22:00:00", "2018-02-20 23:00:00"], "values": [[1.5], [null], [2.25]], "at": "2018-02-20 23:00:00"}"#.to_vec();
    let mut deep = br#"{"values": "#.to_vec();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    campaign("request-json", "body.json", &[body, deep], |p| {
        let bytes = std::fs::read(p).unwrap();
        let req: strata_serve::ForecastRequest = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        strata_serve::to_table(&req).map(|_| ()).map_err(|e| format!("{}: {e}", p.display()))
    });
    let csv = seed_file("ETTh1/ETTh1.csv", 4000);
    campaign("request-csv", "body.csv", &[csv], |p| {
        let bytes = std::fs::read(p).unwrap();
        strata_data::source::read_frame_bytes(p, &bytes, strata_data::source::raw::FileKind::Csv, &Default::default()).map(|_| ()).map_err(|e| e.to_string())
    });
}
