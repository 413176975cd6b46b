//! `strata serve`: forecasts over HTTP from saved run folders.
//!
//! * `GET /health`, `GET /v1/models`, `POST /v1/models/{name}/forecast` (JSON in, JSON out;
//!   or a file of the training data's layout as the body: `Content-Type: text/csv`,
//!   `application/vnd.apache.parquet` or `application/vnd.apache.arrow.file`, read with the
//!   run's saved reading settings, the origin as `?at=...`).
//! * `POST /v1/models/{name}/observe`: new rows for the model's held context (a forecast
//!   request without `values` forecasts from it); with `[online] strategy = "ogd"` in the run's
//!   config the model learns from every completed window in the background (observe.rs).
//! * Each model is owned by one worker thread; requests that arrive while it is busy are
//!   forecast together in the next batch (up to `max_batch`).
//! * Bounded: request bodies over `max_body` bytes get 413, more than `max_concurrency`
//!   requests in flight get 503, and malformed JSON (400), wrong shapes and data the model
//!   cannot read (422) get a reason; a failing model call gets 500. Nothing crashes the server.
//! * A client that has not sent a request's headers within `header_timeout` is disconnected
//!   (slowloris): connections are served by hyper with a timer, which `axum::serve` lacks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use strata_train::inference::forecast::{Forecast, InputTable, Predictor, Query, Schema};
use tokio::sync::{Semaphore, mpsc, oneshot};

mod observe;
use observe::{Learner, Observed};

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `(name, run folder)` of every model served.
    pub models: Vec<(String, PathBuf)>,
    pub addr: SocketAddr,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Requests in flight at once; more get 503.
    pub max_concurrency: usize,
    /// Most queries forecast in one model call.
    pub max_batch: usize,
    /// Time a client has to send a request's headers before it is disconnected.
    pub header_timeout: std::time::Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig { models: Vec::new(), addr: ([127, 0, 0, 1], 8080).into(), max_body: 4 << 20, max_concurrency: 256, max_batch: 64, header_timeout: std::time::Duration::from_secs(10) }
    }
}

/// The body of `POST /v1/models/{name}/forecast`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastRequest {
    /// Column names of `values` (default: the model's columns, in its order).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// One timestamp per row (`2018-02-20 23:00:00`); needed for calendar features and `at`.
    #[serde(default)]
    pub timestamps: Option<Vec<String>>,
    /// Rows of values, oldest first; `null` is a missing cell. Empty or absent: forecast from
    /// the rows observed (`/observe`).
    #[serde(default)]
    pub values: Vec<Vec<Option<f32>>>,
    /// Forecast origin (a timestamp of the rows; default the last row).
    #[serde(default)]
    pub at: Option<String>,
}

/// The answer: the forecast and the model that made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForecastResponse {
    pub model: String,
    /// Online updates in the weights that made this forecast (0: the trained weights).
    #[serde(default)]
    pub version: u64,
    #[serde(flatten)]
    pub forecast: Forecast,
}

/// One `GET /v1/models` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub model: String,
    pub dataset: String,
    pub columns: Vec<String>,
    pub outputs: Vec<String>,
    pub seq_len: usize,
    pub pred_len: usize,
    pub freq: String,
    pub probabilistic: bool,
    /// Learns from observations (`[online] strategy = "ogd"`), at this rate.
    #[serde(default)]
    pub online_lr: Option<f64>,
}

/// The answer to `POST /v1/models/{name}/observe`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObserveResponse {
    pub model: String,
    /// Rows added and rows now held.
    pub added: usize,
    pub held: usize,
    /// Windows these rows completed, queued for an update (0 when the model does not learn).
    pub queued: usize,
    /// Updates written so far.
    pub version: u64,
}

type Job = (Query, oneshot::Sender<std::result::Result<(Forecast, u64), String>>);

struct Served {
    schema: Schema,
    info: ModelInfo,
    jobs: mpsc::Sender<Job>,
    observed: std::sync::Mutex<Observed>,
    learner: Option<Learner>,
}

struct AppState {
    models: BTreeMap<String, Served>,
    slots: Arc<Semaphore>,
    max_concurrency: usize,
    max_body: usize,
}

/// An error answer: status and reason, sent as `{"error": reason}`.
struct Reply(StatusCode, String);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// Load every model (each on its own worker thread) and build the router.
pub fn app(cfg: &ServeConfig) -> Result<Router> {
    if cfg.models.is_empty() {
        bail!("no model to serve: pass --model <run folder> (or name=<run folder>)");
    }
    let mut models = BTreeMap::new();
    for (name, dir) in &cfg.models {
        if models.contains_key(name) {
            bail!("two models named '{name}': name them with --model name=<run folder>");
        }
        let schema = Schema::load(dir)?;
        let (swap_tx, swap_rx) = std::sync::mpsc::channel();
        let jobs = spawn_worker(dir.clone(), cfg.max_batch, swap_rx).with_context(|| format!("cannot load model '{name}' from {}", dir.display()))?;
        let learner = observe::spawn_learner(dir, swap_tx).with_context(|| format!("model '{name}': online updates"))?;
        let info = ModelInfo {
            name: name.clone(),
            model: schema.model.name().into(),
            dataset: schema.dataset.clone(),
            columns: schema.columns.clone(),
            outputs: schema.outputs.clone(),
            seq_len: schema.shape.seq_len,
            pred_len: schema.shape.pred_len,
            freq: schema.freq.clone(),
            probabilistic: schema.model.capabilities().probabilistic,
            online_lr: learner.as_ref().map(|l| l.lr),
        };
        models.insert(name.clone(), Served { schema, info, jobs, observed: Default::default(), learner });
    }
    let state = Arc::new(AppState { models, slots: Arc::new(Semaphore::new(cfg.max_concurrency)), max_concurrency: cfg.max_concurrency, max_body: cfg.max_body });
    Ok(Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }))
        .route("/v1/models", get(list))
        .route("/v1/models/{name}/forecast", post(forecast))
        .route("/v1/models/{name}/observe", post(observe))
        .fallback(|| async { Reply(StatusCode::NOT_FOUND, "no such route: GET /health, GET /v1/models, POST /v1/models/{name}/forecast, POST /v1/models/{name}/observe".into()) })
        .layer(DefaultBodyLimit::max(cfg.max_body))
        .with_state(state))
}

/// Serve until the process is stopped; `ready` gets the bound address (port 0 picks one).
pub async fn serve(cfg: ServeConfig, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let router = app(&cfg)?;
    let listener = tokio::net::TcpListener::bind(cfg.addr).await.with_context(|| format!("cannot listen on {}", cfg.addr))?;
    ready(listener.local_addr()?);
    run(listener, router, cfg.header_timeout, async { tokio::signal::ctrl_c().await.ok(); }).await;
    Ok(())
}

/// Accept connections until `stop`, each served over HTTP/1 by hyper with a timer, so that a
/// client slower than `header_timeout` to send its headers is disconnected; then give the open
/// connections 10 s to finish.
async fn run(listener: tokio::net::TcpListener, router: Router, header_timeout: std::time::Duration, stop: impl std::future::Future<Output = ()>) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut open = tokio::task::JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait and go on.
                Err(_) => { tokio::time::sleep(std::time::Duration::from_millis(50)).await; continue; }
            },
            _ = &mut stop => break,
        };
        while open.try_join_next().is_some() {}
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        open.spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async { while open.join_next().await.is_some() {} }).await;
}

/// Start the server on a background runtime (tests, the load test); returns its address.
pub fn spawn(cfg: ServeConfig) -> Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    let router = app(&cfg)?;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        rt.block_on(async move {
            match tokio::net::TcpListener::bind(cfg.addr).await {
                Ok(listener) => {
                    let _ = tx.send(listener.local_addr().map_err(|e| e.to_string()));
                    run(listener, router, cfg.header_timeout, std::future::pending()).await;
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot listen on {}: {e}", cfg.addr)));
                }
            }
        });
    });
    rx.recv().context("server thread ended")?.map_err(anyhow::Error::msg)
}

/// The worker owning one model: takes every job waiting (up to `max_batch`) and forecasts them
/// in one call, with the latest weights the online updater sent (`swap`) before the batch. A
/// panic in the model answers 500 to that batch and the worker carries on.
fn spawn_worker(dir: PathBuf, max_batch: usize, swap: std::sync::mpsc::Receiver<(strata_models::Model, u64)>) -> Result<mpsc::Sender<Job>> {
    let (tx, mut rx) = mpsc::channel::<Job>(4096);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let device = strata_train::device::compute_device();
        let (checkpoint, mut version) = strata_train::online::live::serving_checkpoint(&dir);
        let mut predictor = match Predictor::load_checkpoint(&dir, checkpoint, &device) {
            Ok(p) => {
                let _ = ready_tx.send(Ok(()));
                p
            }
            Err(e) => {
                let _ = ready_tx.send(Err(format!("{e:#}")));
                return;
            }
        };
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if let Some((model, v)) = swap.try_iter().last() {
                predictor.set_model(model);
                version = v;
            }
            let (queries, replies): (Vec<Query>, Vec<_>) = batch.into_iter().unzip();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| predictor.predict(&queries))) {
                Ok(forecasts) => {
                    for (reply, f) in replies.into_iter().zip(forecasts) {
                        let _ = reply.send(Ok((f, version)));
                    }
                }
                Err(_) => {
                    for reply in replies {
                        let _ = reply.send(Err("the model failed on this batch".into()));
                    }
                }
            }
        }
    });
    ready_rx.recv().context("model worker ended")?.map_err(anyhow::Error::msg)?;
    Ok(tx)
}

async fn list(State(state): State<Arc<AppState>>) -> axum::Json<Vec<ModelInfo>> {
    axum::Json(state.models.values().map(|m| m.info.clone()).collect())
}

async fn forecast(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    axum::extract::Query(params): axum::extract::Query<BTreeMap<String, String>>,
    headers: axum::http::HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let kind = file_kind(&headers);
    let body = match body {
        Ok(b) => b,
        Err(e) => return Reply(e.status(), format!("request body: {} (limit {} bytes)", e.body_text(), state.max_body)).into_response(),
    };
    match forecast_inner(&state, &name, &body, kind, params.get("at").cloned()).await {
        Ok(r) => axum::Json(r).into_response(),
        Err(reply) => reply.into_response(),
    }
}

/// The file type a request body declares (`None`: JSON).
fn file_kind(headers: &axum::http::HeaderMap) -> Option<strata_data::source::raw::FileKind> {
    use strata_data::source::raw::FileKind;
    let ct = headers.get(axum::http::header::CONTENT_TYPE)?.to_str().ok()?.to_ascii_lowercase();
    let ct = ct.split(';').next().unwrap_or("").trim().to_string();
    match ct.as_str() {
        "text/csv" | "text/tab-separated-values" => Some(FileKind::Csv),
        "application/vnd.apache.parquet" | "application/x-parquet" => Some(FileKind::Parquet),
        "application/vnd.apache.arrow.file" | "application/x-feather" => Some(FileKind::Arrow),
        _ => None,
    }
}

/// A file body read as the model's training file was.
fn file_table(schema: &Schema, body: &[u8], kind: strata_data::source::raw::FileKind) -> std::result::Result<InputTable, String> {
    let name = std::path::Path::new("request body");
    let spec = schema.read.clone().unwrap_or_default();
    let frame = strata_data::source::read_frame_bytes(name, body, kind, &spec).map_err(|e| e.to_string())?;
    Ok(InputTable::from_frame("request body".into(), frame, schema.spatial.is_some() && schema.covariates.is_none()))
}

async fn forecast_inner(state: &AppState, name: &str, body: &[u8], kind: Option<strata_data::source::raw::FileKind>, at: Option<String>) -> std::result::Result<ForecastResponse, Reply> {
    let Ok(_slot) = state.slots.try_acquire() else {
        return Err(Reply(StatusCode::SERVICE_UNAVAILABLE, format!("busy: {} requests in flight (the limit); retry later", state.max_concurrency)));
    };
    let served = state.models.get(name).ok_or_else(|| {
        Reply(StatusCode::NOT_FOUND, format!("no model named '{name}'; served: {:?}", state.models.keys().collect::<Vec<_>>()))
    })?;
    let (input, at) = match kind {
        Some(kind) => (file_table(&served.schema, body, kind).map_err(|e| Reply(StatusCode::UNPROCESSABLE_ENTITY, e))?, at),
        None => {
            let req: ForecastRequest = serde_json::from_slice(body).map_err(|e| {
                let status = if e.is_data() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::BAD_REQUEST };
                Reply(status, format!("request body: {e}"))
            })?;
            if req.values.is_empty() {
                let held = served.observed.lock().expect("observed rows");
                if held.rows.is_empty() {
                    return Err(Reply(StatusCode::UNPROCESSABLE_ENTITY, "`values` is empty and nothing was observed: send the context rows, or POST them to /observe first".into()));
                }
                (held.table(&served.schema, 0..held.rows.len()), req.at.or(at))
            } else {
                (to_table(&req).map_err(|e| Reply(StatusCode::UNPROCESSABLE_ENTITY, e))?, req.at.or(at))
            }
        }
    };
    let query = served.schema.query(&input, at.as_deref()).map_err(|e| Reply(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")))?;
    let (tx, rx) = oneshot::channel();
    served.jobs.try_send((query, tx)).map_err(|_| Reply(StatusCode::SERVICE_UNAVAILABLE, "busy: the model's queue is full; retry later".into()))?;
    let (forecast, version) = rx.await.map_err(|_| Reply(StatusCode::INTERNAL_SERVER_ERROR, "the model worker stopped".into()))?.map_err(|e| Reply(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(ForecastResponse { model: name.to_string(), version, forecast })
}

async fn observe(State(state): State<Arc<AppState>>, Path(name): Path<String>, body: std::result::Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return Reply(e.status(), format!("request body: {} (limit {} bytes)", e.body_text(), state.max_body)).into_response(),
    };
    match observe_inner(&state, &name, &body) {
        Ok(r) => axum::Json(r).into_response(),
        Err(reply) => reply.into_response(),
    }
}

fn observe_inner(state: &AppState, name: &str, body: &[u8]) -> std::result::Result<ObserveResponse, Reply> {
    let served = state.models.get(name).ok_or_else(|| Reply(StatusCode::NOT_FOUND, format!("no model named '{name}'; served: {:?}", state.models.keys().collect::<Vec<_>>())))?;
    let req: ForecastRequest = serde_json::from_slice(body).map_err(|e| {
        let status = if e.is_data() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::BAD_REQUEST };
        Reply(status, format!("request body: {e}"))
    })?;
    let input = to_table(&req).map_err(|e| Reply(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let schema = &served.schema;
    let mut held = served.observed.lock().expect("observed rows");
    let added = held.append(schema, &input).map_err(|e| Reply(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let mut queued = 0;
    if let Some(learner) = &served.learner {
        let windows = held.windows(schema, added).map_err(|e| Reply(StatusCode::UNPROCESSABLE_ENTITY, e))?;
        queued = windows.len();
        for w in windows {
            learner.windows.send(w).map_err(|_| Reply(StatusCode::INTERNAL_SERVER_ERROR, "the online updater stopped".into()))?;
        }
    }
    held.trim(Observed::keep(schema));
    let version = served.learner.as_ref().map_or(0, |l| l.version.load(std::sync::atomic::Ordering::SeqCst));
    Ok(ObserveResponse { model: name.to_string(), added, held: held.rows.len(), queued, version })
}

/// The request as a table, or why its shape is wrong.
pub fn to_table(req: &ForecastRequest) -> std::result::Result<InputTable, String> {
    let rows = req.values.len();
    if rows == 0 {
        return Err("`values` is empty".into());
    }
    let width = req.columns.as_ref().map_or(req.values[0].len(), Vec::len);
    if let Some(r) = req.values.iter().position(|row| row.len() != width) {
        let what = if req.columns.is_some() { "`columns` names" } else { "row 0 has" };
        return Err(format!("`values` row {r} has {} numbers; {what} {width}", req.values[r].len()));
    }
    let dates = match &req.timestamps {
        None => None,
        Some(ts) if ts.len() != rows => return Err(format!("`timestamps` has {} entries for {rows} rows of `values`", ts.len())),
        Some(ts) => Some(
            ts.iter()
                .enumerate()
                .map(|(i, t)| strata_data::table::parse_date(t).ok_or_else(|| format!("`timestamps`[{i}] = '{t}' is not a timestamp (e.g. 2018-02-20 23:00:00)")))
                .collect::<std::result::Result<Vec<_>, _>>()?,
        ),
    };
    let values = req.values.iter().flatten().map(|v| v.unwrap_or(f32::NAN)).collect();
    Ok(InputTable { source: "request".into(), columns: req.columns.clone(), dates, values, rows, width })
}
