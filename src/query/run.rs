//! One query's run: [`QueryRun::scan`] reads blocks into (group, time bucket) cells;
//! [`QueryRun::finish`] turns the cells into the answer.

use std::collections::{BTreeMap, HashMap};

use super::accumulate::{DistinctSet, FastBuild, NumAcc, distinct_hash};
use super::block::{Column, ColumnCatalog, FieldValue, SpanBlock};
use super::error::QueryError;
use super::groups::Groups;
use super::histogram::Histogram;
use super::plan::Plan;
use super::result::QueryResult;
use super::spec::QuerySpec;

/// The accumulators of one group in one time bucket.
#[derive(Debug)]
pub(crate) struct Cell {
    pub(crate) group: u32,
    pub(crate) bucket: u32,
    pub(crate) count: u64,
    /// Nanoseconds of spans inside this bucket, for the spans that cover it only in part.
    pub(crate) overlap_ns: i128,
    /// Per [`Plan::numeric`] column.
    pub(crate) nums: Box<[NumAcc]>,
    /// Per [`Plan::numeric`] column; empty where no percentile or HEATMAP reads it.
    pub(crate) hists: Box<[Histogram]>,
    /// Per [`Plan::distinct`] column.
    pub(crate) sets: Box<[DistinctSet]>,
}

/// A query being run: create it, [`scan`](QueryRun::scan) the blocks it
/// [`wants`](QueryRun::wants), then [`finish`](QueryRun::finish).
#[derive(Debug)]
pub struct QueryRun {
    pub(crate) plan: Plan,
    pub(crate) groups: Groups,
    pub(crate) cells: Vec<Cell>,
    cell_index: HashMap<u64, u32, FastBuild>,
    /// Per group with spans covering whole buckets: +1/-1 where such coverage starts/ends.
    pub(crate) full_cover: HashMap<u32, BTreeMap<u32, i64>, FastBuild>,
    pub(crate) matched: u64,
    pub(crate) dropped: u64,
}

impl QueryRun {
    /// Validates `spec` against the catalog (a [`QueryError`] names what is wrong). A time
    /// range relative to now is anchored at `now_unix_nano`.
    pub fn new(spec: &QuerySpec, now_unix_nano: i64, catalog: &dyn ColumnCatalog) -> Result<QueryRun, QueryError> {
        let plan = Plan::new(spec, now_unix_nano, catalog)?;
        Ok(QueryRun {
            groups: Groups::new(plan.breakdowns.len()),
            plan,
            cells: Vec::new(),
            cell_index: HashMap::default(),
            full_cover: HashMap::default(),
            matched: 0,
            dropped: 0,
        })
    }

    /// The time range scanned, in Unix nanoseconds: spans whose start is in `[start, end)`.
    pub fn time_range_unix_nano(&self) -> (i64, i64) {
        (self.plan.start_ns, self.plan.end_ns)
    }

    /// Whether a block with these [`time_bounds`](SpanBlock::time_bounds) can hold a span
    /// the query counts.
    pub fn wants(&self, (lowest_start, highest_end): (i64, i64)) -> bool {
        lowest_start < self.plan.end_ns && highest_end >= self.plan.start_ns
    }

    /// Counts every span of `block` in the time range that passes the filters.
    pub fn scan<B: SpanBlock + ?Sized>(&mut self, block: &B) {
        let rows = block.rows();
        if rows == 0 || !self.wants(block.time_bounds()) {
            return;
        }
        let QueryRun { plan, groups, cells, cell_index, full_cover, matched, dropped } = self;
        let columns: Vec<Option<Box<dyn Column + '_>>> = plan.slots.iter().map(|name| block.column(name)).collect();
        if block_cannot_match(plan, &columns) {
            return;
        }
        let value = |slot: usize, row: usize| columns[slot].as_ref().and_then(|column| column.value(row));
        let mut key: Vec<Option<FieldValue<'_>>> = vec![None; plan.breakdown_slots.len()];
        for row in 0..rows {
            let start = block.start_unix_nano(row);
            if start < plan.start_ns || start >= plan.end_ns {
                continue;
            }
            if !plan.filters.is_empty() {
                let mut passes = plan.filters.iter().map(|planned| planned.filter.matches(value(planned.slot, row)));
                let keep = if plan.any { passes.any(|pass| pass) } else { passes.all(|pass| pass) };
                if !keep {
                    continue;
                }
            }
            for (part, &slot) in key.iter_mut().zip(&plan.breakdown_slots) {
                *part = value(slot, row);
            }
            let Some(group) = groups.find_or_insert(&key) else {
                *dropped += 1;
                continue;
            };
            *matched += 1;
            let bucket = ((start - plan.start_ns) / plan.bucket_ns) as u32;
            let index = cell(plan, cells, cell_index, group, bucket);
            let cell = &mut cells[index];
            cell.count += 1;
            for (i, numeric) in plan.numeric.iter().enumerate() {
                match value(numeric.slot, row) {
                    Some(FieldValue::Int(number)) => {
                        cell.nums[i].add_int(number);
                        if numeric.histogram {
                            cell.hists[i].add(number as f64);
                        }
                    }
                    Some(FieldValue::Float(number)) if !number.is_nan() => {
                        cell.nums[i].add_float(number);
                        if numeric.histogram {
                            cell.hists[i].add(number);
                        }
                    }
                    _ => {}
                }
            }
            for (i, &slot) in plan.distinct.iter().enumerate() {
                if let Some(found) = value(slot, row) {
                    cell.sets[i].insert(distinct_hash(found));
                }
            }
            if plan.concurrency {
                let end = block.end_unix_nano(row).min(plan.end_ns);
                add_overlap(plan, cells, cell_index, full_cover, group, start, end);
            }
        }
    }

    /// The answer: see [`QueryResult`].
    pub fn finish(self) -> QueryResult {
        super::finish::finish(self)
    }
}

/// With AND, a filter that needs its column and a block without it: no row can pass. With
/// OR, the same for every filter.
fn block_cannot_match(plan: &Plan, columns: &[Option<Box<dyn Column + '_>>]) -> bool {
    let hopeless =
        |planned: &super::plan::PlannedFilter| columns[planned.slot].is_none() && !planned.filter.matches(None);
    if plan.filters.is_empty() {
        false
    } else if plan.any {
        plan.filters.iter().all(hopeless)
    } else {
        plan.filters.iter().any(hopeless)
    }
}

/// The index of the cell of (`group`, `bucket`), made if new.
#[inline]
fn cell(
    plan: &Plan,
    cells: &mut Vec<Cell>,
    index: &mut HashMap<u64, u32, FastBuild>,
    group: u32,
    bucket: u32,
) -> usize {
    let key = (u64::from(group) << 32) | u64::from(bucket);
    *index.entry(key).or_insert_with(|| {
        cells.push(Cell {
            group,
            bucket,
            count: 0,
            overlap_ns: 0,
            nums: vec![NumAcc::default(); plan.numeric.len()].into_boxed_slice(),
            hists: vec![Histogram::default(); plan.numeric.len()].into_boxed_slice(),
            sets: vec![DistinctSet::default(); plan.distinct.len()].into_boxed_slice(),
        });
        (cells.len() - 1) as u32
    }) as usize
}

/// CONCURRENCY: the part of `[start, end)` in each bucket it touches. Buckets covered
/// whole are counted in `full_cover` (as +1 where the run starts, -1 after it ends), so a
/// long span costs the same as a short one.
fn add_overlap(
    plan: &Plan,
    cells: &mut Vec<Cell>,
    index: &mut HashMap<u64, u32, FastBuild>,
    full_cover: &mut HashMap<u32, BTreeMap<u32, i64>, FastBuild>,
    group: u32,
    start: i64,
    end: i64,
) {
    if end <= start {
        return;
    }
    let first = (start - plan.start_ns) / plan.bucket_ns;
    let last = (end - 1 - plan.start_ns) / plan.bucket_ns;
    if first == last {
        let at = cell(plan, cells, index, group, first as u32);
        cells[at].overlap_ns += i128::from(end - start);
        return;
    }
    let first_end = plan.start_ns + (first + 1) * plan.bucket_ns;
    let at = cell(plan, cells, index, group, first as u32);
    cells[at].overlap_ns += i128::from(first_end - start);
    let last_start = plan.start_ns + last * plan.bucket_ns;
    let at = cell(plan, cells, index, group, last as u32);
    cells[at].overlap_ns += i128::from(end - last_start);
    if last > first + 1 {
        let diff = full_cover.entry(group).or_default();
        *diff.entry(first as u32 + 1).or_default() += 1;
        *diff.entry(last as u32).or_default() -= 1;
    }
}
