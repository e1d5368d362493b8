// The `authz_records` fuzz check, shared by the fuzz target and zt-authz's corpus replay.

/// Loads a tenant's authorization from arbitrary stored records and asks it questions: loading
/// may fail with a typed error, never panic, and whatever loads answers every question. The input
/// is a sequence of `selector (u8) ‖ length (u8) ‖ value`; the selector picks the namespace and
/// one of a few keys (ids, pairs of ids, and a damaged key).
fn check(data: &[u8]) {
    use zt_storage::{Batch, KvStore, MemoryStore, Namespace};

    const NAMESPACES: [&str; 9] = [
        "authz.roles",
        "authz.tenant_roles",
        "authz.channels",
        "authz.groups",
        "authz.channel_members",
        "authz.group_members",
        "authz.channel_roles",
        "authz.group_roles",
        "authz.meta",
    ];
    const ID_A: [u8; 16] = [0x11; 16];
    const ID_B: [u8; 16] = [0x22; 16];
    let pair = |a: [u8; 16], b: [u8; 16]| -> Vec<u8> { a.iter().chain(b.iter()).copied().collect() };
    let keys: [Vec<u8>; 5] = [
        ID_A.to_vec(),
        ID_B.to_vec(),
        pair(ID_A, ID_B),
        pair(ID_B, ID_A),
        b"version".to_vec(),
    ];
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    runtime.block_on(async {
        let store = MemoryStore::new();
        let mut batch = Batch::new();
        let mut rest = data;
        while let [selector, len, tail @ ..] = rest {
            let len = usize::from(*len).min(tail.len());
            let Ok(ns) = Namespace::new(NAMESPACES[usize::from(*selector) % NAMESPACES.len()]) else {
                return;
            };
            let key = &keys[usize::from(*selector / 16) % keys.len()];
            batch.put(&ns, key, &tail[..len]);
            rest = &tail[len..];
        }
        if batch.validate().is_err() || store.commit(batch).await.is_err() {
            return;
        }
        let tenant = zt_core::TenantId::from_bytes([7; 16]);
        let Ok(model) = zt_authz::records::load_model(&store, tenant).await else {
            return;
        };
        let authz = zt_authz::Authorizer::new(model.clone(), zt_authz::Cascades::standard());
        for user in [ID_A, ID_B] {
            let principal = zt_core::Principal {
                tenant,
                user: zt_core::UserId::from_bytes(user),
            };
            for resource in [
                zt_authz::Resource::Tenant,
                zt_authz::Resource::Channel(zt_core::ChannelId::from_bytes(ID_A)),
                zt_authz::Resource::Group(zt_core::GroupId::from_bytes(ID_B)),
                zt_authz::Resource::User(zt_core::UserId::from_bytes(ID_A)),
            ] {
                for action in [
                    zt_authz::Action::View,
                    zt_authz::Action::Mention,
                    zt_authz::Action::Do(zt_authz::Permission::ReadChannel),
                    zt_authz::Action::Do(zt_authz::Permission::ManageUsers),
                    zt_authz::Action::Do(zt_authz::Permission::ViewHiddenGroups),
                ] {
                    let fast = authz.authorize(principal, action, resource);
                    let slow = zt_authz::reference::authorize(
                        &model,
                        zt_authz::Cascades::standard(),
                        principal,
                        action,
                        resource,
                    );
                    assert_eq!(fast, slow, "the evaluators disagree on loaded records");
                }
            }
        }
    });
}
