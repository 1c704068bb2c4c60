//! The accumulators of one (group, time bucket) cell: numeric summaries with an exact sum,
//! sets of value hashes for COUNT_DISTINCT, and the fast hasher they and the group table use.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::block::FieldValue;

/// A multiply-rotate hasher with a final avalanche: fast for the engine's short keys
/// (integers and attribute strings), and deterministic.
#[derive(Clone, Copy, Debug, Default)]
pub struct FastHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
        self.add(bytes.len() as u64);
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    #[inline]
    fn finish(&self) -> u64 {
        // murmur3's fmix64
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

pub type FastBuild = BuildHasherDefault<FastHasher>;

/// Feeds one (possibly absent) value into `hasher`, type-tagged so `"1"`, `1` and `1.0` differ.
#[inline]
pub fn hash_value(hasher: &mut FastHasher, value: Option<FieldValue<'_>>) {
    match value {
        None => hasher.add(0),
        Some(FieldValue::Str(text)) => {
            hasher.add(1);
            hasher.write(text.as_bytes());
        }
        Some(FieldValue::Int(number)) => {
            hasher.add(2);
            hasher.add(number as u64);
        }
        Some(FieldValue::Float(number)) => {
            hasher.add(3);
            hasher.add(number.to_bits());
        }
        Some(FieldValue::Bool(flag)) => {
            hasher.add(4);
            hasher.add(u64::from(flag));
        }
    }
}

/// COUNT_DISTINCT's set: 64-bit hashes of the distinct present values (exact unless two
/// distinct values collide, which at 2^-64 per pair does not happen in practice).
pub type DistinctSet = HashSet<u64, FastBuild>;

#[inline]
pub fn distinct_hash(value: FieldValue<'_>) -> u64 {
    let mut hasher = FastHasher::default();
    hash_value(&mut hasher, Some(value));
    hasher.finish()
}

/// Count, exact sum, min and max of the numeric values of one column in one cell. Integers
/// are summed exactly (i128); floats with Neumaier's compensation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NumAcc {
    pub count: u64,
    int_sum: i128,
    float_sum: f64,
    compensation: f64,
    /// Whether any value was a float (else SUM, MIN and MAX are integers).
    pub any_float: bool,
    pub min: f64,
    pub max: f64,
    min_int: i64,
    max_int: i64,
}

impl Default for NumAcc {
    fn default() -> Self {
        NumAcc {
            count: 0,
            int_sum: 0,
            float_sum: 0.0,
            compensation: 0.0,
            any_float: false,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            min_int: i64::MAX,
            max_int: i64::MIN,
        }
    }
}

impl NumAcc {
    #[inline]
    pub fn add_int(&mut self, value: i64) {
        self.count += 1;
        self.int_sum += i128::from(value);
        self.min_int = self.min_int.min(value);
        self.max_int = self.max_int.max(value);
        let as_float = value as f64;
        self.min = self.min.min(as_float);
        self.max = self.max.max(as_float);
    }

    #[inline]
    pub fn add_float(&mut self, value: f64) {
        self.count += 1;
        self.any_float = true;
        self.add_to_float_sum(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    #[inline]
    fn add_to_float_sum(&mut self, value: f64) {
        let sum = self.float_sum + value;
        if self.float_sum.abs() >= value.abs() {
            self.compensation += (self.float_sum - sum) + value;
        } else {
            self.compensation += (value - sum) + self.float_sum;
        }
        self.float_sum = sum;
    }

    pub fn merge(&mut self, other: &NumAcc) {
        self.count += other.count;
        self.int_sum += other.int_sum;
        self.add_to_float_sum(other.float_sum);
        self.compensation += other.compensation;
        self.any_float |= other.any_float;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.min_int = self.min_int.min(other.min_int);
        self.max_int = self.max_int.max(other.max_int);
    }

    /// The sum as a JSON number: an integer when every value was one and it fits in i64.
    pub fn sum_json(&self) -> serde_json::Value {
        if !self.any_float
            && let Ok(sum) = i64::try_from(self.int_sum)
        {
            return sum.into();
        }
        number(self.sum())
    }

    pub fn sum(&self) -> f64 {
        self.int_sum as f64 + (self.float_sum + self.compensation)
    }

    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum() / self.count as f64)
    }

    pub fn min_json(&self) -> serde_json::Value {
        match (self.count, self.any_float) {
            (0, _) => serde_json::Value::Null,
            (_, false) => self.min_int.into(),
            (_, true) => number(self.min),
        }
    }

    pub fn max_json(&self) -> serde_json::Value {
        match (self.count, self.any_float) {
            (0, _) => serde_json::Value::Null,
            (_, false) => self.max_int.into(),
            (_, true) => number(self.max),
        }
    }
}

/// A float as JSON; not-a-number and infinities (which JSON lacks) as null.
pub fn number(value: f64) -> serde_json::Value {
    serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_sums_are_exact_beyond_f64_precision() {
        let mut acc = NumAcc::default();
        acc.add_int(i64::MAX / 2);
        acc.add_int(3);
        assert_eq!(acc.sum_json(), serde_json::json!(i64::MAX / 2 + 3));
    }

    #[test]
    fn float_sums_are_compensated() {
        let mut acc = NumAcc::default();
        acc.add_float(1e16);
        for _ in 0..10 {
            acc.add_float(1.0);
        }
        acc.add_float(-1e16);
        assert_eq!(acc.sum(), 10.0);
    }

    #[test]
    fn min_and_max_stay_integers_for_integer_columns() {
        let mut acc = NumAcc::default();
        acc.add_int(5);
        acc.add_int(-2);
        assert_eq!((acc.min_json(), acc.max_json()), (serde_json::json!(-2), serde_json::json!(5)));
    }

    #[test]
    fn distinct_hashes_tell_types_apart() {
        assert_ne!(distinct_hash(FieldValue::Str("1")), distinct_hash(FieldValue::Int(1)));
        assert_ne!(distinct_hash(FieldValue::Int(1)), distinct_hash(FieldValue::Float(1.0)));
        assert_eq!(distinct_hash(FieldValue::Str("a")), distinct_hash(FieldValue::Str("a")));
    }
}
