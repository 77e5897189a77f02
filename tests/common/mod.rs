//! Test support: starts the real distribution registry (Debian's `docker-registry`) on
//! 127.0.0.1 with temporary storage, pushes images over its HTTP API, checks what is pullable,
//! and runs the `regsweep` binary. Shared by the integration tests and `examples/demo.rs`.
#![allow(dead_code)]

pub mod digitalocean;
pub mod github;
pub mod proxy;
pub mod s3;
pub mod scenario;
pub mod token;

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use regsweep::model::Digest;
use serde_json::{json, Value};

/// Media types used when pushing.
pub mod media {
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    pub const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
}

/// Where a test registry stores its data, and so where regsweep reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// A temporary folder (REGISTRY_DIR).
    #[default]
    Filesystem,
    /// A bucket on a local S3 endpoint (REGISTRY_STORAGE=s3).
    S3,
    /// A temporary folder regsweep is not told about: discovery through the API alone.
    ApiOnly,
}

/// How to start a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Where the registry stores its data.
    pub backend: Backend,
    /// `storage.delete.enabled: false` when true.
    pub deletion_disabled: bool,
    /// htpasswd basic auth with this user and password.
    pub basic_auth: Option<(String, String)>,
    /// Serve HTTPS with a fresh self-signed certificate for 127.0.0.1.
    pub tls: bool,
    /// Serve this existing storage folder instead of a new empty one (benchmarks).
    pub storage: Option<PathBuf>,
    /// `auth: token` with a token server of these accounts; regsweep gets the first
    /// `Grant::All` account as REGISTRY_AUTH.
    pub token_auth: Option<token::TokenServerOptions>,
}

/// The registry binary: `$REGSWEEP_TEST_REGISTRY`, else `docker-registry` or `registry` on PATH.
pub fn registry_binary() -> PathBuf {
    const INSTALL: &str = "Install it with `sudo apt-get install -y docker-registry` (Debian/Ubuntu), \
        or point REGSWEEP_TEST_REGISTRY at a `registry` binary. `scripts/test.sh` installs it for you.";
    if let Some(path) = std::env::var_os("REGSWEEP_TEST_REGISTRY") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "REGSWEEP_TEST_REGISTRY names `{}`, which is not a file. {INSTALL}",
            path.display()
        );
        return path;
    }
    for name in ["docker-registry", "registry"] {
        for folder in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let candidate = folder.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "the distribution registry is not installed: these tests need a real registry. {INSTALL}"
    );
}

/// A running registry; stopped and its storage removed on drop.
pub struct TestRegistry {
    process: Child,
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub url: String,
    /// Temporary folder: `storage/` (the REGISTRY_DIR), config, htpasswd, certificate.
    pub dir: tempfile::TempDir,
    /// The certificate (PEM) when TLS is on.
    pub certificate: Option<PathBuf>,
    /// The credentials regsweep gets (basic auth, or the token server's account).
    pub auth: Option<(String, String)>,
    /// The token server when `auth: token` is on.
    pub token_server: Option<token::TokenServer>,
    /// The S3 endpoint holding the storage, with `Backend::S3`.
    pub s3: Option<s3::MotoServer>,
    /// Where the data is.
    pub backend: Backend,
    storage: PathBuf,
    client: reqwest::blocking::Client,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn wait_until_ready(process: &mut Child, client: &reqwest::blocking::Client, url: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = process.try_wait() {
            return false;
        }
        if client.get(format!("{url}/v2/")).send().is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl TestRegistry {
    /// Starts a registry with default options (HTTP, no auth, deletion enabled).
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(RegistryOptions::default())
    }

    /// Starts a registry with default options on `backend`.
    pub fn start_on(backend: Backend) -> TestRegistry {
        TestRegistry::start_with(RegistryOptions {
            backend,
            ..RegistryOptions::default()
        })
    }

    /// Starts a registry; retries on a new port if the one picked was taken meanwhile.
    pub fn start_with(options: RegistryOptions) -> TestRegistry {
        let binary = registry_binary();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let storage = options
            .storage
            .clone()
            .unwrap_or_else(|| dir.path().join("storage"));
        std::fs::create_dir_all(&storage).unwrap();

        let mut auth_section = String::new();
        if let Some((user, password)) = &options.basic_auth {
            let hash = bcrypt::hash(password, 5).expect("bcrypt hash");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            auth_section = format!(
                "auth:\n  htpasswd:\n    realm: regsweep-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let token_server = options.token_auth.clone().map(token::TokenServer::start);
        let mut auth = options.basic_auth.clone();
        if let Some(server) = &token_server {
            let bundle = dir.path().join("token-root.pem");
            std::fs::write(&bundle, &server.signer.certificate_pem).unwrap();
            auth_section = format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                server.realm,
                token::SERVICE,
                token::ISSUER,
                bundle.display()
            );
            let accounts = &options.token_auth.as_ref().unwrap().accounts;
            auth = accounts
                .iter()
                .filter(|(_, (_, grant))| *grant == token::Grant::All)
                .map(|(user, (password, _))| (user.clone(), password.clone()))
                .min();
        }
        let mut tls_section = String::new();
        let mut certificate = None;
        if options.tls {
            let key =
                rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                    .expect("a self-signed certificate");
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, key.cert.pem()).unwrap();
            std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap();
            tls_section = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert_path.display(),
                key_path.display()
            );
            certificate = Some(cert_path);
        }
        let scheme = if options.tls { "https" } else { "http" };
        let s3 = (options.backend == Backend::S3)
            .then(|| s3::MotoServer::start(dir.path().join("moto.log")));
        let driver = match &s3 {
            Some(server) => server.registry_config(),
            None => format!("  filesystem:\n    rootdirectory: {}\n", storage.display()),
        };

        for _attempt in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n{driver}  delete:\n    enabled: {delete}\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: regsweep-test-secret\n{tls_section}\
                 {auth_section}",
                delete = !options.deletion_disabled,
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let process = Command::new(&binary)
                // The machine's AWS settings (a CA bundle, a profile) are not the test's.
                .env_remove("AWS_CA_BUNDLE")
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_ENDPOINT_URL")
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", binary.display()));
            let mut process = process;
            let client = reqwest::blocking::Client::builder()
                .danger_accept_invalid_certs(true)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let url = format!("{scheme}://127.0.0.1:{port}");
            if wait_until_ready(&mut process, &client, &url) {
                return TestRegistry {
                    process,
                    url,
                    dir,
                    certificate,
                    auth,
                    token_server,
                    s3,
                    backend: options.backend,
                    storage,
                    client,
                };
            }
            // Most likely the port was taken between picking and binding: try another.
            let _ = process.kill();
            let _ = process.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        panic!("the registry did not start; its log:\n{log}");
    }

    /// The storage root to pass as REGISTRY_DIR.
    pub fn storage(&self) -> PathBuf {
        self.storage.clone()
    }

    /// The registry's config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// The registry's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.url)
        };
        let request = self.client.request(method, url.clone());
        if let Some(server) = &self.token_server {
            // The harness mints its own token, for the repository in the path.
            let repository = repository_in_path(&url).unwrap_or_default();
            let token = server
                .signer
                .mint("harness", token::full_access(&repository));
            return request.bearer_auth(token);
        }
        match &self.auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

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
        let response = self
            .request(
                reqwest::Method::GET,
                &format!("/v2/{repository}/manifests/{digest}"),
            )
            .header("accept", media::ACCEPT_ALL)
            .send()
            .unwrap();
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

    /// The digest a tag points at now, if it exists.
    pub fn digest_of(&self, repository: &str, tag: &str) -> Option<Digest> {
        let response = self
            .request(
                reqwest::Method::GET,
                &format!("/v2/{repository}/manifests/{tag}"),
            )
            .header("accept", media::ACCEPT_ALL)
            .send()
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        Some(Digest::sha256_of(&response.bytes().ok()?))
    }

    /// Status of GET manifest `reference` with every manifest type accepted.
    pub fn manifest_status(&self, repository: &str, reference: &str) -> u16 {
        self.request(
            reqwest::Method::GET,
            &format!("/v2/{repository}/manifests/{reference}"),
        )
        .header("accept", media::ACCEPT_ALL)
        .send()
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
            let response = self
                .request(
                    reqwest::Method::GET,
                    &format!("/v2/{repository}/manifests/{reference}"),
                )
                .header("accept", media::ACCEPT_ALL)
                .send()
                .unwrap();
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
        let response = self
            .request(
                reqwest::Method::GET,
                &format!("/v2/{repository}/manifests/{digest}"),
            )
            .header("accept", media::ACCEPT_ALL)
            .send()
            .unwrap();
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
        if let Some(s3) = &self.s3 {
            return s3
                .keys()
                .into_iter()
                .map(|key| {
                    let content = s3.get(&key);
                    (key, content)
                })
                .collect();
        }
        let mut files = Vec::new();
        let mut pending = vec![self.storage()];
        while let Some(folder) = pending.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path
                        .strip_prefix(self.storage())
                        .unwrap()
                        .display()
                        .to_string();
                    files.push((relative, std::fs::read(&path).unwrap()));
                }
            }
        }
        files.sort();
        files
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

    /// Reads a storage file (`relative` to the storage root).
    pub fn read_storage(&self, relative: &str) -> Vec<u8> {
        match &self.s3 {
            Some(s3) => s3.get(relative),
            None => std::fs::read(self.storage().join(relative)).unwrap(),
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
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

/// What one regsweep run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output (the report).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// The regsweep binary next to this test (or example) executable.
pub fn regsweep_binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_regsweep") {
        return PathBuf::from(path);
    }
    // Examples live in target/<profile>/examples/, the binary in target/<profile>/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    profile_dir.join("regsweep")
}

/// Starts regsweep with exactly these environment variables (plus PATH) and arguments, its
/// output piped; `finish` collects it.
pub fn spawn_regsweep(env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut command = Command::new(regsweep_binary());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the regsweep binary runs")
}

/// Runs regsweep with exactly these environment variables (plus PATH) and arguments.
pub fn regsweep(env: &[(&str, &str)], args: &[&str]) -> Run {
    finish(spawn_regsweep(env, args))
}

/// Waits for a spawned regsweep and collects its output.
pub fn finish(mut child: Child) -> Run {
    let mut stdout = String::new();
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let _ = out.read_to_string(&mut stdout);
    let stderr = reader.join().unwrap();
    let status = child.wait().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

impl TestRegistry {
    /// The environment for a regsweep run against this registry and its storage.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("REGISTRY_URL", self.url.clone()),
            (
                "REGSWEEP_REGISTRY_CONFIG",
                self.config_path().display().to_string(),
            ),
        ];
        match (self.backend, &self.s3) {
            (Backend::S3, Some(server)) => env.extend([
                ("REGISTRY_STORAGE", "s3".to_string()),
                ("BUCKET", s3::BUCKET.to_string()),
                ("REGISTRY_DIR", format!("/{}", s3::ROOT)),
                ("REGION", s3::REGION.to_string()),
                ("ACCESS_KEY", s3::ACCESS_KEY.to_string()),
                ("SECRET_KEY", s3::SECRET_KEY.to_string()),
                ("REGSWEEP_S3_ENDPOINT", server.url.clone()),
            ]),
            // Nothing about storage; explicit, in case this machine has a `/registry`.
            (Backend::ApiOnly, _) => env.push(("REGSWEEP_SOURCE", "api".to_string())),
            _ => env.push(("REGISTRY_DIR", self.storage().display().to_string())),
        }
        if let Some((user, password)) = &self.auth {
            env.push(("REGISTRY_AUTH", format!("{user}:{password}")));
        }
        env
    }

    /// Runs regsweep against this registry with extra environment variables.
    pub fn sweep(&self, extra: &[(&str, &str)]) -> Run {
        finish(self.spawn_sweep(extra))
    }

    /// Starts regsweep against this registry with extra environment variables (which
    /// override the defaults, `REGISTRY_URL` included: point it at a proxy).
    pub fn spawn_sweep(&self, extra: &[(&str, &str)]) -> Child {
        let base = self.env();
        let mut env: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key, value));
        }
        spawn_regsweep(&env, &[])
    }
}
