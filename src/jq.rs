//! jq expressions over JSON values (the `jq` object field), via jaq. Pure and synchronous: jaq's
//! values are reference-counted and never cross an `.await`.

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

/// Compiled filters kept per thread (a filter isn't `Send`), most recently used first.
/// Compiling loads jaq's standard library (about 0.6 ms); a warm mount reuses the filter its
/// validation compiled.
const CACHED_FILTERS: usize = 64;

thread_local! {
    static FILTERS: RefCell<Vec<(String, Rc<Filter>)>> = const { RefCell::new(Vec::new()) };
    #[cfg(test)]
    static COMPILES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
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

/// Checks that `expr` compiles (done at validation time, before any network call).
pub fn check(expr: &str) -> Result<(), String> {
    cached(expr).map(|_| ())
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
        let value = out.map_err(|_| format!("jq expression {expr:?} failed on the value"))?;
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
    // jaq prints JSON; parse it back into a serde value.
    serde_json::from_str(&value.to_string()).map_err(|_| {
        format!("jq expression {expr:?} produced a value that is not JSON (binary data?)")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_are_compiled_once_per_thread_and_bounded() {
        let compiles = || super::COMPILES.with(|c| c.get());
        let start = compiles();
        let v = serde_json::json!({"a": {"b": 1}});
        super::check(".a.b").unwrap();
        assert_eq!(super::apply(".a.b", &v).unwrap(), serde_json::json!(1));
        assert_eq!(super::apply(".a.b", &v).unwrap(), serde_json::json!(1));
        assert_eq!(
            compiles() - start,
            1,
            "validation and two renders share one compile"
        );
        for i in 0..super::CACHED_FILTERS {
            super::check(&format!(".k{i}")).unwrap();
        }
        super::FILTERS.with(|c| assert_eq!(c.borrow().len(), super::CACHED_FILTERS));
        // ".a.b" was the least recently used: evicted, so compiled again.
        super::check(".a.b").unwrap();
        assert_eq!(compiles() - start, 2 + super::CACHED_FILTERS);
        // Errors are not cached and still clear.
        assert!(super::check(".a[").is_err());
        assert!(super::check(".a[").is_err());
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
}
