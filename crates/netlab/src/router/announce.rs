//! Changing what a router originates at run time, without a session reset: BIRD reloads a
//! rewritten configuration, FRR takes `vtysh` commands, GoBGP `gobgp global rib`.

use ipnet::IpNet;

use super::{Announcement, Family, Router, RouterKind, bird, frr, gobgp, output};
use crate::{Error, Result};

impl Router {
    /// Originates `announcement` now (replacing one of the same prefix), without resetting
    /// any session. BIRD rewrites its configuration and reloads it (`birdc configure`), FRR
    /// takes `vtysh` commands, GoBGP one `gobgp global rib add`: one process per prefix,
    /// which makes GoBGP the slow choice for thousands of prefixes (also at start).
    pub fn announce(&mut self, announcement: Announcement) -> Result<()> {
        if self.config.announce.iter().any(|a| a.prefix == announcement.prefix) {
            self.withdraw(&announcement.prefix)?;
        }
        self.config.announce.push(announcement.clone());
        match self.kind {
            RouterKind::Bird => self.bird_reconfigure(),
            RouterKind::Frr => {
                let mut commands: Vec<String> = match self.route_maps.name_for(&announcement) {
                    Some((_, definition)) => definition,
                    None => Vec::new(),
                };
                let network = frr::network(&announcement, &mut self.route_maps);
                let family = Family::of_prefix(&announcement.prefix);
                commands.extend(self.frr_network(family, &network));
                self.vtysh_configure(&commands)
            }
            RouterKind::Gobgp => self.gobgp(&gobgp::rib_args("add", &announcement)).map(|_| ()),
        }
    }

    /// Stops originating `prefix` (a withdraw on every session).
    pub fn withdraw(&mut self, prefix: &IpNet) -> Result<()> {
        let Some(i) = self.config.announce.iter().position(|a| &a.prefix == prefix) else {
            return Ok(());
        };
        let gone = self.config.announce.remove(i);
        match self.kind {
            RouterKind::Bird => self.bird_reconfigure(),
            RouterKind::Frr => {
                let family = Family::of_prefix(prefix);
                let commands = self.frr_network(family, &format!("no network {prefix}"));
                self.vtysh_configure(&commands)
            }
            RouterKind::Gobgp => self.gobgp(&gobgp::rib_args("del", &gone)).map(|_| ()),
        }
    }

    fn frr_network(&self, family: Family, line: &str) -> Vec<String> {
        vec![
            format!("router bgp {}", self.config.asn),
            format!("address-family {} unicast", frr::afi(family)),
            line.to_owned(),
            "exit-address-family".into(),
            "exit".into(),
        ]
    }

    fn bird_reconfigure(&mut self) -> Result<()> {
        let text = bird::render(&self.config)
            .map_err(|reason| Error::RouterConfig { kind: self.kind, reason })?;
        let file = self.write("bird.conf", &text)?;
        let out = self.birdc(&["configure", &format!("\"{}\"", file.display())])?;
        if out.contains("Reconfigured") || out.contains("Reconfiguration in progress") {
            Ok(())
        } else {
            Err(output("birdc configure", out))
        }
    }
}
