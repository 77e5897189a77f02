//! json: the report as one JSON document (the `Summary`, schema in `docs/json-report.md`).

use std::io::Write;

use super::Summary;

/// Writes the summary as pretty-printed JSON and a newline, streaming: a large registry's
/// report is never held in memory as one string.
pub fn write(summary: &Summary, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, summary)?;
    out.write_all(b"\n")
}

/// Writes the summary as pretty-printed JSON to the file at `path` (created or replaced),
/// streaming through a buffer. The error names the file.
pub fn write_file(summary: &Summary, path: &std::path::Path) -> Result<(), String> {
    let mut file = std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    write(summary, &mut file)
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// Renders the summary as pretty-printed JSON, ending with a newline.
#[cfg(test)]
pub fn render(summary: &Summary) -> String {
    let mut out = Vec::new();
    write(summary, &mut out).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;

    #[test]
    fn json_report() {
        let text = super::render(&fixtures::summary(false));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        insta::assert_json_snapshot!(value);
    }
}
