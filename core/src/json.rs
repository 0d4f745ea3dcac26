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
pub fn write_py_float(out: &mut Vec<u8>, value: f64) {
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
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(value);
    // Decompose ryu's output into sign, digits and decimal exponent.
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mantissa, exp) = match s.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: Vec<u8> = Vec::with_capacity(24);
    digits.extend(int_part.bytes());
    digits.extend(frac_part.bytes());
    // decimal point position relative to the start of `digits`
    let mut point = int_part.len() as i32 + exp;
    // strip leading zeros (e.g. "0.0123")
    let lead = digits.iter().take_while(|&&d| d == b'0').count();
    digits.drain(..lead);
    point -= lead as i32;
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        out.extend_from_slice(b"0.0");
        return;
    }
    if neg {
        out.push(b'-');
    }
    // Python repr: scientific when the exponent (point - 1) < -4 or >= 16.
    let sci_exp = point - 1;
    if !(-4..16).contains(&sci_exp) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if sci_exp < 0 { b'-' } else { b'+' });
        let e = sci_exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(e.to_string().as_bytes());
    } else if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
        out.extend_from_slice(&digits);
    } else {
        let p = point as usize;
        if digits.len() <= p {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', p - digits.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..p]);
            out.push(b'.');
            out.extend_from_slice(&digits[p..]);
        }
    }
}

/// A `serde_json` formatter: compact, with Python-style floats.
#[derive(Debug, Default, Clone, Copy)]
pub struct PyFormatter;

impl Formatter for PyFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut buf = Vec::with_capacity(24);
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
        ];
        for (v, want) in cases {
            assert_eq!(py(*v), *want, "{v:e}");
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
