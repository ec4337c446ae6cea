//! `POST /releases` through the control API's real router: the query string, the
//! `Authorization` header and the body, as hyper hands them to axum. Behind the router, a
//! recorder stands in for the supervisor (the part under test is the request parsing; staging
//! a release is the daemon tests' business).
//! Properties: nothing panics; the upload operation is reached only with the right bearer token,
//! once, with the body unchanged (streamed to a file and back), and its temporary directory is
//! gone afterwards; the answer is 200 (stored) or 409 (refused) when the upload ran, 400 (bad
//! query or file name), 401 (token), 408 or 413 (body) when it did not.
#![no_main]

use axum::body::Body;
use axum::body::Bytes;
use axum::http::{header, HeaderValue, Request};
use libfuzzer_sys::fuzz_target;
use molt_supervisor::control::{router, ControlApi, HandoffApi, Outcome, Status, UploadInfo};
use molt_supervisor::handoff::wire::{AbsorbQuery, Absorbed, Begun, Done, HandoffInfo, Refused};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tower::ServiceExt;

const TOKEN: &str = "s3cret-token";

#[derive(Default)]
struct Recorder {
    uploads: Mutex<Vec<(usize, UploadInfo)>>,
}

fn outcome(ok: bool) -> Outcome {
    Outcome {
        ok,
        message: String::new(),
        version: None,
        swap: None,
        refusal: None,
    }
}

impl ControlApi for Recorder {
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
    fn status(&self) -> Status {
        unreachable!("the fuzzer only posts uploads")
    }
    fn metrics_text(&self) -> String {
        String::new()
    }
    fn token_matches(&self, given: Option<&str>) -> bool {
        given == Some(TOKEN)
    }
    fn running_version(&self) -> Option<String> {
        None
    }
    fn upload_dir(&self) -> PathBuf {
        upload_dir().to_path_buf()
    }
    fn upload(self: Arc<Self>, library: &Path, info: &UploadInfo) -> Outcome {
        let len = std::fs::metadata(library)
            .expect("the streamed upload is there")
            .len() as usize;
        self.uploads.lock().unwrap().push((len, info.clone()));
        // Refuse odd-sized bodies, so both answers of an upload are exercised.
        outcome(len % 2 == 0)
    }
    fn activate(self: Arc<Self>, _: &str) -> Outcome {
        unreachable!("the fuzzer only posts uploads")
    }
    fn rollback(self: Arc<Self>) -> Outcome {
        unreachable!("the fuzzer only posts uploads")
    }
}

/// Where the route streams bodies to: on tmpfs when there is one (this runs millions of times).
fn upload_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("molt-fuzz-upload-{}", std::process::id()))
    })
}

/// The handoff routes are not posted to by this target.
impl HandoffApi for Recorder {
    fn handoff_info(&self) -> HandoffInfo {
        unreachable!("the fuzzer only posts uploads")
    }
    fn handoff_begin(
        &self,
        _: &str,
        _: &str,
        _: Option<u32>,
        _: Duration,
        _: Duration,
        _: Duration,
    ) -> Result<Begun, Refused> {
        unreachable!("the fuzzer only posts uploads")
    }
    fn handoff_state(&self, _: &str) -> Result<(String, u32, Bytes), Refused> {
        unreachable!("the fuzzer only posts uploads")
    }
    fn handoff_commit(&self, _: &str) -> Result<Done, Refused> {
        unreachable!("the fuzzer only posts uploads")
    }
    fn handoff_abort(&self, _: &str) -> Result<Done, Refused> {
        unreachable!("the fuzzer only posts uploads")
    }
    fn absorb(&self, _: &str, _: &str, _: &str, _: u32, _: Vec<u8>) -> Result<Absorbed, Refused> {
        unreachable!("the fuzzer only posts uploads")
    }
    fn absorb_query(&self, _: &str, _: bool) -> AbsorbQuery {
        unreachable!("the fuzzer only posts uploads")
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

// The input: `query \n authorization \n body` (missing parts are empty / absent).
fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let query = parts.next().unwrap_or_default();
    let auth = parts.next();
    let body = parts.next().unwrap_or_default().to_vec();
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let Ok(request) = Request::builder()
        .method("POST")
        .uri(format!("/releases?{query}"))
        .body(Body::from(body.clone()))
    else {
        return; // hyper would have refused the request line before the router saw it
    };
    let mut request = request;
    let auth = auth.and_then(|a| HeaderValue::from_bytes(a).ok());
    let authorized = auth
        .as_ref()
        .is_some_and(|a| a.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
    if let Some(auth) = auth {
        request.headers_mut().insert(header::AUTHORIZATION, auth);
    }
    let recorder = Arc::new(Recorder::default());
    let app = router(recorder.clone());
    let status = runtime()
        .block_on(app.oneshot(request))
        .expect("the router is infallible")
        .status()
        .as_u16();
    let uploads = recorder.uploads.lock().unwrap();
    match status {
        200 | 409 => {
            // The route removed its temporary directory after the upload.
            let left = std::fs::read_dir(upload_dir()).map_or(0, |d| d.count());
            assert_eq!(left, 0, "the upload's temporary directory was left behind");
            assert!(authorized, "an upload ran without the token");
            assert_eq!(uploads.len(), 1, "one request, one upload");
            assert_eq!(uploads[0].0, body.len(), "the body changed on its way");
        }
        400 | 401 | 408 | 413 => assert!(uploads.is_empty(), "{status} but the upload ran"),
        other => panic!("unexpected answer {other}"),
    }
    if !authorized {
        assert!(uploads.is_empty());
    }
});
