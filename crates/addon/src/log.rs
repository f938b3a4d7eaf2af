//! Logs as the framework wants them: one JSON object per line on stderr.
//!
//! The framework parses stderr lines starting with `{` and uses `level` and `msg`, logging every
//! other key as `hook_<key>` (`reference/addon-operator.md` §2.2). `tracing-subscriber`'s own JSON
//! format nests the message under `fields.message` and upper-cases levels, so this small layer
//! writes the framework's shape instead: `{"level":"info","msg":"...","node":"n1"}`. No timestamp:
//! the framework drops it anyway, and leaving it out keeps hook output deterministic.

use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Registry};

/// Installs the JSON-lines logger as the global subscriber (level from `RUST_LOG`, default `info`).
/// A second call is a no-op.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _already_set = Registry::default().with(filter).with(JsonLines).try_init();
}

/// Formats one event as the framework's JSON log line (without the trailing newline).
pub fn format_line(level: &Level, fields: Map<String, Value>) -> String {
    let mut line = Map::new();
    line.insert("level".into(), level_name(level).into());
    let mut fields = fields;
    line.insert("msg".into(), fields.remove("message").unwrap_or(Value::from("")));
    line.extend(fields);
    Value::Object(line).to_string()
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        // The framework knows debug/info/warn/error only.
        Level::DEBUG | Level::TRACE => "debug",
    }
}

struct JsonLines;

impl<S: Subscriber> Layer<S> for JsonLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = Fields(Map::new());
        event.record(&mut visitor);
        let line = format_line(event.metadata().level(), visitor.0);
        let mut stderr = std::io::stderr().lock();
        // Nothing sensible can be done if stderr is gone; the hook's result does not depend on it.
        let _ignored = writeln!(stderr, "{line}");
    }
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shape() {
        let mut fields = Map::new();
        fields.insert("message".into(), "hello".into());
        fields.insert("node".into(), "n1".into());
        assert_eq!(
            format_line(&Level::WARN, fields),
            r#"{"level":"warn","msg":"hello","node":"n1"}"#
        );
        assert_eq!(format_line(&Level::TRACE, Map::new()), r#"{"level":"debug","msg":""}"#);
    }
}
