//! X-Ray sampling proxy tests: captured SDK sampling calls go through `app()` (in process) and
//! `serve()` (on 127.0.0.1:0) to a loopback fake X-Ray API that recomputes each request's SigV4
//! signature with `aws-sigv4` from exactly what it received, and answers in the API's JSON shape.

use std::convert::Infallible;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use waggle::limits::{MemoryBudget, ServerLimits};
use waggle::sampling_proxy::{self, SamplingProxy};
use waggle::telemetry::metrics::Metrics;

/// Real bodies sent by the Python X-Ray SDK (botocore) and the Rust AWS SDK.
const PYTHON_GET_SAMPLING_RULES: &[u8] = include_bytes!("data/run1_002_xray_tcp_GetSamplingRules.bin");
const PYTHON_SAMPLING_TARGETS: &[u8] = include_bytes!("data/run2json_011_xray_tcp_SamplingTargets.bin");
const RUST_SDK_GET_SAMPLING_RULES: &[u8] = include_bytes!("data/rustsdk_002_xray_tcp_GetSamplingRules.bin");

const ACCESS_KEY: &str = "AKIDWAGGLETEST000001";
const SECRET_KEY: &str = "waggle/Test+Secret/Key0000000000000000000";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLEwaggleSessionToken//tokenpart==";
const REGION: &str = "eu-west-1";
const TIMEOUT: Duration = Duration::from_secs(10);

const RULES_BODY: &str = r#"{"SamplingRuleRecords":[{"SamplingRule":{"RuleName":"Cruddur","RuleARN":"arn:aws:xray:eu-west-1:123456789012:sampling-rule/Cruddur","ResourceARN":"*","Priority":9000,"FixedRate":0.1,"ReservoirSize":5,"ServiceName":"backend-flask","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"*","Version":1,"Attributes":{}},"CreatedAt":1.795e9,"ModifiedAt":1.795e9},{"SamplingRule":{"RuleName":"Default","RuleARN":"arn:aws:xray:eu-west-1:123456789012:sampling-rule/Default","ResourceARN":"*","Priority":10000,"FixedRate":0.05,"ReservoirSize":1,"ServiceName":"*","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"*","Version":1,"Attributes":{}},"CreatedAt":0.0,"ModifiedAt":1.795e9}]}"#;
const TARGETS_BODY: &str = r#"{"LastRuleModification":1.795e9,"SamplingTargetDocuments":[{"RuleName":"Default","FixedRate":0.05,"ReservoirQuota":1,"ReservoirQuotaTTL":1.7952e9,"Interval":10}],"UnprocessedStatistics":[]}"#;
const SUMMARIES_BODY: &str = r#"{"SamplingStatisticSummaries":[]}"#;

// ---------------------------------------------------------------------------------------------
// A fake X-Ray API that checks signatures.

/// One request the fake X-Ray API received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
    /// `Ok` when the signature recomputed from the request matches the one it carries.
    signature: Result<(), String>,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("")
    }

    fn signed_headers(&self) -> String {
        authorization_field(self.header("authorization"), "SignedHeaders=").unwrap_or_default().to_owned()
    }

    fn credential_scope(&self) -> String {
        authorization_field(self.header("authorization"), "Credential=").unwrap_or_default().to_owned()
    }
}

/// How the fake answers.
#[derive(Debug, Clone)]
enum Answer {
    /// The X-Ray API's answer for each sampling operation.
    Api,
    /// A fixed status, content type and body, for every request.
    Fixed { status: StatusCode, content_type: &'static str, body: &'static str, error_type: Option<&'static str> },
    /// Never answers.
    Hang,
}

#[derive(Clone)]
struct FakeState {
    credentials: Credentials,
    answer: Answer,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct FakeXray {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl FakeXray {
    async fn start(credentials: Credentials, answer: Answer) -> FakeXray {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake X-Ray API");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = FakeState { credentials, answer, seen: Arc::clone(&seen) };
        let app = axum::Router::new().fallback(fake_xray).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeXray { url, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }

    fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "the fake X-Ray API should have seen exactly one request: {seen:#?}");
        seen.into_iter().next().expect("one request")
    }
}

impl Drop for FakeXray {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fake_xray(State(state): State<FakeState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
    let signature = verify_signature(&parts.method, &path_and_query, &parts.headers, &body, &state.credentials);
    let valid = signature.is_ok();
    state.seen.lock().expect("seen lock").push(Seen {
        method: parts.method.clone(),
        path_and_query,
        headers: parts.headers.clone(),
        body,
        signature,
    });
    if !valid {
        return json_response(
            StatusCode::FORBIDDEN,
            "application/json",
            r#"{"message":"The request signature we calculated does not match the signature you provided."}"#,
            Some("InvalidSignatureException"),
        );
    }
    match state.answer {
        Answer::Hang => std::future::pending().await,
        Answer::Fixed { status, content_type, body, error_type } => {
            json_response(status, content_type, body, error_type)
        }
        Answer::Api => match parts.uri.path() {
            "/GetSamplingRules" => json_response(StatusCode::OK, "application/json", RULES_BODY, None),
            "/SamplingTargets" => json_response(StatusCode::OK, "application/json", TARGETS_BODY, None),
            "/SamplingStatisticSummaries" => json_response(StatusCode::OK, "application/json", SUMMARIES_BODY, None),
            _ => json_response(StatusCode::NOT_FOUND, "application/json", r#"{"message":"no such operation"}"#, None),
        },
    }
}

fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
    error_type: Option<&str>,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers.insert("x-amzn-requestid", HeaderValue::from_static("0f5d1b8e-1111-2222-3333-444455556666"));
    headers.insert("x-fake-upstream-only", HeaderValue::from_static("not relayed"));
    if let Some(error_type) = error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_str(error_type).expect("error type"));
    }
    response
}

/// A `Key=value` field of an `Authorization: AWS4-HMAC-SHA256 ...` header.
fn authorization_field<'a>(authorization: &'a str, key: &str) -> Option<&'a str> {
    let fields = authorization.strip_prefix("AWS4-HMAC-SHA256 ")?;
    fields.split(',').map(str::trim).find_map(|field| field.strip_prefix(key))
}

/// Recomputes the request's SigV4 signature with `aws-sigv4`, over exactly the headers its
/// `SignedHeaders` lists, the time in its `x-amz-date`, the region and service in its scope,
/// and the body received; `Ok` when the whole `Authorization` header comes out the same.
fn verify_signature(
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    credentials: &Credentials,
) -> Result<(), String> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let authorization = text("authorization").ok_or("no Authorization header")?;
    let signed_headers = authorization_field(authorization, "SignedHeaders=").ok_or("no SignedHeaders")?;
    let scope = authorization_field(authorization, "Credential=").ok_or("no Credential")?;
    let scope_parts: Vec<&str> = scope.split('/').collect();
    let [access_key, _date, region, service, "aws4_request"] = scope_parts[..] else {
        return Err(format!("malformed credential scope {scope:?}"));
    };
    if access_key != credentials.access_key_id() {
        return Err(format!("unknown access key {access_key}"));
    }
    let time = parse_amz_date(text("x-amz-date").ok_or("no x-amz-date")?)?;
    let host = text("host").ok_or("no Host header")?;
    // x-amz-date and x-amz-security-token are added by the signer from the time and credentials.
    let mut signable_headers = Vec::new();
    for name in signed_headers.split(';') {
        if name == "x-amz-date" || name == "x-amz-security-token" {
            continue;
        }
        let values: Vec<&str> = headers.get_all(name).iter().filter_map(|value| value.to_str().ok()).collect();
        if values.is_empty() {
            return Err(format!("signed header {name} is missing"));
        }
        for value in values {
            signable_headers.push((name, value));
        }
    }
    if signed_headers.split(';').any(|name| name == "x-amz-security-token")
        && text("x-amz-security-token") != credentials.session_token()
    {
        return Err("x-amz-security-token does not match the session token".into());
    }
    let uri = format!("http://{host}{path_and_query}");
    let signable = SignableRequest::new(method.as_str(), uri, signable_headers.into_iter(), SignableBody::Bytes(body))
        .map_err(|error| error.to_string())?;
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|error| error.to_string())?
        .into();
    let (instructions, _) = sign(signable, &params).map_err(|error| error.to_string())?.into_parts();
    let expected = instructions
        .headers()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.to_owned())
        .ok_or("the signer produced no Authorization header")?;
    if expected == authorization {
        Ok(())
    } else {
        Err(format!("signature mismatch: expected {expected:?}, got {authorization:?}"))
    }
}

/// `20261121T053437Z` as a time.
fn parse_amz_date(text: &str) -> Result<SystemTime, String> {
    let bad = || format!("malformed x-amz-date {text:?}");
    if text.len() != 16 || !text.is_ascii() || &text[8..9] != "T" || !text.ends_with('Z') {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<i64>().map_err(|_| bad());
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).map_err(|_| bad())?))
}

// ---------------------------------------------------------------------------------------------
// Credentials providers.

fn static_credentials(session_token: Option<&str>) -> Credentials {
    Credentials::new(ACCESS_KEY, SECRET_KEY, session_token.map(str::to_owned), None, "waggle-test")
}

/// Has no credentials, like a machine without keys, profile or role.
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
            "no providers in chain provided credentials",
        )))
    }
}

/// Static credentials that count how often they were asked for.
#[derive(Debug)]
struct CountingCredentials {
    credentials: Credentials,
    calls: Arc<AtomicUsize>,
}

impl ProvideCredentials for CountingCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(self.credentials.clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy under test.

struct Proxy {
    app: axum::Router,
    metrics: Arc<Metrics>,
}

fn proxy_to(endpoint: &str, credentials: SharedCredentialsProvider, timeout: Duration) -> Proxy {
    let endpoint = sampling_proxy::parse_endpoint(endpoint).expect("a valid endpoint");
    let proxy = Arc::new(SamplingProxy::new(endpoint, REGION.to_owned(), credentials, timeout));
    let metrics = Arc::new(Metrics::new());
    Proxy { app: sampling_proxy::app(proxy, Arc::clone(&metrics)), metrics }
}

fn proxy_for(fake: &FakeXray, credentials: Credentials) -> Proxy {
    proxy_to(&fake.url, SharedCredentialsProvider::new(credentials), TIMEOUT)
}

/// What a body refused for memory is told to wait, in the tests below.
const RETRY_AFTER: Duration = Duration::from_secs(3);

/// A proxy to `fake` whose request bodies take their room from `budget`.
fn proxy_within(fake: &FakeXray, budget: MemoryBudget) -> Proxy {
    let endpoint = sampling_proxy::parse_endpoint(&fake.url).expect("a valid endpoint");
    let credentials = SharedCredentialsProvider::new(static_credentials(None));
    let proxy = Arc::new(SamplingProxy::new(endpoint, REGION.to_owned(), credentials, TIMEOUT));
    let metrics = Arc::new(Metrics::new());
    let limits = ServerLimits { budget, retry_after: RETRY_AFTER, ..ServerLimits::default() };
    Proxy { app: sampling_proxy::app_within(proxy, Arc::clone(&metrics), &limits), metrics }
}

/// The headers the Python SDK (botocore, unsigned) sent to the daemon's TCP port.
fn python_sdk_headers(body_len: usize) -> Vec<(&'static str, String)> {
    vec![
        ("host", "127.0.0.1:2000".into()),
        ("accept-encoding", "identity".into()),
        ("content-type", "application/json".into()),
        (
            "user-agent",
            "Botocore/1.44.5 ua/2.1 os/linux#6.18.44-fc-v657 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython \
             m/Z,b,N,E cfg/retry-mode#standard"
                .into(),
        ),
        ("amz-sdk-invocation-id", "bc20b1f1-5c4e-4c98-b0ad-a657d04631ad".into()),
        ("amz-sdk-request", "attempt=1; max=3".into()),
        ("content-length", body_len.to_string()),
    ]
}

fn request(method: Method, path: &str, headers: &[(&str, String)], body: impl Into<Bytes>) -> Request {
    let mut builder = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Body::from(body.into())).expect("a valid request")
}

fn sdk_request(path: &str, body: &'static [u8]) -> Request {
    request(Method::POST, path, &python_sdk_headers(body.len()), Bytes::from_static(body))
}

struct Answered {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answered {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("")
    }
}

async fn call(proxy: &Proxy, request: Request) -> Answered {
    let response = proxy.app.clone().oneshot(request).await.unwrap_or_else(|never: Infallible| match never {});
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("the proxy's answer body").to_bytes();
    Answered { status: parts.status, headers: parts.headers, body }
}

fn rejected(metrics: &Metrics, reason: &'static str) -> u64 {
    metrics
        .rejected_requests
        .get_or_create(&Metrics::refusal(waggle::model::Receiver::XrayTcp, waggle::model::Signal::Traces, reason))
        .get()
}

/// The headers the proxy may send upstream, and nothing else.
const ALLOWED_UPSTREAM_HEADERS: [&str; 7] =
    ["host", "content-type", "content-length", "x-amz-date", "authorization", "x-amz-security-token", "user-agent"];

fn assert_minimal_headers(seen: &Seen) {
    for name in seen.headers.keys() {
        assert!(ALLOWED_UPSTREAM_HEADERS.contains(&name.as_str()), "header {name} reached the upstream: {seen:#?}");
    }
    assert!(seen.header("user-agent").starts_with("waggle/"), "{seen:#?}");
}

// ---------------------------------------------------------------------------------------------
// Forwarding and signing.

#[tokio::test]
async fn get_sampling_rules_is_signed_for_xray_in_the_region_and_the_answer_is_relayed() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let proxy = proxy_for(&fake, static_credentials(None));

    let answered = call(&proxy, sdk_request("/GetSamplingRules", PYTHON_GET_SAMPLING_RULES)).await;

    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    assert_eq!(answered.text(), RULES_BODY, "the upstream body comes back byte for byte");
    assert_eq!(answered.header("content-type"), "application/json");
    assert_eq!(answered.header("x-amzn-requestid"), "0f5d1b8e-1111-2222-3333-444455556666");
    assert_eq!(answered.header("x-fake-upstream-only"), "", "only the documented upstream headers are relayed");
    let seen = fake.only();
    assert_eq!(seen.signature, Ok(()), "{seen:#?}");
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.path_and_query, "/GetSamplingRules");
    assert_eq!(&seen.body[..], PYTHON_GET_SAMPLING_RULES);
    let scope = seen.credential_scope();
    assert!(scope.starts_with(&format!("{ACCESS_KEY}/")), "{scope}");
    assert!(scope.ends_with(&format!("/{REGION}/xray/aws4_request")), "signed for service xray in {REGION}: {scope}");
    assert_eq!(seen.signed_headers(), "content-length;content-type;host;x-amz-date");
    assert_eq!(seen.header("host"), fake.url.trim_start_matches("http://"));
    assert_eq!(seen.header("content-length"), PYTHON_GET_SAMPLING_RULES.len().to_string());
    assert_eq!(seen.header("content-type"), "application/json");
    assert_minimal_headers(&seen);
    assert_eq!(rejected(&proxy.metrics, "not_found"), 0);
}

#[tokio::test]
async fn sampling_targets_and_statistic_summaries_are_forwarded_too() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let proxy = proxy_for(&fake, static_credentials(None));

    let targets = call(&proxy, sdk_request("/SamplingTargets", PYTHON_SAMPLING_TARGETS)).await;
    let summaries = call(&proxy, sdk_request("/SamplingStatisticSummaries", b"{}")).await;

    assert_eq!(targets.status, StatusCode::OK, "{}", targets.text());
    assert_eq!(targets.json()["SamplingTargetDocuments"][0]["RuleName"], "Default");
    assert_eq!(summaries.status, StatusCode::OK, "{}", summaries.text());
    assert_eq!(summaries.text(), SUMMARIES_BODY);
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path_and_query, "/SamplingTargets");
    assert_eq!(&seen[0].body[..], PYTHON_SAMPLING_TARGETS);
    assert_eq!(seen[1].path_and_query, "/SamplingStatisticSummaries");
    for request in &seen {
        assert_eq!(request.signature, Ok(()), "{request:#?}");
        assert_minimal_headers(request);
    }
}

#[tokio::test]
async fn headers_added_by_the_client_or_a_mesh_are_neither_signed_nor_forwarded() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let proxy = proxy_for(&fake, static_credentials(None));
    let mut headers = python_sdk_headers(RUST_SDK_GET_SAMPLING_RULES.len());
    headers.extend([
        ("x-envoy-foo", "bar".to_owned()),
        ("x-envoy-expected-rq-timeout-ms", "15000".to_owned()),
        ("x-request-id", "7e3c1f1a-6a8b-4e38-9f57-1d1e0e0d2a11".to_owned()),
        ("x-amzn-trace-id", "Root=1-6b012ddc-0000000018e9f8b66bfabf1a".to_owned()),
        ("x-forwarded-for", "10.0.0.7".to_owned()),
        ("connection", "keep-alive, x-envoy-foo".to_owned()),
        ("keep-alive", "timeout=5".to_owned()),
        ("te", "trailers".to_owned()),
        // A client that signed for itself (the Rust SDK pointed at port 2000): its signature is
        // not reused, the proxy signs anew.
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261121/us-east-1/xray/aws4_request, \
             SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-user-agent, \
             Signature=4cdde82a7d8adab44637d2edb4a4911b5cf5d999539339325988892e8f1f1f59"
                .to_owned(),
        ),
        ("x-amz-date", "20261121T053437Z".to_owned()),
        ("x-amz-security-token", "a-token-the-client-sent".to_owned()),
        ("x-amz-user-agent", "aws-sdk-rust/1.7.0 ua/2.1 api/xray/1.121.0".to_owned()),
    ]);

    let answered = call(
        &proxy,
        request(Method::POST, "/GetSamplingRules?x-envoy=1", &headers, Bytes::from_static(RUST_SDK_GET_SAMPLING_RULES)),
    )
    .await;

    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let seen = fake.only();
    assert_eq!(seen.signature, Ok(()), "{seen:#?}");
    assert_eq!(seen.signed_headers(), "content-length;content-type;host;x-amz-date");
    assert_eq!(seen.path_and_query, "/GetSamplingRules", "the query string is dropped");
    assert_minimal_headers(&seen);
    assert!(!seen.header("authorization").contains("Credential=testing/"), "{seen:#?}");
    assert_eq!(seen.header("x-amz-security-token"), "", "no session token: none is sent");
    assert_ne!(seen.header("x-amz-date"), "20261121T053437Z", "the client's date is not reused");
}

#[tokio::test]
async fn a_session_token_is_sent_and_signed() {
    let credentials = static_credentials(Some(SESSION_TOKEN));
    let fake = FakeXray::start(credentials.clone(), Answer::Api).await;
    let proxy = proxy_for(&fake, credentials);

    let answered = call(&proxy, sdk_request("/GetSamplingRules", PYTHON_GET_SAMPLING_RULES)).await;

    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let seen = fake.only();
    assert_eq!(seen.signature, Ok(()), "{seen:#?}");
    assert_eq!(seen.header("x-amz-security-token"), SESSION_TOKEN);
    assert_eq!(seen.signed_headers(), "content-length;content-type;host;x-amz-date;x-amz-security-token");
}

#[tokio::test]
async fn a_request_without_content_type_or_body_is_signed_as_json_with_the_empty_hash() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let proxy = proxy_for(&fake, static_credentials(None));

    let answered = call(&proxy, request(Method::POST, "/GetSamplingRules", &[], Bytes::new())).await;

    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let seen = fake.only();
    assert_eq!(seen.signature, Ok(()), "{seen:#?}");
    assert_eq!(seen.header("content-type"), "application/json");
    assert_eq!(seen.header("content-length"), "0");
    assert!(seen.body.is_empty());
}

#[tokio::test]
async fn an_endpoint_with_a_base_path_keeps_it() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let proxy =
        proxy_to(&format!("{}/xray-api/", fake.url), SharedCredentialsProvider::new(static_credentials(None)), TIMEOUT);

    let _ = call(&proxy, sdk_request("/GetSamplingRules", PYTHON_GET_SAMPLING_RULES)).await;

    let seen = fake.only();
    assert_eq!(seen.path_and_query, "/xray-api/GetSamplingRules");
    assert_eq!(seen.signature, Ok(()), "{seen:#?}");
}

#[tokio::test]
async fn upstream_errors_pass_through_unchanged() {
    const INVALID_REQUEST: &str = r#"{"__type":"InvalidRequestException","message":"1 validation error detected"}"#;
    let answer = Answer::Fixed {
        status: StatusCode::BAD_REQUEST,
        content_type: "application/x-amz-json-1.1",
        body: INVALID_REQUEST,
        error_type: Some("InvalidRequestException:http://internal.amazon.com/coral/com.amazon.xray/"),
    };
    let fake = FakeXray::start(static_credentials(None), answer).await;
    let proxy = proxy_for(&fake, static_credentials(None));

    let answered = call(&proxy, sdk_request("/SamplingTargets", PYTHON_SAMPLING_TARGETS)).await;

    assert_eq!(answered.status, StatusCode::BAD_REQUEST);
    assert_eq!(answered.text(), INVALID_REQUEST);
    assert_eq!(answered.header("content-type"), "application/x-amz-json-1.1");
    assert_eq!(
        answered.header("x-amzn-errortype"),
        "InvalidRequestException:http://internal.amazon.com/coral/com.amazon.xray/"
    );
    assert_eq!(fake.only().signature, Ok(()));

    // A throttled answer is relayed as it is, too.
    const THROTTLED: &str = r#"{"message":"Rate exceeded"}"#;
    let answer = Answer::Fixed {
        status: StatusCode::TOO_MANY_REQUESTS,
        content_type: "application/json",
        body: THROTTLED,
        error_type: Some("ThrottledException"),
    };
    let fake = FakeXray::start(static_credentials(None), answer).await;
    let proxy = proxy_for(&fake, static_credentials(None));
    let answered = call(&proxy, sdk_request("/GetSamplingRules", PYTHON_GET_SAMPLING_RULES)).await;
    assert_eq!(answered.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answered.text(), THROTTLED);
    assert_eq!(answered.header("x-amzn-errortype"), "ThrottledException");
}

// ---------------------------------------------------------------------------------------------
// What is never forwarded.

#[tokio::test]
async fn other_paths_and_methods_get_404_and_never_reach_the_upstream() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let proxy = proxy_for(&fake, static_credentials(None));
    let cases = [
        (Method::POST, "/TraceSegments"),
        (Method::POST, "/TelemetryRecords"),
        (Method::POST, "/"),
        (Method::GET, "/"),
        (Method::GET, "/GetSamplingRules"),
        (Method::PUT, "/SamplingTargets"),
        (Method::DELETE, "/SamplingStatisticSummaries"),
        (Method::POST, "/GetSamplingRules/"),
        (Method::POST, "/CreateSamplingRule"),
        (Method::POST, "/xray/GetSamplingRules"),
    ];

    for (method, path) in &cases {
        let answered =
            call(&proxy, request(method.clone(), path, &python_sdk_headers(2), Bytes::from_static(b"{}"))).await;
        assert_eq!(answered.status, StatusCode::NOT_FOUND, "{method} {path}: {}", answered.text());
        assert_eq!(answered.json()["__type"], "UnknownOperationException", "{method} {path}");
        assert!(answered.text().contains("/GetSamplingRules"), "the message says what is forwarded");
        assert_eq!(answered.header("x-amzn-errortype"), "UnknownOperationException");
    }

    assert!(fake.seen().is_empty(), "the upstream saw {:#?}", fake.seen());
    assert_eq!(rejected(&proxy.metrics, "not_found"), cases.len() as u64);
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_is_not_forwarded() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let proxy = proxy_for(&fake, static_credentials(None));
    let limit = sampling_proxy::DEFAULT_MAX_BODY_BYTES;

    let too_large = vec![b' '; limit + 1];
    let answered =
        call(&proxy, request(Method::POST, "/SamplingTargets", &python_sdk_headers(too_large.len()), too_large)).await;
    assert_eq!(answered.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", answered.text());
    assert_eq!(answered.json()["__type"], "RequestEntityTooLargeException");

    // Without a Content-Length (chunked), the limit holds too.
    let chunks = futures_body(vec![Bytes::from(vec![b' '; limit]), Bytes::from_static(b" ")]);
    let chunked = http::Request::builder().method(Method::POST).uri("/SamplingTargets").body(chunks).expect("request");
    let answered = call(&proxy, chunked).await;
    assert_eq!(answered.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", answered.text());

    assert!(fake.seen().is_empty(), "the upstream saw {:#?}", fake.seen());
    assert_eq!(rejected(&proxy.metrics, "too_large"), 2);

    // Exactly the limit is forwarded.
    let at_limit = vec![b' '; limit];
    let answered =
        call(&proxy, request(Method::POST, "/SamplingTargets", &python_sdk_headers(at_limit.len()), at_limit)).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    assert_eq!(fake.only().body.len(), limit);
}

#[tokio::test]
async fn a_body_the_memory_budget_has_no_room_for_gets_429_and_a_later_call_is_forwarded() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let budget = MemoryBudget::new(64 * 1024);
    let proxy = proxy_within(&fake, budget.clone());
    let held = budget.try_reserve(budget.limit() - PYTHON_SAMPLING_TARGETS.len() + 1).expect("the budget is free");

    let answered = call(&proxy, sdk_request("/SamplingTargets", PYTHON_SAMPLING_TARGETS)).await;
    assert_eq!(answered.status, StatusCode::TOO_MANY_REQUESTS, "{}", answered.text());
    assert_eq!(answered.header("retry-after"), "3");
    assert_eq!(answered.header("x-amzn-errortype"), "ThrottledException");
    assert_eq!(answered.json()["__type"], "ThrottledException");
    assert!(fake.seen().is_empty(), "nothing is forwarded: {:#?}", fake.seen());
    assert_eq!(rejected(&proxy.metrics, "memory_limit"), 1);

    drop(held);
    let answered = call(&proxy, sdk_request("/SamplingTargets", PYTHON_SAMPLING_TARGETS)).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    assert_eq!(&fake.only().body[..], PYTHON_SAMPLING_TARGETS);
    assert_eq!(budget.in_use(), 0, "the forwarded body gave its room back once answered");
}

#[tokio::test]
async fn a_body_without_a_length_that_outgrows_the_memory_budget_gets_429() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let budget = MemoryBudget::new(1024);
    let proxy = proxy_within(&fake, budget.clone());
    let chunks = futures_body(vec![Bytes::from(vec![b' '; 1000]), Bytes::from(vec![b' '; 1000])]);
    let chunked = http::Request::builder().method(Method::POST).uri("/SamplingTargets").body(chunks).expect("request");

    let answered = call(&proxy, chunked).await;

    assert_eq!(answered.status, StatusCode::TOO_MANY_REQUESTS, "{}", answered.text());
    assert_eq!(answered.header("retry-after"), "3");
    assert!(fake.seen().is_empty());
    assert_eq!(rejected(&proxy.metrics, "memory_limit"), 1);
    assert_eq!(budget.in_use(), 0, "the part read was given back");
}

/// A body that arrives in several frames, without a length.
fn futures_body(chunks: Vec<Bytes>) -> Body {
    Body::new(ChunkedBody(chunks.into_iter().collect()))
}

/// Frames handed out one by one, with no size hint (like a chunked upload).
struct ChunkedBody(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|chunk| Ok(hyper::body::Frame::data(chunk))))
    }
}

#[tokio::test]
async fn a_compressed_request_body_gets_415() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let proxy = proxy_for(&fake, static_credentials(None));
    let mut headers = python_sdk_headers(2);
    headers.push(("content-encoding", "gzip".to_owned()));

    let answered = call(&proxy, request(Method::POST, "/GetSamplingRules", &headers, Bytes::from_static(b"{}"))).await;

    assert_eq!(answered.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", answered.text());
    assert!(fake.seen().is_empty());
    assert_eq!(rejected(&proxy.metrics, "unsupported_encoding"), 1);
}

#[tokio::test]
async fn missing_credentials_give_503_and_nothing_is_forwarded_unsigned() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let proxy = proxy_to(&fake.url, SharedCredentialsProvider::new(NoCredentials), TIMEOUT);

    let answered = call(&proxy, sdk_request("/GetSamplingRules", PYTHON_GET_SAMPLING_RULES)).await;

    assert_eq!(answered.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answered.text());
    let body = answered.json();
    assert_eq!(body["__type"], "CredentialsUnavailableException");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("no AWS credentials"), "{message}");
    assert!(message.contains("never forwards it unsigned"), "{message}");
    assert!(message.contains("no providers in chain provided credentials"), "the provider's reason: {message}");
    assert!(fake.seen().is_empty(), "the upstream saw {:#?}", fake.seen());
}

// ---------------------------------------------------------------------------------------------
// Upstream failures.

#[tokio::test]
async fn a_hanging_upstream_gives_504_after_the_timeout() {
    let fake = FakeXray::start(static_credentials(None), Answer::Hang).await;
    let timeout = Duration::from_millis(300);
    let proxy = proxy_to(&fake.url, SharedCredentialsProvider::new(static_credentials(None)), timeout);

    let started = tokio::time::Instant::now();
    let answered = call(&proxy, sdk_request("/GetSamplingRules", PYTHON_GET_SAMPLING_RULES)).await;
    let took = started.elapsed();

    assert_eq!(answered.status, StatusCode::GATEWAY_TIMEOUT, "{}", answered.text());
    assert_eq!(answered.json()["__type"], "GatewayTimeoutException");
    assert!(took >= timeout && took < Duration::from_secs(5), "answered after {took:?}");
    assert_eq!(fake.only().signature, Ok(()), "the request reached the upstream, signed");
}

#[tokio::test]
async fn an_upstream_that_does_not_listen_gives_502() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let proxy =
        proxy_to(&format!("http://{address}"), SharedCredentialsProvider::new(static_credentials(None)), TIMEOUT);

    let answered = call(&proxy, sdk_request("/GetSamplingRules", PYTHON_GET_SAMPLING_RULES)).await;

    assert_eq!(answered.status, StatusCode::BAD_GATEWAY, "{}", answered.text());
    let body = answered.json();
    assert_eq!(body["__type"], "BadGatewayException");
    assert!(body["message"].as_str().unwrap_or_default().contains("could not connect"), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Credentials caching, logging, and the real listener.

#[tokio::test]
async fn credentials_are_fetched_once_for_many_polls() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = CountingCredentials { credentials: static_credentials(None), calls: Arc::clone(&calls) };
    let proxy = proxy_to(&fake.url, SharedCredentialsProvider::new(provider), TIMEOUT);

    for _ in 0..5 {
        let answered = call(&proxy, sdk_request("/SamplingTargets", PYTHON_SAMPLING_TARGETS)).await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    }

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(fake.seen().iter().all(|seen| seen.signature.is_ok()));
}

/// A `MakeWriter` that appends every log line to a shared buffer.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

#[tokio::test]
async fn requests_are_logged_like_the_daemon_and_secrets_never_are() {
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests' threads register these callsites too, without a subscriber: make them ask
    // this one again, whichever thread got there first.
    tracing::callsite::rebuild_interest_cache();
    let credentials = static_credentials(Some(SESSION_TOKEN));
    let fake = FakeXray::start(credentials.clone(), Answer::Api).await;
    let proxy = proxy_for(&fake, credentials);
    let broken = proxy_to("http://127.0.0.1:9", SharedCredentialsProvider::new(NoCredentials), TIMEOUT);

    let answered = call(&proxy, sdk_request("/GetSamplingRules", PYTHON_GET_SAMPLING_RULES)).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let _ = call(&proxy, sdk_request("/TraceSegments", b"{}")).await;
    let _ = call(&broken, sdk_request("/SamplingTargets", PYTHON_SAMPLING_TARGETS)).await;

    let text = logs.text();
    assert!(text.contains("Received request on HTTP Proxy server : /GetSamplingRules"), "{text}");
    assert!(text.contains("Received request on HTTP Proxy server : /TraceSegments"), "{text}");
    let warnings: Vec<&str> = text.lines().filter(|line| line.contains("WARN")).collect();
    assert!(warnings.iter().any(|line| line.contains("not found") && line.contains("/TraceSegments")), "{text}");
    assert!(warnings.iter().any(|line| line.contains("no AWS credentials")), "{text}");
    let authorization = fake.only().header("authorization").to_owned();
    let signature = authorization_field(&authorization, "Signature=").expect("a signature");
    for secret in [SECRET_KEY, SESSION_TOKEN, signature] {
        assert!(!text.contains(secret), "a secret ({}…) was logged:\n{text}", &secret[..6]);
    }
}

#[tokio::test]
async fn serve_forwards_over_tcp_and_stops_on_shutdown() {
    let fake = FakeXray::start(static_credentials(None), Answer::Api).await;
    let endpoint = sampling_proxy::parse_endpoint(&fake.url).expect("endpoint");
    let proxy = Arc::new(SamplingProxy::new(
        endpoint,
        REGION.to_owned(),
        SharedCredentialsProvider::new(static_credentials(None)),
        TIMEOUT,
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
    let address = listener.local_addr().expect("proxy address");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(sampling_proxy::serve(listener, proxy, Arc::new(Metrics::new()), shutdown.clone()));

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    for (path, body) in
        [("/GetSamplingRules", PYTHON_GET_SAMPLING_RULES), ("/SamplingTargets", PYTHON_SAMPLING_TARGETS)]
    {
        let mut outgoing = http::Request::builder()
            .method(Method::POST)
            .uri(format!("http://{address}{path}"))
            .header("content-type", "application/json")
            .header("x-request-id", "abc")
            .header("connection", "keep-alive")
            .body(Full::new(Bytes::from_static(body)))
            .expect("request");
        outgoing.headers_mut().insert("accept-encoding", HeaderValue::from_static("identity"));
        let response = tokio::time::timeout(TIMEOUT, client.request(outgoing)).await.expect("in time").expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.expect("body").to_bytes();
        assert!(body.starts_with(b"{\"S") || body.starts_with(b"{\"L"), "{body:?}");
    }
    let refused = http::Request::builder()
        .method(Method::POST)
        .uri(format!("http://{address}/TraceSegments"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("request");
    let response = client.request(refused).await.expect("answer");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let seen = fake.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    for request in &seen {
        assert_eq!(request.signature, Ok(()), "{request:#?}");
        assert_minimal_headers(request);
    }

    drop(client);
    shutdown.cancel();
    let stopped = tokio::time::timeout(TIMEOUT, server).await.expect("serve returns after shutdown");
    stopped.expect("serve task").expect("serve result");
}

#[tokio::test]
async fn the_fake_upstreams_signature_check_rejects_tampered_requests() {
    let credentials = static_credentials(Some(SESSION_TOKEN));
    let fake = FakeXray::start(credentials.clone(), Answer::Api).await;
    let proxy = proxy_for(&fake, credentials.clone());
    let _ = call(&proxy, sdk_request("/SamplingTargets", PYTHON_SAMPLING_TARGETS)).await;
    let seen = fake.only();
    let check = |seen: &Seen, credentials: &Credentials| {
        verify_signature(&seen.method, &seen.path_and_query, &seen.headers, &seen.body, credentials)
    };
    assert_eq!(check(&seen, &credentials), Ok(()));

    let mut body = seen.clone();
    body.body = Bytes::from_static(br#"{"SamplingStatisticsDocuments":[]}"#);
    assert!(check(&body, &credentials).is_err(), "a changed body");
    let mut header = seen.clone();
    header.headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    assert!(check(&header, &credentials).is_err(), "a changed signed header");
    let mut path = seen.clone();
    path.path_and_query = "/GetSamplingRules".into();
    assert!(check(&path, &credentials).is_err(), "a changed path");
    let mut date = seen.clone();
    date.headers.insert("x-amz-date", HeaderValue::from_static("20200101T000000Z"));
    assert!(check(&date, &credentials).is_err(), "a changed date");
    let mut token = seen.clone();
    token.headers.insert("x-amz-security-token", HeaderValue::from_static("another-token"));
    assert!(check(&token, &credentials).is_err(), "a changed session token");
    let other_secret = Credentials::new(ACCESS_KEY, "another-secret", Some(SESSION_TOKEN.into()), None, "test");
    assert!(check(&seen, &other_secret).is_err(), "another secret key");
    let mut region = seen.clone();
    let authorization = seen.header("authorization").replace("/eu-west-1/", "/us-east-1/");
    region.headers.insert("authorization", HeaderValue::from_str(&authorization).expect("header"));
    assert!(check(&region, &credentials).is_err(), "a changed scope");
    // An unsigned header added after signing does not matter: that is the point of a minimal set.
    let mut extra = seen;
    extra.headers.insert("x-envoy-foo", HeaderValue::from_static("bar"));
    assert_eq!(check(&extra, &credentials), Ok(()));
}
