//! From cells to the answer: each group's summary (the cells merged), havings, orders and
//! limit, then the summary table, the time series, RATE_* (differences between successive
//! buckets) and HEATMAP counts on one value scale per HEATMAP.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::accumulate::{DistinctSet, NumAcc, number};
use super::groups::Groups;
use super::histogram::{HeatmapScale, Histogram, representative};
use super::plan::{Calc, CalcOp, OrderBy, Plan};
use super::result::{HeatmapBucket, QueryResult, ResultRow, SeriesPoint};
use super::run::{Cell, QueryRun};

/// What one calculation is computed from: a cell, or a group's cells merged.
struct Inputs<'a> {
    count: u64,
    /// Average spans in flight over the bucket (or the whole range).
    concurrency: f64,
    nums: &'a [NumAcc],
    hists: &'a [Histogram],
    sets: &'a [DistinctSet],
}

/// One group, merged over its time buckets.
struct Summary {
    count: u64,
    overlap_ns: i128,
    nums: Vec<NumAcc>,
    hists: Vec<Histogram>,
    sets: Vec<DistinctSet>,
    /// The group's cells, by bucket.
    cells: Vec<u32>,
    /// Per calculation: the RATE_* value at each of `cells` (empty for other ops).
    rates: Vec<Vec<Option<f64>>>,
    /// Per calculation: the summary value as a number, for havings and orders.
    values: Vec<Option<f64>>,
}

pub(crate) fn finish(run: QueryRun) -> QueryResult {
    let QueryRun { plan, groups, cells, full_cover, matched, dropped, .. } = run;
    let group_count = groups.len();
    let mut by_group: Vec<Vec<u32>> = vec![Vec::new(); group_count];
    for (index, cell) in cells.iter().enumerate() {
        by_group[cell.group as usize].push(index as u32);
    }
    let range_ns = plan.end_ns - plan.start_ns;
    let mut summaries: Vec<Summary> = Vec::with_capacity(group_count);
    for (group, mut members) in by_group.into_iter().enumerate() {
        members.sort_unstable_by_key(|&index| cells[index as usize].bucket);
        let cover = full_cover.get(&(group as u32)).map(|diff| coverage(diff, plan.buckets));
        summaries.push(summarize(&plan, &cells, members, cover.as_deref(), range_ns));
    }

    let mut chosen: Vec<usize> = (0..group_count)
        .filter(|&group| plan.havings.iter().all(|having| having.keeps(summaries[group].values[having.calc])))
        .collect();
    chosen.sort_by(|&a, &b| compare_groups(&plan, &groups, &summaries, a, b));
    chosen.truncate(plan.limit);

    let scales: Vec<Option<HeatmapScale>> = plan
        .calcs
        .iter()
        .map(|calc| match (calc.op, calc.numeric) {
            (CalcOp::Heatmap, Some(numeric)) => {
                let ranges = chosen.iter().filter_map(|&group| summaries[group].hists[numeric].key_range());
                ranges
                    .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
                    .map(|(low, high)| HeatmapScale::covering(low, high))
            }
            _ => None,
        })
        .collect();
    let mut heatmaps = BTreeMap::new();
    for (calc, scale) in plan.calcs.iter().zip(&scales) {
        if calc.op == CalcOp::Heatmap {
            let buckets = scale
                .as_ref()
                .map_or_else(Vec::new, |scale| scale.row_bounds().into_iter().map(HeatmapBucket::new).collect());
            heatmaps.insert(calc.label.clone(), buckets);
        }
    }

    let empty_nums = vec![NumAcc::default(); plan.numeric.len()];
    let empty_hists = vec![Histogram::default(); plan.numeric.len()];
    let empty_sets = vec![DistinctSet::default(); plan.distinct.len()];
    let mut results = Vec::with_capacity(chosen.len());
    let mut series: Vec<(u32, usize, SeriesPoint)> = Vec::new();
    for (position, &group) in chosen.iter().enumerate() {
        let summary = &summaries[group];
        let key = breakdown_values(&plan, &groups, group);
        let inputs = Inputs {
            count: summary.count,
            concurrency: summary.overlap_ns as f64 / range_ns as f64,
            nums: &summary.nums,
            hists: &summary.hists,
            sets: &summary.sets,
        };
        let mut data = key.clone();
        for (index, calc) in plan.calcs.iter().enumerate() {
            let rate = mean(summary.rates[index].iter().flatten().copied());
            data.insert(calc.label.clone(), value(calc, &inputs, rate, scales[index].as_ref()).0);
        }
        results.push(ResultRow { data });

        let cover = full_cover.get(&(group as u32)).map(|diff| coverage(diff, plan.buckets));
        let mut members = summary.cells.iter().enumerate().peekable();
        for bucket in 0..plan.buckets as u32 {
            let covered = cover.as_ref().map_or(0, |cover| cover[bucket as usize]);
            let here = members.next_if(|&(_, &index)| cells[index as usize].bucket == bucket);
            if here.is_none() && covered == 0 {
                if members.peek().is_none() && cover.is_none() {
                    break;
                }
                continue;
            }
            let width = bucket_width(&plan, bucket);
            let (cell, position_in_group) = match here {
                Some((at, &index)) => (Some(&cells[index as usize]), Some(at)),
                None => (None, None),
            };
            let overlap = cell.map_or(0, |cell| cell.overlap_ns) + i128::from(covered) * i128::from(width);
            let inputs = Inputs {
                count: cell.map_or(0, |cell| cell.count),
                concurrency: overlap as f64 / width as f64,
                nums: cell.map_or(&empty_nums, |cell| &cell.nums),
                hists: cell.map_or(&empty_hists, |cell| &cell.hists),
                sets: cell.map_or(&empty_sets, |cell| &cell.sets),
            };
            let mut data = key.clone();
            for (index, calc) in plan.calcs.iter().enumerate() {
                let rate = position_in_group.and_then(|at| summary.rates[index].get(at).copied().flatten());
                data.insert(calc.label.clone(), value(calc, &inputs, rate, scales[index].as_ref()).0);
            }
            let time_unix = plan.start_time + i64::from(bucket) * plan.granularity;
            series.push((bucket, position, SeriesPoint { time: rfc3339(time_unix), time_unix, data }));
        }
    }
    series.sort_by_key(|(bucket, position, _)| (*bucket, *position));

    QueryResult {
        results,
        series: series.into_iter().map(|(_, _, point)| point).collect(),
        heatmaps,
        total_count: matched,
        total_groups: if plan.breakdowns.is_empty() { 1 } else { group_count as u64 },
        dropped_count: dropped,
        start_time: plan.start_time,
        end_time: plan.end_time,
        granularity: plan.granularity,
    }
}

fn summarize(plan: &Plan, cells: &[Cell], members: Vec<u32>, cover: Option<&[i64]>, range_ns: i64) -> Summary {
    let mut summary = Summary {
        count: 0,
        overlap_ns: 0,
        nums: vec![NumAcc::default(); plan.numeric.len()],
        hists: vec![Histogram::default(); plan.numeric.len()],
        sets: vec![DistinctSet::default(); plan.distinct.len()],
        cells: Vec::new(),
        rates: Vec::with_capacity(plan.calcs.len()),
        values: Vec::with_capacity(plan.calcs.len()),
    };
    for &index in &members {
        let cell = &cells[index as usize];
        summary.count += cell.count;
        summary.overlap_ns += cell.overlap_ns;
        for (into, from) in summary.nums.iter_mut().zip(&cell.nums) {
            into.merge(from);
        }
        for (into, from) in summary.hists.iter_mut().zip(&cell.hists) {
            into.merge(from);
        }
        for (into, from) in summary.sets.iter_mut().zip(&cell.sets) {
            into.extend(from.iter().copied());
        }
    }
    if let Some(cover) = cover {
        for (bucket, &covered) in cover.iter().enumerate() {
            summary.overlap_ns += i128::from(covered) * i128::from(bucket_width(plan, bucket as u32));
        }
    }
    for calc in &plan.calcs {
        summary.rates.push(rates(calc, cells, &members));
    }
    summary.cells = members;
    let inputs = Inputs {
        count: summary.count,
        concurrency: summary.overlap_ns as f64 / range_ns as f64,
        nums: &summary.nums,
        hists: &summary.hists,
        sets: &summary.sets,
    };
    let values = plan
        .calcs
        .iter()
        .zip(&summary.rates)
        .map(|(calc, rates)| value(calc, &inputs, mean(rates.iter().flatten().copied()), None).1)
        .collect();
    summary.values = values;
    summary
}

/// RATE_*: at each of the group's cells, its AVG/SUM/MAX minus that of the nearest earlier
/// cell that had values (none for the first such cell).
fn rates(calc: &Calc, cells: &[Cell], members: &[u32]) -> Vec<Option<f64>> {
    let (Some(numeric), true) = (calc.numeric, matches!(calc.op, CalcOp::RateAvg | CalcOp::RateSum | CalcOp::RateMax))
    else {
        return Vec::new();
    };
    let mut previous: Option<f64> = None;
    members
        .iter()
        .map(|&index| {
            let acc = &cells[index as usize].nums[numeric];
            if acc.count == 0 {
                return None;
            }
            let current = match calc.op {
                CalcOp::RateAvg => acc.sum() / acc.count as f64,
                CalcOp::RateSum => acc.sum(),
                _ => acc.max,
            };
            let rate = previous.map(|before| current - before);
            previous = Some(current);
            rate
        })
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0u64), |(sum, count), value| (sum + value, count + 1));
    (count > 0).then(|| sum / count as f64)
}

/// A calculation's value as JSON, and as a number when it has one.
fn value(calc: &Calc, inputs: &Inputs<'_>, rate: Option<f64>, scale: Option<&HeatmapScale>) -> (Value, Option<f64>) {
    let acc = calc.numeric.map(|numeric| &inputs.nums[numeric]);
    let float = |value: Option<f64>| (value.map_or(Value::Null, number), value);
    match calc.op {
        CalcOp::Count => (inputs.count.into(), Some(inputs.count as f64)),
        CalcOp::Concurrency => float(Some(inputs.concurrency)),
        CalcOp::CountDistinct => {
            let distinct = calc.distinct.map_or(0, |index| inputs.sets[index].len());
            (distinct.into(), Some(distinct as f64))
        }
        CalcOp::Sum => acc.map_or((Value::Null, None), |acc| (acc.sum_json(), Some(acc.sum()))),
        CalcOp::Avg => float(acc.and_then(NumAcc::avg)),
        CalcOp::Min => {
            acc.filter(|acc| acc.count > 0).map_or((Value::Null, None), |acc| (acc.min_json(), Some(acc.min)))
        }
        CalcOp::Max => {
            acc.filter(|acc| acc.count > 0).map_or((Value::Null, None), |acc| (acc.max_json(), Some(acc.max)))
        }
        CalcOp::Percentile(q) => {
            let estimate = calc.numeric.and_then(|numeric| {
                let acc = &inputs.nums[numeric];
                let key = inputs.hists[numeric].quantile_key(q)?;
                Some(representative(key).clamp(acc.min, acc.max))
            });
            float(estimate)
        }
        CalcOp::Heatmap => {
            let counts = match (scale, calc.numeric) {
                (Some(scale), Some(numeric)) => scale.counts(&inputs.hists[numeric]),
                _ => Vec::new(),
            };
            (counts.into(), None)
        }
        CalcOp::RateAvg | CalcOp::RateSum | CalcOp::RateMax => float(rate),
    }
}

/// By each order in turn (no value sorts last either way), then by the breakdown values
/// ascending, then by when the group was first seen.
fn compare_groups(plan: &Plan, groups: &Groups, summaries: &[Summary], a: usize, b: usize) -> Ordering {
    for order in &plan.orders {
        let ordering = match order.by {
            OrderBy::Calc(calc) => match (summaries[a].values[calc], summaries[b].values[calc]) {
                (Some(x), Some(y)) => {
                    let ordering = x.total_cmp(&y);
                    if order.descending { ordering.reverse() } else { ordering }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            OrderBy::Breakdown(index) => {
                let (x, y) = (&groups.key(a as u32)[index], &groups.key(b as u32)[index]);
                match (x, y) {
                    (super::groups::KeyPart::Absent, _) | (_, super::groups::KeyPart::Absent) => x.compare(y),
                    _ if order.descending => y.compare(x),
                    _ => x.compare(y),
                }
            }
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    if !plan.breakdowns.is_empty() {
        let (x, y) = (groups.key(a as u32), groups.key(b as u32));
        for (x, y) in x.iter().zip(y) {
            let ordering = x.compare(y);
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
    }
    a.cmp(&b)
}

fn breakdown_values(plan: &Plan, groups: &Groups, group: usize) -> Map<String, Value> {
    let mut data = Map::new();
    if !plan.breakdowns.is_empty() {
        for (name, part) in plan.breakdowns.iter().zip(groups.key(group as u32)) {
            data.insert(name.clone(), part.to_json());
        }
    }
    data
}

/// How many spans cover each bucket whole, from the +1/-1 marks.
fn coverage(diff: &BTreeMap<u32, i64>, buckets: usize) -> Vec<i64> {
    let mut cover = vec![0i64; buckets];
    let mut running = 0;
    let mut marks = diff.iter().peekable();
    for (bucket, slot) in cover.iter_mut().enumerate() {
        while let Some((_, delta)) = marks.next_if(|(at, _)| **at as usize <= bucket) {
            running += delta;
        }
        *slot = running;
    }
    cover
}

/// A bucket's width in nanoseconds: the last one may be cut short by the range's end.
fn bucket_width(plan: &Plan, bucket: u32) -> i64 {
    let start = plan.start_ns + i64::from(bucket) * plan.bucket_ns;
    plan.bucket_ns.min(plan.end_ns - start)
}

fn rfc3339(unix_seconds: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(unix_seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}
