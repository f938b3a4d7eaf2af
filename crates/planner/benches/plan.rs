//! Planning time for 1k, 10k and 30k Services × 3 IPs over 100 nodes and 5 classes.
//!
//! Two cases per size: `fresh` (no children yet: every IP and node is chosen) and `steady`
//! (the planned state re-planned: what most hook runs see). Run with
//! `cargo bench -p metallb-planner`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metallb_api::names::annotations;
use metallb_planner::{
    ClassInput, Input, NodeInput, ServiceInput, ServicePort, StringMap, Timestamp,
};

const NODES: usize = 100;
const CLASSES: usize = 5;

fn cluster(services: usize) -> Input {
    let classes = (0..CLASSES)
        .map(|c| ClassInput {
            name: format!("class-{c}"),
            generation: 1,
            is_default: c == 0,
            // A /14 per class: 262144 addresses, room for 30k × 3 IPs in any split.
            address_pool: vec![format!("10.{}.0.0/14", c * 4)],
            ..ClassInput::default()
        })
        .collect();
    let nodes = (0..NODES)
        .map(|n| NodeInput {
            name: format!("node-{n:03}"),
            ready: true,
            speaker_ready: true,
            ..NodeInput::default()
        })
        .collect();
    let services = (0..services)
        .map(|i| ServiceInput {
            namespace: format!("ns-{}", i % 50).into(),
            name: format!("svc-{i:05}").into(),
            uid: format!("uid-{i}").into(),
            generation: 1,
            annotations: StringMap::from([
                (annotations::EXTERNAL_IPS_COUNT, "3".to_owned()),
                (annotations::METAL_LOAD_BALANCER_CLASS, format!("class-{}", i % CLASSES)),
            ]),
            ports: vec![ServicePort {
                protocol: "TCP".into(),
                port: 443,
                ..ServicePort::default()
            }]
            .into(),
            ..ServiceInput::default()
        })
        .collect();
    Input {
        now: Timestamp("2026-01-01T00:00:00Z".into()),
        classes,
        nodes,
        services,
        ..Input::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    // Ten samples keep the 30k case within a few minutes on two cores.
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for services in [1_000, 10_000, 30_000] {
        let fresh = cluster(services);
        let steady = metallb_planner::apply(&fresh, &metallb_planner::plan(&fresh));
        group.bench_with_input(BenchmarkId::new("fresh", services), &fresh, |b, input| {
            b.iter(|| metallb_planner::plan(black_box(input)));
        });
        group.bench_with_input(BenchmarkId::new("steady", services), &steady, |b, input| {
            b.iter(|| metallb_planner::plan(black_box(input)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
