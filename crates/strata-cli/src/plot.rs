//! `strata plot` and `strata explain`: forecast vs truth (with prediction intervals), training
//! curves, and attention heat-maps, as PNG or SVG (plotters; text drawn with a compiled-in font,
//! so no system font library is needed).

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use strata_train::engine::checkpoint::TrainState;
use strata_train::inference::forecast::{Forecast, Predictor, Query};

const FONT: &str = "sans-serif";

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font(FONT, style, epaint_default_fonts::UBUNTU_LIGHT).unwrap_or_else(|_| panic!("the bundled font is valid"));
        }
    });
}

/// Draw with the backend the file extension names (`.png` or `.svg`).
fn render(path: &Path, size: (u32, u32), draw: impl Fn(DrawingArea<BitMapBackend, Shift>) -> Result<()>, draw_svg: impl Fn(DrawingArea<SVGBackend, Shift>) -> Result<()>) -> Result<()> {
    fonts();
    let tmp = path.with_extension(format!("tmp.{}", path.extension().and_then(|e| e.to_str()).unwrap_or("png")));
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => draw_svg(SVGBackend::new(&tmp, size).into_drawing_area())?,
        Some("png") => draw(BitMapBackend::new(&tmp, size).into_drawing_area())?,
        _ => bail!("{}: plots are .png or .svg", path.display()),
    }
    std::fs::rename(&tmp, path).map_err(|e| anyhow!("cannot write {}: {e}", path.display()))
}

/// [`render`] with one drawing for both backends (the closure is generic over the backend, so
/// it is written once and instantiated twice).
macro_rules! draw {
    ($path:expr, $size:expr, |$r:ident| $body:expr) => {
        render($path, $size, |$r| $body, |$r| $body)
    };
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// One line series: label, points, colour.
type Line = (String, Vec<(f64, f64)>, RGBColor);

/// A line chart with an optional shaded band `(x, low, high)`.
fn lines<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, x_label: &str, y_label: &str, series: &[Line], band: &[(f64, f64, f64)]) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let pts = series.iter().flat_map(|s| s.1.iter().copied()).chain(band.iter().flat_map(|&(x, l, h)| [(x, l), (x, h)])).filter(|p| p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        bail!("nothing to plot for '{title}'");
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
        .map_err(err)?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).label_style((FONT, 14)).draw().map_err(err)?;
    if !band.is_empty() {
        let poly: Vec<(f64, f64)> = band.iter().map(|&(x, l, _)| (x, l)).chain(band.iter().rev().map(|&(x, _, h)| (x, h))).collect();
        chart.draw_series(std::iter::once(Polygon::new(poly, RGBColor(31, 119, 180).mix(0.2).filled()))).map_err(err)?.label("80% interval").legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], RGBColor(31, 119, 180).mix(0.2).filled()));
    }
    for (label, points, colour) in series {
        let c = *colour;
        chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2))).map_err(err)?.label(label.as_str()).legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart.configure_series_labels().label_font((FONT, 14)).background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    root.present().map_err(err)
}

/// A heat-map of a `[rows, cols]` matrix (viridis-like ramp, colour bar as the caption's range).
fn heatmap<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, x_label: &str, y_label: &str, m: &[f32], rows: usize, cols: usize) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let (lo, hi) = m.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let span = (hi - lo).max(1e-12);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}  [{lo:.3}, {hi:.3}]"), (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0..cols, 0..rows)
        .map_err(err)?;
    let flip = |y: &usize| rows.saturating_sub(*y + 1).to_string();
    chart.configure_mesh().disable_mesh().x_desc(x_label).y_desc(y_label).y_label_formatter(&flip).label_style((FONT, 13)).draw().map_err(err)?;
    chart
        .draw_series((0..rows).flat_map(|r| (0..cols).map(move |c| (r, c))).map(|(r, c)| {
            let t = ((m[r * cols + c] - lo) / span) as f64;
            // Query 0 at the top.
            Rectangle::new([(c, rows - 1 - r), (c + 1, rows - r)], ramp(t).filled())
        }))
        .map_err(err)?;
    root.present().map_err(err)
}

/// Dark blue -> teal -> yellow.
fn ramp(t: f64) -> RGBColor {
    let stops = [(68.0, 1.0, 84.0), (33.0, 145.0, 140.0), (253.0, 231.0, 37.0)];
    let (i, f) = if t < 0.5 { (0, t * 2.0) } else { (1, (t - 0.5) * 2.0) };
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f.clamp(0.0, 1.0)) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Training and validation loss per epoch from the run's `state.json`.
pub fn curves(run: &Path, out: &Path) -> Result<PathBuf> {
    let state = TrainState::load(&run.join("state.json"))?;
    if state.history.is_empty() {
        bail!("{} has no finished epoch to plot", run.display());
    }
    let pick = |f: fn(&strata_train::engine::checkpoint::EpochLog) -> f64| state.history.iter().map(|e| (e.epoch as f64, f(e))).collect::<Vec<_>>();
    let series = vec![("train loss".to_string(), pick(|e| e.train_loss), RGBColor(31, 119, 180)), ("validation loss".to_string(), pick(|e| e.val_loss), RGBColor(214, 39, 40))];
    let title = format!("{}: training curves", run.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()));
    draw!(out, (900, 500), |r| lines(r, &title, "epoch", "loss", &series, &[]))?;
    Ok(out.to_path_buf())
}

/// Forecast vs truth for one output column: the context, the forecast, the truth where the
/// input has it, and the 10-90% band for probabilistic models. x is steps from the origin.
pub fn forecast_chart(q: &Query, f: &Forecast, history: &[Vec<f32>], column: usize, out: &Path) -> Result<()> {
    let l = history.len() as f64;
    let ctx: Vec<(f64, f64)> = history.iter().enumerate().map(|(i, r)| (i as f64 - l + 1.0, r[column] as f64)).collect();
    let fc: Vec<(f64, f64)> = f.values.iter().enumerate().map(|(t, r)| ((t + 1) as f64, r[column] as f64)).collect();
    let mut series = vec![("history".to_string(), ctx, RGBColor(90, 90, 90)), ("forecast".to_string(), fc, RGBColor(31, 119, 180))];
    if let Some(truth) = &q.truth {
        series.push(("truth".to_string(), truth.iter().enumerate().map(|(t, r)| ((t + 1) as f64, r[column] as f64)).collect(), RGBColor(214, 39, 40)));
    }
    let band: Vec<(f64, f64, f64)> = match (f.quantiles.first(), f.quantiles.last()) {
        (Some((_, lo)), Some((_, hi))) if f.quantiles.len() > 1 => (0..f.values.len()).map(|t| ((t + 1) as f64, lo[t][column] as f64, hi[t][column] as f64)).collect(),
        _ => Vec::new(),
    };
    let title = format!("{} from {}", f.columns[column], f.origin.as_deref().unwrap_or("the last row"));
    draw!(out, (1000, 500), |r| lines(r, &title, "steps from the origin", &f.columns[column], &series, &band))
}

/// What `strata plot` draws.
pub struct PlotArgs<'a> {
    pub run: &'a Path,
    pub input: Option<&'a Path>,
    pub at: &'a [String],
    pub series: &'a [String],
    pub out: &'a Path,
    pub format: &'a str,
}

/// Training curves, and forecast-vs-truth charts for each chosen series and origin.
pub fn plot(a: &PlotArgs) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(a.out)?;
    let mut written = vec![curves(a.run, &a.out.join(format!("curves.{}", a.format)))?];
    let Some(input) = a.input else { return Ok(written) };
    let p = Predictor::load(a.run, &strata_train::device::compute_device())?;
    let table = p.schema.read_input(input)?;
    let origins: Vec<Option<&str>> = if a.at.is_empty() { vec![None] } else { a.at.iter().map(|s| Some(s.as_str())).collect() };
    let names: Vec<String> = if a.series.is_empty() { vec![p.schema.target.clone()] } else { a.series.to_vec() };
    for (k, at) in origins.iter().enumerate() {
        let q = p.schema.query(&table, *at)?;
        let f = p.predict(std::slice::from_ref(&q)).remove(0);
        let history = q.history(&p.schema);
        for name in &names {
            let col = f.columns.iter().position(|c| c == name).ok_or_else(|| anyhow!("--series {name}: the model forecasts {:?}", f.columns))?;
            let path = a.out.join(format!("forecast_{name}_{}.{}", k + 1, a.format));
            forecast_chart(&q, &f, &history, col, &path)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The learned adjacency of a graph model (MTGNN, Graph WaveNet) as a heat-map.
pub fn adjacency(run: &Path, out: &Path, format: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let (cfg, model) = strata_train::evaluation::run::load_best(run, &strata_train::device::compute_device())?;
    let adj = model.learned_adjacency().ok_or_else(|| anyhow!("{} is a {} model: it learns no adjacency (mtgnn, gwnet do) and has no attention weights", run.display(), cfg.model.name()))?;
    let [n, _] = adj.dims();
    let m: Vec<f32> = adj.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| anyhow!("{e:?}"))?;
    let path = out.join(format!("adjacency.{format}"));
    let title = format!("{} learned adjacency ({} nodes)", cfg.model.name(), n);
    draw!(&path, (760, 700), |r| heatmap(r, &title, "to node", "from node", &m, n, n))?;
    Ok(vec![path])
}

/// Attention heat-maps of every layer and head for one input window; channel-independent models
/// (PatchTST) show the chosen series' attention. Graph models without an input: their learned
/// adjacency.
pub fn explain(run: &Path, input: Option<&Path>, at: Option<&str>, series: Option<&str>, out: &Path, format: &str) -> Result<Vec<PathBuf>> {
    let Some(input) = input else { return adjacency(run, out, format) };
    std::fs::create_dir_all(out)?;
    let p = Predictor::load(run, &strata_train::device::compute_device())?;
    let q = p.schema.query(&p.schema.read_input(input)?, at)?;
    let maps = p.attention(&q).ok_or_else(|| anyhow!("{} is a {} model, which has no attention to show (attention models: patchtst, itransformer, transformer)", run.display(), p.schema.model.name()))?;
    let columns = &p.schema.columns;
    let name = series.unwrap_or(&p.schema.target);
    let channel = columns.iter().position(|c| c == name).ok_or_else(|| anyhow!("--series {name}: the model reads {columns:?}"))?;
    let mut written = Vec::new();
    for (layer, [rows, heads, tq, tk], w) in maps {
        // Channel-independent models fold the channels into the batch.
        let row = if rows == columns.len() { channel } else { 0 };
        let (xl, yl) = match p.schema.model.name() {
            "patchtst" => ("key patch", "query patch"),
            "itransformer" => ("key token (series, covariates, calendar)", "query token"),
            _ if layer.contains("cross") => ("encoder step", "decoder step"),
            _ => ("key step", "query step"),
        };
        for h in 0..heads {
            let m = &w[((row * heads + h) * tq) * tk..((row * heads + h + 1) * tq) * tk];
            let path = out.join(format!("attention_{layer}_head{}.{format}", h + 1));
            let title = format!("{} {layer} head {}{}", p.schema.model.name(), h + 1, if rows == columns.len() { format!(" ({name})") } else { String::new() });
            draw!(&path, (700, 640), |r| heatmap(r, &title, xl, yl, m, tq, tk))?;
            written.push(path);
        }
    }
    Ok(written)
}
