//! The YAML layer: parses configuration text into a tree of [`Node`]s that
//! remember their line and column, and reads typed values out of that tree
//! while tracking the field path (`scrape_configs[0].scrape_timeout`).
//!
//! Why a tree and not `#[derive(Deserialize)]` on the config structs:
//! Prometheus inlines the HTTP client settings into several sections *and*
//! rejects unknown fields, which serde's `flatten` cannot combine with
//! `deny_unknown_fields`; validation errors found after decoding must still
//! point at a line; and a YAML `null` must act like an absent field, as it
//! does for Prometheus. serde-saphyr still does all the YAML work: syntax
//! errors with positions, duplicate keys (rejected, as Prometheus does),
//! anchors, aliases and merge keys.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};

use crate::duration::Duration;
use crate::error::{DecodeResult, FieldError, Position};

/// One YAML value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub position: Position,
    /// A scalar written in quotes: `'true'` is the string "true", which
    /// Prometheus' YAML library does not store in a bool field.
    pub quoted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_position: Position,
    pub value: Node,
}

/// Parses one YAML document. An empty document (or only comments) is `null`,
/// which Prometheus loads as the default configuration. Like Prometheus' YAML
/// library, only the first document of a stream is read (see [`first_document`]).
pub(crate) fn parse(text: &str) -> DecodeResult<Node> {
    let text = first_document(text);
    if text
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
    {
        return Ok(Node {
            value: Value::Null,
            position: Position { line: 1, column: 1 },
            quoted: false,
        });
    }
    let options = serde_saphyr::options! {
        // We render positions ourselves, as `file:line:column:`.
        with_snippet: false,
        // Only `true`/`false` become booleans, so that a string field or a
        // key written `yes`, `on` or `y` keeps its text, as in Prometheus;
        // boolean fields still accept the YAML 1.1 spellings (see `bool`).
        strict_booleans: true,
        // `.inf` / `.nan` are just text until a field asks for a float.
        non_finite_float_policy: serde_saphyr::options::NonFiniteFloatPolicy::AsString,
    };
    match serde_saphyr::from_str_with_options::<Spanned<RawValue>>(text, options) {
        Ok(raw) => {
            let mut node = Node::from(raw);
            let lines: Vec<&str> = text.lines().collect();
            mark_quoted(&mut node, &lines);
            Ok(node)
        }
        Err(error) => {
            let mut error = syntax_error(&error);
            if let Some(position) = error.position {
                error.path = path_at_line(text, position.line).unwrap_or_default();
            }
            Err(error)
        }
    }
}

/// Sets [`Node::quoted`] on the string scalars that start with a quote in
/// the source text (`lines`, positions are 1-based characters).
fn mark_quoted(node: &mut Node, lines: &[&str]) {
    match &mut node.value {
        Value::Str(_) => {
            let line = usize::try_from(node.position.line).unwrap_or(usize::MAX);
            let column = usize::try_from(node.position.column).unwrap_or(usize::MAX);
            let first = line
                .checked_sub(1)
                .and_then(|l| lines.get(l))
                .and_then(|l| l.chars().nth(column.saturating_sub(1)));
            node.quoted = matches!(first, Some('\'' | '"'));
        }
        Value::Seq(items) => items.iter_mut().for_each(|item| mark_quoted(item, lines)),
        Value::Map(entries) => entries
            .iter_mut()
            .for_each(|entry| mark_quoted(&mut entry.value, lines)),
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

/// The text of the first YAML document of `text`. Prometheus' YAML library
/// (go-yaml v2) decodes the first document of a file and never reads the
/// rest, so a later document (`---`), even an invalid one, does not matter.
/// A document ends at a `---` or `...` marker line (markers are only
/// recognised at column 0, also inside block scalars, as YAML specifies)
/// once the first document has begun, either with its own `---` or with
/// content. Cutting the text keeps the line numbers of the first document.
fn first_document(text: &str) -> &str {
    let is_marker = |line: &str, marker: &str| {
        line.strip_prefix(marker)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    };
    let mut in_document = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        if is_marker(content, "---") || is_marker(content, "...") {
            if in_document {
                return &text[..offset];
            }
            in_document = is_marker(content, "---");
        } else {
            let trimmed = content.trim();
            if !trimmed.is_empty() && !trimmed.starts_with('#') && !trimmed.starts_with('%') {
                in_document = true;
            }
        }
        offset += line.len();
    }
    text
}

/// Which field line `line` of `text` belongs to, e.g. `global.scrape_timeout`,
/// found by following the indentation of block-style YAML.
///
/// Only for syntax errors and duplicate keys, which the parser reports
/// before there is a tree to follow; flow style (`{a: 1}`) is not followed,
/// and the result is the nearest enclosing field.
pub(crate) fn path_at_line(text: &str, line: u64) -> Option<String> {
    enum Step {
        Key { indent: usize, name: String },
        Item { indent: usize, index: usize },
    }
    let mut stack: Vec<Step> = Vec::new();
    // Lines deeper than this belong to a `|` or `>` block scalar.
    let mut block_scalar_indent: Option<usize> = None;
    let line_count = usize::try_from(line).unwrap_or(usize::MAX);
    for raw_line in text.lines().take(line_count) {
        let content = raw_line.trim_start();
        if content.is_empty() || content.starts_with('#') || content.starts_with("---") {
            continue;
        }
        let mut indent = raw_line.len() - content.len();
        if let Some(scalar_indent) = block_scalar_indent {
            if indent > scalar_indent {
                continue;
            }
            block_scalar_indent = None;
        }
        let is_item = content == "-" || content.starts_with("- ");
        // Leave the fields and items this line is not inside of. A list may
        // sit at the same indentation as its key (`key:\n- item`).
        while let Some(top) = stack.last() {
            let leave = match top {
                Step::Key {
                    indent: key_indent, ..
                } => *key_indent > indent || (*key_indent == indent && !is_item),
                Step::Item {
                    indent: dash_indent,
                    ..
                } => *dash_indent > indent || (*dash_indent == indent && !is_item),
            };
            if !leave {
                break;
            }
            stack.pop();
        }
        let mut rest = content;
        if is_item {
            match stack.last_mut() {
                Some(Step::Item {
                    indent: dash_indent,
                    index,
                }) if *dash_indent == indent => {
                    *index += 1;
                }
                _ => stack.push(Step::Item { indent, index: 0 }),
            }
            let after_dash = content[1..].trim_start();
            indent += content.len() - after_dash.len();
            rest = after_dash;
        }
        if let Some((key, value)) = split_key(rest) {
            let value = value.trim_start();
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar_indent = Some(indent);
            }
            stack.push(Step::Key {
                indent,
                name: key.to_owned(),
            });
        }
    }
    let mut path = String::new();
    for step in &stack {
        path = match step {
            Step::Key { name, .. } => join_key(&path, name),
            Step::Item { index, .. } => join_index(&path, *index),
        };
    }
    (!path.is_empty()).then_some(path)
}

/// `key: value` or `key:` → the key (unquoted) and the value text.
fn split_key(content: &str) -> Option<(&str, &str)> {
    if content.starts_with(['[', '{', '&', '*', '!', '|', '>']) {
        return None;
    }
    let (key, value) =
        if let Some(quote) = content.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let close = content[1..].find(quote)? + 1;
            let after = content[close + 1..].strip_prefix(':')?;
            (&content[1..close], after)
        } else {
            let colon = content.match_indices(':').map(|(at, _)| at).find(|at| {
                content[at + 1..].is_empty() || content[at + 1..].starts_with([' ', '\t'])
            })?;
            (&content[..colon], &content[colon + 1..])
        };
    Some((key.trim_end(), value))
}

fn syntax_error(error: &serde_saphyr::Error) -> FieldError {
    let error = error.without_snippet();
    let position = error
        .location()
        .filter(|location| location.line() > 0)
        .map(|location| Position {
            line: location.line(),
            column: location.column(),
        });
    let message = match error {
        serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
            format!("mapping key {key:?} already defined")
        }
        _ => serde_saphyr::DefaultMessageFormatter
            .format_message(error)
            .into_owned(),
    };
    FieldError {
        position,
        path: String::new(),
        message,
    }
}

/// What serde-saphyr hands us; converted into [`Node`] right away.
enum RawValue {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<RawKey>, Spanned<RawValue>)>),
}

/// A mapping key; Prometheus configs only use scalar keys.
struct RawKey(String);

fn position_of<T>(spanned: &Spanned<T>) -> Position {
    Position {
        line: spanned.referenced.line(),
        column: spanned.referenced.column(),
    }
}

impl From<Spanned<RawValue>> for Node {
    fn from(raw: Spanned<RawValue>) -> Self {
        let position = position_of(&raw);
        let value = match raw.value {
            RawValue::Null => Value::Null,
            RawValue::Bool(b) => Value::Bool(b),
            RawValue::Int(i) => Value::Int(i),
            RawValue::Float(f) => Value::Float(f),
            RawValue::Str(s) => Value::Str(s),
            RawValue::Seq(items) => Value::Seq(items.into_iter().map(Node::from).collect()),
            RawValue::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| Entry {
                        key_position: position_of(&key),
                        key: key.value.0,
                        value: Node::from(value),
                    })
                    .collect(),
            ),
        };
        Node {
            value,
            position,
            quoted: false,
        }
    }
}

struct RawValueVisitor;

impl<'de> Visitor<'de> for RawValueVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
        Ok(RawValue::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawValue, E> {
        Ok(match i128::try_from(v) {
            Ok(v) => RawValue::Int(v),
            Err(_) => RawValue::Str(v.to_string()),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<RawValue, D::Error> {
        RawValue::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawValue>>()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<RawKey>>()? {
            let value = map.next_value::<Spanned<RawValue>>()?;
            entries.push((key, value));
        }
        Ok(RawValue::Map(entries))
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawValueVisitor)
    }
}

struct RawKeyVisitor;

impl<'de> Visitor<'de> for RawKeyVisitor {
    type Value = RawKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawKey, E> {
        Ok(RawKey(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<RawKey, E> {
        Ok(RawKey(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawKey, E> {
        Ok(RawKey(String::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<RawKey, E> {
        Ok(RawKey(String::new()))
    }
}

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawKeyVisitor)
    }
}

impl Node {
    pub(crate) fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The YAML tag Prometheus' (Go) YAML library names in its type errors.
    fn tag(&self) -> &'static str {
        match self.value {
            Value::Null => "!!null",
            Value::Bool(_) => "!!bool",
            Value::Int(_) => "!!int",
            Value::Float(_) => "!!float",
            Value::Str(_) => "!!str",
            Value::Seq(_) => "!!seq",
            Value::Map(_) => "!!map",
        }
    }

    /// The text of a scalar, as a string field would receive it.
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Str(s) => Some(s.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A Go-style "cannot unmarshal !!str `abc` into bool" error.
    pub(crate) fn type_error(&self, path: &str, target: &str) -> FieldError {
        let message = match self.scalar_text() {
            Some(text) => format!("cannot unmarshal {} `{text}` into {target}", self.tag()),
            None => format!("cannot unmarshal {} into {target}", self.tag()),
        };
        FieldError::new(self.position, path, message)
    }

    pub(crate) fn error(&self, path: &str, message: impl Into<String>) -> FieldError {
        FieldError::new(self.position, path, message)
    }

    /// The items of a sequence; `null` is an empty sequence.
    pub(crate) fn items(&self, path: &str) -> DecodeResult<&[Node]> {
        match &self.value {
            Value::Seq(items) => Ok(items),
            Value::Null => Ok(&[]),
            _ => Err(self.type_error(path, "list")),
        }
    }

    /// The entries of a mapping; `null` is an empty mapping.
    pub(crate) fn entries(&self, path: &str) -> DecodeResult<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Ok(entries),
            Value::Null => Ok(&[]),
            _ => Err(self.type_error(path, "mapping")),
        }
    }
}

/// `parent.key`, or `parent["odd key"]` for keys that would read ambiguously.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

pub(crate) fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Reads the fields of one YAML mapping, remembering which keys were used so
/// that the rest can be reported as unknown, like Prometheus' strict mode.
pub(crate) struct Fields<'n> {
    path: String,
    position: Position,
    entries: &'n [Entry],
    used: Vec<bool>,
    /// Every field name a reader asked for, for "did you mean" hints.
    asked: Vec<String>,
}

impl<'n> Fields<'n> {
    pub(crate) fn new(node: &'n Node, path: &str) -> DecodeResult<Fields<'n>> {
        let entries = node.entries(path)?;
        Ok(Fields {
            path: path.to_owned(),
            position: node.position,
            entries,
            used: vec![false; entries.len()],
            asked: Vec::new(),
        })
    }

    pub(crate) fn path_of(&self, key: &str) -> String {
        join_key(&self.path, key)
    }

    /// The entry for `key`, even if its value is `null`, marking it used.
    pub(crate) fn take(&mut self, key: &str) -> Option<&'n Entry> {
        self.asked.push(key.to_owned());
        let index = self.entries.iter().position(|entry| entry.key == key)?;
        self.used[index] = true;
        Some(&self.entries[index])
    }

    /// The value for `key`, or `None` if it is absent or `null`.
    pub(crate) fn node(&mut self, key: &str) -> Option<&'n Node> {
        self.take(key)
            .map(|entry| &entry.value)
            .filter(|node| !node.is_null())
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|entry| entry.key == key)
    }

    /// Decodes `key` if it is present and not `null`.
    pub(crate) fn get<T: Decode>(&mut self, key: &str) -> DecodeResult<Option<T>> {
        match self.node(key) {
            Some(node) => T::decode(node, &self.path_of(key)).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn get_or<T: Decode>(&mut self, key: &str, default: T) -> DecodeResult<T> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    pub(crate) fn get_or_default<T: Decode + Default>(&mut self, key: &str) -> DecodeResult<T> {
        Ok(self.get(key)?.unwrap_or_default())
    }

    /// Where an error about `key` should point: at the key if it is written,
    /// else at the mapping that lacks it.
    pub(crate) fn position_of(&self, key: &str) -> Position {
        self.entries
            .iter()
            .find(|entry| entry.key == key)
            .map_or(self.position, |entry| entry.key_position)
    }

    /// An error about `key`, which may be absent (e.g. "requires 'target_label'").
    pub(crate) fn error(&self, key: &str, message: impl Into<String>) -> FieldError {
        FieldError::new(self.position_of(key), &self.path_of(key), message)
    }

    /// An error about the mapping as a whole.
    pub(crate) fn error_here(&self, message: impl Into<String>) -> FieldError {
        FieldError::new(self.position, &self.path, message)
    }

    /// Fails on the first key no reader asked for.
    pub(crate) fn finish(&self, section: &str) -> DecodeResult<()> {
        let Some(index) = self.used.iter().position(|used| !used) else {
            return Ok(());
        };
        let entry = &self.entries[index];
        let mut message = format!("field {} not found in {section}", entry.key);
        if let Some(suggestion) = self.closest_known_key(&entry.key) {
            message.push_str(&format!(" (did you mean {suggestion}?)"));
        }
        Err(FieldError::new(
            entry.key_position,
            &self.path_of(&entry.key),
            message,
        ))
    }

    /// The field name a reader asked for that is closest to a misspelled key.
    fn closest_known_key(&self, unknown: &str) -> Option<&str> {
        self.asked
            .iter()
            .map(|known| (edit_distance(known, unknown), known.as_str()))
            .filter(|(distance, _)| *distance <= 2)
            .min()
            .map(|(_, known)| known)
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// Values that can be read from a YAML node.
pub(crate) trait Decode: Sized {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self>;
}

impl Decode for String {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        match &node.value {
            Value::Null => Ok(String::new()),
            Value::Seq(_) | Value::Map(_) => Err(node.type_error(path, "string")),
            _ => Ok(node.scalar_text().unwrap_or_default()),
        }
    }
}

/// The boolean spellings of YAML 1.1, which Prometheus' YAML library accepts.
fn parse_yaml_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "y" | "Y" | "on" | "On" | "ON" => {
            Some(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "n" | "N" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

impl Decode for bool {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        match &node.value {
            Value::Bool(b) => Ok(*b),
            // YAML 1.1 spellings (`yes`, `on`) are booleans only unquoted.
            Value::Str(s) if !node.quoted => {
                parse_yaml_bool(s).ok_or_else(|| node.type_error(path, "bool"))
            }
            _ => Err(node.type_error(path, "bool")),
        }
    }
}

// go-yaml v2 also stores a float in an integer field when it is in range
// (`sample_limit: 1e3` is 1000, `1.5` is 1): the fraction is cut off. Go's
// conversion of a negative float to an unsigned integer has no defined value;
// Rust's saturating `as` gives 0, which for Prometheus' limits means "none"
// just as the huge value Go gives on amd64 does.

impl Decode for u64 {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        match &node.value {
            Value::Int(i) => u64::try_from(*i).map_err(|_| node.type_error(path, "uint")),
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            Value::Float(f) if *f <= u64::MAX as f64 => Ok(*f as u64),
            _ => Err(node.type_error(path, "uint")),
        }
    }
}

impl Decode for i64 {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        match &node.value {
            Value::Int(i) => i64::try_from(*i).map_err(|_| node.type_error(path, "int")),
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            Value::Float(f) if *f <= i64::MAX as f64 && *f >= i64::MIN as f64 => Ok(*f as i64),
            _ => Err(node.type_error(path, "int")),
        }
    }
}

impl Decode for f64 {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        match &node.value {
            // Integers that large lose precision as floats, as in Go.
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            Value::Str(s) => match s.as_str() {
                ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Ok(f64::INFINITY),
                "-.inf" | "-.Inf" | "-.INF" => Ok(f64::NEG_INFINITY),
                ".nan" | ".NaN" | ".NAN" => Ok(f64::NAN),
                _ => Err(node.type_error(path, "float64")),
            },
            _ => Err(node.type_error(path, "float64")),
        }
    }
}

impl Decode for Duration {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        let text = String::decode(node, path)?;
        Duration::parse(&text).map_err(|e| node.error(path, e.to_string()))
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        node.items(path)?
            .iter()
            .enumerate()
            .map(|(index, item)| T::decode(item, &join_index(path, index)))
            .collect()
    }
}

impl<T: Decode> Decode for BTreeMap<String, T> {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        node.entries(path)?
            .iter()
            .map(|entry| {
                let value = T::decode(&entry.value, &join_key(path, &entry.key))?;
                Ok((entry.key.clone(), value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Node {
        match parse(text) {
            Ok(node) => node,
            Err(e) => panic!("{text:?} should parse: {e:?}"),
        }
    }

    #[test]
    fn positions_point_at_keys_and_values() {
        let node = parse_ok("a: 1\nb:\n  - x\n  - c: true\n");
        let Value::Map(entries) = &node.value else {
            panic!("not a map: {node:?}");
        };
        assert_eq!(entries[0].key, "a");
        assert_eq!(entries[0].key_position, Position { line: 1, column: 1 });
        assert_eq!(entries[0].value.value, Value::Int(1));
        assert_eq!(entries[1].key_position, Position { line: 2, column: 1 });
        let Value::Seq(items) = &entries[1].value.value else {
            panic!("not a seq");
        };
        assert_eq!(items[0].value, Value::Str("x".to_owned()));
        assert_eq!(items[0].position.line, 3);
        let Value::Map(inner) = &items[1].value else {
            panic!("not a map");
        };
        assert_eq!(inner[0].key_position, Position { line: 4, column: 5 });
        assert_eq!(inner[0].value.value, Value::Bool(true));
    }

    #[test]
    fn empty_and_comment_only_documents_are_null() {
        assert!(parse_ok("").is_null());
        assert!(parse_ok("# nothing\n\n").is_null());
        assert!(parse_ok("~\n").is_null());
    }

    #[test]
    fn duplicate_keys_are_rejected_with_their_line() {
        let error = parse("a: 1\nb: 2\na: 3\n").err();
        let error = error.as_ref();
        assert_eq!(error.and_then(|e| e.position).map(|p| p.line), Some(3));
        assert!(
            error.is_some_and(|e| e.message.contains("\"a\"")),
            "{error:?}"
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let error = parse("a:\n  - b\n   c: d\n").err();
        assert!(error.and_then(|e| e.position).is_some());
    }

    #[test]
    fn anchors_and_merge_keys_are_expanded() {
        let node = parse_ok("base: &b {x: 1}\nother:\n  <<: *b\n  z: 2\n");
        let Value::Map(entries) = &node.value else {
            panic!("not a map");
        };
        let Value::Map(other) = &entries[1].value.value else {
            panic!("not a map");
        };
        let mut keys: Vec<&str> = other.iter().map(|e| e.key.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["x", "z"]);
    }

    #[test]
    fn scalars_decode_like_go_yaml() {
        let node = parse_ok("[15s, '0', 0, yes, 'abc', -1, 1.5, on]");
        let Value::Seq(items) = &node.value else {
            panic!("not a seq");
        };
        assert_eq!(
            Duration::decode(&items[0], "d").ok(),
            Some(Duration::from_secs(15))
        );
        assert_eq!(Duration::decode(&items[1], "d").ok(), Some(Duration::ZERO));
        assert_eq!(Duration::decode(&items[2], "d").ok(), Some(Duration::ZERO));
        assert_eq!(bool::decode(&items[3], "b").ok(), Some(true));
        assert_eq!(
            bool::decode(&items[4], "b").err().map(|e| e.message),
            Some("cannot unmarshal !!str `abc` into bool".to_owned())
        );
        assert!(u64::decode(&items[5], "u").is_err());
        assert_eq!(i64::decode(&items[5], "i").ok(), Some(-1));
        assert_eq!(f64::decode(&items[6], "f").ok(), Some(1.5));
        assert_eq!(String::decode(&items[6], "s").ok().as_deref(), Some("1.5"));
        assert_eq!(String::decode(&items[7], "s").ok().as_deref(), Some("on"));
        assert_eq!(bool::decode(&items[7], "b").ok(), Some(true));
    }

    #[test]
    fn only_the_first_document_is_read() {
        // As go-yaml v2: later documents are never read, even invalid ones.
        let node = parse_ok("a: 1\n---\nb: [unclosed\n");
        let Value::Map(entries) = &node.value else {
            panic!("not a map: {node:?}");
        };
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].key, "a");
        // A leading marker starts the first document; a trailing one ends it.
        let node = parse_ok("# comment\n---\na: 1\n---\n");
        let Value::Map(entries) = &node.value else {
            panic!("not a map: {node:?}");
        };
        assert_eq!(entries[0].key_position, Position { line: 3, column: 1 });
        assert!(parse_ok("a: 1\n...\nb: 2\n").value != Value::Null);
        // An empty first document is the default configuration.
        assert!(parse_ok("---\n---\na: 1\n").is_null());
        // Markers only count at column 0 and as the whole token.
        let node = parse_ok("a: |\n  ---\n  x\nb: ---x\n");
        let Value::Map(entries) = &node.value else {
            panic!("not a map: {node:?}");
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn quoted_booleans_are_strings() {
        let node = parse_ok("a: 'true'\nb: \"yes\"\nc: yes\nd: [ 'on', off ]\n");
        let Value::Map(entries) = &node.value else {
            panic!("not a map: {node:?}");
        };
        let decode = |index: usize| bool::decode(&entries[index].value, "b");
        assert_eq!(
            decode(0).err().map(|e| e.message),
            Some("cannot unmarshal !!str `true` into bool".to_owned())
        );
        assert!(decode(1).is_err());
        assert_eq!(decode(2).ok(), Some(true));
        let Value::Seq(items) = &entries[3].value.value else {
            panic!("not a seq");
        };
        assert!(bool::decode(&items[0], "b").is_err());
        assert_eq!(bool::decode(&items[1], "b").ok(), Some(false));
        assert_eq!(
            String::decode(&entries[0].value, "s").ok().as_deref(),
            Some("true")
        );
    }

    #[test]
    fn floats_fill_integer_fields_like_go_yaml() {
        let node = parse_ok("[1e3, 1.5, -1.5, 1e30]");
        let Value::Seq(items) = &node.value else {
            panic!("not a seq");
        };
        assert_eq!(u64::decode(&items[0], "u").ok(), Some(1000));
        assert_eq!(u64::decode(&items[1], "u").ok(), Some(1));
        assert_eq!(i64::decode(&items[2], "i").ok(), Some(-1));
        assert!(u64::decode(&items[3], "u").is_err());
        assert!(i64::decode(&items[3], "i").is_err());
    }

    #[test]
    fn unknown_fields_are_reported_at_their_key() {
        let node = parse_ok("known: 1\nknwn: 2\n");
        let mut fields = match Fields::new(&node, "section") {
            Ok(fields) => fields,
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(fields.get::<u64>("known").ok().flatten(), Some(1));
        let error = fields.finish("test section").err();
        assert_eq!(
            error,
            Some(FieldError::new(
                Position { line: 2, column: 1 },
                "section.knwn",
                "field knwn not found in test section (did you mean known?)"
            ))
        );
    }

    #[test]
    fn syntax_errors_name_the_nearest_field() {
        let text = "global:\n  scrape_interval: 1m\n  scrape_interval: 2m\n";
        let error = parse(text).err();
        assert_eq!(
            error.map(|e| e.path).as_deref(),
            Some("global.scrape_interval")
        );
        let text = "scrape_configs:\n- job_name: a\n  static_configs:\n  - targets:\n    - x\n      labels:\n        env: prod\n";
        assert_eq!(
            path_at_line(text, 6).as_deref(),
            Some("scrape_configs[0].static_configs[0].targets[0].labels")
        );
        let text = "a:\n  - b: 1\n  - c: |\n      not: a key\n    d: 2\n\"q:x\": 3\n";
        assert_eq!(path_at_line(text, 5).as_deref(), Some("a[1].d"));
        assert_eq!(path_at_line(text, 6).as_deref(), Some("[\"q:x\"]"));
    }

    #[test]
    fn paths_quote_unusual_keys() {
        assert_eq!(join_key("", "global"), "global");
        assert_eq!(join_key("params", "match[]"), "params[\"match[]\"]");
        assert_eq!(join_index("scrape_configs", 2), "scrape_configs[2]");
    }
}
