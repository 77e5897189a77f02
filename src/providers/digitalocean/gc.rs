//! gc: DigitalOcean's garbage collection, started with the type regsweep chooses and followed
//! to its end. Waits between looks are the run's control's (a stop ends them; a time budget
//! bounds them). DigitalOcean's garbage collection is distribution's: see `GC_TYPE`.

use std::time::{Duration, Instant};

use super::client::{DoApi, GarbageCollection, Registry};
use crate::control::Control;
use crate::plan::untagged::UntaggedSweep;
use crate::registry::rest::ApiError;

/// The garbage-collection type regsweep asks for: what its deletions left, and nothing else.
/// DigitalOcean's garbage collection is distribution's; its untagged types delete every
/// manifest without a tag of its own, the children of kept multi-arch indexes and the referrers
/// of kept images included (distribution/distribution#3178). regsweep has already deleted, by
/// digest, exactly the untagged manifests that are safe to delete.
pub const GC_TYPE: &str = "unreferenced blobs only";

/// The type that also sweeps untagged manifests (`REGSWEEP_GC_INCLUDE_UNTAGGED`).
pub const GC_TYPE_WITH_UNTAGGED: &str = "untagged manifests and unreferenced blobs";

/// The garbage-collection type a run asks DigitalOcean for, and why. regsweep decides which
/// manifests go; the registry's garbage collection only collects unreferenced blobs, unless
/// the user opted into its untagged sweep (refused earlier while it would break a kept image).
pub fn gc_type(sweep: UntaggedSweep) -> (&'static str, &'static str) {
    match sweep {
        UntaggedSweep::Off => (
            GC_TYPE,
            "regsweep already deleted exactly the untagged manifests that are safe to delete; \
             the registry's untagged sweep would also delete the children of kept multi-arch \
             images and the signatures and SBOMs of kept images",
        ),
        UntaggedSweep::Requested => (
            GC_TYPE_WITH_UNTAGGED,
            "asked for with REGSWEEP_GC_INCLUDE_UNTAGGED=true; the plan keeps no manifest \
             without a tag of its own, so the untagged sweep breaks no kept image",
        ),
        UntaggedSweep::Forced => (
            GC_TYPE_WITH_UNTAGGED,
            "forced with REGSWEEP_GC_INCLUDE_UNTAGGED=force: the registry also deletes every \
             manifest without a tag of its own, the children and referrers the plan kept \
             included",
        ),
    }
}

/// Starts a garbage collection of type `kind` and follows it until it ends or `timeout`
/// passes, printing status changes; waits first for one already running. `None` when the
/// time ran out.
pub async fn collect_garbage(
    api: &DoApi,
    registry: &Registry,
    kind: &str,
    timeout: Duration,
    poll: Duration,
    control: &Control,
) -> Result<Option<GarbageCollection>, ApiError> {
    let deadline = Instant::now() + timeout;
    let mut last_status = String::new();
    let mut started: Option<GarbageCollection> = None;
    loop {
        if Instant::now() >= deadline {
            return Ok(None);
        }
        let current = match &started {
            None => match api.start_gc(registry, kind).await? {
                Some(gc) => {
                    eprintln!(
                        "regsweep: garbage collection {} ({kind}) started; the registry is \
                         read-only until it ends",
                        gc.uuid
                    );
                    started = Some(gc.clone());
                    Some(gc)
                }
                None => {
                    // Someone else's is running: wait for it, then start ours.
                    let running = api.active_gc(registry).await?;
                    if let Some(gc) = &running {
                        if gc.status != last_status {
                            eprintln!(
                                "regsweep: waiting for the garbage collection already running \
                                 ({}: {})",
                                gc.uuid, gc.status
                            );
                            last_status = gc.status.clone();
                        }
                    }
                    control
                        .wait(poll, "the garbage collection already running")
                        .await?;
                    continue;
                }
            },
            Some(ours) => match api.active_gc(registry).await? {
                Some(gc) if gc.uuid == ours.uuid => Some(gc),
                // No longer active: its end state is in the list.
                _ => api.find_gc(registry, &ours.uuid).await?,
            },
        };
        if let Some(gc) = current {
            if gc.status != last_status {
                eprintln!("regsweep: garbage collection: {}", gc.status);
                last_status = gc.status.clone();
            }
            if gc.is_done() {
                return Ok(Some(gc));
            }
        }
        control
            .wait(poll, "DigitalOcean's garbage collection to end")
            .await?;
    }
}
