//! A log-linear histogram of numbers for percentiles and HEATMAP: 128 buckets per power of
//! two (each bucket's width is at most 1/128 of its lower bound), from 2^-30 to 2^50 in
//! magnitude, mirrored for negative numbers, with one bucket for everything nearer zero than
//! 2^-30 and one for everything at or beyond 2^50. Bucket bounds are exact `f64`s: a
//! bucket of positive numbers holds `lower <= v < upper`, one of negative numbers
//! `lower < v <= upper`, the zero bucket `lower < v < upper`.
//!
//! A histogram stores one `u32` count per bucket between its smallest and largest value
//! only, so its size is at most [`MAX_BUCKETS`] counts and usually a few hundred.

/// Buckets per power of two: `2^SUB_BITS`.
const SUB_BITS: u32 = 7;
/// Bucket width relative to its lower bound.
pub const RELATIVE_WIDTH: f64 = 1.0 / (1u32 << SUB_BITS) as f64;
const SHIFT: u32 = 52 - SUB_BITS;
const MIN_EXP: i64 = -30;
const MAX_EXP: i64 = 50;
const BASE: u64 = ((1023 + MIN_EXP) as u64) << SUB_BITS;
const TOP: u64 = ((1023 + MAX_EXP) as u64) << SUB_BITS;
/// The magnitude of the bucket for everything at or beyond 2^50.
const OVERFLOW: i32 = (TOP - BASE + 1) as i32;
/// The most buckets a histogram can hold.
pub const MAX_BUCKETS: usize = 2 * OVERFLOW as usize + 1;
/// A HEATMAP has at most this many value buckets.
pub const HEATMAP_ROWS: usize = 50;

/// The bucket of `value` (not NaN): 0 near zero, positive above it, negative below.
#[inline]
pub fn key(value: f64) -> i32 {
    let m = value.abs().to_bits() >> SHIFT;
    if m < BASE {
        return 0;
    }
    let magnitude = if m >= TOP { OVERFLOW } else { (m - BASE + 1) as i32 };
    if value < 0.0 { -magnitude } else { magnitude }
}

/// The bounds of bucket `key` (see the module docs for which end is inclusive); the
/// outermost buckets reach infinity.
pub fn bounds(key: i32) -> (f64, f64) {
    let (lower, upper) = magnitude_bounds(key.unsigned_abs() as i32);
    if key == 0 {
        (-upper, upper)
    } else if key > 0 {
        (lower, upper)
    } else {
        (-upper, -lower)
    }
}

fn magnitude_bounds(magnitude: i32) -> (f64, f64) {
    let min = f64::from_bits(BASE << SHIFT);
    match magnitude {
        0 => (0.0, min),
        m if m >= OVERFLOW => (f64::from_bits(TOP << SHIFT), f64::INFINITY),
        m => {
            let index = BASE + m as u64 - 1;
            (f64::from_bits(index << SHIFT), f64::from_bits((index + 1) << SHIFT))
        }
    }
}

/// The value a percentile in bucket `key` is reported as: the bucket's middle (0 for the
/// zero bucket, the finite bound for the outermost ones).
pub fn representative(key: i32) -> f64 {
    let (lower, upper) = bounds(key);
    if key == 0 {
        0.0
    } else if upper.is_infinite() {
        lower
    } else if lower.is_infinite() {
        upper
    } else {
        lower + (upper - lower) / 2.0
    }
}

/// Counts per bucket, between the smallest and the largest bucket seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    low: i32,
    counts: Vec<u32>,
}

impl Histogram {
    /// Counts `value` (the caller skips NaN).
    #[inline]
    pub fn add(&mut self, value: f64) {
        self.add_key(key(value), 1);
    }

    #[inline]
    fn add_key(&mut self, key: i32, count: u32) {
        if self.counts.is_empty() {
            self.low = key;
            self.counts.push(count);
            return;
        }
        if key < self.low {
            let extra = (self.low - key) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, extra));
            self.low = key;
        }
        let index = (key - self.low) as usize;
        if index >= self.counts.len() {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] = self.counts[index].saturating_add(count);
    }

    pub fn merge(&mut self, other: &Histogram) {
        if let Some((low, high)) = other.key_range() {
            // Grow once to cover both, then add.
            self.add_key(low, 0);
            self.add_key(high, 0);
            for (key, count) in other.iter() {
                let index = (key - self.low) as usize;
                self.counts[index] = self.counts[index].saturating_add(count);
            }
        }
    }

    /// The non-empty buckets, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = (i32, u32)> + '_ {
        let low = self.low;
        self.counts.iter().enumerate().filter(|(_, count)| **count > 0).map(move |(i, count)| (low + i as i32, *count))
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&count| u64::from(count)).sum()
    }

    /// The lowest and highest bucket holding anything.
    pub fn key_range(&self) -> Option<(i32, i32)> {
        let first = self.counts.iter().position(|&count| count > 0)?;
        let last = self.counts.iter().rposition(|&count| count > 0)?;
        Some((self.low + first as i32, self.low + last as i32))
    }

    /// The bucket holding the value of nearest rank `ceil(q × n)` (at least 1).
    pub fn quantile_key(&self, q: f64) -> Option<i32> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (key, count) in self.iter() {
            seen += u64::from(count);
            if seen >= rank {
                return Some(key);
            }
        }
        None
    }
}

/// One HEATMAP's value buckets: runs of `2^shift` adjacent histogram buckets, the same for
/// every group and time bucket of a query so they can be compared.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatmapScale {
    shift: u32,
    /// Row number of each sign's first row: negative rows (most negative first), the zero
    /// row, positive rows.
    negative: Option<(i32, i32)>,
    zero: bool,
    positive: Option<(i32, i32)>,
}

impl HeatmapScale {
    /// The coarsest-but-finest scale with at most [`HEATMAP_ROWS`] rows covering buckets
    /// `low..=high`.
    pub fn covering(low: i32, high: i32) -> HeatmapScale {
        let mut shift = 0;
        loop {
            let scale = HeatmapScale::with_shift(low, high, shift);
            if scale.rows() <= HEATMAP_ROWS || shift >= 20 {
                return scale;
            }
            shift += 1;
        }
    }

    fn with_shift(low: i32, high: i32, shift: u32) -> HeatmapScale {
        // Negative keys -1, -2, … have magnitudes 1, 2, …; rows are (magnitude - 1) >> shift.
        let negative = (low < 0).then(|| {
            let most = (-low - 1) >> shift;
            let least = (-(high.min(-1)) - 1) >> shift;
            (least, most)
        });
        let positive = (high > 0).then(|| (((low.max(1)) - 1) >> shift, (high - 1) >> shift));
        HeatmapScale { shift, negative, zero: low <= 0 && high >= 0, positive }
    }

    pub fn rows(&self) -> usize {
        let span = |range: Option<(i32, i32)>| range.map_or(0, |(a, b)| (b - a + 1) as usize);
        span(self.negative) + usize::from(self.zero) + span(self.positive)
    }

    /// The row of histogram bucket `key` (which must lie in the covered range).
    pub fn row(&self, key: i32) -> usize {
        let negatives = self.negative.map_or(0, |(a, b)| (b - a + 1) as usize);
        if key < 0 {
            let (_, most) = self.negative.unwrap_or((0, 0));
            (most - ((-key - 1) >> self.shift)) as usize
        } else if key == 0 {
            negatives
        } else {
            let (first, _) = self.positive.unwrap_or((0, 0));
            negatives + usize::from(self.zero) + (((key - 1) >> self.shift) - first) as usize
        }
    }

    /// The bounds of every row, lowest values first (infinite ends as `None`).
    pub fn row_bounds(&self) -> Vec<(f64, f64)> {
        let mut rows = Vec::with_capacity(self.rows());
        let run = |row: i32| {
            let first = (row << self.shift) + 1;
            let last = ((row + 1) << self.shift).min(OVERFLOW);
            (magnitude_bounds(first).0, magnitude_bounds(last).1)
        };
        if let Some((least, most)) = self.negative {
            for row in (least..=most).rev() {
                let (lower, upper) = run(row);
                rows.push((-upper, -lower));
            }
        }
        if self.zero {
            rows.push(bounds(0));
        }
        if let Some((first, last)) = self.positive {
            for row in first..=last {
                rows.push(run(row));
            }
        }
        rows
    }

    /// A histogram's counts per row.
    pub fn counts(&self, histogram: &Histogram) -> Vec<u64> {
        let mut counts = vec![0u64; self.rows()];
        for (key, count) in histogram.iter() {
            counts[self.row(key)] += u64::from(count);
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lies_within_its_buckets_bounds() {
        let values = [1e-12, -1e-12, 0.0, 1e-9, 0.001, 0.5, 1.0, 1.5, 3.0, 123.456, -7.25, 1e6, 9.99e14, 2e15, -3e15];
        for value in values {
            let (lower, upper) = bounds(key(value));
            let inside = match key(value) {
                0 => lower < value && value < upper,
                k if k > 0 => lower <= value && value < upper,
                _ => lower < value && value <= upper,
            };
            assert!(inside, "{value} not in {lower}..{upper} (key {})", key(value));
        }
    }

    #[test]
    fn a_bucket_is_at_most_one_128th_of_its_lower_bound_wide() {
        for value in [0.001, 0.7, 1.0, 2.9, 1000.0, 12345.678] {
            let (lower, upper) = bounds(key(value));
            assert!((upper - lower) <= lower * RELATIVE_WIDTH * 1.000_001, "{value}: {lower}..{upper}");
        }
    }

    #[test]
    fn keys_are_ordered_like_values() {
        let values = [-1e20, -5.0, -1.0, -1e-40, 0.0, 1e-40, 0.25, 1.0, 1.01, 2.0, 1e20];
        let keys: Vec<i32> = values.iter().map(|&v| key(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");
    }

    #[test]
    fn quantile_is_the_bucket_of_the_nearest_rank_value() {
        let mut histogram = Histogram::default();
        for value in 1..=100 {
            histogram.add(f64::from(value));
        }
        assert_eq!(histogram.quantile_key(0.9), Some(key(90.0)));
        assert_eq!(histogram.quantile_key(0.001), Some(key(1.0)));
        assert_eq!(histogram.quantile_key(1.0), Some(key(100.0)));
    }

    #[test]
    fn merge_adds_counts_on_both_sides_of_the_range() {
        let mut a = Histogram::default();
        a.add(10.0);
        let mut b = Histogram::default();
        b.add(1.0);
        b.add(100.0);
        b.add(10.0);
        a.merge(&b);
        assert_eq!(a.total(), 4);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![(key(1.0), 1), (key(10.0), 2), (key(100.0), 1)]);
    }

    #[test]
    fn heatmap_rows_cover_the_range_within_the_limit_and_in_order() {
        let low = key(-50.0);
        let high = key(2e6);
        let scale = HeatmapScale::covering(low, high);
        assert!(scale.rows() <= HEATMAP_ROWS);
        let rows = scale.row_bounds();
        assert_eq!(rows.len(), scale.rows());
        assert!(rows.windows(2).all(|w| w[0].1 == w[1].0), "rows must tile: {rows:?}");
        for value in [-50.0, -1.0, 0.0, 0.5, 3.0, 2e6] {
            let (lower, upper) = rows[scale.row(key(value))];
            assert!(lower <= value && value <= upper, "{value} in row {lower}..{upper}");
        }
    }
}
