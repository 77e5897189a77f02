//! The demo: starts a real local registry, pushes a CI-like history, runs regsweep in dry run
//! and then for real, prints both reports, and checks that every kept tag is still pullable.
//! Run it with `scripts/demo.sh` (which installs the registry and builds everything first).

#[path = "../tests/common/mod.rs"]
mod common;

use common::scenario::push_history;
use common::TestRegistry;

fn show_command(registry: &TestRegistry, extra: &[(&str, &str)]) {
    let mut line = String::from("$");
    for (key, value) in registry.env() {
        line.push_str(&format!(" {key}={value}"));
    }
    for (key, value) in extra {
        line.push_str(&format!(" {key}={value}"));
    }
    println!("{line} regsweep\n");
}

fn main() {
    println!("Starting the distribution registry on 127.0.0.1 with temporary storage…");
    let registry = TestRegistry::start();
    println!(
        "Registry at {}, storage in {}\n",
        registry.url,
        registry.storage().display()
    );

    println!("Pushing a history: `latest` overwritten twice, 12 commit-hash tags, a multi-arch");
    println!(
        "image, cosign signatures, SBOM referrers, a Docker manifest list, nested repositories…"
    );
    let history = push_history(&registry);
    println!(
        "Pushed {} tags and {} untagged manifests.\n",
        history.kept_tags.len() + history.deleted_tags.len(),
        history.kept_untagged.len() + history.deleted.len()
    );

    println!("==================== 1. dry run ====================");
    show_command(&registry, &[("DRY_RUN", "true")]);
    let dry = registry.sweep(&[("DRY_RUN", "true")]);
    print!("{}", dry.stdout);
    eprint!("{}", dry.stderr);
    println!("(exit status {})\n", dry.code);

    println!("==================== 2. real run ====================");
    show_command(&registry, &[]);
    let real = registry.sweep(&[]);
    print!("{}", real.stdout);
    eprint!("{}", real.stderr);
    println!("(exit status {})\n", real.code);

    println!("==================== 3. check through the registry API ====================");
    let mut broken = 0;
    for (repository, tag) in &history.kept_tags {
        let problems = registry.pull_problems(repository, tag);
        broken += problems.len();
        for problem in problems {
            println!("  BROKEN {problem}");
        }
    }
    let still_there = history
        .deleted
        .iter()
        .filter(|(repository, digest)| registry.exists(repository, digest))
        .count();
    println!(
        "  {} kept tags fully pullable (manifest, children, config, layers); {} problems",
        history.kept_tags.len(),
        broken
    );
    println!(
        "  {} of {} planned deletions gone from the registry",
        history.deleted.len() - still_there,
        history.deleted.len()
    );
    println!("\nStopping the registry and removing its storage.");
    let ok = dry.code == 0 && real.code == 0 && broken == 0 && still_there == 0;
    drop(registry);
    std::process::exit(if ok { 0 } else { 1 });
}
