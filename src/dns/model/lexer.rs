//! The zone-file tokenizer (RFC 1035 5.1): logical lines, quotes, parentheses, escapes.

use std::borrow::Cow;

/// A `\X` or `\DDD` escape that does not stand for a byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    #[error("a lone \\ at the end")]
    LoneBackslash,
    #[error("\\DDD needs three decimal digits")]
    NotThreeDigits,
    #[error("\\{0:03} is not a byte value (0-255)")]
    NotAByte(u32),
}

/// Why text could not be split into tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    #[error(transparent)]
    Escape(#[from] EscapeError),
    #[error("\")\" without \"(\"")]
    CloseWithoutOpen,
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("\"(\" is never closed")]
    NeverClosed,
}

/// One field of presentation text.
#[derive(Clone, Debug)]
pub(super) struct Token<'a> {
    /// The text as written, quotes and escapes included.
    pub(super) raw: &'a str,
    /// The bytes it stands for (quotes removed, escapes decoded): the text itself unless
    /// quoted or escaped, so most tokens allocate nothing.
    pub(super) bytes: Cow<'a, [u8]>,
    /// Whether any part was quoted.
    pub(super) quoted: bool,
}

/// A logical zone-file line: parentheses joined, comments removed.
#[derive(Debug)]
pub(super) struct LogicalLine<'a> {
    /// 1-based number of the physical line it starts on.
    pub(super) number: usize,
    /// Whether it starts with blank space (the owner is the previous one).
    pub(super) leading_blank: bool,
    pub(super) tokens: Vec<Token<'a>>,
}

/// Splits presentation text into logical lines of tokens (RFC 1035 5.1). With
/// `single_record`, newlines are plain blank space.
pub(super) fn tokenize(
    text: &str,
    single_record: bool,
) -> Result<Vec<LogicalLine<'_>>, (usize, LexError)> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut line_no = 1usize;
    let mut current = LogicalLine {
        number: 1,
        leading_blank: matches!(bytes.first(), Some(b' ' | b'\t')),
        tokens: Vec::new(),
    };
    let mut depth = 0usize;
    let mut paren_line = 0usize;
    let mut i = 0usize;
    // The token being read: start offset, decoded bytes, quoted flag. The decoded bytes are
    // only gathered from the first quote or escape on: before that they are the text itself,
    // which most tokens then borrow.
    let mut tok: Option<(usize, Option<Vec<u8>>, bool)> = None;
    let mut in_quote = false;

    fn finish<'a>(
        tok: &mut Option<(usize, Option<Vec<u8>>, bool)>,
        end: usize,
        text: &'a str,
        out: &mut Vec<Token<'a>>,
    ) {
        if let Some((start, decoded, quoted)) = tok.take() {
            let raw = text.get(start..end).unwrap_or_default();
            out.push(Token {
                raw,
                bytes: decoded.map_or(Cow::Borrowed(raw.as_bytes()), Cow::Owned),
                quoted,
            });
        }
    }

    /// The decoded bytes of the token being read, gathered from here on.
    fn decoded<'t>(
        tok: &'t mut Option<(usize, Option<Vec<u8>>, bool)>,
        at: usize,
        bytes: &[u8],
    ) -> &'t mut Vec<u8> {
        let (start, decoded, _) = tok.get_or_insert_with(|| (at, None, false));
        decoded.get_or_insert_with(|| bytes.get(*start..at).unwrap_or_default().to_vec())
    }

    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            let (value, used) = decode_escape(&bytes[i..]).map_err(|e| (line_no, e.into()))?;
            decoded(&mut tok, i, bytes).push(value);
            i += used;
            continue;
        }
        if in_quote {
            if b == b'"' {
                in_quote = false;
            } else {
                if b == b'\n' {
                    line_no += 1;
                }
                if let Some((_, Some(d), _)) = tok.as_mut() {
                    d.push(b);
                }
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_quote = true;
                decoded(&mut tok, i, bytes);
                if let Some(t) = tok.as_mut() {
                    t.2 = true;
                }
            }
            b' ' | b'\t' | b'\r' => finish(&mut tok, i, text, &mut current.tokens),
            b'\n' => {
                finish(&mut tok, i, text, &mut current.tokens);
                line_no += 1;
                if depth == 0 && !single_record {
                    let next = LogicalLine {
                        number: line_no,
                        leading_blank: matches!(bytes.get(i + 1), Some(b' ' | b'\t')),
                        tokens: Vec::new(),
                    };
                    let done = std::mem::replace(&mut current, next);
                    if !done.tokens.is_empty() {
                        lines.push(done);
                    }
                }
            }
            b';' => {
                finish(&mut tok, i, text, &mut current.tokens);
                while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                finish(&mut tok, i, text, &mut current.tokens);
                if depth == 0 {
                    paren_line = line_no;
                }
                depth += 1;
            }
            b')' => {
                finish(&mut tok, i, text, &mut current.tokens);
                depth = depth
                    .checked_sub(1)
                    .ok_or((line_no, LexError::CloseWithoutOpen))?;
            }
            _ => match tok.as_mut() {
                Some((_, Some(d), _)) => d.push(b),
                Some((_, None, _)) => {}
                None => tok = Some((i, None, false)),
            },
        }
        i += 1;
    }
    if in_quote {
        return Err((line_no, LexError::UnterminatedQuote));
    }
    if depth > 0 {
        return Err((paren_line, LexError::NeverClosed));
    }
    finish(&mut tok, bytes.len(), text, &mut current.tokens);
    if !current.tokens.is_empty() {
        lines.push(current);
    }
    Ok(lines)
}

/// Decodes `\X` or `\DDD` at the start of `s`; returns the byte and how many bytes were used.
pub(super) fn decode_escape(s: &[u8]) -> Result<(u8, usize), EscapeError> {
    match s.get(1) {
        None => Err(EscapeError::LoneBackslash),
        Some(d) if d.is_ascii_digit() => {
            let digits = s.get(1..4).filter(|d| d.iter().all(u8::is_ascii_digit));
            let digits = digits.ok_or(EscapeError::NotThreeDigits)?;
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
            let value = u8::try_from(value).map_err(|_| EscapeError::NotAByte(value))?;
            Ok((value, 4))
        }
        Some(&c) => Ok((c, 2)),
    }
}
