//! Honeycomb's query specification over stored spans: validation, the scan, and the answer.
//!
//! The engine knows nothing about how spans are stored. A store hands it blocks of spans
//! through three small traits ([`SpanBlock`], [`Column`], [`ColumnCatalog`]) and drives one
//! [`QueryRun`] per query:
//!
//! ```ignore
//! let mut run = QueryRun::new(&spec, now_unix_nano, &catalog)?; // QueryError -> HTTP 400
//! for block in store.blocks() {
//!     if run.wants(block.time_bounds()) {
//!         run.scan(&block);
//!     }
//! }
//! let result: QueryResult = run.finish();
//! ```
//!
//! * [`spec`]: the request, [`QuerySpec`] — the JSON of Honeycomb's Query API and query
//!   template links, kept as text so it round-trips; [`plan`] validates it against the
//!   catalog into a compiled plan (typed filters, calculation slots, time buckets).
//! * [`block`]: the traits a store implements and Honeycomb's span column names.
//! * [`run`]: the scan (one pass per block, columns resolved once per block, no allocation
//!   per row) into cells of (group, time bucket) accumulators ([`accumulate`],
//!   [`histogram`], [`groups`]), and [`finish`](QueryRun::finish): havings, orders, limit,
//!   summary table, time series and heatmaps ([`result`]).
//! * [`memory`]: an in-memory block, catalog and [`QuerySource`]
//!   used by tests and the benchmark, and the reference for store implementers.
//!
//! Memory is bounded by the number of non-empty (group, time bucket) cells: at most
//! [`MAX_GROUPS`](groups::MAX_GROUPS) groups times the number of time buckets (≤ 1001), each
//! cell holding fixed accumulators, one log-linear histogram per percentile/HEATMAP column
//! (only the buckets between the cell's smallest and largest value: at most
//! [`histogram::MAX_BUCKETS`] u32 counts), and one set of 64-bit value hashes per
//! COUNT_DISTINCT column. See `docs/query-api.md` for the request, response, limits and errors.

pub mod accumulate;
pub mod block;
pub mod error;
pub mod filter;
pub(crate) mod finish;
pub mod groups;
pub mod histogram;
pub mod memory;
pub mod plan;
pub mod result;
pub mod run;
pub mod spec;

pub use block::{Column, ColumnCatalog, ColumnType, FieldValue, QuerySource, SPAN_COLUMNS, SpanBlock};
pub use error::QueryError;
pub use result::{HeatmapBucket, QueryResult, ResultRow, SeriesPoint};
pub use run::QueryRun;
pub use spec::{CalculationSpec, FilterSpec, HavingSpec, OrderSpec, QuerySpec};
