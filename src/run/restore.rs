//! restore: `regsweep restore --from <journal or report.json>`, GitHub's 30-day undo of a
//! run's deletions.

use super::{ExitStatus, RunError};
use crate::control::Control;
use crate::providers::ghcr::Ghcr;
use crate::settings::{Settings, Source};

/// `regsweep restore --from report.json`: restores, through the GitHub Packages API, every
/// package version the run behind `report` deleted. Prints one line per version on standard
/// output; exit 0 when all came back, 3 when some did not, 1 when none could be tried.
pub async fn restore(
    settings: &Settings,
    control: &Control,
    report: &std::path::Path,
) -> Result<ExitStatus, RunError> {
    let Source::Ghcr(options) = &settings.source else {
        return Err(RunError::Usage(
            "restore works with the ghcr provider only (REGISTRY_PROVIDER=ghcr): only GitHub \
             keeps deleted versions"
                .into(),
        ));
    };
    let text = std::fs::read_to_string(report)
        .map_err(|e| RunError::Usage(format!("cannot read `{}`: {e}", report.display())))?;
    // A JSON report is one object; a journal is one JSON line per event.
    let versions = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) if json.is_object() && json.get("repositories").is_some() => {
            crate::providers::ghcr::deleted_versions(&json)
        }
        _ => crate::providers::ghcr::journal::deleted_versions(&text).map(|(run, versions)| {
            eprintln!("regsweep: restoring the run of {run} from its journal");
            versions
        }),
    }
    .map_err(|e| {
        RunError::Usage(format!(
            "`{}` is neither a regsweep journal nor a JSON report: {e}",
            report.display()
        ))
    })?;
    let (http, client) = super::clients(settings, control)?;
    let provider = Ghcr::open(http, options, client, settings.concurrency).await?;
    let mut restored = 0;
    let mut out = String::new();
    for version in &versions {
        match provider.restore(version).await {
            Ok(()) => {
                restored += 1;
                out.push_str(&format!(
                    "restored  {}@{} (version {})\n",
                    version.repository, version.digest, version.id
                ));
            }
            Err(error) => out.push_str(&format!(
                "FAILED    {}@{} (version {}): {error}\n",
                version.repository, version.digest, version.id
            )),
        }
    }
    out.push_str(&format!(
        "\nrestored: {restored} of {} deleted versions\n",
        versions.len()
    ));
    print!("{out}");
    Ok(if restored == versions.len() {
        ExitStatus::Done
    } else {
        ExitStatus::Incomplete
    })
}
