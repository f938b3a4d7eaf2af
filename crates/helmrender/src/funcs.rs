//! The Helm and sprig functions the chart uses (the list and their meaning are in the crate
//! docs). Each follows the Helm/sprig behaviour for the argument types values can hold; an
//! argument of another type is an error rather than a guess.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};

use gotmpl::{FuncMap, Template, TemplateError, Value};

/// How deep `include` may nest. The chart's helpers nest three levels; Helm's own guard is
/// 1000, but each level here is a native stack frame of the engine, so a runaway recursion
/// must stop long before the stack does.
const MAX_INCLUDE_DEPTH: usize = 64;

thread_local! {
    /// Current `include` nesting of the render running on this thread (a render never leaves
    /// its thread, and renders on other threads must not count).
    static INCLUDE_DEPTH: Cell<usize> = const { Cell::new(0) };
}

type FuncResult = gotmpl::Result<Value>;

/// A function that needs nothing but its arguments.
type Simple = fn(&[Value]) -> FuncResult;

fn error(message: impl Into<String>) -> TemplateError {
    TemplateError::Exec(message.into())
}

/// The function map; `templates` is filled with the finished template set before the first
/// render, for `include`.
pub(crate) fn helm(templates: Arc<OnceLock<Weak<Template>>>) -> FuncMap {
    let mut map = FuncMap::new();
    map.insert("include".into(), Arc::new(move |args: &[Value]| include(&templates, args)));
    let simple: [(&str, Simple); 16] = [
        ("toYaml", to_yaml),
        ("fail", fail),
        ("default", default),
        ("quote", quote),
        ("indent", indent),
        ("nindent", nindent),
        ("has", has),
        ("hasKey", has_key),
        ("dict", dict),
        ("list", list),
        ("toString", to_string),
        ("hasPrefix", has_prefix),
        ("hasSuffix", has_suffix),
        ("trimPrefix", trim_prefix),
        ("trimSuffix", trim_suffix),
        ("replace", replace),
    ];
    for (name, f) in simple {
        map.insert(name.into(), Arc::new(f));
    }
    map
}

fn arity(name: &str, args: &[Value], n: usize) -> gotmpl::Result<()> {
    if args.len() == n {
        Ok(())
    } else {
        Err(error(format!("{name}: wants {n} arguments, got {}", args.len())))
    }
}

fn string_arg<'a>(name: &str, value: &'a Value) -> gotmpl::Result<&'a str> {
    value
        .as_str()
        .ok_or_else(|| error(format!("{name}: wants a string, got {}", value.type_name())))
}

/// Sprig's `strval`: strings as they are, anything else in Go's `%v` form.
fn strval(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn include(templates: &OnceLock<Weak<Template>>, args: &[Value]) -> FuncResult {
    arity("include", args, 2)?;
    let name = string_arg("include", &args[0])?;
    let set = templates
        .get()
        .and_then(Weak::upgrade)
        .ok_or_else(|| error("include: the chart is not loaded"))?;
    let depth = INCLUDE_DEPTH.get();
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(error(format!("include {name}: nested deeper than {MAX_INCLUDE_DEPTH}")));
    }
    INCLUDE_DEPTH.set(depth + 1);
    let result = set.execute_template_to_string(name, &args[1]);
    INCLUDE_DEPTH.set(depth);
    result.map(|s| Value::String(s.into())).map_err(|e| error(format!("include {name}: {e}")))
}

fn to_yaml(args: &[Value]) -> FuncResult {
    arity("toYaml", args, 1)?;
    let json = crate::to_json(&args[0]).map_err(|e| error(format!("toYaml: {e}")))?;
    let yaml = serde_norway::to_string(&json).map_err(|e| error(format!("toYaml: {e}")))?;
    // Helm trims the one trailing newline, so `toYaml x | nindent n` places lines exactly.
    Ok(Value::String(yaml.trim_end_matches('\n').into()))
}

fn fail(args: &[Value]) -> FuncResult {
    arity("fail", args, 1)?;
    Err(error(strval(&args[0])))
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Uint(u) => *u == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Function(_) => false,
    }
}

fn default(args: &[Value]) -> FuncResult {
    match args {
        [fallback] => Ok(fallback.clone()),
        [fallback, given] => Ok(if is_empty(given) { fallback.clone() } else { given.clone() }),
        _ => Err(error(format!("default: wants 1 or 2 arguments, got {}", args.len()))),
    }
}

/// Go's `%q` of a string: double quotes, backslash escapes for quotes, backslashes and control
/// characters; other characters as they are.
fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote(args: &[Value]) -> FuncResult {
    let quoted: Vec<String> =
        args.iter().filter(|v| !matches!(v, Value::Nil)).map(|v| go_quote(&strval(v))).collect();
    Ok(Value::String(quoted.join(" ").into()))
}

fn indented(name: &str, args: &[Value]) -> gotmpl::Result<String> {
    arity(name, args, 2)?;
    let width = args[0]
        .as_int()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| error(format!("{name}: wants a width, got {}", args[0].type_name())))?;
    let pad = " ".repeat(width);
    Ok(format!("{pad}{}", strval(&args[1]).replace('\n', &format!("\n{pad}"))))
}

fn indent(args: &[Value]) -> FuncResult {
    Ok(Value::String(indented("indent", args)?.into()))
}

fn nindent(args: &[Value]) -> FuncResult {
    Ok(Value::String(format!("\n{}", indented("nindent", args)?).into()))
}

fn has(args: &[Value]) -> FuncResult {
    arity("has", args, 2)?;
    match &args[1] {
        Value::Nil => Ok(Value::Bool(false)),
        Value::List(items) => Ok(Value::Bool(items.iter().any(|item| *item == args[0]))),
        other => Err(error(format!("has: wants a list, got {}", other.type_name()))),
    }
}

fn has_key(args: &[Value]) -> FuncResult {
    arity("hasKey", args, 2)?;
    let key = string_arg("hasKey", &args[1])?;
    match &args[0] {
        Value::Nil => Ok(Value::Bool(false)),
        Value::Map(map) => Ok(Value::Bool(map.contains_key(key))),
        other => Err(error(format!("hasKey: wants a map, got {}", other.type_name()))),
    }
}

fn dict(args: &[Value]) -> FuncResult {
    if !args.len().is_multiple_of(2) {
        return Err(error("dict: wants key/value pairs"));
    }
    let map: BTreeMap<Arc<str>, Value> =
        args.chunks(2).map(|pair| (Arc::from(strval(&pair[0])), pair[1].clone())).collect();
    Ok(Value::Map(Arc::new(map)))
}

fn list(args: &[Value]) -> FuncResult {
    Ok(Value::List(args.to_vec().into()))
}

fn to_string(args: &[Value]) -> FuncResult {
    arity("toString", args, 1)?;
    Ok(Value::String(strval(&args[0]).into()))
}

/// The two strings of a sprig string function `f AFFIX S` (S usually comes from the pipe).
fn two_strings<'a>(name: &str, args: &'a [Value]) -> gotmpl::Result<(&'a str, &'a str)> {
    arity(name, args, 2)?;
    Ok((string_arg(name, &args[0])?, string_arg(name, &args[1])?))
}

fn has_prefix(args: &[Value]) -> FuncResult {
    let (prefix, s) = two_strings("hasPrefix", args)?;
    Ok(Value::Bool(s.starts_with(prefix)))
}

fn has_suffix(args: &[Value]) -> FuncResult {
    let (suffix, s) = two_strings("hasSuffix", args)?;
    Ok(Value::Bool(s.ends_with(suffix)))
}

fn trim_prefix(args: &[Value]) -> FuncResult {
    let (prefix, s) = two_strings("trimPrefix", args)?;
    Ok(Value::String(s.strip_prefix(prefix).unwrap_or(s).into()))
}

fn trim_suffix(args: &[Value]) -> FuncResult {
    let (suffix, s) = two_strings("trimSuffix", args)?;
    Ok(Value::String(s.strip_suffix(suffix).unwrap_or(s).into()))
}

fn replace(args: &[Value]) -> FuncResult {
    arity("replace", args, 3)?;
    let (old, new) = (string_arg("replace", &args[0])?, string_arg("replace", &args[1])?);
    Ok(Value::String(string_arg("replace", &args[2])?.replace(old, new).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    fn render(template: &str) -> Result<String, String> {
        let cell = Arc::new(OnceLock::new());
        let set = Template::new("t")
            .funcs(helm(cell.clone()))
            .parse(template)
            .map_err(|e| e.to_string())?;
        let set = Arc::new(set);
        cell.set(Arc::downgrade(&set)).unwrap();
        set.execute_to_string(&Value::Nil).map_err(|e| e.to_string())
    }

    #[test]
    fn string_functions_follow_sprig() {
        let cases = [
            (r#"{{ "a\"b" | quote }}"#, r#""a\"b""#),
            (r#"{{ quote "x" nil 3 }}"#, r#""x" "3""#),
            (r#"{{ "" | default "d" }}|{{ "v" | default "d" }}|{{ 0 | default 7 }}"#, "d|v|7"),
            (r#"{{ "a\nb" | indent 2 }}"#, "  a\n  b"),
            (r#"{{ "a" | nindent 4 }}"#, "\n    a"),
            (r#"{{ has "b" (list "a" "b") }} {{ has 1 (list "1") }}"#, "true false"),
            (r#"{{ hasKey (dict "k" 1) "k" }} {{ hasKey (dict) "k" }}"#, "true false"),
            (r#"{{ "x/y.yaml" | trimPrefix "x/" | trimSuffix ".yaml" }}"#, "y"),
            (r#"{{ "a/b/c" | replace "/" "-" }}"#, "a-b-c"),
            (r#"{{ hasPrefix "ab" "abc" }} {{ hasSuffix "bc" "abc" }}"#, "true true"),
            (r#"{{ 42 | toString }}"#, "42"),
            (r#"{{ toYaml (dict "b" (list 1 "x") "a" true) }}"#, "a: true\nb:\n- 1\n- x"),
        ];
        for (template, expected) in cases {
            assert_eq!(render(template).as_deref(), Ok(expected), "{template}");
        }
    }

    #[test]
    fn include_renders_a_define_and_stops_runaway_recursion() {
        let ok = render(r#"{{ define "x" }}<{{ . }}>{{ end }}{{ include "x" "v" | quote }}"#);
        assert_eq!(ok.as_deref(), Ok(r#""<v>""#));
        let runaway = render(r#"{{ define "r" }}{{ include "r" . }}{{ end }}{{ include "r" 1 }}"#);
        assert!(runaway.unwrap_err().contains("nested deeper than"));
    }

    #[test]
    fn fail_and_bad_arguments_are_errors() {
        assert!(render(r#"{{ fail "boom" }}"#).unwrap_err().contains("boom"));
        assert!(render(r#"{{ has "a" "abc" }}"#).unwrap_err().contains("wants a list"));
        assert!(render(r#"{{ dict "k" }}"#).unwrap_err().contains("key/value"));
        assert!(render(r#"{{ indent "x" "y" }}"#).unwrap_err().contains("width"));
    }

    #[test]
    fn go_quote_escapes_control_characters() {
        assert_eq!(go_quote("a\tb\u{1}é\\"), r#""a\tb\x01é\\""#);
        assert_eq!(strval(&s("x")), "x");
    }
}
