//! The numeric annotation of TAPAS tables and questions: numbers and dates found in cell and
//! question texts, consolidated per column, from which `TapasTokenizer` derives three token
//! type channels (column rank, inverse column rank, numeric relation to the question). A port
//! of transformers' `tokenization_tapas.py` (4.51: `parse_text`, `_parse_date`,
//! `_parse_number`, `_consolidate_numeric_values`, `get_numeric_sort_key_fn`,
//! `get_numeric_relation`), itself from google-research/tapas's `number_utils.py` and
//! `number_annotation_utils.py`.
//!
//! Dates are parsed as Python's `datetime.strptime` parses transformers' 21 patterns in the C
//! locale (English month and weekday names, case-insensitive, a February 29th without a year
//! refused), keeping years 1700-2016. Digits are ASCII digits (Python's `\d` also takes other
//! scripts' decimal digits).

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

/// A number or a (partial) date, as TAPAS compares them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumericValue {
    /// A number.
    Number(f64),
    /// A date: year, month and day, each possibly absent.
    Date([Option<f64>; 3]),
}

impl NumericValue {
    fn is_date(&self) -> bool {
        matches!(self, NumericValue::Date(_))
    }
}

/// A span of a text (in characters) and the values read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericSpan {
    /// First character.
    pub begin: usize,
    /// One past the last character.
    pub end: usize,
    /// The values, numbers before dates.
    pub values: Vec<NumericValue>,
}

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"((^|\s)[+-])?((\.[0-9]+)|([0-9]+(,[0-9][0-9][0-9])*(\.[0-9]*)?))")
        .expect("the number pattern is a valid regex")
});

const NUMBER_WORDS: [&str; 13] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
];
// "fith" as transformers (and DynSP) spell it
const ORDINAL_WORDS: [&str; 13] = [
    "zeroth", "first", "second", "third", "fourth", "fith", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth",
];
const MONTHS: &str =
    "january|february|march|april|may|june|july|august|september|october|november|december";
const MONTHS_ABBR: &str = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec";
const WEEKDAYS: &str = "monday|tuesday|wednesday|thursday|friday|saturday|sunday";

/// Which of year, month and day a pattern sets.
type Mask = [bool; 3];
const Y: Mask = [true, false, false];
const YM: Mask = [true, true, false];
const YMD: Mask = [true, true, true];
const M: Mask = [false, true, false];
const MD: Mask = [false, true, true];

/// transformers' `_DATE_PATTERNS`, in its order (duplicates included: the first match wins).
const DATE_PATTERNS: [(&str, Mask); 21] = [
    ("%B", M),
    ("%Y", Y),
    ("%Ys", Y),
    ("%b %Y", YM),
    ("%B %Y", YM),
    ("%B %d", MD),
    ("%b %d", MD),
    ("%d %b", MD),
    ("%d %B", MD),
    ("%B %d, %Y", YMD),
    ("%d %B %Y", YMD),
    ("%m-%d-%Y", YMD),
    ("%Y-%m-%d", YMD),
    ("%Y-%m", YM),
    ("%B %Y", YM),
    ("%d %b %Y", YMD),
    ("%Y-%m-%d", YMD),
    ("%b %d, %Y", YMD),
    ("%d.%m.%Y", YMD),
    ("%A, %b %d", MD),
    ("%A, %B %d", MD),
];

/// One compiled date pattern: the regex (transformers' prefilter and strptime's directive
/// patterns together, anchored) and which fields it sets.
struct DatePattern {
    regex: Regex,
    mask: Mask,
}

static DATES: LazyLock<Vec<DatePattern>> = LazyLock::new(|| {
    DATE_PATTERNS
        .iter()
        .map(|(pattern, mask)| {
            let mut re = String::from("^");
            let mut chars = pattern.chars();
            while let Some(c) = chars.next() {
                if c == '%' {
                    // strptime's directive patterns (its `%d` also takes " 5", which the
                    // prefilter's `\d{1,2}` refuses)
                    re.push_str(&match chars.next() {
                        Some('B') => format!("(?P<B>{MONTHS})"),
                        Some('b') => format!("(?P<b>{MONTHS_ABBR})"),
                        Some('A') => format!("(?:{WEEKDAYS})"),
                        Some('Y') => "(?P<Y>[0-9]{4})".to_owned(),
                        Some('d') => "(?P<d>3[01]|[12][0-9]|0[1-9]|[1-9])".to_owned(),
                        _ => "(?P<m>1[0-2]|0[1-9]|[1-9])".to_owned(),
                    });
                } else if c == ' ' {
                    re.push_str(r"\s+");
                } else {
                    re.push_str(&regex::escape(&c.to_string()));
                }
            }
            re.push('$');
            DatePattern {
                regex: Regex::new(&re).expect("the date patterns are valid regexes"),
                mask: *mask,
            }
        })
        .collect()
});

fn month_number(name: &str, list: &str) -> Option<f64> {
    list.split('|')
        .position(|m| m == name)
        .map(|i| (i + 1) as f64)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// transformers' `_parse_date`: the first pattern that parses the (lower-case) text as a valid
/// date with a year in 1700-2016 (1900 when the pattern has none).
fn parse_date(text: &str) -> Option<NumericValue> {
    for p in DATES.iter() {
        let Some(c) = p.regex.captures(text) else {
            continue;
        };
        let field = |name: &str| c.name(name).map(|m| m.as_str());
        let year: i64 = field("Y").and_then(|y| y.parse().ok()).unwrap_or(1900);
        let month = field("m")
            .and_then(|m| m.parse::<f64>().ok())
            .or_else(|| field("B").and_then(|b| month_number(b, MONTHS)))
            .or_else(|| field("b").and_then(|b| month_number(b, MONTHS_ABBR)))
            .unwrap_or(1.0);
        let day: u32 = field("d").and_then(|d| d.parse().ok()).unwrap_or(1);
        // strptime builds a datetime: the day must exist (no year: 1900, so no February 29th)
        if day > days_in_month(year, month as u32) {
            continue;
        }
        if !(1700..=2016).contains(&year) {
            continue;
        }
        let [y, m, d] = p.mask;
        return Some(NumericValue::Date([
            y.then_some(year as f64),
            m.then_some(month),
            d.then_some(f64::from(day)),
        ]));
    }
    None
}

/// Python's `float()` on a string of ASCII characters: `[+-]digits[.digits][e[+-]digits]`,
/// `inf`, `infinity`, `nan` (surrounding whitespace ignored).
fn py_float(text: &str) -> Option<f64> {
    let t = text.trim();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let special = ["inf", "infinity", "nan"].contains(&body.to_ascii_lowercase().as_str());
    if !special {
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty())) {
            return None;
        }
        if let Some(e) = exponent {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            if e.is_empty() || !digits(e) {
                return None;
            }
        }
    }
    t.parse::<f64>().ok()
}

/// transformers' `_parse_number`: an ordinal suffix dropped, commas removed, then a float that
/// is neither NaN nor +inf.
fn parse_number(text: &str) -> Option<f64> {
    let mut t = text;
    for suffix in ["st", "nd", "rd", "th"] {
        if let Some(s) = t.strip_suffix(suffix) {
            t = s;
            break;
        }
    }
    let v = py_float(&t.replace(',', ""))?;
    (!v.is_nan() && v != f64::INFINITY).then_some(v)
}

/// Python's `str.isalnum` on one character (Rust's alphanumeric properties).
fn is_alnum(c: char) -> bool {
    c.is_alphanumeric()
}

/// transformers' `get_all_spans`: every run of up to `max_ngram` alphanumeric words, by end.
fn all_spans(chars: &[char], max_ngram: usize) -> Vec<(usize, usize)> {
    let mut starts: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        if !is_alnum(c) {
            continue;
        }
        if i == 0 || !is_alnum(chars[i - 1]) {
            starts.push(i);
        }
        if i + 1 == chars.len() || !is_alnum(chars[i + 1]) {
            let from = starts.len().saturating_sub(max_ngram);
            out.extend(starts[from..].iter().map(|&s| (s, i + 1)));
        }
    }
    out
}

/// transformers' `normalize_for_match`: lower case, whitespace runs to one space, trimmed.
pub fn normalize_for_match(text: &str) -> String {
    text.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// transformers' `parse_text`: the longest number and date spans of a normalised text, in
/// order.
pub fn parse_text(text: &str) -> Vec<NumericSpan> {
    let chars: Vec<char> = text.chars().collect();
    // byte offset -> char index, for the regex's matches
    let mut char_at = vec![0usize; text.len() + 1];
    for (ci, (bi, _)) in text.char_indices().enumerate() {
        char_at[bi] = ci;
    }
    char_at[text.len()] = chars.len();
    let sub = |b: usize, e: usize| chars[b..e].iter().collect::<String>();
    let mut spans: Vec<((usize, usize), Vec<NumericValue>)> = Vec::new();
    // the spans in insertion order (a Python dict), each with its values
    fn entry(spans: &mut Vec<((usize, usize), Vec<NumericValue>)>, key: (usize, usize)) -> usize {
        spans
            .iter()
            .position(|(k, _)| *k == key)
            .unwrap_or_else(|| {
                spans.push((key, Vec::new()));
                spans.len() - 1
            })
    }
    for m in NUMBER.find_iter(text) {
        if let Some(n) = parse_number(m.as_str()) {
            let key = (char_at[m.start()], char_at[m.end()]);
            let i = entry(&mut spans, key);
            spans[i].1.push(NumericValue::Number(n));
        }
    }
    for (b, e) in all_spans(&chars, 1) {
        if spans.iter().any(|(k, _)| *k == (b, e)) {
            continue;
        }
        let word = sub(b, e);
        let mut found = Vec::new();
        if let Some(n) = parse_number(&word) {
            found.push(NumericValue::Number(n));
        }
        if let Some(n) = NUMBER_WORDS.iter().position(|w| *w == word) {
            found.push(NumericValue::Number(n as f64));
        }
        if let Some(n) = ORDINAL_WORDS.iter().position(|w| *w == word) {
            found.push(NumericValue::Number(n as f64));
        }
        // a span with no value is still a key of the dictionary (an empty list), as Python's
        // defaultdict makes it only when a value is appended: so only spans with values
        if !found.is_empty() {
            let i = entry(&mut spans, (b, e));
            spans[i].1.extend(found);
        }
    }
    for (b, e) in all_spans(&chars, 5) {
        if let Some(d) = parse_date(&sub(b, e)) {
            let i = entry(&mut spans, (b, e));
            spans[i].1.push(d);
        }
    }
    // longest first, then leftmost; a span inside one already taken is dropped
    spans.sort_by(|a, b| {
        let ka = (a.0 .1 - a.0 .0, std::cmp::Reverse(a.0 .0));
        let kb = (b.0 .1 - b.0 .0, std::cmp::Reverse(b.0 .0));
        kb.cmp(&ka)
    });
    let mut selected: Vec<((usize, usize), Vec<NumericValue>)> = Vec::new();
    for (span, values) in spans {
        if !selected.iter().any(|(s, _)| s.0 <= span.0 && span.1 <= s.1) {
            selected.push((span, values));
        }
    }
    selected.sort_by_key(|(s, _)| s.0);
    selected
        .into_iter()
        .map(|((begin, end), values)| NumericSpan { begin, end, values })
        .collect()
}

/// Every value of a text (transformers' `_get_numeric_values`, on the normalised text).
fn text_values(text: &str) -> Vec<NumericValue> {
    parse_text(&normalize_for_match(text))
        .into_iter()
        .flat_map(|s| s.values)
        .collect()
}

/// transformers' `_consolidate_numeric_values` over one column (min fraction 0.7): the type most
/// cells hold (dates on a tie), and each cell's first value of that type.
pub fn consolidate_column(cells: &[&str]) -> Vec<Option<NumericValue>> {
    let values: Vec<Vec<NumericValue>> = cells.iter().map(|c| text_values(c)).collect();
    let (mut numbers, mut dates) = (0usize, 0usize);
    for v in &values {
        numbers += usize::from(v.iter().any(|x| !x.is_date()));
        dates += usize::from(v.iter().any(NumericValue::is_date));
    }
    let max = numbers.max(dates);
    if max == 0 || (max as f64) < cells.len() as f64 * 0.7 {
        return vec![None; cells.len()];
    }
    let want_date = dates == max;
    values
        .into_iter()
        .map(|v| v.into_iter().find(|x| x.is_date() == want_date))
        .collect()
}

/// A comparable key of one value under a sort key function.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum SortKey {
    /// A number.
    Number(f64),
    /// The date fields every value has, in order.
    Date(Vec<f64>),
}

/// transformers' `get_numeric_sort_key_fn`: `None` (its ValueError) when the values mix numbers
/// and dates or the dates share no field; else which date fields to compare (unused for
/// numbers).
pub fn sort_key_fields<'a>(
    values: impl IntoIterator<Item = &'a NumericValue>,
) -> Option<[bool; 3]> {
    let mut any_number = false;
    let mut fields = [true; 3];
    let mut any_date = false;
    for v in values {
        match v {
            NumericValue::Number(_) => any_number = true,
            NumericValue::Date(d) => {
                any_date = true;
                for (f, x) in fields.iter_mut().zip(d) {
                    *f &= x.is_some();
                }
            }
        }
    }
    match (any_number, any_date) {
        (true, true) => None,
        (_, true) if fields.iter().all(|f| !f) => None,
        _ => Some(fields),
    }
}

/// The key of a value under [`sort_key_fields`]' fields.
pub fn sort_key(v: &NumericValue, fields: [bool; 3]) -> SortKey {
    match v {
        NumericValue::Number(x) => SortKey::Number(*x),
        NumericValue::Date(d) => SortKey::Date(
            d.iter()
                .zip(fields)
                .filter(|(_, f)| *f)
                .map(|(x, _)| x.unwrap_or(0.0))
                .collect(),
        ),
    }
}

/// transformers' `get_numeric_relation`: 1 (EQ), 2 (LT: the question's value is less) or 4
/// (GT), as bits of the relation set; 0 when incomparable.
pub fn relation_bit(question: &SortKey, cell: &SortKey) -> u32 {
    match question.partial_cmp(cell) {
        Some(Ordering::Equal) => 1,
        Some(Ordering::Less) => 2,
        Some(Ordering::Greater) => 4,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(usize, usize, Vec<NumericValue>)> {
        parse_text(text)
            .into_iter()
            .map(|s| (s.begin, s.end, s.values))
            .collect()
    }

    #[test]
    fn numbers_ordinals_and_words() {
        use NumericValue::Number as N;
        assert_eq!(values("1,200.50 apples"), vec![(0, 8, vec![N(1200.5)])]);
        assert_eq!(
            values("the 3rd of twelve"),
            vec![(4, 7, vec![N(3.0)]), (11, 17, vec![N(12.0)])]
        );
        assert_eq!(values("a -3 b"), vec![(1, 4, vec![N(-3.0)])]);
        assert_eq!(values("1e3"), vec![(0, 3, vec![N(1000.0)])]);
        assert_eq!(values("inf nan"), vec![]);
    }

    #[test]
    fn dates_as_strptime_parses_them() {
        let d = |y: Option<f64>, m: Option<f64>, day: Option<f64>| NumericValue::Date([y, m, day]);
        assert_eq!(
            parse_date("march 5, 2010"),
            Some(d(Some(2010.0), Some(3.0), Some(5.0)))
        );
        assert_eq!(parse_date("1999"), Some(d(Some(1999.0), None, None)));
        assert_eq!(parse_date("1990s"), Some(d(Some(1990.0), None, None)));
        assert_eq!(parse_date("feb 29"), None);
        assert_eq!(
            parse_date("02-29-2012"),
            Some(d(Some(2012.0), Some(2.0), Some(29.0)))
        );
        assert_eq!(parse_date("2020"), None, "years after 2016 are refused");
        assert_eq!(
            parse_date("monday, jan 3"),
            Some(d(None, Some(1.0), Some(3.0)))
        );
        // "%Y" comes before "%b %Y"-style patterns, and 2010 is a number too
        assert_eq!(
            values("in 2010"),
            vec![(
                3,
                7,
                vec![NumericValue::Number(2010.0), d(Some(2010.0), None, None)]
            )]
        );
    }
}
