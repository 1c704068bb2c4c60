//! Why a query was refused (HTTP 400, each message naming the bad op, column or field) or
//! could not run (the store failed: HTTP 500).

/// Why a query was refused or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown calculation op {0:?}; expected one of {ops}", ops = crate::query::plan::CALCULATION_OPS.join(", "))]
    UnknownCalculationOp(String),
    #[error("unknown filter op {0:?}; expected one of {ops}", ops = crate::query::plan::FILTER_OPS.join(", "))]
    UnknownFilterOp(String),
    #[error("unknown having op {0:?}; expected one of =, !=, >, >=, <, <=")]
    UnknownHavingOp(String),
    #[error("unknown column {column:?} in {place}")]
    UnknownColumn { column: String, place: &'static str },
    #[error("{op} needs a numeric column, but {column:?} is a {found} column")]
    NotNumeric { op: String, column: String, found: &'static str },
    #[error("{op} needs a column")]
    MissingColumn { op: String },
    #[error("{op} takes no column, but got {column:?}")]
    UnexpectedColumn { op: String, column: String },
    #[error("filter {column:?} {op:?}: {reason}")]
    FilterValue { column: String, op: String, reason: String },
    #[error("filter_combination must be \"AND\" or \"OR\", not {0:?}")]
    FilterCombination(String),
    #[error("{0}")]
    TimeRange(String),
    #[error(
        "granularity {granularity} is out of range: for a time range of {range} s it must be from {min} to {max} seconds"
    )]
    Granularity { granularity: i64, range: i64, min: i64, max: i64 },
    #[error("limit must be from 1 to {max}, not {limit}")]
    Limit { limit: i64, max: i64 },
    #[error("too many {field}: at most {max}")]
    TooMany { field: &'static str, max: usize },
    #[error("order: {0}")]
    Order(String),
    #[error("having: {0}")]
    Having(String),
    /// The store could not be read: not the caller's fault.
    #[error("the store failed: {0}")]
    Store(String),
}

impl QueryError {
    /// True when the query itself is at fault (HTTP 400); false when the store failed (500).
    pub fn is_bad_request(&self) -> bool {
        !matches!(self, QueryError::Store(_))
    }
}
