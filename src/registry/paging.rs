//! paging: follows a listing's pages, whatever says where the next one is (a `Link` header,
//! a `links.pages.next` field). Every loop is bounded, a page seen twice is an error, and
//! pages stay on the first page's origin: credentials go nowhere else.

use std::collections::HashSet;
use std::future::Future;

use reqwest::header::{self, HeaderMap};
use url::{Origin, Url};

use crate::registry::http::host_of;

/// The most pages one listing may take: a bound on every paging loop.
pub const MAX_PAGES: usize = 100_000;

/// One page: its items and where the next one is.
#[derive(Debug)]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// The next page, resolved against the request's URL.
    pub next: Option<Url>,
}

/// A listing whose pages cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    /// More than `MAX_PAGES` pages, or a page seen twice.
    #[error("its pages do not end (page {page}, `{path}`)")]
    Endless {
        /// The page number reached.
        page: usize,
        /// The path of the page that repeated.
        path: String,
    },
    /// A page after the first was not found: the listing changed under us.
    #[error("its page {page} vanished while it was being read")]
    Vanished {
        /// The page number.
        page: usize,
    },
    /// The next page is on another origin.
    #[error(
        "its next page is on another host `{host}`; regsweep follows pages on the API's own \
         origin only"
    )]
    ForeignOrigin {
        /// `host` or `host:port`.
        host: String,
    },
}

/// Follows pages from `first`. `fetch` reads one page (its number counts from 1); `None`
/// from the first page means the listing does not exist (a 404), and so does this; from a
/// later page it is an error (fail closed: never a listing cut short).
pub async fn collect<T, E, F, Fut>(first: Url, mut fetch: F) -> Result<Option<Vec<T>>, E>
where
    F: FnMut(Url, usize) -> Fut,
    Fut: Future<Output = Result<Option<Page<T>>, E>>,
    E: From<PagingError>,
{
    let origin: Origin = first.origin();
    let mut found = Vec::new();
    let mut visited = HashSet::new();
    let mut next = Some(first);
    let mut number = 0;
    while let Some(url) = next.take() {
        number += 1;
        if number > MAX_PAGES || !visited.insert(url.clone()) {
            return Err(PagingError::Endless {
                page: number,
                path: url.path().to_string(),
            }
            .into());
        }
        if url.origin() != origin {
            return Err(PagingError::ForeignOrigin {
                host: host_of(&url),
            }
            .into());
        }
        let Some(page) = fetch(url, number).await? else {
            if number == 1 {
                return Ok(None);
            }
            return Err(PagingError::Vanished { page: number }.into());
        };
        found.extend(page.items);
        next = page.next;
    }
    Ok(Some(found))
}

/// The `rel="next"` target of a `Link` header, resolved against the URL that was requested
/// (registries and Harbor send relative links: `</v2/_catalog?last=a&n=1000>; rel="next"`).
pub fn next_link(headers: &HeaderMap, request: &Url) -> Option<Url> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once('>')?;
            let target = target.trim().strip_prefix('<')?;
            let is_next = params.split(';').any(|param| {
                param.trim().split_once('=').is_some_and(|(key, value)| {
                    key.trim().eq_ignore_ascii_case("rel")
                        && value
                            .trim()
                            .trim_matches('"')
                            .split_ascii_whitespace()
                            .any(|rel| rel.eq_ignore_ascii_case("next"))
                })
            });
            is_next.then(|| request.join(target).ok()).flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::LINK, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn next_links_resolve_against_the_request() {
        let request: Url = "https://r.example/prefix/v2/_catalog?n=1000"
            .parse()
            .unwrap();
        let cases = [
            (
                vec![r#"</v2/_catalog?last=b&n=1000>; rel="next""#],
                Some("https://r.example/v2/_catalog?last=b&n=1000"),
            ),
            (
                vec![r#"<_catalog?last=b&n=1000>; rel=next"#],
                Some("https://r.example/prefix/v2/_catalog?last=b&n=1000"),
            ),
            // Resolved as written; `collect` then refuses another origin.
            (
                vec![r#"<https://other.example/v2/_catalog?last=c>; rel="next""#],
                Some("https://other.example/v2/_catalog?last=c"),
            ),
            (
                vec![r#"</v2/_catalog?last=a>; rel="prev", </v2/_catalog?last=z>; rel="next""#],
                Some("https://r.example/v2/_catalog?last=z"),
            ),
            // Harbor: `<…>; rel="prev" , <…>; rel="next"`.
            (
                vec![
                    r#"</api/v2.0/projects?page=1>; rel="prev" , </api/v2.0/projects?page=3>; rel="next""#,
                ],
                Some("https://r.example/api/v2.0/projects?page=3"),
            ),
            (
                vec![
                    r#"</v2/_catalog?last=a>; rel="prev""#,
                    r#"</v2/x?last=q>; REL="Next""#,
                ],
                Some("https://r.example/v2/x?last=q"),
            ),
            (vec![r#"</v2/_catalog?last=a>; rel="prev""#], None),
            (vec!["garbage"], None),
            (vec![], None),
        ];
        for (values, expected) in cases {
            assert_eq!(
                next_link(&headers(&values), &request).map(|u| u.to_string()),
                expected.map(str::to_string),
                "{values:?}"
            );
        }
    }

    fn page(items: &[u32], next: Option<&str>) -> Result<Option<Page<u32>>, PagingError> {
        Ok(Some(Page {
            items: items.to_vec(),
            next: next.map(|n| n.parse().unwrap()),
        }))
    }

    #[tokio::test]
    async fn pages_are_followed_bounded_and_kept_on_their_origin() {
        let first: Url = "https://api.example/items?page=1".parse().unwrap();
        let all = collect(first.clone(), |url, _| async move {
            match url.query() {
                Some("page=1") => page(&[1, 2], Some("https://api.example/items?page=2")),
                _ => page(&[3], None),
            }
        })
        .await;
        assert_eq!(all, Ok(Some(vec![1, 2, 3])));

        let looping = collect(first.clone(), |_, _| async {
            page(&[1], Some("https://api.example/items?page=1"))
        })
        .await;
        assert!(matches!(looping, Err(PagingError::Endless { page: 2, .. })));

        let foreign = collect(first.clone(), |_, _| async {
            page(&[1], Some("https://evil.example:8443/items?page=2"))
        })
        .await;
        assert_eq!(
            foreign,
            Err(PagingError::ForeignOrigin {
                host: "evil.example:8443".into()
            })
        );
        let absent = collect(first, |_, _| async {
            Ok::<Option<Page<u32>>, PagingError>(None)
        })
        .await;
        assert_eq!(absent, Ok(None));
    }
}
