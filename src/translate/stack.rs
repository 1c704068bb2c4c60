//! `exception.stacktrace` text → stack frames (innermost call first), per language, with chained exceptions
//! (Java `Caused by:`, Python's "During handling…" / "The above exception…", .NET
//! ` ---> ` inner exceptions). Frames borrow from the text; nothing here can panic on odd
//! input, it just finds fewer frames.

use std::borrow::Cow;

use serde::Serialize;

/// Frames kept per exception; the rest are counted in `truncated`.
pub(crate) const MAX_FRAMES: usize = 50;
/// Exceptions taken from one stack trace (the thrown one and its causes).
pub(crate) const MAX_CHAINED: usize = 16;

/// One stack frame. Frames are listed innermost call first (X-Ray's order; Rollbar's is the
/// reverse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Frame<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<&'a str>,
}

/// An exception found in a stack trace. The first of a chain is the one thrown (its type
/// and message come from the event's attributes); each next one caused the previous.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed<'a> {
    pub exception_type: Option<&'a str>,
    pub message: Option<Cow<'a, str>>,
    pub frames: Vec<Frame<'a>>,
    /// Frames beyond [`MAX_FRAMES`].
    pub dropped_frames: u64,
}

impl<'a> Parsed<'a> {
    /// An exception from its `Type: message` line.
    fn from_header(header: &'a str) -> Self {
        let header = header.trim();
        let (exception_type, message) = match header.split_once(':') {
            Some((exception_type, message)) => (exception_type.trim(), message.trim()),
            None => (header, ""),
        };
        Parsed {
            exception_type: non_empty(exception_type),
            message: non_empty(message).map(Cow::Borrowed),
            ..Parsed::default()
        }
    }

    fn push(&mut self, frame: Frame<'a>) {
        if frame.path.is_none() && frame.label.is_none() {
            return;
        }
        if self.frames.len() < MAX_FRAMES {
            self.frames.push(frame);
        } else {
            self.dropped_frames += 1;
        }
    }

    fn append_message_line(&mut self, line: &str) {
        let message = self.message.get_or_insert_with(Cow::default).to_mut();
        if !message.is_empty() {
            message.push('\n');
        }
        message.push_str(line);
    }
}

/// How a stack trace is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StackFormat {
    /// `\tat pkg.Class.method(File.java:12)`, `Caused by: …`.
    Java,
    /// What the X-Ray → OTLP translation writes: `\tat label(path: line)`, no chaining.
    XrayRendering,
    /// `  File "path", line 12, in label`, most recent call last.
    Python,
    /// `    at label (path:line:column)` (V8).
    JavaScript,
    /// `   at Ns.Type.Method(args) in path:line 12`, ` ---> ` inner exceptions.
    DotNet,
    /// `pkg.function(args)` then `\tpath:line +0x1f` (Go's `runtime.Stack`).
    Go,
    /// Unknown: no frames.
    Unknown,
}

impl StackFormat {
    /// The format for a `telemetry.sdk.language`; unknown languages are detected from the text.
    pub(crate) fn for_language(language: Option<&str>, stacktrace: &str) -> StackFormat {
        let known = |name: &str| language.is_some_and(|language| language.eq_ignore_ascii_case(name));
        if known("java") {
            StackFormat::Java
        } else if known("python") {
            StackFormat::Python
        } else if known("nodejs") || known("javascript") || known("webjs") {
            StackFormat::JavaScript
        } else if known("dotnet") {
            StackFormat::DotNet
        } else if known("go") {
            StackFormat::Go
        } else {
            detect(stacktrace)
        }
    }
}

/// Guesses the format from the first line that gives it away.
pub(crate) fn detect(stacktrace: &str) -> StackFormat {
    for line in stacktrace.lines() {
        if line.starts_with("  File \"") {
            return StackFormat::Python;
        }
        if line.starts_with("\tat ") {
            return StackFormat::Java;
        }
        if line.starts_with("    at ") {
            return StackFormat::JavaScript;
        }
        if line.starts_with("   at ") {
            return StackFormat::DotNet;
        }
        if line.starts_with("goroutine ") {
            return StackFormat::Go;
        }
    }
    StackFormat::Unknown
}

/// Parses `stacktrace`; the result has at least one entry (the thrown exception). When
/// the chosen format finds nothing, the format detected from the text is tried.
pub(crate) fn parse(format: StackFormat, stacktrace: &str) -> Vec<Parsed<'_>> {
    let parsed = parse_as(format, stacktrace);
    let found_nothing = matches!(parsed.as_slice(), [only] if only.frames.is_empty());
    if found_nothing && format != StackFormat::XrayRendering {
        let detected = detect(stacktrace);
        if detected != format {
            return parse_as(detected, stacktrace);
        }
    }
    parsed
}

fn parse_as(format: StackFormat, stacktrace: &str) -> Vec<Parsed<'_>> {
    match format {
        StackFormat::Java => parse_java(stacktrace, JavaStyle { chained: true, strip_module: true }),
        StackFormat::XrayRendering => parse_java(stacktrace, JavaStyle { chained: false, strip_module: false }),
        StackFormat::Python => parse_python(stacktrace),
        StackFormat::JavaScript => parse_javascript(stacktrace),
        StackFormat::DotNet => parse_dotnet(stacktrace),
        StackFormat::Go => parse_go(stacktrace),
        StackFormat::Unknown => vec![Parsed::default()],
    }
}

#[derive(Clone, Copy)]
struct JavaStyle {
    /// Follow `Caused by:` lines.
    chained: bool,
    /// Drop a `module/` or class-loader prefix from labels.
    strip_module: bool,
}

/// Java: the first line is the thrown exception, `\tat` lines its frames, `Caused by:`
/// starts the next exception (whose message may run over several lines); `... n more`,
/// `Suppressed:` and its indented frames are skipped.
fn parse_java(stacktrace: &str, style: JavaStyle) -> Vec<Parsed<'_>> {
    let mut chain = vec![Parsed::default()];
    let mut reading_message = false;
    for line in stacktrace.lines().skip(1) {
        if let Some(frame) = line.strip_prefix("\tat ") {
            reading_message = false;
            if let Some(current) = chain.last_mut() {
                current.push(java_frame(frame.trim_end(), style.strip_module));
            }
        } else if let Some(header) = line.strip_prefix("Caused by: ").filter(|_| style.chained) {
            if chain.len() >= MAX_CHAINED {
                break;
            }
            chain.push(Parsed::from_header(header));
            reading_message = true;
        } else if reading_message && let Some(current) = chain.last_mut() {
            current.append_message_line(line.trim_end());
        }
    }
    chain
}

/// `pkg.Class.method(File.java:12)`, `method(Native Method)`, `label(path: 12)`.
fn java_frame(text: &str, strip_module: bool) -> Frame<'_> {
    let (label, location) = split_trailing_parens(text).unwrap_or((text, ""));
    let label = if strip_module { label.rsplit_once('/').map_or(label, |(_, label)| label) } else { label };
    let (path, line) = split_line_number(location);
    Frame { path: non_empty(path), line, label: non_empty(label) }
}

/// The chain separators Python prints between a cause and the exception it led to.
const PYTHON_CHAIN_SEPARATORS: [&str; 2] = [
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
];

/// Python: tracebacks separated by the chain messages, oldest cause first; frames are
/// listed most recent call last, so each traceback is read backwards.
fn parse_python(stacktrace: &str) -> Vec<Parsed<'_>> {
    let lines: Vec<&str> = stacktrace.lines().collect();
    let blocks: Vec<&[&str]> = lines.split(|line| PYTHON_CHAIN_SEPARATORS.contains(&line.trim())).collect();
    let mut chain = Vec::with_capacity(blocks.len().min(MAX_CHAINED));
    for (position, block) in blocks.iter().rev().take(MAX_CHAINED).enumerate() {
        let mut parsed = if position == 0 { Parsed::default() } else { python_exception_line(block) };
        for frame in block.iter().rev().filter_map(|line| python_frame(line)) {
            parsed.push(frame);
        }
        chain.push(parsed);
    }
    if chain.is_empty() {
        chain.push(Parsed::default());
    }
    chain
}

/// `  File "/app/views.py", line 31, in checkout`.
fn python_frame(line: &str) -> Option<Frame<'_>> {
    let rest = line.strip_prefix("  File \"")?;
    let (path, rest) = rest.split_once("\", line ")?;
    let (line_number, label) = match rest.split_once(", in ") {
        Some((line_number, label)) => (line_number, Some(label.trim_end())),
        None => (rest, None),
    };
    Some(Frame { path: non_empty(path), line: line_number.trim().parse().ok(), label: label.and_then(non_empty) })
}

/// The `Type: message` after a traceback's last frame (skipping the indented source and
/// caret lines). The message can run over several lines.
fn python_exception_line<'a>(block: &[&'a str]) -> Parsed<'a> {
    let after_frames = block.iter().rposition(|line| line.starts_with("  File \"")).map_or(0, |index| index + 1);
    let mut lines = block[after_frames..]
        .iter()
        .skip_while(|line| line.starts_with(' ') || line.trim().is_empty() || line.starts_with("Traceback "))
        .map(|line| line.trim_end());
    let Some(first) = lines.next() else { return Parsed::default() };
    let mut parsed = Parsed::from_header(first);
    for line in lines.filter(|line| !line.is_empty()) {
        parsed.append_message_line(line);
    }
    parsed
}

/// V8 (Node.js, browsers): `    at label (path:line:column)` or `    at path:line:column`.
fn parse_javascript(stacktrace: &str) -> Vec<Parsed<'_>> {
    let mut parsed = Parsed::default();
    for line in stacktrace.lines().skip(1) {
        let Some(body) = line.trim_start().strip_prefix("at ").filter(|_| line.starts_with(char::is_whitespace)) else {
            continue;
        };
        let body = body.trim_end();
        let (label, location) =
            split_trailing_parens(body).map_or(("", body), |(label, location)| (label.trim(), location));
        let (path, line_number) = javascript_location(location);
        if path.is_some() || !label.is_empty() {
            parsed.push(Frame { path, line: line_number, label: non_empty(label) });
        }
    }
    vec![parsed]
}

/// `path:line:column`, `path:line`, or a place without numbers (`<anonymous>`, `native`).
fn javascript_location(location: &str) -> (Option<&str>, Option<u64>) {
    match numbered(location) {
        Some((rest, column_or_line)) => match numbered(rest) {
            Some((path, line)) => (non_empty(path), Some(line)),
            None => (non_empty(rest), Some(column_or_line)),
        },
        None => (non_empty(location), None),
    }
}

/// `text:12` → (`text`, 12).
fn numbered(text: &str) -> Option<(&str, u64)> {
    let (rest, number) = text.rsplit_once(':')?;
    Some((rest, number.parse().ok()?))
}

const DOTNET_INNER_END: &str = "--- End of inner exception stack trace ---";

/// .NET `Exception.ToString()`: `Type: message`, inner exceptions after ` ---> `, then the
/// innermost exception's frames first, each inner section closed by
/// `--- End of inner exception stack trace ---`, the outer exception's frames last.
fn parse_dotnet(stacktrace: &str) -> Vec<Parsed<'_>> {
    let mut header_end = stacktrace.len();
    let mut sections: Vec<Vec<Frame<'_>>> = vec![Vec::new()];
    let mut dropped: Vec<u64> = vec![0];
    let mut offset = 0;
    for line in stacktrace.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let trimmed = line.trim();
        let frame_line = line.starts_with(char::is_whitespace) && trimmed.starts_with("at ");
        let marker_line = trimmed.starts_with("---") && !trimmed.starts_with("--->");
        if frame_line || marker_line {
            header_end = header_end.min(line_start);
        }
        if trimmed.starts_with(DOTNET_INNER_END) {
            sections.push(Vec::new());
            dropped.push(0);
        } else if let Some(body) = trimmed.strip_prefix("at ").filter(|_| frame_line)
            && let (Some(section), Some(dropped)) = (sections.last_mut(), dropped.last_mut())
        {
            let frame = dotnet_frame(body);
            if frame.label.is_none() {
                continue;
            }
            if section.len() < MAX_FRAMES {
                section.push(frame);
            } else {
                *dropped += 1;
            }
        }
    }
    let header = &stacktrace[..header_end];
    let mut chain: Vec<Parsed<'_>> = header
        .split("--->")
        .take(MAX_CHAINED)
        .enumerate()
        .map(|(position, text)| if position == 0 { Parsed::default() } else { Parsed::from_header(text) })
        .collect();
    let last = chain.len().saturating_sub(1);
    let section_count = sections.len();
    for (index, (frames, dropped)) in sections.into_iter().zip(dropped).enumerate() {
        let owner = (section_count - 1 - index).min(last);
        if let Some(exception) = chain.get_mut(owner) {
            exception.frames.extend(frames);
            exception.dropped_frames += dropped;
        }
    }
    chain
}

/// `Ns.Type.Method(Int32 id) in /src/File.cs:line 42`, or without ` in …`.
fn dotnet_frame(body: &str) -> Frame<'_> {
    let (label, location) = match body.find(") in ") {
        Some(index) => (&body[..=index], Some(&body[index + 5..])),
        None => match body.split_once(" in ") {
            Some((label, location)) => (label, Some(location)),
            None => (body, None),
        },
    };
    let (path, line) = match location.map(|location| location.rsplit_once(":line ").unwrap_or((location, ""))) {
        Some((path, line)) => (non_empty(path.trim()), line.trim().parse().ok()),
        None => (None, None),
    };
    Frame { path, line, label: non_empty(label.trim()) }
}

/// Go: a function line (`main.handler(0x1, …)`, `created by net/http.(*Server).Serve in
/// goroutine 1`) followed by a tab-indented `path:line +0x1d` line.
fn parse_go(stacktrace: &str) -> Vec<Parsed<'_>> {
    let mut parsed = Parsed::default();
    let mut function: Option<&str> = None;
    for line in stacktrace.lines() {
        if let Some(location) = line.strip_prefix('\t') {
            if let Some(label) = function.take() {
                let location = location.trim().split(" +0x").next().unwrap_or_default();
                let (path, line_number) = split_line_number(location);
                parsed.push(Frame { path: non_empty(path), line: line_number, label: Some(label) });
            }
        } else {
            function = go_function(line.trim_end());
        }
    }
    vec![parsed]
}

fn go_function(line: &str) -> Option<&str> {
    if line.starts_with("goroutine ") || line.starts_with("panic: ") {
        return None;
    }
    if let Some(creator) = line.strip_prefix("created by ") {
        return creator.split(" in goroutine ").next().and_then(non_empty);
    }
    split_trailing_parens(line).map(|(label, _)| label).and_then(non_empty)
}

/// `label(inside)` → (`label`, `inside`), matching the final `)` with its `(` so labels
/// and paths may hold parentheses themselves.
fn split_trailing_parens(text: &str) -> Option<(&str, &str)> {
    let body = text.strip_suffix(')')?;
    let mut depth = 0usize;
    for (index, character) in body.char_indices().rev() {
        match character {
            ')' => depth += 1,
            '(' if depth == 0 => return Some((&body[..index], &body[index + 1..])),
            '(' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `path:12` (or `path: 12`) → (`path`, 12); `path: <unknown>` → (`path`, none); anything
/// else is all path.
fn split_line_number(location: &str) -> (&str, Option<u64>) {
    if let Some((path, tail)) = location.rsplit_once(':') {
        let tail = tail.trim();
        if let Ok(line) = tail.parse() {
            return (path, Some(line));
        }
        if tail == "<unknown>" {
            return (path, None);
        }
    }
    (location, None)
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}
