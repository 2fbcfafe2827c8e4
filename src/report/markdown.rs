//! `report.md`: the document as GitHub-flavoured Markdown, figures linked
//! as relative PNG paths so the folder can be moved or copied whole.

use super::document::{Block, Cell, Document, Table};

/// Renders the document.
pub fn render(document: &Document) -> String {
    let mut out = String::new();
    for block in &document.blocks {
        match block {
            Block::Heading(level, text) => {
                out += &format!("{} {}\n\n", "#".repeat(usize::from(*level)), text);
            }
            Block::Paragraph(text) => out += &format!("{text}\n\n"),
            Block::List(items) => {
                for item in items {
                    out += &format!("- {}\n", item.replace('\n', " "));
                }
                out += "\n";
            }
            Block::Table(table) => out += &table_text(table),
            Block::Figure {
                png,
                title,
                caption,
                ..
            } => {
                out += &format!(
                    "![{}]({png})\n\n**{}.** {}\n\n",
                    escape(title),
                    escape(title),
                    caption
                );
            }
            Block::Code { language, text } => {
                let fence = if text.contains("```") { "~~~~" } else { "```" };
                out += &format!("{fence}{language}\n{text}\n{fence}\n\n");
            }
        }
    }
    out.trim_end().to_string() + "\n"
}

/// A pipe table.
fn table_text(table: &Table) -> String {
    let mut out = format!(
        "| {} |\n",
        table
            .header
            .iter()
            .map(|h| escape(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let rule: Vec<&str> = table
        .numeric
        .iter()
        .map(|&n| if n { "---:" } else { "---" })
        .collect();
    out += &format!("| {} |\n", rule.join(" | "));
    for row in &table.rows {
        out += &format!(
            "| {} |\n",
            row.iter().map(cell_text).collect::<Vec<_>>().join(" | ")
        );
    }
    out + "\n"
}

/// A cell: bold text, then marks escaped so `**` is not read as emphasis.
fn cell_text(cell: &Cell) -> String {
    let text = escape(&cell.text);
    let text = if cell.bold && !text.is_empty() {
        format!("**{text}**")
    } else {
        text
    };
    if cell.marks.is_empty() {
        text
    } else {
        format!("{text} {}", escape(&cell.marks))
    }
}

/// Escapes the characters that Markdown would read as syntax inside cells and titles.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '|' | '*' | '_' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_bold_marks_and_escapes() {
        let document = Document {
            title: "t".into(),
            blocks: vec![
                Block::Heading(2, "Results".into()),
                Block::Table(Table {
                    header: vec!["data.pos_fraction".into(), "AUROC".into()],
                    rows: vec![vec![
                        Cell::plain("0.1"),
                        Cell {
                            text: "0.912 ± 0.010".into(),
                            bold: true,
                            marks: "**".into(),
                        },
                    ]],
                    numeric: vec![false, true],
                }),
                Block::Figure {
                    png: "figures/bars.png".into(),
                    svg: String::new(),
                    title: "Bars".into(),
                    caption: "c".into(),
                },
            ],
        };
        let text = render(&document);
        assert!(
            text.starts_with("## Results\n\n| data.pos\\_fraction | AUROC |\n| --- | ---: |\n"),
            "{text}"
        );
        assert!(
            text.contains("| 0.1 | **0.912 ± 0.010** \\*\\* |"),
            "{text}"
        );
        assert!(text.contains("![Bars](figures/bars.png)"), "{text}");
    }
}
