//! `.env` files as compose reads them (compose-go's dotenv format).
//!
//! * One `KEY=VALUE` per line; `export KEY=VALUE` is the same; blank lines
//!   and lines starting with `#` are ignored.
//! * Unquoted values end at the line's end or at ` #` (an inline comment)
//!   and are trimmed; `${VAR}` forms inside are interpolated.
//! * `'single quoted'` values are literal (no escapes, no interpolation) and
//!   may span lines.
//! * `"double quoted"` values may span lines, expand `\n`, `\r`, `\t`, `\\`,
//!   `\"` and `\$`, and are interpolated.
//! * A line with a key alone (`KEY`) takes the variable's value from the
//!   environment when it is set there, and is skipped otherwise.
//!
//! Interpolation inside a value looks a variable up in the environment that
//! wins over the env files first, then in the values read so far (this file
//! and earlier env files), as compose does.

use super::interpolate::{interpolate, Vars};

/// Reads one env file into `vars` (later keys override earlier ones);
/// `environment` wins in lookups. Errors carry the 1-based line.
pub(crate) fn read_env_file(
    text: &str,
    environment: &Vars,
    vars: &mut Vars,
) -> Result<(), (usize, String)> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut line = 1;
    while i < b.len() {
        // Skip blank space and comment lines.
        match b[i] {
            b'\n' => {
                line += 1;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        let start_line = line;
        let eol = text[i..].find('\n').map_or(b.len(), |p| i + p);
        let mut rest = &text[i..eol];
        if let Some(r) = rest.strip_prefix("export ") {
            rest = r.trim_start();
        }
        let key_end = rest.find(['=', ':']).unwrap_or(rest.len());
        let key = rest[..key_end].trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        {
            return Err((start_line, format!("invalid variable name {key:?}")));
        }
        if key_end == rest.len() {
            // A key alone: inherited from the environment when set there.
            if let Some(v) = environment.get(key) {
                vars.insert(key.to_owned(), v.clone());
            }
            i = eol;
            continue;
        }
        let value_start = eol - rest.len() + key_end + 1;
        let mut j = value_start;
        while j < eol && matches!(b[j], b' ' | b'\t') {
            j += 1;
        }
        let lookup = || {
            let mut all = vars.clone();
            all.extend(environment.iter().map(|(k, v)| (k.clone(), v.clone())));
            all
        };
        let interp = |raw: &str| {
            interpolate(raw, &lookup()).map_err(|e| (start_line, format!("{key}: {}", e.0)))
        };
        let value;
        match b.get(j) {
            Some(&q @ (b'\'' | b'"')) => {
                let mut k = j + 1;
                let mut raw = String::new();
                loop {
                    let Some(&c) = b.get(k) else {
                        return Err((start_line, format!("{key}: unterminated quoted value")));
                    };
                    if c == q {
                        break;
                    }
                    if c == b'\n' {
                        line += 1;
                    }
                    if q == b'"' && c == b'\\' && k + 1 < b.len() {
                        let e = b[k + 1];
                        match e {
                            b'n' => raw.push('\n'),
                            b'r' => raw.push('\r'),
                            b't' => raw.push('\t'),
                            b'\\' | b'"' => raw.push(e as char),
                            // Kept escaped for the interpolation below.
                            b'$' => raw.push_str("$$"),
                            _ => {
                                raw.push('\\');
                                raw.push(e as char);
                            }
                        }
                        k += 2;
                        continue;
                    }
                    let ch_len = text[k..].chars().next().map_or(1, char::len_utf8);
                    raw.push_str(&text[k..k + ch_len]);
                    k += ch_len;
                }
                value = if q == b'"' { interp(&raw)? } else { raw };
                // After the closing quote: only blanks or a comment.
                let after_end = text[k..].find('\n').map_or(b.len(), |p| k + p);
                let after = text[k + 1..after_end].trim();
                if !after.is_empty() && !after.starts_with('#') {
                    return Err((
                        line,
                        format!("{key}: unexpected text after the quoted value"),
                    ));
                }
                i = after_end;
            }
            _ => {
                let raw = &text[j..eol];
                let raw = match raw.find(" #").or_else(|| raw.find("\t#")) {
                    Some(p) => &raw[..p],
                    None => raw,
                };
                value = interp(raw.trim())?;
                i = eol;
            }
        }
        vars.insert(key.to_owned(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, env: &[(&str, &str)]) -> Result<Vars, (usize, String)> {
        let env: Vars = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut vars = Vars::new();
        read_env_file(text, &env, &mut vars).map(|()| vars)
    }

    #[test]
    fn quotes_export_comments_and_interpolation() {
        let text = "# comment\n\nA=1\nexport B = two words  # trailing\nC='lit ${A} \\n'\nD=\"x${A}\\ny \\$A\"\nE=${A:-0}${MISSING:-d}\nF=\"multi\nline\" # ok\nG=${HOST}\nH=a#b\nINHERIT\nNOPE\n";
        let v = read(text, &[("HOST", "envhost"), ("INHERIT", "yes")]).unwrap();
        assert_eq!(v["A"], "1");
        assert_eq!(v["B"], "two words");
        assert_eq!(v["C"], "lit ${A} \\n");
        assert_eq!(v["D"], "x1\ny $A");
        assert_eq!(v["E"], "1d");
        assert_eq!(v["F"], "multi\nline");
        assert_eq!(v["G"], "envhost");
        assert_eq!(v["H"], "a#b");
        assert_eq!(v["INHERIT"], "yes");
        assert!(!v.contains_key("NOPE"));
    }

    #[test]
    fn environment_wins_in_lookups_and_errors_have_lines() {
        let v = read("A=file\nB=${A}\n", &[("A", "env")]).unwrap();
        assert_eq!(v["B"], "env");
        assert_eq!(read("A=1\nB=\"open\n", &[]).unwrap_err().0, 2);
        assert_eq!(read("A=1\n\nbad key=1\n", &[]).unwrap_err().0, 3);
        let (line, msg) = read("A=1\nB=${NEED:?set it}\n", &[]).unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("required variable NEED"), "{msg}");
    }
}
