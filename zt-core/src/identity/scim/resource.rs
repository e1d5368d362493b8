//! A resource's JSON under its schema: what a client's body becomes when stored (known
//! attributes only, each checked and in its schema's spelling), PATCH operations with the shapes
//! Entra ID and Okta send, the `attributes` / `excludedAttributes` projection, and sorting.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::error::{ScimError, ScimType};
use super::filter::{AttrPath, CompValue, CompareOp, Filter, PatchPath, parse_path};
use super::schema::{AttrType, Attribute, Mutability, ResourceType, Returned, Schema};

/// The longest text value, in bytes.
pub const MAX_VALUE_LEN: usize = 2048;
/// The most values a multi-valued attribute holds, `members` aside.
pub const MAX_VALUES: usize = 100;
/// The most members a group holds.
pub const MAX_MEMBERS: usize = 100_000;
/// The most operations in one PATCH request.
pub const MAX_PATCH_OPERATIONS: usize = 1_000;

fn limit_of(attr: &Attribute) -> usize {
    if attr.name == "members" {
        MAX_MEMBERS
    } else {
        MAX_VALUES
    }
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, detail)
}

/// One value of a non-complex attribute, checked (`"True"` and `"False"` are booleans).
fn simple(attr: &Attribute, value: &Value) -> Result<Value, ScimError> {
    match (attr.ty, value) {
        (AttrType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        (AttrType::Integer, Value::Number(n)) if n.is_i64() => Ok(value.clone()),
        (AttrType::String | AttrType::DateTime | AttrType::Reference, Value::String(s)) => {
            if s.len() > MAX_VALUE_LEN {
                return Err(invalid(format!(
                    "{} is longer than {MAX_VALUE_LEN} bytes",
                    attr.name
                )));
            }
            if s.chars().any(|c| c.is_control()) {
                return Err(invalid(format!("{} holds a control character", attr.name)));
            }
            Ok(value.clone())
        }
        _ => Err(invalid(format!(
            "{} takes a {} value",
            attr.name,
            match attr.ty {
                AttrType::Boolean => "boolean",
                AttrType::Integer => "integer",
                AttrType::Complex => "complex",
                _ => "string",
            }
        ))),
    }
}

/// One value of `attr` (a single value of a multi-valued one), checked; `None` when empty.
fn single(attr: &Attribute, value: &Value) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.ty != AttrType::Complex {
        return simple(attr, value).map(Some);
    }
    let Value::Object(input) = value else {
        return Err(invalid(format!("{} takes an object", attr.name)));
    };
    let mut out = Map::new();
    for (key, v) in input {
        let Some(sub) = attr.sub_attribute(key) else {
            continue;
        };
        if sub.mutability == Mutability::ReadOnly || v.is_null() {
            continue;
        }
        out.insert(sub.name.into(), simple(sub, v)?);
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// The value of `attr`, checked; `None` when there is none.
fn coerce(attr: &Attribute, value: &Value) -> Result<Option<Value>, ScimError> {
    if !attr.multi {
        if let Value::Array(items) = value {
            return match items.as_slice() {
                [] => Ok(None),
                [one] => single(attr, one),
                _ => Err(invalid(format!("{} takes one value", attr.name))),
            };
        }
        return single(attr, value);
    }
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    };
    if items.len() > limit_of(attr) {
        return Err(ScimError::bad(
            ScimType::TooMany,
            format!("{} holds at most {} values", attr.name, limit_of(attr)),
        ));
    }
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        if let Some(v) = single(attr, item)?
            && !out.contains(&v)
        {
            out.push(v);
        }
    }
    let primaries = out
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(invalid(format!(
            "at most one of {} may be primary",
            attr.name
        )));
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

fn put_attributes(
    schema_attrs: impl Fn(&str) -> Option<&'static Attribute>,
    input: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    for (key, value) in input {
        let Some(attr) = schema_attrs(key) else {
            continue;
        };
        if attr.mutability == Mutability::ReadOnly {
            continue;
        }
        match coerce(attr, value)? {
            Some(v) => {
                out.insert(attr.name.into(), v);
            }
            None => {
                out.remove(attr.name);
            }
        }
    }
    Ok(())
}

/// What a client's body (POST, PUT, or the result of a PATCH) stores: the known writable
/// attributes, each checked and named as its schema spells it, extensions under their URI.
/// Read-only and unknown attributes are ignored, as RFC 7643 section 7 says. `existing` is the
/// stored document being replaced, whose immutable attributes may not change.
///
/// # Errors
/// A [`ScimError`] of status 400: `invalidSyntax` for a body that is not an object,
/// `invalidValue` for a bad value or a required attribute missing, `mutability` for an
/// immutable one changed, `tooMany` for a list over its limit.
pub fn normalize(
    rt: &ResourceType,
    input: &Value,
    existing: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(input) = input else {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "the resource is not a JSON object",
        ));
    };
    let mut out = Map::new();
    let core = |key: &str| rt.resolve(None, key).map(|(_, a)| a);
    put_attributes(core, input, &mut out)?;
    for (key, value) in input {
        if key.eq_ignore_ascii_case(rt.schema.id) {
            if let Value::Object(inner) = value {
                put_attributes(core, inner, &mut out)?;
            }
        } else if let Some(ext) = rt.extension(key) {
            let Value::Object(inner) = value else {
                return Err(invalid(format!("{} takes an object", ext.id)));
            };
            let mut ext_out = Map::new();
            put_attributes(|k| ext.attribute(k), inner, &mut ext_out)?;
            if !ext_out.is_empty() {
                out.insert(ext.id.into(), Value::Object(ext_out));
            }
        }
    }
    for attr in rt.schema.attributes.iter().filter(|a| a.required) {
        if !out.contains_key(attr.name) {
            return Err(invalid(format!("{} is required", attr.name)));
        }
    }
    if let Some(existing) = existing {
        for attr in rt
            .schema
            .attributes
            .iter()
            .chain(super::schema::COMMON.iter())
        {
            if attr.mutability == Mutability::Immutable
                && let Some(old) = existing.get(attr.name)
                && out.get(attr.name) != Some(old)
            {
                return Err(ScimError::bad(
                    ScimType::Mutability,
                    format!("{} cannot change", attr.name),
                ));
            }
        }
    }
    Ok(out)
}

/// Where a path's attribute lives in a document: the core object, or an extension's.
fn container<'d>(
    doc: &'d mut Map<String, Value>,
    schema: Option<&Schema>,
    create: bool,
) -> Option<&'d mut Map<String, Value>> {
    let Some(schema) = schema else {
        return Some(doc);
    };
    if create && !doc.contains_key(schema.id) {
        doc.insert(schema.id.into(), Value::Object(Map::new()));
    }
    doc.get_mut(schema.id).and_then(Value::as_object_mut)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// The sub-attribute values a filter of only `eq` comparisons (joined by `and`) pins, which a
/// new value made for it takes: what Entra ID means by `emails[type eq "work"].value`.
fn pinned(filter: &Filter, out: &mut Map<String, Value>) -> bool {
    match filter {
        Filter::Compare(path, CompareOp::Eq, value) if path.uri.is_none() && path.sub.is_none() => {
            let v = match value {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return false,
            };
            out.insert(path.name.clone(), v);
            true
        }
        Filter::And(items) => items.iter().all(|f| pinned(f, out)),
        _ => false,
    }
}

fn sub_case_exact(attr: &'static Attribute) -> impl Fn(&AttrPath) -> bool {
    move |p: &AttrPath| attr.sub_attribute(&p.name).is_some_and(|s| s.case_exact)
}

/// The item values of a multi-valued attribute given in a request (one or a list).
fn as_items(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Entra ID sends a manager as its bare id: `"value": "26118915-..."`.
fn complex_value(attr: &Attribute, value: &Value) -> Value {
    match value {
        Value::String(_)
            if attr.ty == AttrType::Complex && attr.sub_attribute("value").is_some() =>
        {
            let mut m = Map::new();
            m.insert("value".into(), value.clone());
            Value::Object(m)
        }
        other => other.clone(),
    }
}

fn merge(into: &mut Value, value: &Value) {
    match (into, value) {
        (Value::Object(target), Value::Object(source)) => {
            for (k, v) in source {
                target.insert(k.clone(), v.clone());
            }
        }
        (into, value) => *into = value.clone(),
    }
}

/// A path naming a whole extension (`urn:…:enterprise:2.0:User`), which the parser reads as
/// a URI and a last name.
fn whole_extension(rt: &ResourceType, path: &PatchPath) -> Option<&'static Schema> {
    if path.filter.is_some() || path.sub.is_some() || path.attr.sub.is_some() {
        return None;
    }
    let uri = path.attr.uri.as_deref()?;
    rt.extension(&format!("{uri}:{}", path.attr.name))
}

fn apply_path(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    op: Op,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if let Some(ext) = whole_extension(rt, path) {
        match (op, value) {
            (Op::Remove, _) => {
                doc.remove(ext.id);
            }
            (_, Some(Value::Object(attrs))) => {
                let target = doc
                    .entry(ext.id)
                    .or_insert_with(|| Value::Object(Map::new()));
                if op == Op::Replace || !target.is_object() {
                    *target = Value::Object(Map::new());
                }
                if let Some(target) = target.as_object_mut() {
                    for (k, v) in attrs {
                        target.insert(k.clone(), v.clone());
                    }
                }
            }
            _ => return Err(invalid(format!("{} takes an object", ext.id))),
        }
        return Ok(());
    }
    let (schema, attr) = rt
        .resolve(path.attr.uri.as_deref(), &path.attr.name)
        .ok_or_else(|| {
            ScimError::bad(ScimType::InvalidPath, format!("no attribute {}", path.attr))
        })?;
    if attr.mutability == Mutability::ReadOnly {
        return Err(ScimError::bad(
            ScimType::Mutability,
            format!("{} is read-only", attr.name),
        ));
    }
    let sub_name = path.attr.sub.as_deref().or(path.sub.as_deref());
    let sub = match sub_name {
        Some(name) => Some(attr.sub_attribute(name).ok_or_else(|| {
            ScimError::bad(
                ScimType::InvalidPath,
                format!("no attribute {name} in {}", attr.name),
            )
        })?),
        None => None,
    };
    if path.filter.is_some() && !(attr.multi && attr.ty == AttrType::Complex) {
        return Err(ScimError::bad(
            ScimType::InvalidPath,
            format!("{} is not a list of objects", attr.name),
        ));
    }
    if op != Op::Remove && value.is_none() {
        return Err(invalid("the operation has no value"));
    }
    let value = value.cloned().unwrap_or(Value::Null);
    let Some(target) = container(doc, schema, op != Op::Remove) else {
        return Ok(());
    };
    let key = attr.name;

    if let Some(filter) = &path.filter {
        let exact = sub_case_exact(attr);
        let mut items = target.get(key).map(as_items).unwrap_or_default();
        let hits: Vec<usize> = (0..items.len())
            .filter(|&i| filter.matches(&items[i], &exact))
            .collect();
        match (op, sub) {
            (Op::Remove, None) => {
                let mut i = 0;
                items.retain(|_| {
                    let keep = !hits.contains(&i);
                    i += 1;
                    keep
                });
            }
            (Op::Remove, Some(sub)) => {
                for &i in &hits {
                    if let Some(item) = items[i].as_object_mut() {
                        item.remove(sub.name);
                    }
                }
            }
            (_, sub) if hits.is_empty() => {
                let mut item = Map::new();
                if !pinned(filter, &mut item) {
                    return Err(ScimError::bad(
                        ScimType::NoTarget,
                        format!("no value of {} matches the filter", attr.name),
                    ));
                }
                let mut item = Value::Object(item);
                match sub {
                    Some(sub) => {
                        if let Some(m) = item.as_object_mut() {
                            m.insert(sub.name.into(), value);
                        }
                    }
                    None => merge(&mut item, &value),
                }
                items.push(item);
            }
            (op, Some(sub)) => {
                let _ = op;
                for &i in &hits {
                    if let Some(item) = items[i].as_object_mut() {
                        item.insert(sub.name.into(), value.clone());
                    }
                }
            }
            (Op::Replace, None) => {
                for &i in &hits {
                    items[i] = value.clone();
                }
            }
            (_, None) => {
                for &i in &hits {
                    merge(&mut items[i], &value);
                }
            }
        }
        if items.is_empty() {
            target.remove(key);
        } else {
            target.insert(key.into(), Value::Array(items));
        }
        return Ok(());
    }

    match (op, sub, attr.multi) {
        (Op::Remove, None, true) if !value.is_null() => {
            // Entra ID removes members by listing them: {"op":"Remove","path":"members",
            // "value":[{"value":"id"}]}.
            let gone: Vec<Value> = as_items(&value)
                .iter()
                .filter_map(|v| {
                    v.get("value")
                        .cloned()
                        .or_else(|| v.as_str().map(Value::from))
                })
                .collect();
            if let Some(Value::Array(items)) = target.get_mut(key) {
                items.retain(|item| !item.get("value").is_some_and(|v| gone.contains(v)));
                if items.is_empty() {
                    target.remove(key);
                }
            }
        }
        (Op::Remove, None, _) => {
            target.remove(key);
        }
        (Op::Remove, Some(sub), _) => match target.get_mut(key) {
            Some(Value::Object(m)) => {
                m.remove(sub.name);
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    item.remove(sub.name);
                }
            }
            _ => {}
        },
        (Op::Add, None, true) => {
            let mut items = target.get(key).map(as_items).unwrap_or_default();
            for v in as_items(&value) {
                let v = complex_value(attr, &v);
                if !items.contains(&v) {
                    items.push(v);
                }
            }
            target.insert(key.into(), Value::Array(items));
        }
        (Op::Replace, None, true) => {
            let items: Vec<Value> = as_items(&value)
                .iter()
                .map(|v| complex_value(attr, v))
                .collect();
            target.insert(key.into(), Value::Array(items));
        }
        (_, None, false) => {
            let v = complex_value(attr, &value);
            match target.get_mut(key) {
                Some(old @ Value::Object(_)) if v.is_object() => merge(old, &v),
                _ => {
                    target.insert(key.into(), v);
                }
            }
        }
        (_, Some(sub), false) => {
            let entry = target
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Some(m) = entry.as_object_mut() {
                m.insert(sub.name.into(), value);
            }
        }
        (_, Some(sub), true) => {
            let entry = target
                .entry(key)
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(items) = entry else {
                return Err(invalid(format!("{} is not a list", attr.name)));
            };
            if items.is_empty() {
                let mut m = Map::new();
                m.insert(sub.name.into(), value.clone());
                items.push(Value::Object(m));
            } else {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    item.insert(sub.name.into(), value.clone());
                }
            }
        }
    }
    Ok(())
}

/// Applies a PATCH request (RFC 7644 section 3.5.2) to `doc`, a resource as stored (with
/// `active` for a user), and returns what it stores then. Takes `op` in any case, booleans
/// as `"True"`/`"False"`, an operation without a path whose value names attributes (also
/// by path, as `"name.givenName"`), removal of list values by value path or by listing them,
/// and an `add` or `replace` by a filter nothing matches yet when the filter pins the new
/// value (`emails[type eq "work"].value`).
///
/// # Errors
/// A [`ScimError`] of status 400: `invalidSyntax` for a malformed request, `invalidPath`,
/// `noTarget`, `mutability`, `invalidValue`, `tooMany` (over [`MAX_PATCH_OPERATIONS`]).
pub fn apply_patch(
    rt: &ResourceType,
    doc: &Map<String, Value>,
    request: &Value,
) -> Result<Map<String, Value>, ScimError> {
    let syntax = |d: &str| ScimError::bad(ScimType::InvalidSyntax, d);
    let ops = request
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
                .map(|(_, v)| v)
        })
        .and_then(Value::as_array)
        .ok_or_else(|| syntax("a PATCH request has a list of Operations"))?;
    if ops.len() > MAX_PATCH_OPERATIONS {
        return Err(ScimError::bad(
            ScimType::TooMany,
            format!("at most {MAX_PATCH_OPERATIONS} operations per request"),
        ));
    }
    let mut work = doc.clone();
    for op in ops {
        let op_obj = op
            .as_object()
            .ok_or_else(|| syntax("an operation is an object"))?;
        let field = |name: &str| {
            op_obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let kind = match field("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
        {
            Some(s) if s == "add" => Op::Add,
            Some(s) if s == "replace" => Op::Replace,
            Some(s) if s == "remove" => Op::Remove,
            _ => return Err(syntax("op is add, replace or remove")),
        };
        let value = field("value");
        match field("path") {
            Some(Value::String(text)) if !text.trim().is_empty() => {
                let path = parse_path(text)
                    .map_err(|e| ScimError::bad(ScimType::InvalidPath, e.to_string()))?;
                apply_path(rt, &mut work, kind, &path, value)?;
            }
            Some(Value::String(_)) | Some(Value::Null) | None => {
                if kind == Op::Remove {
                    return Err(ScimError::bad(ScimType::NoTarget, "remove needs a path"));
                }
                let Some(Value::Object(attrs)) = value else {
                    return Err(invalid("an operation without a path takes an object"));
                };
                for (key, v) in attrs {
                    if key.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    if let Some(ext) = rt.extension(key) {
                        let Value::Object(inner) = v else {
                            return Err(invalid(format!("{} takes an object", ext.id)));
                        };
                        for (k, v) in inner {
                            let path = PatchPath {
                                attr: AttrPath {
                                    uri: Some(ext.id.into()),
                                    name: k.clone(),
                                    sub: None,
                                },
                                filter: None,
                                sub: None,
                            };
                            apply_known(rt, &mut work, kind, &path, v)?;
                        }
                        continue;
                    }
                    let path = parse_path(key)
                        .map_err(|e| ScimError::bad(ScimType::InvalidPath, e.to_string()))?;
                    apply_known(rt, &mut work, kind, &path, v)?;
                }
            }
            Some(_) => return Err(syntax("path is text")),
        }
    }
    Ok(work)
}

/// What `doc` becomes under a PATCH `request`: [`apply_patch`], then checked as a body
/// replacing `doc` ([`normalize`]).
///
/// # Errors
/// Those of either.
pub fn patched(
    rt: &ResourceType,
    doc: &Map<String, Value>,
    request: &Value,
) -> Result<Map<String, Value>, ScimError> {
    let after = apply_patch(rt, doc, request)?;
    normalize(rt, &Value::Object(after), Some(doc))
}

/// A no-path operation's attribute: read-only and unknown ones are ignored, as in a body.
fn apply_known(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    op: Op,
    path: &PatchPath,
    value: &Value,
) -> Result<(), ScimError> {
    match rt.resolve(path.attr.uri.as_deref(), &path.attr.name) {
        Some((_, attr)) if attr.mutability != Mutability::ReadOnly => {
            apply_path(rt, doc, op, path, Some(value))
        }
        _ => Ok(()),
    }
}

/// Which attributes a response carries: `attributes` (only these, and those always returned)
/// or `excludedAttributes` (all but these), each a comma-separated list of paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    /// Only these (with those always returned), when not empty.
    pub attributes: Vec<AttrPath>,
    /// Not these.
    pub excluded: Vec<AttrPath>,
}

fn parse_list(text: Option<&str>) -> Result<Vec<AttrPath>, ScimError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let path =
            parse_path(part).map_err(|e| ScimError::bad(ScimType::InvalidPath, e.to_string()))?;
        if path.filter.is_some() {
            return Err(ScimError::bad(
                ScimType::InvalidPath,
                "attributes name paths without filters",
            ));
        }
        out.push(path.attr);
    }
    Ok(out)
}

impl Projection {
    /// The projection of the two query parameters.
    ///
    /// # Errors
    /// `invalidPath` for a list that is not of attribute paths.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Result<Self, ScimError> {
        Ok(Projection {
            attributes: parse_list(attributes)?,
            excluded: parse_list(excluded)?,
        })
    }

    fn names(
        list: &[AttrPath],
        rt: &ResourceType,
        uri: Option<&str>,
        attr: &str,
    ) -> Option<Vec<Option<String>>> {
        let hits: Vec<Option<String>> = list
            .iter()
            .filter(|p| {
                let same_schema = match (&p.uri, uri) {
                    (None, None) => true,
                    (Some(a), None) => a.eq_ignore_ascii_case(rt.schema.id),
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    // A bare name may address an extension's attribute.
                    (None, Some(_)) => true,
                };
                same_schema && p.name.eq_ignore_ascii_case(attr)
            })
            .map(|p| p.sub.clone())
            .collect();
        (!hits.is_empty()).then_some(hits)
    }

    /// Whether a whole extension was named (`attributes=urn:...:User` is the extension's URI
    /// parsed as a name with a prefix).
    fn names_schema(list: &[AttrPath], uri: &str) -> bool {
        list.iter().any(|p| {
            let full = match &p.uri {
                Some(u) => format!("{u}:{}", p.name),
                None => p.name.clone(),
            };
            full.eq_ignore_ascii_case(uri)
        })
    }

    fn keep_object(
        &self,
        rt: &ResourceType,
        uri: Option<&str>,
        attrs: &dyn Fn(&str) -> Option<&'static Attribute>,
        input: &Map<String, Value>,
        whole: bool,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in input {
            let Some(attr) = attrs(key) else {
                out.insert(key.clone(), value.clone());
                continue;
            };
            if attr.returned == Returned::Always {
                out.insert(key.clone(), value.clone());
                continue;
            }
            if !self.attributes.is_empty() && !whole {
                let Some(subs) = Self::names(&self.attributes, rt, uri, key) else {
                    continue;
                };
                if subs.iter().any(Option::is_none) {
                    out.insert(key.clone(), value.clone());
                } else {
                    let wanted: Vec<&str> = subs.iter().flatten().map(String::as_str).collect();
                    let keep = |v: &Value| match v {
                        Value::Object(m) => Value::Object(
                            m.iter()
                                .filter(|(k, _)| wanted.iter().any(|w| w.eq_ignore_ascii_case(k)))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        ),
                        other => other.clone(),
                    };
                    let v = match value {
                        Value::Array(items) => Value::Array(items.iter().map(keep).collect()),
                        other => keep(other),
                    };
                    out.insert(key.clone(), v);
                }
                continue;
            }
            match Self::names(&self.excluded, rt, uri, key) {
                Some(subs) if subs.iter().any(Option::is_none) => {}
                Some(subs) => {
                    let gone: Vec<&str> = subs.iter().flatten().map(String::as_str).collect();
                    let drop_subs = |v: &Value| match v {
                        Value::Object(m) => Value::Object(
                            m.iter()
                                .filter(|(k, _)| !gone.iter().any(|g| g.eq_ignore_ascii_case(k)))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        ),
                        other => other.clone(),
                    };
                    let v = match value {
                        Value::Array(items) => Value::Array(items.iter().map(drop_subs).collect()),
                        other => drop_subs(other),
                    };
                    out.insert(key.clone(), v);
                }
                None => {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        out
    }

    /// `resource` (a whole rendered resource) as this projection returns it. `schemas` and
    /// `id` are always returned.
    pub fn apply(&self, rt: &ResourceType, resource: &Value) -> Value {
        if self.attributes.is_empty() && self.excluded.is_empty() {
            return resource.clone();
        }
        let Value::Object(input) = resource else {
            return resource.clone();
        };
        let core = |key: &str| rt.resolve(None, key).map(|(_, a)| a);
        let mut top = Map::new();
        let mut rest = Map::new();
        for (key, value) in input {
            if key == "schemas" {
                top.insert(key.clone(), value.clone());
            } else if let Some(ext) = rt.extension(key) {
                let Value::Object(inner) = value else {
                    continue;
                };
                let whole_in = Self::names_schema(&self.attributes, ext.id);
                if Self::names_schema(&self.excluded, ext.id) {
                    continue;
                }
                let kept =
                    self.keep_object(rt, Some(ext.id), &|k| ext.attribute(k), inner, whole_in);
                if !kept.is_empty() {
                    top.insert(key.clone(), Value::Object(kept));
                }
            } else {
                rest.insert(key.clone(), value.clone());
            }
        }
        for (k, v) in self.keep_object(rt, None, &core, &rest, false) {
            top.insert(k, v);
        }
        Value::Object(top)
    }
}

/// The value a sort compares for `path` in `resource`: the first of a multi-valued
/// attribute's (the primary one when marked), its `value` for a complex one.
fn sort_value<'v>(resource: &'v Value, path: &AttrPath) -> Option<&'v Value> {
    let field = |v: &'v Value, name: &str| -> Option<&'v Value> {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let base = match &path.uri {
        Some(uri) => field(resource, uri)?,
        None => resource,
    };
    let mut v = field(base, &path.name)?;
    if let Value::Array(items) = v {
        v = items
            .iter()
            .find(|i| field(i, "primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?;
    }
    match (&path.sub, v) {
        (Some(sub), _) => field(v, sub),
        (None, Value::Object(_)) => field(v, "value"),
        (None, other) => Some(other),
    }
}

/// Orders two rendered resources by `path` (RFC 7644 section 3.4.2.3): text without case
/// unless the attribute is case-exact; resources without a value last in either order.
pub fn compare_by(
    rt: &ResourceType,
    path: &AttrPath,
    descending: bool,
    a: &Value,
    b: &Value,
) -> Ordering {
    let exact = case_exact(rt, path);
    let key = |v: &Value| -> Option<Value> {
        sort_value(v, path).map(|v| match v {
            Value::String(s) if !exact => Value::String(s.to_lowercase()),
            other => other.clone(),
        })
    };
    let order = |x: &Value, y: &Value| match (x, y) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    };
    match (key(a), key(b)) {
        (Some(x), Some(y)) => {
            let o = order(&x, &y);
            if descending { o.reverse() } else { o }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Whether `path` compares text with its case, as its schema says.
pub fn case_exact(rt: &ResourceType, path: &AttrPath) -> bool {
    let uri = path
        .uri
        .as_deref()
        .filter(|u| !u.eq_ignore_ascii_case(rt.schema.id));
    let Some((_, attr)) = rt.resolve(uri, &path.name) else {
        return false;
    };
    match (&path.sub, attr.ty) {
        (Some(sub), _) => attr.sub_attribute(sub).is_some_and(|s| s.case_exact),
        (None, AttrType::Complex) => attr.sub_attribute("value").is_some_and(|s| s.case_exact),
        (None, _) => attr.case_exact,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use serde_json::json;

    use super::*;
    use crate::identity::scim::schema::{ENTERPRISE_SCHEMA, GROUPS, USERS};

    fn doc(v: Value) -> Map<String, Value> {
        normalize(&USERS, &v, None).unwrap()
    }

    fn patch(d: &Map<String, Value>, ops: Value) -> Result<Map<String, Value>, ScimError> {
        apply_patch(&USERS, d, &json!({ "Operations": ops }))
            .and_then(|p| normalize(&USERS, &Value::Object(p), Some(d)))
    }

    #[test]
    fn bodies_keep_known_writable_attributes_in_their_schemas_spelling() {
        let d = doc(json!({
            "USERNAME": "bjensen", "id": "forged", "meta": {"version": "x"},
            "unknown": 1, "active": "True",
            "emails": {"value": "b@x.test"},
            ENTERPRISE_SCHEMA: {"Department": "R&D", "nope": 2}
        }));
        assert_eq!(d["userName"], "bjensen");
        assert_eq!(d["active"], true);
        assert_eq!(d["emails"], json!([{"value": "b@x.test"}]));
        assert_eq!(d[ENTERPRISE_SCHEMA], json!({"department": "R&D"}));
        assert!(!d.contains_key("id") && !d.contains_key("meta") && !d.contains_key("unknown"));
        for bad in [
            json!({}),
            json!({"userName": 5}),
            json!({"userName": "x", "active": "yes"}),
            json!({"userName": "x\u{1b}[31m"}),
            json!({"userName": "x", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
            json!({"userName": "x".repeat(MAX_VALUE_LEN + 1)}),
            json!(["userName"]),
        ] {
            assert!(normalize(&USERS, &bad, None).is_err(), "{bad}");
        }
        let many: Vec<Value> = (0..=MAX_VALUES)
            .map(|i| json!({"value": format!("{i}@x")}))
            .collect();
        let e = normalize(&USERS, &json!({"userName": "x", "emails": many}), None).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::TooMany));
    }

    #[test]
    fn patch_takes_what_providers_send() {
        let d = doc(json!({"userName": "bjensen", "emails": [{"value": "old@x", "type": "work"}]}));
        // Path-less values, by name, by dotted path and by extension URI.
        let p = patch(
            &d,
            json!([{"op": "Replace", "value": {
                "name.givenName": "Barbara", "active": "False",
                ENTERPRISE_SCHEMA: {"department": "Ops"}
            }}]),
        )
        .unwrap();
        assert_eq!(p["name"]["givenName"], "Barbara");
        assert_eq!(p["active"], false);
        assert_eq!(p[ENTERPRISE_SCHEMA]["department"], "Ops");
        // A filter with a sub-attribute: changes the match, or adds what the filter pins.
        let p = patch(
            &d,
            json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@x"},
                {"op": "add", "path": "emails[type eq \"home\"].value", "value": "home@x"}
            ]),
        )
        .unwrap();
        assert_eq!(
            p["emails"],
            json!([{"value": "new@x", "type": "work"}, {"value": "home@x", "type": "home"}])
        );
        // A filter that pins nothing cannot add.
        let e = patch(
            &d,
            json!([{"op": "add", "path": "emails[value co \"z\"].type", "value": "x"}]),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::NoTarget));
        // The whole extension, and a bare manager id.
        let p = patch(
            &d,
            json!([
                {"op": "add", "path": ENTERPRISE_SCHEMA, "value": {"division": "North"}},
                {"op": "add", "path": format!("{ENTERPRISE_SCHEMA}:manager"), "value": "usr_1"}
            ]),
        )
        .unwrap();
        assert_eq!(
            p[ENTERPRISE_SCHEMA],
            json!({"division": "North", "manager": {"value": "usr_1"}})
        );
        let p = patch(&p, json!([{"op": "remove", "path": ENTERPRISE_SCHEMA}])).unwrap();
        assert!(!p.contains_key(ENTERPRISE_SCHEMA));
    }

    #[test]
    fn patch_refuses_with_the_right_scim_type() {
        let d = doc(json!({"userName": "bjensen"}));
        let kind = |ops: Value| patch(&d, ops).unwrap_err().scim_type;
        assert_eq!(
            kind(json!([{"op": "copy", "path": "title", "value": "x"}])),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(kind(json!([{"op": "remove"}])), Some(ScimType::NoTarget));
        assert_eq!(
            kind(json!([{"op": "replace", "path": "id", "value": "x"}])),
            Some(ScimType::Mutability)
        );
        assert_eq!(
            kind(json!([{"op": "replace", "path": "nope", "value": "x"}])),
            Some(ScimType::InvalidPath)
        );
        assert_eq!(
            kind(json!([{"op": "replace", "path": "title[value eq 1]", "value": "x"}])),
            Some(ScimType::InvalidPath)
        );
        assert_eq!(
            kind(json!([{"op": "remove", "path": "userName"}])),
            Some(ScimType::InvalidValue)
        );
        assert_eq!(
            kind(json!([{"op": "replace", "path": "title"}])),
            Some(ScimType::InvalidValue)
        );
        let many: Vec<Value> = (0..=MAX_PATCH_OPERATIONS)
            .map(|_| json!({"op": "add", "path": "title", "value": "x"}))
            .collect();
        assert_eq!(kind(Value::Array(many)), Some(ScimType::TooMany));
        assert!(apply_patch(&USERS, &d, &json!({"operations": "no"})).is_err());
    }

    #[test]
    fn members_leave_by_value_path_or_by_listing() {
        let g = normalize(&GROUPS, &json!({"displayName": "g", "members": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}), None).unwrap();
        let p = apply_patch(
            &GROUPS,
            &g,
            &json!({"Operations": [
                {"op": "Remove", "path": "members[value eq \"a\"]"},
                {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "b"}]}
            ]}),
        )
        .unwrap();
        assert_eq!(p["members"], json!([{"value": "c"}]));
        let p = apply_patch(
            &GROUPS,
            &g,
            &json!({"Operations": [{"op": "remove", "path": "members"}]}),
        )
        .unwrap();
        assert!(!p.contains_key("members"));
    }

    #[test]
    fn projection_keeps_what_is_asked_and_what_is_always_returned() {
        let full = json!({
            "schemas": [USERS.schema.id], "id": "u1", "userName": "b",
            "name": {"givenName": "B", "familyName": "J"},
            "emails": [{"value": "b@x", "type": "work"}],
            ENTERPRISE_SCHEMA: {"department": "R", "division": "N"}
        });
        let only = Projection::parse(Some("name.givenName, emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"), None).unwrap();
        assert_eq!(
            only.apply(&USERS, &full),
            json!({
                "schemas": [USERS.schema.id], "id": "u1",
                "name": {"givenName": "B"}, "emails": [{"value": "b@x"}],
                ENTERPRISE_SCHEMA: {"department": "R"}
            })
        );
        let not = Projection::parse(None, Some("name,id,emails.type")).unwrap();
        let out = not.apply(&USERS, &full);
        assert!(out.get("name").is_none());
        assert_eq!(out["id"], "u1", "id is always returned");
        assert_eq!(out["emails"], json!([{"value": "b@x"}]));
        assert!(Projection::parse(Some("emails[type eq \"work\"]"), None).is_err());
    }
}
