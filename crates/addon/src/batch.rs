//! Batch mode: one executable, many hooks (`reference/addon-operator.md` §8).
//!
//! ```text
//! <exe> hook list        -> "Found N items:\n0 - a\n1 - b\n"   (probe, empty environment)
//! <exe> hook config      -> {"version":"v1","hooks":[...]}     (one JSON line)
//! <exe> hook run N       -> runs hook N with the env files
//! anything else          -> short reason on stderr, exit 2
//! ```
//! `hooks` is an alias of `hook`. Stdout carries only what the framework reads.

use std::io::Write;
use std::process::ExitCode;

use crate::config::BatchConfig;
use crate::error::error_chain;
use crate::io::{HookInput, HookOutput};
use crate::log;

/// Error a hook returns; any error type converts into it with `?`.
pub type HookError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One hook of the module.
pub trait Hook: Sync {
    /// Stable name (`metadata.name`); the framework names the hook `<path>:<name>:<index>`.
    fn name(&self) -> &str;
    /// Bindings and settings.
    fn config(&self) -> crate::HookConfig;
    /// One run: read the input, return what should change. The input is the hook's own, so
    /// it can take a large snapshot out once read and free it early
    /// ([`HookInput::take_snapshot_json`]).
    fn run(&self, input: HookInput) -> Result<HookOutput, HookError>;
}

/// Entry point of a batch executable: `fn main() -> ExitCode { addon::run_batch("myModule", &HOOKS) }`.
pub fn run_batch(root_key: &str, hooks: &[&dyn Hook]) -> ExitCode {
    log::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = |k: &str| std::env::var(k).ok();
    let code = dispatch(
        root_key,
        hooks,
        &args,
        &env,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr(),
    );
    ExitCode::from(code)
}

/// The batch command line without process globals: arguments after argv\[0\], an environment
/// lookup and the two output streams. Returns the exit code.
pub fn dispatch(
    root_key: &str,
    hooks: &[&dyn Hook],
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["hook" | "hooks", "list"] => list(hooks, stdout),
        ["hook" | "hooks", "config"] => config(hooks, stdout),
        ["hook" | "hooks", "run", index] => {
            match index.parse::<usize>().ok().and_then(|i| hooks.get(i)) {
                Some(hook) => run(root_key, *hook, env),
                None => return usage(stderr, &format!("no hook with index {index:?}")),
            }
        }
        _ => return usage(stderr, "expected `hook list`, `hook config` or `hook run N`"),
    };
    match result {
        Ok(()) => 0,
        Err(message) => {
            let mut fields = serde_json::Map::new();
            fields.insert("message".into(), message.into());
            // Exit 1 is what module-sdk returns on a handler error; the framework shows stderr.
            let _ignored = writeln!(stderr, "{}", log::format_line(&tracing::Level::ERROR, fields));
            1
        }
    }
}

fn usage(stderr: &mut dyn Write, reason: &str) -> u8 {
    let _ignored = writeln!(stderr, "batch hook executable: {reason}");
    2
}

fn list(hooks: &[&dyn Hook], stdout: &mut dyn Write) -> Result<(), String> {
    let mut text = format!("Found {} items:\n", hooks.len());
    for (i, hook) in hooks.iter().enumerate() {
        text.push_str(&format!("{i} - {}\n", hook.name()));
    }
    stdout.write_all(text.as_bytes()).map_err(|e| format!("write stdout: {e}"))
}

fn config(hooks: &[&dyn Hook], stdout: &mut dyn Write) -> Result<(), String> {
    let hooks = hooks
        .iter()
        .map(|h| h.config().to_batch(h.name(), h.name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let config =
        BatchConfig { version: "v1".into(), hooks, readiness: None, has_settings_check: None };
    let text = serde_json::to_string(&config).map_err(|e| e.to_string())?;
    writeln!(stdout, "{text}").map_err(|e| format!("write stdout: {e}"))
}

fn run(
    root_key: &str,
    hook: &dyn Hook,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let input = HookInput::from_env(root_key, env)
        .map_err(|e| format!("read input: {}", error_chain(&e)))?;
    let mut output =
        hook.run(input).map_err(|e| format!("execute: {}", error_chain(e.as_ref())))?;
    output.write(env).map_err(|e| format!("write output: {}", error_chain(&e)))?;
    // The process ends right after a run. Handing a large output back to the allocator piece
    // by piece frees nothing the exit does not free at once.
    std::mem::forget(output);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HookConfig, KubernetesBinding, MetricOperation};
    use std::collections::BTreeMap;

    struct Counter;
    impl Hook for Counter {
        fn name(&self) -> &str {
            "counter"
        }
        fn config(&self) -> HookConfig {
            HookConfig::new().before_helm(5).kubernetes(
                KubernetesBinding::new("nodes", "v1", "Node").jq_filter(".metadata.name"),
            )
        }
        fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
            let nodes: Vec<String> = input.snapshot("nodes")?;
            let mut out = input.output();
            out.values.set("internal.nodes", &nodes)?;
            out.metric(MetricOperation::set("counter", "nodes", nodes.len() as f64));
            Ok(out)
        }
    }

    struct Grouped;
    impl Hook for Grouped {
        fn name(&self) -> &str {
            "grouped"
        }
        fn config(&self) -> HookConfig {
            HookConfig::new().kubernetes(KubernetesBinding::new("x", "v1", "Pod").group("other"))
        }
        fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
            Ok(input.output())
        }
    }

    fn call(
        hooks: &[&dyn Hook],
        args: &[&str],
        env: &BTreeMap<String, String>,
    ) -> (u8, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = dispatch("m", hooks, &args, &|k| env.get(k).cloned(), &mut out, &mut err);
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn list_and_config() {
        let env = BTreeMap::new();
        let (code, out, _) = call(&[&Counter], &["hook", "list"], &env);
        assert_eq!((code, out.as_str()), (0, "Found 1 items:\n0 - counter\n"));
        let (code, out, _) = call(&[&Counter], &["hooks", "config"], &env);
        assert_eq!(code, 0);
        assert_eq!(
            out,
            r#"{"version":"v1","hooks":[{"configVersion":"v1","metadata":{"name":"counter","path":"counter"},"kubernetes":[{"name":"nodes","apiVersion":"v1","kind":"Node","jqFilter":".metadata.name"}],"beforeHelm":5}]}"#
                .to_owned()
                + "\n"
        );
    }

    #[test]
    fn unexpected_argv_exits_2_with_nothing_on_stdout() {
        let env = BTreeMap::new();
        for args in
            [&[][..], &["--config"], &["hook"], &["hook", "run", "7"], &["hook", "run", "x"]]
        {
            let (code, out, err) = call(&[&Counter], args, &env);
            assert_eq!(code, 2, "{args:?}");
            assert!(out.is_empty());
            assert!(!err.is_empty());
        }
    }

    #[test]
    fn config_that_batch_mode_cannot_express_fails() {
        let (code, out, err) = call(&[&Grouped], &["hook", "config"], &BTreeMap::new());
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert!(err.contains("batch mode forces every binding into"), "{err}");
    }

    #[test]
    fn run_reads_and_writes_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(
            p("ctx"),
            r#"[{"binding":"nodes","type":"Group","groupName":"main","snapshots":{"nodes":[{"filterResult":"a"}]}}]"#,
        )
        .unwrap();
        std::fs::write(p("values"), r#"{"global":{},"m":{"internal":{}}}"#).unwrap();
        let env: BTreeMap<String, String> = [
            ("BINDING_CONTEXT_PATH", p("ctx")),
            ("VALUES_PATH", p("values")),
            ("VALUES_JSON_PATCH_PATH", p("vp")),
            ("KUBERNETES_PATCH_PATH", p("kp")),
            ("METRICS_PATH", p("mp")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let (code, out, err) = call(&[&Counter], &["hook", "run", "0"], &env);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
        assert_eq!(
            std::fs::read_to_string(p("vp")).unwrap(),
            "[{\"op\":\"add\",\"path\":\"/m/internal/nodes\",\"value\":[\"a\"]}]\n"
        );
        assert_eq!(std::fs::read_to_string(p("kp")).unwrap(), "");

        std::fs::write(p("ctx"), r#"[{"binding":"onStartup"}]"#).unwrap();
        let (code, _, err) = call(&[&Counter], &["hook", "run", "0"], &env);
        assert_eq!(code, 1);
        assert_eq!(
            err,
            "{\"level\":\"error\",\"msg\":\"execute: no snapshot of binding \\\"nodes\\\" in this run's binding contexts\"}\n"
        );
    }
}
