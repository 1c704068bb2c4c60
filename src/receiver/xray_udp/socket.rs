//! The X-Ray UDP receive loop: reads datagrams from the socket, parses them (`datagram`) and
//! hands the valid segment documents, byte-for-byte, to the router in batches.
//!
//! [`serve`] reads into one reused 64 KiB buffer, copies each valid document once into
//! [`bytes::Bytes`], and after each wakeup drains up to [`MAX_DATAGRAMS_PER_BATCH`] datagrams that are
//! already queued in the socket into a single [`Batch`], so a burst costs one routing step
//! instead of one per datagram. Malformed datagrams are counted in
//! `waggle_receiver_rejected_requests{receiver="xray_udp",signal="traces",reason=...}` and
//! logged at WARN, at most once per [`WARN_INTERVAL`] (with a count of the lines left out);
//! the line names the peer, the reason and the first bytes of the datagram, escaped, never the
//! whole payload. Valid documents count in `waggle_receiver_received_items`, and in
//! `waggle_receiver_accepted_items` when every lane that takes traces took the batch (a full
//! lane counts its own drop). Received segments and rejected datagrams are also totalled in
//! the [`ReceiverCounts`] given to [`serve`], for the X-Ray daemon telemetry. On shutdown the
//! loop takes what the socket already holds, then returns.
//!
//! The batch being filled holds its segments' bytes of the memory budget ([`serve_within`]),
//! taken datagram by datagram before the document is copied, and hands them to the
//! [`Batch`] (given back when the last lane lets it go). A datagram the budget has no room
//! for has no one to answer: it is dropped, counted in
//! `waggle_receiver_rejected_requests{receiver="xray_udp",signal="traces",reason="memory_limit"}`
//! (and as spillover in the daemon telemetry) and logged at WARN, at most once per
//! [`WARN_INTERVAL`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::RECEIVER;
use super::datagram::{DatagramError, MAX_DATAGRAM_BYTES, ParsedDatagram, check_received_len, parse_datagram};
use crate::limits::{BudgetExhausted, MemoryBudget, MemoryPermit};
use crate::model::{Batch, Signal, XraySegment};
use crate::pipeline::router::Router;
use crate::telemetry::counts::ReceiverCounts;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::ratelimit::LogLimiter;

/// At most this many datagrams already waiting in the socket are drained into one batch.
/// Measured on a loopback flood of 940-byte captured datagrams (2 shared cores, release):
/// about 300 k datagrams/s taken with draining, about 140 k/s with one batch per datagram,
/// because each batch costs an allocation, a lane reservation and a wakeup of the lane.
pub const MAX_DATAGRAMS_PER_BATCH: usize = 64;

/// The socket receive buffer (`SO_RCVBUF`) asked for. Linux defaults to 208 KiB, which holds
/// only about a hundred 1 KB datagrams (each costs its size plus ~1 KiB of kernel overhead);
/// SDKs send a burst of datagrams whenever a request finishes, and a larger buffer absorbs
/// bursts while the receive task waits for a core. In the flood measurement above, 15–17 % of
/// the datagrams were taken with the default buffer and 50–65 % with this one. The kernel caps
/// the value at `net.core.rmem_max` (and reports twice what it grants); the effective size is
/// logged at start-up. (The X-Ray daemon dropped its own 64 KB `SO_RCVBUF` in v3.0.1.)
pub const RECEIVE_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// At most one WARN line per interval for malformed datagrams (and one for socket errors).
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// How long the loop waits after a socket error that is not transient.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Bytes of a malformed datagram quoted (escaped) in its WARN line.
const LOGGED_PREFIX_BYTES: usize = 48;

/// The `reason` a datagram dropped for want of memory is counted under (as OTLP's refusals).
pub const MEMORY_LIMIT_REASON: &str = "memory_limit";

/// Receives X-Ray datagrams on `socket` until `shutdown` is cancelled, then drains what the
/// socket already holds and returns. Never fails on bad input or a transient socket error.
/// Nothing it holds is counted in a memory budget; see [`serve_within`].
pub async fn serve(
    socket: UdpSocket,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    counts: Arc<ReceiverCounts>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    serve_within(socket, router, metrics, counts, MemoryBudget::unlimited(), shutdown).await
}

/// [`serve`], the segments it holds (the batch being filled, then the lanes' queues) taking
/// their room from `budget`; a datagram that does not fit is dropped and counted.
///
/// The socket's receive buffer is enlarged and the receiver logs that it listens when this is
/// called; the returned future receives. So whatever is logged after the call (waggle's
/// `ready`) comes after that line.
pub fn serve_within(
    socket: UdpSocket,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    counts: Arc<ReceiverCounts>,
    budget: MemoryBudget,
    shutdown: CancellationToken,
) -> impl Future<Output = io::Result<()>> + use<> {
    let local_addr = socket.local_addr();
    let receive_buffer = enlarge_receive_buffer(&socket, RECEIVE_BUFFER_BYTES);
    if let Ok(local_addr) = &local_addr {
        tracing::info!(receiver = %RECEIVER, %local_addr, receive_buffer, "X-Ray UDP receiver listening");
    }
    let intake = DatagramIntake::new(router, metrics, counts, budget);
    async move { receive(socket, local_addr?, intake, shutdown).await }
}

/// The receive loop of [`serve_within`].
async fn receive(
    socket: UdpSocket,
    local_addr: SocketAddr,
    mut intake: DatagramIntake,
    shutdown: CancellationToken,
) -> io::Result<()> {
    // One byte more than the largest datagram taken, so a truncated read is recognised.
    let mut buffer = vec![0u8; MAX_DATAGRAM_BYTES + 1];
    loop {
        let received = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            received = socket.recv_from(&mut buffer) => received,
        };
        match received {
            Ok((len, peer)) => intake.take(&buffer[..len], buffer.len(), peer),
            Err(error) => {
                intake.socket_error(&error);
                if !is_transient(&error) {
                    // Do not spin on an error that repeats; data waits in the socket meanwhile.
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ERROR_PAUSE) => {}
                    }
                }
                continue;
            }
        }
        intake.drain_ready(&socket, &mut buffer);
        intake.flush();
    }
    // Stopping: what the kernel already holds was sent before shutdown; take it too.
    intake.drain_ready(&socket, &mut buffer);
    intake.flush();
    tracing::info!(receiver = %RECEIVER, %local_addr, "X-Ray UDP receiver stopped");
    Ok(())
}

/// Errors a UDP socket reports for earlier sends (ICMP) or interruptions: read again at once.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

/// Asks for a larger `SO_RCVBUF`, best effort; returns the size the kernel reports.
fn enlarge_receive_buffer(socket: &UdpSocket, bytes: usize) -> Option<usize> {
    let socket = socket2::SockRef::from(socket);
    let before = socket.recv_buffer_size().ok();
    if before.is_some_and(|before| before >= bytes) {
        return before;
    }
    if let Err(error) = socket.set_recv_buffer_size(bytes) {
        tracing::debug!(receiver = %RECEIVER, %error, "could not enlarge the socket receive buffer");
    }
    socket.recv_buffer_size().ok().or(before)
}

/// The receive loop's state between reads: the batch being filled and the counters.
struct DatagramIntake {
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    /// Totals for the X-Ray daemon telemetry, beside the Prometheus counters.
    counts: Arc<ReceiverCounts>,
    received: Counter,
    accepted: Counter,
    /// Lanes that take traces; a batch is "accepted" once all of them took it.
    target_lanes: usize,
    pending: Vec<XraySegment>,
    budget: MemoryBudget,
    /// The pending segments' bytes of `budget`; goes with them into their batch.
    pending_memory: MemoryPermit,
    malformed_warn: LogLimiter,
    memory_warn: LogLimiter,
    socket_warn: LogLimiter,
}

impl DatagramIntake {
    fn new(router: Arc<Router>, metrics: Arc<Metrics>, counts: Arc<ReceiverCounts>, budget: MemoryBudget) -> Self {
        let labels = Metrics::receiver(RECEIVER, Signal::Traces);
        let received = metrics.received.get_or_create(&labels).clone();
        let accepted = metrics.accepted.get_or_create(&labels).clone();
        let target_lanes = router.lanes().iter().filter(|lane| lane.takes(Signal::Traces)).count();
        DatagramIntake {
            router,
            metrics,
            counts,
            received,
            accepted,
            target_lanes,
            pending: Vec::with_capacity(MAX_DATAGRAMS_PER_BATCH),
            pending_memory: budget.empty_permit(),
            budget,
            malformed_warn: LogLimiter::new(WARN_INTERVAL),
            memory_warn: LogLimiter::new(WARN_INTERVAL),
            socket_warn: LogLimiter::new(WARN_INTERVAL),
        }
    }

    /// Reads datagrams that are already waiting, without waiting for more.
    fn drain_ready(&mut self, socket: &UdpSocket, buffer: &mut [u8]) {
        while self.pending.len() < MAX_DATAGRAMS_PER_BATCH {
            match socket.try_recv_from(buffer) {
                Ok((len, peer)) => self.take(&buffer[..len], buffer.len(), peer),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    self.socket_error(&error);
                    return;
                }
            }
        }
    }

    fn take(&mut self, datagram: &[u8], capacity: usize, peer: SocketAddr) {
        let parsed = check_received_len(datagram.len(), capacity).and_then(|()| parse_datagram(datagram));
        match parsed {
            Ok(parsed) => self.hold(&parsed, peer),
            Err(error) => self.reject(&error, datagram, peer),
        }
    }

    /// Adds a valid datagram's segment to the pending batch when the memory budget has room
    /// for it (taken before the document is copied); else drops it.
    fn hold(&mut self, parsed: &ParsedDatagram<'_>, peer: SocketAddr) {
        match self.pending_memory.try_grow(parsed.segment_bytes()) {
            Ok(()) => self.pending.push(parsed.to_segment()),
            Err(exhausted) => self.drop_for_memory(&exhausted, peer),
        }
    }

    fn drop_for_memory(&self, exhausted: &BudgetExhausted, peer: SocketAddr) {
        let labels = Metrics::refusal(RECEIVER, Signal::Traces, MEMORY_LIMIT_REASON);
        self.metrics.rejected_requests.get_or_create(&labels).inc();
        self.counts.record_dropped_for_memory(1);
        if let Some(suppressed) = self.memory_warn.check() {
            tracing::warn!(
                receiver = %RECEIVER,
                %peer,
                reason = MEMORY_LIMIT_REASON,
                suppressed,
                "dropped X-Ray datagram: {exhausted}"
            );
        }
    }

    fn reject(&self, error: &DatagramError, datagram: &[u8], peer: SocketAddr) {
        self.metrics.rejected_requests.get_or_create(&Metrics::refusal(RECEIVER, Signal::Traces, error.reason())).inc();
        self.counts.record_rejected(1);
        if let Some(suppressed) = self.malformed_warn.check() {
            let prefix = datagram[..datagram.len().min(LOGGED_PREFIX_BYTES)].escape_ascii();
            tracing::warn!(
                receiver = %RECEIVER,
                %peer,
                reason = error.reason(),
                bytes = datagram.len(),
                starts_with = %prefix,
                suppressed,
                "rejected X-Ray datagram: {error}"
            );
        }
    }

    fn socket_error(&self, error: &io::Error) {
        // ICMP errors from earlier sends and the like: nothing to do but carry on.
        if let Some(suppressed) = self.socket_warn.check() {
            tracing::warn!(receiver = %RECEIVER, %error, suppressed, "X-Ray UDP receive failed");
        }
    }

    /// Offers the pending segments to the lanes as one batch.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let segments = std::mem::replace(&mut self.pending, Vec::with_capacity(MAX_DATAGRAMS_PER_BATCH));
        let memory = std::mem::replace(&mut self.pending_memory, self.budget.empty_permit());
        let items = segments.len() as u64;
        self.received.inc_by(items);
        self.counts.record_received(items);
        // Full lanes count their own drops (destination_dropped_items, reason queue_full).
        if self.router.offer(Batch::xray(segments).with_memory(memory)) == self.target_lanes {
            self.accepted.inc_by(items);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use super::*;

    const WELL_FORMED: &[u8] = b"{\"format\":\"json\",\"version\":1}\n{\"trace_id\":\"1-5f84c7a1-e7d1852db8c4fd35d88bf49a\",\"id\":\"6226467e3f845502\"}";
    const PEER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40_000));
    const CAPACITY: usize = MAX_DATAGRAM_BYTES + 1;

    /// An intake routing to no lanes, and the totals it keeps.
    fn intake() -> (DatagramIntake, Arc<ReceiverCounts>) {
        let (intake, counts, _) = intake_within(MemoryBudget::unlimited());
        (intake, counts)
    }

    /// An intake routing to no lanes under `budget`, its totals and its metrics.
    fn intake_within(budget: MemoryBudget) -> (DatagramIntake, Arc<ReceiverCounts>, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let router =
            Arc::new(Router::new(Vec::new(), Arc::clone(&metrics), Duration::from_secs(1), Duration::from_secs(3600)));
        let counts = Arc::new(ReceiverCounts::default());
        (DatagramIntake::new(router, Arc::clone(&metrics), Arc::clone(&counts), budget), counts, metrics)
    }

    fn dropped_for_memory(metrics: &Metrics) -> u64 {
        let labels = Metrics::refusal(RECEIVER, Signal::Traces, MEMORY_LIMIT_REASON);
        metrics.rejected_requests.get_or_create(&labels).get()
    }

    fn segment_bytes() -> usize {
        parse_datagram(WELL_FORMED).expect("well-formed").segment_bytes()
    }

    #[test]
    fn a_well_formed_datagram_counts_its_segment_as_received() {
        let (mut intake, counts) = intake();
        intake.take(WELL_FORMED, CAPACITY, PEER);
        intake.flush();
        assert_eq!((counts.received(), counts.rejected()), (1, 0));
    }

    #[test]
    fn a_datagram_the_memory_budget_has_no_room_for_is_dropped_and_counted() {
        let budget = MemoryBudget::new(segment_bytes() * 3 / 2);
        let (mut intake, counts, metrics) = intake_within(budget.clone());
        intake.take(WELL_FORMED, CAPACITY, PEER);
        intake.take(WELL_FORMED, CAPACITY, PEER);
        assert_eq!(intake.pending.len(), 1, "only the first fits");
        assert_eq!(budget.in_use(), segment_bytes(), "the pending segment holds its bytes");
        assert_eq!(dropped_for_memory(&metrics), 1);
        assert_eq!((counts.dropped_for_memory(), counts.rejected()), (1, 0), "spilled over, not malformed");
    }

    #[test]
    fn a_flushed_batch_takes_the_pending_bytes_and_the_next_one_starts_empty() {
        let budget = MemoryBudget::new(segment_bytes() * 3 / 2);
        let (mut intake, counts, _) = intake_within(budget.clone());
        intake.take(WELL_FORMED, CAPACITY, PEER);
        intake.flush();
        assert_eq!(budget.in_use(), 0, "the batch no lane took gave its bytes back");
        intake.take(WELL_FORMED, CAPACITY, PEER);
        assert_eq!(budget.in_use(), segment_bytes(), "room again for the next datagram");
        assert_eq!((counts.received(), counts.dropped_for_memory()), (1, 0));
    }

    #[test]
    fn a_malformed_datagram_counts_as_rejected() {
        let (mut intake, counts) = intake();
        intake.take(b"{\"format\":\"json\",\"version\":1} and no newline", CAPACITY, PEER);
        intake.flush();
        assert_eq!((counts.received(), counts.rejected()), (0, 1));
    }
}
