"""A loopback fake of the X-Ray API for the sampling proxy: it verifies every request's SigV4
signature by recomputing it with botocore (over exactly the headers the request's
SignedHeaders lists), answers the sampling calls in the API's JSON shape, and records every
request it receives.

    upstream = SigV4Upstream(Credentials("AKID", "secret"), region="eu-west-1")
    ... point waggle's AWS_ENDPOINT_URL_XRAY at upstream.url ...
    upstream.requests("/GetSamplingRules")  # [Received(...)] with .signature == "valid"
    upstream.stop()

`GetSamplingRules` returns the Cruddur rule (priority 9000, fixed rate 0.1, reservoir 5,
service `backend-flask`) and the Default rule; `SamplingTargets` answers one target per
statistics document sent, with `TARGET_QUOTA`; `PutTraceSegments` (the X-Ray lane may send to
the same endpoint) is accepted with no unprocessed segments. A request whose signature does
not verify gets 403 `InvalidSignatureException`, one without a signature 403
`MissingAuthenticationTokenException`, unless `require_signature=False` (used to watch the
SDK talk to the fake directly, unsigned).
"""

import datetime
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "xray"
# AWS refuses a signature dated more than 15 minutes from its clock.
MAX_CLOCK_SKEW = 15 * 60
# The reservoir quota every target carries: an SDK that applied our answer shows this number.
TARGET_QUOTA = 7
TARGET_INTERVAL = 10
RULES_MODIFIED_AT = 1_700_000_000.0


def sampling_rule(name, priority, fixed_rate, reservoir_size, service_name, region="eu-west-1"):
    return {
        "RuleName": name,
        "RuleARN": f"arn:aws:xray:{region}:123456789012:sampling-rule/{name}",
        "ResourceARN": "*",
        "Priority": priority,
        "FixedRate": fixed_rate,
        "ReservoirSize": reservoir_size,
        "ServiceName": service_name,
        "ServiceType": "*",
        "Host": "*",
        "HTTPMethod": "*",
        "URLPath": "*",
        "Version": 1,
        "Attributes": {},
    }


# The rule the Cruddur bootcamp creates with the AWS CLI, and the account's Default rule.
CRUDDUR_RULE = sampling_rule("Cruddur", 9000, 0.1, 5, "backend-flask")
DEFAULT_RULE = sampling_rule("Default", 10000, 0.05, 1, "*")
RULES = [CRUDDUR_RULE, DEFAULT_RULE]


@dataclass
class Received:
    """One request the fake received."""

    at: float
    method: str
    path: str  # with the query string, as sent
    headers: dict  # lower-case name -> value (repeated headers joined with ",")
    body: bytes
    signature: str  # "valid", "unsigned", "invalid: <why>" or "not checked"
    status: int = 0  # what the fake answered
    signed_headers: list = field(default_factory=list)
    scope: str = ""  # access key / date / region / service / aws4_request

    def json(self):
        return json.loads(self.body or b"null")


class SignatureError(Exception):
    pass


def authorization_fields(authorization):
    """`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` -> dict."""
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise SignatureError(f"unsupported algorithm {algorithm!r}")
    fields = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    for key in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(key):
            raise SignatureError(f"Authorization has no {key}")
    return fields


def verify_sigv4(method, path, headers, body, credentials, region, service=SERVICE, now=None):
    """Recompute the SigV4 signature of a received request with botocore and compare.

    `headers` maps lower-case names to values as received. Only the headers named in the
    request's SignedHeaders are given to botocore, the signing time is the request's
    x-amz-date, and the scope must name `credentials.access_key`, `region` and `service`.
    Returns the SignedHeaders list; raises SignatureError with the reason otherwise.
    """
    authorization = headers.get("authorization")
    if not authorization:
        raise SignatureError("no Authorization header")
    fields = authorization_fields(authorization)
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureError(f"malformed credential scope {fields['Credential']!r}")
    access_key, date, scope_region, scope_service, _ = scope
    if access_key != credentials.access_key:
        raise SignatureError(f"unknown access key {access_key!r}")
    if scope_region != region:
        raise SignatureError(f"signed for region {scope_region!r}, expected {region!r}")
    if scope_service != service:
        raise SignatureError(f"signed for service {scope_service!r}, expected {service!r}")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise SignatureError(f"malformed or missing x-amz-date {amz_date!r}") from None
    if date != amz_date[:8]:
        raise SignatureError("the scope date is not the x-amz-date's day")
    skew = abs((now if now is not None else time.time()) - signed_at.timestamp())
    if skew > MAX_CLOCK_SKEW:
        raise SignatureError(f"signature expired: x-amz-date is {skew:.0f} s from now")
    signed_headers = fields["SignedHeaders"].split(";")
    if signed_headers != sorted(set(signed_headers)) or "host" not in signed_headers:
        raise SignatureError(f"SignedHeaders is not a sorted list with host: {fields['SignedHeaders']!r}")
    missing = [name for name in signed_headers if name not in headers]
    if missing:
        raise SignatureError(f"signed headers missing from the request: {missing}")
    token = headers.get("x-amz-security-token")
    if credentials.token and token != credentials.token:
        raise SignatureError("x-amz-security-token is missing or not the session token")
    if token is not None and "x-amz-security-token" not in signed_headers:
        raise SignatureError("x-amz-security-token is sent but not signed")

    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{path}",
        data=body,
        headers={name: headers[name] for name in signed_headers},
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(credentials, service, region)
    # botocore leaves a few headers (user-agent, expect, x-amzn-trace-id) out of what it signs;
    # a request that signed one of them cannot be reproduced, and is refused like a mismatch.
    recomputed_headers = signer.signed_headers(signer.headers_to_sign(request))
    if recomputed_headers != fields["SignedHeaders"]:
        raise SignatureError(
            f"botocore would sign {recomputed_headers!r}, the request signed {fields['SignedHeaders']!r}"
        )
    canonical_request = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical_request)
    expected = signer.signature(string_to_sign, request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise SignatureError("signature mismatch (the request was changed after signing, or signed with other keys)")
    return signed_headers


def rules_answer():
    return {
        "SamplingRuleRecords": [
            {"SamplingRule": rule, "CreatedAt": RULES_MODIFIED_AT, "ModifiedAt": RULES_MODIFIED_AT} for rule in RULES
        ]
    }


def targets_answer(request_body):
    documents = json.loads(request_body or b"{}").get("SamplingStatisticsDocuments", [])
    rates = {rule["RuleName"]: rule["FixedRate"] for rule in RULES}
    now = time.time()
    return {
        "LastRuleModification": RULES_MODIFIED_AT,
        "SamplingTargetDocuments": [
            {
                "RuleName": document["RuleName"],
                "FixedRate": rates.get(document["RuleName"], 0.05),
                "ReservoirQuota": TARGET_QUOTA,
                "ReservoirQuotaTTL": now + 60,
                "Interval": TARGET_INTERVAL,
            }
            for document in documents
        ],
        "UnprocessedStatistics": [],
    }


class SigV4Upstream:
    def __init__(self, credentials, region="eu-west-1", require_signature=True, trace_destination="XRay"):
        self.credentials = credentials
        self.region = region
        # What GetTraceSegmentDestination answers: "XRay" (Transaction Search off) or "CloudWatchLogs".
        self.trace_destination = trace_destination
        self.require_signature = require_signature
        self.received = []
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                upstream._handle(self)

            do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def requests(self, path=None):
        """What was received so far, optionally only for one path (query string ignored)."""
        with self.lock:
            received = list(self.received)
        return [r for r in received if path is None or r.path.split("?")[0] == path]

    # -- handling --

    def _handle(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {}
        for name, value in handler.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        received = Received(time.time(), handler.command, handler.path, headers, body, "not checked")
        if "authorization" not in headers:
            received.signature = "unsigned"
        else:
            try:
                received.signed_headers = verify_sigv4(
                    handler.command, handler.path, headers, body, self.credentials, self.region
                )
                received.scope = authorization_fields(headers["authorization"])["Credential"]
                received.signature = "valid"
            except SignatureError as error:
                received.signature = f"invalid: {error}"
        status, answer, error_type = self._answer(received)
        received.status = status
        with self.lock:
            self.received.append(received)
        payload = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("x-amzn-RequestId", f"fake-{len(self.received)}")
        if error_type:
            handler.send_header("x-amzn-ErrorType", error_type)
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, received):
        if received.signature == "unsigned" and self.require_signature:
            return 403, {"message": "Missing Authentication Token"}, "MissingAuthenticationTokenException"
        if received.signature.startswith("invalid"):
            return 403, {"message": received.signature}, "InvalidSignatureException"
        path = received.path.split("?")[0]
        if received.method != "POST":
            return 404, {"message": f"no route for {received.method} {path}"}, "UnknownOperationException"
        if path == "/GetSamplingRules":
            return 200, rules_answer(), None
        if path == "/SamplingTargets":
            return 200, targets_answer(received.body), None
        if path == "/SamplingStatisticSummaries":
            return 200, {"SamplingStatisticSummaries": []}, None
        if path == "/TraceSegments":
            return 200, {"UnprocessedTraceSegments": []}, None
        if path == "/GetTraceSegmentDestination":
            return 200, {"Destination": self.trace_destination, "Status": "ACTIVE"}, None
        return 404, {"message": f"no route for POST {path}"}, "UnknownOperationException"
