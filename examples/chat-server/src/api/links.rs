//! The OpenAPI document's operation ids and links.
//!
//! Every operation's id is `<tag>_<handler>` (`channels_create`, `groups_create`): unique, as
//! OpenAPI requires, where the handlers' names alone repeat across modules.
//!
//! A link says how the response of one operation feeds the parameters of another: the `id` in the
//! `201` of `POST /api/v1/channels` is the `{channel}` of `GET /api/v1/channels/{channel}`, and
//! so on. Clients can follow them, and schemathesis's stateful phase chains calls along them
//! instead of guessing ids that do not exist.

use utoipa::Modify;
use utoipa::openapi::link::Link;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{OpenApi, RefOr};

/// The id of the resource a `201` response created.
const CREATED_ID: &str = "$response.body#/id";

/// One link: from the `201` of `from` to `to`, setting `params` (target parameter, runtime
/// expression). Operations are named by their ids.
struct Follow {
    from: &'static str,
    to: &'static str,
    params: &'static [(&'static str, &'static str)],
}

const fn follow(
    from: &'static str,
    to: &'static str,
    params: &'static [(&'static str, &'static str)],
) -> Follow {
    Follow { from, to, params }
}

const CHANNEL: &[(&str, &str)] = &[("channel", CREATED_ID)];
const MESSAGE: &[(&str, &str)] = &[
    ("channel", "$request.path.channel"),
    ("message", CREATED_ID),
];
const FILE: &[(&str, &str)] = &[("channel", "$request.path.channel"), ("file", CREATED_ID)];
const GROUP: &[(&str, &str)] = &[("group", CREATED_ID)];
const ROLE: &[(&str, &str)] = &[("role", CREATED_ID)];
const USER: &[(&str, &str)] = &[("user", CREATED_ID)];

const LINKS: &[Follow] = &[
    follow("channels_create", "channels_get_channel", CHANNEL),
    follow("channels_create", "channels_update_channel", CHANNEL),
    follow("channels_create", "channels_delete_channel", CHANNEL),
    follow("channels_create", "channels_messages", CHANNEL),
    follow("channels_create", "channels_post_message", CHANNEL),
    follow("channels_create", "channels_add_member", CHANNEL),
    follow("channels_create", "channels_remove_member", CHANNEL),
    follow("channels_create", "files_upload", CHANNEL),
    follow("channels_post_message", "channels_edit_message", MESSAGE),
    follow("channels_post_message", "channels_delete_message", MESSAGE),
    follow("files_upload", "files_info", FILE),
    follow("files_upload", "files_download", FILE),
    follow("files_upload", "files_delete", FILE),
    follow("groups_create", "groups_get_group", GROUP),
    follow("groups_create", "groups_update", GROUP),
    follow("groups_create", "groups_delete", GROUP),
    follow("groups_create", "groups_add_member", GROUP),
    follow("groups_create", "groups_remove_member", GROUP),
    follow("groups_create", "groups_link_channel", GROUP),
    follow("groups_create", "groups_unlink_channel", GROUP),
    follow("roles_create", "roles_update", ROLE),
    follow("roles_create", "roles_delete", ROLE),
    follow("roles_create", "roles_grant", ROLE),
    follow("roles_create", "roles_revoke", ROLE),
    follow("users_create", "admin_deactivate", USER),
    follow("users_create", "admin_delete_user", USER),
    follow("users_create", "admin_reactivate", USER),
    follow("users_create", "admin_unlock", USER),
    follow("users_create", "admin_reset_password", USER),
    follow("users_create", "admin_revoke_sessions", USER),
    follow("users_create", "channels_add_member", USER),
    follow("users_create", "groups_add_member", USER),
    follow("users_create", "roles_grant", USER),
];

/// Every operation of a path item.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Gives every operation its unique id and adds [`LINKS`].
pub(super) struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let tag = operation.tags.as_ref().and_then(|t| t.first()).cloned();
                if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
                    *id = format!("{tag}_{id}");
                }
            }
        }
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let Some(id) = operation.operation_id.clone() else {
                    continue;
                };
                let Some(RefOr::T(created)) = operation.responses.responses.get_mut("201") else {
                    continue;
                };
                for link in LINKS.iter().filter(|l| l.from == id) {
                    let built = link
                        .params
                        .iter()
                        .fold(Link::builder().operation_id(link.to), |b, (name, value)| {
                            b.parameter(*name, *value)
                        })
                        .build();
                    created.links.insert(link.to.to_owned(), RefOr::T(built));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;
    use utoipa::OpenApi as _;

    use super::*;
    use crate::api::ApiDoc;

    /// Operation id → (its path parameters, its responses).
    fn by_id(doc: &Value) -> BTreeMap<String, (Vec<String>, Value)> {
        let mut out = BTreeMap::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                let id = operation["operationId"].as_str().unwrap().to_owned();
                let params = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect();
                let previous = out.insert(id.clone(), (params, operation["responses"].clone()));
                assert!(previous.is_none(), "operation id {id} is used twice");
            }
        }
        out
    }

    #[test]
    fn operation_ids_are_unique_and_every_link_lands_on_real_parameters() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let operations = by_id(&doc);
        let mut links = 0;
        for (id, (params, responses)) in &operations {
            for (status, response) in responses.as_object().unwrap() {
                let Some(found) = response.get("links").and_then(Value::as_object) else {
                    continue;
                };
                assert_eq!(status, "201", "{id}: links only from a creation");
                for (name, link) in found {
                    links += 1;
                    let target = link["operationId"].as_str().unwrap();
                    let (target_params, _) = operations
                        .get(target)
                        .unwrap_or_else(|| panic!("{id} links to no operation {name}"));
                    for (param, expression) in link["parameters"].as_object().unwrap() {
                        assert!(
                            target_params.contains(param),
                            "{id} → {target}: no path parameter {param}"
                        );
                        let expression = expression.as_str().unwrap();
                        if let Some(source) = expression.strip_prefix("$request.path.") {
                            assert!(params.iter().any(|p| p == source), "{id}: {expression}");
                        }
                    }
                }
            }
        }
        assert_eq!(links, LINKS.len());
    }
}
