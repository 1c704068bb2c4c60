//! X-Ray UDP receiver (port 2000): parses the X-Ray daemon protocol (`datagram`: the header
//! line, the segment document, [`DatagramError`]) and hands each segment document,
//! byte-for-byte, to the router from one receive loop (`socket`: [`serve`], or
//! [`serve_within`] a memory budget, which drops a datagram it has no room for).

mod datagram;
mod socket;

pub use self::datagram::{DatagramError, MAX_DATAGRAM_BYTES, ParsedDatagram, check_received_len, parse_datagram};
pub use self::socket::{
    MAX_DATAGRAMS_PER_BATCH, MEMORY_LIMIT_REASON, RECEIVE_BUFFER_BYTES, WARN_INTERVAL, serve, serve_within,
};
use crate::model::Receiver;

/// The receiver's name in metrics and logs.
pub const RECEIVER: Receiver = Receiver::XrayUdp;
