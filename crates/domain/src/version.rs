//! The version state machine of 真正性 (JAHIS 09-001 §7.1.2–7.1.4).
//!
//! A record is a chain of versions. Only the newest version (the head) can move: a draft is
//! edited only by whoever entered it; a proxy entry (代行入力, enterer ≠ author) waits for its
//! author's approval; a finalised version is never changed again, and a correction or an
//! "entered in error" mark is a new version naming its predecessor and a reason.

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::permission::{Action, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Being written; not yet a legal record.
    Draft,
    /// A proxy entry submitted for its author's approval.
    PendingApproval,
    /// Finalised (確定): immutable from now on.
    Finalised,
}

impl VersionState {
    pub const ALL: [VersionState; 3] = [Self::Draft, Self::PendingApproval, Self::Finalised];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingApproval => "pending_approval",
            Self::Finalised => "finalised",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionKind {
    Original,
    Amendment,
    EnteredInError,
}

impl VersionKind {
    pub const ALL: [VersionKind; 3] = [Self::Original, Self::Amendment, Self::EnteredInError];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Amendment => "amendment",
            Self::EnteredInError => "entered_in_error",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What the rules need to know of the record's newest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub state: VersionState,
    pub kind: VersionKind,
    pub author_id: i64,
    pub enterer_id: i64,
}

pub struct Actor<'a> {
    pub id: i64,
    pub role: &'a Role,
}

#[derive(Clone, Copy)]
pub enum Command<'a> {
    Create {
        author_id: i64,
        author_role: &'a Role,
    },
    EditDraft,
    Submit,
    Finalise,
    Approve,
    Reject {
        reason: &'a str,
    },
    Amend {
        author_id: i64,
        author_role: &'a Role,
        reason: &'a str,
    },
    MarkEnteredInError {
        reason: &'a str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Append a new version.
    NewVersion {
        kind: VersionKind,
        state: VersionState,
        author_id: i64,
        enterer_id: i64,
    },
    /// Change the head's state (its content only while it stays a draft).
    SetHeadState(VersionState),
}

pub const MAX_REASON_CHARS: usize = 1000;

fn reason_ok(reason: &str) -> Result<(), DomainError> {
    let n = reason.trim().chars().count();
    if n == 0 {
        return Err(DomainError::Invalid("理由を入力してください".into()));
    }
    if n > MAX_REASON_CHARS {
        return Err(DomainError::Invalid(format!(
            "理由は{MAX_REASON_CHARS}文字以内にしてください"
        )));
    }
    Ok(())
}

fn state_err(msg: &str) -> DomainError {
    DomainError::InvalidState(msg.into())
}

/// Decides whether `actor` may apply `cmd` to a record of `kind` whose head is `head`.
pub fn decide(
    actor: &Actor<'_>,
    kind: &str,
    head: Option<&Head>,
    cmd: Command<'_>,
) -> Result<Effect, DomainError> {
    let role = actor.role;
    match (cmd, head) {
        (
            Command::Create {
                author_id,
                author_role,
            },
            None,
        ) => {
            role.require(Action::Write, Some(kind))?;
            if author_id != actor.id && !author_role.allows(Action::Finalise, Some(kind)) {
                return Err(DomainError::Invalid(
                    "代行入力の責任者には、この記録を確定できる職種の利用者を指定してください"
                        .into(),
                ));
            }
            Ok(Effect::NewVersion {
                kind: VersionKind::Original,
                state: VersionState::Draft,
                author_id,
                enterer_id: actor.id,
            })
        }
        (Command::Create { .. }, Some(_)) => Err(state_err("この記録は既に存在します")),
        (_, None) => Err(DomainError::NotFound("記録".into())),
        (Command::EditDraft, Some(h)) => {
            if h.state != VersionState::Draft {
                return Err(state_err(
                    "下書き以外は編集できません。確定済みの記録は修正として新しい版を作成してください",
                ));
            }
            if h.enterer_id != actor.id {
                return Err(DomainError::Forbidden(
                    "下書きは入力者本人だけが編集できます".into(),
                ));
            }
            role.require(Action::Write, Some(kind))?;
            Ok(Effect::SetHeadState(VersionState::Draft))
        }
        (Command::Submit, Some(h)) => {
            if h.state != VersionState::Draft {
                return Err(state_err("下書きではないため承認依頼できません"));
            }
            if h.enterer_id != actor.id {
                return Err(DomainError::Forbidden(
                    "承認依頼は入力者本人だけができます".into(),
                ));
            }
            if h.author_id == actor.id {
                return Err(state_err(
                    "自分が責任者の記録は承認依頼ではなく確定してください",
                ));
            }
            role.require(Action::Write, Some(kind))?;
            Ok(Effect::SetHeadState(VersionState::PendingApproval))
        }
        (Command::Finalise, Some(h)) => {
            if h.state == VersionState::Finalised {
                return Err(state_err("既に確定されています"));
            }
            if h.state == VersionState::PendingApproval {
                return Err(state_err("代行入力は責任者の承認で確定します"));
            }
            if h.author_id != actor.id || h.enterer_id != actor.id {
                return Err(DomainError::Forbidden(
                    "確定できるのは自ら記載した責任者本人だけです（代行入力は承認依頼してください）".into(),
                ));
            }
            role.require(Action::Finalise, Some(kind))?;
            Ok(Effect::SetHeadState(VersionState::Finalised))
        }
        (Command::Approve | Command::Reject { .. }, Some(h)) => {
            if h.state != VersionState::PendingApproval {
                return Err(state_err("承認待ちの代行入力ではありません"));
            }
            if h.author_id != actor.id {
                return Err(DomainError::Forbidden(
                    "代行入力を承認・差し戻しできるのは責任者本人だけです".into(),
                ));
            }
            role.require(Action::ApproveProxy, Some(kind))?;
            if let Command::Reject { reason } = cmd {
                reason_ok(reason)?;
                Ok(Effect::SetHeadState(VersionState::Draft))
            } else {
                role.require(Action::Finalise, Some(kind))?;
                Ok(Effect::SetHeadState(VersionState::Finalised))
            }
        }
        (
            Command::Amend {
                author_id,
                author_role,
                reason,
            },
            Some(h),
        ) => {
            if h.state != VersionState::Finalised {
                return Err(state_err(
                    "確定前の記録は修正ではなく下書きとして編集してください",
                ));
            }
            if h.kind == VersionKind::EnteredInError {
                return Err(state_err("誤記入とされた記録は修正できません"));
            }
            reason_ok(reason)?;
            role.require(Action::Write, Some(kind))?;
            let state = if author_id == actor.id {
                role.require(Action::Finalise, Some(kind))?;
                VersionState::Finalised
            } else {
                if !author_role.allows(Action::Finalise, Some(kind)) {
                    return Err(DomainError::Invalid(
                        "代行入力の責任者には、この記録を確定できる職種の利用者を指定してください"
                            .into(),
                    ));
                }
                VersionState::PendingApproval
            };
            Ok(Effect::NewVersion {
                kind: VersionKind::Amendment,
                state,
                author_id,
                enterer_id: actor.id,
            })
        }
        (Command::MarkEnteredInError { reason }, Some(h)) => {
            if h.state != VersionState::Finalised {
                return Err(state_err("確定前の記録は誤記入にできません"));
            }
            if h.kind == VersionKind::EnteredInError {
                return Err(state_err("既に誤記入とされています"));
            }
            reason_ok(reason)?;
            role.require(Action::Finalise, Some(kind))?;
            Ok(Effect::NewVersion {
                kind: VersionKind::EnteredInError,
                state: VersionState::Finalised,
                author_id: actor.id,
                enterer_id: actor.id,
            })
        }
    }
}

/// Drafts and pending proxy entries are not yet records: only their enterer and author see them.
pub fn version_visible_to(
    actor_id: i64,
    state: VersionState,
    author_id: i64,
    enterer_id: i64,
) -> bool {
    state == VersionState::Finalised || actor_id == author_id || actor_id == enterer_id
}

/// The status shown for a record, from its versions' (state, kind), oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Draft,
    PendingApproval,
    Finalised,
    Amended,
    EnteredInError,
}

impl RecordStatus {
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Draft => "下書き",
            Self::PendingApproval => "承認待ち",
            Self::Finalised => "確定",
            Self::Amended => "修正あり",
            Self::EnteredInError => "誤記入",
        }
    }
}

pub fn record_status(versions: &[(VersionState, VersionKind)]) -> Option<RecordStatus> {
    let &(state, kind) = versions.last()?;
    Some(match (state, kind) {
        (VersionState::Draft, _) => RecordStatus::Draft,
        (VersionState::PendingApproval, _) => RecordStatus::PendingApproval,
        (VersionState::Finalised, VersionKind::EnteredInError) => RecordStatus::EnteredInError,
        (VersionState::Finalised, _)
            if versions.iter().any(|(_, k)| *k == VersionKind::Amendment) =>
        {
            RecordStatus::Amended
        }
        (VersionState::Finalised, _) => RecordStatus::Finalised,
    })
}

#[cfg(test)]
mod tests;

/// What `actor` may do next with a record whose head is `head`, by asking [`decide`] itself,
/// so a user interface shows exactly the actions the rules allow.
pub fn available(actor: &Actor<'_>, kind: &str, head: &Head) -> Vec<&'static str> {
    let probe = "—";
    let cmds: [(&'static str, Command<'_>); 7] = [
        ("edit", Command::EditDraft),
        ("submit", Command::Submit),
        ("finalise", Command::Finalise),
        ("approve", Command::Approve),
        ("reject", Command::Reject { reason: probe }),
        (
            "amend",
            Command::Amend {
                author_id: actor.id,
                author_role: actor.role,
                reason: probe,
            },
        ),
        (
            "entered_in_error",
            Command::MarkEnteredInError { reason: probe },
        ),
    ];
    let mut out: Vec<&'static str> = cmds
        .into_iter()
        .filter(|(_, c)| decide(actor, kind, Some(head), *c).is_ok())
        .map(|(n, _)| n)
        .collect();
    // Someone who may write but not finalise can still correct a record on an author's behalf.
    if !out.contains(&"amend")
        && head.state == VersionState::Finalised
        && head.kind != VersionKind::EnteredInError
        && actor
            .role
            .allows(crate::permission::Action::Write, Some(kind))
    {
        out.push("amend");
    }
    out
}
