//! registry: the real distribution registry (Debian's `docker-registry`) on 127.0.0.1 with
//! temporary storage (a folder, or a bucket on a local S3 endpoint), basic auth, TLS or a
//! token server as asked; pushes images over its HTTP API and checks what is pullable.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::push::repository_in_path;
use super::{s3, token};
use std::time::{Duration, Instant};

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
    /// `storage.maintenance.readonly.enabled: true`: reads only (the maintenance window).
    pub read_only: bool,
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
                 maintenance:\n    uploadpurging:\n      enabled: false\n    \
                 readonly:\n      enabled: {read_only}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: regsweep-test-secret\n{tls_section}\
                 {auth_section}",
                delete = !options.deletion_disabled,
                read_only = options.read_only,
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let mut process = serve(&binary, &config_path, dir.path());
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

    /// Stops the registry (its storage stays): what `--registry-stopped` means.
    pub fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// Starts the registry again on the same storage and config, read-only or not, on a new
    /// port (`url` changes).
    pub fn restart(&mut self, read_only: bool) {
        self.stop();
        let config_path = self.config_path();
        let config = std::fs::read_to_string(&config_path).unwrap();
        let config = config
            .replace(
                "readonly:\n      enabled: true",
                "readonly:\n      enabled: false",
            )
            .replace(
                "readonly:\n      enabled: false",
                &format!("readonly:\n      enabled: {read_only}"),
            );
        let scheme = if self.url.starts_with("https") {
            "https"
        } else {
            "http"
        };
        for _attempt in 0..5 {
            let port = free_port();
            let start = config.find("addr: 127.0.0.1:").unwrap() + "addr: 127.0.0.1:".len();
            let end = start + config[start..].find('\n').unwrap();
            let config = format!("{}{port}{}", &config[..start], &config[end..]);
            std::fs::write(&config_path, &config).unwrap();
            let mut process = serve(&registry_binary(), &config_path, self.dir.path());
            let url = format!("{scheme}://127.0.0.1:{port}");
            if wait_until_ready(&mut process, &self.client, &url) {
                self.process = process;
                self.url = url;
                return;
            }
            let _ = process.kill();
            let _ = process.wait();
        }
        panic!("the registry did not restart; its log:\n{}", self.log());
    }

    /// A second registry (default options, same backend) over a copy of this one's storage:
    /// every file or object, byte for byte. For comparing two ways of cleaning the same data.
    pub fn copy(&self) -> TestRegistry {
        let copy = TestRegistry::start_on(self.backend);
        for file in self.storage_files() {
            copy.write_storage(&file, &self.read_storage(&file));
        }
        copy
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

    /// A request to the registry with the harness's credentials (its own token with a token
    /// server), `path` below its URL or a whole URL.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        self.access().request(method, path)
    }

    /// How the fakes reach this registry with the harness's credentials.
    pub fn access(&self) -> RegistryAccess {
        RegistryAccess {
            url: self.url.clone(),
            signer: self.token_server.as_ref().map(|s| s.signer.clone()),
            basic: self.auth.clone(),
            client: self.client.clone(),
        }
    }
}

/// The test registry as a fake reaches it from its own thread: its URL and the harness's
/// credentials (a token it mints itself when the registry wants bearer tokens).
#[derive(Clone)]
pub struct RegistryAccess {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    signer: Option<std::sync::Arc<token::Signer>>,
    basic: Option<(String, String)>,
    client: reqwest::blocking::Client,
}

impl RegistryAccess {
    /// A request to `path` below the registry's URL (or a whole URL).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.url)
        };
        let request = self.client.request(method, url.clone());
        if let Some(signer) = &self.signer {
            // The harness mints its own token, for the repository in the path.
            let repository = repository_in_path(&url).unwrap_or_default();
            let token = signer.mint("harness", token::full_access(&repository));
            return request.bearer_auth(token);
        }
        match &self.basic {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `docker-registry serve CONFIG`, its output in `dir/registry.log`.
fn serve(binary: &Path, config_path: &Path, dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("registry.log")).unwrap();
    Command::new(binary)
        // The machine's AWS settings (a CA bundle, a profile) are not the test's.
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .arg("serve")
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", binary.display()))
}
