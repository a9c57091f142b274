//! The plain shape of `spec.records` items read without a YAML parser.
//!
//! serde_yaml turns every scalar of a slice into events, then a JSON tree: a third of a
//! 100k-record `plan`. Nearly every big list is written the way `import` and generators write
//! it — `- name: h1` then `type: A`, `ttl: 300`, `data: ["192.0.2.1"]` two spaces in — and those
//! lines are read here directly. Only text whose meaning is beyond doubt is read: quoted
//! scalars without escapes, decimal integers, and plain scalars that YAML can only take as
//! strings. Anything else (comments after a value, escapes, anchors, tags, nested mappings,
//! multi-line scalars, duplicate keys, words YAML may read as null or a boolean) gives `None`,
//! and the caller reads the slice with serde_yaml as before, so the answer never differs.

use serde_json::{Map, Value};

/// The items of a slice of block-sequence entries, each a mapping of plain scalars and lists
/// of them; `None` when any line is not of that plain shape.
pub fn read(slice: &str) -> Option<Vec<Value>> {
    if slice.contains(['\r', '\t']) {
        return None;
    }
    let mut items = Vec::new();
    let mut entry_indent = None;
    let mut item: Option<Item> = None;
    for line in slice.split('\n') {
        let body = line.trim_start_matches(' ');
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if body.ends_with(' ') {
            return None;
        }
        let indent = line.len() - body.len();
        let n = *entry_indent.get_or_insert(indent);
        if indent == n {
            if let Some(done) = item.take() {
                items.push(done.finish()?);
            }
            let mut fresh = Item::default();
            fresh.pair(body.strip_prefix("- ")?)?;
            item = Some(fresh);
            continue;
        }
        let open = item.as_mut()?;
        match (indent.checked_sub(n)?, body.strip_prefix("- ")) {
            // A list under the last key, written as indented as the keys or two more.
            (2 | 4, Some(text)) => open.list_item(indent, text)?,
            (2, None) => open.pair(body)?,
            _ => return None,
        }
    }
    items.push(item?.finish()?);
    Some(items)
}

/// One item being read: its keys so far, and the block list under its last key, if open.
#[derive(Default)]
struct Item {
    map: Map<String, Value>,
    list: Option<List>,
}

/// A block list under `key`: its items' indentation (once the first is read) and its values.
struct List {
    key: String,
    indent: Option<usize>,
    values: Vec<Value>,
}

impl Item {
    /// `key: value`, or `key:` opening a block list.
    fn pair(&mut self, text: &str) -> Option<()> {
        self.close()?;
        let (key, value) = match text.split_once(':') {
            Some((key, "")) => (key, None),
            Some((key, value)) => (key, Some(value.strip_prefix(' ')?)),
            None => return None,
        };
        if !is_word(key) || self.map.contains_key(key) {
            return None;
        }
        match value {
            None => {
                self.list = Some(List {
                    key: key.to_string(),
                    indent: None,
                    values: Vec::new(),
                })
            }
            Some(value) => {
                let value = match value.strip_prefix('[') {
                    Some(inner) => flow_list(inner)?,
                    None => scalar(value)?,
                };
                self.map.insert(key.to_string(), value);
            }
        }
        Some(())
    }

    fn list_item(&mut self, indent: usize, text: &str) -> Option<()> {
        let list = self.list.as_mut()?;
        if *list.indent.get_or_insert(indent) != indent {
            return None;
        }
        list.values.push(scalar(text)?);
        Some(())
    }

    /// Ends the open block list; a `key:` with no items under it (null) is not plain.
    fn close(&mut self) -> Option<()> {
        if let Some(list) = self.list.take() {
            if list.values.is_empty() {
                return None;
            }
            self.map.insert(list.key, Value::Array(list.values));
        }
        Some(())
    }

    fn finish(mut self) -> Option<Value> {
        self.close()?;
        Some(Value::Object(self.map))
    }
}

/// A mapping key YAML reads as this very string.
fn is_word(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.bytes().all(|b| b.is_ascii_alphanumeric())
        && !is_reserved(key)
}

/// Words a YAML loader may resolve to null, a boolean or a float, in YAML 1.1 or 1.2.
fn is_reserved(word: &str) -> bool {
    const RESERVED: [&str; 13] = [
        "null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf", "infinity",
        "none",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// The rest of a one-line flow list after its `[`: quoted or plain scalars, comma-separated.
fn flow_list(inner: &str) -> Option<Value> {
    let mut values = Vec::new();
    let mut rest = inner.trim_start_matches(' ');
    if let Some(after) = rest.strip_prefix(']') {
        return after.is_empty().then_some(Value::Array(values));
    }
    loop {
        let end = match rest.as_bytes().first()? {
            quote @ (b'"' | b'\'') => rest[1..].find(char::from(*quote))? + 2,
            _ => rest.find([',', ']'])?,
        };
        values.push(scalar(rest[..end].trim_end_matches(' '))?);
        rest = rest[end..].trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(']') {
            return after.is_empty().then_some(Value::Array(values));
        }
        rest = rest.strip_prefix(',')?.trim_start_matches(' ');
    }
}

/// A whole scalar: quoted without escapes, a decimal integer, or a plain string no YAML
/// loader reads as anything else.
fn scalar(text: &str) -> Option<Value> {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote) {
            let inner = inner.strip_suffix(quote)?;
            return (!inner.contains([quote, '\\'])).then(|| Value::String(inner.to_string()));
        }
    }
    let bytes = text.as_bytes();
    if !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) {
        // Leading zeros are octal to YAML 1.1; 18 digits always fit a u64.
        let plain = (bytes.len() == 1 || bytes[0] != b'0') && bytes.len() <= 18;
        return plain.then(|| text.parse::<u64>().ok().map(Value::from))?;
    }
    let safe = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/');
    if !bytes.iter().all(safe) {
        return None;
    }
    let word = bytes.first()?.is_ascii_alphabetic() && !is_reserved(text);
    // Digits and dots with two dots or more are no number (an IPv4 address).
    let dotted = bytes.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        && bytes.iter().filter(|b| **b == b'.').count() >= 2
        && bytes[0] != b'.';
    (word || dotted).then(|| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Vec<Value> {
        serde_yaml::from_str(text).expect("valid YAML in the test")
    }

    #[test]
    fn plain_items_read_as_serde_yaml_reads_them() {
        let texts = [
            "  - name: h1\n    type: A\n    ttl: 300\n    data: [\"192.0.2.1\"]\n\
             \x20 - name: h2\n    type: TXT\n    data: ['v=spf1 -all', \"a, b\"]\n",
            "- name: www\n  type: AAAA\n  data:\n  - 2001:db8::1\n  - \"2001:db8::2\"\n",
            "  - name: mail.sub\n    type: MX\n    data:\n      - \"10 mx1.example.com.\"\n\
             \x20   ownerGroup: team-a\n",
            "  - name: '@'\n    type: A\n    data: [192.0.2.1, 192.0.2.2]\n\n  # a comment\n\
             \x20 - name: h_3\n    type: CNAME\n    data: [ \"x.example.com.\" ]\n    ttl: 0\n",
            "  - name: e\n    type: TXT\n    data: []\n",
        ];
        for text in texts {
            match read(text) {
                Some(items) => assert_eq!(items, yaml(text), "{text}"),
                None => assert!(
                    !text.contains("h1"),
                    "the bench's shape must be read: {text}"
                ),
            }
        }
        assert!(read(texts[0]).is_some() && read(texts[2]).is_some() && read(texts[3]).is_some());
    }

    #[test]
    fn anything_a_loader_could_read_otherwise_is_left_to_serde_yaml() {
        let unsure = [
            "- name: h1 # a comment\n",
            "- name: null\n",
            "- name: yes\n",
            "- name: \"a\\tb\"\n",
            "- name: 'it''s'\n",
            "- name: &a h1\n",
            "- name: !!str 1\n",
            "- name: 1.5\n",
            "- name: 0300\n",
            "- name: 1e3\n",
            "- name: h1\n  name: h2\n",
            "- name: h1\n  data:\n  type: A\n",
            "- name: h1\n  data:\n    x: 1\n",
            "- name: h1\n    continued\n",
            "- name: {a: 1}\n",
            "- name: [a, ]\n",
            "- name: h1\r\n",
            "- name: h1 \n",
            "- name: -1\n",
            "-\n  name: h1\n",
            "- name: .inf\n",
            "- name: 123456789012345678901\n",
        ];
        for text in unsure {
            assert_eq!(read(text), None, "{text:?}");
        }
    }

    #[test]
    fn numbers_and_strings_keep_their_yaml_types() {
        let text = "- name: h1\n  ttl: 0\n  big: 123456789012345678\n  data: [\"300\", 300]\n";
        let items = read(text).expect("plain");
        assert_eq!(items, yaml(text));
        assert_eq!(items[0]["data"][0], "300");
        assert_eq!(items[0]["data"][1], 300);
    }
}
