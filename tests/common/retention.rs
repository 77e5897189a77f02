//! The retention-policy dataset: the tag conventions of issue 26 in one registry, with the
//! exact outcome of one policy. docker/metadata-action tags (`sha-…`, `pr-…`, releases and
//! `latest`, nightlies) with a kept and a removed multi-arch index, signatures and SBOMs of
//! kept and removed images, a release that still carries an old commit tag (untagged, not
//! deleted); Flux `branch-sha-timestamp` tags kept per branch; a semver library; reproducible
//! builds dated 1970, ranked by push time; and a repository the policy leaves out.

use std::time::Duration;

use regsweep::model::Digest;

use super::{Image, Pushed, TestRegistry};

/// The policy, for repositories named below `prefix` (`acme/` for GHCR).
pub fn policy(prefix: &str) -> String {
    format!(
        r#"repositories: ['{prefix}**', '!{prefix}legacy/**']
untagged: delete
rules:
  - name: releases
    repositories: ['{prefix}gh/*']
    tags: ['v*', '!v*-rc*', latest]
    keep: all
  - name: pull requests
    tags: ['pr-*']
    keep: {{newest: 1, younger-than: 14d}}
  - name: commits
    tags: ['sha-*']
    keep: {{newest: 2}}
  - name: nightlies
    tags: ['/^nightly-[0-9]{{8}}$/']
    keep: {{newest: 2, sort: tag}}
  - name: branches
    repositories: ['{prefix}flux/*']
    tags: ['/^[a-z0-9-]+-[0-9a-f]{{7}}-[0-9]{{10}}$/']
    keep: {{newest: 2, group-by: '/^([a-z0-9-]+)-[0-9a-f]{{7}}-[0-9]{{10}}$/'}}
  - name: library versions
    repositories: ['{prefix}lib/*']
    tags: ['/^v?[0-9]+[.][0-9]+[.][0-9]+/']
    keep: {{newest: 3, sort: semver}}
"#
    )
}

/// What was pushed and what one run of [`policy`] must leave: (repository, …) everywhere.
#[derive(Debug, Default)]
pub struct Conventions {
    /// Tags that stay, on the digest they had.
    pub kept_tags: Vec<(String, String, Digest)>,
    /// Tags removed with their manifest.
    pub removed_tags: Vec<(String, String)>,
    /// Tags removed from a manifest that stays.
    pub untagged_tags: Vec<(String, String, Digest)>,
    /// Manifests that stay (tagged or not).
    pub kept: Vec<(String, Digest)>,
    /// Manifests deleted.
    pub deleted: Vec<(String, Digest)>,
    /// Manifests deleted that had no tag at all (a provider that lists tags only never sees
    /// them).
    pub deleted_untagged: Vec<(String, Digest)>,
    /// The repository the policy leaves out, and what it holds.
    pub untouched: Vec<(String, Digest)>,
    /// The repository of reproducible builds (ranked by push time).
    pub reproducible: String,
}

impl Conventions {
    fn keep(&mut self, repository: &str, pushed: &Pushed, tags: &[&str]) {
        self.kept.push((repository.into(), pushed.digest.clone()));
        for tag in tags {
            self.kept_tags
                .push((repository.into(), tag.to_string(), pushed.digest.clone()));
        }
    }

    fn delete(&mut self, repository: &str, pushed: &Pushed, tags: &[&str]) {
        self.deleted
            .push((repository.into(), pushed.digest.clone()));
        for tag in tags {
            self.removed_tags.push((repository.into(), tag.to_string()));
        }
        if tags.is_empty() {
            self.deleted_untagged
                .push((repository.into(), pushed.digest.clone()));
        }
    }

    /// Forgets what the dataset expects of `repository` (a provider that cannot rank it the
    /// same way leaves it out of its run): it must be untouched instead.
    pub fn leave_out(&mut self, repository: &str) {
        let kept: Vec<(String, Digest)> = self
            .kept
            .iter()
            .chain(&self.deleted)
            .filter(|(r, _)| r == repository)
            .cloned()
            .collect();
        self.kept_tags.retain(|(r, _, _)| r != repository);
        self.removed_tags.retain(|(r, _)| r != repository);
        self.untagged_tags.retain(|(r, _, _)| r != repository);
        self.kept.retain(|(r, _)| r != repository);
        self.deleted.retain(|(r, _)| r != repository);
        self.deleted_untagged.retain(|(r, _)| r != repository);
        self.untouched.extend(kept);
    }

    /// Everything kept is where it was and whole; everything removed is gone; every removed
    /// tag of a kept manifest is gone and the manifest stays. `sees_untagged`: the provider
    /// can see (and so delete) manifests without tags; `deletes_manifests`: it deletes them
    /// (GitLab deletes tags only and leaves the manifests to its own collection).
    pub fn assert_applied(
        &self,
        registry: &TestRegistry,
        sees_untagged: bool,
        deletes_manifests: bool,
    ) {
        for (repository, tag, digest) in &self.kept_tags {
            assert_eq!(
                registry.digest_of(repository, tag).as_ref(),
                Some(digest),
                "{repository}:{tag} moved or vanished"
            );
            let problems = registry.pull_problems(repository, tag);
            assert!(problems.is_empty(), "{repository}:{tag}: {problems:?}");
        }
        for (repository, digest) in &self.kept {
            let problems = registry.pull_problems(repository, digest.as_str());
            assert!(problems.is_empty(), "{repository}@{digest}: {problems:?}");
        }
        for (repository, tag) in &self.removed_tags {
            assert!(
                registry.digest_of(repository, tag).is_none(),
                "{repository}:{tag} still there"
            );
        }
        for (repository, tag, digest) in &self.untagged_tags {
            assert!(
                registry.digest_of(repository, tag).is_none(),
                "{repository}:{tag} still there"
            );
            assert!(
                registry.exists(repository, digest),
                "{repository}@{digest} deleted"
            );
        }
        for (repository, digest) in &self.deleted {
            let untagged = self
                .deleted_untagged
                .contains(&(repository.clone(), digest.clone()));
            if deletes_manifests && (sees_untagged || !untagged) {
                assert!(
                    !registry.exists(repository, digest),
                    "{repository}@{digest} was not deleted"
                );
            }
        }
        for (repository, digest) in &self.untouched {
            assert!(
                registry.exists(repository, digest),
                "{repository} was touched"
            );
        }
    }

    /// No throw-away manifest is left: every repository holds exactly the manifests expected
    /// (on a registry that deletes manifests, with storage the test can read).
    pub fn assert_no_throwaway_left(&self, registry: &TestRegistry) {
        let mut expected: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        for (repository, digest) in self.kept.iter().chain(&self.untouched) {
            expected
                .entry(repository.clone())
                .or_default()
                .insert(digest.to_string());
        }
        for (repository, digests) in expected {
            let found: std::collections::BTreeSet<String> =
                super::fake::revisions_in(&registry.storage(), &repository)
                    .into_iter()
                    .map(|(digest, _)| digest)
                    .collect();
            assert_eq!(found, digests, "{repository}: manifests left differ");
        }
    }
}

/// Pushes the dataset below `prefix` (`""`, `acme/`, `group/project/`, `library/`).
pub fn push_conventions(registry: &TestRegistry, prefix: &str) -> Conventions {
    let mut c = Conventions::default();
    let gh = format!("{prefix}gh/app");
    let gh = gh.as_str();

    // Releases: kept by "releases", one with a signature; the multi-arch release still
    // carries the commit tag CI pushed before promoting it: that tag is beyond the newest
    // two commits, so it is removed, and the release stays.
    let r1 = registry.push_image(gh, Some("v1.0.0"), &Image::new("release 1.0", 50));
    let r1_signature = registry.push_signature(gh, &r1.digest);
    let r2_amd64 = registry.push_image(gh, None, &Image::new("release 1.1 amd64", 60));
    let r2_arm64 = registry.push_image(
        gh,
        None,
        &Image::new("release 1.1 arm64", 60).arch("arm64", Some("v8")),
    );
    let r2 = registry.push_index(
        gh,
        Some("v1.1.0"),
        &[
            (&r2_amd64, Some(("amd64", None))),
            (&r2_arm64, Some(("arm64", Some("v8")))),
        ],
        false,
    );
    registry.tag(gh, &r2.digest, "latest");
    registry.tag(gh, &r2.digest, "sha-aaaaaa0");
    c.keep(gh, &r1, &["v1.0.0"]);
    let signature_tag = format!("sha256-{}.sig", r1.digest.hex());
    c.keep(gh, &r1_signature, &[&signature_tag]);
    c.keep(gh, &r2, &["v1.1.0", "latest"]);
    c.untagged_tags
        .push((gh.into(), "sha-aaaaaa0".into(), r2.digest.clone()));
    c.keep(gh, &r2_amd64, &[]);
    c.keep(gh, &r2_arm64, &[]);

    // Commits: the newest two stay, with their SBOMs.
    let commits: Vec<Pushed> = [40, 30, 20, 10]
        .iter()
        .enumerate()
        .map(|(i, days)| {
            registry.push_image(
                gh,
                Some(&format!("sha-aaaaaa{}", i + 1)),
                &Image::new(&format!("commit {i}"), *days),
            )
        })
        .collect();
    let old_sbom = registry.push_referrer(gh, &commits[0], "application/spdx+json", "old");
    let new_sbom = registry.push_referrer(gh, &commits[3], "application/spdx+json", "new");
    c.delete(gh, &commits[0], &["sha-aaaaaa1"]);
    c.delete(gh, &commits[1], &["sha-aaaaaa2"]);
    c.keep(gh, &commits[2], &["sha-aaaaaa3"]);
    c.keep(gh, &commits[3], &["sha-aaaaaa4"]);
    c.deleted.push((gh.into(), old_sbom.digest.clone()));
    c.deleted_untagged
        .push((gh.into(), old_sbom.digest.clone()));
    c.keep(gh, &new_sbom, &[]);

    // Pull requests: the newest, or younger than 14 days; the oldest is a multi-arch index.
    let pr1_amd64 = registry.push_image(gh, None, &Image::new("pr 1 amd64", 25));
    let pr1_arm64 = registry.push_image(
        gh,
        None,
        &Image::new("pr 1 arm64", 25).arch("arm64", Some("v8")),
    );
    let pr1 = registry.push_index(
        gh,
        Some("pr-1"),
        &[
            (&pr1_amd64, Some(("amd64", None))),
            (&pr1_arm64, Some(("arm64", Some("v8")))),
        ],
        false,
    );
    let pr2 = registry.push_image(gh, Some("pr-2"), &Image::new("pr 2", 20));
    let pr2_signature = registry.push_signature(gh, &pr2.digest);
    let pr3 = registry.push_image(gh, Some("pr-3"), &Image::new("pr 3", 3));
    let pr4 = registry.push_image(gh, Some("pr-4"), &Image::new("pr 4", 1));
    c.delete(gh, &pr1, &["pr-1"]);
    c.delete(gh, &pr1_amd64, &[]);
    c.delete(gh, &pr1_arm64, &[]);
    c.delete(gh, &pr2, &["pr-2"]);
    let pr2_signature_tag = format!("sha256-{}.sig", pr2.digest.hex());
    c.delete(gh, &pr2_signature, &[&pr2_signature_tag]);
    c.keep(gh, &pr3, &["pr-3"]);
    c.keep(gh, &pr4, &["pr-4"]);

    // Nightlies: the two greatest tags.
    let nightlies: Vec<Pushed> = [1, 2, 3]
        .iter()
        .map(|day| {
            registry.push_image(
                gh,
                Some(&format!("nightly-2026120{day}")),
                &Image::new(&format!("nightly {day}"), 4 - day),
            )
        })
        .collect();
    c.delete(gh, &nightlies[0], &["nightly-20261201"]);
    c.keep(gh, &nightlies[1], &["nightly-20261202"]);
    c.keep(gh, &nightlies[2], &["nightly-20261203"]);

    // A manifest left untagged by an overwritten push.
    let leftover = registry.push_image(gh, None, &Image::new("leftover", 30));
    c.delete(gh, &leftover, &[]);

    // Flux: `branch-sha-timestamp`, the newest two per branch.
    let flux = format!("{prefix}flux/web");
    let flux = flux.as_str();
    for (tag, days, kept) in [
        ("main-aaaaaaa-1733400001", 5, false),
        ("main-bbbbbbb-1733400002", 4, true),
        ("main-ccccccc-1733400003", 3, true),
        ("feature-x-ddddddd-1733400004", 6, false),
        ("feature-x-eeeeeee-1733400005", 2, true),
        ("feature-x-fffffff-1733400006", 1, true),
    ] {
        let pushed = registry.push_image(flux, Some(tag), &Image::new(tag, days));
        if kept {
            c.keep(flux, &pushed, &[tag]);
        } else {
            c.delete(flux, &pushed, &[tag]);
        }
    }

    // A library: the three highest versions, whatever was built last.
    let lib = format!("{prefix}lib/core");
    let lib = lib.as_str();
    for (tag, days, kept) in [
        ("0.9.0", 40, false),
        ("1.2.0", 30, true),
        ("v1.10.0", 20, true),
        ("2.0.0", 10, true),
        ("1.0.1", 1, false),
    ] {
        let pushed = registry.push_image(lib, Some(tag), &Image::new(&format!("lib {tag}"), days));
        if tag == "2.0.0" {
            // A tag no rule selects: kept.
            registry.tag(lib, &pushed.digest, "edge");
            c.keep(lib, &pushed, &[tag, "edge"]);
        } else if kept {
            c.keep(lib, &pushed, &[tag]);
        } else {
            c.delete(lib, &pushed, &[tag]);
        }
    }

    // Reproducible builds: every config dated 1970, ranked by when each was pushed.
    let repro = format!("{prefix}repro/tool");
    c.reproducible = repro.clone();
    let epoch = chrono::DateTime::from_timestamp(0, 0).unwrap();
    for (i, days) in [10u64, 5, 1].iter().enumerate() {
        let tag = format!("sha-bbbbbb{}", i + 1);
        let pushed = registry.push_image(
            &repro,
            Some(&tag),
            &Image {
                created: Some(epoch),
                ..Image::new(&format!("reproducible {i}"), 0)
            },
        );
        registry.age_revision(&repro, &pushed.digest, Duration::from_secs(days * 86_400));
        if i == 0 {
            c.delete(&repro, &pushed, &[&tag]);
        } else {
            c.keep(&repro, &pushed, &[&tag]);
        }
    }

    // A repository the policy leaves out: nothing in it is touched.
    let legacy = format!("{prefix}legacy/old");
    let legacy_image = registry.push_image(&legacy, Some("pr-9"), &Image::new("legacy", 90));
    let legacy_leftover = registry.push_image(&legacy, None, &Image::new("legacy leftover", 90));
    c.untouched.push((legacy.clone(), legacy_image.digest));
    c.untouched.push((legacy, legacy_leftover.digest));
    c
}
