//! The escalation analysis: it finds and names the paths a weaker rule set would open, finds
//! none under the real guardrails, and refuses a deployment-made owner.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

use std::sync::Arc;

use zt_authz::analysis::escalation_paths;
use zt_authz::guard;
use zt_authz::{
    Action, Authorizer, Authz, Cascades, Change, Changer, Decision, Error, Model, Permission,
    PermissionSet, Resource, Role, RoleScope, Scope, SystemRole,
};
use zt_core::identity::TenantContext;
use zt_core::{InProcessBus, ManualClock, Principal, RoleId, TenantId, Timestamp, UserId};
use zt_storage::MemoryStore;

const TENANT: TenantId = TenantId::from_bytes([3; 16]);
const OWNER: UserId = UserId::from_bytes([1; 16]);
const BOB: UserId = UserId::from_bytes([2; 16]);
const KEEPER: RoleId = RoleId::from_bytes([0x81; 16]);

/// A tenant with an owner and Bob, who holds a custom role with manage_roles and manage_users.
fn model() -> Model {
    let mut model = Model::new(TENANT);
    model
        .put_role(Role {
            id: KEEPER,
            name: "keeper".into(),
            scope: RoleScope::Tenant,
            permissions: PermissionSet::from([Permission::ManageRoles, Permission::ManageUsers]),
            system: None,
        })
        .unwrap();
    model
        .set_tenant_roles(OWNER, [SystemRole::Owner.id()].into())
        .unwrap();
    model
        .set_tenant_roles(BOB, [SystemRole::Member.id(), KEEPER].into())
        .unwrap();
    model
}

/// A weaker rule set: assigning needs manage_roles and nothing else, and so does widening a
/// role.
fn lax(
    authz: &Authorizer,
    model: &Model,
    actor: Principal,
    change: &Change,
) -> Result<(), Box<Decision>> {
    match change {
        Change::Grant { .. } | Change::UpdateRole { .. } => {
            let d = authz.authorize(actor, Action::Do(Permission::ManageRoles), Resource::Tenant);
            if d.allowed { Ok(()) } else { Err(Box::new(d)) }
        }
        _ => guard::check(authz, model, actor, change),
    }
}

#[test]
fn the_paths_a_weaker_rule_set_opens_are_found_and_named() {
    let model = model();
    let system = Changer::System("test".into());
    let paths = escalation_paths(&model, &model, &system, &[BOB], Cascades::standard(), lax);
    let text: Vec<String> = paths.iter().map(ToString::to_string).collect();
    // A path to owner without an owner.
    assert!(
        text.iter().any(|t| t.contains("may grant itself owner")),
        "{text:#?}"
    );
    // A role that can grant itself more: Bob widens his own role.
    let widen = paths
        .iter()
        .find(|p| {
            p.steps
                .iter()
                .any(|s| s.starts_with("may add view_audit_logs"))
        })
        .unwrap_or_else(|| panic!("{text:#?}"));
    assert_eq!(widen.user, BOB);
    assert_eq!(widen.steps[0], "holds keeper");
    assert!(widen.gains.contains(Permission::ViewAuditLogs));
    // Or grants himself the auditor role.
    assert!(
        text.iter().any(|t| t.contains("may grant itself auditor")),
        "{text:#?}"
    );
}

#[test]
fn the_real_guardrails_leave_no_path() {
    let model = model();
    let system = Changer::System("test".into());
    let paths = escalation_paths(
        &model,
        &model,
        &system,
        &[OWNER, BOB],
        Cascades::standard(),
        guard::check,
    );
    assert!(paths.is_empty(), "{paths:#?}");
}

#[tokio::test]
async fn the_deployment_makes_the_first_owner_and_no_other() {
    let ctx = TenantContext {
        store: Arc::new(MemoryStore::new()),
        tenant: TENANT,
        clock: Arc::new(ManualClock::new(Timestamp::from_unix_millis(0))),
        audit: Arc::new(zt_core::testing::NullSink),
        bus: Arc::new(InProcessBus::new(8)),
    };
    let authz = Authz::open(ctx).await.unwrap();
    let scim = Changer::System("scim".into());
    let owner = |user| Change::Grant {
        user,
        role: SystemRole::Owner.id(),
        at: Scope::Tenant,
    };
    // Setting the tenant up: the first owner.
    authz.apply(&scim, owner(OWNER)).await.unwrap();
    // After that, an identity provider cannot make owners.
    let err = authz.apply(&scim, owner(BOB)).await.unwrap_err();
    let Error::Escalation(path) = err else {
        panic!("{err:?}")
    };
    assert!(path.contains("without an owner"), "{path}");
    // Admins it may (role managers are not owners); owners still make owners.
    authz
        .apply(
            &scim,
            Change::Grant {
                user: BOB,
                role: SystemRole::Admin.id(),
                at: Scope::Tenant,
            },
        )
        .await
        .unwrap();
    authz
        .apply(
            &Changer::Principal(Principal {
                tenant: TENANT,
                user: OWNER,
            }),
            owner(BOB),
        )
        .await
        .unwrap();
}
