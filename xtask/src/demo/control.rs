//! The control plane: the test kit's emulation of the module framework running the real
//! `metallb-hooks` binary over a fake cluster seeded from `examples/demo/`, plus the two things
//! a real cluster would do on its own: the speaker DaemonSet's pods (one per member node,
//! Ready when the demo's speaker process is) and the speakers' view of the children (the file
//! the demo's speakers read).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use metallb_api::names::{api, labels, module};
use serde_json::{Value, json};
use testkit::{Framework, KindInfo};

/// One public IP of the Service as the hooks placed it (a child's status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The child's name.
    pub child: String,
    /// The allocated IP.
    pub ip: IpAddr,
    /// The announcing node.
    pub node: String,
    /// The nodes taking over, in order.
    pub backups: Vec<String>,
}

/// What a run of the hooks until quiet did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settled {
    /// Hook runs (executions of the hook binary).
    pub runs: usize,
    /// Wall time.
    pub took: Duration,
}

/// The fake cluster with the module's hooks.
pub(crate) struct ControlPlane {
    fw: Framework,
    examples: PathBuf,
}

impl ControlPlane {
    /// Registers the hooks of `hooks_bin`, loads the module's CRDs as kinds, the cluster and
    /// the ModuleConfig from `examples/<examples>/` (`demo` or `demo-bgp`), and starts the
    /// module (every startup hook, the Synchronization runs, a module run, then until quiet).
    pub(crate) fn start(root: &Path, hooks_bin: &Path, examples: &str) -> Result<(Self, Settled)> {
        let started = Instant::now();
        let mut fw = Framework::new(hooks_bin, module::NAME)
            .with_context(|| format!("register the hooks of {}", hooks_bin.display()))?
            .with_openapi_dir(root.join("openapi"))?;
        for kind in crd_kinds(&root.join("crds"))? {
            fw.cluster_mut().register_kind(kind);
        }
        let examples = root.join("examples").join(examples);
        let mut plane = Self { fw, examples };
        plane.insert_file("cluster.yaml")?;
        let module_config = plane.insert_file("module-config.yaml")?;
        let settings = module_config
            .iter()
            .find_map(|o| o.pointer("/spec/settings").cloned())
            .unwrap_or_else(|| json!({}));
        plane.fw.set_config_values(settings.clone());
        plane.fw.set_values(settings);
        plane.fw.start().context("start the module")?;
        let runs = plane.fw.runs().len();
        Ok((plane, Settled { runs, took: started.elapsed() }))
    }

    /// Inserts every object of `examples/<examples>/<file>` as `kubectl apply` would leave it;
    /// returns them.
    pub(crate) fn insert_file(&mut self, file: &str) -> Result<Vec<Value>> {
        let path = self.examples.join(file);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let objects = testkit::yaml_documents(&text)?;
        for object in &objects {
            self.fw.cluster_mut().insert(object.clone())?;
        }
        Ok(objects)
    }

    /// Runs the hooks until nothing changes.
    pub(crate) fn settle(&mut self) -> Result<Settled> {
        let (before, started) = (self.fw.runs().len(), Instant::now());
        self.fw.run_until_quiet().context("run the hooks until quiet")?;
        Ok(Settled { runs: self.fw.runs().len() - before, took: started.elapsed() })
    }

    /// Names of the hooks, for the story.
    pub(crate) fn hook_count(&self) -> usize {
        self.fw.hooks().len()
    }

    /// Every object of `kind` in the fake cluster.
    pub(crate) fn objects_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.fw.cluster().objects().filter(move |(k, _)| k.kind == kind).map(|(_, o)| o)
    }

    /// Every node with its InternalIP, in name order.
    pub(crate) fn nodes(&self) -> Result<Vec<(String, IpAddr)>> {
        self.objects_of("Node")
            .map(|node| {
                let name = str_at(node, "/metadata/name").to_owned();
                let ip = node
                    .pointer("/status/addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|a| a["type"] == "InternalIP")
                    .and_then(|a| a["address"].as_str())
                    .with_context(|| format!("node {name} has no InternalIP in cluster.yaml"))?
                    .parse()
                    .with_context(|| format!("InternalIP of node {name}"))?;
                Ok((name, ip))
            })
            .collect()
    }

    /// Nodes the hooks labelled as members of some class: the speaker DaemonSet runs there.
    pub(crate) fn members(&self) -> Vec<String> {
        self.labelled(labels::MEMBER)
    }

    /// Nodes carrying `label`, in name order.
    pub(crate) fn labelled(&self, label: &str) -> Vec<String> {
        self.objects_of("Node")
            .filter(|n| n.pointer("/metadata/labels").is_some_and(|l| l.get(label).is_some()))
            .map(|n| str_at(n, "/metadata/name").to_owned())
            .collect()
    }

    /// Creates or updates the speaker pod of `node` with the given readiness, as the kubelet
    /// reports the speaker's `/readyz`.
    pub(crate) fn set_speaker_ready(&mut self, node: &str, ready: bool) -> Result<()> {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("{}-{node}", module::SPEAKER_APP),
                "namespace": module::NAMESPACE,
                "labels": {labels::APP: module::SPEAKER_APP},
            },
            "spec": {"nodeName": node, "hostNetwork": true},
            "status": {"conditions": [{
                "type": "Ready",
                "status": if ready { "True" } else { "False" },
                "lastTransitionTime": addon::rfc3339(u64::try_from(super::agent::unix_ms() / 1000).unwrap_or_default()),
            }]},
        });
        self.fw.cluster_mut().insert(pod)?;
        Ok(())
    }

    /// The module setting `failbackHoldDownSeconds` as the hooks read it.
    pub(crate) fn failback_hold_down(&self) -> Result<Duration> {
        let seconds = self
            .fw
            .value("failbackHoldDownSeconds")
            .and_then(Value::as_u64)
            .context("values have no failbackHoldDownSeconds")?;
        Ok(Duration::from_secs(seconds))
    }

    /// Fires the discovery hook's failback timer, as the framework's cron does every 10 s, and
    /// runs the hooks until quiet.
    pub(crate) fn failback_timer(&mut self) -> Result<Settled> {
        let (before, started) = (self.fw.runs().len(), Instant::now());
        self.fw.run_schedule("failback").context("fire the failback timer")?;
        self.fw.run_until_quiet().context("run the hooks until quiet")?;
        Ok(Settled { runs: self.fw.runs().len() - before, took: started.elapsed() })
    }

    /// The speakers' gossip key, from the Secret the `gossip-key` hook created.
    pub(crate) fn gossip_key(&self) -> Result<Vec<u8>> {
        let secret = self
            .fw
            .cluster()
            .get(Some("v1"), "Secret", module::NAMESPACE, module::GOSSIP_KEY_SECRET)
            .with_context(|| {
                format!("no Secret {}/{}", module::NAMESPACE, module::GOSSIP_KEY_SECRET)
            })?;
        let encoded = secret
            .pointer(&format!("/data/{}", module::GOSSIP_KEY_SECRET_KEY))
            .and_then(Value::as_str)
            .context("the gossip key Secret has no data.key")?;
        base64_decode(encoded)
    }

    /// `status.loadBalancer.ingress` IPs of a Service.
    pub(crate) fn ingress(&self, namespace: &str, name: &str) -> Vec<IpAddr> {
        self.fw
            .cluster()
            .get(Some("v1"), "Service", namespace, name)
            .and_then(|s| s.pointer("/status/loadBalancer/ingress"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| i["ip"].as_str()?.parse().ok())
            .collect()
    }

    /// The placed children of a Service, by index.
    pub(crate) fn placements(&self, namespace: &str, service: &str) -> Vec<Placement> {
        let mut children: Vec<(i64, Placement)> = self
            .objects_of(api::CHILD_KIND)
            .filter(|c| {
                str_at(c, "/metadata/namespace") == namespace
                    && str_at(c, "/spec/serviceRef/name") == service
            })
            .filter_map(|c| Some((c.pointer("/spec/index")?.as_i64()?, placement(c)?)))
            .collect();
        children.sort_by_key(|(index, _)| *index);
        children.into_iter().map(|(_, p)| p).collect()
    }

    /// The speakers' desired state (the file source's format, ARCHITECTURE §5) for every
    /// placed child in the cluster, as the Kubernetes source would derive it: the child's IP,
    /// class, node and backups, and each class's interface list when it names one.
    pub(crate) fn speaker_state(&self) -> Result<String> {
        let mut classes = serde_json::Map::new();
        for class in self.objects_of(api::CLASS_KIND) {
            let interfaces = class.pointer("/spec/l2/interfaces").and_then(Value::as_array);
            if let Some(interfaces) = interfaces.filter(|i| !i.is_empty()) {
                classes.insert(
                    str_at(class, "/metadata/name").to_owned(),
                    json!({"interfaces": interfaces}),
                );
            }
        }
        let mut addresses = Vec::new();
        for child in self.objects_of(api::CHILD_KIND) {
            let Some(p) = placement(child) else { continue };
            let mut address = json!({"ip": p.ip.to_string(), "node": p.node, "backups": p.backups});
            if let Some(class) =
                child.pointer("/spec/metalLoadBalancerClass").and_then(Value::as_str)
            {
                address["class"] = class.into();
            }
            addresses.push(address);
        }
        let mut state = json!({"addresses": addresses});
        if !classes.is_empty() {
            state["classes"] = Value::Object(classes);
        }
        let yaml = serde_norway::to_string(&state).context("render the speakers' state")?;
        Ok(format!(
            "# Written by `cargo xtask demo` from the SDNInternalL2LBService children's status.\n{yaml}"
        ))
    }
}

/// A child's status as a placement; `None` until the hooks gave it an IP and a node.
fn placement(child: &Value) -> Option<Placement> {
    Some(Placement {
        child: child.pointer("/metadata/name")?.as_str()?.to_owned(),
        ip: child.pointer("/status/ip")?.as_str()?.parse().ok()?,
        node: child.pointer("/status/node")?.as_str()?.to_owned(),
        backups: child
            .pointer("/status/backupNodes")
            .and_then(Value::as_array)
            .map(|b| b.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
    })
}

fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// The kinds of the module's CRDs (`crds/**/*.yaml` without the `doc-ru-` twins), so the fake
/// API serves exactly what the module ships.
fn crd_kinds(dir: &Path) -> Result<Vec<KindInfo>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_dir() {
                pending.push(path);
            } else if name.ends_with(".yaml") && !name.starts_with("doc-ru-") {
                files.push(path);
            }
        }
    }
    let mut kinds = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for crd in testkit::yaml_documents(&text)? {
            let s = |p: &str| crd.pointer(p).and_then(Value::as_str).unwrap_or_default();
            let (group, kind, plural) =
                (s("/spec/group"), s("/spec/names/kind"), s("/spec/names/plural"));
            let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
            let Some(version) = versions
                .and_then(|v| v.iter().find(|v| v["storage"] == true).or_else(|| v.first()))
            else {
                bail!("{}: a CRD without versions", file.display());
            };
            let api_version = format!("{group}/{}", version["name"].as_str().unwrap_or_default());
            let namespaced = s("/spec/scope") == "Namespaced";
            let status = version.pointer("/subresources/status").is_some();
            let mut info = KindInfo::new(&api_version, kind, namespaced, status);
            info.plural = plural.to_owned();
            kinds.insert(format!("{group}/{kind}"), info);
        }
    }
    Ok(kinds.into_values().collect())
}

/// Standard base64 with padding (RFC 4648 §4), the encoding of Secret `data`.
pub(crate) fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let value = |c: u8| -> Result<u32> {
        Ok(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("invalid base64 character {:?}", char::from(c)),
        }))
    };
    let bytes = text.trim().as_bytes();
    if !bytes.len().is_multiple_of(4) {
        bail!("base64 length {} is not a multiple of 4", bytes.len());
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 {
            bail!("invalid base64 padding");
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - padding] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * padding as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ];
        for (encoded, plain) in cases {
            assert_eq!(base64_decode(encoded).expect(encoded), plain.as_bytes(), "{encoded}");
        }
        assert!(base64_decode("Zm9").is_err());
        assert!(base64_decode("Zm9*").is_err());
        assert_eq!(base64_decode("/+8=").expect("valid"), [0xff, 0xef]);
    }

    #[test]
    fn the_module_crds_become_kinds() {
        let kinds = crd_kinds(&crate::repo_root().join("crds")).expect("crds parse");
        let child = kinds.iter().find(|k| k.kind == api::CHILD_KIND).expect("child kind");
        assert_eq!(child.api_version, api::CHILD_API_VERSION);
        assert!(child.namespaced && child.status_subresource);
        assert_eq!(child.plural, "sdninternall2lbservices");
        let class = kinds.iter().find(|k| k.kind == api::CLASS_KIND).expect("class kind");
        assert!(!class.namespaced);
    }
}
