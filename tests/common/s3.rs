//! A local S3 endpoint for the registry's `s3` storage driver: `moto_server` (pip package
//! `moto[server]`) on 127.0.0.1 with a random port. Moto accepts any credentials and plain,
//! unsigned requests, which the harness uses to look at and tamper with the bucket.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket every test registry stores into.
pub const BUCKET: &str = "regsweep-test";
/// The registry's `rootdirectory` inside the bucket (a non-empty one, as REGISTRY_DIR).
pub const ROOT: &str = "ci/registry";
/// Credentials for the registry and regsweep (moto checks none).
pub const ACCESS_KEY: &str = "AKIAREGSWEEPTEST";
/// Never printed by regsweep: the secrets test looks for it.
pub const SECRET_KEY: &str = "regsweep-test-secret-key-9f8e7d";
/// The region both sides use.
pub const REGION: &str = "us-east-1";

/// `$REGSWEEP_TEST_MOTO`, else `moto_server` on PATH.
/// The variables that point regsweep at a registry's storage in this bucket on `endpoint`.
pub fn storage_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("REGISTRY_STORAGE", "s3".to_string()),
        ("BUCKET", BUCKET.to_string()),
        ("REGISTRY_DIR", format!("/{ROOT}")),
        ("REGION", REGION.to_string()),
        ("ACCESS_KEY", ACCESS_KEY.to_string()),
        ("SECRET_KEY", SECRET_KEY.to_string()),
        ("REGSWEEP_S3_ENDPOINT", endpoint.to_string()),
    ]
}

pub fn moto_binary() -> PathBuf {
    const INSTALL: &str = "Install it with `pip install 'moto[server]'`, or point \
        REGSWEEP_TEST_MOTO at a `moto_server` binary. `scripts/test.sh` installs it for you.";
    if let Some(path) = std::env::var_os("REGSWEEP_TEST_MOTO") {
        return PathBuf::from(path);
    }
    for folder in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = folder.join("moto_server");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("the local S3 endpoint is not installed: the S3 tests need it. {INSTALL}");
}

/// A running moto server with the test bucket; stopped on drop.
pub struct MotoServer {
    process: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// moto's log: one line per request answered.
    pub log: PathBuf,
    client: reqwest::blocking::Client,
}

impl MotoServer {
    /// Starts moto on a free port and creates [`BUCKET`].
    pub fn start(log: PathBuf) -> MotoServer {
        let binary = moto_binary();
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(owner_headers())
            .build()
            .unwrap();
        for _attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap();
            let log_file = std::fs::File::create(&log).unwrap();
            let mut process = Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", binary.display()));
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut ready = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = process.try_wait() {
                    break;
                }
                if client.get(&url).send().is_ok() {
                    ready = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if ready {
                let server = MotoServer {
                    process,
                    url,
                    log: log.clone(),
                    client,
                };
                let status = server
                    .client
                    .put(format!("{}/{BUCKET}", server.url))
                    .send()
                    .unwrap()
                    .status();
                assert!(status.is_success(), "creating the bucket: {status}");
                return server;
            }
            let _ = process.kill();
            let _ = process.wait();
        }
        panic!(
            "moto did not start; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// The requests moto has answered so far, as `METHOD /path?query` (its log's lines).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let quoted = line.split('"').nth(1)?;
                let mut parts = quoted.split(' ');
                let method = parts.next()?;
                let path = parts.next()?;
                ["GET", "HEAD", "PUT", "POST", "DELETE"]
                    .contains(&method)
                    .then(|| format!("{method} {path}"))
            })
            .collect()
    }

    /// The registry config's `storage:` driver section (indented for `storage:`).
    pub fn registry_config(&self) -> String {
        format!(
            "  s3:\n    accesskey: {ACCESS_KEY}\n    secretkey: {SECRET_KEY}\n    region: {REGION}\n    \
             regionendpoint: {url}\n    bucket: {BUCKET}\n    rootdirectory: /{ROOT}\n    \
             secure: false\n    v4auth: true\n",
            url = self.url
        )
    }

    /// Every key below the root, relative to it, sorted (ListObjectsV2, all pages).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        for _page in 0..100_000 {
            let mut request = self
                .client
                .get(format!("{}/{BUCKET}", self.url))
                .query(&[("list-type", "2"), ("prefix", &format!("{ROOT}/"))]);
            if let Some(token) = &token {
                request = request.query(&[("continuation-token", token)]);
            }
            let body = request.send().unwrap().text().unwrap();
            keys.extend(
                elements(&body, "Key")
                    .into_iter()
                    .map(|k| k[ROOT.len() + 1..].to_string()),
            );
            token = elements(&body, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        keys
    }

    /// An object's content, by path relative to the root.
    pub fn get(&self, relative: &str) -> Vec<u8> {
        let response = self
            .client
            .get(format!("{}/{BUCKET}/{ROOT}/{relative}", self.url))
            .send()
            .unwrap();
        assert!(response.status().is_success(), "GET {relative}");
        response.bytes().unwrap().to_vec()
    }

    /// Writes an object behind the registry's back, by path relative to the root.
    pub fn put(&self, relative: &str, bytes: &[u8]) {
        let status = self
            .client
            .put(format!("{}/{BUCKET}/{ROOT}/{relative}", self.url))
            .body(bytes.to_vec())
            .send()
            .unwrap()
            .status();
        assert!(status.is_success(), "PUT {relative}: {status}");
    }

    /// Deletes an object behind the registry's back.
    pub fn delete(&self, relative: &str) {
        let status = self
            .client
            .delete(format!("{}/{BUCKET}/{ROOT}/{relative}", self.url))
            .send()
            .unwrap()
            .status();
        assert!(status.is_success(), "DELETE {relative}: {status}");
    }
}

/// Moto treats a request without `Authorization` as anonymous (refused on the registry's
/// private objects) and checks no signature: a well-formed header names the owner.
pub fn owner_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/s3/aws4_request, \
         SignedHeaders=host, Signature=0000"
    );
    headers.insert(reqwest::header::AUTHORIZATION, value.parse().unwrap());
    headers
}

/// The texts of every `<name>…</name>` element (enough XML for ListObjectsV2).
fn elements(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(text, _)| text))
        .map(|text| text.replace("&amp;", "&"))
        .collect()
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
