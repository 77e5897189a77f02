//! maintenance: what `regsweep maintenance` does in the registry's storage while the registry
//! is read-only or stopped: proves that window (`window`), removes what a plan deletes the way
//! the registry's API would (`sweep`), and collects garbage the way the registry's own
//! `garbage-collect` does (`collect`), at storage speed. The run's pipeline (discovery, plan,
//! report) is `run::maintenance`'s; nothing here plans or reports.

pub mod collect;
pub mod sweep;
pub mod window;
