//! Progress of a training epoch: a live bar (loss, ETA) on a terminal; on anything else (a log
//! file under `nohup`, a batch scheduler) a plain line at most once a minute, so long runs show
//! that they advance without filling the log with bar redraws.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain-line form writes.
const LINE_EVERY: Duration = Duration::from_secs(60);

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    len: u64,
    pos: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// A progress for `len` steps labelled `label` (e.g. `epoch 3/10`).
    pub fn new(len: u64, label: String) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(&format!("{label} [{{bar:30}}] {{pos}}/{{len}} {{msg}} {{elapsed}}<{{eta}}"))
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        let now = Instant::now();
        Self { bar, label, len, pos: 0, started: now, last_line: now }
    }

    /// One step done; `loss` is the running mean loss of the epoch.
    pub fn step(&mut self, loss: f64) {
        self.pos += 1;
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("loss {loss:.4}"));
                bar.inc(1);
            }
            None if self.last_line.elapsed() >= LINE_EVERY && self.pos < self.len => {
                self.last_line = Instant::now();
                eprintln!("{}", line(&self.label, self.pos, self.len, loss, self.started.elapsed()));
            }
            None => {}
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `epoch 3/10 step 120/267 loss 0.4123 2m00s elapsed, ETA 2m27s`: the ETA assumes the
/// remaining steps take as long as the mean step so far.
pub fn line(label: &str, pos: u64, len: u64, loss: f64, elapsed: Duration) -> String {
    let eta = elapsed.as_secs_f64() / pos.max(1) as f64 * len.saturating_sub(pos) as f64;
    format!("{label} step {pos}/{len} loss {loss:.4} {} elapsed, ETA {}", clock(elapsed.as_secs_f64()), clock(eta))
}

fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_reports_position_loss_and_a_linear_eta() {
        // 120 of 267 steps in 120 s: 1 s a step, 147 steps left.
        let l = line("epoch 3/10", 120, 267, 0.41234, Duration::from_secs(120));
        assert_eq!(l, "epoch 3/10 step 120/267 loss 0.4123 2m00s elapsed, ETA 2m27s");
        // Hours appear once the time reaches one; the ETA of a finished epoch is zero.
        assert_eq!(line("epoch 1/1", 10, 10, 1.0, Duration::from_secs(3725)), "epoch 1/1 step 10/10 loss 1.0000 1h02m05s elapsed, ETA 0m00s");
        // 2 steps in 3 s: 1.5 s a step, 98 left.
        assert_eq!(line("fine-tune 1/2", 2, 100, 0.5, Duration::from_secs(3)), "fine-tune 1/2 step 2/100 loss 0.5000 0m03s elapsed, ETA 2m27s");
    }
}
