//! Every hook of the metallb module, in one batch-mode executable (`hooks/README.md` lists them
//! with the reason each exists).
//!
//! Each hook module holds the hook's configuration, the DTOs its snapshots are read into and a
//! pure `handle` function from snapshots (and values) to an outcome; `run` only reads the input
//! and writes that outcome. Every L2 decision is taken by [`metallb_planner::plan`].
//!
//! One queue, fixed `beforeHelm` orders (see [`order`]):
//!
//! ```text
//! onStartup  1  ensure-crds
//! beforeHelm 5  migrate-v1-l2        v1 ModuleConfig → classes, pool → class map
//!            7  migrate-bgp-settings v1/v2 BGP settings → pools, peers, configuration
//!           10  adopt-served-services  needs the classes and the map of 5
//!           15  node-membership      member label on selected nodes
//!           20  discovery            needs the pins of 10; children, statuses, values
//!           22  bgp-configurations   configuration statuses (peers, pools, members)
//! afterHelm 10  gossip-key           the namespace exists once Helm rendered it
//!           20  bgp-password-secrets peers' MD5 Secrets copied into the namespace
//! events        alerts               metrics only
//! ```

use std::process::ExitCode;

use addon::Hook;

mod adopt_services;
mod alerts;
mod bgp_secrets;
mod bgp_status;
mod discovery;
mod ensure_crds;
mod gossip_key;
mod migrate_bgp;
mod migrate_v1;
mod node_membership;
mod types;
mod write_guard;

/// Queue and hook orders, in one place so the dependencies between them are visible.
pub(crate) mod order {
    /// The one queue: hooks that read each other's results must not run concurrently.
    pub(crate) const QUEUE: &str = "/modules/metallb/main";
    /// CRDs first, so the schemas match this module version before anything writes objects.
    pub(crate) const ENSURE_CRDS: u32 = 1;
    /// Generates the classes the adoption binds Services to.
    pub(crate) const MIGRATE_V1: u32 = 5;
    /// BGP settings → BGP objects; before discovery, which reads them.
    pub(crate) const MIGRATE_BGP: u32 = 7;
    /// After the migration (reads `ipAddressPoolToMLBCMap` and the generated classes), before
    /// discovery (which must see the pinned IPs, or it would hand out new ones).
    pub(crate) const ADOPT_SERVICES: u32 = 10;
    /// After the migration created classes; independent of discovery.
    pub(crate) const NODE_MEMBERSHIP: u32 = 15;
    /// Last: sees migrated classes and adopted Services.
    pub(crate) const DISCOVERY: u32 = 20;
    /// After the BGP migration created configurations; independent of discovery.
    pub(crate) const BGP_STATUS: u32 = 22;
    /// afterHelm: the Helm release creates the namespace the Secret lives in.
    pub(crate) const GOSSIP_KEY_AFTER_HELM: u32 = 10;
    /// afterHelm, for the same reason: the copies live in the module's namespace.
    pub(crate) const BGP_SECRETS_AFTER_HELM: u32 = 20;
}

/// Every hook, in the index order of `hook list`.
pub fn hooks() -> [&'static dyn Hook; 10] {
    [
        &ensure_crds::EnsureCrds,
        &migrate_v1::MigrateV1,
        &migrate_bgp::MigrateBgp,
        &adopt_services::AdoptServices,
        &node_membership::NodeMembership,
        &discovery::Discovery,
        &bgp_status::BgpStatus,
        &gossip_key::GossipKey,
        &bgp_secrets::BgpSecrets,
        &alerts::Alerts,
    ]
}

/// The batch entry point: `hook list`, `hook config`, `hook run N`.
pub fn run() -> ExitCode {
    addon::run_batch(metallb_api::names::module::VALUES_KEY, &hooks())
}
