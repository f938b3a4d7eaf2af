//! jq filters compiled once and run over many objects.
//!
//! The test kit's `jq::run` compiles its program for every object, which is right for a test
//! with a handful of objects and far too slow for the 240,000 objects of the 30k-Service
//! cluster. The semantics are the same (jaq, gojq's output collapsing); `xtask/tests/bench.rs`
//! compares both on every filter the hooks declare.

use anyhow::{Result, anyhow};
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Filter, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

/// One compiled jq program.
pub struct Program {
    text: String,
    filter: Filter<data::JustLut<Val>>,
}

impl Program {
    /// Compiles `text` with jaq's core, standard and JSON definitions (what the test kit loads).
    pub fn compile(text: &str) -> Result<Self> {
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(&arena, File { code: text, path: () })
            .map_err(|errors| anyhow!("jq {text:?}: parse: {errors:?}"))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| anyhow!("jq {text:?}: compile: {errors:?}"))?;
        Ok(Self { text: text.to_owned(), filter })
    }

    /// Runs the program on `input` with gojq's collapsing, as shell-operator does for a
    /// `jqFilter`: no output is `null`, one output is that value, several are an array.
    pub fn run(&self, input: &Value) -> Result<Value> {
        let err = |what: &str, reason: String| anyhow!("jq {:?}: {what}: {reason}", self.text);
        let val = jaq_json::read::parse_single(input.to_string().as_bytes())
            .map_err(|e| err("input", format!("{e:?}")))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = Vec::new();
        for out in self.filter.id.run((ctx, val)).map(unwrap_valr) {
            let out = out.map_err(|e| err("run", e.to_string()))?;
            // Through text, as the test kit converts: integral numbers stay JSON integers.
            outputs.push(serde_json::from_str(&out.to_string())?);
        }
        Ok(match outputs.len() {
            0 => Value::Null,
            1 => outputs.remove(0),
            _ => Value::Array(outputs),
        })
    }
}
