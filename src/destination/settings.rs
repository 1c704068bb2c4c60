//! What every destination's settings are made of: the [`destination_settings!`] macro that
//! adds the lane and spool keys to a destination's own.

/// Declares a destination's settings struct: its own keys, then the queue, batch, sender,
/// retry and spool keys every destination has (see [`LaneSettings`]), with `lane()` and
/// `spool_options()` to get those out.
/// (Serde's `flatten` would lose key names in error messages, so the fields are spelled out.)
macro_rules! destination_settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
            /// Signals this destination takes.
            pub signals: Vec<Signal>,
            /// Bytes the lane may hold (queued, batching, being sent) before callers are refused.
            pub queue_size: ByteSize,
            /// A batch is sent once it holds this many items.
            pub batch_max_items: usize,
            /// A batch is sent once it holds this many bytes.
            pub batch_max_size: ByteSize,
            /// A batch is sent at the latest this long after its first item arrived.
            #[serde(with = "humantime_serde")]
            pub batch_timeout: Duration,
            /// Requests in flight at once.
            pub senders: usize,
            pub retry: RetryPolicy,
            /// Back the lane with a disk spool under `<data_dir>/spool/<destination>`: every
            /// batch is written to it before the caller is answered and deleted once the
            /// destination acknowledged it, so a crash loses nothing acknowledged; the next
            /// start replays what is left.
            pub spool: bool,
            /// Disk the spool may use.
            pub spool_max_size: ByteSize,
            /// At `spool_max_size`: `refuse` new batches (429, the default) or `drop_oldest`
            /// (counted as `spool_full`).
            pub spool_when_full: WhenSpoolFull,
        }

        impl $name {
            /// The lane part of these settings.
            pub fn lane(&self) -> LaneSettings {
                LaneSettings {
                    signals: self.signals.clone(),
                    queue_size: self.queue_size,
                    batch_max_items: self.batch_max_items,
                    batch_max_size: self.batch_max_size,
                    batch_timeout: self.batch_timeout,
                    senders: self.senders,
                    retry: self.retry.clone(),
                }
            }

            /// The spool's bounds, when the lane has one.
            pub fn spool_options(&self) -> Option<SpoolOptions> {
                self.spool.then(|| SpoolOptions::with_max_size(self.spool_max_size).when_full(self.spool_when_full))
            }
        }
    };
}
// Used by the destinations' own settings modules (`destination::honeycomb::settings`, …).
pub(crate) use destination_settings;
