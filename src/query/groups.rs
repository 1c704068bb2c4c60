//! The breakdown groups: each distinct tuple of breakdown values gets a number, found by
//! hash without allocating for a tuple already seen.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::Hasher;

use super::accumulate::{FastBuild, FastHasher, hash_value};
use super::block::FieldValue;

/// The most groups one query keeps; rows of further groups are counted as dropped.
pub const MAX_GROUPS: usize = 10_000;

const END: u32 = u32::MAX;

/// One breakdown value of a group, owned.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyPart {
    Absent,
    Str(Box<str>),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl KeyPart {
    fn of(value: Option<FieldValue<'_>>) -> KeyPart {
        match value {
            None => KeyPart::Absent,
            Some(FieldValue::Str(text)) => KeyPart::Str(text.into()),
            Some(FieldValue::Int(number)) => KeyPart::Int(number),
            Some(FieldValue::Float(number)) => KeyPart::Float(number),
            Some(FieldValue::Bool(flag)) => KeyPart::Bool(flag),
        }
    }

    #[inline]
    fn matches(&self, value: Option<FieldValue<'_>>) -> bool {
        match (self, value) {
            (KeyPart::Absent, None) => true,
            (KeyPart::Str(a), Some(FieldValue::Str(b))) => &**a == b,
            (KeyPart::Int(a), Some(FieldValue::Int(b))) => *a == b,
            (KeyPart::Float(a), Some(FieldValue::Float(b))) => a.to_bits() == b.to_bits(),
            (KeyPart::Bool(a), Some(FieldValue::Bool(b))) => *a == b,
            _ => false,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            KeyPart::Absent => serde_json::Value::Null,
            KeyPart::Str(text) => serde_json::Value::String(text.to_string()),
            KeyPart::Int(number) => (*number).into(),
            KeyPart::Float(number) => super::accumulate::number(*number),
            KeyPart::Bool(flag) => (*flag).into(),
        }
    }

    /// Booleans, then numbers, then strings; absent last (for ascending and descending).
    pub fn compare(&self, other: &KeyPart) -> Ordering {
        fn rank(part: &KeyPart) -> u8 {
            match part {
                KeyPart::Bool(_) => 0,
                KeyPart::Int(_) | KeyPart::Float(_) => 1,
                KeyPart::Str(_) => 2,
                KeyPart::Absent => 3,
            }
        }
        match (self, other) {
            (KeyPart::Bool(a), KeyPart::Bool(b)) => a.cmp(b),
            (KeyPart::Int(a), KeyPart::Int(b)) => a.cmp(b),
            (KeyPart::Str(a), KeyPart::Str(b)) => a.cmp(b),
            (a @ (KeyPart::Int(_) | KeyPart::Float(_)), b @ (KeyPart::Int(_) | KeyPart::Float(_))) => {
                a.as_f64().total_cmp(&b.as_f64())
            }
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            KeyPart::Int(number) => *number as f64,
            KeyPart::Float(number) => *number,
            _ => f64::NAN,
        }
    }
}

/// The groups seen so far: their keys (flat, `width` parts each) and a hash index.
#[derive(Debug, Default)]
pub struct Groups {
    width: usize,
    keys: Vec<KeyPart>,
    first_by_hash: HashMap<u64, u32, FastBuild>,
    next_same_hash: Vec<u32>,
    len: usize,
}

impl Groups {
    pub fn new(width: usize) -> Groups {
        Groups { width, ..Groups::default() }
    }

    pub fn len(&self) -> usize {
        self.len.max(usize::from(self.width == 0))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The group of this tuple of breakdown values, added if new; `None` once
    /// [`MAX_GROUPS`] groups exist and the tuple is not one of them.
    #[inline]
    pub fn find_or_insert(&mut self, parts: &[Option<FieldValue<'_>>]) -> Option<u32> {
        if self.width == 0 {
            return Some(0);
        }
        let mut hasher = FastHasher::default();
        for part in parts {
            hash_value(&mut hasher, *part);
        }
        let hash = hasher.finish();
        let mut candidate = self.first_by_hash.get(&hash).copied().unwrap_or(END);
        while candidate != END {
            let start = candidate as usize * self.width;
            let key = &self.keys[start..start + self.width];
            if key.iter().zip(parts).all(|(stored, value)| stored.matches(*value)) {
                return Some(candidate);
            }
            candidate = self.next_same_hash[candidate as usize];
        }
        if self.len >= MAX_GROUPS {
            return None;
        }
        let group = self.len as u32;
        self.keys.extend(parts.iter().map(|part| KeyPart::of(*part)));
        let previous = self.first_by_hash.insert(hash, group).unwrap_or(END);
        self.next_same_hash.push(previous);
        self.len += 1;
        Some(group)
    }

    /// The breakdown values of `group`.
    pub fn key(&self, group: u32) -> &[KeyPart] {
        let start = group as usize * self.width;
        &self.keys[start..start + self.width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_tuple_gets_the_same_group_and_types_differ() {
        let mut groups = Groups::new(2);
        let a = groups.find_or_insert(&[Some(FieldValue::Str("/a")), None]);
        let b = groups.find_or_insert(&[Some(FieldValue::Str("/a")), Some(FieldValue::Int(1))]);
        let c = groups.find_or_insert(&[Some(FieldValue::Str("/a")), Some(FieldValue::Str("1"))]);
        assert_eq!(groups.find_or_insert(&[Some(FieldValue::Str("/a")), None]), a);
        assert_eq!(groups.find_or_insert(&[Some(FieldValue::Str("/a")), Some(FieldValue::Int(1))]), b);
        assert_eq!([a, b, c], [Some(0), Some(1), Some(2)]);
        assert_eq!(groups.key(1), &[KeyPart::Str("/a".into()), KeyPart::Int(1)]);
    }

    #[test]
    fn no_more_than_max_groups_are_kept() {
        let mut groups = Groups::new(1);
        for number in 0..MAX_GROUPS as i64 {
            assert!(groups.find_or_insert(&[Some(FieldValue::Int(number))]).is_some());
        }
        assert_eq!(groups.find_or_insert(&[Some(FieldValue::Int(-1))]), None);
        assert_eq!(groups.find_or_insert(&[Some(FieldValue::Int(7))]), Some(7));
    }
}
