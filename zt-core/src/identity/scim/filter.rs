//! SCIM filters (RFC 7644 section 3.4.2.2) and PATCH paths (section 3.5.2): a hand-written
//! parser over untrusted text that never panics, bounded in length and nesting, and an
//! evaluator over a resource's JSON form.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Number, Value};

/// The longest filter or path accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// The deepest nesting accepted: parentheses, `not` and value filters (`[…]`) together.
pub const MAX_FILTER_DEPTH: usize = 16;

/// What is wrong with a filter or a path; SCIM's `invalidFilter` (or `invalidPath`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter at byte {position}: {kind}")]
pub struct FilterError {
    /// The byte offset where the problem was found.
    pub position: usize,
    /// What the problem is.
    pub kind: FilterErrorKind,
}

/// The kinds of [`FilterError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterErrorKind {
    /// Longer than [`MAX_FILTER_LEN`].
    #[error("longer than {MAX_FILTER_LEN} bytes")]
    TooLong,
    /// Nested deeper than [`MAX_FILTER_DEPTH`].
    #[error("nested deeper than {MAX_FILTER_DEPTH}")]
    TooDeep,
    /// The text ended where more was needed.
    #[error("ends too early")]
    UnexpectedEnd,
    /// Something else stands where an attribute, operator, value or bracket was needed.
    #[error("unexpected text")]
    Unexpected,
    /// Not an attribute path (`[uri:]name[.sub]`).
    #[error("not an attribute path")]
    BadAttribute,
    /// Not one of the comparison operators.
    #[error("unknown operator")]
    BadOperator,
    /// Not a JSON string, number, `true`, `false` or `null`.
    #[error("not a comparison value")]
    BadValue,
    /// A value filter inside a value filter.
    #[error("a value filter inside a value filter")]
    NestedValuePath,
}

impl From<FilterError> for crate::Error {
    fn from(e: FilterError) -> Self {
        crate::Error::InvalidInput(e.to_string())
    }
}

/// An attribute path: `[schema URI ":"] name ["." sub-attribute]`. Names keep their case as
/// written and compare without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URI, such as `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub uri: Option<String>,
    /// The attribute.
    pub name: String,
    /// The sub-attribute of a complex attribute.
    pub sub: Option<String>,
}

impl AttrPath {
    /// Whether this path names `name` (and `sub`), without regard to case or schema URI.
    pub fn is(&self, name: &str, sub: Option<&str>) -> bool {
        self.name.eq_ignore_ascii_case(name)
            && match (&self.sub, sub) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(uri) = &self.uri {
            write!(f, "{uri}:")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Contains.
    Co,
    /// Starts with.
    Sw,
    /// Ends with.
    Ew,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

/// A comparison value: a JSON scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number.
    Number(Number),
    /// A JSON string.
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => write!(f, "{}", Value::String(s.clone())),
        }
    }
}

/// A parsed filter. `and` and `or` hold their operands in a flat list, so a long chain is not a
/// deep tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `attr op value`.
    Compare(AttrPath, CompareOp, CompValue),
    /// `attr pr`: present and not empty.
    Present(AttrPath),
    /// Every operand holds (two or more).
    And(Vec<Filter>),
    /// Some operand holds (two or more).
    Or(Vec<Filter>),
    /// `not (filter)`.
    Not(Box<Filter>),
    /// `attr[filter]`: some value of the multi-valued `attr` matches `filter`, whose paths name
    /// its sub-attributes.
    ValuePath(AttrPath, Box<Filter>),
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, items: &[Filter], word: &str| {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, " {word} ")?;
                }
                match item {
                    Filter::And(_) | Filter::Or(_) => write!(f, "({item})")?,
                    _ => write!(f, "{item}")?,
                }
            }
            Ok(())
        };
        match self {
            Filter::Compare(path, op, value) => write!(f, "{path} {} {value}", op.as_str()),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(items) => list(f, items, "and"),
            Filter::Or(items) => list(f, items, "or"),
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath(path, inner) => write!(f, "{path}[{inner}]"),
        }
    }
}

/// A PATCH operation's `path`: an attribute, or the values of a multi-valued one that match a
/// filter, and then perhaps one sub-attribute of those values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchPath {
    /// The attribute.
    pub attr: AttrPath,
    /// Which of its values (`emails[type eq "work"]`).
    pub filter: Option<Filter>,
    /// The sub-attribute of the chosen values (`emails[type eq "work"].value`).
    pub sub: Option<String>,
}

/// Parses a filter. Keywords and operators are taken in any case; `and` binds tighter than
/// `or`.
///
/// ```
/// use zt_core::identity::scim::{FilterErrorKind, parse_filter};
/// let filter = parse_filter(r#"userName Eq "Alice" and not (emails[type eq "work"])"#)?;
/// let alice = serde_json::json!({"userName": "alice", "emails": [{"type": "home"}]});
/// assert!(filter.matches(&alice, &|_| false));
/// // The canonical text parses back to the same filter.
/// assert_eq!(parse_filter(&filter.to_string())?, filter);
/// // Bad text is a typed error with its place.
/// let refused = parse_filter(r#"userName is "alice""#).unwrap_err();
/// assert_eq!((refused.kind, refused.position), (FilterErrorKind::BadOperator, 9));
/// # Ok::<(), zt_core::identity::scim::FilterError>(())
/// ```
///
/// # Errors
/// [`FilterError`] with where and what.
pub fn parse_filter(text: &str) -> Result<Filter, FilterError> {
    let mut parser = Parser::new(text)?;
    let filter = parser.or_expr(0, false)?;
    parser.end()?;
    Ok(filter)
}

/// Parses a PATCH path (`members`, `name.givenName`, `emails[type eq "work"].value`, or one
/// with a schema URI).
///
/// # Errors
/// [`FilterError`] with where and what.
pub fn parse_path(text: &str) -> Result<PatchPath, FilterError> {
    let mut parser = Parser::new(text)?;
    parser.skip_spaces();
    let attr = parser.attr_path()?;
    let mut path = PatchPath {
        attr,
        filter: None,
        sub: None,
    };
    if parser.eat(b'[') {
        if path.attr.sub.is_some() {
            return Err(parser.error(FilterErrorKind::BadAttribute));
        }
        path.filter = Some(parser.or_expr(1, true)?);
        parser.expect(b']')?;
        if parser.eat(b'.') {
            let start = parser.pos;
            let word = parser.word();
            if !valid_name(word) {
                return Err(FilterError {
                    position: start,
                    kind: FilterErrorKind::BadAttribute,
                });
            }
            path.sub = Some(word.to_owned());
        }
    }
    parser.end()?;
    Ok(path)
}

fn valid_name(name: &str) -> bool {
    if name.eq_ignore_ascii_case("$ref") {
        return true;
    }
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Result<Self, FilterError> {
        if text.len() > MAX_FILTER_LEN {
            return Err(FilterError {
                position: MAX_FILTER_LEN,
                kind: FilterErrorKind::TooLong,
            });
        }
        Ok(Parser { text, pos: 0 })
    }

    fn error(&self, kind: FilterErrorKind) -> FilterError {
        self.error_at(self.pos, kind)
    }

    /// An error at `position`; unexpected text at the end is the text ending too early.
    fn error_at(&self, position: usize, kind: FilterErrorKind) -> FilterError {
        let kind = if position >= self.text.len() && kind == FilterErrorKind::Unexpected {
            FilterErrorKind::UnexpectedEnd
        } else {
            kind
        };
        FilterError { position, kind }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), FilterError> {
        self.skip_spaces();
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error(FilterErrorKind::Unexpected))
        }
    }

    fn end(&mut self) -> Result<(), FilterError> {
        self.skip_spaces();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(self.error(FilterErrorKind::Unexpected))
        }
    }

    /// A run of the characters a path, keyword or bare value is made of (ASCII only, so the
    /// position stays on a character boundary).
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b':' | b'.' | b'_' | b'-' | b'$' | b'+')
        ) {
            self.pos += 1;
        }
        self.text.get(start..self.pos).unwrap_or_default()
    }

    /// The next word without taking it.
    fn peek_word(&mut self) -> &'a str {
        let at = self.pos;
        let word = self.word();
        self.pos = at;
        word
    }

    fn or_expr(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        self.chain("or", Filter::Or, |p| p.and_expr(depth, in_value))
    }

    fn and_expr(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        self.chain("and", Filter::And, |p| p.unary(depth, in_value))
    }

    /// Operands joined by `keyword`, kept in one flat list (one operand stands alone).
    fn chain(
        &mut self,
        keyword: &str,
        join: fn(Vec<Filter>) -> Filter,
        mut operand: impl FnMut(&mut Self) -> Result<Filter, FilterError>,
    ) -> Result<Filter, FilterError> {
        let mut items = vec![operand(self)?];
        loop {
            self.skip_spaces();
            if !self.peek_word().eq_ignore_ascii_case(keyword) {
                break;
            }
            self.word();
            items.push(operand(self)?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            join(items)
        })
    }

    fn nested(&self, depth: usize) -> Result<usize, FilterError> {
        if depth >= MAX_FILTER_DEPTH {
            Err(self.error(FilterErrorKind::TooDeep))
        } else {
            Ok(depth + 1)
        }
    }

    fn unary(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        self.skip_spaces();
        if self.eat(b'(') {
            let inner = self.or_expr(self.nested(depth)?, in_value)?;
            self.expect(b')')?;
            return Ok(inner);
        }
        let at = self.pos;
        if self.word().eq_ignore_ascii_case("not") {
            self.skip_spaces();
            if self.eat(b'(') {
                let inner = self.or_expr(self.nested(depth)?, in_value)?;
                self.expect(b')')?;
                return Ok(Filter::Not(Box::new(inner)));
            }
        }
        self.pos = at;
        self.attr_expr(depth, in_value)
    }

    fn attr_path(&mut self) -> Result<AttrPath, FilterError> {
        let start = self.pos;
        let word = self.word();
        let bad = self.error_at(
            start,
            if word.is_empty() {
                FilterErrorKind::Unexpected
            } else {
                FilterErrorKind::BadAttribute
            },
        );
        let (uri, rest) = match word.rfind(':') {
            Some(colon) => (Some(&word[..colon]), &word[colon + 1..]),
            None => (None, word),
        };
        if uri.is_some_and(|u| u.is_empty() || u.contains("::")) {
            return Err(bad);
        }
        let mut parts = rest.split('.');
        let (Some(name), sub, None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad);
        };
        if !valid_name(name) || sub.is_some_and(|s| !valid_name(s)) {
            return Err(bad);
        }
        Ok(AttrPath {
            uri: uri.map(str::to_owned),
            name: name.to_owned(),
            sub: sub.map(str::to_owned),
        })
    }

    fn attr_expr(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        let path = self.attr_path()?;
        if self.peek() == Some(b'[') {
            if in_value {
                return Err(self.error(FilterErrorKind::NestedValuePath));
            }
            if path.sub.is_some() {
                return Err(self.error(FilterErrorKind::BadAttribute));
            }
            self.pos += 1;
            let inner = self.or_expr(self.nested(depth)?, true)?;
            self.expect(b']')?;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        self.skip_spaces();
        let at = self.pos;
        let op = self.word();
        if op.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::parse(op) else {
            self.pos = at;
            return Err(self.error(if op.is_empty() {
                FilterErrorKind::Unexpected
            } else {
                FilterErrorKind::BadOperator
            }));
        };
        self.skip_spaces();
        let value = self.value()?;
        Ok(Filter::Compare(path, op, value))
    }

    fn value(&mut self) -> Result<CompValue, FilterError> {
        let start = self.pos;
        let bad = |position| FilterError {
            position,
            kind: FilterErrorKind::BadValue,
        };
        if self.peek() == Some(b'"') {
            // The closing quote: the first one not escaped.
            let bytes = self.text.as_bytes();
            let mut i = start + 1;
            loop {
                match bytes.get(i) {
                    None => {
                        self.pos = i;
                        return Err(self.error(FilterErrorKind::UnexpectedEnd));
                    }
                    Some(b'\\') => i += 2,
                    Some(b'"') => break,
                    Some(_) => i += 1,
                }
            }
            let literal = self.text.get(start..=i).ok_or_else(|| bad(start))?;
            let parsed: String = serde_json::from_str(literal).map_err(|_| bad(start))?;
            self.pos = i + 1;
            return Ok(CompValue::String(parsed));
        }
        let word = self.word();
        if word.is_empty() {
            return Err(self.error(FilterErrorKind::Unexpected));
        }
        match word.to_ascii_lowercase().as_str() {
            "null" => Ok(CompValue::Null),
            "true" => Ok(CompValue::Bool(true)),
            "false" => Ok(CompValue::Bool(false)),
            _ => serde_json::from_str::<Number>(word)
                .map(CompValue::Number)
                .map_err(|_| bad(start)),
        }
    }
}

// ----- evaluation ----------------------------------------------------------------------------

/// A member of `object` by name, without regard to case.
fn member<'v>(object: &'v Value, name: &str) -> Option<&'v Value> {
    object
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The attribute `path` names (not its sub-attribute): an extension's sits under its schema
/// URI, the core schema's at the top.
fn attribute<'v>(resource: &'v Value, path: &AttrPath) -> Option<&'v Value> {
    let base = path
        .uri
        .as_deref()
        .and_then(|uri| member(resource, uri))
        .unwrap_or(resource);
    member(base, &path.name)
}

/// The values `path` names in `resource`: a multi-valued attribute gives each of its values; a
/// complex value compared without a sub-attribute is compared by its `value`.
fn values<'v>(resource: &'v Value, path: &AttrPath) -> Vec<&'v Value> {
    let Some(top) = attribute(resource, path) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match top {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .filter_map(|item| match (&path.sub, item) {
            (Some(sub), _) => member(item, sub),
            (None, Value::Object(_)) => member(item, "value"),
            (None, other) => Some(other),
        })
        .flat_map(|v| match v {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .collect()
}

fn present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn compare(found: &Value, op: CompareOp, wanted: &CompValue, case_exact: bool) -> bool {
    let fold = |s: &str| {
        if case_exact {
            s.to_owned()
        } else {
            s.to_lowercase()
        }
    };
    match (found, wanted) {
        (Value::String(a), CompValue::String(b)) => {
            let (a, b) = (fold(a), fold(b));
            match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                CompareOp::Gt => a > b,
                CompareOp::Ge => a >= b,
                CompareOp::Lt => a < b,
                CompareOp::Le => a <= b,
            }
        }
        (Value::Number(a), CompValue::Number(b)) => {
            let order = match (a.as_i64(), b.as_i64()) {
                (Some(a), Some(b)) => Some(a.cmp(&b)),
                _ => a
                    .as_f64()
                    .zip(b.as_f64())
                    .and_then(|(a, b)| a.partial_cmp(&b)),
            };
            order.is_some_and(|order| ordered(op, order))
        }
        (Value::Bool(a), CompValue::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        (Value::Null, CompValue::Null) => op == CompareOp::Eq,
        (_, CompValue::Null) => op == CompareOp::Ne,
        _ => op == CompareOp::Ne,
    }
}

fn ordered(op: CompareOp, order: Ordering) -> bool {
    match op {
        CompareOp::Eq => order == Ordering::Equal,
        CompareOp::Ne => order != Ordering::Equal,
        CompareOp::Gt => order == Ordering::Greater,
        CompareOp::Ge => order != Ordering::Less,
        CompareOp::Lt => order == Ordering::Less,
        CompareOp::Le => order != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

impl Filter {
    /// Whether `resource` (a SCIM resource's JSON form) matches. `case_exact` says which
    /// attributes compare strings with their case (the schema's `caseExact`, such as `id` and
    /// `externalId`); the others compare without it. A multi-valued attribute matches when one
    /// of its values does; `ne` holds for an absent attribute; ordering applies to strings and
    /// numbers only.
    pub fn matches(&self, resource: &Value, case_exact: &dyn Fn(&AttrPath) -> bool) -> bool {
        match self {
            Filter::Present(path) => values(resource, path).into_iter().any(present),
            Filter::Compare(path, op, wanted) => {
                let found = values(resource, path);
                let exact = case_exact(path);
                if found.is_empty() {
                    return *op == CompareOp::Ne
                        || (*op == CompareOp::Eq && *wanted == CompValue::Null);
                }
                if *op == CompareOp::Ne {
                    return found
                        .into_iter()
                        .all(|v| compare(v, CompareOp::Ne, wanted, exact));
                }
                found.into_iter().any(|v| compare(v, *op, wanted, exact))
            }
            Filter::And(items) => items.iter().all(|f| f.matches(resource, case_exact)),
            Filter::Or(items) => items.iter().any(|f| f.matches(resource, case_exact)),
            Filter::Not(inner) => !inner.matches(resource, case_exact),
            Filter::ValuePath(path, inner) => match attribute(resource, path) {
                Some(Value::Array(items)) => {
                    items.iter().any(|item| inner.matches(item, case_exact))
                }
                Some(item @ Value::Object(_)) => inner.matches(item, case_exact),
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn path(name: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            uri: None,
            name: name.into(),
            sub: sub.map(Into::into),
        }
    }

    fn kind(text: &str) -> FilterErrorKind {
        parse_filter(text).unwrap_err().kind
    }

    #[test]
    fn the_rfc_examples_parse() {
        // RFC 7644 section 3.4.2.2, the examples as written there.
        for text in [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        ] {
            let filter = parse_filter(text).unwrap();
            assert_eq!(parse_filter(&filter.to_string()).unwrap(), filter, "{text}");
        }
    }

    #[test]
    fn precedence_case_and_uris() {
        let f = parse_filter(r#"a eq 1 OR b Pr and NOT(c eq "x")"#).unwrap();
        assert_eq!(
            f,
            Filter::Or(vec![
                Filter::Compare(path("a", None), CompareOp::Eq, CompValue::Number(1.into())),
                Filter::And(vec![
                    Filter::Present(path("b", None)),
                    Filter::Not(Box::new(Filter::Compare(
                        path("c", None),
                        CompareOp::Eq,
                        CompValue::String("x".into())
                    ))),
                ]),
            ])
        );
        let f = parse_filter(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26""#,
        )
        .unwrap();
        let Filter::Compare(p, _, _) = f else {
            panic!("{f:?}")
        };
        assert_eq!(
            p.uri.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert!(p.is("MANAGER", Some("Value")));
    }

    #[test]
    fn bad_filters_say_what_and_where() {
        assert_eq!(kind(""), FilterErrorKind::UnexpectedEnd);
        assert_eq!(kind("userName"), FilterErrorKind::UnexpectedEnd);
        assert_eq!(kind("userName eq"), FilterErrorKind::UnexpectedEnd);
        assert_eq!(kind(r#"userName is "x""#), FilterErrorKind::BadOperator);
        assert_eq!(kind("userName eq bjensen"), FilterErrorKind::BadValue);
        assert_eq!(kind(r#"userName eq "open"#), FilterErrorKind::UnexpectedEnd);
        assert_eq!(kind(r#"1abc eq "x""#), FilterErrorKind::BadAttribute);
        assert_eq!(kind(r#"a.b.c eq "x""#), FilterErrorKind::BadAttribute);
        assert_eq!(kind(r#"(a eq "x""#), FilterErrorKind::UnexpectedEnd);
        assert_eq!(kind(r#"a eq "x")"#), FilterErrorKind::Unexpected);
        assert_eq!(kind(r#"a[b[c eq 1]]"#), FilterErrorKind::NestedValuePath);
        assert_eq!(kind(r#"a eq "x" and"#), FilterErrorKind::UnexpectedEnd);
        assert_eq!(kind(r#"a eq "\q""#), FilterErrorKind::BadValue);
        let deep = format!("{}a pr{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(kind(&deep), FilterErrorKind::TooDeep);
        let nots = format!("{}a pr{}", "not (".repeat(40), ")".repeat(40));
        assert_eq!(kind(&nots), FilterErrorKind::TooDeep);
        let long = format!("a eq \"{}\"", "x".repeat(MAX_FILTER_LEN));
        assert_eq!(kind(&long), FilterErrorKind::TooLong);
        let e = parse_filter(r#"userName xx "x""#).unwrap_err();
        assert_eq!(e.position, 9);
        // A long chain is flat, not deep.
        let chain = vec!["a pr"; 800].join(" and ");
        let Filter::And(items) = parse_filter(&chain).unwrap() else {
            panic!()
        };
        assert_eq!(items.len(), 800);
    }

    #[test]
    fn patch_paths() {
        let p = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert!(p.attr.is("emails", None));
        assert_eq!(p.sub.as_deref(), Some("value"));
        assert!(p.filter.is_some());
        let p = parse_path(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#).unwrap();
        assert!(p.sub.is_none());
        let p = parse_path("name.givenName").unwrap();
        assert!(p.attr.is("name", Some("givenName")) && p.filter.is_none());
        let p =
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber")
                .unwrap();
        assert!(p.attr.uri.is_some() && p.attr.is("employeeNumber", None));
        assert!(parse_path("").is_err());
        assert!(parse_path(r#"emails[type eq "work"].value.x"#).is_err());
        assert!(parse_path(r#"name.givenName[type eq "x"]"#).is_err());
        assert!(parse_path(r#"emails[type eq "work"] extra"#).is_err());
    }

    #[test]
    fn evaluation() {
        let user = json!({
            "userName": "BJensen",
            "externalId": "Ext-1",
            "active": true,
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"},
            "meta": {"lastModified": "2011-05-13T04:42:34Z"},
            "title": ""
        });
        let exact = |p: &AttrPath| p.is("externalId", None);
        let yes = |text: &str| parse_filter(text).unwrap().matches(&user, &exact);
        assert!(yes(r#"username eq "bjensen""#));
        assert!(!yes(r#"externalId eq "ext-1""#));
        assert!(yes(r#"externalId eq "Ext-1""#));
        assert!(yes(r#"name.familyName sw "jen""#));
        assert!(yes(r#"emails co "jensen.org""#));
        assert!(yes(r#"emails[type eq "work" and value ew "example.com"]"#));
        assert!(!yes(r#"emails[type eq "home" and value ew "example.com"]"#));
        assert!(yes(r#"emails.type eq "home""#));
        assert!(yes("active eq true"));
        assert!(!yes("active eq false"));
        assert!(yes(r#"meta.lastModified gt "2011-01-01T00:00:00Z""#));
        assert!(!yes("title pr"));
        assert!(yes("not (title pr)"));
        assert!(yes("nickName eq null"));
        assert!(yes(r#"nickName ne "x""#));
        assert!(!yes(r#"nickName eq "x""#));
        assert!(yes(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ));
        assert!(yes(
            r#"userName eq "nobody" or name.givenName eq "barbara""#
        ));
        // `ne` on a multi-valued attribute holds only when no value is equal.
        assert!(!yes(r#"emails.type ne "home""#));
    }

    fn any_path() -> impl Strategy<Value = AttrPath> {
        (
            proptest::option::of(Just(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_owned(),
            )),
            "[a-zA-Z][a-zA-Z0-9_-]{0,6}",
            proptest::option::of("[a-zA-Z][a-zA-Z0-9]{0,4}|\\$ref"),
        )
            .prop_map(|(uri, name, sub)| AttrPath { uri, name, sub })
    }

    fn any_value() -> impl Strategy<Value = CompValue> {
        prop_oneof![
            Just(CompValue::Null),
            any::<bool>().prop_map(CompValue::Bool),
            any::<i64>().prop_map(|n| CompValue::Number(n.into())),
            "\\PC{0,12}".prop_map(CompValue::String),
        ]
    }

    fn any_op() -> impl Strategy<Value = CompareOp> {
        prop_oneof![
            Just(CompareOp::Eq),
            Just(CompareOp::Ne),
            Just(CompareOp::Co),
            Just(CompareOp::Sw),
            Just(CompareOp::Ew),
            Just(CompareOp::Gt),
            Just(CompareOp::Ge),
            Just(CompareOp::Lt),
            Just(CompareOp::Le),
        ]
    }

    /// Filters without value paths (what may stand inside one), then with them.
    fn any_filter(value_paths: bool) -> BoxedStrategy<Filter> {
        let leaf = prop_oneof![
            (any_path(), any_op(), any_value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
            any_path().prop_map(Filter::Present),
        ];
        leaf.prop_recursive(4, 24, 4, move |inner| {
            let mut choices = vec![
                proptest::collection::vec(inner.clone(), 2..4)
                    .prop_map(Filter::And)
                    .boxed(),
                proptest::collection::vec(inner.clone(), 2..4)
                    .prop_map(Filter::Or)
                    .boxed(),
                inner.clone().prop_map(|f| Filter::Not(Box::new(f))).boxed(),
            ];
            if value_paths {
                choices.push(
                    (any_path(), any_filter(false))
                        .prop_map(|(mut p, f)| {
                            p.sub = None;
                            Filter::ValuePath(p, Box::new(f))
                        })
                        .boxed(),
                );
            }
            proptest::strategy::Union::new(choices)
        })
        .boxed()
    }

    proptest! {
        #[test]
        fn every_filter_prints_as_text_that_parses_back_to_it(filter in any_filter(true)) {
            let text = filter.to_string();
            prop_assert_eq!(parse_filter(&text), Ok(filter), "{}", text);
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in "\\PC{0,200}") {
            let _ = parse_filter(&text);
            let _ = parse_path(&text);
        }

        #[test]
        fn text_of_filter_characters_round_trips(
            text in "[a-zA-Z0-9 ()\\[\\]\".:$_-]{0,120}"
        ) {
            if let Ok(filter) = parse_filter(&text) {
                prop_assert_eq!(parse_filter(&filter.to_string()).unwrap(), filter);
            }
        }
    }
}
