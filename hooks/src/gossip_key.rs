//! `gossip-key`: creates the speakers' shared gossip key Secret once.
//!
//! The speakers authenticate their gossip with a shared key. A Helm template cannot keep a random
//! value stable across renders, so the hook creates the Secret when it is missing and never
//! touches it again (rotating means deleting the Secret). It runs after Helm, because the
//! release creates the namespace, and only while the namespace exists.

use std::io::Read;

use addon::{Hook, HookConfig, HookError, HookInput, HookOutput, KubeOperation, KubernetesBinding};
use metallb_api::names::module;
use serde_json::{Value, json};

use crate::order;
use crate::types::{items, module_labels, module_namespace_binding};

/// Bytes of key material: 256 bits, the strongest AES key the gossip layer may use.
const KEY_BYTES: usize = 32;

pub(crate) struct GossipKey;

impl Hook for GossipKey {
    fn name(&self) -> &str {
        "gossip-key"
    }

    fn config(&self) -> HookConfig {
        HookConfig::new()
            .after_helm(order::GOSSIP_KEY_AFTER_HELM)
            .kubernetes(module_namespace_binding())
            .kubernetes(
                KubernetesBinding::new("secret", "v1", "Secret")
                    .in_namespaces([module::NAMESPACE])
                    .names([module::GOSSIP_KEY_SECRET])
                    .jq_filter(".metadata.name")
                    .queue(order::QUEUE),
            )
    }

    fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
        let mut out = input.output();
        let namespace_exists = !items(&input, "namespace")?.is_empty();
        let secret_exists = !items(&input, "secret")?.is_empty();
        if let Some(object) = handle(namespace_exists, secret_exists, random_key)? {
            tracing::info!(secret = module::GOSSIP_KEY_SECRET, "creating the gossip key");
            out.kube(KubeOperation::CreateIfNotExists { object: object.into() });
        }
        Ok(out)
    }
}

/// The Secret to create, if any. `key` supplies the random bytes (a parameter so tests are
/// deterministic).
pub(crate) fn handle(
    namespace_exists: bool,
    secret_exists: bool,
    key: impl FnOnce() -> std::io::Result<[u8; KEY_BYTES]>,
) -> Result<Option<Value>, HookError> {
    if !namespace_exists || secret_exists {
        return Ok(None);
    }
    let key = key().map_err(|e| format!("read random bytes for the gossip key: {e}"))?;
    Ok(Some(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": module::GOSSIP_KEY_SECRET,
            "namespace": module::NAMESPACE,
            "labels": module_labels(),
        },
        "type": "Opaque",
        "data": {module::GOSSIP_KEY_SECRET_KEY: base64(&key)},
    })))
}

/// 32 bytes from the kernel's CSPRNG.
fn random_key() -> std::io::Result<[u8; KEY_BYTES]> {
    let mut key = [0u8; KEY_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

/// Standard base64 with padding (RFC 4648 §4), the encoding of Secret `data`.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        const CASES: [(&str, &str); 7] = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in CASES {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn created_only_when_missing_and_the_namespace_exists() {
        let key = || Ok([7u8; KEY_BYTES]);
        assert_eq!(handle(false, false, key).unwrap(), None);
        assert_eq!(handle(true, true, key).unwrap(), None);
        let secret = handle(true, false, key).unwrap().unwrap();
        let data = secret["data"][module::GOSSIP_KEY_SECRET_KEY].as_str().unwrap();
        assert_eq!(data, base64(&[7u8; KEY_BYTES]));
        assert_eq!(data.len(), 44);
        assert_eq!(secret["metadata"]["labels"]["heritage"], "deckhouse");
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(random_key().unwrap(), random_key().unwrap());
    }
}
