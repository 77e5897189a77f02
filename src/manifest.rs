//! manifest: parses manifest and image-config documents into what the planner needs, and
//! turns a parsed document into the model's `Manifest` (wherever the bytes came from:
//! storage or the registry API).
//!
//! Pure functions over bytes; no I/O. Parsing is deliberately lenient about fields the tool
//! does not use and strict about the ones it does (digests), because a manifest that cannot be
//! understood must make its repository fail closed rather than be guessed at.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::{BlobReference, ChildReference, Digest, Manifest, ManifestKind, Platform};

/// Media type of a Docker schema2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Media type of a Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The `Accept` header for every manifest request: all four types, so that a registry never
/// answers a manifest list request with one platform's child (see registry-facts.md).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Why a manifest document could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("manifest is not valid JSON: {0}")]
    NotJson(String),
    /// Schema version 1 (signed manifests) cannot be reasoned about safely.
    #[error("manifest schema version {0} is not supported (only schema 2 and OCI)")]
    UnsupportedSchema(u64),
    /// A media type the tool does not know, without enough structure to be safe.
    #[error("manifest media type `{0}` is not supported")]
    UnknownMediaType(String),
    /// A referenced digest is malformed.
    #[error("manifest references an invalid digest: {0}")]
    InvalidDigest(String),
}

/// What a manifest document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedManifest {
    /// The media type (from the document, else from the registry's answer).
    pub media_type: String,
    /// Image, index or artifact.
    pub kind: ManifestKind,
    /// The config blob of an image or artifact.
    pub config: Option<BlobReference>,
    /// The config's media type.
    pub config_media_type: Option<String>,
    /// Layers (or artifact blobs) stored in the registry (foreign layers with `urls` left out).
    pub layers: Vec<BlobReference>,
    /// Index entries.
    pub children: Vec<ChildReference>,
    /// OCI 1.1 `subject`.
    pub subject: Option<Digest>,
    /// `artifactType`, or the config media type of an artifact.
    pub artifact_type: Option<String>,
    /// `org.opencontainers.image.created` annotation, when present.
    pub created_annotation: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    platform: Option<RawPlatform>,
    /// Foreign layers (Windows base layers) live at these URLs, not in the registry.
    #[serde(default)]
    urls: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    schema_version: Option<u64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    blobs: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    subject: Option<RawDescriptor>,
    #[serde(default)]
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

fn digest_of(descriptor: &RawDescriptor) -> Result<Digest, ManifestError> {
    descriptor
        .digest
        .parse()
        .map_err(|_| ManifestError::InvalidDigest(descriptor.digest.clone()))
}

fn blob_of(descriptor: &RawDescriptor) -> Result<BlobReference, ManifestError> {
    Ok(BlobReference {
        digest: digest_of(descriptor)?,
        size: descriptor.size.unwrap_or(0),
    })
}

fn platform_of(raw: &RawPlatform) -> Option<Platform> {
    if raw.os.is_empty() && raw.architecture.is_empty() {
        return None;
    }
    Some(Platform {
        os: raw.os.clone(),
        architecture: raw.architecture.clone(),
        variant: raw.variant.clone().filter(|v| !v.is_empty()),
    })
}

/// Whether a config media type describes a runnable image.
fn is_image_config(media_type: &str) -> bool {
    media_type == DOCKER_CONFIG || media_type == OCI_CONFIG
}

/// Parses a manifest document. `fallback_media_type` is what the registry said (a
/// `Content-Type` header) for documents that omit `mediaType`.
pub fn parse_manifest(
    bytes: &[u8],
    fallback_media_type: Option<&str>,
) -> Result<ParsedManifest, ManifestError> {
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson(e.to_string()))?;
    match raw.schema_version {
        Some(2) => {}
        Some(other) => return Err(ManifestError::UnsupportedSchema(other)),
        None => return Err(ManifestError::NotJson("missing `schemaVersion`".into())),
    }
    let media_type = raw
        .media_type
        .clone()
        .or_else(|| fallback_media_type.map(str::to_string))
        .unwrap_or_default();

    // An index is recognised by its media type or, for OCI documents that omit it, by having
    // `manifests` and no `config`.
    let looks_like_index = media_type == DOCKER_MANIFEST_LIST
        || media_type == OCI_INDEX
        || (media_type.is_empty() && raw.manifests.is_some() && raw.config.is_none());
    let looks_like_manifest = media_type == DOCKER_MANIFEST
        || media_type == OCI_MANIFEST
        || (media_type.is_empty() && raw.config.is_some());

    let subject = raw.subject.as_ref().map(digest_of).transpose()?;
    let created_annotation = raw
        .annotations
        .as_ref()
        .and_then(|a| a.get("org.opencontainers.image.created"))
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|d| d.with_timezone(&Utc));

    if looks_like_index {
        let children = raw
            .manifests
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|d| {
                Ok(ChildReference {
                    digest: digest_of(d)?,
                    platform: d.platform.as_ref().and_then(platform_of),
                })
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        let media_type = if media_type.is_empty() {
            OCI_INDEX.to_string()
        } else {
            media_type
        };
        return Ok(ParsedManifest {
            media_type,
            kind: ManifestKind::Index,
            config: None,
            config_media_type: None,
            layers: Vec::new(),
            children,
            subject,
            artifact_type: raw.artifact_type.clone(),
            created_annotation,
        });
    }

    if looks_like_manifest {
        let config = raw.config.as_ref().map(blob_of).transpose()?;
        let config_media_type = raw.config.as_ref().and_then(|c| c.media_type.clone());
        let mut layers = Vec::new();
        for descriptor in raw.layers.iter().chain(raw.blobs.iter()).flatten() {
            let blob = blob_of(descriptor)?;
            if descriptor
                .urls
                .as_ref()
                .is_some_and(|urls| !urls.is_empty())
            {
                continue; // not stored in the registry: nothing to verify or reclaim
            }
            layers.push(blob);
        }
        let is_artifact = raw.artifact_type.is_some()
            || config_media_type
                .as_deref()
                .is_some_and(|t| !is_image_config(t));
        let artifact_type = if is_artifact {
            raw.artifact_type.clone().or(config_media_type.clone())
        } else {
            None
        };
        let media_type = if media_type.is_empty() {
            OCI_MANIFEST.to_string()
        } else {
            media_type
        };
        return Ok(ParsedManifest {
            media_type,
            kind: if is_artifact {
                ManifestKind::Artifact
            } else {
                ManifestKind::Image
            },
            config,
            config_media_type,
            layers,
            children: Vec::new(),
            subject,
            artifact_type,
            created_annotation,
        });
    }

    Err(ManifestError::UnknownMediaType(media_type))
}

/// What an image config says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedConfig {
    /// `created`, unless absent, unparsable, or before 2013-03-20 (reproducible builds write
    /// the epoch or 1980, which say nothing about age: `model::plausible_date`).
    pub created: Option<DateTime<Utc>>,
    /// OS/architecture/variant, shared by the images of this config.
    pub platform: Option<std::sync::Arc<Platform>>,
    /// Why `created` could not be used, when it is absent or unreadable (the epoch, which
    /// reproducible builds write on purpose, is not worth a note).
    pub created_note: Option<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    variant: Option<String>,
}

/// Parses an image config blob.
pub fn parse_config(bytes: &[u8]) -> Result<ParsedConfig, ManifestError> {
    let raw: RawConfig =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson(e.to_string()))?;
    let parsed_created = raw
        .created
        .as_deref()
        .map(|text| (text, DateTime::parse_from_rfc3339(text).ok()));
    let created_note = match parsed_created {
        None => Some("its config has no `created`".to_string()),
        Some((text, None)) => Some(format!("its config's `created` (`{text}`) is not a date")),
        Some((_, Some(_))) => None,
    };
    let created = crate::model::plausible_date(
        parsed_created
            .and_then(|(_, date)| date)
            .map(|d| d.with_timezone(&Utc)),
    );
    let platform = match (raw.os, raw.architecture) {
        (Some(os), Some(architecture)) if !os.is_empty() || !architecture.is_empty() => {
            Some(std::sync::Arc::new(Platform {
                os,
                architecture,
                variant: raw.variant.filter(|v| !v.is_empty()),
            }))
        }
        _ => None,
    };
    Ok(ParsedConfig {
        created,
        platform,
        created_note,
    })
}

/// `media_type`, borrowed from the constants when it is one of the manifest types: a million
/// manifests then hold no copy of it.
pub fn shared_media_type(media_type: String) -> std::borrow::Cow<'static, str> {
    [
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        OCI_INDEX,
    ]
    .into_iter()
    .find(|known| *known == media_type)
    .map_or(
        std::borrow::Cow::Owned(media_type),
        std::borrow::Cow::Borrowed,
    )
}

/// Checks a manifest document against its digest and parses it.
pub fn parse_document(digest: &Digest, bytes: &[u8]) -> Result<ParsedManifest, String> {
    if !digest.matches(bytes) {
        return Err(format!(
            "manifest `{digest}`: content does not match its digest (storage corrupt?)"
        ));
    }
    parse_manifest(bytes, None).map_err(|e| format!("manifest `{digest}`: {e}"))
}

/// A manifest with an optional note, or the problem that kept it from being read.
pub type ManifestRead = Result<(Manifest, Option<String>), String>;

/// A manifest from its document (checked against `digest`), and the digest of the image
/// config still to be read for its `created` date and platform (`None` unless an image).
pub fn manifest_from_document(
    digest: &Digest,
    bytes: &[u8],
) -> Result<(Manifest, Option<Digest>), String> {
    let parsed = parse_document(digest, bytes)?;
    let mut manifest = Manifest::new(digest.clone(), parsed.kind);
    manifest.media_type = shared_media_type(parsed.media_type);
    manifest.size = bytes.len() as u64;
    manifest.children = parsed.children;
    manifest.subject = parsed.subject;
    manifest.artifact_type = parsed.artifact_type;
    manifest.created = crate::model::plausible_date(parsed.created_annotation);
    let config = parsed.config.as_ref().map(|c| c.digest.clone());
    manifest.blobs = parsed.config.into_iter().chain(parsed.layers).collect();
    // Only an image's config says when it was built and for which platform.
    let config = config.filter(|_| parsed.kind == ManifestKind::Image);
    Ok((manifest, config))
}

/// Completes an image manifest with its config's `created` and platform; a note when the
/// date had to be guessed.
pub fn with_config(
    manifest: Manifest,
    config: &Digest,
    read: Result<Vec<u8>, String>,
) -> ManifestRead {
    let parsed = read.and_then(|bytes| parse_config(&bytes).map_err(|e| e.to_string()));
    with_parsed_config(manifest, config, &parsed)
}

/// [`with_config`] for a config read and parsed once (configs are shared by many images).
pub fn with_parsed_config(
    mut manifest: Manifest,
    config: &Digest,
    parsed: &Result<ParsedConfig, String>,
) -> ManifestRead {
    let digest = manifest.digest.clone();
    let parsed = parsed
        .as_ref()
        .map_err(|e| format!("config `{config}` of manifest `{digest}`: {e}"))?;
    manifest.created = parsed.created.or(manifest.created);
    manifest.platform = parsed.platform.clone();
    let note = match (&manifest.created, &parsed.created_note) {
        (None, Some(note)) => Some(format!(
            "manifest `{digest}`: {note}; ranked by the time it was pushed"
        )),
        _ => None,
    };
    Ok((manifest, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn docker_image_manifest() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":10}},
            "layers":[{{"mediaType":"x","digest":"{}","size":20}}]}}"#,
            d('a'),
            d('b')
        );
        let parsed = parse_manifest(doc.as_bytes(), None).unwrap();
        assert_eq!(parsed.kind, ManifestKind::Image);
        assert_eq!(parsed.config.unwrap().size, 10);
        assert_eq!(parsed.layers.len(), 1);
        assert_eq!(parsed.subject, None);
    }

    #[test]
    fn oci_index_with_platforms_and_no_media_type() {
        let doc = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,
                "platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{OCI_INDEX}","digest":"{}","size":1}}]}}"#,
            d('a'),
            d('b')
        );
        let parsed = parse_manifest(doc.as_bytes(), None).unwrap();
        assert_eq!(parsed.kind, ManifestKind::Index);
        assert_eq!(parsed.media_type, OCI_INDEX);
        assert_eq!(
            parsed.children[0].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(parsed.children[1].platform, None);
    }

    #[test]
    fn artifact_by_artifact_type_or_config() {
        let with_type = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.dev.sigstore.bundle",
            "config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},
            "layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5}}}}"#,
            d('a'),
            d('c')
        );
        let parsed = parse_manifest(with_type.as_bytes(), None).unwrap();
        assert_eq!(parsed.kind, ManifestKind::Artifact);
        assert_eq!(parsed.subject, Some(d('c').parse().unwrap()));
        assert_eq!(
            parsed.artifact_type.as_deref(),
            Some("application/vnd.dev.sigstore.bundle")
        );

        let by_config = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{}","size":2}},
            "layers":[]}}"#,
            d('a')
        );
        let parsed = parse_manifest(by_config.as_bytes(), None).unwrap();
        assert_eq!(parsed.kind, ManifestKind::Artifact);
        assert_eq!(
            parsed.artifact_type.as_deref(),
            Some("application/vnd.cncf.helm.config.v1+json")
        );
    }

    #[test]
    fn rejects_what_it_cannot_reason_about() {
        assert!(matches!(
            parse_manifest(b"not json", None),
            Err(ManifestError::NotJson(_))
        ));
        assert_eq!(
            parse_manifest(br#"{"schemaVersion":1,"fsLayers":[]}"#, None),
            Err(ManifestError::UnsupportedSchema(1))
        );
        let bad_child = r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:zz","size":1}]}"#;
        assert!(matches!(
            parse_manifest(bad_child.as_bytes(), None),
            Err(ManifestError::InvalidDigest(_))
        ));
        assert!(matches!(
            parse_manifest(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None),
            Err(ManifestError::UnknownMediaType(_))
        ));
    }

    #[test]
    fn config_created_before_2013_is_no_date() {
        for text in [
            "1980-01-01T00:00:01Z",
            "0001-01-01T00:00:00Z",
            "2013-03-19T23:59:59Z",
        ] {
            let config = format!(r#"{{"created":"{text}","os":"linux","architecture":"amd64"}}"#);
            assert_eq!(
                parse_config(config.as_bytes()).unwrap().created,
                None,
                "{text}"
            );
        }
        let config = br#"{"created":"2013-03-20T00:00:00Z","os":"linux","architecture":"amd64"}"#;
        assert!(parse_config(config).unwrap().created.is_some());
    }

    #[test]
    fn config_created_and_epoch() {
        let parsed = parse_config(
            br#"{"created":"2026-02-17T10:23:39.123Z","os":"linux","architecture":"arm","variant":"v7"}"#,
        )
        .unwrap();
        assert_eq!(
            parsed.created.unwrap().to_rfc3339(),
            "2026-02-17T10:23:39.123+00:00"
        );
        assert_eq!(parsed.platform.unwrap().to_string(), "linux/arm/v7");
        let epoch = parse_config(
            br#"{"created":"1970-01-01T00:00:00Z","os":"linux","architecture":"amd64"}"#,
        )
        .unwrap();
        assert_eq!(epoch.created, None);
        assert_eq!(
            epoch.created_note, None,
            "the epoch is deliberate, not worth a note"
        );
        let missing = parse_config(b"{}").unwrap();
        assert_eq!(missing.created, None);
        assert_eq!(
            missing.created_note.as_deref(),
            Some("its config has no `created`")
        );
        let garbage = parse_config(br#"{"created":"yesterday"}"#).unwrap();
        assert!(garbage.created_note.unwrap().contains("`yesterday`"));
    }
}
