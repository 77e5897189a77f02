//! Test support, one file per real or fake component: the real registry (`registry`) and what is pushed to it (`push`), the
//! regsweep binary (`runner`), the push histories (`scenario`), the token server (`token`), the
//! local S3 endpoint (`s3`), a fault-injecting proxy (`proxy`), and fakes of the APIs that
//! cannot run here (`fake` holds what they share; `digitalocean`, `ghcr`, `github`, `gitlab_api`, `harbor`). Shared by the integration tests and the examples.
#![allow(dead_code)]

pub mod digitalocean;
pub mod fake;
pub mod ghcr;
pub mod github;
pub mod gitlab_api;
pub mod harbor;
pub mod http1;
pub mod proxy;
pub mod push;
pub mod registry;
pub mod retention;
pub mod runner;
pub mod s3;
pub mod scenario;
pub mod token;

#[allow(unused_imports)]
pub use push::*;
#[allow(unused_imports)]
pub use registry::*;
#[allow(unused_imports)]
pub use runner::*;
