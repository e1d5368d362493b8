// The `scim_filter` fuzz check, shared by the fuzz target and zt-core's corpus replay
// (`include!`): SCIM filters and PATCH paths come from identity providers' requests.

/// Neither parser panics on any text; a filter that parses prints as text that parses back to
/// the same filter, and evaluating it against a small user never panics either.
fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
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
