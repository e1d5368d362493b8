// The `scim_filter` fuzz check, shared by the fuzz target and zt-core's corpus replay
// (`include!`): SCIM filters, PATCH paths and bodies come from identity providers' requests.

/// Neither parser panics on any text; a filter that parses prints as text that parses back to
/// the same filter, and evaluating it against a small user never panics either. A PATCH with
/// the text as its path (each op), or the text as a whole PATCH or resource body, is applied
/// or refused with an error, never a panic.
fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    use zt_core::identity::scim::{resource, schema};
    let doc = serde_json::json!({
        "userName": "bjensen",
        "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
        "name": {"givenName": "Barbara"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "x"}
    });
    let serde_json::Value::Object(doc) = doc else {
        return;
    };
    for op in ["add", "Replace", "remove"] {
        let body = serde_json::json!({"Operations": [{"op": op, "path": text, "value": "v"}]});
        if let Ok(patched) = resource::apply_patch(&schema::USERS, &doc, &body) {
            let _ = resource::normalize(&schema::USERS, &serde_json::Value::Object(patched), Some(&doc));
        }
    }
    if let Ok(body) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = resource::apply_patch(&schema::USERS, &doc, &body);
        let _ = resource::apply_patch(&schema::GROUPS, &doc, &body);
        let _ = resource::normalize(&schema::USERS, &body, Some(&doc));
        let _ = zt_core::identity::scim::ListQuery::from_search(&body);
    }
    let _ = zt_core::identity::scim::parse_path(text);
    if let Ok(filter) = zt_core::identity::scim::parse_filter(text) {
        let again = zt_core::identity::scim::parse_filter(&filter.to_string());
        assert_eq!(again.as_ref(), Ok(&filter), "the canonical text parses back");
        let user = serde_json::json!({
            "userName": "bjensen",
            "emails": [{"value": "b@example.com", "type": "work"}, "stray"],
            "name": {"givenName": "Barbara"},
            "meta": {"lastModified": "2011-05-13T04:42:34Z"},
            "count": 3
        });
        let _ = filter.matches(&user, &|_| false);
    }
}
