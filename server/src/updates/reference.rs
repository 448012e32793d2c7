//! Image references as Docker reads them: `[registry/]repository[:tag][@digest]`.
//!
//! The registry is the first path component when it looks like a host (has
//! a `.` or a `:`, or is `localhost`); otherwise the image is on Docker Hub,
//! whose API host is `registry-1.docker.io` and whose one-component names
//! live under `library/` (`redis` is `docker.io/library/redis`). A reference
//! without a tag or digest means the tag `latest`.

/// Docker Hub's names for itself in references.
const HUB_NAMES: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];
/// Where Docker Hub's Distribution API answers.
pub const HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host (and port) as written, `docker.io` for Docker Hub.
    pub registry: String,
    /// Repository path inside the registry (`library/redis` on the Hub).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference; `None` for text that is not one.
    pub fn parse(s: &str) -> Option<ImageRef> {
        let s = s.trim();
        if s.is_empty() || s.contains(char::is_whitespace) {
            return None;
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) if d.contains(':') => (r, Some(d.to_owned())),
            Some(_) => return None,
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_owned())),
            None => (rest, None),
        };
        if name.is_empty() || tag.as_deref() == Some("") {
            return None;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_ascii_lowercase(), path.to_owned())
            }
            _ => ("docker.io".to_owned(), name.to_owned()),
        };
        let hub = HUB_NAMES.contains(&registry.as_str());
        let registry = if hub {
            "docker.io".to_owned()
        } else {
            registry
        };
        let repository = if hub && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() || repository.split('/').any(str::is_empty) {
            return None;
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        };
        Some(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Whether the image is on Docker Hub.
    pub fn is_hub(&self) -> bool {
        self.registry == "docker.io"
    }

    /// The host the Distribution API answers on.
    pub fn api_host(&self) -> &str {
        if self.is_hub() {
            HUB_API
        } else {
            &self.registry
        }
    }

    /// `registry/repository`, the key `RepoDigests` entries are compared by.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `registry/repository:tag` (the tag the registry is asked about).
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// The digest in a `RepoDigests` entry (`<repository>@sha256:…`) when
    /// that entry names this repository.
    pub fn digest_in(&self, repo_digest: &str) -> Option<String> {
        let other = ImageRef::parse(repo_digest)?;
        (other.registry == self.registry && other.repository == self.repository)
            .then_some(other.digest)
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = ImageRef::parse(s).unwrap_or_else(|| panic!("{s} not parsed"));
        (r.registry, r.repository, r.tag, r.digest)
    }

    #[test]
    fn references_are_read_like_docker_reads_them() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            p("redis"),
            (
                "docker.io".into(),
                "library/redis".into(),
                some("latest"),
                None
            )
        );
        assert_eq!(
            p("redis:7.2.4"),
            (
                "docker.io".into(),
                "library/redis".into(),
                some("7.2.4"),
                None
            )
        );
        assert_eq!(
            p("docker.io/grafana/grafana:10.1"),
            (
                "docker.io".into(),
                "grafana/grafana".into(),
                some("10.1"),
                None
            )
        );
        assert_eq!(
            p("127.0.0.1:5000/app:v1"),
            ("127.0.0.1:5000".into(), "app".into(), some("v1"), None)
        );
        assert_eq!(
            p("localhost/team/app"),
            ("localhost".into(), "team/app".into(), some("latest"), None)
        );
        assert_eq!(
            p("ghcr.io/o/r@sha256:abc"),
            ("ghcr.io".into(), "o/r".into(), None, some("sha256:abc"))
        );
        assert_eq!(
            ImageRef::parse("redis:7").unwrap().api_host(),
            "registry-1.docker.io"
        );
        for bad in ["", "a b", "app:", "app@nodigest", "/app", "r.io//app"] {
            assert!(ImageRef::parse(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn repo_digests_match_their_repository_only() {
        let r = ImageRef::parse("redis:7.2").unwrap();
        assert_eq!(r.digest_in("redis@sha256:aa").as_deref(), Some("sha256:aa"));
        assert_eq!(
            r.digest_in("docker.io/library/redis@sha256:bb").as_deref(),
            Some("sha256:bb")
        );
        assert_eq!(r.digest_in("127.0.0.1:5000/redis@sha256:cc"), None);
        let l = ImageRef::parse("127.0.0.1:5000/app:v1").unwrap();
        assert_eq!(
            l.digest_in("127.0.0.1:5000/app@sha256:dd").as_deref(),
            Some("sha256:dd")
        );
    }
}
