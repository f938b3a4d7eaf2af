//! FRR's bfdd as the router (see [`crate::wire`]).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use netlab::{Lab, Spawn};

use crate::wire::{PeerView, Router, scenario};

const BFDD: &str = "/usr/lib/frr/bfdd";
/// FRR drops privileges to this user; its files must be readable and writable by it.
const FRR_USER: &str = "frr";

struct Frr;

impl Router for Frr {
    fn label(&self) -> &'static str {
        "bfdd"
    }

    fn missing(&self) -> Option<String> {
        let vtysh = netlab::preflight(&["vtysh"]).is_ok();
        (!Path::new(BFDD).is_file() || !vtysh)
            .then(|| format!("{BFDD} and vtysh (Debian package frr)"))
    }

    fn dir(&self, lab: &Lab) -> PathBuf {
        let dir = lab.dir().join("frr");
        std::fs::create_dir_all(&dir).expect("create the frr directory");
        // The lab's directory is private to root; FRR's user only needs to pass through it.
        std::fs::set_permissions(lab.dir(), std::fs::Permissions::from_mode(0o711))
            .expect("chmod the lab directory");
        netlab::run("chown", &[&format!("{FRR_USER}:{FRR_USER}"), dir.to_str().expect("utf-8")])
            .expect("chown the frr directory");
        dir
    }

    fn start(&self, lab: &mut Lab, dir: &Path, local: &str, peer: &str) {
        let config = format!(
            "bfd\n peer {peer} local-address {local}\n  receive-interval 300\n  \
             transmit-interval 300\n  detect-multiplier 3\n exit\nexit\n"
        );
        std::fs::write(dir.join("bfdd.conf"), config).expect("write bfdd.conf");
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let dir_arg = dir.to_string_lossy().into_owned();
        #[rustfmt::skip]
        let args = [
            "-f", &path("bfdd.conf"),
            "-i", &path("bfdd.pid"),
            // No zebra in the lab: bfdd retries that socket quietly and runs single-hop
            // sessions on its own.
            "-z", &path("zserv.api"),
            "--vty_socket", &dir_arg,
            "--bfdctl", &path("bfdd.sock"),
            "-u", FRR_USER, "-g", FRR_USER,
            // No TCP vty: the socket in `dir` is enough for vtysh.
            "-P", "0",
            "--log", "stdout",
        ];
        lab.spawn(Spawn::new("router", "bfdd", BFDD).args(args)).expect("start bfdd");
    }

    fn view(&self, lab: &Lab, dir: &Path, peer: &str) -> Result<Option<PeerView>, String> {
        let socket_dir = dir.to_string_lossy().into_owned();
        let command =
            ["vtysh", "--vty_socket", &socket_dir, "-d", "bfdd", "-c", "show bfd peers json"];
        let out = lab.exec("router", &command).map_err(|e| e.to_string())?;
        let peers: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
        let found = peers.as_array().and_then(|all| all.iter().find(|p| p["peer"] == peer));
        Ok(found.map(|p| PeerView {
            state: p["status"].as_str().unwrap_or_default().to_owned(),
            diag: p["diagnostic"].as_str().map(str::to_owned),
            raw: p.to_string(),
        }))
    }

    fn admin_down_diag(&self) -> Option<&'static str> {
        Some("neighbor signaled session down")
    }

    fn expired_diag(&self) -> Option<&'static str> {
        Some("control detection time expired")
    }
}

#[test]
fn frr_bfdd_ipv4() {
    scenario("bfd::frr_bfdd_ipv4", &Frr, "frr4", "192.0.2.1", "192.0.2.2", 24);
}

#[test]
fn frr_bfdd_ipv6() {
    scenario("bfd::frr_bfdd_ipv6", &Frr, "frr6", "2001:db8::1", "2001:db8::2", 64);
}
