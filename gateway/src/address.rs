//! Mail address syntax, below the configuration, the directory, the keys and
//! the parser, which all check addresses the same way.

/// `local@domain` with nothing else: no display name, no spaces, no brackets.
pub fn is_plain_address(s: &str) -> bool {
    let mut halves = s.splitn(2, '@');
    let (Some(local), Some(domain)) = (halves.next(), halves.next()) else {
        return false;
    };
    let ok = |c: char| c.is_ascii_graphic() && !"<>()[]\\,;:\"@".contains(c);
    !local.is_empty()
        && !domain.is_empty()
        && s.len() <= 254
        && local.chars().all(ok)
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses() {
        assert!(is_plain_address("nfp@bmi.at.example"));
        assert!(is_plain_address("gateway+fr@nfp-network.example"));
        assert!(!is_plain_address("NFP <nfp@at.example>"));
        assert!(!is_plain_address("nfp@"));
        assert!(!is_plain_address("a@b@c"));
        assert!(!is_plain_address("a b@c.example"));
    }
}
