//! `strata serve` under abuse, on 127.0.0.1 only and bounded in count and time
//! (docs/reliability.md): malformed, random, deeply nested and oversized bodies, slow
//! (slowloris-style) connections held open, and more concurrent clients than the server admits.
//! No crash, every refusal a 4xx (or 503 when busy) with a reason, slow clients disconnected
//! after the header timeout, bounded memory, and the latency of well-formed requests under that
//! load recorded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Rng, data_root, tmp, train};

const CONFIG: &str = r#"
[data]
dataset = "etth1"
seq_len = 96
pred_len = 24
[model]
name = "dlinear"
[train]
epochs = 1
max_steps_per_epoch = 5
"#;

/// The process's peak resident memory (VmHWM), bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()).unwrap_or(0) * 1024
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(60))).build().into()
}

fn post(agent: &ureq::Agent, url: &str, body: &[u8], content_type: &str) -> Result<(u16, String), String> {
    let mut r = agent.post(url).header("content-type", content_type).send(body).map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    Ok((status, r.body_mut().read_to_string().unwrap_or_default()))
}

/// A well-formed request: the last 96 hours of ETTh1's first 2,000 rows.
fn valid_body() -> Vec<u8> {
    let text = std::fs::read_to_string(data_root().join("ETTh1/ETTh1.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows: Vec<Vec<String>> = lines.take(2000).map(|l| l.split(',').map(String::from).collect()).collect();
    let last = &rows[rows.len() - 96..];
    let timestamps: Vec<&str> = last.iter().map(|r| r[0].as_str()).collect();
    let values: Vec<Vec<f64>> = last.iter().map(|r| r[1..].iter().map(|v| v.parse().unwrap()).collect()).collect();
    serde_json::json!({ "columns": &header[1..], "timestamps": timestamps, "values": values }).to_string().into_bytes()
}

#[test]
fn the_server_survives_abuse_and_keeps_answering() {
    let dir = tmp("abuse");
    let run = train(&dir, "etth1", CONFIG);
    let cfg = strata_serve::ServeConfig { models: vec![("etth1".into(), run)], addr: ([127, 0, 0, 1], 0).into(), max_body: 1 << 20, max_concurrency: 16, max_batch: 64, header_timeout: Duration::from_secs(2) };
    let addr = strata_serve::spawn(cfg).unwrap();
    let url = format!("http://{addr}/v1/models/etth1/forecast");
    let good = valid_body();
    let a = agent();
    assert_eq!(post(&a, &url, &good, "application/json").unwrap().0, 200);
    let rss0 = peak_rss();

    // 1. Malformed bodies: mutations of a good one, random bytes, deep nesting, wrong types.
    let mut rng = Rng(0xab05e);
    let (mut refused, mut answered) = (0, 0);
    for case in 0..300 {
        let mut body = good.clone();
        match case % 6 {
            0 => body.truncate(rng.below(body.len())),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(body.len());
                    body[i] ^= 1 << rng.below(8);
                }
            }
            2 => body = (0..rng.below(4096)).map(|_| rng.next_u64() as u8).collect(),
            3 => body = [&b"{\"values\": "[..], &vec![b'['; 50_000 + rng.below(50_000)][..]].concat(),
            4 => {
                let i = rng.below(body.len());
                body.splice(i..i, b"1e999,null,\"x\",".iter().copied());
            }
            _ => body = format!("date,OT\n{}", "2018-01-01 00:00:00,1\n".repeat(1 + rng.below(200))).into_bytes(),
        }
        let ct = if case % 6 == 5 || case % 7 == 0 { "text/csv" } else { "application/json" };
        let (status, text) = post(&a, &url, &body, ct).unwrap_or_else(|e| panic!("case {case}: the connection failed: {e}"));
        assert!(status < 500, "case {case}: {status} {text}");
        if status >= 400 {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("case {case}: a reason as JSON: {text}"));
            assert!(v["error"].as_str().is_some_and(|r| !r.is_empty()), "case {case}: {text}");
            refused += 1;
        } else {
            answered += 1;
        }
    }
    // 2. Oversized: a 5 MiB body is refused once the 1 MiB limit is passed (the server answers
    //    and closes while the client is still sending: the sender's broken pipe is expected).
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "POST /v1/models/etth1/forecast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", 5 << 20).unwrap();
    let mut sender = s.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let chunk = [b' '; 1 << 16];
        for _ in 0..80 {
            if sender.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut answer = vec![0u8; 4096];
    let n = s.read(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(text.starts_with("HTTP/1.1 413") && text.contains("limit"), "{text}");
    drop(s);
    sending.join().unwrap();

    // 3. Slow clients: 200 connections trickling a request's headers, one byte every 100 ms,
    //    held open while well-formed traffic runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow: Vec<_> = (0..200)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let Ok(mut s) = TcpStream::connect(addr) else { return 0u8 };
                s.set_read_timeout(Some(Duration::from_millis(50))).ok();
                let head = b"POST /v1/models/etth1/forecast HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                let mut refused = false;
                for &b in head.iter().cycle() {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    if s.write_all(&[b]).is_err() {
                        refused = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                // 1 when the server had closed the connection.
                let mut buf = [0u8; 64];
                (refused || matches!(s.read(&mut buf), Ok(0)) || matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)) as u8
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // 4. 48 clients, 10 well-formed requests each, against 16 admitted at once.
    let t0 = Instant::now();
    let clients: Vec<_> = (0..48)
        .map(|_| {
            let (url, good) = (url.clone(), good.clone());
            std::thread::spawn(move || {
                let a = agent();
                (0..10)
                    .map(|_| {
                        let s = Instant::now();
                        let (status, text) = post(&a, &url, &good, "application/json").expect("a well-formed request is answered");
                        (status, text, s.elapsed())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(u16, String, Duration)> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let wall = t0.elapsed();
    // The slow clients outlast the 2 s header timeout: the server has closed them.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(t0.elapsed()));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let closed: u32 = slow.into_iter().map(|h| h.join().unwrap() as u32).sum();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    for (status, text, _) in results.iter().filter(|r| r.0 != 200) {
        assert_eq!(*status, 503, "{text}");
        assert!(text.contains("busy"), "{text}");
    }
    let mut lat: Vec<Duration> = results.iter().filter(|r| r.0 == 200).map(|r| r.2).collect();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    let grown = peak_rss().saturating_sub(rss0);
    eprintln!(
        "abuse: {refused} malformed bodies refused with a 4xx and a reason, {answered} still valid and answered; 5 MiB body 413; \
         {} well-formed requests from 48 clients beside 200 slow connections in {:.1} s: {ok} answered (200), {} busy (503); \
         latency p50 {:.1} ms, p99 {:.1} ms; {closed} slow connections closed by the server; peak memory grew {} MiB",
        results.len(),
        wall.as_secs_f64(),
        results.len() - ok,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        grown >> 20
    );
    assert!(ok >= results.len() / 2, "only {ok} of {} answered", results.len());
    assert_eq!(closed, 200, "slow connections still open after the header timeout");
    assert!(pct(0.99) < Duration::from_secs(10), "p99 {:?}", pct(0.99));
    assert!(grown < 1 << 30, "peak memory grew by {grown} bytes");
    // Still healthy.
    let mut r = a.get(format!("http://{addr}/health")).call().unwrap();
    assert!(r.body_mut().read_to_string().unwrap().contains("ok"));
}
