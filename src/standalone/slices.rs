//! Big `spec.records` lists read a slice at a time.
//!
//! serde_yaml loads every event of a document before it deserialises any of it: a
//! 100k-record list held 1.2M events (about 200 MB) and then its JSON tree (80 MB more) at
//! once. Here the list's items are cut out of the text by their lines and read [`SLICE`]
//! items at a time; the rest of the document keeps the first item as a stand-in and takes the
//! usual path. A cut made from lines is only trusted once it reads back as it was made: the
//! stand-in must be the rest's only item, and every slice must hold exactly the items it was
//! cut at. Whatever does not fit (directives, tabs, anchors used across a cut, a short list)
//! gets no cut, and the caller reads that text the usual way.

use std::ops::Range;

use serde_json::Value;

/// Items read at once.
pub const SLICE: usize = 512;

/// Lists shorter than this are read whole: the saving is small, and the whole read is the
/// reference behaviour.
pub const MIN_ITEMS: usize = 2 * SLICE;

/// One line of a document: its byte offset and its text without the line break.
#[derive(Clone, Copy)]
struct Line<'a> {
    start: usize,
    text: &'a str,
}

/// What a line holds for the block structure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Blank or a comment: no say in where a block ends.
    Nothing,
    /// Content after this many spaces.
    Content(usize),
    /// A tab before the content: indentation this module does not judge.
    Tabbed,
}

impl<'a> Line<'a> {
    fn shape(&self) -> Shape {
        let indent = self.text.len() - self.text.trim_start_matches(' ').len();
        let rest = &self.text[indent..];
        if rest.starts_with('\t') {
            return if rest.trim().is_empty() || rest.trim_start().starts_with('#') {
                Shape::Nothing
            } else {
                Shape::Tabbed
            };
        }
        if rest.trim().is_empty() || rest.starts_with('#') {
            Shape::Nothing
        } else {
            Shape::Content(indent)
        }
    }

    /// `key:` at `indent` with nothing after it but a comment: a block mapping's key whose
    /// value is on the following lines.
    fn is_block_key(&self, indent: usize, key: &str) -> bool {
        let Some(rest) = self.text.get(indent..) else {
            return false;
        };
        if !self.text[..indent].bytes().all(|b| b == b' ') {
            return false;
        }
        let Some(after) = rest.strip_prefix(key).and_then(|r| r.strip_prefix(':')) else {
            return false;
        };
        let trimmed = after.trim_start_matches([' ', '\t']);
        trimmed.is_empty() || (trimmed.len() < after.len() && trimmed.starts_with('#'))
    }

    /// A block sequence entry (`- ...` or a lone `-`) at `indent`.
    fn is_entry(&self, indent: usize) -> bool {
        self.text
            .get(indent..)
            .is_some_and(|r| r == "-" || r.starts_with("- "))
    }
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for piece in text.split_inclusive('\n') {
        let body = piece.strip_suffix('\n').unwrap_or(piece);
        let body = body.strip_suffix('\r').unwrap_or(body);
        out.push(Line { start, text: body });
        start += piece.len();
    }
    out
}

/// The documents of a YAML stream, split at `---` lines, each with its byte offset in `text`;
/// `None` when the stream has anything else that ends or starts a document (`...`,
/// `--- value`, directives), whose numbering this split would have to reproduce.
pub fn documents(text: &str) -> Option<Vec<(usize, &str)>> {
    let mut docs = Vec::new();
    let mut start = 0;
    for line in lines(text) {
        let t = line.text;
        if t.starts_with('%') || t.starts_with("...") {
            return None;
        }
        if let Some(after) = t.strip_prefix("---") {
            if !after.trim_end_matches([' ', '\t']).is_empty() {
                return None;
            }
            docs.push((start, &text[start..line.start]));
            start = line.start + t.len();
        }
    }
    docs.push((start, &text[start..]));
    Some(docs)
}

/// A document with its `spec.records` items cut out.
#[derive(Debug)]
pub struct Cut<'a> {
    /// The document with only the list's first item, the stand-in.
    pub rest: String,
    /// The first item's text: `rest`'s list must read as this item alone.
    pub first: &'a str,
    /// The other items, in slices of at most [`SLICE`]: byte ranges of the document, each
    /// with its number of items.
    pub slices: Vec<(Range<usize>, usize)>,
}

/// Cuts the items of a top-level `spec:`'s block `records:` list out of one document, when
/// the list has at least `min_items` entries and its lines are plain enough to cut.
pub fn cut(doc: &str, min_items: usize) -> Option<Cut<'_>> {
    let lines = lines(doc);
    let mut specs = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_block_key(0, "spec"));
    let (spec, _) = specs.next()?;
    if specs.next().is_some() {
        return None;
    }
    // The spec's keys: the first content line gives their indentation.
    let mut key_indent = None;
    let mut records = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(spec + 1) {
        match line.shape() {
            Shape::Nothing => {}
            Shape::Tabbed => return None,
            Shape::Content(0) => break,
            Shape::Content(indent) => {
                let keys = *key_indent.get_or_insert(indent);
                if indent == keys && line.is_block_key(keys, "records") {
                    records.push(i);
                }
            }
        }
    }
    let (&[records], Some(keys)) = (records.as_slice(), key_indent) else {
        return None;
    };
    // The entries: lines at the first entry's indentation starting with `-`, up to the first
    // content line less indented, or as indented but not an entry.
    let mut entry_indent = None;
    let mut entries = Vec::new();
    let mut end = doc.len();
    for line in &lines[records + 1..] {
        let indent = match line.shape() {
            Shape::Nothing => continue,
            Shape::Tabbed => return None,
            Shape::Content(indent) => indent,
        };
        match entry_indent {
            None if indent >= keys && line.is_entry(indent) => {
                entry_indent = Some(indent);
                entries.push(line.start);
            }
            None => return None,
            Some(n) if indent < n || (indent == n && !line.is_entry(n)) => {
                end = line.start;
                break;
            }
            Some(n) if indent == n => entries.push(line.start),
            Some(_) => {}
        }
    }
    if entries.len() < min_items.max(2) {
        return None;
    }
    let mut rest = String::with_capacity(entries[1] + doc.len() - end);
    rest.push_str(&doc[..entries[1]]);
    rest.push_str(&doc[end..]);
    let slices = entries[1..]
        .chunks(SLICE)
        .enumerate()
        .map(|(k, chunk)| {
            let stop = entries.get(1 + (k + 1) * SLICE).copied().unwrap_or(end);
            (chunk[0]..stop, chunk.len())
        })
        .collect();
    Some(Cut {
        rest,
        first: &doc[entries[0]..entries[1]],
        slices,
    })
}

/// The schema of one `spec.records` item, when checking items one by one is checking the
/// list: the list itself has no bound of its own (`minItems`, `maxItems`, list types).
pub fn item_schema(records: &Value) -> Option<&Value> {
    let list = records.as_object()?;
    let plain = list
        .keys()
        .all(|k| matches!(k.as_str(), "type" | "items" | "description"));
    (plain && list.get("type")?.as_str()? == "array").then_some(())?;
    list.get("items")
}

/// Reads a slice's items; `None` unless it holds exactly `count` of them.
pub fn read_items(slice: &str, count: usize) -> Option<Vec<Value>> {
    let items = match super::plain_items::read(slice) {
        Some(items) => items,
        None => serde_yaml::from_str(slice).ok()?,
    };
    (items.len() == count).then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(items: usize, entry: &str) -> String {
        let mut d = String::from(
            "apiVersion: dns.zonekeeper.io/v1alpha1\nkind: DnsZone\nmetadata: {name: z}\n\
             spec:\n  zoneName: example.com.\n  records:\n",
        );
        for i in 0..items {
            d.push_str(&entry.replace("{i}", &i.to_string()));
        }
        d.push_str("  # trailing comment\n  type: Primary\n");
        d
    }

    #[test]
    fn documents_split_at_plain_separators_only() {
        assert_eq!(
            documents("a: 1\n---\nb: 2\n--- \nc: 3").unwrap(),
            [(0, "a: 1\n"), (8, "\nb: 2\n"), (18, "\nc: 3")]
        );
        assert!(documents("a: 1\n--- !tag\nb: 2\n").is_none());
        assert!(documents("%YAML 1.2\n---\na: 1\n").is_none());
        assert!(documents("a: 1\n...\n").is_none());
    }

    #[test]
    fn a_cut_keeps_the_first_item_and_slices_the_others() {
        let d = doc(
            SLICE + 3,
            "  - name: h{i}\n    type: A\n    data: [\"192.0.2.1\"]\n",
        );
        let cut = cut(&d, 2).unwrap();
        assert_eq!(
            cut.first,
            "  - name: h0\n    type: A\n    data: [\"192.0.2.1\"]\n"
        );
        assert!(
            cut.rest
                .ends_with(&format!("  records:\n{}  type: Primary\n", cut.first))
        );
        let counts: Vec<usize> = cut.slices.iter().map(|s| s.1).collect();
        assert_eq!(counts, [SLICE, 2]);
        let last = &d[cut.slices[1].0.clone()];
        assert_eq!(
            read_items(last, 2).unwrap()[1]["name"],
            format!("h{}", SLICE + 2)
        );
        assert!(read_items(last, 3).is_none());
    }

    #[test]
    fn the_compact_form_and_nested_lists_are_cut_at_entries_of_the_list() {
        let d = doc(
            5,
            "  - name: h{i}\n    type: A\n    data:\n    - 192.0.2.1\n    - 192.0.2.2\n",
        );
        let cut = cut(&d, 2).unwrap();
        assert_eq!(cut.slices.len(), 1);
        let items = read_items(&d[cut.slices[0].0.clone()], 4).unwrap();
        assert_eq!(items[3]["data"][1], "192.0.2.2");
        assert!(cut.rest.contains("  type: Primary\n"));
    }

    #[test]
    fn nothing_is_cut_from_short_flow_or_tabbed_lists() {
        let block = "  - {name: h{i}, type: A, data: [\"192.0.2.1\"]}\n";
        assert!(cut(&doc(3, block), 4).is_none());
        assert!(cut(&doc(3, block), 2).is_some());
        let flow = "apiVersion: v\nspec:\n  records: [{name: a}, {name: b}, {name: c}]\n";
        assert!(cut(flow, 2).is_none());
        let tabbed = doc(3, "  - name: h{i}\n\ttype: A\n");
        assert!(cut(&tabbed, 2).is_none());
        let twice = format!("{}spec:\n  records:\n  - a\n", doc(3, block));
        assert!(cut(&twice, 2).is_none());
    }
}
