//! Job ids each CI system accepts, derived from node ids: deterministic (the same node gets the
//! same id whatever else is selected, except in the astronomically unlikely case of a hash
//! collision, which is then resolved by a suffix) and collision-free.
//!
//! A name part (environment or deployment folder) that is already "clean" for the system is kept
//! as it is, and the two parts are joined by a separator the clean parts cannot contain
//! (`__` for GitHub, `--` for Argo), so clean ids decode uniquely. A part that is not clean
//! (other characters, upper case for Argo, a doubled separator, too long) is sanitized and the id
//! gets a second separator and a hash of the node id, which a clean id never has.

use std::collections::HashSet;

/// The naming rules of one CI system.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules {
    /// Characters allowed in an id besides ASCII letters and digits.
    pub(crate) extra: &'static [char],
    /// Ids are lower case.
    pub(crate) lowercase: bool,
    /// Joins the environment and deployment parts; made of one repeated allowed character.
    pub(crate) sep: &'static str,
    pub(crate) max_len: usize,
    /// Prefix for ids whose first character is not a letter (`None`: digits may start an id).
    pub(crate) non_letter_prefix: Option<&'static str>,
}

/// GitHub Actions job ids: `^[_a-zA-Z][a-zA-Z0-9_-]*$`, at most 100 characters.
pub(crate) const GITHUB: Rules = Rules {
    extra: &['_', '-'],
    lowercase: false,
    sep: "__",
    max_len: 100,
    non_letter_prefix: Some("_"),
};

/// Argo task and template names: `^[a-zA-Z0-9][-a-zA-Z0-9]*$`; kept lower case and within a DNS
/// label (63) so they also work where Argo derives Kubernetes names from them.
pub(crate) const ARGO: Rules = Rules {
    extra: &['-'],
    lowercase: true,
    sep: "--",
    max_len: 63,
    non_letter_prefix: None,
};

impl Rules {
    fn sep_char(&self) -> char {
        self.sep.chars().next().expect("non-empty separator")
    }

    fn allowed(&self, c: char) -> bool {
        c.is_ascii_alphanumeric() && (!self.lowercase || !c.is_ascii_uppercase())
            || self.extra.contains(&c)
    }

    /// A part that can be used verbatim: allowed characters only, no separator inside, and not
    /// starting or ending with the separator's character (so the join point is unambiguous).
    fn is_clean(&self, part: &str) -> bool {
        let s = self.sep_char();
        !part.is_empty()
            && part.chars().all(|c| self.allowed(c))
            && !part.contains(self.sep)
            && !part.starts_with(s)
            && !part.ends_with(s)
    }

    /// Maps a part to allowed characters: others become the separator character, runs of it
    /// collapse to one, and it is trimmed from both ends.
    fn sanitize(&self, part: &str) -> String {
        let s = self.sep_char();
        let mut out = String::with_capacity(part.len());
        for c in part.chars() {
            let c = if self.lowercase {
                c.to_ascii_lowercase()
            } else {
                c
            };
            let c = if self.allowed(c) { c } else { s };
            if c == s && (out.is_empty() || out.ends_with(s)) {
                continue;
            }
            out.push(c);
        }
        while out.ends_with(s) {
            out.pop();
        }
        if out.is_empty() {
            out.push('x');
        }
        out
    }

    fn with_prefix(&self, id: String) -> String {
        match self.non_letter_prefix {
            Some(p) if !id.starts_with(|c: char| c.is_ascii_alphabetic()) => format!("{p}{id}"),
            _ => id,
        }
    }

    /// The id of one node (`env` or `env/deployment`).
    pub(crate) fn id(&self, node_id: &str) -> String {
        let parts: Vec<&str> = node_id.split('/').collect();
        if parts.iter().all(|p| self.is_clean(p)) {
            let id = self.with_prefix(parts.join(self.sep));
            if id.len() <= self.max_len {
                return id;
            }
        }
        let hash = short_hash(node_id);
        let base = self.with_prefix(
            parts
                .iter()
                .map(|p| self.sanitize(p))
                .collect::<Vec<_>>()
                .join(self.sep),
        );
        let room = self.max_len - self.sep.len() - hash.len();
        let mut base: String = base.chars().take(room).collect();
        while base.ends_with(self.sep_char()) {
            base.pop();
        }
        format!("{base}{}{hash}", self.sep)
    }
}

/// Makes a list of ids unique: the first of equal ids keeps it, later ones (in the order given)
/// get `<sep>2`, `<sep>3`, … avoiding every id in the list, so the result stays deterministic.
/// With ids from [`Rules::id`] this only ever happens on a hash collision.
pub(crate) fn unique(ids: Vec<String>, sep: &str) -> Vec<String> {
    let originals: HashSet<String> = ids.iter().cloned().collect();
    let mut seen: HashSet<String> = HashSet::with_capacity(ids.len());
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if seen.insert(id.clone()) {
            out.push(id);
            continue;
        }
        let mut n = 2;
        let candidate = loop {
            let c = format!("{id}{sep}{n}");
            if !originals.contains(&c) && !seen.contains(&c) {
                break c;
            }
            n += 1;
        };
        seen.insert(candidate.clone());
        out.push(candidate);
    }
    out
}

/// Ten hex digits of FNV-1a (64 bit): stable across versions and platforms, unlike `std`'s hasher.
pub(crate) fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", h >> 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github_ok(id: &str) -> bool {
        id.len() <= 100
            && id.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    fn argo_ok(id: &str) -> bool {
        id.len() <= 63
            && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }

    #[test]
    fn clean_names_are_kept_readable() {
        assert_eq!(
            GITHUB.id("backend-test/terraform"),
            "backend-test__terraform"
        );
        assert_eq!(GITHUB.id("backend_test/tf_2"), "backend_test__tf_2");
        assert_eq!(GITHUB.id("backend-test"), "backend-test");
        assert_eq!(GITHUB.id("1-net/terraform"), "_1-net__terraform");
        assert_eq!(ARGO.id("backend-test/terraform"), "backend-test--terraform");
        assert_eq!(ARGO.id("1net/helm"), "1net--helm");
    }

    #[test]
    fn unclean_names_get_a_hash() {
        let a = GITHUB.id("a.b/terraform");
        assert!(a.starts_with("a_b__terraform__"), "{a}");
        assert!(github_ok(&a));
        let b = ARGO.id("Backend/terraform");
        assert!(b.starts_with("backend--terraform--"), "{b}");
        assert!(argo_ok(&b));
        // Same input, same id.
        assert_eq!(GITHUB.id("a.b/terraform"), a);
    }

    #[test]
    fn ids_that_would_collide_do_not() {
        let nodes = [
            "a.b/tf", "a_b/tf", "a-b/tf", "a__b/tf", "a/__tf", "a_/_tf", "a/b__tf", "a__b/tf_",
            "A-b/tf", "a-b/TF", "a--b/tf", "a/-b", "a-/b", "x y/z", "x_y/z", "x-y/z",
        ];
        for rules in [GITHUB, ARGO] {
            let ids: Vec<String> = nodes.iter().map(|n| rules.id(n)).collect();
            let set: HashSet<&String> = ids.iter().collect();
            assert_eq!(set.len(), nodes.len(), "{ids:?}");
        }
        for n in nodes {
            assert!(github_ok(&GITHUB.id(n)), "{}", GITHUB.id(n));
            assert!(argo_ok(&ARGO.id(n)), "{}", ARGO.id(n));
        }
    }

    #[test]
    fn long_names_are_cut_with_a_hash() {
        let long = format!("{}/terraform", "e".repeat(300));
        let other = format!("{}/terraform2", "e".repeat(300));
        let (a, b) = (GITHUB.id(&long), GITHUB.id(&other));
        assert!(github_ok(&a) && github_ok(&b) && a != b, "{a} {b}");
        let (a, b) = (ARGO.id(&long), ARGO.id(&other));
        assert!(argo_ok(&a) && argo_ok(&b) && a != b, "{a} {b}");
    }

    #[test]
    fn unique_suffixes_duplicates_deterministically() {
        let out = unique(
            vec![
                "a".into(),
                "b".into(),
                "a".into(),
                "a--2".into(),
                "a".into(),
            ],
            "--",
        );
        let set: HashSet<&String> = out.iter().collect();
        assert_eq!(set.len(), out.len(), "{out:?}");
        assert_eq!(out, ["a", "b", "a--3", "a--2", "a--4"]);
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(
            short_hash("backend-test/terraform"),
            short_hash("backend-test/terraform")
        );
        assert_eq!(short_hash("").len(), 10);
        assert_ne!(short_hash("a"), short_hash("b"));
    }
}
