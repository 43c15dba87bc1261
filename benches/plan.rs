//! Planning cost: N linked records with 1% changed on one side, from 1,000 to 1,000,000.
//! The target is 100,000 planned in under 50 ms on one core here, memory linear in records.

use std::collections::HashMap;
use std::hint::black_box;

use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crmsync::engine::{FieldPolicy, Guards, Observed, PlanInput, WritableSides, plan};
use crmsync::{
    AccountId, Capabilities, CollectionId, CrmId, Event, ItemId, Link, Period, RecordExt, RemoteId,
    StateKey, Stored, Version,
};

fn input(n: usize) -> PlanInput<Event> {
    let now = Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 6, 20).unwrap();
    let base = Event::new("Weekly review", Period::all_day(day, day).unwrap());
    let baseline = base.canonical();
    let mut links = Vec::with_capacity(n);
    let mut crm = HashMap::new();
    for i in 0..n {
        let crm_id = format!("crm-{i}");
        links.push(Link {
            crm_id: CrmId::new(crm_id.clone()).unwrap(),
            remote_id: RemoteId::new(format!("remote-{i}")).unwrap(),
            crm_version: Some(Version::new("1").unwrap()),
            remote_version: Some(Version::new("1").unwrap()),
            baseline: baseline.clone(),
            synced_at: now,
            pending: Vec::new(),
        });
        if i % 100 == 0 {
            let mut changed = base.clone();
            changed.title = format!("Weekly review #{i}");
            let id = ItemId::new(crm_id).unwrap();
            crm.insert(
                id.clone(),
                Observed::Present {
                    item: Stored {
                        id,
                        version: Version::new("2").unwrap(),
                        link_key: None,
                        record: changed,
                    },
                    modified: None,
                },
            );
        }
    }
    PlanInput {
        key: StateKey::new(
            AccountId::new("bench").unwrap(),
            "event",
            CollectionId::new("cal").unwrap(),
        ),
        now,
        window: None,
        crm,
        provider: HashMap::new(),
        links,
        linked_total: n,
        crm_capabilities: Capabilities::unlimited("crm"),
        provider_capabilities: Capabilities::unlimited("provider"),
        policy: FieldPolicy::calendar_defaults(),
        resolver: None,
        guards: Guards::default(),
        match_natural_keys: true,
        writable: WritableSides::BOTH,
    }
}

fn planning(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan_1pct_changed");
    group.sample_size(10);
    let sizes: &[usize] = if std::env::var_os("CRMSYNC_BENCH_SKIP_1M").is_some() {
        &[1_000, 10_000, 100_000]
    } else {
        &[1_000, 10_000, 100_000, 1_000_000]
    };
    for &n in sizes {
        let input = input(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter(|| {
                let p = plan(black_box(input));
                assert_eq!(p.actions.len(), n / 100);
                p
            })
        });
    }
    group.finish();
}

criterion_group!(benches, planning);
criterion_main!(benches);
