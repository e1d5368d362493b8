//! Permission cascades: one declarative table of "this power implies those", closed once when
//! the role graph is built and evaluated at run time. Stored roles hold only what was granted;
//! what a grant implies is never copied into them, so changing a rule changes every role.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::permission::{COUNT, Permission, PermissionSet, Tier};

/// One cascade rule: holding any of `when` implies every permission of `implies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The stable name, shown in decisions (`delete-channel`).
    pub name: &'static str,
    /// The permissions that trigger the rule (any of them).
    pub when: &'static [Permission],
    /// What they imply.
    pub implies: &'static [Permission],
    /// Why, for people reading a decision or these docs.
    pub why: &'static str,
}

use Permission as P;

/// The cascade table zt uses. Each row is documented by its `why`.
pub const RULES: &[Rule] = &[
    Rule {
        name: "admin-console",
        when: &[
            P::ManageUsers,
            P::ManageRoles,
            P::ManageAuthentication,
            P::ManageServerSettings,
            P::ManagePrivacyAndData,
            P::ManageBackups,
            P::ManageEncryption,
            P::ViewAuditLogs,
            P::ManageWebChat,
            P::ViewAnalytics,
            P::ManageUpdates,
            P::ManageChannelDirectory,
            P::ManageStorageData,
        ],
        implies: &[P::ViewAdminConsole],
        why: "every admin power is used through the admin console",
    },
    Rule {
        name: "user-directory",
        when: &[P::ManageUsers],
        implies: &[P::ViewMemberDirectory],
        why: "managing users needs the list of users",
    },
    Rule {
        name: "delete-channel",
        when: &[P::DeleteChannel],
        implies: &[P::ArchiveChannel, P::EditChannel, P::ManageSubscribers],
        why: "whoever may delete a channel may do anything less final to it",
    },
    Rule {
        name: "channel-roles",
        when: &[P::ManageChannelRoles],
        implies: &[P::ManageSubscribers],
        why: "whoever assigns channel roles may add and remove the members they assign them to",
    },
    Rule {
        name: "moderate-messages",
        when: &[P::DeleteAnyMessage],
        implies: &[P::DeleteOwnMessage],
        why: "deleting anyone's messages includes one's own",
    },
    Rule {
        name: "write-reads",
        when: &[
            P::PostMessage,
            P::EditOwnMessage,
            P::DeleteOwnMessage,
            P::DeleteAnyMessage,
        ],
        implies: &[P::ReadChannel],
        why: "writing in a channel one cannot read makes no sense",
    },
    Rule {
        name: "subgroups-are-members",
        when: &[P::ManageSubgroups],
        implies: &[P::ManageGroupMembers],
        why: "attaching a subgroup adds its members to the group",
    },
    Rule {
        name: "group-managers-see-it",
        when: &[
            P::ManageGroupMembers,
            P::ManageSubgroups,
            P::ManageLinkedChannels,
            P::ManageMentionRestrictions,
        ],
        implies: &[P::ViewHiddenGroups],
        why: "whoever manages a group sees it, hidden or not (in a group role: that group only)",
    },
];

/// The closed cascade graph: for each permission, everything it implies and by which rules.
#[derive(Debug, Clone)]
pub struct Cascades {
    rules: Vec<Rule>,
    closure: [PermissionSet; COUNT],
    /// `paths[p][q]`: the names of the rules leading from `p` to `q`, a shortest chain.
    paths: Vec<Vec<Vec<&'static str>>>,
}

impl Cascades {
    /// Closes `rules`.
    ///
    /// # Errors
    /// [`Error::CascadeCycle`] when a permission implies itself through other permissions
    /// (named in order); [`Error::InvalidInput`] when a rule crosses tiers upward from a
    /// channel or group power into tenant administration, or there are more than 255 rules.
    pub fn build(rules: &[Rule]) -> Result<Self> {
        if rules.len() > usize::from(u8::MAX) {
            return Err(Error::InvalidInput("at most 255 cascade rules".into()));
        }
        for rule in rules {
            let scoped = |p: &Permission| matches!(p.tier(), Tier::Channel | Tier::Group);
            if rule.when.iter().any(scoped) && rule.implies.iter().any(|p| !scoped(p)) {
                return Err(Error::InvalidInput(format!(
                    "cascade rule {} lets a channel or group power imply a tenant-wide one",
                    rule.name
                )));
            }
        }
        // Direct edges p -> (q, rule).
        let mut edges: Vec<Vec<(Permission, u8)>> = vec![Vec::new(); COUNT];
        for (index, rule) in rules.iter().enumerate() {
            let index = u8::try_from(index).unwrap_or(u8::MAX);
            for from in rule.when {
                for to in rule.implies {
                    edges[*from as usize].push((*to, index));
                }
            }
        }
        find_cycle(&edges)?;
        let mut closure = [PermissionSet::EMPTY; COUNT];
        let mut paths = vec![vec![Vec::new(); COUNT]; COUNT];
        for start in Permission::ALL {
            // Breadth first: the recorded path to each permission is a shortest one.
            let mut seen = PermissionSet::from([*start]);
            let mut queue = std::collections::VecDeque::from([*start]);
            while let Some(at) = queue.pop_front() {
                for (to, rule) in &edges[at as usize] {
                    if !seen.contains(*to) {
                        seen.insert(*to);
                        let mut path = paths[*start as usize][at as usize].clone();
                        path.push(rules[usize::from(*rule)].name);
                        paths[*start as usize][*to as usize] = path;
                        queue.push_back(*to);
                    }
                }
            }
            closure[*start as usize] = seen;
        }
        Ok(Cascades {
            rules: rules.to_vec(),
            closure,
            paths,
        })
    }

    /// The cascades of [`RULES`], closed once. Should the table ever fail to close (a unit test
    /// makes sure it does not), no permission implies another: fewer grants, never more.
    pub fn standard() -> &'static Cascades {
        static STANDARD: OnceLock<Cascades> = OnceLock::new();
        STANDARD.get_or_init(|| {
            Cascades::build(RULES).unwrap_or_else(|e| {
                tracing::error!(error = %e, "the cascade table does not close; cascades are off");
                Cascades::none()
            })
        })
    }

    /// No cascades at all.
    pub fn none() -> Self {
        let mut closure = [PermissionSet::EMPTY; COUNT];
        for p in Permission::ALL {
            closure[*p as usize] = PermissionSet::from([*p]);
        }
        Cascades {
            rules: Vec::new(),
            closure,
            paths: vec![vec![Vec::new(); COUNT]; COUNT],
        }
    }

    /// The rules, in table order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// `granted` and everything it implies.
    pub fn close(&self, granted: PermissionSet) -> PermissionSet {
        granted.iter().fold(PermissionSet::EMPTY, |acc, p| {
            acc.union(self.closure[p as usize])
        })
    }

    /// How `target` follows from `granted`: the granted permission it comes from and the names
    /// of the rules on the way (empty when it was granted itself). `None` when it does not
    /// follow.
    pub fn explain(
        &self,
        granted: PermissionSet,
        target: Permission,
    ) -> Option<(Permission, &[&'static str])> {
        if granted.contains(target) {
            return Some((target, &[]));
        }
        granted
            .iter()
            .filter(|p| self.closure[*p as usize].contains(target))
            .map(|p| (p, self.paths[p as usize][target as usize].as_slice()))
            .min_by_key(|(_, path)| path.len())
    }
}

/// Depth-first search for a cycle; the error names it in order.
fn find_cycle(edges: &[Vec<(Permission, u8)>]) -> Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        at: Permission,
        edges: &[Vec<(Permission, u8)>],
        marks: &mut [Mark],
        stack: &mut Vec<Permission>,
    ) -> Result<()> {
        marks[at as usize] = Mark::Open;
        stack.push(at);
        for (to, _) in &edges[at as usize] {
            match marks[*to as usize] {
                Mark::Open => {
                    let from = stack.iter().position(|p| p == to).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[from..].iter().map(|p| p.name()).collect();
                    cycle.push(to.name());
                    return Err(Error::CascadeCycle(cycle.join(" -> ")));
                }
                Mark::New => visit(*to, edges, marks, stack)?,
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[at as usize] = Mark::Done;
        Ok(())
    }
    let mut marks = vec![Mark::New; COUNT];
    for p in Permission::ALL {
        if marks[*p as usize] == Mark::New {
            visit(*p, edges, &mut marks, &mut Vec::new())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_closes_with_the_documented_cascades() {
        let c = Cascades::build(RULES).unwrap();
        let delete = c.close(PermissionSet::from([P::DeleteChannel]));
        for p in [
            P::ArchiveChannel,
            P::EditChannel,
            P::ManageSubscribers,
            P::DeleteChannel,
        ] {
            assert!(delete.contains(p), "{p}");
        }
        assert!(!delete.contains(P::ReadChannel));
        for p in PermissionSet::tier(Tier::Tenant).iter() {
            assert!(
                c.close(PermissionSet::from([p]))
                    .contains(P::ViewAdminConsole)
            );
        }
        // The rule that implied it is named.
        let (from, rules) = c
            .explain(
                PermissionSet::from([P::ManageSubgroups]),
                P::ViewHiddenGroups,
            )
            .unwrap();
        assert_eq!(from, P::ManageSubgroups);
        assert_eq!(rules, ["group-managers-see-it"]);
        let (_, rules) = c
            .explain(PermissionSet::from([P::DeleteAnyMessage]), P::ReadChannel)
            .unwrap();
        assert_eq!(rules, ["write-reads"]);
        assert!(
            c.explain(PermissionSet::from([P::ReadChannel]), P::PostMessage)
                .is_none()
        );
        assert_eq!(
            Cascades::standard().close(PermissionSet::from([P::DeleteChannel])),
            delete
        );
    }

    #[test]
    fn a_cycle_is_a_build_error_naming_it() {
        let rules = [
            Rule {
                name: "a",
                when: &[P::EditChannel],
                implies: &[P::ArchiveChannel],
                why: "",
            },
            Rule {
                name: "b",
                when: &[P::ArchiveChannel],
                implies: &[P::EditChannel],
                why: "",
            },
        ];
        let err = Cascades::build(&rules).unwrap_err();
        let Error::CascadeCycle(path) = err else {
            panic!("{err}")
        };
        assert!(
            path == "edit_channel -> archive_channel -> edit_channel"
                || path == "archive_channel -> edit_channel -> archive_channel",
            "{path}"
        );
    }

    #[test]
    fn scoped_powers_never_imply_tenant_powers() {
        let rules = [Rule {
            name: "bad",
            when: &[P::ManageChannelRoles],
            implies: &[P::ManageRoles],
            why: "",
        }];
        assert!(matches!(
            Cascades::build(&rules),
            Err(Error::InvalidInput(_))
        ));
    }
}
