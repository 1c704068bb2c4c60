//! Open blocks: OTLP requests appended row by row into growing columns, until the block is
//! sealed. Appending a span copies its values into the columns; nothing is allocated per span
//! except when a new attribute key or resource first appears in the block.

mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, metric};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::store::block::{Block, Column, Group, Kind, attribute_key, key};
use crate::store::encode::DataPoints;
use crate::store::value::{OwnedValue, ValueColumn};

/// Spans that cannot be stored (no valid trace or span id), with the first one described.
#[derive(Debug, Default)]
pub(crate) struct Invalid {
    pub spans: usize,
    pub first: Option<String>,
}

/// The attribute columns of an open block, found by key.
#[derive(Debug, Default)]
struct AttributeColumns {
    /// Keys as bytes, so a key read from protobuf is found without validating it again.
    index: foldhash::HashMap<Box<[u8]>, usize>,
    columns: Vec<(Box<str>, ValueColumn)>,
    /// The column after the one found last: spans of one app list their attributes in the same
    /// order, so this is usually the next one asked for, found without hashing the key.
    cursor: usize,
}

impl AttributeColumns {
    /// The column of attribute `key`, added if new.
    fn column(&mut self, key: &str) -> &mut ValueColumn {
        let found = match self.find(key.as_bytes()) {
            Some(found) => found,
            None => self.add(key),
        };
        self.cursor = found + 1;
        &mut self.columns[found].1
    }

    /// The column of attribute `key` given as bytes, added if new; `None` when a new key is
    /// not UTF-8 (only a key never seen is validated).
    fn column_of_bytes(&mut self, key: &[u8]) -> Option<&mut ValueColumn> {
        let found = match self.find(key) {
            Some(found) => found,
            None => self.add(std::str::from_utf8(key).ok()?),
        };
        self.cursor = found + 1;
        Some(&mut self.columns[found].1)
    }

    /// Takes back every value pushed for `row` and after.
    fn truncate(&mut self, row: usize) {
        for (_, column) in &mut self.columns {
            column.truncate(row);
        }
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        match self.columns.get(self.cursor) {
            Some((name, _)) if name.as_bytes().get(key::ATTRIBUTE_PREFIX.len()..) == Some(key) => Some(self.cursor),
            _ => self.index.get(key).copied(),
        }
    }

    fn add(&mut self, key: &str) -> usize {
        self.index.insert(key.as_bytes().into(), self.columns.len());
        self.columns.push((attribute_key(key), ValueColumn::default()));
        self.columns.len() - 1
    }

    fn push(&mut self, row: usize, attributes: &[KeyValue]) {
        for attribute in attributes {
            let column = self.column(&attribute.key);
            match attribute.value.as_ref() {
                Some(value) if value.value.is_some() => column.push_any(row, Some(value)),
                // An attribute without a value is kept, as JSON null.
                _ => column.push_json(row, &()),
            }
        }
    }

    fn raw_bytes(&self) -> usize {
        self.columns.iter().map(|(_, column)| column.raw_bytes()).sum()
    }

    /// Copies the columns `wanted` says yes to and that hold a value.
    fn copy_into(&self, columns: &mut HashMap<Box<str>, Column>, wanted: &dyn Fn(&str) -> bool) {
        for (name, values) in &self.columns {
            if values.tag_mask() != 0 && wanted(name) {
                columns.insert(name.clone(), Column::Values(values.clone()));
            }
        }
    }

    /// Empties every column, keeping its memory; a column that held nothing in the block just
    /// finished is dropped, so keys that stop appearing do not pile up.
    fn clear(&mut self) {
        self.columns.retain(|(_, values)| values.tag_mask() != 0);
        self.columns.iter_mut().for_each(|(_, values)| values.clear());
        self.index = self
            .columns
            .iter()
            .enumerate()
            .map(|(at, (name, _))| (name.as_bytes()[key::ATTRIBUTE_PREFIX.len()..].into(), at))
            .collect();
        self.cursor = 0;
    }
}

/// The distinct resources and scopes of an open block.
#[derive(Debug, Default)]
struct Groups {
    groups: Vec<Group>,
    /// A group's identity: its resource and scope as encoded bytes.
    index: foldhash::HashMap<Vec<u8>, usize>,
    /// Reused for each lookup.
    scratch: Vec<u8>,
}

impl Groups {
    fn find_or_add(&mut self, resource: Option<&Resource>, scope: Option<&InstrumentationScope>) -> i64 {
        use prost::Message;
        self.scratch.clear();
        if let Some(resource) = resource {
            resource.encode(&mut self.scratch).unwrap_or_default();
        }
        self.scratch.push(0xff);
        if let Some(scope) = scope {
            self.scratch.extend_from_slice(scope.name.as_bytes());
            self.scratch.push(0);
            self.scratch.extend_from_slice(scope.version.as_bytes());
        }
        if let Some(&group) = self.index.get(&self.scratch) {
            return group as i64;
        }
        let (scope_name, scope_version) = scope.map_or(("", ""), |scope| (scope.name.as_str(), scope.version.as_str()));
        self.add(resource, scope_name, scope_version)
    }

    /// Adds a group under the identity in `scratch`.
    fn add(&mut self, resource: Option<&Resource>, scope_name: &str, scope_version: &str) -> i64 {
        let group = Group {
            resource: resource
                .map(|resource| {
                    resource
                        .attributes
                        .iter()
                        .filter_map(|kv| Some((kv.key.clone(), OwnedValue::from_any(kv.value.as_ref())?)))
                        .collect()
                })
                .unwrap_or_default(),
            scope_name: scope_name.to_owned(),
            scope_version: scope_version.to_owned(),
        };
        self.groups.push(group);
        self.index.insert(self.scratch.clone(), self.groups.len() - 1);
        (self.groups.len() - 1) as i64
    }

    fn shared(&self) -> Arc<[Group]> {
        self.groups.iter().cloned().collect()
    }
}

/// The fixed columns of one signal's open block, by name.
trait FixedColumns {
    fn fixed(&self) -> Vec<(&'static str, &dyn ColumnSource)>;
}

/// Something that can hand out a copy of itself, or of some of its rows, as a [`Column`].
trait ColumnSource {
    fn to_column(&self) -> Column;
    fn select(&self, rows: &[usize]) -> Column;
}

fn pick<T: Copy + Default>(from: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&row| from.get(row).copied().unwrap_or_default()).collect()
}

impl ColumnSource for Vec<[u8; 16]> {
    fn to_column(&self) -> Column {
        Column::Id16(self.clone())
    }

    fn select(&self, rows: &[usize]) -> Column {
        Column::Id16(pick(self, rows))
    }
}

impl ColumnSource for Vec<[u8; 8]> {
    fn to_column(&self) -> Column {
        Column::Id8(self.clone())
    }

    fn select(&self, rows: &[usize]) -> Column {
        Column::Id8(pick(self, rows))
    }
}

impl ColumnSource for Vec<i64> {
    fn to_column(&self) -> Column {
        Column::Int(self.clone())
    }

    fn select(&self, rows: &[usize]) -> Column {
        Column::Int(pick(self, rows))
    }
}

impl ColumnSource for ValueColumn {
    fn to_column(&self) -> Column {
        Column::Values(self.clone())
    }

    fn select(&self, rows: &[usize]) -> Column {
        Column::Values(ValueColumn::select(self, rows))
    }
}

/// An open block of one signal: its rows so far.
#[derive(Debug)]
pub(crate) struct OpenBlock {
    kind: Kind,
    rows: usize,
    fixed: Fixed,
    attributes: AttributeColumns,
    groups: Groups,
    /// Bytes of text and numbers appended (what the columns hold before compression).
    raw_bytes: usize,
}

/// The fixed columns of each signal.
#[derive(Debug)]
enum Fixed {
    Spans(Box<SpanColumns>),
    Logs(Box<LogColumns>),
    Metrics(Box<MetricColumns>),
}

#[derive(Debug, Default)]
struct SpanColumns {
    trace_id: Vec<[u8; 16]>,
    span_id: Vec<[u8; 8]>,
    parent_span_id: Vec<[u8; 8]>,
    start: Vec<i64>,
    end: Vec<i64>,
    group: Vec<i64>,
    kind: Vec<i64>,
    status_code: Vec<i64>,
    name: ValueColumn,
    status_message: ValueColumn,
    trace_state: ValueColumn,
    events: ValueColumn,
    links: ValueColumn,
}

#[derive(Debug, Default)]
struct LogColumns {
    time: Vec<i64>,
    record_time: Vec<i64>,
    observed_time: Vec<i64>,
    group: Vec<i64>,
    severity_number: Vec<i64>,
    trace_id: Vec<[u8; 16]>,
    span_id: Vec<[u8; 8]>,
    severity_text: ValueColumn,
    body: ValueColumn,
}

#[derive(Debug, Default)]
struct MetricColumns {
    time: Vec<i64>,
    group: Vec<i64>,
    name: ValueColumn,
    description: ValueColumn,
    unit: ValueColumn,
    metric_type: ValueColumn,
    temporality: ValueColumn,
    monotonic: ValueColumn,
    data_points: ValueColumn,
}

impl SpanColumns {
    fn clear(&mut self) {
        let SpanColumns {
            trace_id,
            span_id,
            parent_span_id,
            start,
            end,
            group,
            kind,
            status_code,
            name,
            status_message,
            trace_state,
            events,
            links,
        } = self;
        trace_id.clear();
        span_id.clear();
        parent_span_id.clear();
        [start, end, group, kind, status_code].into_iter().for_each(Vec::clear);
        [name, status_message, trace_state, events, links].into_iter().for_each(ValueColumn::clear);
    }
}

impl LogColumns {
    fn clear(&mut self) {
        let LogColumns {
            time,
            record_time,
            observed_time,
            group,
            severity_number,
            trace_id,
            span_id,
            severity_text,
            body,
        } = self;
        [time, record_time, observed_time, group, severity_number].into_iter().for_each(Vec::clear);
        trace_id.clear();
        span_id.clear();
        [severity_text, body].into_iter().for_each(ValueColumn::clear);
    }
}

impl MetricColumns {
    fn clear(&mut self) {
        let MetricColumns { time, group, name, description, unit, metric_type, temporality, monotonic, data_points } =
            self;
        [time, group].into_iter().for_each(Vec::clear);
        [name, description, unit, metric_type, temporality, monotonic, data_points]
            .into_iter()
            .for_each(ValueColumn::clear);
    }
}

impl FixedColumns for SpanColumns {
    fn fixed(&self) -> Vec<(&'static str, &dyn ColumnSource)> {
        vec![
            (key::TRACE_ID, &self.trace_id),
            (key::SPAN_ID, &self.span_id),
            (key::PARENT_SPAN_ID, &self.parent_span_id),
            (key::TIME, &self.start),
            (key::END, &self.end),
            (key::GROUP, &self.group),
            (key::SPAN_KIND, &self.kind),
            (key::STATUS_CODE, &self.status_code),
            (key::NAME, &self.name),
            (key::STATUS_MESSAGE, &self.status_message),
            (key::TRACE_STATE, &self.trace_state),
            (key::EVENTS, &self.events),
            (key::LINKS, &self.links),
        ]
    }
}

impl FixedColumns for LogColumns {
    fn fixed(&self) -> Vec<(&'static str, &dyn ColumnSource)> {
        vec![
            (key::TIME, &self.time),
            (key::RECORD_TIME, &self.record_time),
            (key::OBSERVED_TIME, &self.observed_time),
            (key::GROUP, &self.group),
            (key::SEVERITY_NUMBER, &self.severity_number),
            (key::TRACE_ID, &self.trace_id),
            (key::SPAN_ID, &self.span_id),
            (key::SEVERITY_TEXT, &self.severity_text),
            (key::BODY, &self.body),
        ]
    }
}

impl FixedColumns for MetricColumns {
    fn fixed(&self) -> Vec<(&'static str, &dyn ColumnSource)> {
        vec![
            (key::TIME, &self.time),
            (key::GROUP, &self.group),
            (key::NAME, &self.name),
            (key::DESCRIPTION, &self.description),
            (key::UNIT, &self.unit),
            (key::METRIC_TYPE, &self.metric_type),
            (key::TEMPORALITY, &self.temporality),
            (key::MONOTONIC, &self.monotonic),
            (key::DATA_POINTS, &self.data_points),
        ]
    }
}

impl OpenBlock {
    pub(crate) fn new(kind: Kind) -> OpenBlock {
        let fixed = match kind {
            Kind::Spans => Fixed::Spans(Box::default()),
            Kind::Logs => Fixed::Logs(Box::default()),
            Kind::Metrics => Fixed::Metrics(Box::default()),
        };
        OpenBlock {
            kind,
            rows: 0,
            fixed,
            attributes: AttributeColumns::default(),
            groups: Groups::default(),
            raw_bytes: 0,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn raw_bytes(&self) -> usize {
        self.raw_bytes
    }

    /// Distinct trace ids among the rows (spans).
    pub(crate) fn distinct_traces(&self) -> usize {
        match &self.fixed {
            Fixed::Spans(columns) => columns.trace_id.iter().collect::<foldhash::HashSet<_>>().len(),
            _ => 0,
        }
    }

    /// Every attribute column (`a:key`) and resource attribute key (as `a:key`) of the block,
    /// with the types of value it holds ([`ValueColumn::tag_mask`]).
    pub(crate) fn column_types(&self) -> Vec<(Box<str>, u8)> {
        let mut types: Vec<(Box<str>, u8)> =
            self.attributes.columns.iter().map(|(name, values)| (name.clone(), values.tag_mask())).collect();
        for group in &self.groups.groups {
            types.extend(group.resource.iter().map(|(key, value)| (attribute_key(key), value.tag_bit())));
        }
        types
    }

    /// Changes whenever a column or group is added or a column holds a new type of value.
    pub(crate) fn type_signature(&self) -> u64 {
        let start = (self.groups.groups.len() as u64) << 32 | self.attributes.columns.len() as u64;
        self.attributes
            .columns
            .iter()
            .fold(start, |signature, (_, values)| signature.wrapping_mul(31).wrapping_add(u64::from(values.tag_mask())))
    }

    /// Appends every log record. Returns the records appended.
    pub(crate) fn add_logs(&mut self, resource_logs: &[ResourceLogs]) -> usize {
        let Fixed::Logs(columns) = &mut self.fixed else { return 0 };
        let before = self.rows;
        let attributes_before = self.attributes.raw_bytes() + columns.body.raw_bytes();
        for resource_logs in resource_logs {
            for scope_logs in &resource_logs.scope_logs {
                let group = self.groups.find_or_add(resource_logs.resource.as_ref(), scope_logs.scope.as_ref());
                for record in &scope_logs.log_records {
                    let row = self.rows;
                    let record_time = nanos(record.time_unix_nano);
                    let observed_time = nanos(record.observed_time_unix_nano);
                    columns.time.push(if record_time != 0 { record_time } else { observed_time });
                    columns.record_time.push(record_time);
                    columns.observed_time.push(observed_time);
                    columns.group.push(group);
                    columns.severity_number.push(i64::from(record.severity_number));
                    columns.trace_id.push(id::<16>(&record.trace_id).unwrap_or_default());
                    columns.span_id.push(id::<8>(&record.span_id).unwrap_or_default());
                    if !record.severity_text.is_empty() {
                        columns.severity_text.push_str(row, &record.severity_text);
                    }
                    columns.body.push_any(row, record.body.as_ref());
                    self.attributes.push(row, &record.attributes);
                    self.rows += 1;
                }
            }
        }
        let appended = self.rows - before;
        self.raw_bytes += appended * (8 * 5 + 24);
        self.raw_bytes += (self.attributes.raw_bytes() + columns.body.raw_bytes()).saturating_sub(attributes_before);
        appended
    }

    /// Appends one row per metric (its data points as JSON). Returns the data points appended.
    pub(crate) fn add_metrics(&mut self, resource_metrics: &[ResourceMetrics]) -> usize {
        let Fixed::Metrics(columns) = &mut self.fixed else { return 0 };
        let before = columns.data_points.raw_bytes() + columns.name.raw_bytes();
        let mut points = 0;
        for resource_metrics in resource_metrics {
            for scope_metrics in &resource_metrics.scope_metrics {
                let group = self.groups.find_or_add(resource_metrics.resource.as_ref(), scope_metrics.scope.as_ref());
                for metric in &scope_metrics.metrics {
                    let row = self.rows;
                    let shape = MetricShape::of(metric.data.as_ref());
                    columns.time.push(shape.latest_time);
                    columns.group.push(group);
                    columns.name.push_str(row, &metric.name);
                    columns.description.push_str(row, &metric.description);
                    columns.unit.push_str(row, &metric.unit);
                    columns.metric_type.push_str(row, shape.metric_type);
                    if let Some(temporality) = shape.aggregation_temporality {
                        columns.temporality.push_str(row, temporality);
                    }
                    if let Some(monotonic) = shape.is_monotonic {
                        columns.monotonic.push_bool(row, monotonic);
                    }
                    match &metric.data {
                        Some(data) => columns.data_points.push_json(row, &DataPoints(data)),
                        None => columns.data_points.push_json(row, &serde_json::json!([])),
                    }
                    points += shape.points.max(1);
                    self.rows += 1;
                }
            }
        }
        self.raw_bytes += (columns.data_points.raw_bytes() + columns.name.raw_bytes()).saturating_sub(before);
        points
    }

    /// A copy of the rows so far, with the columns `wanted` says yes to.
    pub(crate) fn snapshot(&self, wanted: &dyn Fn(&str) -> bool) -> Block {
        let mut columns = HashMap::new();
        for (name, column) in self.fixed_columns() {
            if wanted(name) {
                columns.insert(name.into(), column.to_column());
            }
        }
        self.attributes.copy_into(&mut columns, wanted);
        Block { kind: self.kind, rows: self.rows, groups: self.groups.shared(), columns }
    }

    /// Every column of the rows of one trace (spans), copied out.
    pub(crate) fn trace_rows(&self, trace_id: &[u8; 16]) -> Block {
        let rows: Vec<usize> = match &self.fixed {
            Fixed::Spans(columns) => (0..self.rows).filter(|&row| &columns.trace_id[row] == trace_id).collect(),
            _ => Vec::new(),
        };
        let mut columns: HashMap<Box<str>, Column> = HashMap::new();
        if !rows.is_empty() {
            for (name, column) in self.fixed_columns() {
                columns.insert(name.into(), column.select(&rows));
            }
            for (name, values) in &self.attributes.columns {
                columns.insert(name.clone(), Column::Values(values.select(&rows)));
            }
        }
        Block { kind: self.kind, rows: rows.len(), groups: self.groups.shared(), columns }
    }

    /// The block with every column, leaving this one empty.
    ///
    /// The rows are copied out (each column allocated once, at its final size) and the open
    /// block keeps its buffers: the next block fills memory already in use instead of growing
    /// fresh buffers by doubling.
    pub(crate) fn take(&mut self) -> Block {
        let block = self.snapshot(&|_| true);
        self.rows = 0;
        self.raw_bytes = 0;
        match &mut self.fixed {
            Fixed::Spans(columns) => columns.clear(),
            Fixed::Logs(columns) => columns.clear(),
            Fixed::Metrics(columns) => columns.clear(),
        }
        self.attributes.clear();
        self.groups = Groups::default();
        block
    }

    fn fixed_columns(&self) -> Vec<(&'static str, &dyn ColumnSource)> {
        match &self.fixed {
            Fixed::Spans(columns) => columns.fixed(),
            Fixed::Logs(columns) => columns.fixed(),
            Fixed::Metrics(columns) => columns.fixed(),
        }
    }
}

/// What a metric's row records about its data besides the points themselves.
struct MetricShape {
    metric_type: &'static str,
    aggregation_temporality: Option<&'static str>,
    is_monotonic: Option<bool>,
    points: usize,
    latest_time: i64,
}

impl MetricShape {
    fn of(data: Option<&metric::Data>) -> MetricShape {
        fn latest(times: impl Iterator<Item = u64>) -> i64 {
            nanos(times.max().unwrap_or(0))
        }
        let (metric_type, aggregation_temporality, is_monotonic, points, latest_time) = match data {
            None => ("empty", None, None, 0, 0),
            Some(metric::Data::Gauge(gauge)) => {
                let times = gauge.data_points.iter().map(|p| p.time_unix_nano);
                ("gauge", None, None, gauge.data_points.len(), latest(times))
            }
            Some(metric::Data::Sum(sum)) => {
                let times = sum.data_points.iter().map(|p| p.time_unix_nano);
                let temporality = Some(temporality(sum.aggregation_temporality));
                ("sum", temporality, Some(sum.is_monotonic), sum.data_points.len(), latest(times))
            }
            Some(metric::Data::Histogram(histogram)) => {
                let times = histogram.data_points.iter().map(|p| p.time_unix_nano);
                let temporality = Some(temporality(histogram.aggregation_temporality));
                ("histogram", temporality, None, histogram.data_points.len(), latest(times))
            }
            Some(metric::Data::ExponentialHistogram(histogram)) => {
                let times = histogram.data_points.iter().map(|p| p.time_unix_nano);
                let temporality = Some(temporality(histogram.aggregation_temporality));
                ("exponential_histogram", temporality, None, histogram.data_points.len(), latest(times))
            }
            Some(metric::Data::Summary(summary)) => {
                let times = summary.data_points.iter().map(|p| p.time_unix_nano);
                ("summary", None, None, summary.data_points.len(), latest(times))
            }
        };
        MetricShape { metric_type, aggregation_temporality, is_monotonic, points, latest_time }
    }
}

fn temporality(value: i32) -> &'static str {
    match value {
        1 => "delta",
        2 => "cumulative",
        _ => "unspecified",
    }
}

/// A trace (16 bytes) or span (8 bytes) id, if it has the right length and is not all zeros.
pub(crate) fn id<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let id = <[u8; N]>::try_from(bytes).ok()?;
    if id.iter().all(|byte| *byte == 0) { None } else { Some(id) }
}

/// Unix nanos as a signed number (times past 2262 are clamped).
fn nanos(time: u64) -> i64 {
    i64::try_from(time).unwrap_or(i64::MAX)
}
