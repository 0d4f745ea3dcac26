//! JSON output exactly as the Python toolkit writes it: compact separators, raw UTF-8, and floats
//! printed as Python's `repr(float)` prints them (`json.dumps` uses `float.__repr__`). Scores are
//! f32 in the model and widened to f64 before printing, as `numpy.float32.item()` does, so
//! `0.50499868` prints as `0.5049986839294434`.
//!
//! Python differs from Rust's shortest round-trip printers only in layout: it switches to
//! exponent notation when the decimal exponent is below -4 or at least 16, and writes the exponent
//! with a sign and at least two digits (`1e-05`, `1.5e+16`).

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

/// Writes `value` in Python's `repr` layout into `out`. Non-finite values are written as `null`
/// (the toolkit refuses them with `allow_nan=False`; a null is the honest JSON answer).
///
/// The shortest round-trip digits come from `zmij` (the same digits as Python's repr: the
/// shortest string that reads back to the value, the closest one on ties); only the layout is
/// Python's own. No allocation: a feature-extraction answer writes thousands of these.
#[inline]
pub fn write_py_float(out: &mut Vec<u8>, value: f64) {
    // Python prints positionally exactly when the shortest digits' decimal exponent is in
    // -4..=15, i.e. when 1e-4 <= |value| < 1e16 (the shortest digits read back to `value`, so
    // they lie on the same side of both bounds); zmij prints that range positionally too (its
    // fixed range is -5..=15), with `.0` after whole numbers, as Python does. Nearly every
    // score and embedding is in it: this path is inlined, the rest is not.
    if (1e-4..1e16).contains(&value.abs()) {
        out.extend_from_slice(zmij::Buffer::new().format_finite(value).as_bytes());
    } else {
        write_py_float_outside(out, value);
    }
}

/// [`write_py_float`] for zero, non-finite values and magnitudes outside `1e-4..1e16`.
#[cold]
#[inline(never)]
fn write_py_float_outside(out: &mut Vec<u8>, value: f64) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if value == 0.0 {
        out.extend_from_slice(if value.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    let mut buf = zmij::Buffer::new();
    let printed = buf.format_finite(value).as_bytes();
    // outside 1e-4..1e16 Python always uses exponent notation: take zmij's digits and exponent
    // and lay them out as Python does
    let (neg, s) = match printed.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, printed),
    };
    // Decompose into significant digits and the position of the decimal point relative to the
    // first of them.
    let (mantissa, exp) = match s.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&s[..i], parse_exp(&s[i + 1..])),
        None => (s, 0),
    };
    let mut digits = [0u8; 32];
    let mut len = 0usize;
    let mut point = 0i32;
    let mut seen_point = false;
    for &c in mantissa {
        match c {
            b'.' => seen_point = true,
            b'0'..=b'9' => {
                if len == 0 && c == b'0' {
                    // a leading zero: before the point it is nothing, after it shifts the point
                    if seen_point {
                        point -= 1;
                    }
                    continue;
                }
                if len < digits.len() {
                    digits[len] = c;
                    len += 1;
                }
                if !seen_point {
                    point += 1;
                }
            }
            _ => {}
        }
    }
    point = point.saturating_add(exp);
    while len > 0 && digits[len - 1] == b'0' {
        len -= 1;
    }
    let digits = &digits[..len];
    if digits.is_empty() {
        out.extend_from_slice(b"0.0");
        return;
    }
    if neg {
        out.push(b'-');
    }
    let sci_exp = point - 1;
    out.push(digits[0]);
    if digits.len() > 1 {
        out.push(b'.');
        out.extend_from_slice(&digits[1..]);
    }
    out.push(b'e');
    out.push(if sci_exp < 0 { b'-' } else { b'+' });
    let e = sci_exp.unsigned_abs();
    if e >= 100 {
        out.push(b'0' + (e / 100) as u8);
    }
    out.push(b'0' + (e / 10 % 10) as u8);
    out.push(b'0' + (e % 10) as u8);
}

/// The decimal exponent after an `e` (`-7`, `+16`, `16`).
fn parse_exp(s: &[u8]) -> i32 {
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let e = s
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0i32, |e, &c| {
            e.saturating_mul(10).saturating_add(i32::from(c - b'0'))
        });
    if neg {
        -e
    } else {
        e
    }
}

/// A `serde_json` formatter: compact, with Python-style floats.
#[derive(Debug, Default, Clone, Copy)]
pub struct PyFormatter;

impl Formatter for PyFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut buf = Vec::with_capacity(32);
        write_py_float(&mut buf, value);
        writer.write_all(&buf)
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }
}

/// Serializes `value` as the toolkit's JSON bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(v: f64) -> String {
        let mut b = Vec::new();
        write_py_float(&mut b, v);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn matches_python_repr() {
        // expected strings are Python 3.11's repr()
        let cases: &[(f64, &str)] = &[
            (f64::from(0.504_998_7_f32), "0.5049986839294434"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000015, "1.5e-05"),
            (123456.789, "123456.789"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e22, "1e+22"),
            (1.234e-7, "1.234e-07"),
            (-3.1e-300, "-3.1e-300"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (f64::from(0.036_5_f32), "0.0364999994635582"),
            // both ends of Python's positional range
            (9.999_999_999_999_999e-5, "9.999999999999999e-05"),
            (-0.000_100_000_000_000_000_02, "-0.00010000000000000002"),
            (9_999_999_999_999_998.0, "9999999999999998.0"),
            (-1e16, "-1e+16"),
            (f64::from(-1.0e-4_f32), "-9.999999747378752e-05"),
            (f64::from(1.2e-4_f32), "0.00011999999696854502"),
        ];
        for (v, want) in cases {
            assert_eq!(py(*v), *want, "{v:e}");
        }
    }

    /// Python's repr built independently, from the shortest digits of std's `{:e}`.
    fn py_from_std(v: f64) -> String {
        let e = format!("{v:e}");
        let (m, exp) = e.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        let (neg, m) = m.strip_prefix('-').map_or((false, m), |r| (true, r));
        let digits: String = m.chars().filter(|c| *c != '.').collect();
        let sign = if neg { "-" } else { "" };
        if (-4..16).contains(&exp) {
            // positional: std's Display prints the same shortest digits positionally
            let p = format!("{}", v.abs());
            let p = if p.contains('.') { p } else { format!("{p}.0") };
            format!("{sign}{p}")
        } else {
            let frac = if digits.len() > 1 {
                format!(".{}", &digits[1..])
            } else {
                String::new()
            };
            let es = if exp < 0 { '-' } else { '+' };
            format!("{sign}{}{frac}e{es}{:02}", &digits[..1], exp.unsigned_abs())
        }
    }

    #[test]
    fn agrees_with_an_independent_layout_on_many_values() {
        // f32 values widened (what every score and embedding is) over many magnitudes, and f64s
        let mut s = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for i in 0..200_000 {
            let r = next();
            let v = if i % 2 == 0 {
                let f = f32::from_bits((r >> 32) as u32);
                f64::from(f)
            } else {
                f64::from_bits(r)
            };
            if !v.is_finite() || v == 0.0 {
                continue;
            }
            let (ours, std) = (py(v), py_from_std(v));
            // at an exact tie between two shortest candidates Python (and zmij) round half to
            // even where std may not: then only the last digit differs and both read back to v
            let tie = ours.len() == std.len()
                && ours[..ours.len() - 1] == std[..std.len() - 1]
                && ours.parse::<f64>() == Ok(v)
                && std.parse::<f64>() == Ok(v);
            assert!(ours == std || tie, "{v:e}: {ours} vs {std}");
        }
    }

    #[test]
    fn compact_and_utf8() {
        let v = serde_json::json!({"label": "café 🙂", "score": 0.5, "n": [1, 2.0]});
        assert_eq!(
            String::from_utf8(to_vec(&v).unwrap()).unwrap(),
            r#"{"label":"café 🙂","score":0.5,"n":[1,2.0]}"#
        );
    }
}
