//! BIRD 2 as the router (see [`crate::wire`]): `protocol bfd` with one neighbor.

use std::path::{Path, PathBuf};

use netlab::{Lab, Spawn};

use crate::wire::{PeerView, Router, scenario};

struct Bird;

impl Router for Bird {
    fn label(&self) -> &'static str {
        "bird"
    }

    fn missing(&self) -> Option<String> {
        netlab::preflight(&["bird", "birdc"])
            .is_err()
            .then(|| "bird and birdc on PATH (Debian package bird2)".to_owned())
    }

    fn dir(&self, lab: &Lab) -> PathBuf {
        lab.dir().to_owned()
    }

    fn start(&self, lab: &mut Lab, dir: &Path, local: &str, peer: &str) {
        // `protocol device` tells BIRD the interfaces; single-hop sessions need theirs.
        let config = format!(
            "router id 198.51.100.1;\nprotocol device {{ scan time 1; }}\nprotocol bfd {{\n  \
             interface \"eth0\" {{ min rx interval 300 ms; min tx interval 300 ms; \
             multiplier 3; }};\n  neighbor {peer} dev \"eth0\" local {local};\n}}\n"
        );
        std::fs::write(dir.join("bird.conf"), config).expect("write bird.conf");
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let args =
            ["-f", "-c", &path("bird.conf"), "-s", &path("bird.ctl"), "-P", &path("bird.pid")];
        lab.spawn(Spawn::new("router", "bird", "bird").args(args)).expect("start bird");
    }

    /// `birdc show bfd sessions` prints a table: address, interface, state, since, interval,
    /// timeout.
    fn view(&self, lab: &Lab, dir: &Path, peer: &str) -> Result<Option<PeerView>, String> {
        let socket = dir.join("bird.ctl").to_string_lossy().into_owned();
        let out = lab
            .exec("router", &["birdc", "-s", &socket, "show", "bfd", "sessions"])
            .map_err(|e| e.to_string())?;
        let row = out.lines().find(|l| l.split_whitespace().next() == Some(peer));
        Ok(row.map(|row| PeerView {
            state: row.split_whitespace().nth(2).unwrap_or_default().to_lowercase(),
            diag: None,
            raw: out.clone(),
        }))
    }

    fn admin_down_diag(&self) -> Option<&'static str> {
        None
    }

    fn expired_diag(&self) -> Option<&'static str> {
        None
    }
}

#[test]
fn bird_ipv4() {
    scenario("bfd::bird_ipv4", &Bird, "bird4", "192.0.2.1", "192.0.2.2", 24);
}

#[test]
fn bird_ipv6() {
    scenario("bfd::bird_ipv6", &Bird, "bird6", "2001:db8::1", "2001:db8::2", 64);
}
