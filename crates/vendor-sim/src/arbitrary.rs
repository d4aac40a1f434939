//! Property-test building blocks shared by the crates' decoder tests (feature `proptest`):
//! a repeatable configuration and arbitrary JSON shaped like a vendor's replies.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Value, json};

/// `cases` cases from a fixed seed, so CI is repeatable (`PROPTEST_RNG_SEED` explores others);
/// no failure persistence: a failing case is copied into a regular unit test instead.
pub fn config(cases: u32) -> Config {
    let mut config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x5eed);
    }
    config
}

/// A current-thread Tokio runtime for a property test's async calls.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Arbitrary JSON whose objects use `keys` (the vendor's field names) and whose strings are
/// `strings` (the vendor's status words and codes), or any short string when `strings` is empty.
/// Numbers include the extremes (`u64::MAX`, negative, fractional) and small counts.
pub fn json_value(
    keys: &'static [&'static str],
    strings: &'static [&'static str],
) -> impl Strategy<Value = Value> {
    let string = if strings.is_empty() {
        ".{0,12}".prop_map(Value::String).boxed()
    } else {
        prop::sample::select(strings.to_vec())
            .prop_map(|s| json!(s))
            .boxed()
    };
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        (0u64..4).prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        string,
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(keys.to_vec()).prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
