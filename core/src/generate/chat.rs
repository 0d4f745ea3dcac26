//! Chat templates: a model's `tokenizer_config.json` `chat_template` (Jinja) rendered as
//! transformers' `apply_chat_template` does (`trim_blocks`, `lstrip_blocks`, loop controls,
//! `raise_exception`, `strftime_now`, a `tojson` that writes JSON as Python's `json.dumps`, the
//! tokenizer's special tokens as variables, and Python string methods such as `.strip()`).

use minijinja::value::{Kwargs, Value as JValue};
use minijinja::{Environment, Error as JError, ErrorKind};
use serde_json::Value;

use crate::error::ToolkitError;

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// `bos_token`, `eos_token`, … as strings.
    special: Vec<(String, String)>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").finish_non_exhaustive()
    }
}

const NAME: &str = "chat";

impl ChatTemplate {
    /// The template of `tokenizer_config.json` (a string, or a list of named templates of which
    /// `default` is used), or `None` when the tokenizer has none.
    pub fn from_tokenizer_config(cfg: &Value) -> Result<Option<Self>, ToolkitError> {
        let source = match cfg.get("chat_template") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(named)) => {
                let pick = named
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .or_else(|| named.first());
                match pick.and_then(|t| t.get("template")).and_then(Value::as_str) {
                    Some(s) => s.to_owned(),
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<JValue, JError> {
            Err(JError::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| -> Result<String, JError> {
            Ok(strftime_now(&fmt))
        });
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source).map_err(|e| {
            ToolkitError::model_load(format!(
                "the chat template in tokenizer_config.json does not compile: {e}"
            ))
        })?;
        let mut special = Vec::new();
        for key in [
            "bos_token",
            "eos_token",
            "unk_token",
            "pad_token",
            "sep_token",
            "cls_token",
            "mask_token",
        ] {
            let text = cfg.get(key).and_then(|v| {
                v.as_str()
                    .or_else(|| v.get("content").and_then(Value::as_str))
                    .map(str::to_owned)
            });
            if let Some(t) = text {
                special.push((key.to_owned(), t));
            }
        }
        Ok(Some(Self { env, special }))
    }

    /// Renders `messages` (a list of `{"role", "content", ...}`), with `add_generation_prompt`
    /// or, with `continue_final_message`, cut right after the final message's content so that
    /// the model continues it.
    pub fn render(
        &self,
        messages: &Value,
        add_generation_prompt: bool,
        continue_final_message: bool,
    ) -> Result<String, ToolkitError> {
        if add_generation_prompt && continue_final_message {
            return Err(ToolkitError::InvalidParameters(
                "continue_final_message and add_generation_prompt are not compatible. Use continue_final_message when you want the model to continue the final message, and add_generation_prompt when you want to add a header that will prompt it to generate a new assistant message instead.".into(),
            ));
        }
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| ToolkitError::Internal(format!("chat template missing: {e}")))?;
        let mut ctx: serde_json::Map<String, Value> = self
            .special
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        ctx.insert("messages".into(), messages.clone());
        ctx.insert(
            "add_generation_prompt".into(),
            Value::Bool(add_generation_prompt),
        );
        ctx.insert("tools".into(), Value::Null);
        ctx.insert("documents".into(), Value::Null);
        let rendered = template.render(JValue::from_serialize(&ctx)).map_err(|e| {
            ToolkitError::InvalidParameters(format!(
                "the model's chat template failed on these messages: {}",
                template_error(&e)
            ))
        })?;
        if !continue_final_message {
            return Ok(rendered);
        }
        let last = messages
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let cut = |needle: &str| {
            rendered
                .rfind(needle)
                .map(|i| rendered[..i + needle.len()].to_owned())
        };
        match cut(last) {
            Some(r) if !last.is_empty() => Ok(r),
            _ => match cut(last.trim()) {
                Some(r) if !last.trim().is_empty() => Ok(r),
                _ => Err(ToolkitError::InvalidParameters(
                    "continue_final_message is set but the final message does not appear in the chat after applying the chat template! This can happen if the chat template deletes portions of the final message. Please verify the chat template and final message in your chat to ensure they are compatible.".into(),
                )),
            },
        }
    }
}

/// The message of a template error (a `raise_exception` message as it was raised).
fn template_error(e: &JError) -> String {
    match e.kind() {
        ErrorKind::InvalidOperation => e.detail().map_or_else(|| e.to_string(), str::to_owned),
        _ => e.to_string(),
    }
}

/// `tojson` as transformers defines it: `json.dumps(x, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)` (Python's separators: `", "` and `": "`).
fn tojson(value: JValue, kwargs: Kwargs) -> Result<String, JError> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut v: Value = serde_json::to_value(&value)
        .map_err(|e| JError::new(ErrorKind::InvalidOperation, e.to_string()))?;
    if sort_keys == Some(true) {
        sort(&mut v);
    }
    let mut out = String::new();
    write_py_json(&v, indent, 0, &mut out);
    Ok(out)
}

fn sort(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut x) in entries {
                sort(&mut x);
                m.insert(k, x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(sort),
        _ => {}
    }
}

fn write_py_json(v: &Value, indent: Option<usize>, level: usize, out: &mut String) {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_py_json(x, indent, level + 1, out);
            }
            newline(out, level);
            out.push(']');
        }
        Value::Object(m) if !m.is_empty() => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_py_json(x, indent, level + 1, out);
            }
            newline(out, level);
            out.push('}');
        }
        Value::Number(n) if n.is_f64() => {
            let mut b = Vec::new();
            crate::json::write_py_float(&mut b, n.as_f64().unwrap_or(0.0));
            out.push_str(&String::from_utf8_lossy(&b));
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `datetime.now().strftime(fmt)` for the common directives (UTC).
fn strftime_now(fmt: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let month = MONTHS[(m - 1) as usize];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('B') => out.push_str(month),
            Some('b') => out.push_str(&month[..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('H') => out.push_str(&format!("{:02}", rem / 3600)),
            Some('M') => out.push_str(&format!("{:02}", rem % 3600 / 60)),
            Some('S') => out.push_str(&format!("{:02}", rem % 60)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(t: &str) -> ChatTemplate {
        ChatTemplate::from_tokenizer_config(
            &json!({"chat_template": t, "bos_token": "<s>", "eos_token": {"content": "</s>"}}),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn renders_with_trim_blocks_specials_and_python_methods() {
        let t = template(
            "{{ bos_token }}{% for m in messages %}\n{{ m['role'] }}: {{ m['content'].strip() }}{{ eos_token }}\n{% endfor %}\n{% if add_generation_prompt %}assistant:{% endif %}",
        );
        let msgs = json!([{"role": "user", "content": "  Hi "}]);
        assert_eq!(
            t.render(&msgs, true, false).unwrap(),
            "<s>user: Hi</s>\nassistant:"
        );
    }

    #[test]
    fn continue_final_message_cuts_after_the_content() {
        let t = template(
            "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}",
        );
        let msgs = json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, I"}]);
        assert_eq!(
            t.render(&msgs, false, true).unwrap(),
            "<user>Hi</user><assistant>Hello, I"
        );
        assert!(t.render(&msgs, true, true).is_err());
    }

    #[test]
    fn raise_exception_is_a_400_with_its_message() {
        let t = template("{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}ok");
        let e = t
            .render(&json!([{"role": "system", "content": "x"}]), true, false)
            .unwrap_err();
        assert!(matches!(e, ToolkitError::InvalidParameters(_)));
        assert!(
            e.to_string().contains("Conversation must start with user"),
            "{e}"
        );
    }

    #[test]
    fn tojson_writes_python_json() {
        let t = template("{{ messages[0] | tojson }}|{{ messages[0] | tojson(indent=2) }}");
        let out = t
            .render(&json!([{"a": "é", "b": [1, 2.5]}]), false, false)
            .unwrap();
        assert_eq!(out, "{\"a\": \"é\", \"b\": [1, 2.5]}|{\n  \"a\": \"é\",\n  \"b\": [\n    1,\n    2.5\n  ]\n}");
    }

    #[test]
    fn no_template_is_none() {
        assert!(ChatTemplate::from_tokenizer_config(&json!({}))
            .unwrap()
            .is_none());
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }
}
