use super::*;
use crate::permission::default_roles;

const ME: i64 = 1;
const OTHER: i64 = 2;

fn role(code: &str) -> Role {
    default_roles()
        .into_iter()
        .find(|r| r.code == code)
        .unwrap()
}

fn all_heads() -> Vec<Option<Head>> {
    let mut v = vec![None];
    for state in VersionState::ALL {
        for kind in VersionKind::ALL {
            for author_id in [ME, OTHER] {
                for enterer_id in [ME, OTHER] {
                    v.push(Some(Head {
                        state,
                        kind,
                        author_id,
                        enterer_id,
                    }));
                }
            }
        }
    }
    v
}

/// An independent statement of the rules, phrased as "what must hold", to compare against
/// `decide` over every combination of head, command, role, kind and author.
fn oracle(role: &Role, kind: &str, head: Option<&Head>, cmd: &Command<'_>) -> Option<Effect> {
    let can = |a| role.allows(a, Some(kind));
    match (head, *cmd) {
        (
            None,
            Command::Create {
                author_id,
                author_role,
            },
        ) => (can(Action::Write)
            && (author_id == ME || author_role.allows(Action::Finalise, Some(kind))))
        .then_some(Effect::NewVersion {
            kind: VersionKind::Original,
            state: VersionState::Draft,
            author_id,
            enterer_id: ME,
        }),
        (Some(h), Command::EditDraft) => {
            (h.state == VersionState::Draft && h.enterer_id == ME && can(Action::Write))
                .then_some(Effect::SetHeadState(VersionState::Draft))
        }
        (Some(h), Command::Submit) => (h.state == VersionState::Draft
            && h.enterer_id == ME
            && h.author_id != ME
            && can(Action::Write))
        .then_some(Effect::SetHeadState(VersionState::PendingApproval)),
        (Some(h), Command::Finalise) => (h.state == VersionState::Draft
            && h.enterer_id == ME
            && h.author_id == ME
            && can(Action::Finalise))
        .then_some(Effect::SetHeadState(VersionState::Finalised)),
        (Some(h), Command::Approve) => (h.state == VersionState::PendingApproval
            && h.author_id == ME
            && can(Action::ApproveProxy)
            && can(Action::Finalise))
        .then_some(Effect::SetHeadState(VersionState::Finalised)),
        (Some(h), Command::Reject { reason }) => (h.state == VersionState::PendingApproval
            && h.author_id == ME
            && can(Action::ApproveProxy)
            && !reason.trim().is_empty())
        .then_some(Effect::SetHeadState(VersionState::Draft)),
        (
            Some(h),
            Command::Amend {
                author_id,
                author_role,
                reason,
            },
        ) => {
            let ok = h.state == VersionState::Finalised
                && h.kind != VersionKind::EnteredInError
                && !reason.trim().is_empty()
                && can(Action::Write)
                && if author_id == ME {
                    can(Action::Finalise)
                } else {
                    author_role.allows(Action::Finalise, Some(kind))
                };
            ok.then_some(Effect::NewVersion {
                kind: VersionKind::Amendment,
                state: if author_id == ME {
                    VersionState::Finalised
                } else {
                    VersionState::PendingApproval
                },
                author_id,
                enterer_id: ME,
            })
        }
        (Some(h), Command::MarkEnteredInError { reason }) => (h.state == VersionState::Finalised
            && h.kind != VersionKind::EnteredInError
            && !reason.trim().is_empty()
            && can(Action::Finalise))
        .then_some(Effect::NewVersion {
            kind: VersionKind::EnteredInError,
            state: VersionState::Finalised,
            author_id: ME,
            enterer_id: ME,
        }),
        _ => None,
    }
}

#[test]
fn decide_matches_the_rules_for_every_combination() {
    let roles = default_roles();
    let doctor = role("doctor");
    let nurse = role("nurse");
    let mut checked = 0;
    for actor_role in &roles {
        let actor = Actor {
            id: ME,
            role: actor_role,
        };
        for kind in ["medical_record", "nursing", "imaging"] {
            for head in all_heads() {
                for author_id in [ME, OTHER] {
                    for author_role in [&doctor, &nurse] {
                        for reason in ["", "  ", "転記ミスのため"] {
                            let cmds = [
                                Command::Create {
                                    author_id,
                                    author_role,
                                },
                                Command::EditDraft,
                                Command::Submit,
                                Command::Finalise,
                                Command::Approve,
                                Command::Reject { reason },
                                Command::Amend {
                                    author_id,
                                    author_role,
                                    reason,
                                },
                                Command::MarkEnteredInError { reason },
                            ];
                            for cmd in cmds {
                                let got = decide(&actor, kind, head.as_ref(), cmd).ok();
                                let want = oracle(actor_role, kind, head.as_ref(), &cmd);
                                assert_eq!(
                                    got, want,
                                    "role={} kind={kind} head={head:?} author={author_id}",
                                    actor_role.code
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn a_finalised_version_never_changes_state() {
    let roles = default_roles();
    for r in &roles {
        let actor = Actor { id: ME, role: r };
        for head in all_heads()
            .into_iter()
            .flatten()
            .filter(|h| h.state == VersionState::Finalised)
        {
            for cmd in [
                Command::EditDraft,
                Command::Submit,
                Command::Finalise,
                Command::Approve,
                Command::Reject { reason: "x" },
            ] {
                assert!(decide(&actor, "medical_record", Some(&head), cmd).is_err());
            }
        }
    }
}

#[test]
fn proxy_entry_workflow() {
    let clerk = role("clerk");
    let doctor = role("doctor");
    let clerk_actor = Actor {
        id: 10,
        role: &clerk,
    };
    let doctor_actor = Actor {
        id: 20,
        role: &doctor,
    };
    let e = decide(
        &clerk_actor,
        "medical_record",
        None,
        Command::Create {
            author_id: 20,
            author_role: &doctor,
        },
    )
    .unwrap();
    assert_eq!(
        e,
        Effect::NewVersion {
            kind: VersionKind::Original,
            state: VersionState::Draft,
            author_id: 20,
            enterer_id: 10
        }
    );
    let mut head = Head {
        state: VersionState::Draft,
        kind: VersionKind::Original,
        author_id: 20,
        enterer_id: 10,
    };
    // The clerk cannot finalise; the doctor cannot edit the clerk's draft.
    assert!(matches!(
        decide(
            &clerk_actor,
            "medical_record",
            Some(&head),
            Command::Finalise
        ),
        Err(DomainError::Forbidden(_))
    ));
    assert!(
        decide(
            &doctor_actor,
            "medical_record",
            Some(&head),
            Command::EditDraft
        )
        .is_err()
    );
    assert_eq!(
        decide(&clerk_actor, "medical_record", Some(&head), Command::Submit).unwrap(),
        Effect::SetHeadState(VersionState::PendingApproval)
    );
    head.state = VersionState::PendingApproval;
    // Only the named author approves; another doctor cannot.
    let other_doctor = Actor {
        id: 21,
        role: &doctor,
    };
    assert!(matches!(
        decide(
            &other_doctor,
            "medical_record",
            Some(&head),
            Command::Approve
        ),
        Err(DomainError::Forbidden(_))
    ));
    assert!(
        decide(
            &doctor_actor,
            "medical_record",
            Some(&head),
            Command::Reject { reason: "" }
        )
        .is_err()
    );
    assert_eq!(
        decide(
            &doctor_actor,
            "medical_record",
            Some(&head),
            Command::Approve
        )
        .unwrap(),
        Effect::SetHeadState(VersionState::Finalised)
    );
}

#[test]
fn a_clerk_cannot_name_a_nurse_as_author_of_a_medical_record() {
    let clerk = role("clerk");
    let nurse = role("nurse");
    let r = decide(
        &Actor {
            id: 10,
            role: &clerk,
        },
        "medical_record",
        None,
        Command::Create {
            author_id: 30,
            author_role: &nurse,
        },
    );
    assert!(matches!(r, Err(DomainError::Invalid(_))));
}

#[test]
fn record_status_labels() {
    use VersionKind::*;
    use VersionState::*;
    assert_eq!(record_status(&[]), None);
    assert_eq!(
        record_status(&[(Draft, Original)]),
        Some(RecordStatus::Draft)
    );
    assert_eq!(
        record_status(&[(PendingApproval, Original)]),
        Some(RecordStatus::PendingApproval)
    );
    assert_eq!(
        record_status(&[(Finalised, Original)]),
        Some(RecordStatus::Finalised)
    );
    assert_eq!(
        record_status(&[(Finalised, Original), (Finalised, Amendment)]),
        Some(RecordStatus::Amended)
    );
    assert_eq!(
        record_status(&[(Finalised, Original), (PendingApproval, Amendment)]),
        Some(RecordStatus::PendingApproval)
    );
    assert_eq!(
        record_status(&[(Finalised, Original), (Finalised, EnteredInError)]),
        Some(RecordStatus::EnteredInError)
    );
}

#[test]
fn drafts_are_private_to_enterer_and_author() {
    assert!(version_visible_to(1, VersionState::Draft, 1, 2));
    assert!(version_visible_to(2, VersionState::Draft, 1, 2));
    assert!(!version_visible_to(3, VersionState::Draft, 1, 2));
    assert!(!version_visible_to(3, VersionState::PendingApproval, 1, 2));
    assert!(version_visible_to(3, VersionState::Finalised, 1, 2));
}

#[test]
fn available_actions_follow_the_rules() {
    let doctor = role("doctor");
    let clerk = role("clerk");
    let nurse = role("nurse");
    let draft_mine = Head {
        state: VersionState::Draft,
        kind: VersionKind::Original,
        author_id: ME,
        enterer_id: ME,
    };
    assert_eq!(
        available(
            &Actor {
                id: ME,
                role: &doctor
            },
            "medical_record",
            &draft_mine
        ),
        vec!["edit", "finalise"]
    );
    let proxy_draft = Head {
        state: VersionState::Draft,
        kind: VersionKind::Original,
        author_id: OTHER,
        enterer_id: ME,
    };
    assert_eq!(
        available(
            &Actor {
                id: ME,
                role: &clerk
            },
            "medical_record",
            &proxy_draft
        ),
        vec!["edit", "submit"]
    );
    let pending_for_me = Head {
        state: VersionState::PendingApproval,
        kind: VersionKind::Original,
        author_id: ME,
        enterer_id: OTHER,
    };
    assert_eq!(
        available(
            &Actor {
                id: ME,
                role: &doctor
            },
            "medical_record",
            &pending_for_me
        ),
        vec!["approve", "reject"]
    );
    let final_other = Head {
        state: VersionState::Finalised,
        kind: VersionKind::Original,
        author_id: OTHER,
        enterer_id: OTHER,
    };
    assert_eq!(
        available(
            &Actor {
                id: ME,
                role: &doctor
            },
            "medical_record",
            &final_other
        ),
        vec!["amend", "entered_in_error"]
    );
    assert_eq!(
        available(
            &Actor {
                id: ME,
                role: &clerk
            },
            "medical_record",
            &final_other
        ),
        vec!["amend"]
    );
    assert!(
        available(
            &Actor {
                id: ME,
                role: &nurse
            },
            "medical_record",
            &final_other
        )
        .is_empty()
    );
}
