//! Legal holds on content (`manage_privacy_and_data`): a hold on a **custodian** (a user) keeps
//! everything that user wrote, a hold on a **channel** keeps everything in it, and a hold on the
//! **audit logs** keeps both of the workspace's logs from pruning. Each hold has a reason, an
//! owner (who placed it) and a start time, and is listed in the privacy and data area.
//!
//! What a hold keeps survives retention ([`crate::retention`]), including the edit history and
//! the text of messages deleted while it stands (a deletion moves the text to the history, which
//! only retention removes); a channel whose content is held cannot be deleted. Placing and
//! releasing are recorded (`legal_hold.placed`, `legal_hold.released`) before they apply.
//!
//! Releasing takes two people: one asks, another approves ([`crate::approvals`]).
//!
//! Every placement and release also moves the **holds epoch**, a record every destructive job
//! requires at the version it read in the same commit as its deletions: a hold placed while a
//! retention batch is being prepared makes that batch's commit fail, and the batch is prepared
//! again under the new hold. No content a hold covers is removed, however the two interleave.

use serde::{Deserialize, Serialize};
use zt_core::{AuditEventKind, ChannelId, HoldId, Timestamp, UserId};
use zt_storage::{Batch, KeyRange, KvStoreExt as _, ScanOptions, codec};

use crate::admin::AdminArea;
use crate::error::{Error, Result};
use crate::workspace::{Caller, Workspace};

/// The longest reason a hold may give, in characters.
pub const MAX_HOLD_REASON: usize = 500;

/// The record every placement and release rewrites (see the module's docs).
const EPOCH_KEY: &[u8] = b"epoch";
/// The prefix of hold records, by hold id.
const HOLD_PREFIX: &[u8] = b"h/";

/// What a hold keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldScope {
    /// Everything the user wrote: messages (with their history, also once deleted) and files.
    Custodian(UserId),
    /// Everything in the channel.
    Channel(ChannelId),
    /// Both audit logs of the workspace, which cannot be pruned while it stands.
    AuditLogs,
}

impl HoldScope {
    /// The scope's kind, as audit records name it.
    pub fn kind(self) -> &'static str {
        match self {
            HoldScope::Custodian(_) => "custodian",
            HoldScope::Channel(_) => "channel",
            HoldScope::AuditLogs => "audit_logs",
        }
    }

    fn target(self) -> String {
        match self {
            HoldScope::Custodian(user) => user.to_string(),
            HoldScope::Channel(channel) => channel.to_string(),
            HoldScope::AuditLogs => "audit_logs".to_owned(),
        }
    }
}

/// A legal hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    /// Its id.
    pub id: HoldId,
    /// What it keeps.
    pub scope: HoldScope,
    /// Why (a matter, a case number).
    pub reason: String,
    /// Who placed it.
    pub owner: UserId,
    /// When it began.
    pub started: Timestamp,
}

/// The holds in force, as a destructive job reads them: which hold keeps a piece of content, and
/// the epoch version its commits require.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeldSet {
    channels: std::collections::HashMap<ChannelId, HoldId>,
    custodians: std::collections::HashMap<UserId, HoldId>,
    /// The version of the epoch record as read (0: never written).
    pub(crate) epoch: u64,
}

impl HeldSet {
    /// The hold that keeps content in `channel` by `author`, if any (the channel's first).
    pub(crate) fn keeping(&self, channel: ChannelId, author: UserId) -> Option<HoldId> {
        self.channels
            .get(&channel)
            .or_else(|| self.custodians.get(&author))
            .copied()
    }

    /// The hold on the channel itself, if any.
    pub(crate) fn on_channel(&self, channel: ChannelId) -> Option<HoldId> {
        self.channels.get(&channel).copied()
    }

    /// Whether any custodian is held.
    pub(crate) fn has_custodians(&self) -> bool {
        !self.custodians.is_empty()
    }

    /// Makes `batch` require the epoch as read: it fails if a hold was placed or released since.
    pub(crate) fn guard(&self, workspace: &Workspace, batch: &mut Batch) {
        if self.epoch == 0 {
            batch.require_absent(&workspace.ns.holds, EPOCH_KEY);
        } else {
            batch.require_version(&workspace.ns.holds, EPOCH_KEY, self.epoch);
        }
    }
}

fn hold_key(id: HoldId) -> Vec<u8> {
    let mut key = HOLD_PREFIX.to_vec();
    key.extend_from_slice(&id.to_bytes());
    key
}

fn check_reason(reason: &str) -> Result<String> {
    let reason = reason.trim();
    if reason.is_empty()
        || reason.chars().count() > MAX_HOLD_REASON
        || reason
            .chars()
            .any(|c| c.is_control() || crate::names::is_bidi_control(c))
    {
        return Err(Error::invalid(
            "reason",
            format!(
                "1 to {MAX_HOLD_REASON} characters, no control characters or bidirectional \
                 overrides"
            ),
        ));
    }
    Ok(reason.to_owned())
}

impl Workspace {
    /// Every hold in force, oldest first, and the epoch they were read at.
    pub(crate) async fn read_holds(&self) -> Result<(Vec<LegalHold>, u64)> {
        // The epoch first: a hold placed after this read moves it, so a commit guarded by it
        // fails rather than act on a list that misses the hold.
        let epoch = self
            .ctx
            .store
            .get(&self.ns.holds, EPOCH_KEY)
            .await?
            .map_or(0, |e| e.version);
        let mut holds: Vec<LegalHold> = self.holds_records(HOLD_PREFIX).await?;
        holds.sort_by_key(|h| (h.started, h.id));
        Ok((holds, epoch))
    }

    /// Every record of the holds namespace under `prefix` (holds, or approval requests),
    /// decoded.
    pub(crate) async fn holds_records<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<T>> {
        use futures_util::TryStreamExt as _;
        let mut rows = self.ctx.store.scan_stream(
            &self.ns.holds,
            KeyRange::prefix(prefix),
            ScanOptions::default(),
        );
        let mut found = Vec::new();
        while let Some(entry) = rows.try_next().await? {
            found.push(codec::decode::<T>(&entry.value)?);
        }
        Ok(found)
    }

    /// The hold `id`, with its version.
    pub(crate) async fn legal_hold(&self, id: HoldId) -> Result<(LegalHold, u64)> {
        self.ctx
            .store
            .get_decoded::<LegalHold>(&self.ns.holds, &hold_key(id))
            .await?
            .ok_or_else(|| Error::NotFound("legal hold".into()))
    }

    /// The holds in force as a destructive job uses them.
    pub(crate) async fn held_set(&self) -> Result<HeldSet> {
        let (holds, epoch) = self.read_holds().await?;
        let mut set = HeldSet {
            epoch,
            ..HeldSet::default()
        };
        for hold in holds {
            match hold.scope {
                HoldScope::Channel(c) => {
                    set.channels.entry(c).or_insert(hold.id);
                }
                HoldScope::Custodian(u) => {
                    set.custodians.entry(u).or_insert(hold.id);
                }
                HoldScope::AuditLogs => {}
            }
        }
        Ok(set)
    }

    /// Every legal hold in force, oldest first (`manage_privacy_and_data`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the store's errors.
    pub async fn legal_holds(&self, caller: &Caller) -> Result<Vec<LegalHold>> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        Ok(self.read_holds().await?.0)
    }

    /// Places a legal hold (`manage_privacy_and_data`), recorded as `legal_hold.placed` (with
    /// the hold's id, scope and reason) before it applies. A hold on the audit logs also sets the
    /// logs' own hold, which refuses pruning.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::InvalidInput`] for the reason; [`Error::NotFound`] for a
    /// custodian or channel that does not exist; the store's errors.
    pub async fn place_legal_hold(
        &self,
        caller: &Caller,
        scope: HoldScope,
        reason: &str,
    ) -> Result<LegalHold> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        let reason = check_reason(reason)?;
        match scope {
            HoldScope::Custodian(user) => {
                if self.users.get(user).await?.is_none() {
                    return Err(Error::NotFound("user".into()));
                }
            }
            HoldScope::Channel(channel) => self.ensure_channel(channel)?,
            HoldScope::AuditLogs => {}
        }
        let hold = LegalHold {
            id: HoldId::generate(&*self.ctx.clock),
            scope,
            reason,
            owner: caller.user(),
            started: self.ctx.clock.now(),
        };
        let event = self
            .event(AuditEventKind::LegalHoldPlaced, caller)
            .target(hold.id.to_string())
            .detail("scope", scope.kind())?
            .detail("held", scope.target())?
            .detail("reason", hold.reason.clone())?;
        self.ctx.audit.append(event).await?;
        let mut batch = Batch::new();
        batch.put_if_absent(&self.ns.holds, &hold_key(hold.id), &codec::encode(&hold)?);
        batch.put(&self.ns.holds, EPOCH_KEY, &hold.id.to_bytes());
        self.ctx.store.commit(batch).await?;
        if scope == HoldScope::AuditLogs {
            self.set_logs_hold(caller, true).await?;
        }
        Ok(hold)
    }

    /// Releases hold `id` on an approval ([`crate::approvals`]: one asked, `approver` approved),
    /// recorded as `legal_hold.released` (with both) before it applies, in one commit with
    /// `extra` (the request's removal); what it kept is again subject to retention. Releasing the
    /// last hold on the audit logs clears the logs' own hold.
    pub(crate) async fn release_legal_hold_approved(
        &self,
        approver: &Caller,
        approval: &crate::approvals::Approval,
        id: HoldId,
        extra: Batch,
    ) -> Result<LegalHold> {
        let (hold, version) = self.legal_hold(id).await?;
        let event = self
            .event(AuditEventKind::LegalHoldReleased, approver)
            .target(id.to_string())
            .detail("scope", hold.scope.kind())?
            .detail("held", hold.scope.target())?
            .detail("placed_by", hold.owner.to_string())?
            .detail("requested_by", approval.requested_by.to_string())?
            .detail("approval", approval.id.to_string())?;
        self.ctx.audit.append(event).await?;
        let mut batch = extra;
        batch.require_version(&self.ns.holds, &hold_key(id), version);
        batch.delete(&self.ns.holds, &hold_key(id));
        batch.put(&self.ns.holds, EPOCH_KEY, &id.to_bytes());
        self.ctx.store.commit(batch).await?;
        if hold.scope == HoldScope::AuditLogs {
            let others = self
                .read_holds()
                .await?
                .0
                .iter()
                .any(|h| h.scope == HoldScope::AuditLogs);
            if !others {
                self.set_logs_hold(approver, false).await?;
            }
        }
        Ok(hold)
    }

    /// [`Error::NotFound`] unless `channel` exists in the workspace (for an administrator's
    /// setting about a channel, not a member's access to it).
    pub(crate) fn ensure_channel(&self, channel: ChannelId) -> Result<()> {
        let exists = self
            .authz
            .authorizer()
            .with_model(|m| m.channel(channel).is_some());
        if exists {
            Ok(())
        } else {
            Err(Error::NotFound("channel".into()))
        }
    }

    /// Sets or clears the audit logs' own hold (which the `AuditLogs` port records).
    async fn set_logs_hold(&self, caller: &Caller, on: bool) -> Result<()> {
        let actor = zt_core::Actor::User(caller.user());
        Ok(self
            .audit_logs
            .set_legal_hold(&actor, Some(self.ctx.tenant), on)
            .await?)
    }

    /// Refuses with [`Error::Conflict`] when a hold keeps content of `channel`: a hold on the
    /// channel, or on a custodian who wrote in it. Reads the channel's messages only when a
    /// custodian is held. Returns the epoch the answer holds at.
    pub(crate) async fn ensure_channel_unheld(&self, channel: ChannelId) -> Result<HeldSet> {
        let held = self.held_set().await?;
        let refuse = || Error::Conflict("content of the channel is under a legal hold".into());
        if held.on_channel(channel).is_some() {
            return Err(refuse());
        }
        if held.has_custodians() {
            use futures_util::TryStreamExt as _;
            let mut messages = self.ctx.store.scan_stream(
                &self.ns.messages,
                KeyRange::prefix(&channel.to_bytes()),
                ScanOptions::default(),
            );
            while let Some(entry) = messages.try_next().await? {
                let message = codec::decode::<crate::Message>(&entry.value)?;
                if held.keeping(channel, message.author).is_some() {
                    return Err(refuse());
                }
            }
            for file in self.channel_files(channel).await? {
                if held.keeping(channel, file.uploader).is_some() {
                    return Err(refuse());
                }
            }
        }
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_and_plain() {
        assert_eq!(
            check_reason("  Matter 2026-114 ").unwrap(),
            "Matter 2026-114"
        );
        for bad in [
            String::new(),
            "   ".to_owned(),
            "x".repeat(MAX_HOLD_REASON + 1),
            "case\u{1b}[2J".to_owned(),
            "case \u{202e}gnp.exe".to_owned(),
        ] {
            assert!(check_reason(&bad).is_err(), "{bad:?}");
        }
        assert!(check_reason(&"é".repeat(MAX_HOLD_REASON)).is_ok());
    }
}
