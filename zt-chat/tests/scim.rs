//! SCIM provisioning through the workspace's one door: the request shapes Microsoft Entra ID and
//! Okta are documented to send, deprovisioning that ends sessions and streams, memberships by
//! source, API keys, rate limits, versions, and what a stranger's key or input gets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::time::Duration;

use common::{login, member, new_user, password};
use serde_json::{Value, json};
use zt_authz::Source;
use zt_chat::testing::World;
use zt_chat::{Caller, CloseReason, ScimCaller, ScimMethod, ScimRequest, ScimResponse, Workspace};
use zt_core::{AuditEventKind, Clock as _, GroupId, UserId};

const BASE: &str = "https://chat.example/scim/v2";

struct Scim<'a> {
    workspace: &'a Workspace,
    caller: ScimCaller,
}

impl Scim<'_> {
    async fn call_with(
        &self,
        method: ScimMethod,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> ScimResponse {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.workspace
            .scim(
                &self.caller,
                ScimRequest {
                    method,
                    path,
                    query: &query,
                    if_match,
                    body: body.as_bytes(),
                    base: BASE,
                },
            )
            .await
    }

    async fn call(&self, method: ScimMethod, path: &str, body: Option<Value>) -> ScimResponse {
        self.call_with(method, path, &[], body, None).await
    }

    /// The body of a call that must answer `status`.
    async fn ok(&self, status: u16, method: ScimMethod, path: &str, body: Option<Value>) -> Value {
        let r = self.call(method, path, body).await;
        assert_eq!(r.status, status, "{method:?} {path}: {:?}", r.body);
        r.body.unwrap_or(Value::Null)
    }

    async fn find(&self, path: &str, filter: &str) -> Vec<Value> {
        let r = self
            .call_with(ScimMethod::Get, path, &[("filter", filter)], None, None)
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body.unwrap()["Resources"].as_array().unwrap().clone()
    }
}

async fn setup() -> (World, std::sync::Arc<Workspace>, Caller) {
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Scim", new_user("owner"), &password())
        .await
        .unwrap();
    let owner = login(&workspace, "owner").await;
    (w, workspace, owner)
}

async fn scim<'a>(workspace: &'a Workspace, owner: &Caller) -> Scim<'a> {
    let (secret, _) = workspace.create_scim_key(owner, "idp").await.unwrap();
    let caller = workspace.scim_authenticate(secret.expose()).await.unwrap();
    Scim { workspace, caller }
}

fn id(doc: &Value) -> String {
    doc["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn microsoft_entra_id_shapes() {
    let (_w, workspace, owner) = setup().await;
    let s = scim(&workspace, &owner).await;
    // "Create User", as the Entra provisioning tutorial shows it (roles and meta included).
    let user = s
        .ok(
            201,
            ScimMethod::Post,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
                "active": true,
                "emails": [{ "primary": true, "type": "work",
                             "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com" }],
                "meta": { "resourceType": "User" },
                "name": { "formatted": "givenName familyName", "familyName": "familyName",
                          "givenName": "givenName" },
                "roles": []
            })),
        )
        .await;
    let uid = id(&user);
    assert_eq!(user["active"], true);
    assert_eq!(user["meta"]["location"], format!("{BASE}/Users/{uid}"));
    // The account in zt: one user, its name and address from the document.
    let zt = workspace
        .find_user(&owner, "test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zt.id.to_string(), uid);
    assert_eq!(zt.display_name, "givenName familyName");

    // "Get User by query", any case of the name.
    let found = s
        .find(
            "/Users",
            r#"userName eq "test_user_AB6490EE-1e48-479e-a20b-2d77186b5dd1""#,
        )
        .await;
    assert_eq!(found.len(), 1);
    assert!(s.find("/Users", r#"userName eq "nobody""#).await.is_empty());

    // "Update User [Multi-valued properties]": a value path with a sub-attribute, capitalised op.
    let patched = s
        .ok(
            200,
            ScimMethod::Patch,
            &format!("/Users/{uid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    { "op": "Replace", "path": "emails[type eq \"work\"].value",
                      "value": "updatedEmail@microsoft.com" },
                    { "op": "Replace", "path": "name.familyName", "value": "updatedFamilyName" }
                ]
            })),
        )
        .await;
    assert_eq!(patched["emails"][0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(patched["name"]["familyName"], "updatedFamilyName");
    let me = workspace
        .find_user(&owner, "test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(me.email.as_deref(), Some("updatedemail@microsoft.com"));

    // The manager as its bare id, and "Disable User" with the boolean as a string.
    let manager = s
        .ok(
            201,
            ScimMethod::Post,
            "/Users",
            Some(json!({ "userName": "boss" })),
        )
        .await;
    let patched = s
        .ok(
            200,
            ScimMethod::Patch,
            &format!("/Users/{uid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    { "op": "Add",
                      "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                      "value": id(&manager) },
                    { "op": "Replace", "path": "active", "value": "False" }
                ]
            })),
        )
        .await;
    assert_eq!(
        patched["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
        id(&manager)
    );
    assert_eq!(patched["active"], false);

    // Groups: "Create Group" with Entra's own extra schema, then addMember / removeMember by
    // listing the values ("$ref": null).
    let group = s
        .ok(
            201,
            ScimMethod::Post,
            "/Groups",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "Sales Team",
                "meta": { "resourceType": "Group" }
            })),
        )
        .await;
    let gid = id(&group);
    let member_op = |op: &str, name: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "name": name, "op": op, "path": "members",
                             "value": [{ "$ref": null, "value": id(&manager) }] }]
        })
    };
    let g = s
        .ok(
            200,
            ScimMethod::Patch,
            &format!("/Groups/{gid}"),
            Some(member_op("Add", "addMember")),
        )
        .await;
    assert_eq!(g["members"][0]["value"], id(&manager));
    let g = s
        .ok(
            200,
            ScimMethod::Patch,
            &format!("/Groups/{gid}"),
            Some(member_op("Remove", "removeMember")),
        )
        .await;
    assert!(g.get("members").is_none());
    let found = s.find("/Groups", r#"displayName eq "sales team""#).await;
    assert_eq!(found.len(), 1);
    // The chat group's name follows zt's rules.
    assert_eq!(
        workspace
            .group(&owner, gid.parse().unwrap())
            .await
            .unwrap()
            .name,
        "Sales-Team"
    );
}

#[tokio::test]
async fn okta_shapes() {
    let (_w, workspace, owner) = setup().await;
    let s = scim(&workspace, &owner).await;
    // Okta's "Create the User": a password and groups, which zt does not take over SCIM.
    let user = s
        .ok(
            201,
            ScimMethod::Post,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "test.user@okta.local",
                "name": { "givenName": "Test", "familyName": "User" },
                "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
                "displayName": "Test User",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "groups": [],
                "password": "1mz050nq",
                "active": true
            })),
        )
        .await;
    let uid = id(&user);
    assert!(user.get("password").is_none() && user.get("groups").is_none());
    // The lookup Okta makes first, with its paging parameters; and by externalId (exact case).
    let r = s
        .call_with(
            ScimMethod::Get,
            "/Users",
            &[
                ("filter", r#"userName eq "test.user@okta.local""#),
                ("startIndex", "1"),
                ("count", "100"),
            ],
            None,
            None,
        )
        .await;
    assert_eq!(r.body.as_ref().unwrap()["totalResults"], 1);
    assert_eq!(
        s.find("/Users", r#"externalId eq "00ujl29u0le5T6Aj10h7""#)
            .await
            .len(),
        1
    );
    assert!(
        s.find("/Users", r#"externalId eq "00UJL29U0LE5T6AJ10H7""#)
            .await
            .is_empty()
    );

    // A PUT replaces the whole document: what it leaves out is gone.
    let put = s
        .ok(
            200,
            ScimMethod::Put,
            &format!("/Users/{uid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": uid,
                "userName": "test.user@okta.local",
                "name": { "givenName": "Another", "familyName": "User" },
                "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
                "active": true
            })),
        )
        .await;
    assert!(put.get("displayName").is_none() && put.get("externalId").is_none());
    assert!(put.get("locale").is_none());
    assert_eq!(put["name"]["givenName"], "Another");

    // Okta deactivates with a path-less replace.
    let off = s
        .ok(
            200,
            ScimMethod::Patch,
            &format!("/Users/{uid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "replace", "value": { "active": false } }]
            })),
        )
        .await;
    assert_eq!(off["active"], false);

    // Groups: push with members, rename by a path-less replace (with the id, read-only,
    // ignored), remove a member by a value filter.
    let other = s
        .ok(
            201,
            ScimMethod::Post,
            "/Users",
            Some(json!({ "userName": "second@okta.local" })),
        )
        .await;
    let group = s
        .ok(
            201,
            ScimMethod::Post,
            "/Groups",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Test SCIMv2",
                "members": [{ "value": uid, "display": "test.user@okta.local" },
                            { "value": id(&other), "display": "second@okta.local" }]
            })),
        )
        .await;
    let gid = id(&group);
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    let renamed = s
        .ok(
            200,
            ScimMethod::Patch,
            &format!("/Groups/{gid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "replace", "value": { "id": gid, "displayName": "Renamed" } }]
            })),
        )
        .await;
    assert_eq!(renamed["displayName"], "Renamed");
    let removed = s
        .ok(
            200,
            ScimMethod::Patch,
            &format!("/Groups/{gid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "remove", "path": format!("members[value eq \"{uid}\"]") }]
            })),
        )
        .await;
    let left: Vec<&str> = removed["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(left, [id(&other).as_str()]);
    s.ok(204, ScimMethod::Delete, &format!("/Groups/{gid}"), None)
        .await;
    s.ok(404, ScimMethod::Get, &format!("/Groups/{gid}"), None)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_ends_sessions_and_streams_in_the_same_request() {
    let (w, workspace, owner) = setup().await;
    let s = scim(&workspace, &owner).await;
    let user = s
        .ok(
            201,
            ScimMethod::Post,
            "/Users",
            Some(json!({ "userName": "dana", "active": true })),
        )
        .await;
    let uid: UserId = id(&user).parse().unwrap();
    workspace
        .reset_password(&owner, uid, &password())
        .await
        .unwrap();
    let (token, _) = workspace.login("dana", &password(), None).await.unwrap();
    let mut feed = workspace.subscribe(&token).await.unwrap();

    let off = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "active", "value": false }]
    });
    s.ok(200, ScimMethod::Patch, &format!("/Users/{uid}"), Some(off))
        .await;
    // Already closed when the answer came back: no waiting for the bus.
    match feed.try_next() {
        Err(reason) => assert_eq!(reason, CloseReason::SessionEnded),
        Ok(event) => panic!("the stream is still open: {event:?}"),
    }
    assert!(workspace.authenticate(&token).await.is_err());
    assert!(workspace.login("dana", &password(), None).await.is_err());
    assert!(
        w.audit
            .kinds()
            .contains(&AuditEventKind::ScimUserDeactivated)
    );

    // Reactivation does not bring the old session back; a new sign-in works.
    let on = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "active", "value": true }]
    });
    s.ok(200, ScimMethod::Patch, &format!("/Users/{uid}"), Some(on))
        .await;
    assert!(workspace.authenticate(&token).await.is_err());
    // (Sessions begun in the millisecond of the deactivation count as before it.)
    w.clock.advance(Duration::from_millis(1));
    let (again, _) = workspace.login("dana", &password(), None).await.unwrap();
    let mut feed = workspace.subscribe(&again).await.unwrap();

    // DELETE: the same, and the user is gone for good.
    s.ok(204, ScimMethod::Delete, &format!("/Users/{uid}"), None)
        .await;
    // Closed before the answer: what was queued first may still be read, then the end.
    let end = loop {
        match feed.try_next() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream is still open"),
            Err(reason) => break reason,
        }
    };
    assert_eq!(end, CloseReason::SessionEnded);
    assert!(workspace.authenticate(&again).await.is_err());
    s.ok(404, ScimMethod::Get, &format!("/Users/{uid}"), None)
        .await;
    assert!(w.audit.kinds().contains(&AuditEventKind::ScimUserDeleted));
    // Every SCIM change names the key that made it.
    let key = s.caller.key().id.clone();
    for e in w
        .audit
        .events()
        .iter()
        .filter(|e| e.kind.name().starts_with("scim.user"))
    {
        assert!(format!("{:?}", e.details).contains(&key), "{e:?}");
    }
}

#[tokio::test]
async fn scim_removes_only_what_scim_gave() {
    let (_w, workspace, owner) = setup().await;
    let s = scim(&workspace, &owner).await;
    let mut users = Vec::new();
    for name in [
        "m-only",
        "m-and-scim",
        "oidc-and-scim",
        "scim-only",
        "scim-then-manual-removal",
    ] {
        let u = s
            .ok(
                201,
                ScimMethod::Post,
                "/Users",
                Some(json!({ "userName": name })),
            )
            .await;
        users.push(id(&u));
    }
    let group = s
        .ok(
            201,
            ScimMethod::Post,
            "/Groups",
            Some(json!({ "displayName": "eng" })),
        )
        .await;
    let gid: GroupId = id(&group).parse().unwrap();
    let uid = |i: usize| -> UserId { users[i].parse().unwrap() };
    let is_member = |sources: zt_authz::Sources| !sources.is_empty();
    let sources = |u: UserId| {
        let workspace = &workspace;
        let owner = &owner;
        async move { workspace.group_member_sources(owner, gid, u).await.unwrap() }
    };
    // Manual memberships by the owner, an OIDC one by the deployment.
    workspace
        .set_group_member(&owner, gid, uid(0), true)
        .await
        .unwrap();
    workspace
        .set_group_member(&owner, gid, uid(1), true)
        .await
        .unwrap();
    workspace
        .sync_group_member(Source::Oidc, gid, uid(2), true)
        .await
        .unwrap();
    // SCIM pushes the group with users 1 to 4.
    let push = |members: &[usize]| {
        json!({
            "displayName": "eng",
            "members": members.iter().map(|&i| json!({ "value": users[i] })).collect::<Vec<_>>()
        })
    };
    let g = s
        .ok(
            200,
            ScimMethod::Put,
            &format!("/Groups/{gid}"),
            Some(push(&[1, 2, 3, 4])),
        )
        .await;
    // SCIM sees the members it gave, not the manual-only one.
    assert_eq!(g["members"].as_array().unwrap().len(), 4);
    // The owner removes user 4 by hand: their manual decision covers their own grant only; SCIM
    // still gives the membership, and nothing SCIM does later restores a manual grant either.
    workspace
        .set_group_member(&owner, gid, uid(4), false)
        .await
        .unwrap();
    assert!(is_member(sources(uid(4)).await));
    // SCIM drops everyone.
    s.ok(
        200,
        ScimMethod::Put,
        &format!("/Groups/{gid}"),
        Some(push(&[])),
    )
    .await;
    assert!(is_member(sources(uid(0)).await), "manual only: untouched");
    assert!(
        is_member(sources(uid(1)).await),
        "manual and SCIM: the manual one survives"
    );
    assert!(
        sources(uid(1)).await.contains(Source::Manual)
            && !sources(uid(1)).await.contains(Source::Scim)
    );
    assert!(
        is_member(sources(uid(2)).await),
        "OIDC and SCIM: the OIDC one survives"
    );
    assert!(!is_member(sources(uid(3)).await), "SCIM only: gone");
    assert!(
        !is_member(sources(uid(4)).await),
        "SCIM only after the manual removal: gone"
    );
    // A SCIM removal of someone SCIM never added changes nothing.
    let r = s
        .ok(
            200,
            ScimMethod::Patch,
            &format!("/Groups/{gid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "remove", "path": format!("members[value eq \"{}\"]", users[0]) }]
            })),
        )
        .await;
    assert!(r.get("members").is_none());
    assert!(is_member(sources(uid(0)).await));
}

#[tokio::test]
async fn keys_rotate_with_an_overlap_and_are_audited() {
    let (w, workspace, owner) = setup().await;
    let bob = member(&workspace, &owner, "bob").await;
    assert!(
        workspace.create_scim_key(&bob, "mine").await.is_err(),
        "needs manage_users"
    );
    let (first, info) = workspace.create_scim_key(&owner, "entra").await.unwrap();
    assert!(!format!("{first:?}").contains(first.expose()));
    workspace.scim_authenticate(first.expose()).await.unwrap();
    let (second, _) = workspace
        .rotate_scim_key(&owner, &info.id, Duration::from_secs(600))
        .await
        .unwrap();
    // Both work during the overlap.
    workspace.scim_authenticate(first.expose()).await.unwrap();
    workspace.scim_authenticate(second.expose()).await.unwrap();
    w.clock.advance(Duration::from_secs(601));
    assert_eq!(
        workspace
            .scim_authenticate(first.expose())
            .await
            .unwrap_err()
            .status,
        401
    );
    let caller = workspace.scim_authenticate(second.expose()).await.unwrap();
    let listed = workspace.scim_keys(&owner).await.unwrap();
    assert_eq!(listed.len(), 1);
    workspace
        .revoke_scim_key(&owner, &caller.key().id)
        .await
        .unwrap();
    assert_eq!(
        workspace
            .scim_authenticate(second.expose())
            .await
            .unwrap_err()
            .status,
        401
    );
    let rotations = w
        .audit
        .events()
        .into_iter()
        .filter(|e| e.kind == AuditEventKind::ScimApiKeyRotated)
        .count();
    assert_eq!(rotations, 3, "created, rotated, revoked");
    // A wrong secret under a real key id, and garbage, are refused alike.
    let forged = format!("{}x", &second.expose()[..second.expose().len() - 1]);
    assert_eq!(
        workspace
            .scim_authenticate(&forged)
            .await
            .unwrap_err()
            .status,
        401
    );
    assert_eq!(
        workspace
            .scim_authenticate("Bearer nonsense")
            .await
            .unwrap_err()
            .status,
        401
    );
}

#[tokio::test]
async fn a_key_is_rate_limited_and_told_when_to_retry() {
    let w = World::with(std::sync::Arc::new(zt_storage::MemoryStore::new()), |c| {
        c.scim_rate = zt_chat::ScimRate {
            per_second: 1.0,
            burst: 2.0,
        };
    })
    .await;
    let (workspace, _) = w
        .chat
        .bootstrap("Rate", new_user("owner"), &password())
        .await
        .unwrap();
    let owner = login(&workspace, "owner").await;
    let (secret, _) = workspace.create_scim_key(&owner, "idp").await.unwrap();
    workspace.scim_authenticate(secret.expose()).await.unwrap();
    workspace.scim_authenticate(secret.expose()).await.unwrap();
    let refused = workspace
        .scim_authenticate(secret.expose())
        .await
        .unwrap_err();
    assert_eq!(refused.status, 429);
    assert!(refused.retry_after.is_some_and(|s| s >= 1));
    assert!(w.audit.kinds().contains(&AuditEventKind::RateLimited));
    w.clock.advance(Duration::from_secs(2));
    workspace.scim_authenticate(secret.expose()).await.unwrap();
}

#[tokio::test]
async fn versions_strangers_and_bad_input() {
    let (w, workspace, owner) = setup().await;
    let s = scim(&workspace, &owner).await;
    let r = s
        .call(
            ScimMethod::Post,
            "/Users",
            Some(json!({ "userName": "erin" })),
        )
        .await;
    let uid = id(r.body.as_ref().unwrap());
    let tag = r.etag.clone().unwrap();
    let change = |name: &str| json!({ "userName": "erin", "displayName": name });
    // A stale If-Match is refused with 412; the current one is taken.
    let ok = s
        .call_with(
            ScimMethod::Put,
            &format!("/Users/{uid}"),
            &[],
            Some(change("Erin")),
            Some(&tag),
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_ne!(ok.etag.as_deref(), Some(tag.as_str()));
    let stale = s
        .call_with(
            ScimMethod::Put,
            &format!("/Users/{uid}"),
            &[],
            Some(change("Old")),
            Some(&tag),
        )
        .await;
    assert_eq!(stale.status, 412);

    // Another workspace's key finds nothing here, and changes nothing there.
    let (other, _) = w
        .chat
        .bootstrap("Other", new_user("o"), &password())
        .await
        .unwrap();
    let o = login(&other, "o").await;
    let stranger = scim(&other, &o).await;
    stranger
        .ok(404, ScimMethod::Get, &format!("/Users/{uid}"), None)
        .await;
    stranger
        .ok(404, ScimMethod::Delete, &format!("/Users/{uid}"), None)
        .await;
    assert!(
        stranger
            .find("/Users", r#"userName eq "erin""#)
            .await
            .is_empty()
    );
    let (key_here, _) = workspace.create_scim_key(&owner, "here").await.unwrap();
    assert_eq!(
        other
            .scim_authenticate(key_here.expose())
            .await
            .unwrap_err()
            .status,
        401
    );

    // Taken names, control characters, look-alike routes, and hostile filters.
    let taken = s
        .call(
            ScimMethod::Post,
            "/Users",
            Some(json!({ "userName": "ERIN" })),
        )
        .await;
    assert_eq!(taken.status, 409);
    assert_eq!(taken.body.unwrap()["scimType"], "uniqueness");
    let bell = s
        .call(
            ScimMethod::Post,
            "/Users",
            Some(json!({ "userName": "x", "displayName": "a\u{7}b" })),
        )
        .await;
    assert_eq!(bell.status, 400);
    let deep = format!("{}userName pr{}", "(".repeat(40), ")".repeat(40));
    let r = s
        .call_with(ScimMethod::Get, "/Users", &[("filter", &deep)], None, None)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body.unwrap()["scimType"], "invalidFilter");
    let r = s.call(ScimMethod::Post, "/Users", None).await;
    assert_eq!(r.body.unwrap()["scimType"], "invalidSyntax");
    s.ok(404, ScimMethod::Get, "/Users/not-an-id", None).await;
    s.ok(404, ScimMethod::Get, "/Nothing", None).await;
    s.ok(405, ScimMethod::Delete, "/Schemas", None).await;
    let members = json!({ "displayName": "g", "members": [{ "value": o.user().to_string() }] });
    let r = s.call(ScimMethod::Post, "/Groups", Some(members)).await;
    assert_eq!(r.status, 400, "another workspace's user is no member here");
    let _ = w.clock.now();
}

#[tokio::test]
async fn what_an_administrator_deletes_is_gone_for_scim_and_its_names_free() {
    let (_w, workspace, owner) = setup().await;
    let s = scim(&workspace, &owner).await;
    let user = s
        .ok(
            201,
            ScimMethod::Post,
            "/Users",
            Some(json!({ "userName": "gone@x.test", "externalId": "e-1" })),
        )
        .await;
    let group = s
        .ok(
            201,
            ScimMethod::Post,
            "/Groups",
            Some(json!({ "displayName": "Old Team", "externalId": "g-1" })),
        )
        .await;
    workspace
        .delete_user(&owner, id(&user).parse().unwrap())
        .await
        .unwrap();
    workspace
        .delete_group(&owner, id(&group).parse().unwrap())
        .await
        .unwrap();
    s.ok(404, ScimMethod::Get, &format!("/Users/{}", id(&user)), None)
        .await;
    s.ok(
        404,
        ScimMethod::Get,
        &format!("/Groups/{}", id(&group)),
        None,
    )
    .await;
    assert!(s.find("/Users", r#"externalId eq "e-1""#).await.is_empty());
    assert!(s.find("/Groups", "displayName pr").await.is_empty());
    // The provider may push them again.
    s.ok(
        201,
        ScimMethod::Post,
        "/Users",
        Some(json!({ "userName": "gone@x.test", "externalId": "e-1" })),
    )
    .await;
    s.ok(
        201,
        ScimMethod::Post,
        "/Groups",
        Some(json!({ "displayName": "Old Team", "externalId": "g-1" })),
    )
    .await;
}

#[tokio::test]
async fn an_initial_push_of_ten_thousand_users_is_paced_not_failed() {
    // The default rate, and a provider that honours Retry-After: a lookup and a create for each
    // of 10,000 users all get through, in about (20,000 - burst) / rate seconds of waiting.
    let (w, workspace, owner) = setup().await;
    let (secret, _) = workspace.create_scim_key(&owner, "push").await.unwrap();
    let rate = zt_chat::ScimRate::default();
    let started = w.clock.now();
    let (mut admitted, mut refusals) = (0u32, 0u32);
    while admitted < 20_000 {
        match workspace.scim_authenticate(secret.expose()).await {
            Ok(_) => admitted += 1,
            Err(e) => {
                assert_eq!(e.status, 429, "refused otherwise: {e:?}");
                refusals += 1;
                w.clock.advance(Duration::from_secs(e.retry_after.unwrap()));
            }
        }
    }
    let waited = w
        .clock
        .now()
        .saturating_duration_since(started)
        .as_secs_f64();
    let expected = (20_000.0 - rate.burst) / rate.per_second;
    assert!(
        waited >= expected * 0.9 && waited <= expected * 1.2,
        "{waited} s for {expected} s"
    );
    assert!(refusals > 0 && refusals < 200, "{refusals} refusals");
    // Only the first refusal of each minute is on record.
    let recorded = w
        .audit
        .events()
        .into_iter()
        .filter(|e| e.kind == AuditEventKind::RateLimited)
        .count();
    assert!(recorded <= 3, "{recorded} rate.limited events");
}

#[tokio::test]
async fn scim_memberships_flow_into_linked_channels() {
    let (_w, workspace, owner) = setup().await;
    let s = scim(&workspace, &owner).await;
    let user = s
        .ok(
            201,
            ScimMethod::Post,
            "/Users",
            Some(json!({ "userName": "finn" })),
        )
        .await;
    let uid: UserId = id(&user).parse().unwrap();
    workspace
        .reset_password(&owner, uid, &password())
        .await
        .unwrap();
    let finn = login(&workspace, "finn").await;
    let group = s
        .ok(
            201,
            ScimMethod::Post,
            "/Groups",
            Some(json!({ "displayName": "ops" })),
        )
        .await;
    let gid: GroupId = id(&group).parse().unwrap();
    let room = workspace
        .create_channel(&owner, "ops-room", zt_authz::ChannelVisibility::Private, "")
        .await
        .unwrap();
    workspace
        .link_channel(&owner, gid, room.id, true)
        .await
        .unwrap();
    assert!(
        workspace
            .post(&finn, room.id, "before", None, &[])
            .await
            .is_err()
    );
    let add = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "add", "path": "members", "value": [{ "value": uid.to_string() }] }]
    });
    s.ok(200, ScimMethod::Patch, &format!("/Groups/{gid}"), Some(add))
        .await;
    workspace
        .post(&finn, room.id, "in through SCIM", None, &[])
        .await
        .unwrap();
    let remove = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "remove", "path": format!("members[value eq \"{uid}\"]") }]
    });
    s.ok(
        200,
        ScimMethod::Patch,
        &format!("/Groups/{gid}"),
        Some(remove),
    )
    .await;
    assert!(
        workspace
            .post(&finn, room.id, "after", None, &[])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn removing_active_withdraws_the_clients_deactivation_but_not_an_administrators() {
    let (_w, workspace, owner) = setup().await;
    let s = scim(&workspace, &owner).await;
    let patch = |op: &str, value: Option<Value>| {
        let mut operation = json!({ "op": op, "path": "active" });
        if let Some(value) = value {
            operation["value"] = value;
        }
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [operation]
        })
    };
    // The client set `active: false`, then removes the attribute (what scim2-tester's
    // check_remove_attribute does): the attribute is gone and the user is active again.
    let user = s
        .ok(
            201,
            ScimMethod::Post,
            "/Users",
            Some(json!({ "userName": "erin" })),
        )
        .await;
    let path = format!("/Users/{}", id(&user));
    let off = s
        .ok(
            200,
            ScimMethod::Patch,
            &path,
            Some(patch("add", Some(json!(false)))),
        )
        .await;
    assert_eq!(off["active"], false, "{off}");
    let removed = s
        .ok(200, ScimMethod::Patch, &path, Some(patch("remove", None)))
        .await;
    assert!(removed.get("active").is_none(), "{removed}");
    let uid: UserId = id(&user).parse().unwrap();
    workspace
        .reset_password(&owner, uid, &password())
        .await
        .unwrap();
    workspace.login("erin", &password(), None).await.unwrap();

    // An administrator's deactivation of a user the client never gave `active` is not the
    // client's to withdraw: removing the attribute leaves the user deactivated.
    let other = s
        .ok(
            201,
            ScimMethod::Post,
            "/Users",
            Some(json!({ "userName": "finn" })),
        )
        .await;
    let finn: UserId = id(&other).parse().unwrap();
    workspace.deactivate_user(&owner, finn).await.unwrap();
    let after = s
        .ok(
            200,
            ScimMethod::Patch,
            &format!("/Users/{finn}"),
            Some(patch("remove", None)),
        )
        .await;
    assert_eq!(after["active"], false, "{after}");
}
