//! One forwarded call: the client's body read within limits (its room taken from the memory
//! budget before it is read, and held until the upstream has answered), a fresh upstream
//! request with only the headers waggle chose, signed by [`crate::aws::sign`], and the answer
//! relayed.

use aws_credential_types::Credentials;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::{BodyExt, Full, Limited};

use super::endpoint::UpstreamTarget;
use super::error::SamplingProxyError;
use super::route::SamplingOperation;
use super::{BodyRoom, MAX_RESPONSE_BYTES, RECEIVER, RELAYED_RESPONSE_HEADERS, SamplingProxy};
use crate::aws::sign::{SigningCredentials, Unsigned};
use crate::limits::MemoryPermit;
use crate::receiver::body::{self, BodyError};

impl SamplingProxy {
    /// Reads, signs and forwards one allowed request; the upstream's answer, or why there is none.
    pub(super) async fn forward(
        &self,
        operation: SamplingOperation,
        request: Request,
        room: &BodyRoom,
    ) -> Result<Response, SamplingProxyError> {
        let target = self.target.as_ref().map_err(|reason| SamplingProxyError::InvalidEndpoint {
            endpoint: self.endpoint.clone(),
            reason: reason.clone(),
        })?;
        let (parts, body) = request.into_parts();
        if parts.headers.get(CONTENT_ENCODING).is_some_and(|value| !value.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            return Err(SamplingProxyError::UnsupportedEncoding);
        }
        // The body's room is held until the upstream has answered (the signed request owns it).
        let (payload, _held) = self.read_body(&parts.headers, body, room).await?;
        let content_type = forwarded_content_type(&parts.headers);
        let credentials = self.credentials().await?;
        let upstream_request = self.signed_request(target, operation, content_type, payload, &credentials)?;
        self.send(upstream_request).await
    }

    /// Reads the body within the size limit and the timeout, its room taken from the memory
    /// budget first (its declared length, else frame by frame). A body the budget has no room
    /// for is read to its end unkept, so the client sees the 429 rather than a reset.
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
        room: &BodyRoom,
    ) -> Result<(Bytes, MemoryPermit), SamplingProxyError> {
        let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        let over_budget = |source| SamplingProxyError::OverBudget { source, retry_after: room.retry_after };
        let mut permit = match body::reserve_declared(&room.budget, declared, self.max_body_size) {
            Ok(permit) => permit,
            Err(source) => {
                let _ = tokio::time::timeout(self.timeout, body::discard(body, self.max_body_size)).await;
                return Err(over_budget(source));
            }
        };
        let read = body::read_within(body, self.max_body_size, declared, &mut permit);
        match tokio::time::timeout(self.timeout, read).await {
            Err(_) => Err(SamplingProxyError::ReadTimeout(self.timeout)),
            Ok(Ok(payload)) => Ok((payload, permit)),
            Ok(Err(BodyError::TooLarge { limit })) => Err(SamplingProxyError::TooLarge { limit }),
            Ok(Err(BodyError::OverBudget(source))) => Err(over_budget(source)),
            Ok(Err(error)) => Err(SamplingProxyError::ReadBody(error.to_string())),
        }
    }

    /// Credentials from the shared signer; earlier ones (with a WARN) when a refresh failed.
    async fn credentials(&self) -> Result<Credentials, SamplingProxyError> {
        match self.signer.credentials(self.timeout).await {
            Ok(SigningCredentials::Current(credentials)) => Ok(credentials),
            Ok(SigningCredentials::Stale { credentials, refresh_error: reason }) => {
                if let Some(suppressed) = self.credentials_warning.check() {
                    tracing::warn!(
                        receiver = %RECEIVER,
                        suppressed,
                        "could not refresh AWS credentials for the X-Ray sampling proxy, using the previous \
                         ones until they expire: {reason}"
                    );
                }
                Ok(credentials)
            }
            Err(reason) => Err(SamplingProxyError::NoCredentials(reason)),
        }
    }

    /// The upstream request with only the headers waggle chose, SigV4-signed.
    fn signed_request(
        &self,
        target: &UpstreamTarget,
        operation: SamplingOperation,
        content_type: HeaderValue,
        payload: Bytes,
        credentials: &Credentials,
    ) -> Result<http::Request<Full<Bytes>>, SamplingProxyError> {
        let uri = target.uris[operation.index()].clone();
        let content_length = HeaderValue::from(payload.len());
        let uri_text = uri.to_string();
        let signed_headers = [
            (HOST.as_str(), to_str(&target.host)),
            (CONTENT_TYPE.as_str(), to_str(&content_type)),
            (CONTENT_LENGTH.as_str(), to_str(&content_length)),
        ];
        let unsigned =
            Unsigned { method: Method::POST.as_str(), uri: &uri_text, headers: &signed_headers, body: &payload };
        let instructions =
            self.signer.sign(&unsigned, credentials).map_err(|error| SamplingProxyError::Signing(error.to_string()))?;
        let mut upstream = http::Request::new(Full::new(payload));
        *upstream.method_mut() = Method::POST;
        *upstream.uri_mut() = uri;
        let headers = upstream.headers_mut();
        headers.insert(HOST, target.host.clone());
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(CONTENT_LENGTH, content_length);
        headers.insert(USER_AGENT, self.user_agent.clone());
        instructions.apply_to_request_http1x(&mut upstream);
        Ok(upstream)
    }

    /// Sends the request and relays the answer: status, body and a few headers, unchanged.
    async fn send(&self, request: http::Request<Full<Bytes>>) -> Result<Response, SamplingProxyError> {
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| {
                let detail = crate::telemetry::error_text::chain(&error);
                if error.is_connect() {
                    SamplingProxyError::Connect { endpoint: self.endpoint.clone(), detail }
                } else {
                    SamplingProxyError::Upstream { endpoint: self.endpoint.clone(), detail }
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await.map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    SamplingProxyError::ResponseTooLarge { endpoint: self.endpoint.clone(), limit: MAX_RESPONSE_BYTES }
                } else {
                    SamplingProxyError::Upstream {
                        endpoint: self.endpoint.clone(),
                        detail: crate::telemetry::error_text::chain(&*error),
                    }
                }
            })?;
            Ok::<_, SamplingProxyError>((parts, body.to_bytes()))
        };
        let (parts, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| SamplingProxyError::Timeout { endpoint: self.endpoint.clone(), timeout: self.timeout })??;
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = parts.status;
        for name in RELAYED_RESPONSE_HEADERS {
            for value in parts.headers.get_all(&name) {
                response.headers_mut().append(name.clone(), value.clone());
            }
        }
        Ok(response)
    }
}

/// The client's Content-Type when it is printable ASCII (it is signed), else `application/json`.
fn forwarded_content_type(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(CONTENT_TYPE)
        .filter(|value| value.to_str().is_ok_and(|text| !text.trim().is_empty()))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"))
}

/// A header value waggle built or checked to be ASCII.
fn to_str(value: &HeaderValue) -> &str {
    value.to_str().unwrap_or_default()
}
