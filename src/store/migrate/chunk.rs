//! Items read from the v1 store grouped back into OTLP requests: items of one resource and
//! scope share one `Resource*` / `Scope*` message, as they did when they arrived.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::v1_json::{self, JsonResult};

/// One row of the v1 store, decoded, with the text of its resource and scope.
pub(super) struct StoredItem<T> {
    /// The row's place in the store's insertion sequence (a span: its trace's).
    pub seq: i64,
    /// The resource's attributes as the store kept them (JSON): the grouping key.
    pub resource: String,
    pub scope_name: String,
    pub scope_version: String,
    pub item: T,
}

/// Items of one signal waiting to be sent as one request.
pub(super) struct Pending<T> {
    resource_index: HashMap<String, usize>,
    resources: Vec<ResourceGroup<T>>,
    items: usize,
    /// The oldest item's `seq`, so pending requests go out oldest first.
    first_seq: Option<i64>,
}

struct ResourceGroup<T> {
    resource: Option<Resource>,
    scopes: Vec<ScopeGroup<T>>,
}

struct ScopeGroup<T> {
    name: String,
    version: String,
    items: Vec<T>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending { resource_index: HashMap::new(), resources: Vec::new(), items: 0, first_seq: None }
    }
}

impl<T> Pending<T> {
    pub(super) fn len(&self) -> usize {
        self.items
    }

    pub(super) fn first_seq(&self) -> Option<i64> {
        self.first_seq
    }

    /// Adds an item under its resource and scope; fails only when the resource's JSON does
    /// not decode (the item is then not added).
    pub(super) fn push(&mut self, stored: StoredItem<T>) -> JsonResult<()> {
        let index = match self.resource_index.get(stored.resource.as_str()) {
            Some(index) => *index,
            None => {
                let attributes = v1_json::attributes(&stored.resource)?;
                let resource = (!attributes.is_empty()).then(|| Resource { attributes, ..Default::default() });
                self.resources.push(ResourceGroup { resource, scopes: Vec::new() });
                let index = self.resources.len() - 1;
                self.resource_index.insert(stored.resource, index);
                index
            }
        };
        let scopes = &mut self.resources[index].scopes;
        match scopes.iter_mut().find(|scope| scope.name == stored.scope_name && scope.version == stored.scope_version) {
            Some(scope) => scope.items.push(stored.item),
            None => scopes.push(ScopeGroup {
                name: stored.scope_name,
                version: stored.scope_version,
                items: vec![stored.item],
            }),
        }
        self.items += 1;
        self.first_seq.get_or_insert(stored.seq);
        Ok(())
    }

    /// The pending items by resource and scope, leaving this empty.
    fn take(&mut self) -> Vec<ResourceGroup<T>> {
        self.resource_index.clear();
        self.items = 0;
        self.first_seq = None;
        std::mem::take(&mut self.resources)
    }
}

/// A scope as OTLP has it: absent when the store kept neither a name nor a version.
fn scope(name: String, version: String) -> Option<InstrumentationScope> {
    if name.is_empty() && version.is_empty() {
        return None;
    }
    Some(InstrumentationScope { name, version, ..Default::default() })
}

impl Pending<Span> {
    pub(super) fn take_request(&mut self) -> ExportTraceServiceRequest {
        let resource_spans = self
            .take()
            .into_iter()
            .map(|group| ResourceSpans {
                resource: group.resource,
                scope_spans: group
                    .scopes
                    .into_iter()
                    .map(|s| ScopeSpans { scope: scope(s.name, s.version), spans: s.items, ..Default::default() })
                    .collect(),
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest { resource_spans }
    }
}

impl Pending<LogRecord> {
    pub(super) fn take_request(&mut self) -> ExportLogsServiceRequest {
        let resource_logs = self
            .take()
            .into_iter()
            .map(|group| ResourceLogs {
                resource: group.resource,
                scope_logs: group
                    .scopes
                    .into_iter()
                    .map(|s| ScopeLogs { scope: scope(s.name, s.version), log_records: s.items, ..Default::default() })
                    .collect(),
                ..Default::default()
            })
            .collect();
        ExportLogsServiceRequest { resource_logs }
    }
}

impl Pending<Metric> {
    pub(super) fn take_request(&mut self) -> ExportMetricsServiceRequest {
        let resource_metrics = self
            .take()
            .into_iter()
            .map(|group| ResourceMetrics {
                resource: group.resource,
                scope_metrics: group
                    .scopes
                    .into_iter()
                    .map(|s| ScopeMetrics { scope: scope(s.name, s.version), metrics: s.items, ..Default::default() })
                    .collect(),
                ..Default::default()
            })
            .collect();
        ExportMetricsServiceRequest { resource_metrics }
    }
}
