//! Finds the top-level forms of an EDN history and the line each starts on, without building
//! them: `edn-format` gives no positions, and a whole-document parse of a broken file fails where
//! the input ended rather than where the broken op began.

use crate::formats::FormatError;

/// A top-level form: its text and the 1-based line where it starts.
pub(super) struct Form<'a> {
    pub text: &'a str,
    pub line: usize,
}

/// Splits the document into the forms inside its outer vector or list (or, without one, its
/// top-level forms).
pub(super) fn top_level_forms(text: &str) -> Result<Vec<Form<'_>>, FormatError> {
    let mut s = Scanner {
        text,
        pos: 0,
        line: 1,
        tags: 0,
    };
    let mut forms = Vec::new();
    s.skip_space()?;
    let open = match s.peek() {
        None => {
            return Err(FormatError::new(
                s.line,
                "no history: expected a vector or list of op maps",
            ))
        }
        Some(b @ (b'[' | b'(')) => b,
        Some(_) => {
            // A bare sequence of forms, as in Jepsen's `history.edn`.
            while s.peek().is_some() {
                forms.push(s.form()?);
                s.skip_space()?;
            }
            return Ok(forms);
        }
    };
    let (close, kind) = closer(open);
    let open_line = s.line;
    s.bump();
    loop {
        s.skip_space()?;
        match s.peek() {
            None => return Err(unterminated(open_line, kind, close, None)),
            Some(b) if b == close => break,
            Some(b @ (b')' | b']' | b'}')) => {
                // Between op maps, a stray closer is the mistake, not the history's opener.
                return Err(FormatError::new(
                    s.line,
                    format!(
                        "unexpected `{}`: the history's {kind} from line {open_line} closes with `{}`",
                        b as char, close as char
                    ),
                ));
            }
            Some(_) => forms.push(s.form()?),
        }
    }
    s.bump();
    s.skip_space()?;
    if s.peek().is_some() {
        return Err(FormatError::new(
            s.line,
            format!(
                "unexpected text after the history's closing `{}`",
                close as char
            ),
        ));
    }
    Ok(forms)
}

fn closer(open: u8) -> (u8, &'static str) {
    match open {
        b'(' => (b')', "list"),
        b'[' => (b']', "vector"),
        _ => (b'}', "map"),
    }
}

/// The error for a collection opened on `line` that never closes: the input ended, or a
/// different closing bracket came first.
fn unterminated(line: usize, kind: &str, close: u8, found: Option<(u8, usize)>) -> FormatError {
    let close = close as char;
    let message = match found {
        None => format!("unterminated {kind}: the input ends before its closing `{close}`"),
        Some((b, at)) => format!(
            "unterminated {kind}: found `{}` on line {at} before its closing `{close}`",
            b as char
        ),
    };
    FormatError::new(line, message)
}

/// The deepest nesting accepted in one form. The EDN parser takes about 10 KB of stack per level
/// in a debug build: 64 levels fit a 2 MB thread stack twice over, and histories nest less than
/// ten deep.
pub(super) const MAX_DEPTH: usize = 64;

/// The largest decimal exponent accepted (`1e400M`). The decimal type behind the EDN parser
/// prints every zero (`1e300000000000M` would take 300 GB) and overflows on exponents near 2^63.
const MAX_DECIMAL_EXPONENT: u32 = 400;

/// Refuses EDN text the EDN parser cannot read safely, before it reads it: nesting deeper than
/// [`MAX_DEPTH`], and decimals (`M`) with exponents beyond [`MAX_DECIMAL_EXPONENT`]. Collections
/// and tag or `#_` prefixes each count a level, as they do for the EDN parser (which recurses
/// into the form after a prefix), until the form they apply to ends. `line` is the text's first
/// line; the error names the line where a limit is passed.
///
/// Linear and without recursion, so that no input can overflow the stack here either.
pub(crate) fn check_limits(text: &str, line: usize) -> Result<(), FormatError> {
    #[derive(PartialEq)]
    enum Level {
        Collection,
        Prefix,
    }
    /// A form ended: so did every prefix waiting for it.
    fn form_ended(levels: &mut Vec<Level>) {
        while levels.last() == Some(&Level::Prefix) {
            levels.pop();
        }
    }
    let bytes = text.as_bytes();
    let is_atom = |b: u8| !(b.is_ascii_whitespace() || b",;\"()[]{}".contains(&b));
    let mut levels: Vec<Level> = Vec::new();
    let (mut i, mut line) = (0, line);
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'\n' => line += 1,
            b if b.is_ascii_whitespace() || b == b',' => {}
            b';' => {
                while bytes.get(i).is_some_and(|&b| b != b'\n') {
                    i += 1;
                }
            }
            b'"' => {
                while let Some(&b) = bytes.get(i) {
                    i += 1;
                    match b {
                        b'"' => break,
                        b'\n' => line += 1,
                        b'\\' => {
                            line += usize::from(bytes.get(i) == Some(&b'\n'));
                            i += 1;
                        }
                        _ => {}
                    }
                }
                form_ended(&mut levels);
            }
            b'(' | b'[' | b'{' => levels.push(Level::Collection),
            b')' | b']' | b'}' => {
                // Unbalanced text is the parser's to report; here it only ends levels.
                form_ended(&mut levels);
                levels.pop();
                form_ended(&mut levels);
            }
            b'#' => match bytes.get(i) {
                Some(b'{') => {
                    i += 1;
                    levels.push(Level::Collection);
                }
                Some(b'_') => {
                    i += 1;
                    levels.push(Level::Prefix);
                }
                _ => {
                    let start = i;
                    while bytes.get(i).is_some_and(|&b| is_atom(b)) {
                        i += 1;
                    }
                    check_atom(bytes, start..i, line)?;
                    levels.push(Level::Prefix);
                }
            },
            _ => {
                // An atom, or a character literal (`\c`, `\newline`, `\(`).
                let start = i - 1;
                if b == b'\\' && i < bytes.len() {
                    line += usize::from(bytes[i] == b'\n');
                    i += 1;
                }
                while bytes.get(i).is_some_and(|&b| is_atom(b)) {
                    i += 1;
                }
                check_atom(bytes, start..i, line)?;
                form_ended(&mut levels);
            }
        }
        if levels.len() > MAX_DEPTH {
            return Err(FormatError::new(
                line,
                format!("values nest deeper than {MAX_DEPTH} levels"),
            ));
        }
    }
    Ok(())
}

/// Refuses, in the atom at `range` of `text`, what the EDN parser would fail on other than with
/// an error: a decimal (`1.5e300M`) whose exponent is beyond [`MAX_DECIMAL_EXPONENT`], and a
/// `\u` character literal with a non-ASCII byte among the four after it (edn-format slices its
/// text there by bytes, and panics in the middle of a character).
fn check_atom(text: &[u8], range: std::ops::Range<usize>, line: usize) -> Result<(), FormatError> {
    let start = range.start;
    let atom = &text[range];
    for (k, _) in atom.windows(2).enumerate().filter(|(_, w)| w == b"\\u") {
        // Where edn-format reads the four hex digits: past the atom's end if it is short.
        let digits = text.iter().skip(start + k + 2).take(4);
        if digits.clone().any(|b| !b.is_ascii()) {
            return Err(FormatError::new(
                line,
                "invalid character literal: `\\u` must be followed by four hex digits",
            ));
        }
    }
    // The parser's own atom characters (`edn_format::is_allowed_atom_character`): it splits
    // where this scanner does not (`1e9M#x` is its `1e9M` and a tag).
    let atom_char = |c: char| c.is_alphanumeric() || ".*+!-_?$%&=<>/:".contains(c);
    // A character literal may stop inside a character, and so the atom: show it lossily.
    let atom = String::from_utf8_lossy(atom);
    for part in atom.split(|c: char| !atom_char(c)) {
        if huge_decimal(part) {
            let mut shown: String = part.chars().take(60).collect();
            if shown.len() < part.len() {
                shown.push_str("...");
            }
            return Err(FormatError::new(
                line,
                format!(
                    "the decimal {shown} is out of range: exponents beyond \
                     \u{b1}{MAX_DECIMAL_EXPONENT} are refused"
                ),
            ));
        }
    }
    Ok(())
}

/// Whether an atom is a decimal whose exponent is beyond [`MAX_DECIMAL_EXPONENT`], read as
/// edn-format and bigdecimal read it: a number starts with a (Unicode) numeric character,
/// possibly signed, and ends with one `M`; the exponent follows the first `e` or `E`, with an
/// optional `+` and then an optional sign.
fn huge_decimal(atom: &str) -> bool {
    let Some(number) = atom.strip_suffix('M') else {
        return false;
    };
    let mut chars = number.chars();
    let starts_like_number = match chars.next() {
        Some('+' | '-') => chars.next().is_some_and(char::is_numeric),
        first => first.is_some_and(char::is_numeric),
    };
    let Some((_, exponent)) = number.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    let digits = digits.trim_start_matches('0');
    // Anything but ASCII digits fails to parse, as an error.
    starts_like_number
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.len() > 9
            || digits
                .parse::<u32>()
                .is_ok_and(|e| e > MAX_DECIMAL_EXPONENT))
}

/// Finds the extent of EDN forms without building them, tracking the line.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    /// Tags open around the current form: the one way the scanner recurses.
    tags: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    fn skip_comment(&mut self) {
        while self.peek().is_some_and(|b| b != b'\n') {
            self.bump();
        }
    }

    /// Skips whitespace, commas, `;` comments and `#_` discarded forms.
    fn skip_space(&mut self) -> Result<(), FormatError> {
        // Counted, not recursive: `#_ #_ a b` discards two forms, and a long run of `#_` must not
        // overflow the stack.
        let mut discards = 0usize;
        loop {
            match self.peek() {
                Some(b) if b.is_ascii_whitespace() || b == b',' => {
                    self.bump();
                }
                Some(b';') => self.skip_comment(),
                Some(b'#') if self.text.as_bytes().get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    discards += 1;
                }
                _ if discards > 0 => {
                    self.form()?;
                    discards -= 1;
                }
                _ => return Ok(()),
            }
        }
    }

    /// Reads one form starting at the current (non-space) position.
    fn form(&mut self) -> Result<Form<'a>, FormatError> {
        let (start, line) = (self.pos, self.line);
        match self.peek() {
            None => return Err(FormatError::new(line, "unexpected end of input")),
            Some(b'"') => self.string()?,
            Some(b'(' | b'[' | b'{') => self.collection("")?,
            Some(b'#') if self.text.as_bytes().get(self.pos + 1) == Some(&b'{') => {
                self.pos += 1;
                self.collection("set")?;
            }
            Some(b'#') => {
                // A tag (`#inst`, `#jepsen.history.Op`) and the form it applies to.
                self.tags += 1;
                if self.tags > MAX_DEPTH {
                    return Err(FormatError::new(
                        line,
                        format!("values nest deeper than {MAX_DEPTH} levels"),
                    ));
                }
                self.pos += 1;
                self.atom();
                self.skip_space()?;
                self.form()?;
                self.tags -= 1;
            }
            Some(b @ (b')' | b']' | b'}')) => {
                return Err(FormatError::new(
                    line,
                    format!("unexpected `{}`", b as char),
                ))
            }
            Some(b'\\') => {
                self.bump();
                self.bump();
                self.atom();
            }
            Some(_) => self.atom(),
        }
        Ok(Form {
            text: &self.text[start..self.pos],
            line,
        })
    }

    fn atom(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b",;\"()[]{}".contains(&b) {
                return;
            }
            self.bump();
        }
    }

    fn string(&mut self) -> Result<(), FormatError> {
        let line = self.line;
        self.bump();
        loop {
            match self.bump() {
                None => return Err(FormatError::new(line, "unterminated string")),
                Some(b'\\') => {
                    self.bump();
                }
                Some(b'"') => return Ok(()),
                Some(_) => {}
            }
        }
    }

    /// Skips a balanced collection; `kind` names the outermost one when its bracket does not.
    fn collection(&mut self, kind: &'static str) -> Result<(), FormatError> {
        let mut open: Vec<(u8, &'static str, usize)> = Vec::new();
        loop {
            let line = self.line;
            match self.peek() {
                None => {
                    let (close, kind, line) = open[open.len() - 1];
                    return Err(unterminated(line, kind, close, None));
                }
                Some(b'"') => self.string()?,
                Some(b';') => self.skip_comment(),
                Some(b) => {
                    self.bump();
                    match b {
                        b'(' | b'[' | b'{' => {
                            let (close, name) = closer(b);
                            let name = if open.is_empty() && !kind.is_empty() {
                                kind
                            } else {
                                name
                            };
                            open.push((close, name, line));
                            // The EDN parser behind the scanner recurses per level; no history
                            // nests this deep, so stop before the stack would overflow.
                            if open.len() > MAX_DEPTH {
                                return Err(FormatError::new(
                                    line,
                                    format!("values nest deeper than {MAX_DEPTH} levels"),
                                ));
                            }
                        }
                        b')' | b']' | b'}' => {
                            let (close, name, opened) = open.pop().expect("inside a collection");
                            if b != close {
                                return Err(unterminated(opened, name, close, Some((b, line))));
                            }
                            if open.is_empty() {
                                return Ok(());
                            }
                        }
                        b'\\' => {
                            self.bump();
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, &str)> {
        let forms = top_level_forms(text).unwrap();
        forms.into_iter().map(|f| (f.line, f.text)).collect()
    }

    fn error(text: &str) -> (usize, String) {
        let err = top_level_forms(text).err().expect("an error");
        (err.line, err.message)
    }

    #[test]
    fn finds_forms_and_their_lines() {
        let text = "; [ { not a form\n[{:a \"}\\\"\"}\n ; ] }\n {:b \\}\n  :c #{1}}\n #_ {:skipped 1}\n #tag {:d 1}]";
        assert_eq!(
            lines(text),
            vec![
                (2, "{:a \"}\\\"\"}"),
                (4, "{:b \\}\n  :c #{1}}"),
                (7, "#tag {:d 1}")
            ]
        );
        assert_eq!(lines("({:a 1}) ; end"), vec![(1, "{:a 1}")]);
        assert_eq!(
            lines("{:a 1}\n\n{:b 2}\n"),
            vec![(1, "{:a 1}"), (3, "{:b 2}")]
        );
        assert!(lines("[]").is_empty());
    }

    #[test]
    fn broken_structure_names_the_line_it_started_on() {
        let (line, message) = error("[{:a 1}\n {:b 2\n {:c 3}\n");
        assert_eq!(line, 2);
        assert_eq!(
            message,
            "unterminated map: the input ends before its closing `}`"
        );
        let (line, message) = error("[{:a 1\n {:b 2}\n]");
        assert_eq!(line, 1);
        assert_eq!(
            message,
            "unterminated map: found `]` on line 3 before its closing `}`"
        );
        assert_eq!(
            error("[{:a 1}\n\n {:b \"x}]\n"),
            (3, "unterminated string".into())
        );
        assert_eq!(error("\n[{:a 1}\n").0, 2);
        assert_eq!(error("[{:a 1}]\n\n]").0, 3);
        assert_eq!(error("[{:a 1}\n #{1 2]").0, 2);
        assert_eq!(error("[{:a 1}\n }]").0, 2);
        assert_eq!(error("  \n; nothing\n").0, 3);
    }

    /// Regression (fuzzing work): nested tags (`#t #t ... 1`) overflowed the scanner's stack, and
    /// deep nesting inside one op (where the scanner does not look) the EDN parser's.
    #[test]
    fn deep_nesting_is_refused_before_it_overflows_the_stack() {
        let nested =
            |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
        for (open, close) in [("[", "]"), ("#{", "}"), ("#t ", ""), ("#_ ", " 2")] {
            let deepest = nested(open, close, MAX_DEPTH);
            assert_eq!(check_limits(&deepest, 1).map_err(|e| e.message), Ok(()));
            let err =
                check_limits(&format!("\n\n{}", nested(open, close, 100_000)), 1).unwrap_err();
            assert_eq!(err.line, 3, "{open}");
            assert_eq!(err.message, "values nest deeper than 64 levels");
        }
        // Depth ends with the form: many ops in a row, each tagged, are shallow.
        let ops = "#op {:a #{[1 #_ 2 \\] \"]\"]}} ".repeat(10_000);
        assert!(check_limits(&format!("[{ops}]"), 1).is_ok());
        let err = top_level_forms(&format!("[{{:a 1}}\n {}1]", "#t ".repeat(100_000)))
            .err()
            .expect("an error");
        assert_eq!(
            (err.line, err.message.as_str()),
            (2, "values nest deeper than 64 levels")
        );
        // Between ops, a long run of `#_` is still read without recursion.
        let discards = format!(
            "[{}{}{{:a 1}}]",
            "#_ ".repeat(100_000),
            "0 ".repeat(100_000)
        );
        assert_eq!(lines(&discards), vec![(1, "{:a 1}")]);
    }
}
