//! "A newer tag exists": which of a repository's tags a service pinned to a
//! semver-like tag may move to, under its `moves` policy.
//!
//! Rules (the issue left them open; these are the decisions):
//! - A tag is `[v]MAJOR[.MINOR[.PATCH]][-VARIANT]`, read leniently (a `v`
//!   prefix; one or two parts are completed with zeros for comparison by
//!   the `semver` crate). Anything else (`latest`, `stable`, a date) has no
//!   newer tags.
//! - Everything after the first `-` is a *variant* (`alpine`,
//!   `bookworm`, but also `rc1`): a tag only moves among tags of the same
//!   variant, so `7.2-alpine` never becomes `7.4` or `7.4-bookworm`, and
//!   a release is never offered a pre-release.
//! - A tag only moves among tags of the same *precision* (number of
//!   parts): `7.2` already follows every `7.2.x` by itself, so it is
//!   offered `7.3`, not `7.2.5`; `7.2.4` is offered `7.2.5`, not `7.3`.
//! - `patch`: same major and minor; `minor`: same major; `any`: any newer;
//!   `none`: nothing. Newest first, at most [`MAX_NEWER`].

use opsdeck_wire::SemverMoves;
use semver::Version;

/// At most this many newer tags are kept per service.
pub const MAX_NEWER: usize = 20;

/// A tag read as a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagVersion {
    pub version: Version,
    /// Number of numeric parts written (1–3).
    pub precision: u8,
    /// What follows the first `-`, if anything.
    pub variant: Option<String>,
}

/// Reads `tag` as a version (see the module doc), or `None`.
pub fn parse(tag: &str) -> Option<TagVersion> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let (core, variant) = match t.split_once('-') {
        Some((c, v)) if !v.is_empty() => (c, Some(v.to_owned())),
        Some(_) => return None,
        None => (t, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 9)
    {
        return None;
    }
    let mut full: Vec<&str> = parts.clone();
    while full.len() < 3 {
        full.push("0");
    }
    // Leading zeros are not semver; compare the numbers.
    let nums: Vec<u64> = full.iter().filter_map(|p| p.parse().ok()).collect();
    let version = Version::parse(&format!("{}.{}.{}", nums[0], nums[1], nums[2])).ok()?;
    Some(TagVersion {
        version,
        precision: parts.len() as u8,
        variant,
    })
}

/// The tags of `all` that `current` may move to under `moves`, newest first.
pub fn newer_tags(current: &str, all: &[String], moves: SemverMoves) -> Vec<String> {
    let Some(cur) = parse(current) else {
        return Vec::new();
    };
    let allowed = |v: &Version| match moves {
        SemverMoves::None => false,
        SemverMoves::Patch => v.major == cur.version.major && v.minor == cur.version.minor,
        SemverMoves::Minor => v.major == cur.version.major,
        SemverMoves::Any => true,
    };
    let mut out: Vec<(Version, &String)> = all
        .iter()
        .filter_map(|t| parse(t).map(|v| (v, t)))
        .filter(|(v, _)| {
            v.precision == cur.precision
                && v.variant == cur.variant
                && v.version > cur.version
                && allowed(&v.version)
        })
        .map(|(v, t)| (v.version, t))
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    // `v1.2.4` and `1.2.4` are one version: keep the first spelling.
    out.dedup_by(|a, b| a.0 == b.0);
    out.into_iter()
        .take(MAX_NEWER)
        .map(|(_, t)| t.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tags_are_read_leniently() {
        assert_eq!(parse("7.2.4").unwrap().version, Version::new(7, 2, 4));
        assert_eq!(parse("v1.2").unwrap().version, Version::new(1, 2, 0));
        assert_eq!(parse("v1.2").unwrap().precision, 2);
        assert_eq!(parse("7").unwrap().precision, 1);
        assert_eq!(
            parse("7.2-alpine").unwrap().variant.as_deref(),
            Some("alpine")
        );
        for bad in [
            "latest",
            "",
            "1.2.3.4",
            "1..2",
            "1.2-",
            "stable-1.2",
            "v",
            "1.x",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} read as a version");
        }
    }

    #[test]
    fn redis_pinned_to_a_patch_release() {
        let all = tags(&[
            "7.2.3",
            "7.2.4",
            "7.2.5",
            "7.4.0",
            "8.0.1",
            "7.2",
            "7.4",
            "latest",
            "7.2.5-alpine",
            "7.4.0-rc1",
        ]);
        assert_eq!(newer_tags("7.2.4", &all, SemverMoves::Patch), ["7.2.5"]);
        assert_eq!(
            newer_tags("7.2.4", &all, SemverMoves::Minor),
            ["7.4.0", "7.2.5"]
        );
        assert_eq!(
            newer_tags("7.2.4", &all, SemverMoves::Any),
            ["8.0.1", "7.4.0", "7.2.5"]
        );
        assert!(newer_tags("7.2.4", &all, SemverMoves::None).is_empty());
        assert!(newer_tags("latest", &all, SemverMoves::Any).is_empty());
    }

    #[test]
    fn variants_and_precision_stay_apart() {
        let all = tags(&[
            "7.2-alpine",
            "7.4-alpine",
            "7.4",
            "7.4-bookworm",
            "7.2.5-alpine",
            "8.0-alpine",
        ]);
        assert_eq!(
            newer_tags("7.2-alpine", &all, SemverMoves::Minor),
            ["7.4-alpine"]
        );
        assert_eq!(
            newer_tags("7.2-alpine", &all, SemverMoves::Any),
            ["8.0-alpine", "7.4-alpine"]
        );
        // A two-part tag already follows its patches.
        assert!(newer_tags("7.2-alpine", &all, SemverMoves::Patch).is_empty());
        assert_eq!(
            newer_tags("v1.2.3", &tags(&["v1.2.4", "1.2.4"]), SemverMoves::Patch).len(),
            1
        );
    }
}
