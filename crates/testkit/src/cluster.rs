//! A fake cluster: objects by kind/namespace/name with the API server's bookkeeping.
//!
//! What the framework's object patcher relies on is emulated: kind resolution (kind, plural or
//! short name, case-insensitive), namespaced vs cluster-scoped kinds, `resourceVersion` (bumped on
//! every real change, not on no-op updates), `generation` (only on kinds that have one: custom
//! resources and workloads, never Services, Nodes, Namespaces or Pods; bumped when anything
//! outside `metadata`/`status` changes), `uid`, `creationTimestamp`, the status subresource (the
//! main resource ignores `.status`, the subresource only takes `.status`), namespaces that must
//! exist, and ownerReference garbage collection on delete.
//! Everything is deterministic: uids and resourceVersions come from a counter, the clock is fixed.
//!
//! Built-in kinds are stored the way the API server stores them after decoding into its Go
//! types ([`KindInfo::typed`]): `null` members are dropped, and so are the zero values the Go
//! types mark `omitempty` where hooks write them (a condition's `observedGeneration: 0`, an
//! empty `status.conditions` or `status.loadBalancer.ingress`). A hook that compares what it
//! wrote with what it reads back then sees what a real server gives it. Custom resources keep
//! what was sent (their schemas may declare `nullable`).
//!
//! A namespace being deleted ([`FakeCluster::terminate_namespace`]) refuses new objects as the
//! server does; [`FakeCluster::refuse_writes`] makes the server refuse every write to one
//! object, as an admission webhook or a quota would.
//!
//! Not emulated: finalizers of other objects, admission/validation of object content,
//! defaulting of built-in kinds, `generateName`, server-side apply.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::{Error, Result};

/// What the fake API knows about a kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// API group (`""` for core).
    pub group: String,
    /// Preferred `group/version`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Lower-case plural resource name.
    pub plural: String,
    /// Short names (`ds`, `cm`).
    pub short_names: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether `.status` is a subresource.
    pub status_subresource: bool,
    /// Whether the server keeps `metadata.generation` (custom resources and workloads do;
    /// Services, Nodes, Namespaces, Pods and plain data kinds do not).
    pub generation: bool,
    /// A built-in kind, decoded into Go types on every write: `null` and `omitempty` zero
    /// values do not survive (see the module documentation).
    pub typed: bool,
}

impl KindInfo {
    /// A custom resource kind (with `metadata.generation`, stored as sent); the plural is the
    /// lower-cased kind plus `s` unless given otherwise.
    pub fn new(api_version: &str, kind: &str, namespaced: bool, status_subresource: bool) -> Self {
        Self {
            group: group_of(api_version).to_owned(),
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            plural: pluralize(kind),
            short_names: Vec::new(),
            namespaced,
            status_subresource,
            generation: true,
            typed: false,
        }
    }

    /// A built-in kind: typed, with or without `metadata.generation`.
    fn builtin(
        api_version: &str,
        kind: &str,
        namespaced: bool,
        status_subresource: bool,
        generation: bool,
    ) -> Self {
        Self {
            generation,
            typed: true,
            ..Self::new(api_version, kind, namespaced, status_subresource)
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    fn answers_to(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        lower == self.kind.to_ascii_lowercase()
            || lower == self.plural
            || self.short_names.contains(&lower)
    }
}

fn pluralize(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s') || lower.ends_with("ch") || lower.ends_with('x') {
        format!("{lower}es")
    } else if let Some(stem) =
        lower.strip_suffix('y').filter(|s| !s.ends_with(['a', 'e', 'o', 'u']))
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// The group of an apiVersion (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// Where an object lives: (group, kind, namespace, name); `namespace` is empty for cluster scope.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace (`""` for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// How dependents are treated on delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are deleted first (the framework's `Delete`).
    Foreground,
    /// Dependents are deleted by the garbage collector (`DeleteInBackground`).
    Background,
    /// Dependents lose the owner reference and stay (`DeleteNonCascading`).
    Orphan,
}

/// An API error, worded like the API server's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404.
    #[error("{resource} {name:?} not found")]
    NotFound {
        /// Plural resource (`configmaps`).
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409 on create.
    #[error("{resource} {name:?} already exists")]
    AlreadyExists {
        /// Plural resource.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409 on update with a stale resourceVersion.
    #[error("Operation cannot be fulfilled on {resource} {name:?}: the object has been modified")]
    Conflict {
        /// Plural resource.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 422 or 400.
    #[error("{0}")]
    Invalid(String),
    /// 403: refused by the server (a namespace being deleted, an admission webhook, a quota).
    #[error("{0}")]
    Forbidden(String),
    /// Discovery does not know the kind.
    #[error("no matches for kind {kind:?} in version {api_version:?}")]
    UnknownKind {
        /// Requested kind.
        kind: String,
        /// Requested apiVersion.
        api_version: String,
    },
}

/// The fake cluster.
#[derive(Clone, Debug)]
pub struct FakeCluster {
    kinds: Vec<KindInfo>,
    objects: BTreeMap<ObjectKey, Value>,
    /// Objects every write to which is refused, with the server's message.
    refused: BTreeMap<ObjectKey, String>,
    counter: u64,
    now: String,
}

impl Default for FakeCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCluster {
    /// An empty cluster knowing the built-in kinds hooks usually touch; add CRDs with
    /// [`Self::register_kind`].
    pub fn new() -> Self {
        // The last argument: whether the kind has `metadata.generation`.
        let k = KindInfo::builtin;
        let kinds = vec![
            k("v1", "Namespace", false, true, false).short(&["ns"]),
            k("v1", "Node", false, true, false).short(&["no"]),
            k("v1", "Pod", true, true, false).short(&["po"]),
            k("v1", "Service", true, true, false).short(&["svc"]),
            k("v1", "ConfigMap", true, false, false).short(&["cm"]),
            k("v1", "Secret", true, false, false),
            k("v1", "ServiceAccount", true, false, false).short(&["sa"]),
            k("v1", "Endpoints", true, false, false).short(&["ep"]),
            k("apps/v1", "Deployment", true, true, true).short(&["deploy"]),
            k("apps/v1", "DaemonSet", true, true, true).short(&["ds"]),
            k("apps/v1", "StatefulSet", true, true, true).short(&["sts"]),
            k("batch/v1", "Job", true, true, true),
            k("discovery.k8s.io/v1", "EndpointSlice", true, false, false),
            k("coordination.k8s.io/v1", "Lease", true, false, false),
            k("rbac.authorization.k8s.io/v1", "Role", true, false, false),
            k("rbac.authorization.k8s.io/v1", "RoleBinding", true, false, false),
            k("rbac.authorization.k8s.io/v1", "ClusterRole", false, false, false),
            k("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", false, false, false),
            k("apiextensions.k8s.io/v1", "CustomResourceDefinition", false, true, true)
                .short(&["crd"]),
            KindInfo::new("deckhouse.io/v1alpha1", "ModuleConfig", false, true).short(&["mc"]),
        ];
        Self {
            kinds,
            objects: BTreeMap::new(),
            refused: BTreeMap::new(),
            counter: 0,
            now: "2024-01-01T00:00:00Z".into(),
        }
    }

    /// Marks a namespace as being deleted, as `kubectl delete namespace` does while the
    /// namespace's content is still being removed (its `kubernetes` finalizer): it gets a
    /// `deletionTimestamp` and phase `Terminating`, and from now on refuses new objects.
    pub fn terminate_namespace(&mut self, name: &str) -> Result<()> {
        let ns = ObjectKey {
            group: String::new(),
            kind: "Namespace".into(),
            namespace: String::new(),
            name: name.into(),
        };
        let now = self.now.clone();
        let Some(object) = self.objects.get_mut(&ns) else {
            return Err(Error::Api(ApiError::NotFound {
                resource: "namespaces".into(),
                name: name.into(),
            }));
        };
        merge(
            object,
            &serde_json::json!({"metadata": {"deletionTimestamp": now}, "status": {"phase": "Terminating"}}),
        );
        self.counter += 1;
        let rv = self.counter.to_string();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), rv.into());
        }
        Ok(())
    }

    /// Makes the server refuse every write (create, update, patch, delete) of one object with
    /// `message`, as an admission webhook or a quota does.
    pub fn refuse_writes(
        &mut self,
        api_version: Option<&str>,
        kind: &str,
        namespace: &str,
        name: &str,
        message: &str,
    ) -> Result<()> {
        let info = self.resolve_kind(api_version, kind).map_err(Error::Api)?;
        let k = key(info, namespace, name);
        self.refused.insert(k, message.to_owned());
        Ok(())
    }

    /// Undoes [`Self::refuse_writes`] for one object.
    pub fn allow_writes(
        &mut self,
        api_version: Option<&str>,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<()> {
        let info = self.resolve_kind(api_version, kind).map_err(Error::Api)?;
        self.refused.remove(&key(info, namespace, name));
        Ok(())
    }

    fn check_refused(&self, k: &ObjectKey) -> Result<(), ApiError> {
        match self.refused.get(k) {
            Some(message) => Err(ApiError::Forbidden(message.clone())),
            None => Ok(()),
        }
    }

    fn terminating(&self, namespace: &str) -> bool {
        let ns = ObjectKey {
            group: String::new(),
            kind: "Namespace".into(),
            namespace: String::new(),
            name: namespace.into(),
        };
        self.objects
            .get(&ns)
            .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()))
    }

    /// Registers (or replaces) a kind, typically a CRD.
    pub fn register_kind(&mut self, info: KindInfo) {
        self.kinds.retain(|k| !(k.group == info.group && k.kind == info.kind));
        self.kinds.push(info);
    }

    /// Sets the timestamp written into `creationTimestamp` of new objects.
    pub fn set_now(&mut self, rfc3339: impl Into<String>) {
        self.now = rfc3339.into();
    }

    /// Resolves a kind name (kind, plural or short name) within an optional apiVersion.
    pub fn resolve_kind(
        &self,
        api_version: Option<&str>,
        kind: &str,
    ) -> Result<&KindInfo, ApiError> {
        let group = api_version.filter(|v| !v.is_empty()).map(group_of);
        self.kinds
            .iter()
            .find(|k| k.answers_to(kind) && group.is_none_or(|g| g == k.group))
            .ok_or_else(|| ApiError::UnknownKind {
                kind: kind.to_owned(),
                api_version: api_version.unwrap_or_default().to_owned(),
            })
    }

    /// Every object, in (group, kind, namespace, name) order.
    pub fn objects(&self) -> impl Iterator<Item = (&ObjectKey, &Value)> {
        self.objects.iter()
    }

    /// Objects of one kind, in (namespace, name) order.
    pub fn list(&self, info: &KindInfo) -> impl Iterator<Item = &Value> {
        self.objects
            .iter()
            .filter(move |(k, _)| k.group == info.group && k.kind == info.kind)
            .map(|(_, v)| v)
    }

    /// One object by apiVersion (optional), kind, namespace and name.
    pub fn get(
        &self,
        api_version: Option<&str>,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<&Value> {
        let info = self.resolve_kind(api_version, kind).ok()?;
        self.objects.get(&key(info, namespace, name))
    }

    /// Inserts or replaces an object as a test fixture: no API rules (status is kept as given,
    /// the namespace need not exist), but the server-managed metadata is filled in.
    pub fn insert(&mut self, object: Value) -> Result<()> {
        let (info, k) = self.key_of(&object).map_err(Error::Api)?;
        let mut object = object;
        normalize(&info, &mut object);
        let old = self.objects.get(&k).cloned();
        self.stamp(&info, &mut object, old.as_ref(), true);
        self.objects.insert(k, object);
        Ok(())
    }

    /// Inserts every document of a YAML stream (a document may also be a list of objects or a
    /// `kind: List`).
    pub fn insert_yaml(&mut self, yaml: &str) -> Result<()> {
        for object in crate::yaml_documents(yaml)? {
            self.insert(object)?;
        }
        Ok(())
    }

    /// Removes an object as a test fixture change (with garbage collection of dependents).
    pub fn remove(
        &mut self,
        api_version: Option<&str>,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<()> {
        self.delete(api_version, kind, namespace, name, Propagation::Background).map_err(Error::Api)
    }

    // === API verbs ===

    /// POST.
    pub fn create(&mut self, object: Value) -> Result<Value, ApiError> {
        let (info, k) = self.key_of(&object)?;
        self.check_refused(&k)?;
        if info.namespaced {
            self.require_namespace(&k.namespace)?;
        }
        if self.objects.contains_key(&k) {
            return Err(ApiError::AlreadyExists { resource: info.plural, name: k.name });
        }
        if info.namespaced && self.terminating(&k.namespace) {
            return Err(ApiError::Forbidden(format!(
                "{} {:?} is forbidden: unable to create new content in namespace {} because it is being terminated",
                info.plural, k.name, k.namespace
            )));
        }
        let mut object = object;
        if info.status_subresource {
            // The API server resets status on create when it is a subresource.
            if let Some(m) = object.as_object_mut() {
                m.shift_remove("status");
            }
        }
        normalize(&info, &mut object);
        self.stamp(&info, &mut object, None, false);
        self.objects.insert(k, object.clone());
        Ok(object)
    }

    /// PUT of the object or of its `status` subresource.
    pub fn update(&mut self, object: Value, subresource: Option<&str>) -> Result<Value, ApiError> {
        let (info, k) = self.key_of(&object)?;
        self.check_refused(&k)?;
        let Some(old) = self.objects.get(&k).cloned() else {
            return Err(ApiError::NotFound { resource: info.plural, name: k.name });
        };
        let sent_rv = object.pointer("/metadata/resourceVersion").and_then(Value::as_str);
        let old_rv = old.pointer("/metadata/resourceVersion").and_then(Value::as_str);
        if sent_rv.is_some_and(|rv| Some(rv) != old_rv) {
            return Err(ApiError::Conflict { resource: info.plural, name: k.name });
        }
        let mut new = match subresource {
            None | Some("") => {
                let mut new = object;
                if info.status_subresource {
                    set_member(&mut new, "status", old.get("status").cloned());
                }
                new
            }
            Some("status") => {
                let mut new = old.clone();
                set_member(&mut new, "status", object.get("status").cloned());
                new
            }
            Some(other) => {
                return Err(ApiError::Invalid(format!("subresource {other:?} is not supported")));
            }
        };
        // Server-managed metadata survives any PUT.
        for field in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
            let v = old.pointer(&format!("/metadata/{field}")).cloned();
            if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                match v {
                    Some(v) => meta.insert(field.into(), v),
                    None => meta.shift_remove(field),
                };
            }
        }
        normalize(&info, &mut new);
        if new == old {
            return Ok(old);
        }
        self.stamp(&info, &mut new, Some(&old), false);
        self.objects.insert(k, new.clone());
        Ok(new)
    }

    /// PATCH with `application/merge-patch+json` (RFC 7386).
    pub fn merge_patch(
        &mut self,
        api_version: Option<&str>,
        kind: &str,
        namespace: &str,
        name: &str,
        patch: &Value,
        subresource: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut object = self.get_or_not_found(api_version, kind, namespace, name)?;
        merge(&mut object, patch);
        self.patched(object, subresource)
    }

    /// PATCH with `application/json-patch+json` (RFC 6902).
    pub fn json_patch(
        &mut self,
        api_version: Option<&str>,
        kind: &str,
        namespace: &str,
        name: &str,
        ops: &[addon::PatchOp],
        subresource: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut object = self.get_or_not_found(api_version, kind, namespace, name)?;
        addon::json_patch::apply(&mut object, ops).map_err(|e| ApiError::Invalid(e.to_string()))?;
        self.patched(object, subresource)
    }

    /// DELETE with a propagation policy; dependents are collected (or orphaned) at once.
    pub fn delete(
        &mut self,
        api_version: Option<&str>,
        kind: &str,
        namespace: &str,
        name: &str,
        propagation: Propagation,
    ) -> Result<(), ApiError> {
        let info = self.resolve_kind(api_version, kind)?.clone();
        let k = key(&info, namespace, name);
        self.check_refused(&k)?;
        let Some(old) = self.objects.remove(&k) else {
            return Err(ApiError::NotFound { resource: info.plural, name: name.to_owned() });
        };
        let uid =
            old.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned();
        if info.kind == "Namespace" && info.group.is_empty() {
            self.objects.retain(|k, _| k.namespace != name);
        }
        self.collect_dependents(&uid, propagation);
        Ok(())
    }

    /// GET as the patcher does it; `NotFound` is an error.
    pub fn get_or_not_found(
        &self,
        api_version: Option<&str>,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let info = self.resolve_kind(api_version, kind)?;
        self.objects.get(&key(info, namespace, name)).cloned().ok_or_else(|| ApiError::NotFound {
            resource: info.plural.clone(),
            name: name.to_owned(),
        })
    }

    fn patched(&mut self, mut object: Value, subresource: Option<&str>) -> Result<Value, ApiError> {
        // A PATCH never conflicts: it applies to the current version.
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.shift_remove("resourceVersion");
        }
        self.update(object, subresource)
    }

    fn collect_dependents(&mut self, owner_uid: &str, propagation: Propagation) {
        if owner_uid.is_empty() {
            return;
        }
        let dependents: Vec<ObjectKey> = self
            .objects
            .iter()
            .filter(|(_, o)| owner_uids(o).iter().any(|u| u == owner_uid))
            .map(|(k, _)| k.clone())
            .collect();
        for dep in dependents {
            if propagation == Propagation::Orphan {
                if let Some(refs) = self
                    .objects
                    .get_mut(&dep)
                    .and_then(|o| o.pointer_mut("/metadata/ownerReferences"))
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
                }
                continue;
            }
            // The garbage collector removes a dependent once none of its owners exists.
            let Some(obj) = self.objects.get(&dep) else { continue };
            let alive = owner_uids(obj).iter().any(|u| u != owner_uid && self.uid_exists(u));
            if !alive && let Some(removed) = self.objects.remove(&dep) {
                let uid = removed
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                self.collect_dependents(&uid, propagation);
            }
        }
    }

    fn uid_exists(&self, uid: &str) -> bool {
        self.objects
            .values()
            .any(|o| o.pointer("/metadata/uid").and_then(Value::as_str) == Some(uid))
    }

    fn require_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        if namespace.is_empty() {
            return Err(ApiError::Invalid(
                "an empty namespace may not be set during creation".into(),
            ));
        }
        let ns = ObjectKey {
            group: String::new(),
            kind: "Namespace".into(),
            namespace: String::new(),
            name: namespace.into(),
        };
        if self.objects.contains_key(&ns) {
            Ok(())
        } else {
            Err(ApiError::NotFound { resource: "namespaces".into(), name: namespace.into() })
        }
    }

    fn key_of(&self, object: &Value) -> Result<(KindInfo, ObjectKey), ApiError> {
        let api_version = object.get("apiVersion").and_then(Value::as_str);
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Invalid("Object 'Kind' is missing".into()))?;
        let info = self.resolve_kind(api_version, kind)?.clone();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApiError::Invalid(format!("{}: metadata.name: Required value", info.kind))
            })?;
        let namespace = if info.namespaced {
            object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default()
        } else {
            ""
        };
        let k = key(&info, namespace, name);
        Ok((info, k))
    }

    /// Fills server-managed metadata. `fixture` keeps a given resourceVersion/uid.
    fn stamp(&mut self, info: &KindInfo, object: &mut Value, old: Option<&Value>, fixture: bool) {
        self.counter += 1;
        let counter = self.counter;
        if !object.is_object() {
            *object = Value::Object(Map::new());
        }
        if let Some(m) = object.as_object_mut() {
            if !m.get("apiVersion").is_some_and(Value::is_string) {
                m.insert("apiVersion".into(), info.api_version.clone().into());
            }
            m.insert("kind".into(), info.kind.clone().into());
        }
        // With a status subresource, status changes leave the generation alone; without one,
        // the whole object but its metadata is the spec.
        let outside_meta = |o: &Value| {
            let mut o = o.clone();
            if let Some(m) = o.as_object_mut() {
                m.shift_remove("metadata");
                if info.status_subresource {
                    m.shift_remove("status");
                }
            }
            o
        };
        let spec_changed = old.is_none_or(|o| outside_meta(o) != outside_meta(object));
        let old_generation =
            old.and_then(|o| o.pointer("/metadata/generation")).and_then(Value::as_i64);
        let now = self.now.clone();
        let meta = object
            .as_object_mut()
            .map(|m| m.entry("metadata").or_insert_with(|| Value::Object(Map::new())))
            .and_then(Value::as_object_mut);
        let Some(meta) = meta else { return };
        if !info.namespaced {
            meta.shift_remove("namespace");
        }
        let keep = |meta: &Map<String, Value>, f: &str| {
            fixture && meta.get(f).is_some_and(|v| !v.is_null())
        };
        if !keep(meta, "uid") {
            let uid = old
                .and_then(|o| o.pointer("/metadata/uid").cloned())
                .unwrap_or_else(|| format!("00000000-0000-4000-8000-{counter:012}").into());
            meta.insert("uid".into(), uid);
        }
        if !keep(meta, "creationTimestamp") {
            let ts = old
                .and_then(|o| o.pointer("/metadata/creationTimestamp").cloned())
                .unwrap_or(now.into());
            meta.insert("creationTimestamp".into(), ts);
        }
        if !keep(meta, "resourceVersion") {
            meta.insert("resourceVersion".into(), counter.to_string().into());
        }
        if !info.generation {
            // A real server never shows a generation on these kinds, fixture or not.
            meta.shift_remove("generation");
        } else if !keep(meta, "generation") {
            let generation = match old_generation {
                Some(g) if spec_changed => g + 1,
                Some(g) => g,
                None => 1,
            };
            meta.insert("generation".into(), generation.into());
        }
    }
}

fn key(info: &KindInfo, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        group: info.group.clone(),
        kind: info.kind.clone(),
        namespace: if info.namespaced { namespace.to_owned() } else { String::new() },
        name: name.to_owned(),
    }
}

fn owner_uids(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| refs.iter().filter_map(|r| r.get("uid")?.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// What survives the API server's decoding into Go types, for built-in kinds: no `null`
/// member anywhere, and none of the `omitempty` zero values hooks are known to write.
fn normalize(info: &KindInfo, object: &mut Value) {
    if !info.typed {
        return;
    }
    drop_nulls(object);
    let Some(m) = object.as_object_mut() else { return };
    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        for member in ["labels", "annotations", "finalizers", "ownerReferences"] {
            if meta.get(member).is_some_and(is_empty_container) {
                meta.shift_remove(member);
            }
        }
    }
    let Some(status) = m.get_mut("status").and_then(Value::as_object_mut) else { return };
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        // metav1.Condition: `observedGeneration int64 json:",omitempty"`.
        for c in conditions.iter_mut().filter_map(Value::as_object_mut) {
            if c.get("observedGeneration").and_then(Value::as_i64) == Some(0) {
                c.shift_remove("observedGeneration");
            }
        }
    }
    if status.get("conditions").is_some_and(is_empty_container) {
        status.shift_remove("conditions");
    }
    // LoadBalancerStatus: `ingress []LoadBalancerIngress json:",omitempty"`.
    if let Some(lb) = status.get_mut("loadBalancer").and_then(Value::as_object_mut)
        && lb.get("ingress").is_some_and(is_empty_container)
    {
        lb.shift_remove("ingress");
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn set_member(object: &mut Value, member: &str, value: Option<Value>) {
    if let Some(m) = object.as_object_mut() {
        match value {
            Some(v) => m.insert(member.into(), v),
            None => m.shift_remove(member),
        };
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.shift_remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster() -> FakeCluster {
        let mut c = FakeCluster::new();
        c.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}))
            .unwrap();
        c
    }

    #[test]
    fn create_fills_metadata_and_rejects_duplicates() {
        let mut c = cluster();
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}, "data": {"k": "v"}});
        let created = c.create(cm.clone()).unwrap();
        assert_eq!(created["metadata"]["uid"], "00000000-0000-4000-8000-000000000002");
        assert_eq!(created["metadata"]["resourceVersion"], "2");
        assert_eq!(created["metadata"]["creationTimestamp"], "2024-01-01T00:00:00Z");
        assert_eq!(c.create(cm).unwrap_err().to_string(), r#"configmaps "a" already exists"#);
        let missing_ns = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "nope"}});
        assert_eq!(c.create(missing_ns).unwrap_err().to_string(), r#"namespaces "nope" not found"#);
    }

    #[test]
    fn kind_resolution() {
        let c = FakeCluster::new();
        assert_eq!(c.resolve_kind(None, "ds").unwrap().kind, "DaemonSet");
        assert_eq!(c.resolve_kind(Some("v1"), "configmaps").unwrap().kind, "ConfigMap");
        assert_eq!(
            c.resolve_kind(Some("apps/v1"), "POD").unwrap_err().to_string(),
            r#"no matches for kind "POD" in version "apps/v1""#
        );
        assert_eq!(pluralize("Policy"), "policies");
        assert_eq!(pluralize("Ingress"), "ingresses");
    }

    #[test]
    fn status_subresource_rules_and_generation() {
        let mut c = cluster();
        c.register_kind(KindInfo::new("example.com/v1", "Widget", true, true));
        let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "ns"},
                       "spec": {"size": 1}, "status": {"x": 1}});
        let created = c.create(w).unwrap();
        assert_eq!(created.get("status"), None, "status is reset on create");
        assert_eq!(created["metadata"]["generation"], 1);
        let patched = c
            .merge_patch(None, "Widget", "ns", "w", &json!({"status": {"phase": "A"}}), None)
            .unwrap();
        assert_eq!(patched.get("status"), None, "the main resource ignores status");
        assert_eq!(
            patched["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"],
            "no-op"
        );
        let patched = c
            .merge_patch(
                None,
                "Widget",
                "ns",
                "w",
                &json!({"status": {"phase": "A"}, "spec": {"size": 2}}),
                Some("status"),
            )
            .unwrap();
        assert_eq!(patched["status"], json!({"phase": "A"}));
        assert_eq!(patched["spec"]["size"], 1, "the subresource only takes status");
        assert_eq!(patched["metadata"]["generation"], 1);
        let patched =
            c.merge_patch(None, "Widget", "ns", "w", &json!({"spec": {"size": 3}}), None).unwrap();
        assert_eq!(patched["metadata"]["generation"], 2);
    }

    /// A real server keeps no generation on Services and drops what Go's `omitempty` drops,
    /// so a hook comparing what it wrote with what it reads sees the server's version.
    #[test]
    fn built_in_kinds_are_stored_as_a_real_server_stores_them() {
        let mut c = cluster();
        let svc = json!({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "s", "namespace": "ns", "generation": 4, "annotations": {}},
                         "spec": {"type": "LoadBalancer", "loadBalancerClass": null}});
        let created = c.create(svc).unwrap();
        assert_eq!(created["metadata"].get("generation"), None, "Services have no generation");
        assert_eq!(created["metadata"].get("annotations"), None);
        assert_eq!(created["spec"], json!({"type": "LoadBalancer"}), "null members dropped");
        let status = json!({"status": {"loadBalancer": {"ingress": []}, "conditions": [
            {"type": "A", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "t", "observedGeneration": 0},
            {"type": "B", "status": "True", "reason": "R", "message": "m", "lastTransitionTime": "t", "observedGeneration": 3}]}});
        let patched = c.merge_patch(None, "Service", "ns", "s", &status, Some("status")).unwrap();
        assert_eq!(patched["metadata"].get("generation"), None, "still none after a spec change");
        assert_eq!(patched["status"]["loadBalancer"], json!({}), "empty ingress dropped");
        let conditions = &patched["status"]["conditions"];
        assert_eq!(conditions[0].get("observedGeneration"), None, "zero dropped");
        assert_eq!(conditions[0]["message"], "", "a required empty string stays");
        assert_eq!(conditions[1]["observedGeneration"], 3);
        let cleared = c
            .merge_patch(
                None,
                "Service",
                "ns",
                "s",
                &json!({"status": {"conditions": []}}),
                Some("status"),
            )
            .unwrap();
        assert_eq!(cleared["status"], json!({"loadBalancer": {}}));
        // Custom resources keep what was sent: their schemas may allow null.
        c.register_kind(KindInfo::new("example.com/v1", "Widget", true, true));
        let w = c
            .create(json!({"apiVersion": "example.com/v1", "kind": "Widget",
                           "metadata": {"name": "w", "namespace": "ns"}, "spec": {"a": null, "b": []}}))
            .unwrap();
        assert_eq!(w["spec"], json!({"a": null, "b": []}));
    }

    #[test]
    fn a_terminating_namespace_refuses_new_objects_only() {
        let mut c = cluster();
        let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}});
        c.create(cm("old")).unwrap();
        c.terminate_namespace("ns").unwrap();
        let ns = c.get(None, "Namespace", "", "ns").unwrap();
        assert_eq!(ns["status"]["phase"], "Terminating");
        assert_eq!(
            c.create(cm("new")).unwrap_err().to_string(),
            r#"configmaps "new" is forbidden: unable to create new content in namespace ns because it is being terminated"#
        );
        c.merge_patch(None, "cm", "ns", "old", &json!({"data": {"k": "v"}}), None).unwrap();
        assert!(c.terminate_namespace("nope").is_err());
    }

    #[test]
    fn refused_objects_refuse_every_write() {
        let mut c = cluster();
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}});
        c.refuse_writes(None, "ConfigMap", "ns", "a", "admission webhook denied the request")
            .unwrap();
        assert!(
            matches!(c.create(cm.clone()), Err(ApiError::Forbidden(m)) if m.contains("webhook"))
        );
        c.insert(cm).unwrap();
        assert!(c.merge_patch(None, "cm", "ns", "a", &json!({"data": {}}), None).is_err());
        assert!(c.delete(None, "cm", "ns", "a", Propagation::Background).is_err());
        assert!(c.get(None, "cm", "ns", "a").is_some());
    }

    #[test]
    fn update_conflicts_on_stale_resource_version() {
        let mut c = cluster();
        let mut cm = c.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}})).unwrap();
        cm["metadata"]["resourceVersion"] = "1".into();
        cm["data"] = json!({"a": "b"});
        assert!(matches!(c.update(cm, None), Err(ApiError::Conflict { .. })));
    }

    #[test]
    fn garbage_collection() {
        let mut c = cluster();
        let owner = c.create(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "o", "namespace": "ns"}})).unwrap();
        let uid = owner["metadata"]["uid"].clone();
        for name in ["d1", "d2"] {
            c.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": name, "namespace": "ns", "ownerReferences": [{"uid": uid, "kind": "Service", "name": "o", "apiVersion": "v1"}]}}))
                .unwrap();
        }
        c.delete(None, "Service", "ns", "o", Propagation::Orphan).unwrap();
        let d1 = c.get(None, "ConfigMap", "ns", "d1").unwrap();
        assert_eq!(d1["metadata"]["ownerReferences"], json!([]));
        let owner = c.create(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "o2", "namespace": "ns"}})).unwrap();
        c.json_patch(
            None,
            "cm",
            "ns",
            "d2",
            &[addon::PatchOp::add(
                "/metadata/ownerReferences/-",
                json!({"uid": owner["metadata"]["uid"]}),
            )],
            None,
        )
        .unwrap();
        c.delete(None, "Service", "ns", "o2", Propagation::Foreground).unwrap();
        assert!(c.get(None, "ConfigMap", "ns", "d2").is_none());
        assert!(c.get(None, "ConfigMap", "ns", "d1").is_some());
        assert!(matches!(
            c.delete(None, "Service", "ns", "o2", Propagation::Background),
            Err(ApiError::NotFound { .. })
        ));
    }

    #[test]
    fn merge_patch_rfc7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
    }
}
