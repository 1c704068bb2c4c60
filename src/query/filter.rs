//! Filters compiled from the spec to typed comparisons: the value is parsed once (as text,
//! integer, float and boolean, whichever it can be) and checked against the column's type.
//!
//! Semantics (Honeycomb's where it says, ours where it does not):
//! * `=`/`!=`/`in`/`not-in` compare numbers as numbers (an integer and a float are equal
//!   when their values are), strings as strings, booleans as booleans; values of another
//!   type never equal.
//! * `>`, `>=`, `<`, `<=` compare numbers numerically and strings lexicographically
//!   (byte order); booleans never.
//! * `starts-with`, `ends-with`, `contains` and their negations look at string values only.
//! * `exists` matches rows that have the column, `does-not-exist` rows that do not.
//! * Every negative op (`!=`, `does-not-…`, `not-in`) is the exact complement of its positive
//!   op: it matches rows without the column and rows whose value has another type.

use std::cmp::Ordering;

use serde_json::Value;

use super::block::{ColumnType, FieldValue};
use super::error::QueryError;
use super::spec::FilterSpec;

/// A filter value in every form it can take.
#[derive(Clone, Debug, PartialEq)]
struct Operand {
    text: Box<str>,
    int: Option<i64>,
    float: Option<f64>,
    boolean: Option<bool>,
}

impl Operand {
    fn parse(value: &Value) -> Option<Operand> {
        match value {
            Value::String(text) => Some(Operand {
                text: text.as_str().into(),
                int: text.trim().parse().ok(),
                float: text.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                boolean: match text.as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => None,
                },
            }),
            Value::Number(number) => Some(Operand {
                text: number.to_string().into(),
                int: number.as_i64(),
                float: number.as_f64(),
                boolean: None,
            }),
            Value::Bool(flag) => {
                Some(Operand { text: flag.to_string().into(), int: None, float: None, boolean: Some(*flag) })
            }
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }

    #[inline]
    fn equals(&self, value: FieldValue<'_>) -> bool {
        match value {
            FieldValue::Str(text) => *self.text == *text,
            FieldValue::Int(number) => match self.int {
                Some(int) => int == number,
                None => self.float == Some(number as f64),
            },
            FieldValue::Float(number) => self.float == Some(number),
            FieldValue::Bool(flag) => self.boolean == Some(flag),
        }
    }

    #[inline]
    fn compare(&self, value: FieldValue<'_>) -> Option<Ordering> {
        match value {
            FieldValue::Str(text) => Some(text.cmp(&self.text)),
            FieldValue::Int(number) => match self.int {
                Some(int) => Some(number.cmp(&int)),
                None => (number as f64).partial_cmp(&self.float?),
            },
            FieldValue::Float(number) => number.partial_cmp(&self.float?),
            FieldValue::Bool(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Compare {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

#[derive(Clone, Debug, PartialEq)]
enum Test {
    Exists,
    Equals(Operand),
    Compare(Compare, Operand),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Contains(Box<str>),
    In(Vec<Operand>),
}

/// One compiled filter: a positive test, maybe negated.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    test: Test,
    negated: bool,
}

impl Filter {
    /// Compiles `spec` for a column of type `kind`, refusing a value the op or the column
    /// cannot take.
    pub fn compile(spec: &FilterSpec, kind: ColumnType) -> Result<Filter, QueryError> {
        let fail =
            |reason: String| QueryError::FilterValue { column: spec.column.clone(), op: spec.op.clone(), reason };
        let value = spec.value.as_ref().filter(|value| !value.is_null());
        let scalar = || -> Result<Operand, QueryError> {
            match value {
                None => Err(fail("needs a value".into())),
                Some(value) => Operand::parse(value)
                    .ok_or_else(|| fail(format!("the value must be a string, number or boolean, not {value}"))),
            }
        };
        let typed = |operand: Operand| -> Result<Operand, QueryError> {
            match kind {
                ColumnType::Integer | ColumnType::Float if operand.float.is_none() => Err(fail(format!(
                    "{:?} is not a number, and {:?} is a {} column",
                    operand.text,
                    spec.column,
                    kind.name()
                ))),
                ColumnType::Boolean if operand.boolean.is_none() => Err(fail(format!(
                    "{:?} is not true or false, and {:?} is a boolean column",
                    operand.text, spec.column
                ))),
                _ => Ok(operand),
            }
        };
        let text = || -> Result<Box<str>, QueryError> {
            if kind != ColumnType::String {
                return Err(fail(format!("needs a string column, and {:?} is a {} column", spec.column, kind.name())));
            }
            Ok(scalar()?.text)
        };
        let ordered = |compare: Compare| -> Result<Test, QueryError> {
            if kind == ColumnType::Boolean {
                return Err(fail(format!("booleans cannot be ordered, and {:?} is a boolean column", spec.column)));
            }
            Ok(Test::Compare(compare, typed(scalar()?)?))
        };
        let (test, negated) = match spec.op.as_str() {
            "exists" | "does-not-exist" => {
                if let Some(value) = value {
                    return Err(fail(format!("takes no value, but got {value}")));
                }
                (Test::Exists, spec.op == "does-not-exist")
            }
            "=" => (Test::Equals(typed(scalar()?)?), false),
            "!=" => (Test::Equals(typed(scalar()?)?), true),
            ">" => (ordered(Compare::Greater)?, false),
            ">=" => (ordered(Compare::GreaterOrEqual)?, false),
            "<" => (ordered(Compare::Less)?, false),
            "<=" => (ordered(Compare::LessOrEqual)?, false),
            "starts-with" => (Test::StartsWith(text()?), false),
            "does-not-start-with" => (Test::StartsWith(text()?), true),
            "ends-with" => (Test::EndsWith(text()?), false),
            "does-not-end-with" => (Test::EndsWith(text()?), true),
            "contains" => (Test::Contains(text()?), false),
            "does-not-contain" => (Test::Contains(text()?), true),
            "in" | "not-in" => {
                let Some(Value::Array(items)) = value else {
                    return Err(fail("needs an array of values".into()));
                };
                let operands = items
                    .iter()
                    .map(|item| {
                        Operand::parse(item)
                            .ok_or_else(|| fail(format!("each value must be a string, number or boolean, not {item}")))
                            .and_then(typed)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (Test::In(operands), spec.op == "not-in")
            }
            other => return Err(QueryError::UnknownFilterOp(other.to_string())),
        };
        Ok(Filter { test, negated })
    }

    /// Whether a row with this value (`None`: the row lacks the column) passes.
    #[inline]
    pub fn matches(&self, value: Option<FieldValue<'_>>) -> bool {
        self.positive(value) != self.negated
    }

    #[inline]
    fn positive(&self, value: Option<FieldValue<'_>>) -> bool {
        let Some(value) = value else { return false };
        match &self.test {
            Test::Exists => true,
            Test::Equals(operand) => operand.equals(value),
            Test::Compare(compare, operand) => match (operand.compare(value), compare) {
                (None, _) => false,
                (Some(order), Compare::Greater) => order == Ordering::Greater,
                (Some(order), Compare::GreaterOrEqual) => order != Ordering::Less,
                (Some(order), Compare::Less) => order == Ordering::Less,
                (Some(order), Compare::LessOrEqual) => order != Ordering::Greater,
            },
            Test::StartsWith(prefix) => matches!(value, FieldValue::Str(text) if text.starts_with(&**prefix)),
            Test::EndsWith(suffix) => matches!(value, FieldValue::Str(text) if text.ends_with(&**suffix)),
            Test::Contains(part) => matches!(value, FieldValue::Str(text) if text.contains(&**part)),
            Test::In(operands) => operands.iter().any(|operand| operand.equals(value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filter(op: &str, value: Option<Value>, kind: ColumnType) -> Result<Filter, QueryError> {
        Filter::compile(&FilterSpec { column: "c".into(), op: op.into(), value }, kind)
    }

    #[test]
    fn integers_and_floats_compare_by_value() {
        let f = filter("=", Some(json!(200)), ColumnType::Integer).unwrap();
        assert!(f.matches(Some(FieldValue::Int(200))));
        assert!(f.matches(Some(FieldValue::Float(200.0))));
        assert!(!f.matches(Some(FieldValue::Str("200x"))));
        let g = filter(">", Some(json!("1.5")), ColumnType::Float).unwrap();
        assert!(g.matches(Some(FieldValue::Int(2))));
        assert!(!g.matches(Some(FieldValue::Float(1.5))));
    }

    #[test]
    fn negative_ops_match_absent_and_other_types() {
        let f = filter("!=", Some(json!("a")), ColumnType::String).unwrap();
        assert!(f.matches(None));
        assert!(f.matches(Some(FieldValue::Int(1))));
        assert!(!f.matches(Some(FieldValue::Str("a"))));
    }

    #[test]
    fn string_ops_need_a_string_column() {
        let error = filter("contains", Some(json!("1")), ColumnType::Integer).unwrap_err();
        assert!(error.to_string().contains("needs a string column"), "{error}");
    }

    #[test]
    fn exists_takes_no_value_and_in_takes_an_array() {
        assert!(filter("exists", Some(json!("x")), ColumnType::String).unwrap_err().to_string().contains("no value"));
        assert!(filter("in", Some(json!("x")), ColumnType::String).unwrap_err().to_string().contains("array"));
        assert!(filter("exists", Some(Value::Null), ColumnType::String).is_ok());
    }

    #[test]
    fn a_numeric_column_refuses_a_non_numeric_value() {
        let error = filter("=", Some(json!("fast")), ColumnType::Float).unwrap_err();
        assert!(error.to_string().contains("not a number"), "{error}");
    }
}
