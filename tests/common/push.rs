//! push: what the tests push to the real registry (blobs, images, indexes, referrers,
//! signatures, attestations, tags) and what they check of it afterwards (digests, pullability,
//! storage contents).

use chrono::{DateTime, Utc};
use regsweep::model::Digest;
use serde_json::{json, Value};

use super::registry::{media, RegistryAccess, TestRegistry};

impl TestRegistry {
    /// Uploads a blob (monolithic: POST then PUT) and returns its digest.
    pub fn push_blob(&self, repository: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::sha256_of(bytes);
        let response = self
            .request(
                reqwest::Method::POST,
                &format!("/v2/{repository}/blobs/uploads/"),
            )
            .send()
            .expect("POST blob upload");
        assert_eq!(
            response.status(),
            202,
            "start upload: {:?}",
            response.text()
        );
        let location = response.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.url)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("{location}{separator}digest={digest}"),
            )
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .expect("PUT blob");
        assert_eq!(
            response.status(),
            201,
            "finish upload: {:?}",
            response.text()
        );
        digest
    }

    /// Uploads a manifest under `reference` (a tag, or its own digest for an untagged push).
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: Option<&str>,
        media_type: &str,
        body: &Value,
    ) -> Pushed {
        let bytes = serde_json::to_vec_pretty(body).unwrap();
        let digest = Digest::sha256_of(&bytes);
        let reference = reference
            .map(str::to_string)
            .unwrap_or_else(|| digest.to_string());
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("/v2/{repository}/manifests/{reference}"),
            )
            .header("content-type", media_type)
            .body(bytes.clone())
            .send()
            .expect("PUT manifest");
        assert_eq!(
            response.status(),
            201,
            "push manifest: {:?}",
            response.text()
        );
        Pushed {
            digest,
            media_type: media_type.to_string(),
            size: bytes.len() as u64,
        }
    }

    /// Pushes a single-platform image: a config with `created` and the platform, one layer.
    pub fn push_image(&self, repository: &str, tag: Option<&str>, image: &Image) -> Pushed {
        let (manifest_type, config_type, layer_type) = if image.docker {
            (
                media::DOCKER_MANIFEST,
                media::DOCKER_CONFIG,
                media::DOCKER_LAYER,
            )
        } else {
            (media::OCI_MANIFEST, media::OCI_CONFIG, media::OCI_LAYER)
        };
        let layer = format!("layer of {} in {repository}", image.name).into_bytes();
        let layer_digest = self.push_blob(repository, &layer);
        let mut config = json!({
            "architecture": image.architecture,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
            "config": {"Labels": {"name": image.name}},
        });
        if let Some(variant) = &image.variant {
            config["variant"] = json!(variant);
        }
        if let Some(created) = image.created {
            config["created"] = json!(created.to_rfc3339());
        }
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = self.push_blob(repository, &config_bytes);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": config_digest.to_string(), "size": config_bytes.len()},
            "layers": [{"mediaType": layer_type, "digest": layer_digest.to_string(), "size": layer.len()}],
        });
        self.put_manifest(repository, tag, manifest_type, &manifest)
    }

    /// Pushes an index (OCI, or a Docker manifest list when `docker`) of `children`.
    pub fn push_index(
        &self,
        repository: &str,
        tag: Option<&str>,
        children: &[(&Pushed, Option<PlatformSpec>)],
        docker: bool,
    ) -> Pushed {
        let entries: Vec<Value> = children
            .iter()
            .map(|(child, platform)| {
                let mut entry = index_entry(child);
                if let Some((architecture, variant)) = platform {
                    entry["platform"] = json!({"os": "linux", "architecture": architecture});
                    if let Some(variant) = variant {
                        entry["platform"]["variant"] = json!(variant);
                    }
                }
                entry
            })
            .collect();
        self.push_index_entries(repository, tag, &entries, docker)
    }

    /// Pushes an index (OCI, or a Docker manifest list when `docker`) of these `manifests`
    /// entries as given (platforms, annotations).
    pub fn push_index_entries(
        &self,
        repository: &str,
        tag: Option<&str>,
        entries: &[Value],
        docker: bool,
    ) -> Pushed {
        let media_type = if docker {
            media::DOCKER_LIST
        } else {
            media::OCI_INDEX
        };
        let index = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries});
        self.put_manifest(repository, tag, media_type, &index)
    }

    /// Pushes a BuildKit attestation manifest (an in-toto SBOM statement about `subject`),
    /// untagged; `attestation_entry` lists it in the subject's index as BuildKit does.
    pub fn push_attestation(&self, repository: &str, subject: &Pushed, name: &str) -> Pushed {
        let statement = format!(
            "{{\"_type\":\"https://in-toto.io/Statement/v0.1\",\"subject\":[{{\"digest\":\"{}\"}}],\"name\":\"{name}\"}}",
            subject.digest
        )
        .into_bytes();
        let layer = self.push_blob(repository, &statement);
        let config = json!({"architecture": "unknown", "os": "unknown", "config": {},
                            "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]}});
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = self.push_blob(repository, &config_bytes);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer.to_string(), "size": statement.len(),
                        "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}],
        });
        self.put_manifest(repository, None, media::OCI_MANIFEST, &manifest)
    }

    /// Pushes an OCI 1.1 referrer (an artifact with `subject`), untagged.
    pub fn push_referrer(
        &self,
        repository: &str,
        subject: &Pushed,
        artifact_type: &str,
        name: &str,
    ) -> Pushed {
        let empty = self.push_blob(repository, b"{}");
        let payload = format!("{artifact_type} for {} ({name})", subject.digest).into_bytes();
        let layer = self.push_blob(repository, &payload);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": media::OCI_EMPTY, "digest": empty.to_string(), "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer.to_string(), "size": payload.len()}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest.to_string(), "size": subject.size},
        });
        self.put_manifest(repository, None, media::OCI_MANIFEST, &manifest)
    }

    /// Pushes a cosign-style signature: an image manifest tagged `sha256-<hex>.sig`.
    pub fn push_signature(&self, repository: &str, target: &Digest) -> Pushed {
        let tag = format!("sha256-{}.sig", target.hex());
        let payload =
            format!("{{\"critical\":{{\"image\":{{\"docker-manifest-digest\":\"{target}\"}}}}}}")
                .into_bytes();
        let layer = self.push_blob(repository, &payload);
        let config = json!({"architecture": "", "os": "", "created": "0001-01-01T00:00:00Z", "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]}});
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = self.push_blob(repository, &config_bytes);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
            "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": layer.to_string(), "size": payload.len()}],
        });
        self.put_manifest(repository, Some(&tag), media::OCI_MANIFEST, &manifest)
    }

    /// Points `tag` at an existing manifest (re-PUT of the same bytes under a tag).
    pub fn tag(&self, repository: &str, digest: &Digest, tag: &str) {
        self.access().retag(repository, &digest.to_string(), tag);
    }

    /// The digest a tag points at now, if it exists.
    pub fn digest_of(&self, repository: &str, tag: &str) -> Option<Digest> {
        let response = self.access().get_manifest(repository, &tag).ok()?;
        if !response.status().is_success() {
            return None;
        }
        Some(Digest::sha256_of(&response.bytes().ok()?))
    }

    /// Status of GET manifest `reference` with every manifest type accepted.
    pub fn manifest_status(&self, repository: &str, reference: &str) -> u16 {
        self.access()
            .get_manifest(repository, &reference)
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Whether a manifest digest still exists in a repository.
    pub fn exists(&self, repository: &str, digest: &Digest) -> bool {
        self.manifest_status(repository, digest.as_str()) == 200
    }

    /// The repository's tags, sorted.
    pub fn tags(&self, repository: &str) -> Vec<String> {
        let response = self
            .request(reqwest::Method::GET, &format!("/v2/{repository}/tags/list"))
            .send()
            .unwrap();
        if response.status() == 404 {
            return Vec::new();
        }
        let body: Value = response.json().unwrap();
        let mut tags: Vec<String> = body["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// Checks that `reference` is fully pullable: the manifest, every child (recursively),
    /// every config and layer blob answer 200. Returns what failed.
    pub fn pull_problems(&self, repository: &str, reference: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let mut pending = vec![reference.to_string()];
        let mut steps = 0;
        while let Some(reference) = pending.pop() {
            steps += 1;
            assert!(steps < 1000, "pull check does not end");
            let response = self.access().get_manifest(repository, &reference).unwrap();
            if response.status() != 200 {
                problems.push(format!(
                    "{repository}@{reference}: manifest {}",
                    response.status()
                ));
                continue;
            }
            let body: Value = response.json().unwrap();
            for child in body["manifests"].as_array().into_iter().flatten() {
                pending.push(child["digest"].as_str().unwrap().to_string());
            }
            let blobs = body["config"]
                .as_object()
                .into_iter()
                .map(|c| c["digest"].as_str().unwrap().to_string())
                .chain(
                    body["layers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|l| l["digest"].as_str().unwrap().to_string()),
                );
            for blob in blobs {
                let status = self
                    .request(
                        reqwest::Method::HEAD,
                        &format!("/v2/{repository}/blobs/{blob}"),
                    )
                    .send()
                    .unwrap()
                    .status();
                if status != 200 {
                    problems.push(format!("{repository}@{reference}: blob {blob} {status}"));
                }
            }
        }
        problems
    }

    /// Status of `HEAD /v2/<repository>/blobs/<digest>`.
    pub fn blob_status(&self, repository: &str, digest: &Digest) -> u16 {
        self.request(
            reqwest::Method::HEAD,
            &format!("/v2/{repository}/blobs/{digest}"),
        )
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
    }

    /// The config and layer blobs of the image manifest `digest` (none for an index).
    pub fn manifest_blobs(&self, repository: &str, digest: &Digest) -> Vec<Digest> {
        let response = self.access().get_manifest(repository, &digest).unwrap();
        assert_eq!(response.status(), 200, "{repository}@{digest}");
        let body: Value = response.json().unwrap();
        body["config"]["digest"]
            .as_str()
            .into_iter()
            .chain(
                body["layers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l["digest"].as_str()),
            )
            .map(|d| d.parse().unwrap())
            .collect()
    }

    /// Every file below the storage root with its content, for "nothing changed" checks.
    pub fn storage_snapshot(&self) -> Vec<(String, Vec<u8>)> {
        self.storage_files()
            .into_iter()
            .map(|file| {
                let content = self.read_storage(&file);
                (file, content)
            })
            .collect()
    }

    /// Every file below the storage root (on disk or in the bucket), relative to it, sorted.
    pub fn storage_files(&self) -> Vec<String> {
        if let Some(s3) = &self.s3 {
            return s3.keys();
        }
        let mut files = Vec::new();
        let mut pending = vec![self.storage()];
        while let Some(folder) = pending.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(self.storage()).unwrap();
                    files.push(relative.display().to_string());
                }
            }
        }
        files.sort();
        files
    }

    /// The revision links of `repository` in storage (`…/revisions/sha256/<hex>/link`).
    pub fn revisions(&self, repository: &str) -> Vec<String> {
        let prefix = format!("docker/registry/v2/repositories/{repository}/_manifests/revisions/");
        self.storage_files()
            .into_iter()
            .filter(|file| file.starts_with(&prefix) && file.ends_with("/link"))
            .collect()
    }

    /// Pushes the manifest `digest` of `from` into `to` under `tag`, byte for byte, its config
    /// and layers mounted across (one copy in storage, shared by both repositories, as a
    /// `docker push` of the same image to a second name leaves it).
    pub fn copy_image(&self, from: &str, digest: &Digest, to: &str, tag: &str) -> Pushed {
        for blob in self.manifest_blobs(from, digest) {
            let response = self
                .request(
                    reqwest::Method::POST,
                    &format!("/v2/{to}/blobs/uploads/?mount={blob}&from={from}"),
                )
                .send()
                .unwrap();
            assert_eq!(response.status(), 201, "mount {blob} from {from} into {to}");
        }
        let response = self.access().get_manifest(from, &digest).unwrap();
        assert_eq!(response.status(), 200, "{from}@{digest}");
        let media_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let bytes = response.bytes().unwrap().to_vec();
        let response = self
            .request(reqwest::Method::PUT, &format!("/v2/{to}/manifests/{tag}"))
            .header("content-type", &media_type)
            .body(bytes.clone())
            .send()
            .unwrap();
        assert_eq!(response.status(), 201, "push {to}:{tag}");
        Pushed {
            digest: digest.clone(),
            media_type,
            size: bytes.len() as u64,
        }
    }

    /// Writes a storage file behind the registry's back (`relative` to the storage root,
    /// e.g. `docker/registry/v2/…`), on disk or in the bucket.
    pub fn write_storage(&self, relative: &str, bytes: &[u8]) {
        match &self.s3 {
            Some(s3) => s3.put(relative, bytes),
            None => {
                let path = self.storage().join(relative);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
        }
    }

    /// Makes the revision of `digest` in `repository` look `age` old (its link's modification
    /// time, which is when the registry stored it): filesystem storage only.
    pub fn age_revision(&self, repository: &str, digest: &Digest, age: std::time::Duration) {
        assert!(
            self.s3.is_none(),
            "age_revision works on filesystem storage"
        );
        let link = self.storage().join(format!(
            "docker/registry/v2/repositories/{repository}/_manifests/revisions/{}/{}/link",
            digest.algorithm(),
            digest.hex()
        ));
        let file = std::fs::File::options().write(true).open(&link).unwrap();
        file.set_modified(std::time::SystemTime::now() - age)
            .unwrap();
    }

    /// Stores a manifest the way the registry does on `PUT /v2/<repository>/manifests/…`,
    /// behind its back: the blob, the revision link, and for a tag its `current` and `index`
    /// links. For building storage at scales the API would take an hour to fill (the
    /// benchmark's million manifests); its blobs must already be in the repository.
    pub fn write_manifest(
        &self,
        repository: &str,
        tag: Option<&str>,
        media_type: &str,
        body: &Value,
    ) -> Pushed {
        let bytes = serde_json::to_vec_pretty(body).unwrap();
        let digest = Digest::sha256_of(&bytes);
        let hex = digest.hex();
        let v2 = "docker/registry/v2";
        let link = digest.as_str().as_bytes();
        self.write_storage(
            &format!("{v2}/blobs/sha256/{}/{hex}/data", &hex[..2]),
            &bytes,
        );
        let manifests = format!("{v2}/repositories/{repository}/_manifests");
        self.write_storage(&format!("{manifests}/revisions/sha256/{hex}/link"), link);
        if let Some(tag) = tag {
            self.write_storage(&format!("{manifests}/tags/{tag}/current/link"), link);
            self.write_storage(
                &format!("{manifests}/tags/{tag}/index/sha256/{hex}/link"),
                link,
            );
        }
        Pushed {
            digest,
            media_type: media_type.to_string(),
            size: bytes.len() as u64,
        }
    }

    /// Reads a storage file (`relative` to the storage root).
    pub fn read_storage(&self, relative: &str) -> Vec<u8> {
        match &self.s3 {
            Some(s3) => s3.get(relative),
            None => std::fs::read(self.storage().join(relative)).unwrap(),
        }
    }
}

/// The repository name in a `/v2/<name>/(manifests|blobs|tags)/…` URL or path.
pub fn repository_in_path(url: &str) -> Option<String> {
    let path = url.split_once("/v2/")?.1;
    ["/manifests/", "/blobs/", "/tags/", "/referrers/"]
        .iter()
        .filter_map(|marker| path.find(marker))
        .min()
        .map(|end| path[..end].to_string())
}

/// The `manifests` entry of an index for `child` (no platform).
pub fn index_entry(child: &Pushed) -> Value {
    json!({"mediaType": child.media_type, "digest": child.digest.to_string(), "size": child.size})
}

/// The index entry BuildKit writes for the attestation manifest of `image`.
pub fn attestation_entry(attestation: &Pushed, image: &Pushed) -> Value {
    let mut entry = index_entry(attestation);
    entry["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    entry["annotations"] = json!({
        "vnd.docker.reference.digest": image.digest.to_string(),
        "vnd.docker.reference.type": "attestation-manifest",
    });
    entry
}

/// The `manifests` entry of an index for `child` on linux/`architecture`.
pub fn platform_entry(child: &Pushed, architecture: &str) -> Value {
    let mut entry = index_entry(child);
    entry["platform"] = json!({"os": "linux", "architecture": architecture});
    entry
}

/// An index entry's platform: architecture and optional variant (OS is always linux).
pub type PlatformSpec<'a> = (&'a str, Option<&'a str>);

/// What a push returned.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An image to push.
#[derive(Debug, Clone)]
pub struct Image {
    /// Makes its content (and digest) unique.
    pub name: String,
    /// `created` in the config, or none.
    pub created: Option<DateTime<Utc>>,
    /// `amd64`, `arm64`…
    pub architecture: String,
    /// `v8`…
    pub variant: Option<String>,
    /// Docker schema2 instead of OCI.
    pub docker: bool,
}

impl RegistryAccess {
    /// GET manifest `reference` with every manifest type accepted.
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &dyn std::fmt::Display,
    ) -> reqwest::Result<reqwest::blocking::Response> {
        self.request(
            reqwest::Method::GET,
            &format!("/v2/{repository}/manifests/{reference}"),
        )
        .header("accept", media::ACCEPT_ALL)
        .send()
    }

    /// Points `tag` at the manifest `digest` (`sha256:…`) already in `repository`: a re-PUT of
    /// its bytes under the tag, as a CI push of the same image does.
    pub fn retag(&self, repository: &str, digest: &str, tag: &str) {
        let response = self.get_manifest(repository, &digest).unwrap();
        assert_eq!(response.status(), 200);
        let media_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let bytes = response.bytes().unwrap();
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("/v2/{repository}/manifests/{tag}"),
            )
            .header("content-type", media_type)
            .body(bytes)
            .send()
            .unwrap();
        assert_eq!(response.status(), 201);
    }
}

impl Image {
    /// An OCI linux/amd64 image created `days` days ago.
    pub fn new(name: &str, days: i64) -> Image {
        Image {
            name: name.to_string(),
            created: Some(Utc::now() - chrono::Duration::days(days)),
            architecture: "amd64".into(),
            variant: None,
            docker: false,
        }
    }

    /// Same, for another architecture.
    pub fn arch(mut self, architecture: &str, variant: Option<&str>) -> Image {
        self.architecture = architecture.into();
        self.variant = variant.map(str::to_string);
        self
    }

    /// As a Docker schema2 image.
    pub fn docker(mut self) -> Image {
        self.docker = true;
        self
    }
}
