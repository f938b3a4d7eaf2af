//! The announcer against real routing daemons in network namespaces: BIRD 2, FRR and GoBGP
//! (through `netlab::router`) play the router, `metallb-bgp-announce` plays a Kubernetes node.
//! Root only; elsewhere each test prints `SKIPPED: …`, and `METALLB_REQUIRE_WIRE_TESTS=1` turns
//! a skip into a failure.

mod common;
mod interop;
