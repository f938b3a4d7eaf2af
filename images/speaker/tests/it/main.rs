//! Integration tests of the speaker binary: start-up failures and on-the-wire behaviour.

mod bgp;
mod bgp_kubernetes;
mod child_condition;
mod failover;
mod gossip;
mod kubernetes;
mod lab;
mod partition;
mod startup;
mod unreachable_api;
mod wire;
