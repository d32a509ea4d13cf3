//! Storage backends.

pub mod s3;
