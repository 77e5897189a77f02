//! regsweep: container-registry cleanup that never breaks an image someone can still pull.
//!
//! The pipeline (`run`): a provider discovers an `Inventory` → `plan` decides, purely, what to
//! keep and delete and why → `apply` deletes through the provider → the provider collects
//! garbage (or advises how) → `report` renders one `Summary` (text, Markdown, JSON) →
//! `publish` puts it where CI shows it. `registry` is the HTTP layer under every request;
//! `main` only parses, runs, prints and exits.

#![warn(missing_docs)]

pub mod apply;
pub mod cli;
pub mod control;
pub mod maintenance;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod providers;
pub mod publish;
pub mod registry;
pub mod report;
pub mod run;
pub mod secret;
pub mod settings;
pub mod verify;

pub use run::{run, ExitStatus, Outcome, RunError};
