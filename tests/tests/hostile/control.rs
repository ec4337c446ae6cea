//! The control API under hostile clients: unauthenticated uploads (memory), oversized bodies,
//! slow and idle connections, a connection flood, short tokens.

use super::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

const TOKEN: &str = "hostile-tests-token-0123";

/// A supervisor with the control token, counting `n` on v1.
fn with_token(case: &Case, n: u64) -> (MoltProcess, u64) {
    let token = case.dir.write("token", format!("{TOKEN}\n"));
    case.serving(case.opts(["--token-file".to_owned(), path(&token)]), n)
}

/// Opens a connection and sends `head` (a request's head, or part of it).
fn send_head(addr: SocketAddr, head: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connecting");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(head.as_bytes()).expect("sending the head");
    stream
}

/// Reads whatever answer comes (up to 64 KiB, until the server closes or 30 s pass).
fn read_answer(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                got += n;
                let text = String::from_utf8_lossy(&buf[..got]);
                // Headers and a body with a content-length: stop once it is all here.
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head.lines().find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    });
                    if len.is_some_and(|len| body.len() >= len) {
                        break;
                    }
                }
            }
        }
    }
    String::from_utf8_lossy(&buf[..got]).into_owned()
}

/// `VmHWM` (peak resident memory) of `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

fn upload_head(len: u64, token: Option<&str>) -> String {
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    format!(
        "POST /releases?app=counter&version=6.6.6&schema=1&abi=2&file=libx.so&sha256={} HTTP/1.1\r\n\
         host: molt\r\ncontent-length: {len}\r\n{auth}\r\n",
        "0".repeat(64)
    )
}

#[test]
fn six_parallel_unauthenticated_1_gb_uploads_leave_the_memory_peak_where_it_was() {
    const GB: u64 = 1_000_000_000;
    let case = Case::new("control-memory");
    let (molt, n) = with_token(&case, 11);
    let before_trees = case.trees();
    let before = peak_rss_kib(molt.pid());
    let addr = molt.addrs.control;
    let answers: Vec<(String, u64)> = std::thread::scope(|s| {
        let uploads: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(move || {
                    let mut stream = send_head(addr, &upload_head(GB, None));
                    // Send the gigabyte until the server stops taking it.
                    let chunk = vec![0u8; 1 << 20];
                    let mut sent = 0u64;
                    stream.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
                    while sent < GB {
                        match stream.write(&chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => sent += k as u64,
                        }
                    }
                    (read_answer(&mut stream), sent)
                })
            })
            .collect();
        uploads.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let after = peak_rss_kib(molt.pid());
    for (answer, sent) in &answers {
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(
            answer.contains("unauthorized: POST /releases needs `Authorization: Bearer <token>`"),
            "{answer}"
        );
        assert!(answer.contains("version 1.0.0 still serving"), "{answer}");
        eprintln!("an unauthenticated upload got its 401 after the client sent {sent} bytes");
    }
    eprintln!("peak RSS (VmHWM) before {before} KiB, after six 1 GB unauthenticated uploads {after} KiB");
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    still_serving(&molt, n);
    assert_eq!(case.trees(), before_trees);
}

#[test]
fn an_oversized_content_length_is_refused_at_once_before_any_body_byte() {
    let case = Case::new("control-oversize");
    let (molt, n) = with_token(&case, 4);
    let before = case.trees();
    let started = Instant::now();
    // 2 GB announced, nothing sent: the answer must not wait for the body.
    let mut stream = send_head(molt.addrs.control, &upload_head(2_000_000_000, Some(TOKEN)));
    let answer = read_answer(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(
            "POST /releases refused: its body of 2000000000 bytes or more is over the 1073741824-byte limit"
        ),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // The small calls have a small limit.
    let mut stream = send_head(
        molt.addrs.control,
        &format!("POST /activate?version=1.0.0 HTTP/1.1\r\nhost: m\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 100000\r\n\r\n"),
    );
    let answer = read_answer(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("over the 16384-byte limit"), "{answer}");
    still_serving(&molt, n);
    assert_eq!(case.trees(), before);
}

#[test]
fn slow_and_idle_connections_are_capped_and_closed_and_traffic_never_stops() {
    let case = Case::new("control-slowloris");
    let (molt, n) = case.serving(case.opts(Vec::<String>::new()), 9);
    let addr = molt.addrs.control;
    // Slowloris: 100 connections that send half a request head and stall, and 20 that send
    // nothing at all.
    let mut slow: Vec<TcpStream> = (0..100)
        .map(|_| send_head(addr, "GET /status HTTP/1.1\r\nhost: m\r\nx-slow: "))
        .collect();
    slow.extend((0..20).map(|_| TcpStream::connect(addr).unwrap()));
    std::thread::sleep(Duration::from_millis(300));
    // Past the cap: a clear answer at once, not a hang.
    let mut extra = send_head(addr, "GET /healthz HTTP/1.1\r\nhost: m\r\n\r\n");
    let answer = read_answer(&mut extra);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("control API is at its cap of 64 open connections; retry later"),
        "{answer}"
    );
    // App traffic is another listener: it keeps serving.
    still_serving_traffic(&molt, n);
    // Within the header-read timeout (10 s) the stalled connections are closed by the server...
    let started = Instant::now();
    for stream in &mut slow[..64] {
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf) {
            // Closed (0), or closed after an answer; either way the server let go.
            Ok(n) => assert!(n <= buf.len()),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "a stalled connection stayed open: {e}"
            ),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    // ...and well-behaved clients are served again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut probe = send_head(
            addr,
            "GET /healthz HTTP/1.1\r\nhost: m\r\nconnection: close\r\n\r\n",
        );
        let answer = read_answer(&mut probe);
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the control API did not recover: {answer}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(slow);
    still_serving(&molt, n);
    assert!(
        molt.log()
            .contains("connection cap reached: answering 503 and closing"),
        "{}",
        molt.log()
    );
}

/// `GET /count` on the traffic port only.
#[test]
fn request_bodies_that_stall_are_answered_408_and_let_go() {
    let case = Case::new("app-stalled-bodies");
    let (molt, n) = case.serving(case.opts(["--body-timeout", "2s"]), 4);
    let addr = molt.addrs.listen;
    // Ten uploads announce 16 MiB less a byte, send 1 MiB of it, and stall.
    let chunk = vec![b'x'; 1 << 20];
    let mut stalled: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut s = send_head(
                addr,
                &format!(
                    "POST /incr HTTP/1.1\r\nhost: m\r\ncontent-length: {}\r\n\r\n",
                    (16 << 20) - 1
                ),
            );
            s.write_all(&chunk).expect("sending part of the body");
            s
        })
        .collect();
    // Traffic goes on meanwhile.
    still_serving_traffic(&molt, n);
    // Each is answered 408 once the body deadline has passed, and the server lets it go.
    let started = Instant::now();
    for stream in &mut stalled {
        let answer = read_answer(stream);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains("request body not received within 2s (1048576 bytes came)"),
            "{answer}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    // Nothing of theirs reached the app: the count is what it was.
    still_serving_traffic(&molt, n);
}

fn still_serving_traffic(molt: &MoltProcess, n: u64) {
    assert_eq!(count(molt), n);
}

#[test]
fn tokens_shorter_than_16_bytes_are_refused_at_start() {
    let case = Case::new("control-short-token");
    for token in ["x", "fifteen-bytes!!"] {
        let file = case.dir.write("short-token", format!("{token}\n"));
        let stderr = start_refused(&case, &["--token-file", &path(&file)]);
        assert!(
            stderr.contains(&format!(
                "refusing a control API token of {} bytes: tokens must be at least 16 bytes",
                token.len()
            )),
            "{stderr}"
        );
    }
}

#[test]
fn a_huge_version_in_a_request_is_cut_short_everywhere_it_is_recorded() {
    let case = Case::new("control-huge-version");
    let (molt, n) = with_token(&case, 2);
    // 21,838 control characters: escaped as JSON, each takes six bytes, in every place the
    // refusal quotes the version.
    let version = "%01".repeat(21_838);
    // Sent by hand: the URL is longer than the HTTP client builds.
    let mut stream = send_head(
        molt.addrs.control,
        &format!(
            "POST /activate?version={version} HTTP/1.1\r\nHost: molt\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    let answer = read_answer(&mut stream);
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 409"), "{head}");
    assert!(body.len() < 32 * 1024, "a {} byte answer", body.len());
    assert!(body.contains("bytes cut"), "{body}");
    let status = http()
        .get(molt.control_url("/status"))
        .send()
        .and_then(|r| r.text())
        .expect("GET /status");
    assert!(status.len() < 32 * 1024, "a {} byte /status", status.len());
    // The supervisor's report on the volume stays readable: a push after it is confirmed by
    // this supervisor, not passed over as unreadable.
    let reports = case
        .volume
        .join(APP)
        .join(molt_supervisor::volume::SUPERVISORS_DIR);
    for entry in std::fs::read_dir(&reports).unwrap().flatten() {
        let len = entry.metadata().unwrap().len();
        assert!(len < 32 * 1024, "a {len} byte report {:?}", entry.path());
    }
    still_serving(&molt, n);
    let said = ok(&["push", &lib("counter_v2"), "--volume", &path(&case.volume)]);
    assert!(said.contains("runs on 1 supervisor"), "{said}");
    assert!(said.contains(&format!("pid {}", molt.pid())), "{said}");
    assert_eq!(count(&molt), n, "{}", molt.log());
    assert!(molt.terminate().success());
}
