//! Validation: a [`QuerySpec`] checked against the column catalog and compiled into a
//! [`Plan`] — the time range and buckets, the columns each block is asked for, typed
//! filters, the calculations and where their accumulators live, havings, orders and limit.

use super::block::{ColumnCatalog, ColumnType, column_type};
use super::error::QueryError;
use super::filter::Filter;
use super::spec::QuerySpec;

/// Every calculation op, as Honeycomb names them.
pub const CALCULATION_OPS: &[&str] = &[
    "COUNT",
    "CONCURRENCY",
    "SUM",
    "AVG",
    "COUNT_DISTINCT",
    "MIN",
    "MAX",
    "P001",
    "P01",
    "P05",
    "P10",
    "P20",
    "P25",
    "P50",
    "P75",
    "P80",
    "P90",
    "P95",
    "P99",
    "P999",
    "HEATMAP",
    "RATE_AVG",
    "RATE_SUM",
    "RATE_MAX",
];

/// Every filter op.
pub const FILTER_OPS: &[&str] = &[
    "=",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "starts-with",
    "does-not-start-with",
    "ends-with",
    "does-not-end-with",
    "contains",
    "does-not-contain",
    "exists",
    "does-not-exist",
    "in",
    "not-in",
];

/// Without `time_range` (and without both `start_time` and `end_time`): two hours.
pub const DEFAULT_TIME_RANGE: i64 = 2 * 60 * 60;
/// Groups in `results` when the spec gives no `limit`.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;
/// At most this many calculations, filters, breakdowns, orders and havings each.
pub const MAX_ITEMS: usize = 100;
/// Without `granularity`: the time range over this many buckets, rounded up to seconds.
pub const DEFAULT_BUCKETS: i64 = 100;
const NANOS: i64 = 1_000_000_000;

/// What a calculation computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CalcOp {
    Count,
    Concurrency,
    Sum,
    Avg,
    CountDistinct,
    Min,
    Max,
    /// The quantile, from 0.001 (P001) to 0.999 (P999).
    Percentile(f64),
    Heatmap,
    RateAvg,
    RateSum,
    RateMax,
}

impl CalcOp {
    pub fn parse(op: &str) -> Option<CalcOp> {
        Some(match op {
            "COUNT" => CalcOp::Count,
            "CONCURRENCY" => CalcOp::Concurrency,
            "SUM" => CalcOp::Sum,
            "AVG" => CalcOp::Avg,
            "COUNT_DISTINCT" => CalcOp::CountDistinct,
            "MIN" => CalcOp::Min,
            "MAX" => CalcOp::Max,
            "HEATMAP" => CalcOp::Heatmap,
            "RATE_AVG" => CalcOp::RateAvg,
            "RATE_SUM" => CalcOp::RateSum,
            "RATE_MAX" => CalcOp::RateMax,
            "P001" => CalcOp::Percentile(0.001),
            "P01" => CalcOp::Percentile(0.01),
            "P05" => CalcOp::Percentile(0.05),
            "P10" => CalcOp::Percentile(0.10),
            "P20" => CalcOp::Percentile(0.20),
            "P25" => CalcOp::Percentile(0.25),
            "P50" => CalcOp::Percentile(0.50),
            "P75" => CalcOp::Percentile(0.75),
            "P80" => CalcOp::Percentile(0.80),
            "P90" => CalcOp::Percentile(0.90),
            "P95" => CalcOp::Percentile(0.95),
            "P99" => CalcOp::Percentile(0.99),
            "P999" => CalcOp::Percentile(0.999),
            _ => return None,
        })
    }

    fn takes_column(self) -> bool {
        !matches!(self, CalcOp::Count | CalcOp::Concurrency)
    }

    fn needs_numbers(self) -> bool {
        !matches!(self, CalcOp::Count | CalcOp::Concurrency | CalcOp::CountDistinct)
    }

    fn needs_histogram(self) -> bool {
        matches!(self, CalcOp::Percentile(_) | CalcOp::Heatmap)
    }
}

/// One calculation and where its inputs are accumulated.
#[derive(Clone, Debug, PartialEq)]
pub struct Calc {
    pub op: CalcOp,
    pub op_name: String,
    pub column: Option<String>,
    /// Its name in the answer: `COUNT`, `P90(duration_ms)`.
    pub label: String,
    /// Index into [`Plan::numeric`] for numeric ops.
    pub numeric: Option<usize>,
    /// Index into [`Plan::distinct`] for COUNT_DISTINCT.
    pub distinct: Option<usize>,
}

/// A column numeric calculations read: its slot, and whether a histogram is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct NumericColumn {
    pub slot: usize,
    pub histogram: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedFilter {
    pub slot: usize,
    pub filter: Filter,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OrderBy {
    /// Index into [`Plan::calcs`].
    Calc(usize),
    /// Index into [`Plan::breakdowns`].
    Breakdown(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Order {
    pub by: OrderBy,
    pub descending: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HavingOp {
    Equal,
    NotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Having {
    pub calc: usize,
    pub op: HavingOp,
    pub value: f64,
}

impl Having {
    /// Whether a group whose calculation came to `value` stays; a group without a value
    /// (no numbers) never does.
    pub fn keeps(&self, value: Option<f64>) -> bool {
        let Some(value) = value else { return false };
        match self.op {
            HavingOp::Equal => value == self.value,
            HavingOp::NotEqual => value != self.value,
            HavingOp::Greater => value > self.value,
            HavingOp::GreaterOrEqual => value >= self.value,
            HavingOp::Less => value < self.value,
            HavingOp::LessOrEqual => value <= self.value,
        }
    }
}

/// A validated query.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The time range in Unix seconds, `[start_time, end_time)`.
    pub start_time: i64,
    pub end_time: i64,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Seconds per time bucket; bucket `i` starts at `start_time + i × granularity`.
    pub granularity: i64,
    pub bucket_ns: i64,
    pub buckets: usize,
    /// The columns each block is asked for, once each.
    pub slots: Vec<String>,
    pub filters: Vec<PlannedFilter>,
    /// `filter_combination` is OR.
    pub any: bool,
    pub breakdowns: Vec<String>,
    pub breakdown_slots: Vec<usize>,
    pub calcs: Vec<Calc>,
    pub numeric: Vec<NumericColumn>,
    /// Slots of COUNT_DISTINCT columns.
    pub distinct: Vec<usize>,
    pub concurrency: bool,
    pub orders: Vec<Order>,
    pub havings: Vec<Having>,
    pub limit: usize,
}

impl Plan {
    /// Validates `spec`; `now_unix_nano` anchors a time range relative to now.
    pub fn new(spec: &QuerySpec, now_unix_nano: i64, catalog: &dyn ColumnCatalog) -> Result<Plan, QueryError> {
        for (field, len) in [
            ("calculations", spec.calculations.len()),
            ("filters", spec.filters.len()),
            ("breakdowns", spec.breakdowns.len()),
            ("orders", spec.orders.len()),
            ("havings", spec.havings.len()),
        ] {
            if len > MAX_ITEMS {
                return Err(QueryError::TooMany { field, max: MAX_ITEMS });
            }
        }
        let (start_time, end_time) = time_range(spec, now_unix_nano)?;
        let range = end_time - start_time;
        let granularity = granularity(spec.granularity, range)?;
        let mut plan = Plan {
            start_time,
            end_time,
            start_ns: start_time * NANOS,
            end_ns: end_time * NANOS,
            granularity,
            bucket_ns: granularity * NANOS,
            buckets: ((range + granularity - 1) / granularity) as usize,
            slots: Vec::new(),
            filters: Vec::new(),
            any: false,
            breakdowns: spec.breakdowns.clone(),
            breakdown_slots: Vec::new(),
            calcs: Vec::new(),
            numeric: Vec::new(),
            distinct: Vec::new(),
            concurrency: false,
            orders: Vec::new(),
            havings: Vec::new(),
            limit: 0,
        };
        plan.any = match spec.filter_combination.as_deref() {
            None | Some("AND") => false,
            Some("OR") => true,
            Some(other) => return Err(QueryError::FilterCombination(other.to_string())),
        };
        for filter in &spec.filters {
            let kind = known(&filter.column, "filters", catalog)?;
            let compiled = Filter::compile(filter, kind)?;
            let slot = plan.slot(&filter.column);
            plan.filters.push(PlannedFilter { slot, filter: compiled });
        }
        for breakdown in &spec.breakdowns {
            known(breakdown, "breakdowns", catalog)?;
            let slot = plan.slot(breakdown);
            plan.breakdown_slots.push(slot);
        }
        if spec.calculations.is_empty() {
            plan.add_calc("COUNT", None, catalog)?;
        }
        for calculation in &spec.calculations {
            plan.add_calc(&calculation.op, calculation.column.as_deref(), catalog)?;
        }
        for order in &spec.orders {
            let descending = match order.order.as_deref() {
                None | Some("ascending") => false,
                Some("descending") => true,
                Some(other) => {
                    return Err(QueryError::Order(format!(
                        "order must be \"ascending\" or \"descending\", not {other:?}"
                    )));
                }
            };
            let by = match (&order.op, &order.column) {
                (Some(op), column) => OrderBy::Calc(plan.find_calc(op, column.as_deref(), "order")?),
                (None, Some(column)) => match plan.breakdowns.iter().position(|b| b == column) {
                    Some(index) => OrderBy::Breakdown(index),
                    None => {
                        return Err(QueryError::Order(format!(
                            "{column:?} is not one of the breakdowns (to order by a calculation, give its op)"
                        )));
                    }
                },
                (None, None) => return Err(QueryError::Order("each order needs an op or a column".into())),
            };
            plan.orders.push(Order { by, descending });
        }
        if plan.orders.is_empty()
            && let Some(first) = plan.calcs.iter().position(|calc| calc.op != CalcOp::Heatmap)
        {
            plan.orders.push(Order { by: OrderBy::Calc(first), descending: true });
        }
        for having in &spec.havings {
            let calc = plan.find_calc(&having.calculate_op, having.column.as_deref(), "having")?;
            let op = match having.op.as_str() {
                "=" => HavingOp::Equal,
                "!=" => HavingOp::NotEqual,
                ">" => HavingOp::Greater,
                ">=" => HavingOp::GreaterOrEqual,
                "<" => HavingOp::Less,
                "<=" => HavingOp::LessOrEqual,
                other => return Err(QueryError::UnknownHavingOp(other.to_string())),
            };
            let Some(value) = having.value.as_f64() else {
                return Err(QueryError::Having(format!(
                    "{} {} needs a number, not {}",
                    plan.calcs[calc].label, having.op, having.value
                )));
            };
            plan.havings.push(Having { calc, op, value });
        }
        let limit = spec.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(QueryError::Limit { limit, max: MAX_LIMIT });
        }
        plan.limit = limit as usize;
        Ok(plan)
    }

    fn slot(&mut self, column: &str) -> usize {
        match self.slots.iter().position(|slot| slot == column) {
            Some(index) => index,
            None => {
                self.slots.push(column.to_string());
                self.slots.len() - 1
            }
        }
    }

    fn add_calc(&mut self, op_name: &str, column: Option<&str>, catalog: &dyn ColumnCatalog) -> Result<(), QueryError> {
        let op = CalcOp::parse(op_name).ok_or_else(|| QueryError::UnknownCalculationOp(op_name.to_string()))?;
        let mut calc = Calc {
            op,
            op_name: op_name.to_string(),
            column: None,
            label: op_name.to_string(),
            numeric: None,
            distinct: None,
        };
        if !op.takes_column() {
            if let Some(column) = column {
                return Err(QueryError::UnexpectedColumn { op: op_name.to_string(), column: column.to_string() });
            }
            self.concurrency |= op == CalcOp::Concurrency;
            self.calcs.push(calc);
            return Ok(());
        }
        let Some(column) = column else {
            return Err(QueryError::MissingColumn { op: op_name.to_string() });
        };
        let kind = known(column, "calculations", catalog)?;
        let slot = self.slot(column);
        if op.needs_numbers() {
            if !kind.is_numeric() {
                return Err(QueryError::NotNumeric {
                    op: op_name.to_string(),
                    column: column.to_string(),
                    found: kind.name(),
                });
            }
            let index = match self.numeric.iter().position(|numeric| numeric.slot == slot) {
                Some(index) => index,
                None => {
                    self.numeric.push(NumericColumn { slot, histogram: false });
                    self.numeric.len() - 1
                }
            };
            self.numeric[index].histogram |= op.needs_histogram();
            calc.numeric = Some(index);
        } else {
            let index = match self.distinct.iter().position(|&distinct| distinct == slot) {
                Some(index) => index,
                None => {
                    self.distinct.push(slot);
                    self.distinct.len() - 1
                }
            };
            calc.distinct = Some(index);
        }
        calc.label = format!("{op_name}({column})");
        calc.column = Some(column.to_string());
        self.calcs.push(calc);
        Ok(())
    }

    /// The calculation an order or having names: same op, same column.
    fn find_calc(&self, op: &str, column: Option<&str>, place: &str) -> Result<usize, QueryError> {
        let parsed = CalcOp::parse(op).ok_or_else(|| QueryError::UnknownCalculationOp(op.to_string()))?;
        let label = match column {
            Some(column) if parsed.takes_column() => format!("{op}({column})"),
            _ => op.to_string(),
        };
        if parsed == CalcOp::Heatmap {
            let message = format!("cannot use {label}: HEATMAP has no single value");
            return Err(if place == "order" { QueryError::Order(message) } else { QueryError::Having(message) });
        }
        match self.calcs.iter().position(|calc| calc.label == label) {
            Some(index) => Ok(index),
            None => {
                let message = format!("{label} is not one of the calculations");
                Err(if place == "order" { QueryError::Order(message) } else { QueryError::Having(message) })
            }
        }
    }
}

fn known(column: &str, place: &'static str, catalog: &dyn ColumnCatalog) -> Result<ColumnType, QueryError> {
    column_type(column, catalog).ok_or_else(|| QueryError::UnknownColumn { column: column.to_string(), place })
}

/// `[start, end)` in Unix seconds, as Honeycomb reads `time_range`, `start_time` and
/// `end_time`. A range relative to now ends at now rounded up to the second.
fn time_range(spec: &QuerySpec, now_unix_nano: i64) -> Result<(i64, i64), QueryError> {
    if let Some(range) = spec.time_range
        && range < 1
    {
        return Err(QueryError::TimeRange(format!("time_range must be at least 1 second, not {range}")));
    }
    // Unix seconds that stay in range as nanoseconds.
    let limit = i64::MAX / NANOS - 1;
    for (field, value) in [("start_time", spec.start_time), ("end_time", spec.end_time)] {
        if let Some(value) = value
            && !(0..=limit).contains(&value)
        {
            return Err(QueryError::TimeRange(format!("{field} {value} is not a Unix time in seconds")));
        }
    }
    let range = spec.time_range.unwrap_or(DEFAULT_TIME_RANGE).min(limit);
    let (start, end) = match (spec.start_time, spec.end_time, spec.time_range) {
        (Some(_), Some(_), Some(_)) => {
            return Err(QueryError::TimeRange(
                "time_range cannot be combined with both start_time and end_time".into(),
            ));
        }
        (Some(start), Some(end), None) => (start, end),
        (Some(start), None, _) => (start, start.saturating_add(range)),
        (None, Some(end), _) => (end.saturating_sub(range), end),
        (None, None, _) => {
            let now = now_unix_nano.div_euclid(NANOS) + i64::from(now_unix_nano.rem_euclid(NANOS) != 0);
            (now.saturating_sub(range), now)
        }
    };
    if start >= end {
        return Err(QueryError::TimeRange(format!("start_time {start} must be before end_time {end}")));
    }
    Ok((start.max(0), end.min(limit)))
}

/// Seconds per bucket: Honeycomb allows the time range / 1000 to the time range / 10.
fn granularity(granularity: Option<i64>, range: i64) -> Result<i64, QueryError> {
    let min = ((range + 999) / 1000).max(1);
    let max = (range / 10).max(1);
    match granularity {
        None => Ok(((range + DEFAULT_BUCKETS - 1) / DEFAULT_BUCKETS).clamp(min, max)),
        Some(granularity) if (min..=max).contains(&granularity) => Ok(granularity),
        Some(granularity) => Err(QueryError::Granularity { granularity, range, min, max }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct NoColumns;
    impl ColumnCatalog for NoColumns {
        fn column_type(&self, _: &str) -> Option<ColumnType> {
            None
        }
    }

    fn plan(spec: serde_json::Value) -> Result<Plan, QueryError> {
        let spec: QuerySpec = serde_json::from_value(spec).unwrap();
        Plan::new(&spec, 1_700_000_000_500_000_000, &NoColumns)
    }

    #[test]
    fn time_range_alone_ends_at_now_rounded_up() {
        let plan = plan(json!({"time_range": 600})).unwrap();
        assert_eq!((plan.start_time, plan.end_time), (1_700_000_001 - 600, 1_700_000_001));
    }

    #[test]
    fn time_range_counts_back_from_end_time_and_forward_from_start_time() {
        let back = plan(json!({"time_range": 60, "end_time": 1000})).unwrap();
        assert_eq!((back.start_time, back.end_time), (940, 1000));
        let forward = plan(json!({"time_range": 60, "start_time": 1000})).unwrap();
        assert_eq!((forward.start_time, forward.end_time), (1000, 1060));
    }

    #[test]
    fn the_default_range_is_two_hours_and_all_three_times_are_refused() {
        let default = plan(json!({})).unwrap();
        assert_eq!(default.end_time - default.start_time, 7200);
        assert_eq!(default.granularity, 72);
        assert!(matches!(
            plan(json!({"time_range": 60, "start_time": 1, "end_time": 100})),
            Err(QueryError::TimeRange(_))
        ));
    }

    #[test]
    fn granularity_must_be_between_a_thousandth_and_a_tenth_of_the_range() {
        assert_eq!(plan(json!({"time_range": 1000, "granularity": 100})).unwrap().buckets, 10);
        assert!(matches!(plan(json!({"time_range": 1000, "granularity": 101})), Err(QueryError::Granularity { .. })));
        assert!(matches!(plan(json!({"time_range": 10000, "granularity": 9})), Err(QueryError::Granularity { .. })));
    }

    #[test]
    fn no_calculations_means_count() {
        let plan = plan(json!({})).unwrap();
        assert_eq!(plan.calcs.len(), 1);
        assert_eq!(plan.calcs[0].label, "COUNT");
    }

    #[test]
    fn percentiles_and_heatmap_on_one_column_share_its_histogram() {
        let plan = plan(json!({"calculations": [
            {"op": "P90", "column": "duration_ms"}, {"op": "HEATMAP", "column": "duration_ms"}, {"op": "SUM", "column": "status_code"}
        ]}))
        .unwrap();
        assert_eq!(plan.numeric.len(), 2);
        assert!(plan.numeric[0].histogram && !plan.numeric[1].histogram);
    }
}
