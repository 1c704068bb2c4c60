//! The span attributes the translation reads, found in one pass over the span, and OTLP
//! values as JSON.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Declares the attribute keys the translation understands, each with the block that
/// consumes it (so it is not repeated in metadata when that block is written).
macro_rules! keys {
    ($($variant:ident = $key:literal => $group:ident,)*) => {
        /// An attribute key with a meaning for X-Ray.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Key { $($variant,)* }

        impl Key {
            pub(crate) const COUNT: usize = [$(Key::$variant,)*].len();

            pub(crate) fn of(key: &str) -> Option<Key> {
                match key {
                    $($key => Some(Key::$variant),)*
                    _ => None,
                }
            }

            pub(crate) fn group(self) -> Group {
                match self { $(Key::$variant => Group::$group,)* }
            }
        }
    };
}

keys! {
    AwsLocalService = "aws.local.service" => Keep,
    AwsRemoteService = "aws.remote.service" => Keep,
    AwsSpanKind = "aws.span.kind" => Keep,
    PeerService = "peer.service" => Keep,
    AwsService = "aws.service" => Keep,
    RpcService = "rpc.service" => Keep,
    RpcSystem = "rpc.system" => Keep,
    HostName = "host.name" => Keep,
    HttpStatusText = "http.status_text" => Keep,
    EnduserId = "enduser.id" => Always,
    XrayAnnotations = "aws.xray.annotations" => Always,
    XrayInProgress = "aws.xray.inprogress" => Always,
    XrayTraced = "aws.xray.traced" => Always,
    HttpMethod = "http.method" => Http,
    HttpRequestMethod = "http.request.method" => Http,
    HttpClientIp = "http.client_ip" => Http,
    ClientAddress = "client.address" => Http,
    NetPeerIp = "net.peer.ip" => Http,
    NetworkPeerAddress = "network.peer.address" => Http,
    HttpUserAgent = "http.user_agent" => Http,
    UserAgentOriginal = "user_agent.original" => Http,
    HttpStatusCode = "http.status_code" => Http,
    HttpResponseStatusCode = "http.response.status_code" => Http,
    HttpUrl = "http.url" => Http,
    UrlFull = "url.full" => Http,
    HttpScheme = "http.scheme" => Http,
    UrlScheme = "url.scheme" => Http,
    HttpHost = "http.host" => Http,
    HttpServerName = "http.server_name" => Http,
    NetHostName = "net.host.name" => Http,
    NetHostPort = "net.host.port" => Http,
    ServerAddress = "server.address" => Connection,
    ServerPort = "server.port" => Connection,
    HttpTarget = "http.target" => Http,
    UrlPath = "url.path" => Http,
    UrlQuery = "url.query" => Http,
    NetPeerName = "net.peer.name" => Http,
    NetPeerPort = "net.peer.port" => Http,
    HttpResponseContentLength = "http.response_content_length" => Http,
    HttpResponseBodySize = "http.response.body.size" => Http,
    XrayXForwardedFor = "aws.xray.x_forwarded_for" => Http,
    DbSystem = "db.system" => Sql,
    DbSystemName = "db.system.name" => Sql,
    DbConnectionString = "db.connection_string" => Sql,
    DbName = "db.name" => Sql,
    DbNamespace = "db.namespace" => Sql,
    DbStatement = "db.statement" => Sql,
    DbQueryText = "db.query.text" => Sql,
    DbUser = "db.user" => Sql,
    AwsOperation = "aws.operation" => Aws,
    RpcMethod = "rpc.method" => RpcMethod,
    AwsAccountId = "aws.account_id" => Aws,
    AwsRegion = "aws.region" => Aws,
    AwsRequestId = "aws.request_id" => Aws,
    AwsRequestIdCamel = "aws.requestId" => Aws,
    AwsQueueUrl = "aws.queue_url" => Aws,
    AwsQueueUrlDotted = "aws.queue.url" => Aws,
    MessagingUrl = "messaging.url" => Aws,
    AwsTableName = "aws.table_name" => Aws,
    AwsTableNameDotted = "aws.table.name" => Aws,
    AwsDynamodbTableNames = "aws.dynamodb.table_names" => Aws,
    XrayRetries = "aws.xray.retries" => Aws,
    XraySamplingRuleName = "aws.xray.sampling_rule_name" => Aws,
}

/// Which part of the document a key feeds, deciding whether it is left out of metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Group {
    /// Kept in metadata too (unless it gave the document its name).
    Keep,
    /// Always turned into a field of its own.
    Always,
    /// Consumed when the document has an `http` block.
    Http,
    /// Consumed when the document has a `sql` block.
    Sql,
    /// The server's address, consumed by an `http` or a `sql` block.
    Connection,
    /// Consumed when the document has an `aws` object.
    Aws,
    /// Consumed when it became `aws.operation`.
    RpcMethod,
}

/// A span's attributes, with the known ones indexed by [`Key`].
pub(super) struct SpanAttributes<'a> {
    pub all: &'a [KeyValue],
    /// The known key of each attribute of `all`, same order.
    pub keys: Vec<Option<Key>>,
    known: [Option<&'a AnyValue>; Key::COUNT],
}

impl<'a> SpanAttributes<'a> {
    pub(super) fn index(all: &'a [KeyValue]) -> Self {
        let mut known = [None; Key::COUNT];
        let keys = all
            .iter()
            .map(|attribute| {
                let key = Key::of(&attribute.key)?;
                if let Some(value) = attribute.value.as_ref().filter(|value| value.value.is_some()) {
                    known[key as usize].get_or_insert(value);
                }
                Some(key)
            })
            .collect();
        SpanAttributes { all, keys, known }
    }

    pub(super) fn value(&self, key: Key) -> Option<&'a AnyValue> {
        self.known[key as usize]
    }

    pub(super) fn has(&self, key: Key) -> bool {
        self.known[key as usize].is_some()
    }

    /// A non-empty string value.
    pub(super) fn str(&self, key: Key) -> Option<&'a str> {
        self.value(key).and_then(as_str).filter(|text| !text.is_empty())
    }

    /// The first key with a non-empty string value.
    pub(super) fn first_str(&self, keys: &[Key]) -> Option<(Key, &'a str)> {
        keys.iter().find_map(|&key| Some((key, self.str(key)?)))
    }

    /// A whole number (from an int, an integral double or a numeric string).
    pub(super) fn int(&self, key: Key) -> Option<i64> {
        self.value(key).and_then(as_int)
    }

    pub(super) fn bool(&self, key: Key) -> Option<bool> {
        match self.value(key)?.value.as_ref()? {
            Value::BoolValue(flag) => Some(*flag),
            Value::StringValue(text) => text.parse().ok(),
            _ => None,
        }
    }

    /// A string array, or a single string as a one-element list.
    pub(super) fn strings(&self, key: Key) -> Vec<&'a str> {
        self.value(key).map(string_list).unwrap_or_default()
    }
}

/// Looks up one attribute in a list (for resources and events, which are read rarely).
pub(super) fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes.iter().find(|attribute| attribute.key == key).and_then(|attribute| attribute.value.as_ref())
}

pub(super) fn find_str<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    find(attributes, key).and_then(as_str).filter(|text| !text.is_empty())
}

pub(super) fn as_str(value: &AnyValue) -> Option<&str> {
    match value.value.as_ref()? {
        Value::StringValue(text) => Some(text),
        _ => None,
    }
}

pub(super) fn as_int(value: &AnyValue) -> Option<i64> {
    match value.value.as_ref()? {
        Value::IntValue(int) => Some(*int),
        Value::DoubleValue(double) if double.fract() == 0.0 && double.abs() < 9.0e18 => Some(*double as i64),
        Value::StringValue(text) => text.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn as_bool(value: &AnyValue) -> Option<bool> {
    match value.value.as_ref()? {
        Value::BoolValue(flag) => Some(*flag),
        _ => None,
    }
}

/// A string array, or a single string as a one-element list.
pub(super) fn string_list(value: &AnyValue) -> Vec<&str> {
    match &value.value {
        Some(Value::StringValue(text)) => vec![text.as_str()],
        Some(Value::ArrayValue(array)) => array.values.iter().filter_map(as_str).collect(),
        _ => Vec::new(),
    }
}

/// An OTLP value written as JSON: arrays and key-value lists nest, bytes become hex,
/// non-finite doubles `null` (JSON has no NaN).
#[derive(Clone, Copy)]
pub(super) struct OtlpJson<'a>(pub &'a AnyValue);

impl Serialize for OtlpJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0.value {
            None | Some(Value::StringValueStrindex(_)) => serializer.serialize_none(),
            Some(Value::StringValue(text)) => serializer.serialize_str(text),
            Some(Value::BoolValue(flag)) => serializer.serialize_bool(*flag),
            Some(Value::IntValue(int)) => serializer.serialize_i64(*int),
            Some(Value::DoubleValue(double)) => serializer.serialize_f64(*double),
            Some(Value::BytesValue(bytes)) => serializer.serialize_str(&hex::encode(bytes)),
            Some(Value::ArrayValue(array)) => {
                let mut sequence = serializer.serialize_seq(Some(array.values.len()))?;
                for value in &array.values {
                    sequence.serialize_element(&OtlpJson(value))?;
                }
                sequence.end()
            }
            Some(Value::KvlistValue(list)) => {
                let mut map = serializer.serialize_map(Some(list.values.len()))?;
                for entry in &list.values {
                    match &entry.value {
                        Some(value) => map.serialize_entry(&entry.key, &OtlpJson(value))?,
                        None => map.serialize_entry(&entry.key, &())?,
                    }
                }
                map.end()
            }
        }
    }
}
