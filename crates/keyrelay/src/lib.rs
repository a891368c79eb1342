//! The keyrelay binary as a library: command line, settings, and start-up.
//! This is the only crate that picks a storage backend (from the database
//! URL); the test kit starts servers through `start` exactly as `serve` does.

pub mod cli;
pub mod commands;
pub mod settings;
pub mod startup;

pub use settings::Settings;
pub use startup::{Running, start};
