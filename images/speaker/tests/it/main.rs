//! Integration tests of the speaker binary: start-up failures and on-the-wire behaviour.

mod bgp;
mod bgp_common;
mod bgp_kubernetes;
mod bgp_restart;
mod bgp_session;
mod child_condition;
mod failover;
mod gossip;
mod kubernetes;
mod lab;
mod partition;
mod startup;
mod traffic;
mod unreachable_api;
mod wire;
