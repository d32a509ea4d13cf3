//! The registry's behaviour, per target version: what a GET serves, what
//! writes and what garbage collection deletes. Pure functions of the
//! inventory and the decoded contents. Every decision that depends on the
//! version is a method on [`Target`] in [`rules`].

pub mod gc;
pub mod rules;
pub mod serve;
pub mod writes;

use std::fmt;

use serde::Serialize;

/// The registry version whose rules apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum Target {
    #[default]
    #[serde(rename = "2.8")]
    V2_8,
    #[serde(rename = "3")]
    V3,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::V2_8 => "2.8",
            Target::V3 => "3",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "2.8" | "2.8.2" | "2" => Ok(Target::V2_8),
            "3" | "3.0" | "3.1" | "3.1.1" => Ok(Target::V3),
            other => Err(format!("unknown target {other:?}: use 2.8 or 3")),
        }
    }
}
