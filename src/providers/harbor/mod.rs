//! harbor: Harbor through its REST API (`/api/v2.0`).

/// How Harbor is used, from the options: its API is on the registry's own origin
/// (`/api/v2.0`), with the registry's credentials (a user or a robot account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarborSettings {
    /// `HARBOR_PROJECT`: the projects to clean; empty: every project the credentials list.
    pub projects: Vec<String>,
    /// `REGSWEEP_GC`: start garbage collection after a real run that deleted something.
    pub gc: bool,
    /// `REGSWEEP_GC_TIMEOUT`: how long to follow it.
    pub gc_timeout: std::time::Duration,
    /// `REGSWEEP_GC_POLL`: how often to look at it.
    pub gc_poll: std::time::Duration,
}
