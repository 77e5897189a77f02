//! secret: a secret string for configuration types, which are compared in tests: equal by
//! content, never printed (`Debug` shows `***`).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A secret that compares equal by content (settings are compared in tests) and never prints.
#[derive(Clone)]
pub struct SecretStringEq(pub SecretString);

impl PartialEq for SecretStringEq {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }
}

impl Eq for SecretStringEq {}

impl fmt::Debug for SecretStringEq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
