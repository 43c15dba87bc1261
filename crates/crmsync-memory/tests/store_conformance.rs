//! The whole store conformance suite on the in-memory store, in several configurations,
//! and through the fault-injecting wrapper with no faults.

use crmsync_core::conformance::{Samples, StoreHooks, StoreTarget, SuiteReport, run_store_suite};
use crmsync_core::{Capabilities, Contact, Event, RecordStore};
use crmsync_memory::{
    FaultInjecting, FaultPlan, MemoryStore, like_caldav, like_google_calendar,
    like_google_contacts, like_outlook, memory_unlimited,
};

/// The checks a store of records without time may skip.
const TIMELESS_SKIPS: [&str; 1] = ["window_excludes_outside_records"];

async fn run<R, S>(label: &str, store: &S, memory: &MemoryStore<R>) -> SuiteReport
where
    R: Samples,
    S: RecordStore<R> + StoreHooks<R>,
{
    let collection = memory.add_collection(&format!("conformance {label}"));
    let target = StoreTarget {
        store,
        collection,
        hooks: Some(store as &dyn StoreHooks<R>),
    };
    let report = run_store_suite(&target).await;
    println!("{label}: {report}");
    report
}

fn assert_complete<R: Samples>(label: &str, report: &SuiteReport) {
    let allowed: &[&str] = if R::sample(0).time_span().is_some() {
        &[]
    } else {
        &TIMELESS_SKIPS
    };
    for (name, why) in &report.skipped {
        assert!(
            allowed.contains(name),
            "{label}: {name} must not be skipped on the memory store ({why})"
        );
    }
    assert!(
        report.passed.len() + report.skipped.len() >= 22,
        "{label}: {report}"
    );
    assert!(report.passed.len() >= 21, "{label}: {report}");
}

fn configurations(defaults: Capabilities) -> Vec<(&'static str, Capabilities, usize, usize, bool)> {
    // (label, capabilities, page size, every n-th page empty (0: none), short pages)
    vec![
        ("unlimited", memory_unlimited(), 100, 0, false),
        ("page size 1, empty pages", memory_unlimited(), 1, 2, false),
        ("page size 3, short and empty pages", defaults, 3, 3, true),
        ("outlook", like_outlook(), 2, 4, false),
        ("caldav (no batches)", like_caldav(), 5, 0, false),
    ]
}

async fn suite_on_memory<R: Samples>(defaults: Capabilities) {
    for (label, caps, page_size, empty_every, short) in configurations(defaults) {
        let mut store = MemoryStore::<R>::new()
            .with_capabilities(caps)
            .with_page_size(page_size)
            .with_empty_pages(empty_every);
        if short {
            store = store.with_short_pages();
        }
        let report = run(label, &store, &store).await;
        assert_complete::<R>(label, &report);
        assert!(store.stats().requests > 0);
    }
}

#[tokio::test]
async fn memory_event_store_passes_the_suite() {
    suite_on_memory::<Event>(like_google_calendar()).await;
}

#[tokio::test]
async fn memory_contact_store_passes_the_suite() {
    suite_on_memory::<Contact>(like_google_contacts()).await;
}

#[tokio::test]
async fn fault_injecting_wrapper_without_faults_passes_the_suite() {
    let events = MemoryStore::<Event>::new()
        .with_page_size(2)
        .with_empty_pages(3);
    let wrapped = FaultInjecting::new(events.clone(), FaultPlan::none());
    let report = run("faults off, events", &wrapped, &events).await;
    assert_complete::<Event>("faults off, events", &report);
    assert!(wrapped.fired().is_empty());
    assert!(wrapped.calls() > 0);

    let contacts = MemoryStore::<Contact>::new().with_capabilities(like_outlook());
    let wrapped = FaultInjecting::new(contacts.clone(), FaultPlan::none());
    let report = run("faults off, contacts", &wrapped, &contacts).await;
    assert_complete::<Contact>("faults off, contacts", &report);
}

#[tokio::test]
async fn without_hooks_the_hook_checks_are_skipped() {
    let store = MemoryStore::<Event>::new();
    let target = StoreTarget {
        store: &store,
        collection: store.add_collection("no hooks"),
        hooks: None,
    };
    let report = run_store_suite(&target).await;
    let skipped: Vec<&str> = report.skipped.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        skipped,
        [
            "cursor_expiry_is_cursor_expired",
            "edit_behind_back_shows_in_feed",
            "delete_behind_back_is_removal"
        ]
    );
    let text = report.to_string();
    assert!(text.starts_with("19 passed, 3 skipped"), "{text}");
    assert!(text.contains("the target has no StoreHooks"), "{text}");
}
