//! The GitHub Action (`action.yml`) and its installer (`dist/action-install.sh`): every input
//! reaches an option the binary really reads, with the binary's default, and never through a
//! script line; the installer verifies release archives against SHA256SUMS (a mismatch fails),
//! caches them, and builds from source when there is no release.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use clap::CommandFactory;
use regsweep::cli::Cli;
use sha2::{Digest as _, Sha256};
use yaml_rust2::{Yaml, YamlLoader};

/// Inputs that are empty by default (the binary's default applies): they may not be given
/// together with a policy file.
const HASH_TAG_INPUTS: [&str; 2] = ["hash-tag-pattern", "hash-tag-keep"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Environment variable → default, for every option of the binary.
fn cli_options() -> BTreeMap<String, String> {
    Cli::command()
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_string_lossy().into_owned();
            let default = arg
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default();
            Some((env, default))
        })
        .collect()
}

fn text(yaml: &Yaml) -> String {
    match yaml {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// Every `run:` script in a YAML document.
fn scripts(yaml: &Yaml, out: &mut Vec<String>) {
    match yaml {
        Yaml::Hash(map) => {
            for (key, value) in map {
                if key.as_str() == Some("run") || key.as_str() == Some("script") {
                    match value {
                        Yaml::Array(lines) => out.extend(lines.iter().map(text)),
                        other => out.push(text(other)),
                    }
                } else {
                    scripts(value, out);
                }
            }
        }
        Yaml::Array(items) => items.iter().for_each(|i| scripts(i, out)),
        _ => {}
    }
}

#[test]
fn every_action_input_reaches_a_real_option_with_its_default() {
    let source = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let action = &YamlLoader::load_from_str(&source).unwrap()[0];
    let options = cli_options();
    let inputs = action["inputs"].as_hash().unwrap();
    let steps = action["runs"]["steps"].as_vec().unwrap();
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    let run = steps
        .iter()
        .find(|s| s["id"].as_str() == Some("run"))
        .expect("the step that runs regsweep");
    let env: BTreeMap<String, String> = run["env"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| (text(k), text(v)))
        .collect();

    for (name, input) in inputs {
        let name = text(name);
        assert!(
            input["description"].as_str().is_some_and(|d| !d.is_empty()),
            "input `{name}` has no description"
        );
        if name == "version" {
            continue; // the installer's, not the binary's
        }
        // The plan's and the journal's artifacts: uploaded and downloaded by the action's
        // own steps.
        if ["plan-artifact", "plan-run-id", "journal-artifact"].contains(&name.as_str()) {
            let used = steps.iter().any(|step| {
                step["with"].as_hash().is_some_and(|with| {
                    with.values()
                        .any(|v| text(v).contains(&format!("inputs.{name}")))
                })
            });
            assert!(used, "input `{name}` is used by no step");
            continue;
        }
        // `${{ inputs.a }}`, or `${{ inputs.a || inputs.b }}` for an input and its older name.
        let reaches = |value: &str| {
            value
                .trim_start_matches("${{")
                .trim_end_matches("}}")
                .split("||")
                .any(|part| part.trim() == format!("inputs.{name}"))
        };
        let variables: Vec<&String> = env
            .iter()
            .filter(|(_, value)| reaches(value))
            .map(|(variable, _)| variable)
            .collect();
        assert_eq!(variables.len(), 1, "input `{name}` reaches {variables:?}");
        let variable = variables[0];
        let default = options.get(variable).unwrap_or_else(|| {
            panic!("input `{name}` sets {variable}, which regsweep does not read")
        });
        // The token defaults to the job's own, from the workflow context; the hash-tag
        // inputs are empty by default (the binary's default then applies) so that they are
        // not "given" together with a policy, and say the binary's default in words.
        let expected = if name == "github-token" {
            "${{ github.token }}".to_string()
        } else if HASH_TAG_INPUTS.contains(&name.as_str()) {
            let said = input["description"].as_str().unwrap_or_default();
            assert!(
                said.contains(&format!("default {default}")),
                "input `{name}`: {said}"
            );
            String::new()
        } else {
            default.clone()
        };
        assert_eq!(
            text(&input["default"]),
            expected,
            "input `{name}`: default differs from the binary's ({variable})"
        );
    }
    // GitLab's own options have no place in the GitHub Action; the runner sets GitHub's.
    let not_inputs = [
        "REGSWEEP_GITLAB_TOKEN",
        "CI_API_V4_URL",
        "CI_PROJECT_ID",
        "GITLAB_TOKEN",
        "CI_JOB_TOKEN",
        "CI_REGISTRY",
        "CI_REGISTRY_USER",
        "CI_REGISTRY_PASSWORD",
        "GITHUB_REPOSITORY_OWNER",
        "GITHUB_API_URL",
    ];
    for variable in options.keys() {
        if !not_inputs.contains(&variable.as_str()) {
            assert!(env.contains_key(variable), "no input sets {variable}");
        }
    }
    let mut lines = Vec::new();
    scripts(action, &mut lines);
    assert!(lines.len() >= 3, "{lines:?}");
    for line in lines {
        assert!(
            !line.contains("${{"),
            "an expression pasted into a script: {line}"
        );
    }
    // Every step output the binary writes is an output of the action.
    let outputs = action["outputs"].as_hash().unwrap();
    for name in [
        "deleted",
        "planned",
        "kept",
        "reclaimable-bytes",
        "report-json",
    ] {
        assert_eq!(
            outputs[&Yaml::String(name.into())]["value"].as_str(),
            Some(format!("${{{{ steps.run.outputs.{name} }}}}").as_str())
        );
    }
}

/// A fake release: `v<version>/regsweep-<version>-<target>.tar.gz` holding a script that
/// prints its version, and SHA256SUMS (with `sums` replacing the real line when given).
fn fake_release(folder: &Path, version: &str, target: &str, sums: Option<&str>) {
    let release = folder.join(format!("v{version}"));
    let name = format!("regsweep-{version}-{target}");
    let staging = folder.join("staging").join(&name);
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&release).unwrap();
    let windows = target.contains("windows");
    let binary = staging.join(if windows { "regsweep.exe" } else { "regsweep" });
    std::fs::write(&binary, format!("#!/bin/sh\necho 'regsweep {version}'\n")).unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&binary)
        .status()
        .unwrap();
    let (archive, status) = if windows {
        let archive = release.join(format!("{name}.zip"));
        let status = Command::new("zip")
            .current_dir(folder.join("staging"))
            .arg("-qr")
            .arg(&archive)
            .arg(&name)
            .status()
            .expect("zip (scripts/install-deps.sh installs it)");
        (archive, status)
    } else {
        let archive = release.join(format!("{name}.tar.gz"));
        let status = Command::new("tar")
            .arg("-C")
            .arg(folder.join("staging"))
            .arg("-czf")
            .arg(&archive)
            .arg(&name)
            .status()
            .unwrap();
        (archive, status)
    };
    assert!(status.success());
    let hash = format!("{:x}", Sha256::digest(std::fs::read(&archive).unwrap()));
    let file = archive.file_name().unwrap().to_string_lossy().into_owned();
    let line = match sums {
        Some(line) => line.to_string(),
        None => format!("{hash}  {file}\n"),
    };
    std::fs::write(release.join("SHA256SUMS"), line).unwrap();
}

struct Install {
    code: i32,
    stderr: String,
    path_lines: Vec<String>,
}

fn install(folder: &Path, version: &str, extra: &[(&str, &str)]) -> Install {
    let github_path = folder.join("github_path");
    let _ = std::fs::remove_file(&github_path);
    let mut command = Command::new("bash");
    command
        .arg(root().join("dist/action-install.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TOOL_CACHE", folder.join("toolcache"))
        .env("RUNNER_TEMP", folder.join("temp"))
        .env("GITHUB_PATH", &github_path)
        .env("ACTION_REPOSITORY", "regsweep/regsweep")
        .env("ACTION_PATH", root())
        .env("REGSWEEP_VERSION", version)
        // Never a real build by accident: tests that want one pass a fake cargo.
        .env("CARGO", "false")
        .env(
            "REGSWEEP_RELEASE_URL",
            format!("file://{}", folder.join("releases").display()),
        );
    for (key, value) in extra {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    Install {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        path_lines: std::fs::read_to_string(&github_path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect(),
    }
}

#[test]
fn the_installer_verifies_caches_and_falls_back_to_building() {
    let folder = tempfile::tempdir().unwrap();
    let folder = folder.path();
    let releases = folder.join("releases");
    let target = "x86_64-unknown-linux-musl";

    // A good release: downloaded, verified, cached, on PATH.
    fake_release(&releases, "9.9.9", target, None);
    let good = install(folder, "v9.9.9", &[]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    let cache = folder.join("toolcache/regsweep/9.9.9").join(target);
    assert_eq!(good.path_lines, [cache.display().to_string()]);
    let version = Command::new(cache.join("regsweep")).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "regsweep 9.9.9"
    );
    // Cached: the release need not be reachable any more.
    std::fs::remove_dir_all(releases.join("v9.9.9")).unwrap();
    let again = install(folder, "9.9.9", &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.path_lines, good.path_lines);

    // A checksum mismatch fails, installs nothing, puts nothing on PATH.
    let wrong = format!("{}  regsweep-9.9.8-{target}.tar.gz\n", "0".repeat(64));
    fake_release(&releases, "9.9.8", target, Some(&wrong));
    let mismatch = install(folder, "9.9.8", &[]);
    assert_ne!(mismatch.code, 0);
    assert!(
        mismatch.stderr.contains("checksum mismatch"),
        "{}",
        mismatch.stderr
    );
    assert!(mismatch.path_lines.is_empty());
    assert!(!folder
        .join("toolcache/regsweep/9.9.8")
        .join(target)
        .join("regsweep")
        .exists());

    // An archive SHA256SUMS does not list is refused too.
    fake_release(
        &releases,
        "9.9.7",
        target,
        Some("abc  something-else.tar.gz\n"),
    );
    let unlisted = install(folder, "9.9.7", &[]);
    assert_ne!(unlisted.code, 0);
    assert!(
        unlisted.stderr.contains("does not list"),
        "{}",
        unlisted.stderr
    );

    // No release for the ref (a branch): built from the action's checkout with cargo install.
    let cargo = folder.join("fake-cargo");
    std::fs::write(
        &cargo,
        "#!/bin/sh\n# records its arguments; makes <root>/bin/regsweep\necho \"$@\" > \"$(dirname \"$0\")/cargo-args\"\n\
         while [ \"$1\" != --root ]; do shift; done\nmkdir -p \"$2/bin\"\nprintf '#!/bin/sh\\necho regsweep source\\n' > \"$2/bin/regsweep\"\nchmod +x \"$2/bin/regsweep\"\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&cargo)
        .status()
        .unwrap();
    let cargo_text = cargo.display().to_string();
    let branch = install(
        folder,
        "",
        &[("ACTION_REF", "main"), ("CARGO", &cargo_text)],
    );
    assert_eq!(branch.code, 0, "{}", branch.stderr);
    let arguments = std::fs::read_to_string(folder.join("cargo-args")).unwrap();
    assert!(
        arguments.starts_with(&format!("install --locked --path {}", root().display())),
        "{arguments}"
    );
    assert_eq!(
        branch.path_lines,
        [folder
            .join("temp/regsweep-from-source/bin")
            .display()
            .to_string()]
    );
    // macOS and Windows runners get their own archives (a zip with regsweep.exe on Windows).
    for (os, arch, target, exe) in [
        ("macOS", "ARM64", "aarch64-apple-darwin", "regsweep"),
        ("Windows", "X64", "x86_64-pc-windows-msvc", "regsweep.exe"),
    ] {
        fake_release(&releases, "9.9.5", target, None);
        let run = install(folder, "9.9.5", &[("RUNNER_OS", os), ("RUNNER_ARCH", arch)]);
        assert_eq!(run.code, 0, "{os}: {}", run.stderr);
        let cache = folder.join("toolcache/regsweep/9.9.5").join(target);
        assert_eq!(run.path_lines, [cache.display().to_string()]);
        assert!(cache.join(exe).is_file(), "{os}");
    }

    // A tagged ref without an asset for this runner also builds.
    let missing = install(folder, "9.9.6", &[("CARGO", &cargo_text)]);
    assert_eq!(missing.code, 0, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no release asset"),
        "{}",
        missing.stderr
    );
}

#[test]
fn gitlab_templates_are_valid_and_their_inputs_reach_real_options() {
    let template = std::fs::read_to_string(root().join(".gitlab-ci-template.yml")).unwrap();
    let component = std::fs::read_to_string(root().join("templates/regsweep.yml")).unwrap();
    assert_eq!(
        template, component,
        "the include template and the CI/CD component are one job: keep them identical"
    );
    let documents = YamlLoader::load_from_str(&template).unwrap();
    assert_eq!(documents.len(), 2, "a `spec:` header, `---`, then the job");
    let inputs = documents[0]["spec"]["inputs"].as_hash().unwrap();
    let job = &documents[1]["regsweep"];
    let variables: BTreeMap<String, String> = job["variables"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| (text(k), text(v)))
        .collect();
    let options = cli_options();
    // The predefined GitLab variables stand in for the binary's "unset".
    let gitlab_defaults = BTreeMap::from([
        ("registry-url", "https://$CI_REGISTRY"),
        ("registry-auth", "$CI_REGISTRY_USER:$CI_REGISTRY_PASSWORD"),
    ]);
    for (name, input) in inputs {
        let name = text(name);
        assert!(
            input["description"].as_str().is_some(),
            "`{name}`: no description"
        );
        let default = text(&input["default"]);
        if let Some(options) = input["options"].as_vec() {
            assert!(
                options.iter().any(|o| text(o) == default),
                "`{name}`: default not an option"
            );
        }
        if ["stage", "version", "image"].contains(&name.as_str()) {
            continue;
        }
        let reference = format!("$[[ inputs.{name} ]]");
        let targets: Vec<&String> = variables
            .iter()
            .filter(|(_, v)| **v == reference)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(targets.len(), 1, "input `{name}` reaches {targets:?}");
        let binary_default = options.get(targets[0]).unwrap_or_else(|| {
            panic!("`{name}` sets {}, which regsweep does not read", targets[0])
        });
        let expected = gitlab_defaults
            .get(name.as_str())
            .map(|d| d.to_string())
            .unwrap_or_else(|| {
                if HASH_TAG_INPUTS.contains(&name.as_str()) {
                    let said = input["description"].as_str().unwrap_or_default();
                    assert!(
                        said.contains(&format!("default {binary_default}")),
                        "`{name}`: {said}"
                    );
                    String::new()
                } else {
                    binary_default.clone()
                }
            });
        assert_eq!(default, expected, "input `{name}`: default");
    }
    for (variable, value) in &variables {
        assert!(
            options.contains_key(variable) || variable == "REGSWEEP_VERSION",
            "{variable} is not an option of regsweep"
        );
        assert!(!value.is_empty(), "{variable}");
    }
    let mut lines = Vec::new();
    scripts(job, &mut lines);
    for line in lines {
        assert!(
            !line.contains("$[["),
            "an input pasted into the script: {line}"
        );
        assert!(line.contains("sha256sum -c"), "the download is verified");
    }
    assert_eq!(
        job["artifacts"]["expose_as"].as_str(),
        Some("regsweep report")
    );
}
