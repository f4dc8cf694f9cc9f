//! Near-miss hints ("did you mean `console`?") and "expected one of: ..." lists.

/// The candidate closest to `word`, if it is close enough to be a likely typo: at most one
/// edit for short words, about one edit in three for longer ones. Case differences count
/// as no edit when nothing else differs (`Console` -> `console`).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = if candidate.eq_ignore_ascii_case(word) {
                0
            } else {
                edit_distance(word, candidate)
            };
            (distance, candidate)
        })
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// "; did you mean `x`?" or "; expected one of: `a`, `b`" (nothing for an empty list).
pub fn suffix(word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates.iter().copied()) {
        Some(near) => format!("; did you mean `{near}`?"),
        None if candidates.is_empty() => String::new(),
        None => format!("; expected one of: {}", list(candidates)),
    }
}

/// "`a`, `b`, `c`".
pub fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Edit distance over chars: insertions, deletions, substitutions and transpositions of
/// two neighbours (`lgo` -> `log`) each count one (optimal string alignment).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
pub fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("console", "console"), 0);
        assert_eq!(edit_distance("consle", "console"), 1);
        assert_eq!(edit_distance("heap", "hepa"), 1);
        assert_eq!(edit_distance("lgo", "log"), 1);
        assert_eq!(edit_distance("", "args"), 4);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn near_misses() {
        let names = ["console", "heap", "args"];
        assert_eq!(closest("consle", names), Some("console"));
        assert_eq!(closest("Console", names), Some("console"));
        assert_eq!(closest("heaps", names), Some("heap"));
        assert_eq!(closest("arg", names), Some("args"));
        assert_eq!(closest("gpu", names), None);
        assert_eq!(closest("network", names), None);
    }

    #[test]
    fn suffixes() {
        assert_eq!(suffix("consle", &["console"]), "; did you mean `console`?");
        assert_eq!(
            suffix("gpu", &["console", "heap"]),
            "; expected one of: `console`, `heap`"
        );
        assert_eq!(suffix("gpu", &[]), "");
    }
}
