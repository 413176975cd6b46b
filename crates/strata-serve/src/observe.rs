//! `POST /v1/models/{name}/observe`: new observations for a served model. The server holds the
//! latest rows of each model (its context); a forecast request without `values` forecasts from
//! them. When the run's config asks for online updates (`[online] strategy = "ogd"`), every
//! row that completes a window (`seq_len` inputs and the `pred_len` rows after them) queues that
//! window for a background thread, which takes the gradient steps through the training engine
//! (`strata_train::online::live`), writes the new weights, and only then hands them to the
//! model's inference worker: a forecast is made wholly by one version of the weights, named in
//! its answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::NaiveDateTime;
use strata_models::Model;
use strata_train::inference::forecast::Schema;
use strata_train::inference::input::InputTable;
use strata_train::online::live::{Live, Window};

/// Rows kept beyond one window.
const SLACK: usize = 256;

/// The rows a server holds for one model, in the schema's column order.
#[derive(Default)]
pub struct Observed {
    pub dates: Option<Vec<NaiveDateTime>>,
    pub rows: Vec<Vec<f32>>,
}

/// What a served model learns with: the queue of its updater thread, the versions.
pub struct Learner {
    pub windows: std::sync::mpsc::Sender<Window>,
    /// Updates taken and written so far.
    pub version: Arc<AtomicU64>,
    pub lr: f64,
}

impl Observed {
    /// The held rows as a table (for a forecast from them, or a window's context).
    pub fn table(&self, schema: &Schema, range: std::ops::Range<usize>) -> InputTable {
        let width = schema.columns.len();
        InputTable {
            source: "the observed rows".into(),
            columns: Some(schema.columns.clone()),
            dates: self.dates.as_ref().map(|d| d[range.clone()].to_vec()),
            values: self.rows[range.clone()].iter().flatten().copied().collect(),
            rows: range.len(),
            width,
        }
    }

    /// Append the rows of `input` (every schema column, no missing cell; timestamps after the
    /// held ones, when the held rows have them). Returns how many rows were added.
    pub fn append(&mut self, schema: &Schema, input: &InputTable) -> Result<usize, String> {
        let index: Vec<usize> = match &input.columns {
            Some(names) => {
                let missing: Vec<&String> = schema.columns.iter().filter(|c| !names.contains(c)).collect();
                if !missing.is_empty() {
                    return Err(format!("missing column(s) {missing:?}: observations give every column the model reads, {:?}", schema.columns));
                }
                schema.columns.iter().map(|c| names.iter().position(|n| n == c).expect("checked")).collect()
            }
            None if input.width != schema.columns.len() => {
                return Err(format!("{} numbers per row; the model reads {} columns, in this order: {:?}", input.width, schema.columns.len(), schema.columns));
            }
            None => (0..input.width).collect(),
        };
        let rows: Vec<Vec<f32>> = (0..input.rows).map(|r| index.iter().map(|&j| input.values[r * input.width + j]).collect()).collect();
        if let Some((r, _)) = rows.iter().enumerate().find(|(_, row)| row.iter().any(|v| !v.is_finite())) {
            return Err(format!("`values` row {r} has a missing or non-finite cell: observations must be complete (the model learns from them)"));
        }
        match (&mut self.dates, &input.dates) {
            (Some(held), Some(new)) => {
                let mut last = held.last().copied();
                for (i, d) in new.iter().enumerate() {
                    if last.is_some_and(|l| *d <= l) {
                        return Err(format!("`timestamps`[{i}] = {d} is not after the previous observation ({}): send rows in time order, each once", last.expect("some")));
                    }
                    last = Some(*d);
                }
                held.extend(new.iter().copied());
            }
            (None, Some(new)) if self.rows.is_empty() => self.dates = Some(new.clone()),
            (Some(_), None) => return Err("the held observations have timestamps: send `timestamps` with these rows too".into()),
            (None, Some(_)) => return Err("the held observations have no timestamps: send these rows without them too".into()),
            (None, None) => {}
        }
        self.rows.extend(rows);
        Ok(input.rows)
    }

    /// Forget all but the latest `keep` rows.
    pub fn trim(&mut self, keep: usize) {
        let drop = self.rows.len().saturating_sub(keep);
        if drop > 0 {
            self.rows.drain(..drop);
            if let Some(d) = self.dates.as_mut() {
                d.drain(..drop);
            }
        }
    }

    /// The windows completed by the last `added` rows: the context and the scaled truth of the
    /// output columns over the horizon.
    pub fn windows(&self, schema: &Schema, added: usize) -> Result<Vec<Window>, String> {
        let (l, h) = (schema.shape.seq_len, schema.shape.pred_len);
        let n = self.rows.len();
        let out = schema.output_range();
        let mut windows = vec![];
        for end in n.saturating_sub(added) + 1..=n {
            if end < l + h {
                continue;
            }
            let ctx = end - h - l..end - h;
            let query = schema.query(&self.table(schema, ctx), None).map_err(|e| format!("{e:#}"))?;
            let truth = self.rows[end - h..end]
                .iter()
                .flat_map(|row| out.clone().map(|j| schema.scaler.as_ref().map_or(row[j], |s| (row[j] - s.mean[schema.scaler_col(j)]) / s.std[schema.scaler_col(j)])))
                .collect();
            windows.push(Window { query, truth });
        }
        Ok(windows)
    }

    pub fn keep(schema: &Schema) -> usize {
        schema.shape.seq_len + schema.shape.pred_len + SLACK
    }
}

/// Start the updater thread of the run in `dir` when its config asks for online updates; it
/// sends each new version of the weights to `swap`.
pub fn spawn_learner(dir: &std::path::Path, swap: std::sync::mpsc::Sender<(Model, u64)>) -> anyhow::Result<Option<Learner>> {
    let Some(mut live) = Live::load(dir)? else { return Ok(None) };
    let (tx, rx) = std::sync::mpsc::channel::<Window>();
    let version = Arc::new(AtomicU64::new(live.version));
    let lr = live.lr();
    let shared = version.clone();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| live.update(&batch).and_then(|_| live.save())));
            match done {
                Ok(Ok(())) => {
                    shared.store(live.version, Ordering::SeqCst);
                    if swap.send((live.serving_model(), live.version)).is_err() {
                        return;
                    }
                }
                Ok(Err(e)) => eprintln!("{}: online update failed ({e:#}); serving the previous version", dir.display()),
                Err(_) => {
                    eprintln!("{}: online update panicked; serving the previous version, no more updates", dir.display());
                    return;
                }
            }
        }
    });
    Ok(Some(Learner { windows: tx, version, lr }))
}
