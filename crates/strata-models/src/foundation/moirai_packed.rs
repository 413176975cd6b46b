//! MOIRAI's input: a packed batch of patch tokens (uni2ts's packing), and its per-group counts.

/// A packed batch: `[batch, tokens, max_patch]` values and masks, `[batch, tokens]` ids.
#[derive(Debug, Clone)]
pub struct Packed {
    pub batch: usize,
    pub tokens: usize,
    pub max_patch: usize,
    pub target: Vec<f32>,
    pub observed: Vec<bool>,
    pub sample_id: Vec<i64>,
    pub time_id: Vec<i64>,
    pub variate_id: Vec<i64>,
    pub prediction: Vec<bool>,
    pub patch_size: Vec<usize>,
}

impl Packed {
    /// The packed rows `rows` (in that order) as a batch of their own: a data-parallel rank's
    /// share of a packed batch.
    pub fn rows(&self, rows: &[usize]) -> Packed {
        let (l, m) = (self.tokens, self.max_patch);
        let per_token = |v: &[i64]| rows.iter().flat_map(|&r| v[r * l..(r + 1) * l].to_vec()).collect::<Vec<_>>();
        Packed {
            batch: rows.len(),
            tokens: l,
            max_patch: m,
            target: rows.iter().flat_map(|&r| self.target[r * l * m..(r + 1) * l * m].to_vec()).collect(),
            observed: rows.iter().flat_map(|&r| self.observed[r * l * m..(r + 1) * l * m].to_vec()).collect(),
            sample_id: per_token(&self.sample_id),
            time_id: per_token(&self.time_id),
            variate_id: per_token(&self.variate_id),
            prediction: rows.iter().flat_map(|&r| self.prediction[r * l..(r + 1) * l].to_vec()).collect(),
            patch_size: rows.iter().flat_map(|&r| self.patch_size[r * l..(r + 1) * l].to_vec()).collect(),
        }
    }

    /// One forecasting window packed as uni2ts's `MoiraiForecast._convert` packs it: `context`
    /// is `[steps, channels]` row-major with its observed mask; each channel becomes a variate of
    /// sample 1; the context is left-padded (unobserved) to whole patches of `patch`, the horizon
    /// right-padded; tokens are all context tokens channel by channel, then all prediction tokens
    /// channel by channel; time ids count patches from the first one with an observation.
    pub fn window(context: &[f32], observed: &[bool], channels: usize, horizon: usize, patch: usize, max_patch: usize) -> Packed {
        let steps = context.len() / channels;
        let (ctx_tok, pred_tok) = (steps.div_ceil(patch), horizon.div_ceil(patch));
        let pad = ctx_tok * patch - steps;
        let tokens = channels * (ctx_tok + pred_tok);
        let mut p = Packed {
            batch: 1,
            tokens,
            max_patch,
            target: vec![0.0; tokens * max_patch],
            observed: vec![false; tokens * max_patch],
            sample_id: vec![1; tokens],
            time_id: vec![0; tokens],
            variate_id: vec![0; tokens],
            prediction: vec![false; tokens],
            patch_size: vec![patch; tokens],
        };
        // Time ids: a context patch counts once any channel has an observation in or before it.
        let mut seen = false;
        let mut past_ids = Vec::with_capacity(ctx_tok);
        let mut count = 0i64;
        for t in 0..ctx_tok {
            let any = (0..patch).any(|k| (t * patch + k).checked_sub(pad).is_some_and(|s| (0..channels).any(|c| observed[s * channels + c])));
            seen |= any;
            if seen {
                count += 1;
            }
            past_ids.push((count - 1).max(0));
        }
        let next = past_ids.iter().copied().max().unwrap_or(0) + 1;
        for c in 0..channels {
            for t in 0..ctx_tok {
                let tok = c * ctx_tok + t;
                (p.time_id[tok], p.variate_id[tok]) = (past_ids[t], c as i64);
                for k in 0..patch {
                    if let Some(s) = (t * patch + k).checked_sub(pad) {
                        p.target[tok * max_patch + k] = context[s * channels + c];
                        p.observed[tok * max_patch + k] = observed[s * channels + c];
                    }
                }
            }
            for t in 0..pred_tok {
                let tok = channels * ctx_tok + c * pred_tok + t;
                (p.time_id[tok], p.variate_id[tok], p.prediction[tok]) = (next + t as i64, c as i64, true);
                for k in 0..patch {
                    p.observed[tok * max_patch + k] = t * patch + k < horizon;
                }
            }
        }
        p
    }

    /// Several windows of the same shape as one batch (rows of [`Packed::window`]).
    pub fn stack(rows: Vec<Packed>) -> Packed {
        let mut it = rows.into_iter();
        let mut p = it.next().expect("at least one window");
        for r in it {
            assert_eq!(r.tokens, p.tokens, "windows of one batch have the same token count");
            p.batch += 1;
            p.target.extend(r.target);
            p.observed.extend(r.observed);
            p.sample_id.extend(r.sample_id);
            p.time_id.extend(r.time_id);
            p.variate_id.extend(r.variate_id);
            p.prediction.extend(r.prediction);
            p.patch_size.extend(r.patch_size);
        }
        p
    }

    /// Read a `[batch, tokens, max_patch]` per-token output (e.g. the predictive mean) back into
    /// the `[batch, horizon, channels]` forecasts of stacked [`Packed::window`]s (uni2ts's
    /// `_format_preds`).
    pub fn horizon_values(&self, per_token: &[f32], channels: usize, horizon: usize) -> Vec<f32> {
        self.horizon_indices(channels, horizon).into_iter().map(|i| per_token[i]).collect()
    }

    /// Flat `(batch, token, position)` indices of the forecast, ordered `[batch, horizon, channels]`.
    pub fn horizon_indices(&self, channels: usize, horizon: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.batch * horizon * channels);
        for row in 0..self.batch {
            let patch = self.patch_size[row * self.tokens];
            let pred_tok = horizon.div_ceil(patch);
            let ctx_tok = self.tokens / channels - pred_tok;
            let base = row * self.tokens * self.max_patch;
            for h in 0..horizon {
                for c in 0..channels {
                    let tok = channels * ctx_tok + c * pred_tok + h / patch;
                    out.push(base + tok * self.max_patch + h % patch);
                }
            }
        }
        out
    }
}

/// Observed values in prediction tokens per (row, sample, variate) group.
pub fn prediction_counts(p: &Packed) -> std::collections::HashMap<(usize, i64, i64), usize> {
    let (l, m) = (p.tokens, p.max_patch);
    let mut counts = std::collections::HashMap::new();
    for i in (0..p.batch * l).filter(|&i| p.prediction[i] && p.sample_id[i] > 0) {
        *counts.entry((i / l, p.sample_id[i], p.variate_id[i])).or_insert(0usize) += (0..m).filter(|&k| p.observed[i * m + k]).count();
    }
    counts
}

