//! A list or `.search` request (RFC 7644 section 3.4.2): its filter, sort, page and projection,
//! which index can answer its filter, and the list response it makes of the candidates.

use serde_json::{Value, json};

use super::error::{ScimError, ScimType};
use super::filter::{AttrPath, CompValue, CompareOp, Filter, parse_filter, parse_path};
use super::resource::{Projection, case_exact, compare_by};
use super::schema::{LIST_RESPONSE, ResourceType};

/// The most resources one page returns (`count` above it is lowered to it).
pub const MAX_RESULTS: usize = 1_000;
/// The page size when the client gives none.
pub const DEFAULT_COUNT: usize = 100;

/// What a list asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only resources that match.
    pub filter: Option<Filter>,
    /// The order, by this attribute.
    pub sort_by: Option<AttrPath>,
    /// Descending rather than ascending.
    pub descending: bool,
    /// The 1-based index of the first result.
    pub start_index: usize,
    /// The most results to return.
    pub count: usize,
    /// Which attributes to return.
    pub projection: Projection,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: None,
            sort_by: None,
            descending: false,
            start_index: 1,
            count: DEFAULT_COUNT,
            projection: Projection::default(),
        }
    }
}

/// Which index answers a filter: a resource's name or its external id, exactly one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indexed {
    /// The name attribute (`userName`, a group's `displayName`) equals this, any case.
    Name(String),
    /// `externalId` equals this.
    External(String),
}

fn number(v: Option<&Value>, name: &str) -> Result<Option<usize>, ScimError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(
            n.as_i64()
                .map_or(0, |n| usize::try_from(n.max(0)).unwrap_or(0)),
        )),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(|n| Some(usize::try_from(n.max(0)).unwrap_or(0)))
            .map_err(|_| ScimError::bad(ScimType::InvalidValue, format!("{name} is a number"))),
        Some(_) => Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("{name} is a number"),
        )),
    }
}

fn text<'a>(v: Option<&'a Value>, name: &str) -> Result<Option<&'a str>, ScimError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Array(_)) if name.ends_with("ttributes") => Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("{name} is given as text here"),
        )),
        Some(_) => Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("{name} is text"),
        )),
    }
}

fn list_text(v: Option<&Value>, name: &str) -> Result<Option<String>, ScimError> {
    match v {
        Some(Value::Array(items)) => {
            let parts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            parts.map(|p| Some(p.join(","))).ok_or_else(|| {
                ScimError::bad(ScimType::InvalidValue, format!("{name} is a list of paths"))
            })
        }
        other => Ok(text(other, name)?.map(str::to_owned)),
    }
}

impl ListQuery {
    /// A query from its parameters, by name (any case): the query string of a GET, or the
    /// members of a `.search` body.
    ///
    /// # Errors
    /// `invalidFilter` for a filter that does not parse; `invalidValue` or `invalidPath` for
    /// the other parameters.
    pub fn from_params(get: &dyn Fn(&str) -> Option<Value>) -> Result<Self, ScimError> {
        let mut q = ListQuery::default();
        if let Some(f) = text(get("filter").as_ref(), "filter")? {
            q.filter = Some(
                parse_filter(f)
                    .map_err(|e| ScimError::bad(ScimType::InvalidFilter, e.to_string()))?,
            );
        }
        if let Some(s) = text(get("sortBy").as_ref(), "sortBy")? {
            let path =
                parse_path(s).map_err(|e| ScimError::bad(ScimType::InvalidPath, e.to_string()))?;
            q.sort_by = Some(path.attr);
        }
        if let Some(order) = text(get("sortOrder").as_ref(), "sortOrder")? {
            q.descending = match order.to_ascii_lowercase().as_str() {
                "ascending" => false,
                "descending" => true,
                _ => {
                    return Err(ScimError::bad(
                        ScimType::InvalidValue,
                        "sortOrder is ascending or descending",
                    ));
                }
            };
        }
        if let Some(start) = number(get("startIndex").as_ref(), "startIndex")? {
            q.start_index = start.max(1);
        }
        if let Some(count) = number(get("count").as_ref(), "count")? {
            q.count = count.min(MAX_RESULTS);
        }
        let attributes = list_text(get("attributes").as_ref(), "attributes")?;
        let excluded = list_text(get("excludedAttributes").as_ref(), "excludedAttributes")?;
        q.projection = Projection::parse(attributes.as_deref(), excluded.as_deref())?;
        Ok(q)
    }

    /// The query of a `.search` body (RFC 7644 section 3.4.3).
    ///
    /// # Errors
    /// As [`ListQuery::from_params`]; `invalidSyntax` for a body that is not an object.
    pub fn from_search(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(map) = body else {
            return Err(ScimError::bad(
                ScimType::InvalidSyntax,
                "a search request is a JSON object",
            ));
        };
        Self::from_params(&|name| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    }

    /// The index that narrows this query's filter to one resource, when its filter is (or is
    /// a conjunction holding) `name eq "…"` or `externalId eq "…"`. The filter still runs over
    /// what the index finds.
    pub fn indexed(&self, rt: &ResourceType, name_attribute: &str) -> Option<Indexed> {
        fn find(f: &Filter, rt: &ResourceType, name_attribute: &str) -> Option<Indexed> {
            match f {
                Filter::Compare(path, CompareOp::Eq, CompValue::String(v))
                    if path.sub.is_none() =>
                {
                    let in_core = path
                        .uri
                        .as_deref()
                        .is_none_or(|u| u.eq_ignore_ascii_case(rt.schema.id));
                    if !in_core {
                        return None;
                    }
                    if path.name.eq_ignore_ascii_case(name_attribute) {
                        Some(Indexed::Name(v.clone()))
                    } else if path.name.eq_ignore_ascii_case("externalId") {
                        Some(Indexed::External(v.clone()))
                    } else {
                        None
                    }
                }
                Filter::And(items) => items.iter().find_map(|f| find(f, rt, name_attribute)),
                _ => None,
            }
        }
        self.filter
            .as_ref()
            .and_then(|f| find(f, rt, name_attribute))
    }

    /// The list response over `candidates` (rendered resources): those the filter matches,
    /// sorted, the page asked for, each projected.
    pub fn respond(&self, rt: &ResourceType, candidates: Vec<Value>) -> Value {
        self.respond_many(vec![(rt, candidates)])
    }

    /// The list response over candidates of several types (a search at the service root),
    /// each filtered, compared and projected under its own type's schema.
    pub fn respond_many(&self, parts: Vec<(&ResourceType, Vec<Value>)>) -> Value {
        let mut hits: Vec<(&ResourceType, Value)> = Vec::new();
        for (rt, candidates) in parts {
            let exact = |p: &AttrPath| case_exact(rt, p);
            hits.extend(
                candidates
                    .into_iter()
                    .filter(|r| self.filter.as_ref().is_none_or(|f| f.matches(r, &exact)))
                    .map(|r| (rt, r)),
            );
        }
        match &self.sort_by {
            Some(path) => {
                hits.sort_by(|(rt, a), (_, b)| compare_by(rt, path, self.descending, a, b))
            }
            // A stable order without a sortBy, so pages do not overlap: by id.
            None => hits.sort_by(|(_, a), (_, b)| {
                a.get("id")
                    .and_then(Value::as_str)
                    .cmp(&b.get("id").and_then(Value::as_str))
            }),
        }
        let total = hits.len();
        let page: Vec<Value> = hits
            .into_iter()
            .skip(self.start_index - 1)
            .take(self.count)
            .map(|(rt, r)| self.projection.apply(rt, &r))
            .collect();
        json!({
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "startIndex": self.start_index,
            "itemsPerPage": page.len(),
            "Resources": page,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::identity::scim::schema::USERS;

    fn query(pairs: &[(&str, &str)]) -> Result<ListQuery, ScimError> {
        ListQuery::from_params(&|name| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| Value::from(*v))
        })
    }

    #[test]
    fn an_eq_on_a_unique_attribute_goes_to_its_index() {
        let q = query(&[("filter", r#"USERNAME eq "Bjensen""#)]).unwrap();
        assert_eq!(
            q.indexed(&USERS, "userName"),
            Some(Indexed::Name("Bjensen".into()))
        );
        let q = query(&[("filter", r#"active eq true and externalId eq "e1""#)]).unwrap();
        assert_eq!(
            q.indexed(&USERS, "userName"),
            Some(Indexed::External("e1".into()))
        );
        for f in [
            r#"userName sw "b""#,
            r#"userName eq "a" or active eq true"#,
            r#"not (userName eq "a")"#,
        ] {
            let q = query(&[("filter", f)]).unwrap();
            assert_eq!(q.indexed(&USERS, "userName"), None, "{f}");
        }
    }

    #[test]
    fn pages_sorts_and_bad_parameters() {
        let users: Vec<Value> = ["carol", "Alice", "bob"]
            .iter()
            .enumerate()
            .map(|(i, n)| json!({ "id": format!("u{i}"), "userName": n, "active": i != 1 }))
            .collect();
        let q = query(&[("sortBy", "userName"), ("count", "2")]).unwrap();
        let r = q.respond(&USERS, users.clone());
        assert_eq!(r["totalResults"], 3);
        assert_eq!(r["Resources"][0]["userName"], "Alice");
        assert_eq!(r["Resources"][1]["userName"], "bob");
        let q = query(&[
            ("sortBy", "userName"),
            ("sortOrder", "descending"),
            ("startIndex", "3"),
        ])
        .unwrap();
        let r = q.respond(&USERS, users.clone());
        assert_eq!(r["Resources"][0]["userName"], "Alice");
        assert_eq!(r["startIndex"], 3);
        let q = query(&[("filter", "active eq false"), ("attributes", "userName")]).unwrap();
        let r = q.respond(&USERS, users);
        assert_eq!(r["totalResults"], 1);
        assert_eq!(
            r["Resources"][0],
            json!({ "id": "u1", "userName": "Alice" })
        );
        assert_eq!(
            query(&[("filter", "userName eq")]).unwrap_err().scim_type,
            Some(ScimType::InvalidFilter)
        );
        assert!(query(&[("count", "many")]).is_err());
        assert!(query(&[("sortOrder", "up")]).is_err());
        assert_eq!(query(&[("count", "100000")]).unwrap().count, MAX_RESULTS);
    }
}
