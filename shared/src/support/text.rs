//! Text helpers that never split a character.

/// The first `max` characters of `text` (not bytes: never splits a character).
pub fn truncate_chars(text: &str, max: usize) -> &str {
    text.char_indices()
        .nth(max)
        .map_or(text, |(end, _)| &text[..end])
}

/// Lower case, accents removed, anything but letters and digits turned into single spaces:
/// "Reclamação!" and "reclamacao" compare equal.
pub fn normalize(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = text
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}
