//! regaudit: audit the on-disk storage of a Docker Distribution registry
//! without running one.

pub mod analysis;
pub mod audit;
pub mod checks;
pub mod cli;
pub mod contents;
pub mod digest;
pub mod exit_codes;
pub mod export;
pub mod gojson;
pub mod hashing;
pub mod inventory;
pub mod layout;
pub mod manifest;
pub mod model;
pub mod names;
pub mod problem;
pub mod progress;
pub mod report;
pub mod resolve;
pub mod select;
pub mod sorted_map;
pub mod storage;
pub mod timeline;
pub mod verify;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod testkit;
