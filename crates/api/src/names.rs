//! Every name the module reads or writes on Kubernetes objects, in one place.
//!
//! Users and other components see these strings (annotations on their Services, labels on
//! nodes, condition types in `kubectl describe`), so they are part of the module's public
//! contract: changing one is a breaking change. Names inherited from the Deckhouse Go module
//! and from MetalLB keep their exact spelling so an upgrade keeps working.

/// The module itself.
pub mod module {
    /// Module name: `module.yaml`, `Chart.yaml`, the `module` label value.
    pub const NAME: &str = "metallb";
    /// Namespace of the module's workloads.
    pub const NAMESPACE: &str = "d8-metallb";
    /// Top-level key of the module's values.
    pub const VALUES_KEY: &str = "metallb";
    /// Name of the speakers' DaemonSet and the `app` label of its pods.
    pub const SPEAKER_APP: &str = "l2lb-speaker";
    /// Name of the BGP speakers' DaemonSet and the `app` label of its pods.
    pub const BGP_SPEAKER_APP: &str = "bgp-speaker";
    /// Secret in [`NAMESPACE`] holding the speakers' shared gossip key.
    pub const GOSSIP_KEY_SECRET: &str = "l2lb-speaker-gossip-key";
    /// Data key of the gossip key inside [`GOSSIP_KEY_SECRET`].
    pub const GOSSIP_KEY_SECRET_KEY: &str = "key";
    /// Prefix of the field manager of an L2 speaker's writes (`metallb-speaker/<node>`): the
    /// `NodeCanAnnounce` condition of the children its node announces.
    pub const SPEAKER_STATUS_MANAGER: &str = "metallb-speaker";
}

/// API groups and kinds.
pub mod api {
    /// Group of the user-facing custom resources.
    pub const GROUP: &str = "network.deckhouse.io";
    /// Group of the module's internal custom resources.
    pub const INTERNAL_GROUP: &str = "internal.network.deckhouse.io";
    /// Version served for both groups.
    pub const VERSION: &str = "v1alpha1";
    /// `apiVersion` of `MetalLoadBalancerClass`.
    pub const CLASS_API_VERSION: &str = "network.deckhouse.io/v1alpha1";
    /// Kind of the user-facing class.
    pub const CLASS_KIND: &str = "MetalLoadBalancerClass";
    /// `apiVersion` of `SDNInternalL2LBService`.
    pub const CHILD_API_VERSION: &str = "internal.network.deckhouse.io/v1alpha1";
    /// Kind of the per-IP child object.
    pub const CHILD_KIND: &str = "SDNInternalL2LBService";
    /// `spec.loadBalancerClass` written into every child; the value the previous
    /// implementation's controller and speaker were started with (`--lb-class`).
    pub const CHILD_LOAD_BALANCER_CLASS: &str = "l2-load-balancer-class.network.deckhouse.io";
    /// Kind of a BGP address pool.
    pub const POOL_KIND: &str = "MetalLoadBalancerPool";
    /// Kind of a BGP peer.
    pub const BGP_PEER_KIND: &str = "MetalLoadBalancerBGPPeer";
    /// Kind of a BGP configuration (nodes, peers, advertisements).
    pub const CONFIGURATION_KIND: &str = "MetalLoadBalancerConfiguration";
    /// Kind of the per-IP object the BGP speakers read.
    pub const BGP_ANNOUNCEMENT_KIND: &str = "SDNInternalBGPAnnouncement";
    /// `apiVersion` of the platform's `ModuleConfig`.
    pub const MODULE_CONFIG_API_VERSION: &str = "deckhouse.io/v1alpha1";
    /// Kind of the platform's module configuration.
    pub const MODULE_CONFIG_KIND: &str = "ModuleConfig";
    /// `apiVersion` of MetalLB's native L2 objects read by the v1 migration.
    pub const METALLB_API_VERSION: &str = "metallb.io/v1beta1";
}

/// Annotations read from user Services.
pub mod annotations {
    /// How many public IPs a Service wants (an integer in `1..=64`).
    pub const EXTERNAL_IPS_COUNT: &str = "network.deckhouse.io/l2-load-balancer-external-ips-count";
    /// Comma-separated IPs a Service asks for, index by index.
    pub const LOAD_BALANCER_IPS: &str = "network.deckhouse.io/load-balancer-ips";
    /// Services with the same key may share IPs.
    pub const SHARED_IP_KEY: &str = "network.deckhouse.io/load-balancer-shared-ip-key";
    /// Names the `MetalLoadBalancerClass` of a Service (below `spec.loadBalancerClass`).
    pub const METAL_LOAD_BALANCER_CLASS: &str = "network.deckhouse.io/metal-load-balancer-class";

    /// Names the `MetalLoadBalancerPool` (BGP mode) a Service takes its IPs from; MetalLB's
    /// [`METALLB_ADDRESS_POOL`] and [`METALLB_UNIVERSE_ADDRESS_POOL`] name it too, below this one.
    pub const LOAD_BALANCER_POOL: &str = "network.deckhouse.io/load-balancer-pool";

    /// Preferred announcing node of a child written by the previous implementation; read
    /// when adopting its children.
    pub const PREFERRED_L2_SPEAKER_NODE: &str = "metallb.io/preferredL2SpeakerNode";

    /// MetalLB's pool annotations (both prefixes); read by the v1 adoption, unsupported otherwise.
    pub const METALLB_ADDRESS_POOL: &str = "metallb.io/address-pool";
    /// Legacy prefix of [`METALLB_ADDRESS_POOL`].
    pub const METALLB_UNIVERSE_ADDRESS_POOL: &str = "metallb.universe.tf/address-pool";
    /// Pool MetalLB allocated a Service's IP from.
    pub const METALLB_IP_ALLOCATED_FROM_POOL: &str = "metallb.io/ip-allocated-from-pool";
    /// Legacy prefix of [`METALLB_IP_ALLOCATED_FROM_POOL`].
    pub const METALLB_UNIVERSE_IP_ALLOCATED_FROM_POOL: &str =
        "metallb.universe.tf/ip-allocated-from-pool";
    /// MetalLB's requested-IPs annotation; unsupported here (alerted).
    pub const METALLB_LOAD_BALANCER_IPS: &str = "metallb.io/loadBalancerIPs";
    /// Legacy prefix of [`METALLB_LOAD_BALANCER_IPS`].
    pub const METALLB_UNIVERSE_LOAD_BALANCER_IPS: &str = "metallb.universe.tf/loadBalancerIPs";
    /// MetalLB's sharing annotation; unsupported here (alerted).
    pub const METALLB_ALLOW_SHARED_IP: &str = "metallb.io/allow-shared-ip";
    /// Legacy prefix of [`METALLB_ALLOW_SHARED_IP`].
    pub const METALLB_UNIVERSE_ALLOW_SHARED_IP: &str = "metallb.universe.tf/allow-shared-ip";

    /// MetalLB annotations on Services that this module does not honour; their presence is
    /// reported by an alert so users move to the `network.deckhouse.io/*` ones. Exceptions:
    /// [`METALLB_POOL_KEYS`] naming an existing `MetalLoadBalancerPool` bind the Service to it,
    /// and then [`METALLB_LOAD_BALANCER_IPS`] is honoured too.
    pub const UNSUPPORTED_METALLB: [&str; 6] = [
        METALLB_ADDRESS_POOL,
        METALLB_UNIVERSE_ADDRESS_POOL,
        METALLB_LOAD_BALANCER_IPS,
        METALLB_UNIVERSE_LOAD_BALANCER_IPS,
        METALLB_ALLOW_SHARED_IP,
        METALLB_UNIVERSE_ALLOW_SHARED_IP,
    ];
}

/// The MetalLB keys that bind a Service to a BGP pool, after
/// [`annotations::LOAD_BALANCER_POOL`].
pub const METALLB_POOL_KEYS: [&str; 2] =
    [annotations::METALLB_ADDRESS_POOL, annotations::METALLB_UNIVERSE_ADDRESS_POOL];

/// Finalizers.
pub mod finalizers {
    /// MetalLB's finalizer on Services; the v1 adoption removes exactly this one.
    pub const LOAD_BALANCER_CLEANUP: &str = "service.kubernetes.io/load-balancer-cleanup";
}

/// Labels.
pub mod labels {
    /// On every node some class selects; the speaker DaemonSet runs there.
    pub const MEMBER: &str = "l2-load-balancer.network.deckhouse.io/member";
    /// On every node some `MetalLoadBalancerConfiguration` selects (and that is not excluded
    /// from external load balancers); the BGP speaker DaemonSet runs there.
    pub const BGP_MEMBER: &str = "bgp-load-balancer.network.deckhouse.io/member";
    /// Standard Kubernetes label: the node must not carry load-balancer traffic.
    pub const EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS: &str =
        "node.kubernetes.io/exclude-from-external-load-balancers";
    /// `heritage: deckhouse` marks objects the platform manages.
    pub const HERITAGE: &str = "heritage";
    /// Value of [`HERITAGE`].
    pub const HERITAGE_VALUE: &str = "deckhouse";
    /// `module: metallb` marks objects of this module.
    pub const MODULE: &str = "module";
    /// Marks classes generated by the v1 migration; only those are ever updated or deleted
    /// by it.
    pub const AUTO_GENERATED_BY: &str = "auto-generated-by";
    /// Value of [`AUTO_GENERATED_BY`].
    pub const AUTO_GENERATED_BY_VALUE: &str = "d8-migration-hook";
    /// Name of the parent Service, on every child.
    pub const PARENT_SERVICE: &str = "parent-service";
    /// Name of the class, on every child.
    pub const CLASS: &str = "network.deckhouse.io/metal-load-balancer-class";
    /// Marks configuration objects for the platform's backups.
    pub const BACKUP_CLUSTER_CONFIG: &str = "backup.deckhouse.io/cluster-config";
    /// A Secret a `MetalLoadBalancerBGPPeer` names must carry this label with the value
    /// `"true"`: the module reads only labelled Secrets, never every Secret of the cluster.
    pub const BGP_PASSWORD: &str = "network.deckhouse.io/metallb-bgp-password";
    /// Marks the module's copies of password Secrets in its namespace (value `"true"`), so the
    /// copies are found, and deleted when no peer names them, without reading other Secrets.
    pub const BGP_PASSWORD_COPY: &str = "network.deckhouse.io/metallb-bgp-password-copy";
    /// Pod label of the speakers.
    pub const APP: &str = "app";
}

/// Condition types and reasons.
pub mod conditions {
    /// On a Service: which class it is bound to (the message names it).
    pub const LOAD_BALANCER_CLASS: &str = "network.deckhouse.io/load-balancer-class";
    /// Reason of [`LOAD_BALANCER_CLASS`] when bound.
    pub const REASON_CLASS_BOUND: &str = "LoadBalancerClassBound";
    /// On a Service bound to a BGP pool: which `MetalLoadBalancerPool` (the message names it).
    pub const LOAD_BALANCER_POOL: &str = "network.deckhouse.io/load-balancer-pool";
    /// Reason of [`LOAD_BALANCER_POOL`] when a pool annotation or an earlier binding chose it.
    pub const REASON_POOL_BOUND: &str = "LoadBalancerPoolBound";
    /// Reason of [`LOAD_BALANCER_POOL`] when nothing else applied and the pool assigns
    /// automatically (`autoAssign`).
    pub const REASON_POOL_AUTO_ASSIGNED: &str = "LoadBalancerPoolAutoAssigned";
    /// Reason of [`LOAD_BALANCER_POOL`] (false) when the pool named or bound does not exist and
    /// nothing else applies.
    pub const REASON_POOL_NOT_FOUND: &str = "LoadBalancerPoolNotFound";
    /// Reason of `AnnotationsValid` when a pool annotation names no `MetalLoadBalancerPool`.
    pub const REASON_UNKNOWN_POOL_ANNOTATION: &str = "UnknownPoolAnnotation";
    /// Reason of `AnnotationsValid` when a Service names a class and a pool and the class won.
    pub const REASON_POOL_ANNOTATION_IGNORED: &str = "PoolAnnotationIgnored";
    /// Reason of `Announced` on a BGP announcement when some node announces it to some peer.
    pub const REASON_ROUTES_ANNOUNCED: &str = "RoutesAnnounced";
    /// Reason of `Announced` on a BGP announcement when no route applies.
    pub const REASON_NO_ROUTE: &str = "NoRoute";
    /// On a Service: whether every requested public IP was assigned.
    pub const ALL_PUBLIC_IPS_ASSIGNED: &str = "AllPublicIPsAssigned";
    /// Reason of [`ALL_PUBLIC_IPS_ASSIGNED`] when true.
    pub const REASON_ALL_IPS_ASSIGNED: &str = "AllIPsAssigned";
    /// Reason of [`ALL_PUBLIC_IPS_ASSIGNED`] when false.
    pub const REASON_NOT_ALL_IPS_ASSIGNED: &str = "NotAllIPsAssigned";
    /// Reason of [`LOAD_BALANCER_CLASS`] when the bound class vanished and another was chosen.
    pub const REASON_CLASS_REBOUND: &str = "LoadBalancerClassRebound";
    /// Reason of [`LOAD_BALANCER_CLASS`] (false) when the bound class vanished and none applies.
    pub const REASON_CLASS_NOT_FOUND: &str = "LoadBalancerClassNotFound";
    /// On a Service: whether every assigned public IP is announced by some node.
    pub const ALL_PUBLIC_IPS_ANNOUNCED: &str = "AllPublicIPsAnnounced";
    /// Reason of [`ALL_PUBLIC_IPS_ANNOUNCED`] when true.
    pub const REASON_ALL_IPS_ANNOUNCED: &str = "AllIPsAnnounced";
    /// Reason of [`ALL_PUBLIC_IPS_ANNOUNCED`] when false.
    pub const REASON_NOT_ALL_IPS_ANNOUNCED: &str = "NotAllIPsAnnounced";
    /// On a Service, only while it is so (`False`): the API server refuses writing one of its
    /// per-IP objects, so the module holds that write back (see the hooks' write ledger).
    pub const CHILD_OBJECTS_WRITTEN: &str = "ChildObjectsWritten";
    /// Reason of [`CHILD_OBJECTS_WRITTEN`].
    pub const REASON_WRITE_REFUSED: &str = "WriteRefused";
    /// On a Service: whether the module's annotations were used as written.
    pub const ANNOTATIONS_VALID: &str = "AnnotationsValid";
    /// Reason of [`ANNOTATIONS_VALID`] when true.
    pub const REASON_ANNOTATIONS_ACCEPTED: &str = "AnnotationsAccepted";
    /// Reason of [`ANNOTATIONS_VALID`]: the IP count was not an integer in `1..=64`.
    pub const REASON_INVALID_EXTERNAL_IPS_COUNT: &str = "InvalidExternalIPsCount";
    /// Reason of [`ANNOTATIONS_VALID`]: a requested IP was not given.
    pub const REASON_REQUESTED_IPS_REJECTED: &str = "RequestedIPsRejected";
    /// Reason of [`ANNOTATIONS_VALID`]: the sharing key could not be honoured.
    pub const REASON_SHARING_REJECTED: &str = "SharingRejected";
    /// Reason of [`ANNOTATIONS_VALID`]: the class annotation names no class.
    pub const REASON_UNKNOWN_CLASS_ANNOTATION: &str = "UnknownClassAnnotation";
    /// On a child: whether a node announces its IP.
    pub const ANNOUNCED: &str = "Announced";
    /// Reason of [`ANNOUNCED`] when true.
    pub const REASON_NODE_ASSIGNED: &str = "NodeAssigned";
    /// Reason of [`ANNOUNCED`]: no node is eligible.
    pub const REASON_NO_CANDIDATE_NODE: &str = "NoCandidateNode";
    /// Reason of [`ANNOUNCED`]: the child has no IP.
    pub const REASON_NO_IP_ASSIGNED: &str = "NoIPAssigned";
    /// On a child, written by the speaker of its `status.node` and only while it is so
    /// (`False`): that node cannot answer for the IP on every interface its class names. Each
    /// speaker owns its entry by server-side apply (field manager
    /// [`super::module::SPEAKER_STATUS_MANAGER`]`/<node>`); the hooks keep it as a condition
    /// type they do not own.
    pub const NODE_CAN_ANNOUNCE: &str = "NodeCanAnnounce";
    /// Reason of [`NODE_CAN_ANNOUNCE`]: an interface named by the class does not exist on the node.
    pub const REASON_INTERFACE_MISSING: &str = "InterfaceMissing";
    /// Reason of [`NODE_CAN_ANNOUNCE`]: an interface named by the class is down or has no MAC.
    pub const REASON_INTERFACE_DOWN: &str = "InterfaceDown";
    /// On a class: whether every pool entry parsed and the pool is not empty.
    pub const POOL_VALID: &str = "PoolValid";
    /// Reason of [`POOL_VALID`] when true.
    pub const REASON_POOL_PARSED: &str = "PoolParsed";
    /// Reason of [`POOL_VALID`]: some entries did not parse.
    pub const REASON_INVALID_POOL_ENTRIES: &str = "InvalidPoolEntries";
    /// Reason of [`POOL_VALID`]: no usable address.
    pub const REASON_EMPTY_POOL: &str = "EmptyPool";
    /// On a class: whether its pool shares no address with another class's pool.
    pub const POOL_DISJOINT: &str = "PoolDisjoint";
    /// Reason of [`POOL_DISJOINT`] when true.
    pub const REASON_NO_OVERLAP: &str = "NoOverlap";
    /// Reason of [`POOL_DISJOINT`] when false.
    pub const REASON_POOL_OVERLAP: &str = "PoolOverlap";
    /// On a class: whether it is the default class in use.
    pub const DEFAULT_CLASS: &str = "DefaultClass";
    /// Reason of [`DEFAULT_CLASS`] when true.
    pub const REASON_DEFAULT_CLASS_ACTIVE: &str = "DefaultClassActive";
    /// Reason of [`DEFAULT_CLASS`]: default, but another default class wins (first by name).
    pub const REASON_DEFAULT_CLASS_SHADOWED: &str = "DefaultClassShadowed";
    /// Reason of [`DEFAULT_CLASS`]: `isDefault` is not set.
    pub const REASON_NOT_DEFAULT: &str = "NotDefault";
    /// On a BGP configuration: whether every peer and pool it names exists and its attributes
    /// are valid (the message lists every problem).
    pub const CONFIGURATION_VALID: &str = "ConfigurationValid";
    /// Reason of [`CONFIGURATION_VALID`] when true.
    pub const REASON_CONFIGURATION_RESOLVED: &str = "ConfigurationResolved";
    /// On a BGP peer: whether its TCP MD5 password Secret is usable (or none is asked for).
    pub const PASSWORD_SECRET_FOUND: &str = "PasswordSecretFound";
    /// Reason of [`PASSWORD_SECRET_FOUND`]: the peer names no Secret.
    pub const REASON_NO_PASSWORD: &str = "NoPassword";
    /// Reason of [`PASSWORD_SECRET_FOUND`]: the Secret is copied for the speakers.
    pub const REASON_PASSWORD_SECRET_COPIED: &str = "PasswordSecretCopied";
    /// Reason of [`PASSWORD_SECRET_FOUND`] (false): missing, or without the label.
    pub const REASON_PASSWORD_SECRET_NOT_FOUND: &str = "PasswordSecretNotFound";
    /// Reason of [`PASSWORD_SECRET_FOUND`] (false): the Secret has no `password` key.
    pub const REASON_PASSWORD_KEY_MISSING: &str = "PasswordKeyMissing";
    /// Reason of [`PASSWORD_SECRET_FOUND`] (false): the copy's name would be too long.
    pub const REASON_PASSWORD_SECRET_NAME_TOO_LONG: &str = "PasswordSecretNameTooLong";
}

/// Names of BGP mode's objects and their contents.
pub mod bgp {
    /// Prefix of the copies of password Secrets in the module's namespace:
    /// `bgp-pwd-<namespace>-<name>`, the original module's naming.
    pub const PASSWORD_COPY_PREFIX: &str = "bgp-pwd-";
    /// Data key of the TCP MD5 password in a password Secret and its copy.
    pub const PASSWORD_KEY: &str = "password";
    /// Port of a peer without `peerPort` (RFC 4271 §8.2.1).
    pub const DEFAULT_PEER_PORT: u16 = 179;
    /// Hold time of a peer without `holdTime`: RFC 4271 §10's suggested value.
    pub const DEFAULT_HOLD_TIME_SECONDS: u32 = 90;
    /// BFD intervals (milliseconds) and multiplier of a peer whose `bfd` leaves them out:
    /// FRR's and MetalLB's defaults, so a router configured for them matches.
    pub const DEFAULT_BFD_INTERVAL_MS: u32 = 300;
    /// See [`DEFAULT_BFD_INTERVAL_MS`].
    pub const DEFAULT_BFD_DETECT_MULTIPLIER: u32 = 3;
    /// Name of the configuration the settings migration creates.
    pub const MIGRATED_CONFIGURATION: &str = "migrated-bgp";
    /// Prefix of peers the settings migration creates: `peer-<index>`.
    pub const MIGRATED_PEER_PREFIX: &str = "peer-";
    /// Prefix of pools the settings migration creates for unnamed pools: `pool-<index>`.
    pub const MIGRATED_POOL_PREFIX: &str = "pool-";

    /// Name of the copy, in the module's namespace, of the password Secret `namespace/name`.
    ///
    /// Both parts are DNS names, so the result is one too while it fits in 253 characters; a
    /// peer whose Secret name is longer is reported on the peer and gets no password.
    pub fn password_copy_name(namespace: &str, name: &str) -> String {
        format!("{PASSWORD_COPY_PREFIX}{namespace}-{name}")
    }
}

/// Names used by the v1 → v2 migration.
pub mod migration {
    /// The default class generated from v1 `layer2` pools.
    pub const DEFAULT_CLASS: &str = "l2-default";
    /// Prefix of classes generated from MetalLB `L2Advertisement` objects.
    pub const GENERATED_CLASS_PREFIX: &str = "autogenerated-";
}

/// Metrics the hooks export (the platform scrapes them as `d8_*` series) and their groups.
/// Alert rules in `monitoring/` are built on these names.
pub mod metrics {
    /// Group of the discovery hook's per-class and per-Service series.
    pub const GROUP_DISCOVERY: &str = "d8_metallb_discovery";
    /// Addresses in a class's pool (`class` label); a float, since IPv6 pools are huge.
    pub const CLASS_POOL_SIZE: &str = "d8_metallb_class_pool_size";
    /// Addresses of a class allocated to Services (`class` label).
    pub const CLASS_ALLOCATED_IPS: &str = "d8_metallb_class_allocated_ips";
    /// Services of a class that did not get every IP they asked for (`class` label).
    pub const CLASS_SERVICES_NOT_FULLY_ASSIGNED: &str =
        "d8_metallb_class_services_not_fully_assigned";
    /// Public IPs a Service asked for but did not get (`namespace`, `name`, `class` labels);
    /// exported only while above zero.
    pub const SERVICE_UNASSIGNED_IPS: &str = "d8_metallb_service_unassigned_ips";
    /// A member node (some class selects it) without a Ready speaker pod (`node` label); exported
    /// only while such nodes exist and once any speaker pod exists at all, so a fresh install
    /// before the DaemonSet rolls out does not alert.
    pub const MEMBER_NODE_WITHOUT_READY_SPEAKER: &str =
        "d8_metallb_member_node_without_ready_speaker";
    /// Objects a hook skipped because they were malformed (`kind`, `namespace`, `name`,
    /// `reason` labels); exported only while such objects exist.
    pub const SKIPPED_OBJECTS: &str = "d8_metallb_skipped_objects";
    /// Addresses in a BGP pool (`pool` label); a float, since IPv6 pools are huge.
    pub const POOL_SIZE: &str = "d8_metallb_pool_size";
    /// Addresses of a BGP pool allocated to Services (`pool` label).
    pub const POOL_ALLOCATED_IPS: &str = "d8_metallb_pool_allocated_ips";
    /// A write the API server refused in several runs in a row and the hook now holds back
    /// (`kind`, `namespace`, `name`, `write` labels); exported only while held back.
    pub const REFUSED_WRITES: &str = "d8_metallb_refused_writes";

    /// Group of the v1 migration hook's [`SKIPPED_OBJECTS`] series.
    pub const GROUP_MIGRATION: &str = "d8_metallb_migration";
    /// Group of the BGP settings migration's [`SKIPPED_OBJECTS`] series.
    pub const GROUP_BGP_MIGRATION: &str = "d8_metallb_bgp_migration";
    /// Group of the BGP configuration status hook's series.
    pub const GROUP_BGP_STATUS: &str = "d8_metallb_bgp_status";
    /// A problem of a BGP configuration (`configuration`, `reason`, `detail` labels): a named
    /// peer or pool missing, an invalid community or aggregation length; exported only while
    /// the problem exists.
    pub const BGP_CONFIGURATION_ISSUES: &str = "d8_metallb_bgp_configuration_issues";
    /// A BGP member node (some configuration selects it, not excluded from external load
    /// balancers) without a Ready BGP speaker pod (`node` label); exported only while such
    /// nodes exist and once any BGP speaker pod exists at all.
    pub const BGP_MEMBER_NODE_WITHOUT_READY_SPEAKER: &str =
        "d8_metallb_bgp_member_node_without_ready_speaker";
    /// Group of the adoption hook's [`SKIPPED_OBJECTS`] series.
    pub const GROUP_ADOPTION: &str = "d8_metallb_adoption";
    /// Group of the node membership hook's [`SKIPPED_OBJECTS`] series.
    pub const GROUP_NODE_MEMBERSHIP: &str = "d8_metallb_node_membership";

    /// Group of [`NOT_SUPPORTED_SERVICE_ANNOTATIONS`]; the name of the previous implementation.
    pub const GROUP_NOT_SUPPORTED_ANNOTATIONS: &str =
        "D8MetallbNotSupportedServiceAnnotationsDetected";
    /// A Service carries a MetalLB annotation this module ignores (`namespace`, `name`,
    /// `annotation` labels).
    pub const NOT_SUPPORTED_SERVICE_ANNOTATIONS: &str =
        "d8_metallb_not_supported_service_annotations_detected";
    /// Group of [`UPDATE_MC_VERSION_REQUIRED`].
    pub const GROUP_UPDATE_MC_VERSION_REQUIRED: &str = "D8MetallbUpdateMCVersionRequired";
    /// The ModuleConfig is still at settings version 1.
    pub const UPDATE_MC_VERSION_REQUIRED: &str = "d8_metallb_update_mc_version_required";
    /// Group of [`OBSOLETE_LAYER2_POOLS_ARE_USED`].
    pub const GROUP_OBSOLETE_LAYER2_POOLS: &str = "D8MetallbObsoleteLayer2PoolsAreUsed";
    /// A version 2 ModuleConfig still lists a `layer2` pool (`name` label), which is ignored.
    pub const OBSOLETE_LAYER2_POOLS_ARE_USED: &str = "d8_metallb_obsolete_layer2_pools_are_used";
}
