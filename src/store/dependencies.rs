//! Calls between services over a time range, as Jaeger's `GET /api/dependencies` gives them:
//! a span whose parent span belongs to another service is one call from the parent's service
//! to its own; a client span (X-Ray remote and AWS subsegments among them) that no traced span
//! answered is one call to its peer (`peer.service`, `server.address`, … or the host of its
//! URL). Each link counts calls and errors (the callee span's status) and gives the P90 of the
//! callee spans' durations.
//!
//! Bounded: only spans that started in the range are counted, only blocks that overlap it are
//! read, newest first, and reading stops after [`MAX_SPANS_READ`] spans (the answer then says
//! it is partial).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::StoreError;
use super::block::{Block, Kind, attribute_key, key};
use super::engine::{Engine, Source};
use super::value::ValueRef;

/// Spans read at most for one answer; the newest blocks are read first.
pub const MAX_SPANS_READ: usize = 500_000;

/// The service name of spans whose resource has none (as Jaeger's API shows them).
const UNKNOWN_SERVICE: &str = "unknown_service";

/// OTLP span kinds that call out.
const KIND_CLIENT: i64 = 3;
const KIND_PRODUCER: i64 = 4;
/// OTLP status code ERROR.
const STATUS_ERROR: i64 = 2;

/// Span attributes naming a client span's peer, in order of preference; then the host of
/// [`PEER_URL_ATTRIBUTES`].
const PEER_ATTRIBUTES: [&str; 7] = [
    "peer.service",
    "aws.remote.service",
    "server.address",
    "net.peer.name",
    "aws.service",
    "rpc.service",
    "db.system",
];
const PEER_URL_ATTRIBUTES: [&str; 2] = ["url.full", "http.url"];

/// Which calls to count: those whose callee span started in `[start, end]` (Unix nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DependencySearch {
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
}

/// Calls from one service to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyLink {
    /// The caller.
    pub parent: String,
    /// The callee: a traced service, or a client span's peer.
    pub child: String,
    pub call_count: u64,
    /// Calls whose callee span has status error.
    pub error_count: u64,
    /// The 90th percentile of the callee spans' durations, in milliseconds (nearest rank).
    pub p90_duration_ms: f64,
    /// True when the callee was not traced: the link comes from client spans' peer names.
    pub peer: bool,
}

/// The links found, sorted by caller then callee.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Dependencies {
    pub links: Vec<DependencyLink>,
    /// Spans read to find them.
    pub spans_read: u64,
    /// True when reading stopped at [`MAX_SPANS_READ`]: older calls in the range are missing.
    pub truncated: bool,
}

/// One span as the aggregation needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallSpan<'a> {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// `None` for a root span.
    pub parent_span_id: Option<[u8; 8]>,
    pub service: &'a str,
    pub duration_ns: u64,
    pub error: bool,
    /// Whether its start is in the range asked for (spans outside it only name callers).
    pub in_range: bool,
    /// For a client or producer span: whom it called, when its attributes say.
    pub peer: Option<&'a str>,
}

/// Service names interned: the aggregation keeps small numbers, not strings, per span.
#[derive(Default)]
struct Names {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        id
    }
}

/// A span that may be a callee: its caller is known once every span has been seen.
struct Callee {
    trace_id: [u8; 16],
    parent_span_id: [u8; 8],
    service: u32,
    duration_ns: u64,
    error: bool,
}

/// A client span with a peer: a call to the peer unless a traced span answered it.
struct PeerCall {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    service: u32,
    peer: u32,
    duration_ns: u64,
    error: bool,
}

#[derive(Default)]
struct Link {
    calls: u64,
    errors: u64,
    durations_ns: Vec<u64>,
}

/// Caller → callee links from spans given in any order.
#[derive(Default)]
pub(crate) struct CallGraph {
    names: Names,
    /// Each span's service, to name the caller of its children.
    services: HashMap<([u8; 16], [u8; 8]), u32>,
    callees: Vec<Callee>,
    peer_calls: Vec<PeerCall>,
}

impl CallGraph {
    pub(crate) fn add(&mut self, span: CallSpan<'_>) {
        let service = self.names.id(span.service);
        self.services.insert((span.trace_id, span.span_id), service);
        if !span.in_range {
            return;
        }
        if let Some(parent_span_id) = span.parent_span_id {
            self.callees.push(Callee {
                trace_id: span.trace_id,
                parent_span_id,
                service,
                duration_ns: span.duration_ns,
                error: span.error,
            });
        }
        if let Some(peer) = span.peer.filter(|peer| !peer.is_empty() && *peer != span.service) {
            let peer = self.names.id(peer);
            self.peer_calls.push(PeerCall {
                trace_id: span.trace_id,
                span_id: span.span_id,
                service,
                peer,
                duration_ns: span.duration_ns,
                error: span.error,
            });
        }
    }

    /// The links, sorted by caller then callee.
    pub(crate) fn links(self) -> Vec<DependencyLink> {
        let mut links: HashMap<(u32, u32, bool), Link> = HashMap::new();
        let mut answered: HashSet<([u8; 16], [u8; 8])> = HashSet::new();
        for callee in &self.callees {
            let Some(&caller) = self.services.get(&(callee.trace_id, callee.parent_span_id)) else { continue };
            answered.insert((callee.trace_id, callee.parent_span_id));
            if caller != callee.service {
                let link = links.entry((caller, callee.service, false)).or_default();
                link.count(callee.duration_ns, callee.error);
            }
        }
        for call in &self.peer_calls {
            if !answered.contains(&(call.trace_id, call.span_id)) {
                links.entry((call.service, call.peer, true)).or_default().count(call.duration_ns, call.error);
            }
        }
        let names = &self.names.names;
        let mut links: Vec<DependencyLink> = links
            .into_iter()
            .map(|((caller, callee, peer), mut link)| DependencyLink {
                parent: names[caller as usize].clone(),
                child: names[callee as usize].clone(),
                call_count: link.calls,
                error_count: link.errors,
                p90_duration_ms: p90(&mut link.durations_ns) as f64 / 1_000_000.0,
                peer,
            })
            .collect();
        links.sort_by(|a, b| (&a.parent, &a.child, a.peer).cmp(&(&b.parent, &b.child, b.peer)));
        links
    }
}

impl Link {
    fn count(&mut self, duration_ns: u64, error: bool) {
        self.calls += 1;
        self.errors += u64::from(error);
        self.durations_ns.push(duration_ns);
    }
}

/// The nearest-rank 90th percentile (0 for no values).
fn p90(values: &mut [u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let rank = (values.len() * 9).div_ceil(10).max(1) - 1;
    *values.select_nth_unstable(rank).1
}

/// The links between services whose callee spans started in the search's range.
pub(crate) fn dependencies(engine: &Engine, search: DependencySearch) -> Result<Dependencies, StoreError> {
    let start = i64::try_from(search.start_unix_nano).unwrap_or(i64::MAX);
    let end = i64::try_from(search.end_unix_nano).unwrap_or(i64::MAX);
    let peer_columns: Vec<Box<str>> =
        PEER_ATTRIBUTES.iter().chain(PEER_URL_ATTRIBUTES.iter()).map(|name| attribute_key(name)).collect();
    let wanted = |name: &str| {
        matches!(
            name,
            key::TRACE_ID
                | key::SPAN_ID
                | key::PARENT_SPAN_ID
                | key::TIME
                | key::END
                | key::GROUP
                | key::STATUS_CODE
                | key::SPAN_KIND
        ) || peer_columns.iter().any(|column| &**column == name)
    };
    let tombstones = engine.tombstones();
    let mut graph = CallGraph::default();
    let mut answer = Dependencies::default();
    for source in engine.sources(Kind::Spans, &|open| open.snapshot(&wanted)) {
        if let Source::Sealed(meta) = &source
            && (meta.max_time < start || meta.min_time > end)
        {
            continue;
        }
        let block = engine.load(&source, &wanted)?;
        if answer.spans_read as usize + block.rows > MAX_SPANS_READ {
            answer.truncated = true;
            break;
        }
        answer.spans_read += block.rows as u64;
        add_block(&mut graph, &block, start, end, &tombstones);
    }
    answer.links = graph.links();
    Ok(answer)
}

fn add_block(graph: &mut CallGraph, block: &Block, start: i64, end: i64, tombstones: &HashMap<[u8; 16], u64>) {
    let services: Vec<&str> =
        block.groups.iter().map(|group| group.service().filter(|s| !s.is_empty()).unwrap_or(UNKNOWN_SERVICE)).collect();
    let ids = block.id16(key::TRACE_ID);
    let span_ids = block.id8(key::SPAN_ID);
    let parents = block.id8(key::PARENT_SPAN_ID);
    let mut host = String::new();
    for row in 0..block.rows {
        let (Some(trace_id), Some(span_id)) = (ids.get(row), span_ids.get(row)) else { break };
        if tombstones.contains_key(trace_id) {
            continue;
        }
        let service = usize::try_from(block.int(key::GROUP, row))
            .ok()
            .and_then(|group| services.get(group).copied())
            .unwrap_or(UNKNOWN_SERVICE);
        let span_start = block.int(key::TIME, row);
        let kind = block.int(key::SPAN_KIND, row);
        let peer = if kind == KIND_CLIENT || kind == KIND_PRODUCER { peer_of(block, row, &mut host) } else { None };
        graph.add(CallSpan {
            trace_id: *trace_id,
            span_id: *span_id,
            parent_span_id: parents.get(row).copied().filter(|parent| *parent != [0; 8]),
            service,
            duration_ns: u64::try_from(block.int(key::END, row).saturating_sub(span_start)).unwrap_or(0),
            error: block.int(key::STATUS_CODE, row) == STATUS_ERROR,
            in_range: (start..=end).contains(&span_start),
            peer,
        });
    }
}

/// The peer a client span names: the first of [`PEER_ATTRIBUTES`] it has, else the host (and
/// port) of its URL, written into `host`.
fn peer_of<'a>(block: &'a Block, row: usize, host: &'a mut String) -> Option<&'a str> {
    let text = |name: &str| match block.values(&attribute_key(name)).and_then(|values| values.get(row)) {
        Some(ValueRef::Str(text)) if !text.is_empty() => Some(text),
        _ => None,
    };
    if let Some(peer) = PEER_ATTRIBUTES.iter().find_map(|name| text(name)) {
        return Some(peer);
    }
    let url = PEER_URL_ATTRIBUTES.iter().find_map(|name| text(name))?;
    let authority = url.split_once("://")?.1.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    host.clear();
    host.push_str(authority);
    (!host.is_empty()).then_some(host.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn span<'a>(trace: u8, id: u8, parent: Option<u8>, service: &'a str, duration_ms: u64) -> CallSpan<'a> {
        CallSpan {
            trace_id: [trace; 16],
            span_id: [id; 8],
            parent_span_id: parent.map(|parent| [parent; 8]),
            service,
            duration_ns: duration_ms * MS,
            error: false,
            in_range: true,
            peer: None,
        }
    }

    fn graph(spans: &[CallSpan<'_>]) -> Vec<DependencyLink> {
        let mut graph = CallGraph::default();
        spans.iter().for_each(|span| graph.add(*span));
        graph.links()
    }

    fn summary(links: &[DependencyLink]) -> Vec<(&str, &str, u64, u64)> {
        links.iter().map(|l| (l.parent.as_str(), l.child.as_str(), l.call_count, l.error_count)).collect()
    }

    #[test]
    fn a_child_in_another_service_is_a_call_from_its_parents_service() {
        let links = graph(&[span(1, 1, None, "web", 50), span(1, 2, Some(1), "api", 20)]);
        assert_eq!(summary(&links), [("web", "api", 1, 0)]);
        assert!(!links[0].peer);
    }

    #[test]
    fn children_in_the_same_service_are_no_call() {
        let links = graph(&[span(1, 1, None, "web", 50), span(1, 2, Some(1), "web", 20)]);
        assert!(links.is_empty(), "{links:?}");
    }

    #[test]
    fn the_parent_may_come_after_the_child() {
        let links = graph(&[span(1, 2, Some(1), "api", 20), span(1, 1, None, "web", 50)]);
        assert_eq!(summary(&links), [("web", "api", 1, 0)]);
    }

    #[test]
    fn calls_and_errors_are_counted_per_link_across_traces() {
        let failed = CallSpan { error: true, ..span(2, 2, Some(1), "api", 30) };
        let links = graph(&[
            span(1, 1, None, "web", 50),
            span(1, 2, Some(1), "api", 10),
            span(2, 1, None, "web", 50),
            failed,
            span(3, 1, None, "web", 50),
            span(3, 2, Some(1), "db", 5),
        ]);
        assert_eq!(summary(&links), [("web", "api", 2, 1), ("web", "db", 1, 0)]);
    }

    #[test]
    fn the_p90_is_the_nearest_rank_of_the_callee_durations() {
        let mut spans = Vec::new();
        for trace in 1..=10u8 {
            spans.push(span(trace, 1, None, "web", 500));
            spans.push(span(trace, 2, Some(1), "api", u64::from(trace) * 10));
        }
        let links = graph(&spans);
        assert_eq!(links[0].p90_duration_ms, 90.0);
    }

    #[test]
    fn a_span_whose_parent_is_unknown_is_no_call() {
        assert!(graph(&[span(1, 2, Some(9), "api", 20)]).is_empty());
    }

    #[test]
    fn a_same_span_id_in_another_trace_is_not_the_parent() {
        assert!(graph(&[span(1, 1, None, "web", 50), span(2, 2, Some(1), "api", 20)]).is_empty());
    }

    #[test]
    fn a_callee_outside_the_range_is_not_counted_but_a_caller_outside_it_names_the_call() {
        let caller = CallSpan { in_range: false, ..span(1, 1, None, "web", 50) };
        let late = CallSpan { in_range: false, ..span(1, 3, Some(1), "db", 5) };
        let links = graph(&[caller, span(1, 2, Some(1), "api", 20), late]);
        assert_eq!(summary(&links), [("web", "api", 1, 0)]);
    }

    #[test]
    fn a_client_span_nobody_answered_is_a_call_to_its_peer() {
        let client = CallSpan { peer: Some("s3.amazonaws.com"), ..span(1, 2, Some(1), "web", 20) };
        let links = graph(&[span(1, 1, None, "web", 50), client]);
        assert_eq!(summary(&links), [("web", "s3.amazonaws.com", 1, 0)]);
        assert!(links[0].peer);
    }

    #[test]
    fn a_client_span_answered_by_a_traced_service_is_one_call_to_that_service() {
        let client = CallSpan { peer: Some("api.internal"), ..span(1, 2, Some(1), "web", 20) };
        let links = graph(&[span(1, 1, None, "web", 50), client, span(1, 3, Some(2), "api", 15)]);
        assert_eq!(summary(&links), [("web", "api", 1, 0)]);
    }
}
