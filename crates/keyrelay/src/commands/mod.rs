//! One module per command group.

pub mod admin;
pub mod keys;
pub mod providers;
pub mod serve;
