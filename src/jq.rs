//! jq expressions over JSON values (the `jq` object field), via jaq. Pure and synchronous: jaq's
//! values are reference-counted and never cross an `.await`.
//!
//! jaq has no step budget, no memory budget and no interrupt, and filters like
//! `last(range(1e18))` or `def f: f; f` never end. So this module is the *in-process* evaluator
//! only: for plain paths ([`JqFilter::path`], evaluated here without jaq, in time linear in the
//! path), for the evaluation worker process (`crate::eval`), for tests and benches. A mount
//! evaluates every other filter in a killable worker (see `crate::eval`). Compiling (validation)
//! does run here: it is bounded by [`MAX_EXPR_LEN`] and [`MAX_NESTING`], which keep jaq's
//! recursive lexer and parser far from the stack's end.

use std::cell::RefCell;
use std::rc::Rc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

type Filter = jaq_core::Filter<data::JustLut<Val>>;

fn compile(expr: &str) -> Result<Filter, String> {
    let program = File {
        code: expr,
        path: (),
    };
    let loader = Loader::new(
        jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs()),
    );
    let arena = Arena::default();
    let modules = loader.load(&arena, program).map_err(|errors| {
        let kinds: Vec<&str> = errors
            .iter()
            .map(|(_, e)| match e {
                jaq_core::load::Error::Io(_) => "cannot load a module",
                jaq_core::load::Error::Lex(_) => "syntax error (unbalanced brackets or quotes?)",
                jaq_core::load::Error::Parse(_) => "syntax error",
            })
            .collect();
        kinds.join("; ")
    })?;
    Compiler::default()
        .with_funs(
            jaq_core::funs()
                .chain(jaq_std::funs())
                .chain(jaq_json::funs()),
        )
        .compile(modules)
        .map_err(|errors| {
            let names: Vec<String> = errors
                .iter()
                .flat_map(|(_, errs)| errs.iter().map(|(name, _)| format!("{name:?}")))
                .collect();
            format!("undefined name(s) {}", names.join(", "))
        })
}

/// Compiled filters (for in-process evaluation) and validation results, kept per thread (a
/// filter isn't `Send`), most recently used first. Compiling loads jaq's standard library
/// (about 0.6 ms); a warm mount reuses its validation's result.
const CACHED_FILTERS: usize = 64;

thread_local! {
    static FILTERS: RefCell<Vec<(String, Rc<Filter>)>> = const { RefCell::new(Vec::new()) };
    static CHECKED: RefCell<Vec<(String, Result<(), String>)>> = const { RefCell::new(Vec::new()) };
    #[cfg(test)]
    static COMPILES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Stack of the thread that compiles an expression for validation. jaq's lexer, parser and
/// compiler recurse once per nested term, and a term nests in a byte or two (`-----1`,
/// `1|1|1`, `try try 1`): the largest accepted expression ([`MAX_EXPR_LEN`]) needs about 16 MiB
/// in a debug build (much less optimized), far more than a tokio worker's 2 MiB. Untouched
/// stack pages cost no memory.
const COMPILE_STACK: usize = 32 * 1024 * 1024;

/// Compiles `expr` on a thread of its own with [`COMPILE_STACK`], only to see whether it
/// compiles. The calling thread waits (compiling is bounded by the expression's size), so at
/// most one such thread runs per thread that validates.
fn compiles_on_a_large_stack(expr: &str) -> Result<(), String> {
    std::thread::scope(|scope| {
        let compiler = std::thread::Builder::new()
            .name("jq-check".into())
            .stack_size(COMPILE_STACK)
            .spawn_scoped(scope, || compile(expr).map(|_| ()))
            .map_err(|e| format!("cannot be checked now ({e}); the driver will retry"))?;
        compiler
            .join()
            .unwrap_or_else(|_| Err("cannot be compiled (jaq gave up on it)".to_string()))
    })
}

fn cached(expr: &str) -> Result<Rc<Filter>, String> {
    FILTERS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(pos) = cache.iter().position(|(e, _)| e == expr) {
            let entry = cache.remove(pos);
            let filter = entry.1.clone();
            cache.insert(0, entry);
            return Ok(filter);
        }
        #[cfg(test)]
        COMPILES.with(|c| c.set(c.get() + 1));
        let filter = Rc::new(compile(expr)?);
        cache.insert(0, (expr.to_owned(), filter.clone()));
        cache.truncate(CACHED_FILTERS);
        Ok(filter)
    })
}

/// Longest `jq` expression accepted, in bytes. Real filters are a line or two; the bound keeps
/// compiling cheap and jaq's recursive parser's depth small.
pub(crate) const MAX_EXPR_LEN: usize = 2048;

/// Deepest nesting accepted in a `jq` expression: brackets, braces, parentheses and string
/// interpolations, counted on the raw text (so a bracket inside a string literal counts too).
pub(crate) const MAX_NESTING: usize = 32;

/// Checks the expression's size and nesting before jaq sees it.
fn check_shape(expr: &str) -> Result<(), String> {
    if expr.len() > MAX_EXPR_LEN {
        return Err(format!(
            "it is {} bytes long, more than the {MAX_EXPR_LEN} accepted",
            expr.len()
        ));
    }
    let mut depth: usize = 0;
    let mut deepest: usize = 0;
    for c in expr.bytes() {
        match c {
            b'(' | b'[' | b'{' => {
                depth = depth.saturating_add(1);
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(format!(
            "it nests brackets, braces or parentheses {deepest} deep, more than the {MAX_NESTING} accepted"
        ));
    }
    Ok(())
}

/// Checks that `expr` compiles (done at validation time, before any network call): its size
/// and nesting first, then jaq on a thread with a stack large enough for any accepted
/// expression. Plain paths need no jaq.
pub fn check(expr: &str) -> Result<(), String> {
    check_shape(expr)?;
    if plain_path(expr).is_some() {
        return Ok(());
    }
    CHECKED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(pos) = cache.iter().position(|(e, _)| e == expr) {
            let entry = cache.remove(pos);
            let result = entry.1.clone();
            cache.insert(0, entry);
            return result;
        }
        #[cfg(test)]
        COMPILES.with(|c| c.set(c.get() + 1));
        let result = compiles_on_a_large_stack(expr);
        cache.insert(0, (expr.to_owned(), result.clone()));
        cache.truncate(CACHED_FILTERS);
        result
    })
}

/// One step of a plain path: `.key` / `."key"` / `.["key"]`, or `.[index]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathStep {
    Key(String),
    Index(i64),
}

/// A `jq` expression as validated: its text and, when it is a plain path such as `.a`, `.a.b`,
/// `.["x y"]` or `.a[0]`, that path. Plain paths always terminate (one step per segment) and
/// are evaluated in process by [`eval_path`]; anything else needs jaq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JqFilter {
    text: String,
    path: Option<Vec<PathStep>>,
}

impl JqFilter {
    /// Classifies `text` (it should have passed [`check`]).
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let path = plain_path(&text);
        JqFilter { text, path }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The path, when the expression is a plain path.
    pub fn path(&self) -> Option<&[PathStep]> {
        self.path.as_deref()
    }
}

/// Most steps of a plain path (longer paths are left to jaq).
const MAX_PATH_STEPS: usize = 64;

/// Parses the plain-path subset: `.`, then any of `.name`, `."string"`, `.["string"]`,
/// `[integer]` (and `.[integer]`), with no spaces except around the whole expression and inside
/// brackets. Names and strings follow jaq's lexer (`[a-zA-Z_][a-zA-Z0-9_]*`; escapes
/// `\\ \/ \" \b \f \n \r \t \uXXXX`, no interpolation); integers have at most 9 digits.
/// Everything else is `None` (not a plain path: evaluated by jaq).
pub(crate) fn plain_path(expr: &str) -> Option<Vec<PathStep>> {
    let mut rest = expr.trim().strip_prefix('.')?;
    let mut steps = Vec::new();
    // Right after a dot: a name, a string or a bracket (or nothing, for `.` itself).
    let mut after_dot = true;
    while !rest.is_empty() {
        if steps.len() >= MAX_PATH_STEPS {
            return None;
        }
        if after_dot && rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (name, tail) = rest.split_at(end);
            steps.push(PathStep::Key(name.to_string()));
            rest = tail;
        } else if after_dot && rest.starts_with('"') {
            let (key, tail) = string_literal(rest)?;
            steps.push(PathStep::Key(key));
            rest = tail;
        } else if let Some(inner) = rest.strip_prefix('[') {
            let inner = inner.trim_start();
            if inner.starts_with('"') {
                let (key, tail) = string_literal(inner)?;
                steps.push(PathStep::Key(key));
                rest = tail.trim_start().strip_prefix(']')?;
            } else {
                let end = inner.find(']')?;
                let (number, tail) = inner.split_at(end);
                steps.push(PathStep::Index(integer(number.trim())?));
                rest = tail.strip_prefix(']')?;
            }
        } else if !after_dot && let Some(tail) = rest.strip_prefix('.') {
            // `.` then a name, a string or a bracket; `..` and `. ` are not paths.
            if !tail
                .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '"' || c == '[')
            {
                return None;
            }
            rest = tail;
            after_dot = true;
            continue;
        } else {
            return None;
        }
        after_dot = false;
    }
    Some(steps)
}

/// `-?[0-9]{1,9}`.
fn integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A string literal at the start of `text` (which starts with `"`), decoded as jaq decodes it;
/// `None` for interpolation or anything jaq would not accept. Returns the rest after it.
fn string_literal(text: &str) -> Option<(String, &str)> {
    let mut chars = text.strip_prefix('"')?.char_indices();
    let body = text.get(1..)?;
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, body.get(i.checked_add(1)?..)?)),
            '\\' => match chars.next()?.1 {
                c @ ('\\' | '/' | '"') => out.push(c),
                'b' => out.push('\x08'),
                'f' => out.push('\x0C'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let mut code = 0u32;
                    for _ in 0..4 {
                        code = code
                            .checked_mul(16)?
                            .checked_add(chars.next()?.1.to_digit(16)?)?;
                    }
                    out.push(char::from_u32(code)?);
                }
                // `\(` (interpolation) and unknown escapes.
                _ => return None,
            },
            c => out.push(c),
        }
    }
    None
}

/// A plain path stepped into a value it can't index (jq would say "Cannot index …").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathError;

/// Evaluates a plain path as jaq does: a key of an object (null when absent), an element of an
/// array (negative counts from the end; null when out of range), null for anything of null and
/// for an index of an object (jq would fail there; jaq looks the number up as a key). Any other
/// step (a key of an array, anything of a string, number or boolean) is an error.
pub fn eval_path<'v>(
    path: &[PathStep],
    input: &'v serde_json::Value,
) -> Result<std::borrow::Cow<'v, serde_json::Value>, PathError> {
    use serde_json::Value;
    use std::borrow::Cow;
    let mut current = input;
    for step in path {
        current = match (step, current) {
            (_, Value::Null) => return Ok(Cow::Owned(Value::Null)),
            (PathStep::Key(k), Value::Object(map)) => match map.get(k) {
                Some(v) => v,
                None => return Ok(Cow::Owned(Value::Null)),
            },
            (PathStep::Index(_), Value::Object(_)) => return Ok(Cow::Owned(Value::Null)),
            (PathStep::Index(i), Value::Array(items)) => {
                let index = if *i < 0 {
                    items
                        .len()
                        .checked_sub(usize::try_from(i.unsigned_abs()).map_err(|_| PathError)?)
                } else {
                    usize::try_from(*i).ok()
                };
                match index.and_then(|i| items.get(i)) {
                    Some(v) => v,
                    None => return Ok(Cow::Owned(Value::Null)),
                }
            }
            _ => return Err(PathError),
        };
    }
    Ok(Cow::Borrowed(current))
}

/// Applies a validated filter in process: plain paths directly, anything else with jaq
/// ([`apply`], unbounded: only for the worker, tests and benches).
pub(crate) fn apply_filter(
    filter: &JqFilter,
    input: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    match filter.path() {
        Some(path) => eval_path(path, input)
            .map(std::borrow::Cow::into_owned)
            .map_err(|PathError| failed(filter.text())),
        None => apply(filter.text(), input),
    }
}

/// The message of a filter that failed on the value (never jaq's text, which may quote it).
pub fn failed(expr: &str) -> String {
    format!("jq expression {expr:?} failed on the value")
}

/// Runs `expr` on `input`; it must produce exactly one value. Runtime errors are reported
/// without their text, because jq error messages quote the (secret) input.
pub fn apply(expr: &str, input: &serde_json::Value) -> Result<serde_json::Value, String> {
    let filter = cached(expr)?;
    let input: Val = serde_json::from_value(input.clone())
        .map_err(|_| "the value cannot be read as JSON".to_string())?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut outputs = Vec::new();
    for out in filter.id.run((ctx, input)).map(unwrap_valr) {
        let value = out.map_err(|_| failed(expr))?;
        outputs.push(value);
        if outputs.len() > 1 {
            return Err(format!(
                "jq expression {expr:?} produced more than one value; wrap it in [ ] to collect them into an array"
            ));
        }
    }
    let value = outputs
        .pop()
        .ok_or_else(|| format!("jq expression {expr:?} produced no value"))?;
    // jaq prints JSON; parse it back into a serde value (at most 128 levels deep).
    serde_json::from_str(&value.to_string()).map_err(|e| {
        if is_too_deep(&e) {
            format!(
                "jq expression {expr:?} produced a value nested more than {MAX_JSON_DEPTH} levels deep"
            )
        } else {
            format!("jq expression {expr:?} produced a value that is not JSON (binary data?)")
        }
    })
}

/// Deepest JSON accepted: serde_json stops at its 128th level with "recursion limit exceeded" (a
/// fixed default, which keeps parsing, dropping and printing values far from the stack's end).
pub(crate) const MAX_JSON_DEPTH: usize = 127;

/// Whether a serde_json error is its nesting limit. The message holds no input.
pub(crate) fn is_too_deep(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("recursion limit exceeded")
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_are_compiled_once_per_thread_and_bounded() {
        let compiles = || super::COMPILES.with(|c| c.get());
        let start = compiles();
        let v = serde_json::json!({"a": {"b": 1}});
        let expr = ".a.b | . + 1";
        super::check(expr).unwrap();
        super::check(expr).unwrap();
        assert_eq!(compiles() - start, 1, "two validations share one compile");
        assert_eq!(super::apply(expr, &v).unwrap(), serde_json::json!(2));
        assert_eq!(super::apply(expr, &v).unwrap(), serde_json::json!(2));
        assert_eq!(compiles() - start, 2, "two evaluations share one compile");
        for i in 0..super::CACHED_FILTERS {
            super::check(&format!(".k{i} | length")).unwrap();
            super::apply(&format!(".k{i} | length"), &v).unwrap();
        }
        super::FILTERS.with(|c| assert_eq!(c.borrow().len(), super::CACHED_FILTERS));
        super::CHECKED.with(|c| assert_eq!(c.borrow().len(), super::CACHED_FILTERS));
        // `expr` was the least recently used: evicted, so compiled again.
        super::check(expr).unwrap();
        assert_eq!(compiles() - start, 3 + 2 * super::CACHED_FILTERS);
        // Plain paths need no compile at all.
        super::check(".a.b").unwrap();
        assert_eq!(compiles() - start, 3 + 2 * super::CACHED_FILTERS);
        // Errors are clear, and remembered too.
        assert!(super::check(".a[").is_err());
        assert!(super::check(".a[").is_err());
        assert_eq!(compiles() - start, 4 + 2 * super::CACHED_FILTERS);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn extracts_and_transforms() {
        let v = json!({"db": {"user": "app", "ports": [1, 2]}, "list": ["a", "b"]});
        assert_eq!(apply(".db.user", &v), Ok(json!("app")));
        assert_eq!(apply(".db.ports | length", &v), Ok(json!(2)));
        assert_eq!(apply(".list | join(\",\")", &v), Ok(json!("a,b")));
        assert_eq!(apply("{u: .db.user}", &v), Ok(json!({"u": "app"})));
    }

    #[test]
    fn errors_are_clear_and_never_quote_the_value() {
        let v = json!({"password": "hunter2"});
        assert!(check(".a | ").is_err());
        assert!(check("nosuchfn(1)").unwrap_err().contains("nosuchfn"));
        let e = apply(".password | tonumber", &v).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(
            apply(".[]", &json!([1, 2]))
                .unwrap_err()
                .contains("more than one")
        );
        assert!(apply("empty", &v).unwrap_err().contains("no value"));
    }

    #[test]
    fn plain_paths_are_recognized_strictly() {
        use PathStep::{Index, Key};
        let key = |k: &str| Key(k.to_string());
        for (expr, path) in [
            (".", vec![]),
            ("  .a  ", vec![key("a")]),
            (".a.b", vec![key("a"), key("b")]),
            ("._x1.Y_2", vec![key("_x1"), key("Y_2")]),
            (r#"."a b""#, vec![key("a b")]),
            (r#".["a b"]"#, vec![key("a b")]),
            (r#".[ "a\"b\\c\u00e9\n" ]"#, vec![key("a\"b\\c\u{e9}\n")]),
            (".a[0]", vec![key("a"), Index(0)]),
            (".[0]", vec![Index(0)]),
            (".[-1]", vec![Index(-1)]),
            (".a.[2][3]", vec![key("a"), Index(2), Index(3)]),
            (r#".a["b"].c"#, vec![key("a"), key("b"), key("c")]),
            (".if", vec![key("if")]),
        ] {
            assert_eq!(plain_path(expr), Some(path), "{expr}");
        }
        for expr in [
            "",
            "..",
            "a",
            ".a | .b",
            ". a",
            ".a .b",
            ".a?",
            ".[]",
            ".[1:2]",
            ".a.",
            ".a..b",
            r#"."\(1)""#,
            r#"."\q""#,
            r#"."unterminated"#,
            ".[1.5]",
            ".[1e3]",
            ".[0x1]",
            ".[1234567890]",
            ".[-]",
            r#".["a" + "b"]"#,
            r#".["a"]]"#,
            ".a[0",
            "$x",
            ".a,.b",
            "-.a",
            ".é",
            &".a".repeat(MAX_PATH_STEPS + 1),
        ] {
            assert_eq!(plain_path(expr), None, "{expr:?} is not a plain path");
        }
        assert!(plain_path(&".a".repeat(MAX_PATH_STEPS)).is_some());
    }

    #[test]
    fn plain_paths_agree_with_jaq() {
        let inputs = [
            json!(null),
            json!({"a": {"b": "x", "c": [1, 2.5, {"d": true}]}, "a b": 1, "if": [null]}),
            json!({"a": null}),
            json!({"a": [10, 20, 30]}),
            json!({"a": "string"}),
            json!({"a": 1}),
            json!([1, [2, 3], {"a": "in array"}]),
            json!([]),
            json!("text"),
            json!(3),
            json!(true),
            json!({"a": {"b": 1e300, "c": -0.0, "d": 12345678901234567890u64}}),
        ];
        let paths = [
            ".",
            ".a",
            ".a.b",
            ".a.c",
            ".a.c[2].d",
            ".a.c[-1]",
            ".a.c[-3]",
            ".a.c[-4]",
            ".a.c[3]",
            ".a[0]",
            ".a[-1]",
            ".a[5]",
            ".[0]",
            ".[1][0]",
            ".[-1]",
            ".[2].a",
            r#".["a b"]"#,
            r#"."a b""#,
            ".if",
            ".if[0].x",
            ".a.b.c",
            ".a.d",
            ".missing.deeper",
            ".a.[1]",
        ];
        for expr in paths {
            let filter = JqFilter::new(expr);
            assert!(filter.path().is_some(), "{expr} should be a plain path");
            check(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            for input in &inputs {
                let ours = apply_filter(&filter, input);
                let jaq = apply(expr, input);
                assert_eq!(ours, jaq, "{expr} on {input}");
            }
        }
    }

    /// The expressions validation accepts are compiled in the provider: the worst shapes at the
    /// largest accepted size must be checked (accepted or refused) from a thread with a 2 MiB
    /// stack, tokio's worker default, without overflowing it.
    #[test]
    fn the_largest_accepted_expressions_compile_on_a_small_stack() {
        fn fill(open: &str, middle: &str, close: &str) -> String {
            let n = (MAX_EXPR_LEN - middle.len()) / (open.len() + close.len());
            format!("{}{middle}{}", open.repeat(n), close.repeat(n))
        }
        let nest = |open: &str, close: &str| {
            format!("{}.{}", open.repeat(MAX_NESTING), close.repeat(MAX_NESTING))
        };
        let shapes = vec![
            nest("(", ")"),
            nest("[", "]"),
            nest("{a:", "}"),
            nest("\"\\(", ")\""),
            nest("reduce . as $x (", "; .)"),
            fill("-", "1", ""),
            fill("- ", "1", ""),
            fill("try ", "1", ""),
            fill("if . then ", "1", " end"),
            fill("if . then . elif ", "1", " then . end"),
            fill("def f: ", "1", "; f"),
            fill("label $x | ", "1", ""),
            fill(".a", "", ""),
            fill(".[0]", "", ""),
            fill("1|", "1", ""),
            fill("1+", "1", ""),
            fill("1 as $x | ", "1", ""),
            fill("not|", ".", ""),
            fill(".. | ", ".", ""),
            fill("1,", "1", ""),
            fill("-(", "1", ")"),
            fill("[", "", "]"),
        ];
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                for expr in &shapes {
                    assert!(expr.len() <= MAX_EXPR_LEN, "{}", expr.len());
                    // Accepted or refused, never a crash.
                    let _ = check(expr);
                }
            })
            .unwrap();
        handle.join().expect("compiling on a 2 MiB stack");
    }

    #[test]
    fn expression_size_and_nesting_are_bounded_before_jaq() {
        assert!(check(&".a".repeat(MAX_EXPR_LEN / 2)).is_ok());
        let e = check(&".a".repeat(MAX_EXPR_LEN / 2 + 1)).unwrap_err();
        assert!(e.contains("more than the 2048 accepted"), "{e}");
        let ok = format!("{}.{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(check(&ok).is_ok());
        let deep = format!(
            "{}.{}",
            "(".repeat(MAX_NESTING + 1),
            ")".repeat(MAX_NESTING + 1)
        );
        let e = check(&deep).unwrap_err();
        assert!(
            e.contains("nests brackets, braces or parentheses 33 deep"),
            "{e}"
        );
        // A 200,000-level expression is refused without being parsed.
        let e = check(&"[".repeat(200_000)).unwrap_err();
        assert!(e.contains("bytes long"), "{e}");
    }
}
