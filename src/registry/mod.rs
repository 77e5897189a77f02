//! registry: the OCI distribution client and the one HTTP layer under it, and nothing else.
//!
//! - `http`: TLS, timeouts, retries and pacing for every HTTP caller (the registry, the
//!   providers' REST APIs, the GitHub and GitLab publishers), under the run's control;
//! - `retry`, `pacing`, `paging`: when to retry, how to keep an API's rate limits, how to
//!   follow pages (bounded, on the API's own origin);
//! - `rest`: a JSON REST API client over `http`, which the providers' typed clients wrap;
//! - `challenge`, `token`: `WWW-Authenticate` challenges and bearer tokens;
//! - `client`, `reader`, `error`: the distribution API itself (manifests, tags, blobs,
//!   referrers, deletes) and its refusals explained;
//! - `untag`: one tag removed from a manifest that stays.
//!
//! Knows nothing of plans, policies, providers or reports.

pub mod challenge;
pub mod client;
pub mod error;
pub mod http;
pub mod pacing;
pub mod paging;
pub mod reader;
pub mod rest;
pub mod retry;
pub mod token;
pub mod untag;

pub use client::{Credentials, Gone, RegistryClient};
pub use error::RegistryError;
pub use http::{Http, TlsOptions};
pub use retry::RetryPolicy;
