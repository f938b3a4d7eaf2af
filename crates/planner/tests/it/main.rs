//! The planner's integration tests: one binary (style rule 12), table tests per rule in
//! `rules`, property tests over random clusters in `props`, BGP pools beside classes in
//! `bgp` (tables) and `mixed` (properties of clusters with both).

mod bgp;
mod common;
mod mixed;
mod props;
mod rules;
