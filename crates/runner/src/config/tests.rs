use std::path::Path;

use super::*;
use ae_eval::{ThresholdRule, ThresholdSource};

const DEFAULT: &str = include_str!("../../../../configs/default.toml");
const QUICK: &str = include_str!("../../../../configs/quick.toml");

fn parse(text: &str) -> Result<ExperimentConfig, (Option<(usize, usize)>, String)> {
    ExperimentConfig::from_toml(text)
}

fn set(argument: &str) -> Override {
    argument.parse().expect("a valid --set argument")
}

fn load_with(text: &str, overrides: &[&str]) -> Result<ExperimentConfig, ConfigError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.toml");
    std::fs::write(&path, text).expect("write");
    let overrides: Vec<Override> = overrides.iter().map(|a| set(a)).collect();
    ExperimentConfig::load(&path, &overrides)
}

#[test]
fn the_default_config_is_the_seed_experiment() {
    let cfg = parse(DEFAULT).expect("default.toml parses");
    assert_eq!(cfg.validate(), vec![]);
    assert_eq!(cfg.name, "default");
    assert_eq!(cfg.data.dataset, ae_data::DatasetChoice::Mnist);
    assert_eq!((cfg.data.train_limit, cfg.data.test_limit), (None, None));
    assert_eq!(cfg.model.latent, 32);
    let t = &cfg.train;
    assert_eq!((t.epochs, t.batch_size, t.shuffle), (50, 256, true));
    assert_eq!(
        (t.learning_rate, t.beta1, t.beta2, t.epsilon),
        (1e-3, 0.9, 0.999, 1e-7)
    );
    assert_eq!(
        (cfg.eval.rule, cfg.eval.k, cfg.eval.source),
        (ThresholdRule::MeanMultiple, 2.0, ThresholdSource::Test)
    );
}

#[test]
fn the_quick_config_is_a_small_valid_run() {
    let cfg = parse(QUICK).expect("quick.toml parses");
    assert_eq!(cfg.validate(), vec![]);
    assert_eq!(
        (cfg.data.train_limit, cfg.data.test_limit),
        (Some(6000), Some(1000))
    );
    assert_eq!(cfg.train.epochs, 2);
}

#[test]
fn omitted_sections_take_the_documented_defaults() {
    let cfg = parse("schema = 1\nname = \"x\"\n").expect("minimal config");
    assert_eq!(
        cfg,
        parse(DEFAULT)
            .map(|c| ExperimentConfig {
                name: "x".into(),
                ..c
            })
            .expect("default")
    );
}

#[test]
fn the_resolved_config_round_trips() {
    let cfg = load_with(
        DEFAULT,
        &[
            "data.train_limit=100",
            "eval.rule=percentile",
            "eval.q=99.5",
        ],
    )
    .expect("valid");
    assert_eq!(parse(&cfg.to_toml()).expect("resolved parses"), cfg);
}

#[test]
fn a_syntax_error_gives_its_line() {
    let (location, message) =
        parse("schema = 1\nname = \"x\"\n[train\nepochs = 2\n").expect_err("bad TOML");
    assert_eq!(location.map(|(line, _)| line), Some(3));
    assert!(message.starts_with("invalid TOML"), "{message}");
}

#[test]
fn an_unknown_key_is_named_with_its_section_and_line() {
    let (location, message) =
        parse("schema = 1\nname = \"x\"\n[train]\nepoch = 2\n").expect_err("unknown key");
    assert_eq!(location.map(|(line, _)| line), Some(4));
    assert!(
        message.starts_with("unknown key `train.epoch`"),
        "{message}"
    );
    assert!(
        message.contains("epochs"),
        "lists the valid keys: {message}"
    );

    let (_, message) =
        parse("schema = 1\nname = \"x\"\ncolour = 2\n").expect_err("unknown top-level key");
    assert!(message.starts_with("unknown key `colour`"), "{message}");
}

#[test]
fn a_wrong_type_is_named_with_its_key_and_line() {
    let (location, message) =
        parse("schema = 1\nname = \"x\"\n[train]\nepochs = \"ten\"\n").expect_err("wrong type");
    assert_eq!(location.map(|(line, _)| line), Some(4));
    assert!(
        message.starts_with("train.epochs: invalid type: string \"ten\""),
        "{message}"
    );
}

#[test]
fn an_unknown_dataset_lists_the_known_ones() {
    let (_, message) = parse("schema = 1\nname = \"x\"\n[data]\ndataset = \"cifar\"\n")
        .expect_err("unknown dataset");
    assert!(
        message.starts_with("data.dataset: unknown variant `cifar`"),
        "{message}"
    );
    assert!(
        message.contains("`mnist`") && message.contains("`fashion-mnist`"),
        "{message}"
    );
}

#[test]
fn every_out_of_range_value_is_reported_at_once() {
    let err = load_with(
        DEFAULT,
        &[
            "train.batch_size=0",
            "train.learning_rate=-1e-3",
            "model.latent=33",
            "eval.rule=percentile",
        ],
    )
    .expect_err("invalid");
    let ConfigError::Invalid { problems, .. } = &err else {
        panic!("expected Invalid, got {err}")
    };
    let keys: Vec<&str> = problems.iter().map(|(p, _)| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "model.latent",
            "train.batch_size",
            "train.learning_rate",
            "eval.q"
        ]
    );
    let text = err.to_string();
    assert!(text.contains("x.toml has 4 invalid values"), "{text}");
    assert!(
        text.contains("train.batch_size = 0 must be between 1 and 60000 (from --set)"),
        "{text}"
    );
    assert!(
        text.contains("train.learning_rate = -0.001 must be greater than 0"),
        "{text}"
    );
}

#[test]
fn out_of_range_values_in_the_file_are_reported_without_from_set() {
    let text = DEFAULT
        .replace("batch_size = 256", "batch_size = 0")
        .replace("schema = 1", "schema = 2");
    let err = load_with(&text, &[]).expect_err("invalid").to_string();
    assert!(err.contains("schema = 2 is not a config format"), "{err}");
    assert!(
        err.contains("train.batch_size = 0 must be between 1 and 60000."),
        "{err}"
    );
    assert!(!err.contains("(from --set)"), "{err}");
}

#[test]
fn overrides_are_typed_like_the_file() {
    let cfg = load_with(
        DEFAULT,
        &[
            "train.epochs=5",
            "seed=3",
            "eval.k=2.5",
            "data.dataset=fashion-mnist",
            "train.learning_rate=1",
            "name=\"sweep-1\"",
        ],
    )
    .expect("valid overrides");
    assert_eq!(cfg.train.epochs, 5);
    assert_eq!(cfg.seed, 3);
    assert_eq!(cfg.eval.k, 2.5);
    assert_eq!(cfg.data.dataset, ae_data::DatasetChoice::FashionMnist);
    assert_eq!(cfg.train.learning_rate, 1.0);
    assert_eq!(cfg.name, "sweep-1");
}

#[test]
fn later_overrides_win() {
    let cfg = load_with(DEFAULT, &["train.epochs=5", "train.epochs=7"]).expect("valid");
    assert_eq!(cfg.train.epochs, 7);
}

#[test]
fn a_bad_override_names_the_argument() {
    let err = load_with(DEFAULT, &["train.epochs=5", "train.epochs=ten"])
        .expect_err("wrong type")
        .to_string();
    assert!(
        err.starts_with("--set train.epochs=ten: train.epochs: invalid type: string \"ten\""),
        "{err}"
    );

    let err = load_with(DEFAULT, &["train.epoch=5"])
        .expect_err("unknown key")
        .to_string();
    assert!(
        err.starts_with("--set train.epoch=5: unknown key `train.epoch`"),
        "{err}"
    );

    let err = load_with(DEFAULT, &["seed.x=5"])
        .expect_err("not a section")
        .to_string();
    assert!(err.contains("`seed` is a value, not a section"), "{err}");
}

#[test]
fn malformed_set_arguments_are_rejected() {
    for bad in ["epochs", "=5", "train.=5", ".x=1"] {
        assert!(bad.parse::<Override>().is_err(), "{bad:?} should not parse");
    }
    assert_eq!(set("a.b = x y").value, toml::Value::String("x y".into()));
    assert_eq!(
        set("a=[1, 2]").value,
        toml::Value::Array(vec![1.into(), 2.into()])
    );
}

#[test]
fn a_missing_file_names_the_path() {
    let err = ExperimentConfig::load(Path::new("configs/nope.toml"), &[]).expect_err("missing");
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(
        text.starts_with("cannot read config file configs/nope.toml"),
        "{text}"
    );
    assert!(text.contains("No such file"), "{text}");
}

#[test]
fn run_names_must_be_safe_folder_names() {
    for bad in ["", "..", "a/b", "x y"] {
        let err = load_with(DEFAULT, &[&format!("name={bad:?}")])
            .expect_err("bad name")
            .to_string();
        assert!(err.contains("name = "), "{bad:?}: {err}");
    }
}

#[test]
fn hidden_and_overlong_names_are_refused() {
    // `.cache` would put the run inside the stage cache, which is always
    // safe to delete.
    for bad in [".cache".to_string(), ".x".to_string(), "a".repeat(256)] {
        let err = load_with(DEFAULT, &[&format!("name={bad:?}")])
            .expect_err("bad name")
            .to_string();
        assert!(err.contains("not starting with '.'"), "{bad:?}: {err}");
    }
    assert!(load_with(DEFAULT, &[&format!("name={:?}", "a".repeat(255))]).is_ok());
}

/// Regression: seeds above 2^63 − 1 were refused as `invalid type: string`.
#[test]
fn every_u64_is_a_seed() {
    let cfg = load_with(DEFAULT, &["seed=18446744073709551615"]).expect("the largest seed");
    assert_eq!(cfg.seed, u64::MAX);
    // The resolved config holds it as text, and reads back as it was.
    let again = parse(&cfg.to_toml()).expect("round trip");
    assert_eq!(again.seed, u64::MAX);
    let in_file = parse("schema = 1\nname = \"x\"\nseed = \"9223372036854775808\"\n")
        .expect("a string of digits");
    assert_eq!(in_file.seed, 1 << 63);
    assert_eq!(
        parse("schema = 1\nname = \"x\"\nseed = 7\n")
            .expect("small")
            .seed,
        7
    );
    let (_, message) = parse("schema = 1\nname = \"x\"\nseed = \"-1\"\n").expect_err("negative");
    assert!(message.contains("\"-1\" is not a seed"), "{message}");
    let (_, message) = parse("schema = 1\nname = \"x\"\nseed = -1\n").expect_err("negative");
    assert!(message.contains("seed: -1 is not a seed"), "{message}");
}
