//! Log group and log stream names from templates over resource attributes and the event's date.
//!
//! A template is text with placeholders: `{service.name}` is replaced by that resource
//! attribute, `{date}` by the event's UTC date (`YYYY-MM-DD`), `{{` and `}}` are literal
//! braces. So `/waggle/{service.name}` and `{host.name}/{date}` name one group per service and
//! one stream per host and day.
//!
//! - **`{date}` is the date of the event**, not of the moment of sending: an event logged at
//!   23:59:59 UTC lands in that day's stream even when it is sent (or replayed from the spool)
//!   after midnight, and a retry never moves an event to another stream.
//! - **An unresolved placeholder** (no such attribute, or an empty value) becomes
//!   [`UNRESOLVED_PLACEHOLDER`] (`unknown`). Non-string values are written as text (`42`,
//!   `true`, JSON for arrays and maps, base64 for bytes).
//! - **Substituted values are sanitised**, literal text is checked when the template is parsed:
//!   group names allow only `A-Z a-z 0-9 . - _ / #` (anything else in a value becomes `_`) and
//!   may not start with `aws/` (a rendered `aws/…` becomes `_aws/…`); stream names exclude `:`,
//!   `*` and control characters (each becomes `_`). Both are cut to 512 characters.

use std::fmt;

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::json;

/// What an unresolved placeholder renders as.
pub(crate) const UNRESOLVED_PLACEHOLDER: &str = "unknown";

/// The longest log group or log stream name CloudWatch Logs accepts, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 512;

/// The prefix CloudWatch Logs reserves for log groups that AWS services create.
const RESERVED_GROUP_PREFIX: &str = "aws/";

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Which CloudWatch Logs name a template produces; they follow different character rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    LogGroup,
    LogStream,
}

impl NameKind {
    /// Whether CloudWatch Logs allows `character` in a name of this kind.
    fn allows(self, character: char) -> bool {
        match self {
            NameKind::LogGroup => character.is_ascii_alphanumeric() || matches!(character, '.' | '-' | '_' | '/' | '#'),
            NameKind::LogStream => !matches!(character, ':' | '*') && !character.is_control(),
        }
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::LogGroup => "log group name",
            NameKind::LogStream => "log stream name",
        })
    }
}

/// Why a template was refused; each names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the {kind} template is empty")]
    Empty { kind: NameKind },
    #[error("placeholder `{placeholder}` in the {kind} template has no closing `}}`")]
    Unclosed { kind: NameKind, placeholder: String },
    #[error("`}}` at byte {position} of the {kind} template closes no placeholder (write `}}}}` for a literal `}}`)")]
    UnmatchedClose { kind: NameKind, position: usize },
    #[error(
        "placeholder `{placeholder}` in the {kind} template is not a resource attribute name \
         (no spaces, braces or control characters; `{{}}` names nothing)"
    )]
    BadPlaceholder { kind: NameKind, placeholder: String },
    #[error("`{character}` is not allowed in a CloudWatch Logs {kind}")]
    InvalidCharacter { kind: NameKind, character: char },
    #[error("a CloudWatch Logs log group name cannot start with `aws/` (reserved for AWS services)")]
    ReservedPrefix,
    #[error("the fixed text of the {kind} template is {chars} characters; CloudWatch Logs allows {MAX_NAME_CHARS}")]
    TooLong { kind: NameKind, chars: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    ResourceAttribute(String),
    Date,
}

/// A parsed group or stream name template. Parse once at start-up, render per resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    source: String,
    kind: NameKind,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `source` as a name template of `kind`.
    pub(crate) fn parse(source: &str, kind: NameKind) -> Result<Template, TemplateError> {
        if source.is_empty() {
            return Err(TemplateError::Empty { kind });
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut position = 0;
        while let Some(character) = source[position..].chars().next() {
            let rest = &source[position..];
            if rest.starts_with("{{") || rest.starts_with("}}") {
                push_literal_char(&mut literal, character, kind)?;
                position += 2;
            } else if character == '{' {
                let Some(name_len) = rest[1..].find('}') else {
                    return Err(TemplateError::Unclosed { kind, placeholder: rest.to_owned() });
                };
                let name = &rest[1..1 + name_len];
                let placeholder = &rest[..name_len + 2];
                if name.is_empty() || name.chars().any(|c| c == '{' || c.is_whitespace() || c.is_control()) {
                    return Err(TemplateError::BadPlaceholder { kind, placeholder: placeholder.to_owned() });
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(if name == "date" { Piece::Date } else { Piece::ResourceAttribute(name.to_owned()) });
                position += placeholder.len();
            } else if character == '}' {
                return Err(TemplateError::UnmatchedClose { kind, position });
            } else {
                push_literal_char(&mut literal, character, kind)?;
                position += character.len_utf8();
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        let fixed_chars: usize = pieces
            .iter()
            .map(|piece| match piece {
                Piece::Literal(text) => text.chars().count(),
                _ => 0,
            })
            .sum();
        if fixed_chars > MAX_NAME_CHARS {
            return Err(TemplateError::TooLong { kind, chars: fixed_chars });
        }
        if kind == NameKind::LogGroup
            && let Some(Piece::Literal(text)) = pieces.first()
            && text.starts_with(RESERVED_GROUP_PREFIX)
        {
            return Err(TemplateError::ReservedPrefix);
        }
        Ok(Template { source: source.to_owned(), kind, pieces })
    }

    /// Whether the rendered name depends on the event's date.
    pub(crate) fn uses_date(&self) -> bool {
        self.pieces.contains(&Piece::Date)
    }

    /// The name for events of a resource with these attributes, logged at `timestamp_ms`
    /// (milliseconds since the Unix epoch; only `{date}` reads it).
    pub(crate) fn render(&self, resource: &[KeyValue], timestamp_ms: i64) -> String {
        let mut name = String::with_capacity(self.source.len() + 32);
        let mut value = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => name.push_str(text),
                Piece::Date => push_utc_date(&mut name, timestamp_ms),
                Piece::ResourceAttribute(key) => {
                    value.clear();
                    json::push_text(&mut value, json::attribute(resource, key));
                    if value.is_empty() {
                        name.push_str(UNRESOLVED_PLACEHOLDER);
                    } else {
                        name.extend(value.chars().map(|c| if self.kind.allows(c) { c } else { '_' }));
                    }
                }
            }
        }
        if self.kind == NameKind::LogGroup && name.starts_with(RESERVED_GROUP_PREFIX) {
            name.insert(0, '_');
        }
        if let Some((cut, _)) = name.char_indices().nth(MAX_NAME_CHARS) {
            name.truncate(cut);
        }
        name
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn push_literal_char(literal: &mut String, character: char, kind: NameKind) -> Result<(), TemplateError> {
    if !kind.allows(character) {
        return Err(TemplateError::InvalidCharacter { kind, character });
    }
    literal.push(character);
    Ok(())
}

/// Appends the UTC date of `timestamp_ms` as `YYYY-MM-DD`.
pub(super) fn push_utc_date(out: &mut String, timestamp_ms: i64) {
    use std::fmt::Write as _;
    let (year, month, day) = civil_date(timestamp_ms.div_euclid(MILLIS_PER_DAY));
    let _ = write!(out, "{year:04}-{month:02}-{day:02}");
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_date(days_since_epoch: i64) -> (i64, u32, u32) {
    let shifted = days_since_epoch + 719_468; // days since 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1..=31, 1..=12).
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}
