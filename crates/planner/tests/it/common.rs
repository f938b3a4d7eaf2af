//! Fixtures: builders for inputs and small helpers to read plans.

use metallb_api::names::{annotations, conditions as cond};
use metallb_planner::{
    ClassInput, Condition, DesiredChild, Input, NodeInput, Plan, ServiceInput, ServicePort,
    ServiceStatusPlan, StringMap, Timestamp, TrafficPolicy,
};

pub(crate) fn class(name: &str, pool: &[&str]) -> ClassInput {
    ClassInput {
        name: name.to_owned(),
        generation: 1,
        address_pool: pool.iter().map(|p| (*p).to_owned()).collect(),
        ..ClassInput::default()
    }
}

pub(crate) fn default_class(name: &str, pool: &[&str]) -> ClassInput {
    ClassInput { is_default: true, ..class(name, pool) }
}

pub(crate) fn node(name: &str) -> NodeInput {
    NodeInput { name: name.to_owned(), ready: true, speaker_ready: true, ..NodeInput::default() }
}

pub(crate) fn nodes(count: usize) -> Vec<NodeInput> {
    (0..count).map(|i| node(&format!("node-{i}"))).collect()
}

pub(crate) fn port(protocol: &str, number: i32) -> ServicePort {
    ServicePort { protocol: protocol.into(), port: number, ..ServicePort::default() }
}

pub(crate) fn svc(name: &str) -> ServiceInput {
    ServiceInput {
        namespace: "ns".into(),
        name: name.into(),
        uid: format!("uid-{name}").into(),
        generation: 1,
        ports: vec![port("TCP", 80)].into(),
        selector: StringMap::from([("app", name)]).into(),
        ..ServiceInput::default()
    }
}

/// Builder-style tweaks on a Service.
pub(crate) trait SvcExt {
    fn ann(self, key: &str, value: &str) -> Self;
    fn count(self, n: u32) -> Self;
    fn lb_class(self, class: &str) -> Self;
    fn local(self, endpoints: &[&str]) -> Self;
}

impl SvcExt for ServiceInput {
    fn ann(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }
    fn count(self, n: u32) -> Self {
        self.ann(annotations::EXTERNAL_IPS_COUNT, &n.to_string())
    }
    fn lb_class(mut self, class: &str) -> Self {
        self.load_balancer_class = Some(class.to_owned());
        self
    }
    fn local(mut self, endpoints: &[&str]) -> Self {
        self.external_traffic_policy = TrafficPolicy::Local;
        self.ready_endpoint_nodes = endpoints.iter().copied().collect();
        self
    }
}

pub(crate) fn input(
    classes: Vec<ClassInput>,
    nodes: Vec<NodeInput>,
    services: Vec<ServiceInput>,
) -> Input {
    Input {
        now: Timestamp("2026-01-01T00:00:00Z".into()),
        classes,
        nodes,
        services,
        ..Input::default()
    }
}

/// Plans, applies, and returns the applied input with the plan (one hook run).
pub(crate) fn converge(input: &Input) -> (Plan, Input) {
    let plan = metallb_planner::plan(input);
    let applied = metallb_planner::apply(input, &plan);
    (plan, applied)
}

pub(crate) fn children_of<'a>(plan: &'a Plan, service: &str) -> Vec<&'a DesiredChild> {
    plan.children.iter().filter(|c| c.spec.service_ref.name == service).collect()
}

pub(crate) fn ips_of(plan: &Plan, service: &str) -> Vec<Option<String>> {
    children_of(plan, service).iter().map(|c| c.status.ip.as_deref().map(str::to_owned)).collect()
}

pub(crate) fn nodes_of(plan: &Plan, service: &str) -> Vec<Option<String>> {
    children_of(plan, service).iter().map(|c| c.status.node.as_deref().map(str::to_owned)).collect()
}

pub(crate) fn status_of<'a>(plan: &'a Plan, service: &str) -> Option<&'a ServiceStatusPlan> {
    plan.services.iter().find(|s| s.name == service)
}

pub(crate) fn condition<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no condition {type_} in {conditions:?}"))
}

pub(crate) fn svc_condition<'a>(plan: &'a Plan, service: &str, type_: &str) -> &'a Condition {
    let status = status_of(plan, service).unwrap_or_else(|| panic!("no status for {service}"));
    condition(&status.conditions, type_)
}

pub(crate) fn bound_class(plan: &Plan, service: &str) -> String {
    svc_condition(plan, service, cond::LOAD_BALANCER_CLASS).message.to_string()
}
