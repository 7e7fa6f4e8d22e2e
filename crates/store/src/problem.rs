use std::fmt;

/// One invalid value in an experiment config, found by a stage's validation.
///
/// Validation collects every problem rather than stopping at the first, so a
/// user fixes a config in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, as written in the TOML file or after `--set`: `train.batch_size`.
    pub key: String,
    /// The offending value, rendered as TOML would show it.
    pub value: String,
    /// What is allowed: `must be at least 1`.
    pub expected: String,
}

impl Problem {
    /// A problem with `key`, whose `value` is not what `expected` describes.
    pub fn new(
        key: impl Into<String>,
        value: impl fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {} {}", self.key, self.value, self.expected)
    }
}
