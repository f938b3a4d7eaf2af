//! Types of the metallb module's API: custom resources, ModuleConfig settings, internal
//! values, and the names of every label, annotation and condition it uses.
//!
//! No I/O lives here; the hooks, the speaker and the code generator all share these types.

pub mod announcement;
pub mod bgp;
pub mod child;
pub mod class;
pub mod metallb;
pub mod names;
pub mod schema;
pub mod settings;
pub mod values;

pub use announcement::{
    SDNInternalBGPAnnouncement, SDNInternalBGPAnnouncementSpec, SDNInternalBGPAnnouncementStatus,
};
pub use bgp::{
    MetalLoadBalancerBGPPeer, MetalLoadBalancerBGPPeerSpec, MetalLoadBalancerConfiguration,
    MetalLoadBalancerConfigurationSpec, MetalLoadBalancerPool, MetalLoadBalancerPoolSpec,
};
pub use child::{SDNInternalL2LBService, SDNInternalL2LBServiceSpec, SDNInternalL2LBServiceStatus};
pub use class::{MetalLoadBalancerClass, MetalLoadBalancerClassSpec, MetalLoadBalancerClassStatus};

/// Re-exported so users of these types name the same versions.
pub use k8s_openapi;
