//! A registry history like CI leaves behind, with the exact outcome a real run must have.
//! Used by the integration tests and by the demo (`examples/demo.rs`).

use std::collections::HashSet;

use regsweep::model::Digest;

use super::{attestation_entry, platform_entry, Image, Pushed, TestRegistry};

/// What was pushed, and what a real run with the default policy must leave.
#[derive(Debug, Default)]
pub struct History {
    /// Tags that must stay fully pullable: (repository, tag).
    pub kept_tags: Vec<(String, String)>,
    /// Untagged manifests that must stay (children, referrers): (repository, digest).
    pub kept_untagged: Vec<(String, Digest)>,
    /// Manifests the real run deletes: (repository, digest).
    pub deleted: Vec<(String, Digest)>,
    /// Tags that disappear with their manifests: (repository, tag).
    pub deleted_tags: Vec<(String, String)>,
    /// Blobs only deleted manifests use, which garbage collection frees: (repository, blob).
    pub gone_blobs: Vec<(String, Digest)>,
}

impl History {
    /// Every kept tag and kept untagged manifest is fully pullable.
    pub fn assert_kept_pullable(&self, registry: &TestRegistry) {
        for (repository, tag) in &self.kept_tags {
            let problems = registry.pull_problems(repository, tag);
            assert!(
                problems.is_empty(),
                "{repository}:{tag} is broken: {problems:?}"
            );
        }
        for (repository, digest) in &self.kept_untagged {
            let problems = registry.pull_problems(repository, digest.as_str());
            assert!(
                problems.is_empty(),
                "{repository}@{digest} is broken: {problems:?}"
            );
        }
    }

    /// The state a complete, fault-free run leaves: kept things pullable, the rest gone.
    pub fn assert_applied(&self, registry: &TestRegistry) {
        self.assert_kept_pullable(registry);
        for (repository, digest) in &self.deleted {
            assert!(
                !registry.exists(repository, digest),
                "{repository}@{digest} was not deleted"
            );
        }
        for (repository, tag) in &self.deleted_tags {
            assert!(
                !registry.tags(repository).contains(tag),
                "{repository}:{tag} still there"
            );
        }
    }

    /// After garbage collection: every blob only deleted manifests used is gone.
    pub fn assert_collected(&self, registry: &TestRegistry) {
        assert!(
            !self.gone_blobs.is_empty(),
            "the history names no blob to collect"
        );
        for (repository, blob) in &self.gone_blobs {
            assert_eq!(
                registry.blob_status(repository, blob),
                404,
                "{repository} blob {blob} of a deleted manifest is still there"
            );
        }
    }

    /// Every kept tag still points at `digest` as pushed, and every kept manifest without a
    /// tag (children, attestations, referrers) answers 200 by digest.
    pub fn assert_kept_resolve(
        &self,
        registry: &TestRegistry,
        tagged: &[(String, String, Digest)],
    ) {
        for (repository, tag, digest) in tagged {
            assert_eq!(
                registry.digest_of(repository, tag).as_ref(),
                Some(digest),
                "{repository}:{tag} moved or vanished"
            );
        }
        for (repository, digest) in &self.kept_untagged {
            assert_eq!(
                registry.manifest_status(repository, digest.as_str()),
                200,
                "{repository}@{digest} (kept, untagged) is gone"
            );
        }
    }

    fn keep(&mut self, repository: &str, tag: &str) {
        self.kept_tags.push((repository.into(), tag.into()));
    }
    fn keep_untagged(&mut self, repository: &str, pushed: &Pushed) {
        self.kept_untagged
            .push((repository.into(), pushed.digest.clone()));
    }
    fn delete(&mut self, repository: &str, pushed: &Pushed) {
        self.deleted
            .push((repository.into(), pushed.digest.clone()));
    }
}

/// A short hex "commit hash" tag, deterministic per `seed`.
pub fn commit_tag(seed: &str) -> String {
    Digest::sha256_of(seed.as_bytes()).hex()[..8].to_string()
}

/// Pushes the history: an overwritten `latest` with signatures, a dozen hash tags with
/// SBOM referrers, a multi-arch image re-pointed from an older one, a nested index, an
/// attachment without a target, a Docker manifest list, and nested repository names.
pub fn push_history(registry: &TestRegistry) -> History {
    push_history_under(registry, "")
}

/// The same history with every repository name behind `prefix` (`acme/`: GHCR's owner).
pub fn push_history_under(registry: &TestRegistry, prefix: &str) -> History {
    let names = |name: &str| format!("{prefix}{name}");
    let (app, legacy, team, api) = (
        names("demo/app"),
        names("demo/legacy"),
        names("team/app"),
        names("team/app/api"),
    );
    let (app, legacy, team, api) = (app.as_str(), legacy.as_str(), team.as_str(), api.as_str());
    let mut history = History::default();

    // demo/app: `latest` pushed three times; only the last one stays tagged.
    let latest_v1 = registry.push_image(app, Some("latest"), &Image::new("latest v1", 30));
    let sig_v1 = registry.push_signature(app, &latest_v1.digest);
    let latest_v2 = registry.push_image(app, Some("latest"), &Image::new("latest v2", 20));
    let latest_v3 = registry.push_image(app, Some("latest"), &Image::new("latest v3", 1));
    let sig_v3 = registry.push_signature(app, &latest_v3.digest);
    history.delete(app, &latest_v1);
    history.delete(app, &latest_v2);
    history.delete(app, &sig_v1);
    history
        .deleted_tags
        .push((app.into(), format!("sha256-{}.sig", latest_v1.digest.hex())));
    history.keep(app, "latest");
    history.keep(app, &format!("sha256-{}.sig", latest_v3.digest.hex()));
    let _ = sig_v3;

    // A dozen commit-hash tags, one a day; the default keeps the newest 10.
    let mut hashed = Vec::new();
    for i in 0..12 {
        let tag = commit_tag(&format!("commit {i}"));
        let pushed =
            registry.push_image(app, Some(&tag), &Image::new(&format!("commit {i}"), 14 - i));
        hashed.push((tag, pushed));
    }
    let sbom_old = registry.push_referrer(app, &hashed[0].1, "application/spdx+json", "old");
    let sbom_new = registry.push_referrer(app, &hashed[11].1, "application/spdx+json", "new");
    for (i, (tag, pushed)) in hashed.iter().enumerate() {
        if i < 2 {
            history.delete(app, pushed);
            history.deleted_tags.push((app.into(), tag.clone()));
        } else {
            history.keep(app, tag);
        }
    }
    history.delete(app, &sbom_old);
    history.keep_untagged(app, &sbom_new);

    // A multi-arch image; `stable` first pointed at an older one sharing the arm64 child.
    let amd64 = registry.push_image(app, None, &Image::new("3.16 amd64", 5));
    let arm64 = registry.push_image(
        app,
        None,
        &Image::new("3.16 arm64", 5).arch("arm64", Some("v8")),
    );
    let old_amd64 = registry.push_image(app, None, &Image::new("3.15 amd64", 60));
    let old_index = registry.push_index(
        app,
        Some("stable"),
        &[
            (&old_amd64, Some(("amd64", None))),
            (&arm64, Some(("arm64", Some("v8")))),
        ],
        false,
    );
    let index = registry.push_index(
        app,
        Some("3.16"),
        &[
            (&amd64, Some(("amd64", None))),
            (&arm64, Some(("arm64", Some("v8")))),
        ],
        false,
    );
    registry.tag(app, &index.digest, "stable");
    let index_sbom = registry.push_referrer(app, &index, "application/vnd.cyclonedx+json", "index");
    history.keep(app, "3.16");
    history.keep(app, "stable");
    history.keep_untagged(app, &amd64);
    history.keep_untagged(app, &arm64);
    history.keep_untagged(app, &index_sbom);
    history.delete(app, &old_index);
    history.delete(app, &old_amd64);

    // A nested index: outer → inner → leaf, all kept through the tag on the outer one.
    let leaf = registry.push_image(app, None, &Image::new("nested leaf", 7));
    let inner = registry.push_index(app, None, &[(&leaf, Some(("amd64", None)))], false);
    let _outer = registry.push_index(app, Some("nested"), &[(&inner, None)], false);
    history.keep(app, "nested");
    history.keep_untagged(app, &inner);
    history.keep_untagged(app, &leaf);

    // An attestation whose image is not in this repository: kept, and reported.
    let absent = Digest::sha256_of(b"an image pushed elsewhere");
    let orphan_tag = format!("sha256-{}.att", absent.hex());
    let orphan = registry.push_image(app, None, &Image::new("orphan attestation", 3));
    registry.tag(app, &orphan.digest, &orphan_tag);
    history.keep(app, &orphan_tag);

    // demo/legacy: Docker schema2 images in a manifest list, and an untagged leftover.
    let l_amd64 = registry.push_image(legacy, None, &Image::new("legacy amd64", 9).docker());
    let l_arm = registry.push_image(
        legacy,
        None,
        &Image::new("legacy arm", 9).arch("arm", Some("v7")).docker(),
    );
    registry.push_index(
        legacy,
        Some("1.0"),
        &[
            (&l_amd64, Some(("amd64", None))),
            (&l_arm, Some(("arm", Some("v7")))),
        ],
        true,
    );
    let leftover = registry.push_image(legacy, None, &Image::new("legacy leftover", 40).docker());
    for i in 0..2 {
        let tag = commit_tag(&format!("legacy {i}"));
        registry.push_image(
            legacy,
            Some(&tag),
            &Image::new(&format!("legacy {i}"), 8 - i).docker(),
        );
        history.keep(legacy, &tag);
    }
    history.keep(legacy, "1.0");
    history.keep_untagged(legacy, &l_amd64);
    history.keep_untagged(legacy, &l_arm);
    history.delete(legacy, &leftover);

    // Nested repository names: team/app and team/app/api.
    let team_old = registry.push_image(team, Some("main"), &Image::new("team main old", 10));
    registry.push_image(team, Some("main"), &Image::new("team main new", 2));
    history.keep(team, "main");
    history.delete(team, &team_old);
    registry.push_image(api, Some("v1"), &Image::new("api v1", 3));
    let api_leftover = registry.push_image(api, None, &Image::new("api leftover", 12));
    history.keep(api, "v1");
    history.delete(api, &api_leftover);

    history
}

/// A longer history for interruption tests: in each of `repositories` repositories, `rounds`
/// releases of a two-platform image, each re-pointing `latest` and signed.
pub struct Churn {
    /// What a complete run must leave.
    pub history: History,
    /// Every index pushed: (repository, index, its children).
    pub indexes: Vec<(String, Digest, Vec<Digest>)>,
}

/// Pushes the churn history; the newest release of each repository stays.
pub fn push_churn(registry: &TestRegistry, repositories: usize, rounds: usize) -> Churn {
    let mut churn = Churn {
        history: History::default(),
        indexes: Vec::new(),
    };
    for r in 0..repositories {
        let repository = format!("churn/r{r}");
        let repo = repository.as_str();
        for round in 0..rounds {
            let age = (rounds - round) as i64;
            let amd64 = registry.push_image(
                repo,
                None,
                &Image::new(&format!("{repo} {round} amd64"), age),
            );
            let arm64 = registry.push_image(
                repo,
                None,
                &Image::new(&format!("{repo} {round} arm64"), age).arch("arm64", Some("v8")),
            );
            let index = registry.push_index(
                repo,
                Some("latest"),
                &[
                    (&amd64, Some(("amd64", None))),
                    (&arm64, Some(("arm64", Some("v8")))),
                ],
                false,
            );
            let signature = registry.push_signature(repo, &index.digest);
            churn.indexes.push((
                repo.to_string(),
                index.digest.clone(),
                vec![amd64.digest.clone(), arm64.digest.clone()],
            ));
            if round + 1 == rounds {
                churn.history.keep(repo, "latest");
                churn
                    .history
                    .keep(repo, &format!("sha256-{}.sig", index.digest.hex()));
                churn.history.keep_untagged(repo, &amd64);
                churn.history.keep_untagged(repo, &arm64);
            } else {
                for pushed in [&amd64, &arm64, &index, &signature] {
                    churn.history.delete(repo, pushed);
                }
                churn.history.deleted_tags.push((
                    repo.to_string(),
                    format!("sha256-{}.sig", index.digest.hex()),
                ));
            }
        }
    }
    churn
}

/// Multi-arch releases as BuildKit and cosign push them, for garbage-collection tests.
pub struct Releases {
    /// What a complete run must leave (with the blobs garbage collection must free).
    pub history: History,
    /// Every kept tag with the digest it must still point at: (repository, tag, digest).
    pub tagged: Vec<(String, String, Digest)>,
}

/// Pushes to `multi`: release 1.0 (an OCI index of amd64 and arm64 with a BuildKit attestation
/// child for each, a cosign signature tag on the index, an SBOM referrer on the index and one
/// on the amd64 image), `latest` on the same index; an older release the tags left behind
/// (index, children, attestation, signature), and an untagged leftover image. The run keeps
/// release 1.0 whole and deletes the rest; garbage collection then frees the old blobs.
pub fn push_attested_releases(registry: &TestRegistry) -> Releases {
    push_attested_releases_in(registry, "multi")
}

/// The same releases in repository `repo`.
pub fn push_attested_releases_in(registry: &TestRegistry, repo: &str) -> Releases {
    let mut history = History::default();
    let mut tagged = Vec::new();
    let release = |name: &str, age: i64| {
        let amd64 = registry.push_image(repo, None, &Image::new(&format!("{name} amd64"), age));
        let arm64 = registry.push_image(
            repo,
            None,
            &Image::new(&format!("{name} arm64"), age).arch("arm64", Some("v8")),
        );
        let amd64_att = registry.push_attestation(repo, &amd64, &format!("{name} amd64"));
        let arm64_att = registry.push_attestation(repo, &arm64, &format!("{name} arm64"));
        let entries = [
            platform_entry(&amd64, "amd64"),
            platform_entry(&arm64, "arm64"),
            attestation_entry(&amd64_att, &amd64),
            attestation_entry(&arm64_att, &arm64),
        ];
        let index = registry.push_index_entries(repo, Some("1.0"), &entries, false);
        let signature = registry.push_signature(repo, &index.digest);
        (index, vec![amd64, arm64, amd64_att, arm64_att], signature)
    };
    let (old_index, old_children, old_signature) = release("release 0.9", 20);
    let leftover = registry.push_image(repo, None, &Image::new("leftover", 30));
    let (index, children, signature) = release("release 1.0", 2);
    registry.tag(repo, &index.digest, "latest");
    let index_sbom = registry.push_referrer(repo, &index, "application/spdx+json", "index");
    let amd64_sbom = registry.push_referrer(repo, &children[0], "application/spdx+json", "amd64");

    let signature_tag = format!("sha256-{}.sig", index.digest.hex());
    for tag in ["1.0", "latest"] {
        history.keep(repo, tag);
        tagged.push((repo.to_string(), tag.to_string(), index.digest.clone()));
    }
    history.keep(repo, &signature_tag);
    tagged.push((repo.to_string(), signature_tag, signature.digest.clone()));
    for kept in children.iter().chain([&index_sbom, &amd64_sbom]) {
        history.keep_untagged(repo, kept);
    }
    for gone in [&old_index, &old_signature, &leftover]
        .into_iter()
        .chain(&old_children)
    {
        history.delete(repo, gone);
    }
    history.deleted_tags.push((
        repo.to_string(),
        format!("sha256-{}.sig", old_index.digest.hex()),
    ));
    // Blobs of deleted images that nothing kept shares.
    let kept_blobs: HashSet<Digest> = children
        .iter()
        .chain([&signature, &index_sbom, &amd64_sbom])
        .flat_map(|m| registry.manifest_blobs(repo, &m.digest))
        .collect();
    let mut gone: Vec<Digest> = old_children
        .iter()
        .chain([&old_signature, &leftover])
        .flat_map(|m| registry.manifest_blobs(repo, &m.digest))
        .filter(|blob| !kept_blobs.contains(blob))
        .collect();
    gone.sort();
    gone.dedup();
    history.gone_blobs = gone.into_iter().map(|b| (repo.to_string(), b)).collect();
    Releases { history, tagged }
}
