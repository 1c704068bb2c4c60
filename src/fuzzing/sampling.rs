//! The sampling proxy target: an SDK's request, as arbitrary method, path, headers and body,
//! through the proxy's routes in process, to a loopback stand-in for the X-Ray API that
//! records what reaches it.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use axum::body::Body;
use axum::extract::Request;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::sampling_proxy::{self, SamplingOperation, SamplingProxy};
use crate::telemetry::metrics::Metrics;

/// The largest body the proxy forwards here: small, so the fuzzer reaches the limit.
const MAX_BODY_BYTES: usize = 1024;
/// The stand-in's answer to every forwarded request.
const ANSWER: &str = r#"{"SamplingRuleRecords":[]}"#;
/// Headers the proxy may send upstream: its own, and what signing adds.
const UPSTREAM_HEADERS: [&str; 7] =
    ["host", "content-type", "content-length", "user-agent", "x-amz-date", "authorization", "x-amz-security-token"];
/// Statuses the proxy answers on its own for a sampling call it did not forward.
const REFUSALS: [StatusCode; 4] = [
    StatusCode::BAD_REQUEST,
    StatusCode::REQUEST_TIMEOUT,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
];

/// One request, laid out as lines: the method, the path, `name: value` headers up to an empty
/// line, then the body (sent in chunks that end at each newline). Whatever the request:
/// only `POST` to a sampling path reaches the X-Ray API, with exactly the client's body and
/// only the headers the proxy chose; anything else is answered 404 and sent nowhere; a
/// sampling call not forwarded gets one of the proxy's documented refusals.
pub fn sampling_proxy(data: &[u8]) {
    let Some((request, body)) = request_from(data) else { return };
    let operation = SamplingOperation::of_request(request.method(), request.uri().path());
    let harness = harness();
    let (status, answer) = harness.runtime.block_on(async {
        let response = harness.app.clone().oneshot(request).await.unwrap_or_else(|never: Infallible| match never {});
        let status = response.status();
        let body = response.into_body().collect().await.map(|collected| collected.to_bytes());
        (status, body.expect("the proxy's answer reads back"))
    });
    let seen = std::mem::take(&mut *harness.seen.lock().unwrap_or_else(PoisonError::into_inner));
    match (operation, seen.as_slice()) {
        (None, []) => assert_eq!(status, StatusCode::NOT_FOUND),
        (None, _) => panic!("a request that is no sampling call was forwarded"),
        (Some(operation), [forwarded]) => {
            assert_eq!(forwarded.method, Method::POST);
            assert_eq!(forwarded.path, operation.path());
            assert_eq!(forwarded.body, body, "the body is forwarded byte for byte");
            for name in forwarded.headers.keys() {
                assert!(UPSTREAM_HEADERS.contains(&name.as_str()), "header {name} reached the X-Ray API");
            }
            assert!(forwarded.headers.contains_key("authorization"), "forwarded unsigned");
            assert_eq!((status, &answer[..]), (StatusCode::OK, ANSWER.as_bytes()), "the answer is relayed");
        }
        (Some(_), []) => {
            assert!(REFUSALS.contains(&status), "a sampling call was answered {status} without being forwarded");
            let error: serde_json::Value = serde_json::from_slice(&answer).expect("a refusal is JSON");
            assert!(error.get("__type").is_some_and(serde_json::Value::is_string));
            if body.len() > MAX_BODY_BYTES {
                assert_ne!(status, StatusCode::BAD_REQUEST);
            }
        }
        (Some(_), _) => panic!("one sampling call was forwarded {} times", seen.len()),
    }
}

/// The request laid out in `data`, and its body; `None` when the method, path or body layout
/// is not one an HTTP server would hand on.
fn request_from(data: &[u8]) -> Option<(Request, Bytes)> {
    let mut lines = data.split(|&byte| byte == b'\n');
    let method = Method::from_bytes(lines.next()?).ok()?;
    let uri = Uri::try_from(lines.next()?).ok()?;
    let mut headers = HeaderMap::new();
    let mut consumed = 0;
    for line in lines.by_ref() {
        consumed += line.len() + 1;
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&byte| byte == b':') else { continue };
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(line[colon + 1..].trim_ascii()))
        else {
            continue;
        };
        headers.append(name, value);
    }
    let head_len = data.split(|&byte| byte == b'\n').take(2).map(|line| line.len() + 1).sum::<usize>() + consumed;
    let body = Bytes::copy_from_slice(data.get(head_len..).unwrap_or_default());
    let chunks: Vec<Result<Bytes, Infallible>> =
        body.split_inclusive(|&byte| byte == b'\n').map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect();
    let mut request = Request::new(Body::from_stream(futures_util::stream::iter(chunks)));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Some((request, body))
}

/// What the stand-in X-Ray API received.
#[derive(Debug)]
struct Forwarded {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// The proxy's routes, the stand-in they forward to, and the runtime both run on; made once.
struct Harness {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    seen: Arc<Mutex<Vec<Forwarded>>>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let stand_in = axum::Router::new().fallback(move |request: Request| {
            let recorder = Arc::clone(&recorder);
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
                let forwarded =
                    Forwarded { method: parts.method, path: parts.uri.path().to_owned(), headers: parts.headers, body };
                recorder.lock().unwrap_or_else(PoisonError::into_inner).push(forwarded);
                ([(http::header::CONTENT_TYPE, "application/json")], ANSWER)
            }
        });
        let app = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
            let endpoint: Uri =
                format!("http://{}", listener.local_addr().expect("its address")).parse().expect("a URI");
            tokio::spawn(async move { axum::serve(listener, stand_in).await });
            let credentials = Credentials::new("AKIDFUZZ", "fuzz-secret", None, None, "fuzzing");
            let proxy = SamplingProxy::new(
                endpoint,
                "us-east-1".into(),
                SharedCredentialsProvider::new(credentials),
                Duration::from_secs(5),
            )
            .with_max_body_size(MAX_BODY_BYTES);
            sampling_proxy::app(Arc::new(proxy), Arc::new(Metrics::new()))
        });
        Harness { runtime, app, seen }
    })
}
