//! Planner tests on hand-built inputs: one per rule of the merge, matching and guards.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::json;

use super::plan::plan as run_plan;
use super::plan::*;
use super::policy::*;
use crate::ids::{AccountId, CollectionId, CrmId, ItemId, LinkKey, RemoteId, Version};
use crate::model::{Contact, ContactField, Event, EventField, Period, Recurrence, Usage};
use crate::record::{Direction, Record, RecordExt};
use crate::state::{Link, Side, StateKey};
use crate::store::{Capabilities, Stored, Window};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap()
}

fn event(title: &str, day: u32) -> Event {
    let d = NaiveDate::from_ymd_opt(2026, 6, day).unwrap();
    Event::new(title, Period::all_day(d, d).unwrap())
}

fn stored<R: Record>(id: &str, version: &str, record: R, link_key: Option<&str>) -> Stored<R> {
    Stored {
        id: ItemId::new(id).unwrap(),
        version: Version::new(version).unwrap(),
        link_key: link_key.map(|k| LinkKey::new(k).unwrap()),
        record,
    }
}

fn link<R: Record>(crm: &str, remote: &str, cv: &str, rv: &str, baseline: &R) -> Link {
    Link {
        crm_id: CrmId::new(crm).unwrap(),
        remote_id: RemoteId::new(remote).unwrap(),
        crm_version: Some(Version::new(cv).unwrap()),
        remote_version: Some(Version::new(rv).unwrap()),
        baseline: baseline.canonical(),
        synced_at: now(),
        pending: Vec::new(),
    }
}

fn present<R: Record>(s: Stored<R>) -> Observed<R> {
    Observed::Present {
        item: s,
        modified: None,
    }
}

fn input<R: Record>(policy: FieldPolicy<R::Field>) -> PlanInput<R> {
    PlanInput {
        key: StateKey::new(
            AccountId::new("a").unwrap(),
            R::KIND,
            CollectionId::new("c").unwrap(),
        ),
        now: now(),
        window: None,
        crm: HashMap::new(),
        provider: HashMap::new(),
        links: Vec::new(),
        linked_total: 0,
        crm_capabilities: Capabilities::unlimited("crm"),
        provider_capabilities: Capabilities::unlimited("provider"),
        policy,
        resolver: None,
        guards: Guards::default(),
        match_natural_keys: true,
        writable: WritableSides::BOTH,
    }
}

fn put<R: Record>(map: &mut HashMap<ItemId, Observed<R>>, obs: Observed<R>) {
    let id = match &obs {
        Observed::Present { item, .. } => item.id.clone(),
        Observed::Deleted => panic!("use insert for deletions"),
    };
    map.insert(id, obs);
}

fn only_merge<R: Record>(plan: &Plan<R>) -> &Merge<R> {
    let merges: Vec<&Merge<R>> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Merge(m) => Some(m.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(merges.len(), 1, "expected one merge in {plan}");
    merges[0]
}

#[test]
fn a_new_crm_record_is_created_on_the_provider_with_its_link_key() {
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    put(
        &mut i.crm,
        present(stored("c1", "1", event("Kickoff", 20), None)),
    );
    let plan = run_plan(&i);
    match &plan.actions[..] {
        [
            Action::Create {
                target,
                link_key,
                source,
                ..
            },
        ] => {
            assert_eq!(*target, Side::Provider);
            assert_eq!(link_key.as_str(), "c1");
            assert_eq!(source.id.as_str(), "c1");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        plan.to_string()
            .contains("create on provider a copy of crm c1")
    );
}

#[test]
fn a_field_changed_on_the_crm_only_is_written_to_the_provider_only() {
    let base = event("Kickoff", 20);
    let mut changed = base.clone();
    changed.title = "Kickoff (moved room)".into();
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.links.push(link("c1", "p1", "1", "1", &base));
    i.linked_total = 1;
    put(&mut i.crm, present(stored("c1", "2", changed, None)));
    let plan = run_plan(&i);
    let m = only_merge(&plan);
    assert!(m.crm_write.is_none());
    let w = m.provider_write.as_ref().unwrap();
    assert_eq!(
        w.fields.iter().copied().collect::<Vec<_>>(),
        vec![EventField::Title]
    );
    assert_eq!(w.expected.as_str(), "1");
    assert_eq!(w.record.title, "Kickoff (moved room)");
}

#[test]
fn different_fields_changed_on_each_side_merge_without_conflict() {
    let base = event("Kickoff", 20);
    let mut crm = base.clone();
    crm.title = "Kickoff v2".into();
    let mut prov = base.clone();
    prov.location = "Room 4".into();
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.links.push(link("c1", "p1", "1", "1", &base));
    put(&mut i.crm, present(stored("c1", "2", crm, None)));
    put(&mut i.provider, present(stored("p1", "2", prov, None)));
    let plan = run_plan(&i);
    let m = only_merge(&plan);
    assert!(m.conflicts.is_empty());
    assert_eq!(m.crm_write.as_ref().unwrap().record.location, "Room 4");
    assert_eq!(m.crm_write.as_ref().unwrap().record.title, "Kickoff v2");
    assert_eq!(
        m.provider_write.as_ref().unwrap().record.title,
        "Kickoff v2"
    );
    let merged = Event::from_canonical(&m.baseline, event("", 1)).unwrap();
    assert_eq!(
        (merged.title.as_str(), merged.location.as_str()),
        ("Kickoff v2", "Room 4")
    );
}

#[test]
fn the_same_field_changed_on_both_sides_is_a_conflict_settled_by_the_strategy() {
    let base = event("Kickoff", 20);
    let mut crm = base.clone();
    crm.title = "CRM title".into();
    let mut prov = base.clone();
    prov.title = "Phone title".into();
    for (strategy, winner) in [
        (ConflictStrategy::CrmWins, Side::Crm),
        (ConflictStrategy::ProviderWins, Side::Provider),
    ] {
        let mut i = input::<Event>(FieldPolicy::calendar_defaults().with_conflicts(strategy));
        i.links.push(link("c1", "p1", "1", "1", &base));
        put(&mut i.crm, present(stored("c1", "2", crm.clone(), None)));
        put(
            &mut i.provider,
            present(stored("p1", "2", prov.clone(), None)),
        );
        let plan = run_plan(&i);
        let m = only_merge(&plan);
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].winner, winner);
        assert_eq!(m.conflicts[0].field, "title");
        match winner {
            Side::Crm => assert_eq!(m.provider_write.as_ref().unwrap().record.title, "CRM title"),
            Side::Provider => assert_eq!(m.crm_write.as_ref().unwrap().record.title, "Phone title"),
        }
    }
}

#[test]
fn newest_wins_uses_modification_times_and_a_callback_can_decide() {
    #[derive(Debug)]
    struct AlwaysProvider;
    impl ConflictResolver<EventField> for AlwaysProvider {
        fn resolve(
            &self,
            _: EventField,
            _: &serde_json::Value,
            _: &serde_json::Value,
            _: Option<&serde_json::Value>,
        ) -> Side {
            Side::Provider
        }
    }
    let base = event("Kickoff", 20);
    let mut crm = base.clone();
    crm.title = "A".into();
    let mut prov = base.clone();
    prov.title = "B".into();
    let mut i =
        input::<Event>(FieldPolicy::calendar_defaults().with_conflicts(ConflictStrategy::Newest));
    i.links.push(link("c1", "p1", "1", "1", &base));
    i.crm.insert(
        ItemId::new("c1").unwrap(),
        Observed::Present {
            item: stored("c1", "2", crm.clone(), None),
            modified: Some(now()),
        },
    );
    i.provider.insert(
        ItemId::new("p1").unwrap(),
        Observed::Present {
            item: stored("p1", "2", prov.clone(), None),
            modified: Some(now() + chrono::Duration::minutes(1)),
        },
    );
    assert_eq!(
        only_merge(&run_plan(&i)).conflicts[0].winner,
        Side::Provider
    );

    let mut i =
        input::<Event>(FieldPolicy::calendar_defaults().with_conflicts(ConflictStrategy::Callback));
    i.resolver = Some(std::sync::Arc::new(AlwaysProvider));
    i.links.push(link("c1", "p1", "1", "1", &base));
    put(&mut i.crm, present(stored("c1", "2", crm, None)));
    put(&mut i.provider, present(stored("p1", "2", prov, None)));
    assert_eq!(
        only_merge(&run_plan(&i)).conflicts[0].winner,
        Side::Provider
    );
}

#[test]
fn a_provider_edit_of_a_crm_owned_field_is_overwritten_or_ignored() {
    let base = event("Kickoff", 20);
    let mut prov = base.clone();
    prov.colour = Some("#00ff00".parse().unwrap());
    let mut crm_owned = base.clone();
    crm_owned.colour = Some("#ff0000".parse().unwrap());
    for (handling, expect_write) in [
        (ForbiddenEdit::Overwrite, true),
        (ForbiddenEdit::Ignore, false),
    ] {
        let mut policy = FieldPolicy::calendar_defaults();
        policy.forbidden_edits = handling;
        let mut i = input::<Event>(policy);
        i.links.push(link("c1", "p1", "1", "1", &crm_owned));
        let mut p = prov.clone();
        p.colour = Some("#00ff00".parse().unwrap());
        put(&mut i.provider, present(stored("p1", "2", p, None)));
        let plan = run_plan(&i);
        let m = only_merge(&plan);
        assert!(m.crm_write.is_none(), "the CRM owns the colour");
        assert_eq!(m.forbidden.len(), 1);
        assert_eq!(m.forbidden[0].edited_on, Side::Provider);
        assert_eq!(m.provider_write.is_some(), expect_write);
        if expect_write {
            assert_eq!(
                m.provider_write.as_ref().unwrap().record.colour,
                Some("#ff0000".parse().unwrap())
            );
        }
    }
}

#[test]
fn our_own_write_coming_back_is_not_a_change() {
    let base = event("Kickoff", 20);
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.links.push(link("c1", "p1", "1", "7", &base));
    put(
        &mut i.provider,
        present(stored("p1", "7", base.clone(), None)),
    );
    assert!(run_plan(&i).actions.is_empty());

    // A new version with the same content (the provider touched it): versions only.
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.links.push(link("c1", "p1", "1", "7", &base));
    let mut noisy = base.clone();
    noisy.title = "  Kickoff  ".into();
    put(&mut i.provider, present(stored("p1", "8", noisy, None)));
    let plan = run_plan(&i);
    let m = only_merge(&plan);
    assert!(m.crm_write.is_none() && m.provider_write.is_none());
    assert_eq!(m.remote_version.as_str(), "8");
    assert!(plan.is_empty());
}

#[test]
fn deletions_follow_the_mode_per_direction() {
    let base = event("Kickoff", 20);
    // Default: CRM deletions propagate, provider deletions ask.
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.links.push(link("c1", "p1", "1", "1", &base));
    i.links.push(link("c2", "p2", "1", "1", &base));
    i.linked_total = 10;
    i.crm.insert(ItemId::new("c1").unwrap(), Observed::Deleted);
    i.provider
        .insert(ItemId::new("p2").unwrap(), Observed::Deleted);
    let plan = run_plan(&i);
    assert!(plan.actions.iter().any(|a| matches!(a, Action::Delete { target: Side::Provider, crm_id, .. } if crm_id.as_str() == "c1")));
    assert!(plan.actions.iter().any(|a| matches!(a, Action::ConfirmDeletion { target: Side::Crm, crm_id, .. } if crm_id.as_str() == "c2")));

    let mut i = input::<Event>(
        FieldPolicy::calendar_defaults()
            .with_deletions(DeletionMode::Ignore, DeletionMode::Propagate),
    );
    i.links.push(link("c1", "p1", "1", "1", &base));
    i.linked_total = 10;
    i.crm.insert(ItemId::new("c1").unwrap(), Observed::Deleted);
    assert!(matches!(run_plan(&i).actions[..], [Action::Unlink { .. }]));

    // Gone on both sides: the link is forgotten.
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.links.push(link("c1", "p1", "1", "1", &base));
    i.crm.insert(ItemId::new("c1").unwrap(), Observed::Deleted);
    i.provider
        .insert(ItemId::new("p1").unwrap(), Observed::Deleted);
    assert!(matches!(run_plan(&i).actions[..], [Action::Forget { .. }]));
}

#[test]
fn an_edit_survives_a_deletion_on_the_other_side() {
    let base = event("Kickoff", 20);
    let mut prov = base.clone();
    prov.title = "Edited on the phone".into();
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.links.push(link("c1", "p1", "1", "1", &base));
    i.crm.insert(ItemId::new("c1").unwrap(), Observed::Deleted);
    put(&mut i.provider, present(stored("p1", "2", prov, None)));
    let plan = run_plan(&i);
    assert!(
        matches!(
            &plan.actions[..],
            [Action::Create {
                target: Side::Crm,
                ..
            }]
        ),
        "{plan}"
    );
}

#[test]
fn a_lossy_side_is_compared_through_what_it_can_hold() {
    let mut crm = Contact::new("Ann");
    for i in 0..5 {
        crm = crm
            .with_email(&format!("ann{i}@example.com"), Usage::Work)
            .unwrap();
    }
    let mut outlook = Capabilities::unlimited("outlook");
    outlook.max_emails = Some(3);
    let provider_copy = crm.fit(&outlook).record;
    let mut i = input::<Contact>(FieldPolicy::two_way());
    i.provider_capabilities = outlook.clone();
    i.links.push(link("c1", "p1", "1", "1", &crm));
    put(
        &mut i.provider,
        present(stored("p1", "2", provider_copy, None)),
    );
    let plan = run_plan(&i);
    let m = only_merge(&plan);
    assert!(
        m.crm_write.is_none(),
        "three e-mails on Outlook are not an edit of five: {plan}"
    );
    assert!(m.provider_write.is_none());

    // A CRM edit is written, and what Outlook cannot hold is reported.
    let mut edited = crm.clone();
    edited.display_name = "Ann Lee".into();
    let mut i = input::<Contact>(FieldPolicy::two_way());
    i.provider_capabilities = outlook;
    i.links.push(link("c1", "p1", "1", "1", &crm));
    put(&mut i.crm, present(stored("c1", "2", edited, None)));
    let plan = run_plan(&i);
    let m = only_merge(&plan);
    let w = m.provider_write.as_ref().unwrap();
    assert_eq!(
        w.fields.iter().copied().collect::<Vec<_>>(),
        vec![ContactField::DisplayName]
    );
    assert_eq!(w.record.emails.len(), 3);
}

#[test]
fn an_unlinked_copy_carrying_our_link_key_is_relinked_not_duplicated() {
    let e = event("Kickoff", 20);
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    put(&mut i.crm, present(stored("c1", "1", e.clone(), None)));
    put(&mut i.provider, present(stored("p9", "4", e, Some("c1"))));
    let plan = run_plan(&i);
    let m = only_merge(&plan);
    assert_eq!(m.linked_by, Some(LinkedBy::LinkKey));
    assert_eq!(m.remote_id.as_str(), "p9");
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::Create { .. }))
    );
}

#[test]
fn a_second_copy_of_a_linked_record_is_reported_not_linked() {
    let e = event("Kickoff", 20);
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.links.push(link("c1", "p1", "1", "1", &e));
    put(&mut i.provider, present(stored("p2", "1", e, Some("c1"))));
    let plan = run_plan(&i);
    assert!(
        matches!(
            &plan.actions[..],
            [Action::Skip {
                reason: SkipReason::DuplicateCopy(_),
                ..
            }]
        ),
        "{plan}"
    );
}

#[test]
fn first_sync_matches_by_natural_key() {
    let crm = Contact::new("Ann")
        .with_email("ann@example.com", Usage::Work)
        .unwrap();
    let prov = Contact::new("Ann L.")
        .with_email("ANN@example.com", Usage::Work)
        .unwrap();
    let mut i = input::<Contact>(FieldPolicy::contact_defaults());
    put(&mut i.crm, present(stored("c1", "1", crm.clone(), None)));
    put(
        &mut i.provider,
        present(stored("p1", "1", prov.clone(), None)),
    );
    let plan = run_plan(&i);
    let m = only_merge(&plan);
    assert_eq!(m.linked_by, Some(LinkedBy::NaturalKey));
    // The CRM owns the display name: the provider copy takes it.
    assert_eq!(
        m.provider_write.as_ref().unwrap().record.display_name,
        "Ann"
    );

    let mut i = input::<Contact>(FieldPolicy::contact_defaults());
    i.match_natural_keys = false;
    put(&mut i.crm, present(stored("c1", "1", crm, None)));
    put(&mut i.provider, present(stored("p1", "1", prov, None)));
    assert_eq!(
        run_plan(&i)
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Create { .. }))
            .count(),
        2
    );
}

#[test]
fn recurring_series_are_left_alone_when_recurrence_is_skipped() {
    let mut series = event("Weekly", 20);
    series.recurrence = Some(Recurrence {
        rules: vec!["RRULE:FREQ=WEEKLY".into()],
        exceptions: vec![],
    });
    let mut instance = event("Weekly", 27);
    instance.series_id = Some("s1".into());
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    put(&mut i.crm, present(stored("c1", "1", series.clone(), None)));
    put(&mut i.provider, present(stored("p2", "1", instance, None)));
    let plan = run_plan(&i);
    assert_eq!(plan.actions.len(), 2);
    assert!(plan.actions.iter().all(|a| matches!(
        a,
        Action::Skip {
            reason: SkipReason::Recurring,
            ..
        }
    )));

    let mut i = input::<Event>(
        FieldPolicy::calendar_defaults().with_direction(EventField::Recurrence, Direction::Both),
    );
    put(&mut i.crm, present(stored("c1", "1", series, None)));
    let plan = run_plan(&i);
    match &plan.actions[..] {
        [Action::Create { record, .. }] => assert!(
            record.recurrence.is_some(),
            "a series travels as one record"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_cap_keeps_the_nearest_records_and_reports_the_rest() {
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    for (n, day) in [(1, 1), (2, 14), (3, 16), (4, 30), (5, 15)] {
        put(
            &mut i.crm,
            present(stored(&format!("c{n}"), "1", event("x", day), None)),
        );
    }
    i.guards.cap = Some(4);
    i.linked_total = 1;
    let plan = run_plan(&i);
    let created: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { source, .. } => Some(source.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 3);
    for near in ["c2", "c3", "c5"] {
        assert!(created.contains(&near), "{created:?}");
    }
    assert_eq!(
        plan.limit,
        Some(LimitReport {
            cap: 4,
            linked: 1,
            left_out: 2
        })
    );
}

#[test]
fn mass_deletions_stop_the_run_unless_confirmed() {
    let base = event("x", 20);
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    for n in 0..6 {
        i.links
            .push(link(&format!("c{n}"), &format!("p{n}"), "1", "1", &base));
        i.crm
            .insert(ItemId::new(format!("c{n}")).unwrap(), Observed::Deleted);
    }
    i.linked_total = 10;
    let plan = run_plan(&i);
    let trip = plan.guard.clone().expect("6 of 10 is more than half");
    assert_eq!(
        (trip.side, trip.deletions, trip.linked),
        (Side::Provider, 6, 10)
    );
    assert!(plan.to_string().contains("STOPPED"));

    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    for n in 0..6 {
        i.links
            .push(link(&format!("c{n}"), &format!("p{n}"), "1", "1", &base));
        i.crm
            .insert(ItemId::new(format!("c{n}")).unwrap(), Observed::Deleted);
    }
    i.linked_total = 10;
    i.guards.mass_deletion_confirmed = true;
    assert!(run_plan(&i).guard.is_none());
}

#[test]
fn fill_empty_only_fills_and_never_replaces() {
    let photo = crate::model::Photo::new(vec![1, 2, 3], "image/png").unwrap();
    let policy = FieldPolicy::contact_defaults().with(
        ContactField::Photo,
        FieldRule::fill_empty(Direction::ProviderToCrm),
    );
    let base = Contact::new("Ann");
    let mut prov = base.clone();
    prov.photo = Some(photo.clone());
    let mut i = input::<Contact>(policy.clone());
    i.links.push(link("c1", "p1", "1", "1", &base));
    put(
        &mut i.provider,
        present(stored("p1", "2", prov.clone(), None)),
    );
    let plan = run_plan(&i);
    assert_eq!(
        only_merge(&plan).crm_write.as_ref().unwrap().record.photo,
        Some(photo.clone())
    );

    let mut crm_has = base.clone();
    crm_has.photo = Some(crate::model::Photo::new(vec![9], "image/png").unwrap());
    let mut i = input::<Contact>(policy);
    i.links.push(link("c1", "p1", "1", "1", &crm_has));
    put(&mut i.provider, present(stored("p1", "2", prov, None)));
    let plan = run_plan(&i);
    assert!(only_merge(&plan).crm_write.is_none());
}

#[test]
fn records_outside_the_window_are_not_created() {
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.window = Some(Window::new(now(), now() + chrono::Duration::days(3)).unwrap());
    put(
        &mut i.crm,
        present(stored("c1", "1", event("far", 30), None)),
    );
    put(
        &mut i.crm,
        present(stored("c2", "1", event("near", 16), None)),
    );
    let plan = run_plan(&i);
    assert!(plan.actions.iter().any(|a| matches!(a, Action::Skip { reason: SkipReason::OutsideWindow, id, .. } if id.as_str() == "c1")));
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Action::Create { source, .. } if source.id.as_str() == "c2"))
    );
}

#[test]
fn a_pull_writes_only_the_crm() {
    let base = event("Kickoff", 20);
    let mut crm = base.clone();
    crm.title = "CRM edit".into();
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.writable = WritableSides {
        crm: true,
        provider: false,
    };
    i.links.push(link("c1", "p1", "1", "1", &base));
    put(&mut i.crm, present(stored("c1", "2", crm, None)));
    put(
        &mut i.crm,
        present(stored("c2", "1", event("new", 21), None)),
    );
    let plan = run_plan(&i);
    assert!(plan.actions.iter().all(|a| a.writes().is_empty()), "{plan}");
    assert!(plan.actions.iter().all(|a| matches!(
        a,
        Action::Skip {
            reason: SkipReason::NotWrittenThisRun,
            ..
        } | Action::Postpone {
            reason: SkipReason::NotWrittenThisRun,
            ..
        }
    )));
    // The linked pair is postponed as a whole: both sides are read again next run.
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Action::Postpone { crm_id, .. } if crm_id.as_str() == "c1"))
    );
}

#[test]
fn an_invalid_provider_value_fails_that_record_only() {
    let base = Contact::new("Ann");
    let mut i = input::<Contact>(FieldPolicy::two_way());
    i.links.push(link("c1", "p1", "1", "1", &base));
    let mut broken = base.clone();
    broken.notes = "ok".into();
    // A baseline that cannot be read back fails its record, not the run.
    let mut bad_link = link("c2", "p2", "1", "1", &base);
    bad_link
        .baseline
        .fields
        .insert("emails".into(), json!([{"address": "nope"}]));
    i.links.push(bad_link);
    put(&mut i.provider, present(stored("p1", "2", broken, None)));
    put(&mut i.provider, present(stored("p2", "2", base, None)));
    let plan = run_plan(&i);
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Action::Fail { id, .. } if id.as_str() == "c2")),
        "{plan}"
    );
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Action::Merge(m) if m.crm_id.as_str() == "c1"))
    );
}

#[test]
fn a_copy_of_a_deleted_crm_record_is_not_copied_back() {
    // The CRM deleted c1 while the policy kept (unlinked) its provider copy; a later full
    // listing sees the copy again: it must not resurrect c1.
    let e = event("Kickoff", 20);
    let mut i = input::<Event>(FieldPolicy::calendar_defaults());
    i.crm.insert(ItemId::new("c1").unwrap(), Observed::Deleted);
    put(&mut i.provider, present(stored("p1", "3", e, Some("c1"))));
    let plan = run_plan(&i);
    assert!(
        matches!(&plan.actions[..], [Action::Skip { reason: SkipReason::CounterpartDeleted(of), .. }] if of == "c1"),
        "{plan}"
    );
}

#[test]
fn a_first_link_fills_empty_values_and_never_wipes_filled_ones() {
    let mut crm = Contact::new("Ann")
        .with_email("ann@example.com", Usage::Work)
        .unwrap();
    crm.organization.company = "Acme".into();
    let mut prov = Contact::new("Ann")
        .with_email("ann@example.com", Usage::Work)
        .unwrap();
    prov.notes = "Met at the fair".into();
    prov.organization.company = "Acme Corp".into();
    let mut i = input::<Contact>(FieldPolicy::contact_defaults());
    put(&mut i.crm, present(stored("c1", "1", crm, None)));
    put(&mut i.provider, present(stored("p1", "1", prov, None)));
    let plan = run_plan(&i);
    let m = only_merge(&plan);
    // The phone's notes fill the CRM's empty notes; the CRM owns the company and keeps it.
    assert_eq!(
        m.crm_write.as_ref().unwrap().record.notes,
        "Met at the fair"
    );
    assert_eq!(
        m.provider_write
            .as_ref()
            .unwrap()
            .record
            .organization
            .company,
        "Acme"
    );
    assert!(m.conflicts.is_empty() && m.forbidden.is_empty(), "{plan}");
}

#[test]
fn a_side_showing_our_unanswered_write_has_not_edited() {
    // Our write of "Room 9" to the provider lost its answer (it is pending in the link);
    // the CRM has since moved on to "Room 12". The provider's "Room 9" is ours, not an
    // edit: the CRM's value goes through, with no conflict, even under "provider wins".
    let base = event("Kickoff", 20);
    let mut ours = base.clone();
    ours.location = "Room 9".into();
    let mut crm = base.clone();
    crm.location = "Room 12".into();
    let mut l = link("c1", "p1", "1", "1", &base);
    l.pending.push(crate::state::PendingWrite {
        side: Side::Provider,
        field: "location".into(),
        hash: ours.field_hash(EventField::Location),
    });
    let mut i = input::<Event>(
        FieldPolicy::calendar_defaults().with_conflicts(ConflictStrategy::ProviderWins),
    );
    i.links.push(l);
    put(&mut i.crm, present(stored("c1", "2", crm, None)));
    put(&mut i.provider, present(stored("p1", "2", ours, None)));
    let plan = run_plan(&i);
    let m = only_merge(&plan);
    assert!(m.conflicts.is_empty(), "{plan}");
    assert!(m.crm_write.is_none());
    assert_eq!(
        m.provider_write.as_ref().unwrap().record.location,
        "Room 12"
    );
}
