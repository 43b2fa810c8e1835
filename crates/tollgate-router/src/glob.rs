//! Model-name patterns: `*` matches any run of characters, `/` included.

/// A compiled model-name pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    /// The literal pieces between stars.
    pieces: Vec<String>,
}

impl Pattern {
    /// Compiles a pattern.
    pub fn new(source: &str) -> Self {
        Self { source: source.to_owned(), pieces: source.split('*').map(str::to_owned).collect() }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// How specific the pattern is: its number of literal characters. `anthropic/*` beats `*`.
    pub fn specificity(&self) -> usize {
        self.pieces.iter().map(String::len).sum()
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        self.captures(name).is_some()
    }

    /// The text each `*` matched, if `name` matches. Stars match as little as possible from
    /// the left, so the last star takes the rest.
    pub fn captures(&self, name: &str) -> Option<Vec<String>> {
        let (first, rest) = self.pieces.split_first()?;
        let mut remaining = name.strip_prefix(first.as_str())?;
        if rest.is_empty() {
            return remaining.is_empty().then(Vec::new);
        }
        let mut captures = Vec::with_capacity(rest.len());
        for (i, piece) in rest.iter().enumerate() {
            let is_last = i + 1 == rest.len();
            if is_last {
                let head = remaining.strip_suffix(piece.as_str())?;
                captures.push(head.to_owned());
                return Some(captures);
            }
            let at = remaining.find(piece.as_str())?;
            captures.push(remaining[..at].to_owned());
            remaining = &remaining[at + piece.len()..];
        }
        Some(captures)
    }
}
