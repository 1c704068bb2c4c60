//! Items the Rollbar SDKs sent through waggle's relay, carried through the lane (and its
//! spool) as OTLP log records: the item JSON is the record's body, under an instrumentation
//! scope of its own so the exporter posts it as it is instead of translating it.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;

use crate::model::{Batch, OtlpRequest};

/// The scope the relayed items travel under.
pub(crate) const RELAY_SCOPE: &str = "waggle.rollbar.relay";

/// A batch of one relayed item (`{"data": …}`, the SDK's token already removed).
pub(crate) fn relayed_batch(item: String, received_unix_nano: u64) -> Batch {
    let bytes = item.len();
    let record = LogRecord {
        time_unix_nano: received_unix_nano,
        observed_time_unix_nano: received_unix_nano,
        body: Some(AnyValue { value: Some(Value::StringValue(item)) }),
        ..LogRecord::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope { name: RELAY_SCOPE.to_string(), ..InstrumentationScope::default() }),
                log_records: vec![record],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let protobuf = Bytes::from(request.encode_to_vec());
    Batch::otlp_logs(OtlpRequest::from_protobuf_and_decoded(protobuf, request), 1, bytes)
}

/// Whether a scope holds relayed items.
pub(crate) fn is_relayed(scope: &ScopeLogs) -> bool {
    scope.scope.as_ref().is_some_and(|scope| scope.name == RELAY_SCOPE)
}

/// A relayed item's JSON.
pub(crate) fn item_json(record: &LogRecord) -> Option<&str> {
    match record.body.as_ref()?.value.as_ref()? {
        Value::StringValue(item) => Some(item),
        _ => None,
    }
}
