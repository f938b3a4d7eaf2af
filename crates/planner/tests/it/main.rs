//! The planner's integration tests: one binary (style rule 12), table tests per rule in
//! `rules`, property tests over random clusters in `props`, BGP pools beside classes in
//! `bgp`.

mod bgp;
mod common;
mod props;
mod rules;
