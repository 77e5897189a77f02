//! json: the report as one JSON document (the `Summary`, schema in `docs/json-report.md`).

use super::Summary;

/// Renders the summary as pretty-printed JSON, ending with a newline.
pub fn render(summary: &Summary) -> String {
    let mut text = serde_json::to_string_pretty(summary)
        .expect("a summary holds only strings, numbers and maps: it always serialises");
    text.push('\n');
    text
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
