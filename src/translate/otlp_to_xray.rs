//! OTLP spans → X-Ray segment documents (JSON bytes ready for `PutTraceSegments`), for the
//! X-Ray lane. Pure: no I/O, no clock (the caller passes `now`), never panics on input.
//!
//! Every span becomes one document of its own (nothing is nested), following the rules of the
//! OpenTelemetry Collector's `awsxrayexporter`, so a service moved from the Collector to
//! waggle shows the same names, annotations and metadata in X-Ray. Where waggle differs it
//! says so below ("≠ Collector").
//!
//! | OTLP | X-Ray |
//! |---|---|
//! | trace id (16 bytes) | `trace_id` `1-{bytes 0–3 hex}-{bytes 4–15 hex}`; W3C random ids pass unchanged (X-Ray accepts them since 2023-10); with [`XrayTranslation::validate_trace_id_time`] the first 32 bits must be ≤ 28 days old and ≤ 5 min ahead |
//! | span id / parent span id | `id` / `parent_id` (16 hex); an all-zero parent counts as none |
//! | kind ≠ SERVER with a parent | `"type":"subsegment"` with `parent_id` and `trace_id` (a streamed subsegment); no resource data |
//! | SERVER span, or a span without parent | segment (keeps `parent_id` when it has one) |
//! | start / end time | `start_time` / `end_time`, epoch seconds rounded to the microsecond |
//! | end time 0, or `aws.xray.inprogress` = true | `in_progress: true`, no `end_time` |
//! | name: `aws.local.service` (SERVER, or INTERNAL with `aws.span.kind` LOCAL_ROOT) → `aws.remote.service` (CLIENT/PRODUCER/CONSUMER; `AWS.SDK.`/`AWS::` trimmed for aws-api) → `peer.service` → `aws.service` → `db.name`/`db.namespace` `@` host of `db.connection_string` (`jdbc:` stripped) or `server.address` → resource `service.name` (SERVER) → `rpc.service` → `http.host` → `net.peer.name` → span name | `name`: characters outside `[ 0-9_.:/%&#=+\-@]` and Unicode letters removed (≠ Collector: from every source, not only the span name), cut to 200 *characters* (≠ Collector: 200 bytes, which can split a character); empty → `span` |
//! | `rpc.system` = `aws-api` or `aws.service` set | `namespace: aws` |
//! | otherwise CLIENT; CLIENT/PRODUCER/CONSUMER subsegment with `aws.remote.service` | `namespace: remote` |
//! | `http.method` / `http.request.method` | `http.request.method` |
//! | `http.url` / `url.full`, else scheme (`http.scheme`/`url.scheme`, default http) + host + port (80/443 left out) + target (`http.target`, or `url.path` + `?url.query`, default `/`) | `http.request.url`. Host: SERVER `http.host` → `server.address` → `http.server_name` → `net.host.name` → `host.name` (port `net.host.port`/`server.port`); others `http.host` → `server.address` → `net.peer.name` → `net.peer.ip` → `network.peer.address` (port `net.peer.port`/`server.port`); no host → no url |
//! | `http.client_ip` / `client.address`, else (SERVER only, ≠ Collector) `net.peer.ip` / `network.peer.address` | `http.request.client_ip` |
//! | `aws.xray.x_forwarded_for`, else client address ≠ peer address | `http.request.x_forwarded_for: true` (≠ Collector, which sets it for every `http.client_ip`) |
//! | `http.user_agent` / `user_agent.original` | `http.request.user_agent` |
//! | `http.status_code` / `http.response.status_code` | `http.response.status`; 4xx → `error`, 429 → `error` + `throttle`, 5xx → `fault` |
//! | status ERROR without a 4xx/5xx code | `fault` |
//! | `http.response_content_length` / `http.response.body.size` | `http.response.content_length` |
//! | `exception` events | `cause.exceptions[]`: `id` (random, or `aws.xray.exception.id`), `type`, `message`, `remote` (CLIENT/PRODUCER, or `aws.xray.exception.remote`), `stack` `{path,line,label}` parsed by resource `telemetry.sdk.language` (java, python, nodejs/javascript/webjs, go, dotnet; others: detected from the text), at most 50 frames each (the rest counted in `truncated`); Java `Caused by:`, Python chained tracebacks and .NET inner exceptions become linked exceptions (`cause` = the id of the exception that caused it) |
//! | no exception event, status ERROR | one exception whose message is the status message (else `http.status_text`) |
//! | `aws.operation` (else `rpc.method`), `aws.account_id`, `aws.region`, `aws.request_id`/`aws.requestId`, `aws.queue_url`/`aws.queue.url`/`messaging.url`, `aws.table_name`/`aws.table.name`/`aws.dynamodb.table_names`, `aws.xray.retries`, `aws.xray.sampling_rule_name` | `aws.operation`, `account_id`, `region` (the Collector's "remote region"), `request_id`, `queue_url`, `table_name` (several → `table_names`), `retries`, `xray.sampling_rule_name` |
//! | resource (segments only): `cloud.account.id`, `telemetry.sdk.{name,language,version}`, `telemetry.auto.version`, `host.*`, `container.*`, `aws.ecs.*`, `k8s.*`, `service.{namespace,instance.id,version}`, `aws.log.group.{arns,names}` | `aws.account_id`, `aws.xray.{sdk ("<name> for <language>" unless the name already says " for "),sdk_version,auto_instrumentation}`, `aws.ec2` (platform aws_ec2, or `host.id` with provider aws), `aws.ecs` (aws_ecs), `aws.eks` (aws_eks or `k8s.cluster.name`), `aws.elastic_beanstalk` (with a `service.instance.id`), `aws.cloudwatch_logs` |
//! | resource `cloud.provider` set and not `aws` | no `aws` object, no `origin` |
//! | resource `cloud.platform` (segments only) | `origin`: aws_ec2 → `AWS::EC2::Instance`, aws_ecs → `AWS::ECS::EC2`/`Fargate`/`Container` (by `aws.ecs.launchtype`), aws_eks → `AWS::EKS::Container`, aws_elastic_beanstalk → `AWS::ElasticBeanstalk::Environment`, aws_app_runner → `AWS::AppRunner::Service` |
//! | resource `service.version`, `process.runtime.{name,version}` (segments only) | `service.{version,runtime,runtime_version}` |
//! | `db.system` / `db.system.name` among db2, derby, hive, mariadb, mssql, mysql, oracle, postgresql, sqlite, teradata, other_sql (and ibm.db2, microsoft.sql_server, oracle.db; any case) | `sql`: `database_type`, `user` (`db.user`), `sanitized_query` (`db.statement`/`db.query.text`); a URL-style `db.connection_string` + `/` + `db.name`/`db.namespace` → `url`, another connection string → `connection_string`; without one: `{system}://{server.address}[:{server.port}]/{db}` → `url`, else `localhost/{db}` → `connection_string` (≠ Collector, which puts the span name in `url`) |
//! | `enduser.id` | `user` |
//! | `aws.xray.traced` | `traced` |
//! | span links | `links[]` `{trace_id, id, attributes}` (links with bad ids left out) |
//! | other span attributes | `metadata.default.<key>`, or `annotations.<fixed key>` when indexed (below) |
//! | resource attributes (segments only) | `metadata.default."otel.resource.<key>"` (or annotations when indexed) |
//! | `aws.xray.metadata.<ns>` holding a JSON object | `metadata.<ns>` (`default` merges into `metadata.default`; not JSON → kept as a string) |
//! | `aws.xray.annotations` (string array) | those keys become annotations |
//!
//! **Annotations.** An attribute becomes an annotation when [`XrayTranslation::index_all_attributes`]
//! is on, its key is in [`XrayTranslation::indexed_attributes`], or the span lists it in
//! `aws.xray.annotations`; only string, int, finite double and bool values qualify. Keys are
//! fixed to X-Ray's rules (characters outside `[A-Za-z0-9_.]` → `_`, at most 500), string
//! values cut to 1,000 characters, at most [`MAX_ANNOTATIONS`] per document: later ones, and
//! ones whose fixed key repeats an earlier one, go to `metadata.default` under their own key.
//! Attributes consumed by a block above (http, aws, sql, the one the name came from) are not
//! repeated in metadata, unless explicitly indexed.
//!
//! **Size.** X-Ray takes segment documents of at most "64 KB". waggle reads that as
//! [`MAX_DOCUMENT_BYTES`] = 64,000 bytes, the smaller of the two readings (64,000 or 65,536),
//! so no document is refused for a unit ambiguity; the cost is at most 1.5 KiB of metadata
//! on the rare document near the limit. A larger document has its largest metadata values
//! replaced, largest first, by [`TRUNCATED_MARKER`] until it fits (and counts in
//! [`Translated::trimmed`]); if that is not enough all metadata is dropped; a document that
//! still does not fit is rejected as `too_large` with its size.
//!
//! **Round trip.** Spans made from X-Ray SDK segments by [`super::xray_to_otlp`] come back
//! with the same name, ids, times, annotations, metadata, http block, error flags and cause
//! (exception ids kept, the receiver's stack rendering parsed back), plus the resource in
//! `metadata.default."otel.resource.*"` as the Collector does.

mod annotations;
mod attributes;
mod aws;
mod cause;
mod document;
mod http;
mod ids;
mod metadata;
mod name;
mod outcome;
mod segment;
mod size;
mod sql;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

use crate::destination::Rejected;

pub(crate) use self::outcome::{Translated, Untranslatable};

use self::aws::ResourceContext;

/// How spans are translated; the X-Ray destination's settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct XrayTranslation {
    /// Attribute keys that become annotations (indexed, searchable in X-Ray).
    pub indexed_attributes: Vec<String>,
    /// Every scalar attribute becomes an annotation (up to [`MAX_ANNOTATIONS`]).
    pub index_all_attributes: bool,
    /// Reject trace ids whose first 32 bits, read as epoch seconds, are more than 28 days old
    /// or more than 5 minutes ahead (what X-Ray required before it took W3C ids). Off by default.
    pub validate_trace_id_time: bool,
}

impl XrayTranslation {
    /// Every span of the request → one document each; failures reported, never panics.
    pub(crate) fn translate(&self, resource_spans: &[ResourceSpans], now: SystemTime) -> Translated {
        let now_secs = now.duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0);
        let indexed: HashSet<&str> = self.indexed_attributes.iter().map(String::as_str).collect();
        let options = segment::Options {
            indexed: &indexed,
            index_all: self.index_all_attributes,
            validate_trace_id_time: self.validate_trace_id_time,
            now_secs,
        };
        let span_count = resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum();
        let mut translated = Translated { documents: Vec::with_capacity(span_count), ..Translated::default() };
        for resource_spans in resource_spans {
            let resource = ResourceContext::new(resource_spans.resource.as_ref());
            for span in resource_spans.scope_spans.iter().flat_map(|scope_spans| &scope_spans.spans) {
                match segment::translate_span(span, &resource, &options) {
                    Ok(made) => {
                        translated.trimmed += usize::from(made.trimmed);
                        translated.documents.push(made.document);
                    }
                    Err(error) => translated.rejected.push(rejection(span, &error)),
                }
            }
        }
        translated
    }
}

fn rejection(span: &opentelemetry_proto::tonic::trace::v1::Span, error: &Untranslatable) -> Rejected {
    Rejected {
        items: 1,
        reason: error.reason(),
        detail: format!("span {} of trace {}: {error}", hex::encode(&span.span_id), hex::encode(&span.trace_id)),
    }
}
