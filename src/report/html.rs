//! `report.html`: the document as one self-contained page. Figures are
//! inlined as SVG (read from `figures/`), so the file can be mailed or
//! archived alone; the only styling is a short embedded style sheet.

use super::document::{Block, Cell, Document, Table};
use super::ReportError;
use std::path::Path;

/// The embedded style sheet.
const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1150px;margin:2rem auto;\
padding:0 1rem;color:#1a1a1a;line-height:1.5}h1{font-size:1.8rem}h2{margin-top:2.5rem;border-bottom:1px solid #ddd}\
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:1rem 0;font-size:.88rem}th,td{padding:.3rem .65rem;\
border-bottom:1px solid #e3e3e3;white-space:nowrap}th{text-align:left;border-bottom:2px solid #555}td.num,th.num\
{text-align:right;font-variant-numeric:tabular-nums}sup{color:#b3470b;font-weight:600}figure{margin:2rem 0}\
figure svg{width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.9rem;color:#444}\
pre{background:#f5f5f5;padding:1rem;overflow-x:auto}code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}";

/// Renders the document; SVG figures are read from `dir`.
pub fn render(document: &Document, dir: &Path) -> Result<String, ReportError> {
    let mut body = String::new();
    for block in &document.blocks {
        match block {
            Block::Heading(level, text) => {
                body += &format!("<h{level}>{}</h{level}>\n", inline(text))
            }
            Block::Paragraph(text) => body += &format!("<p>{}</p>\n", inline(text)),
            Block::List(items) => {
                body += "<ul>\n";
                for item in items {
                    body += &format!("<li>{}</li>\n", inline(item));
                }
                body += "</ul>\n";
            }
            Block::Table(table) => body += &table_html(table),
            Block::Figure {
                svg,
                title,
                caption,
                ..
            } => {
                let path = dir.join(svg);
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ReportError::Read { path, source })?;
                body += &format!(
                    "<figure>\n{}\n<figcaption><strong>{}.</strong> {}</figcaption>\n</figure>\n",
                    strip_prolog(&text),
                    escape(title),
                    inline(caption)
                );
            }
            Block::Code { language, text } => {
                body += &format!(
                    "<pre><code class=\"language-{}\">{}</code></pre>\n",
                    escape(language),
                    escape(text)
                );
            }
        }
    }
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n\
         </head>\n<body>\n{body}</body>\n</html>\n",
        escape(&document.title)
    ))
}

/// The SVG element without an XML declaration (not allowed inside HTML).
fn strip_prolog(svg: &str) -> &str {
    match (svg.trim_start().starts_with("<?xml"), svg.find("?>")) {
        (true, Some(end)) => svg[end + 2..].trim_start(),
        _ => svg,
    }
}

fn table_html(table: &Table) -> String {
    let class = |numeric: bool| if numeric { " class=\"num\"" } else { "" };
    let mut out = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
    for (h, &n) in table.header.iter().zip(&table.numeric) {
        out += &format!("<th{}>{}</th>", class(n), escape(h));
    }
    out += "</tr></thead>\n<tbody>\n";
    for row in &table.rows {
        out += "<tr>";
        for (cell, &n) in row
            .iter()
            .zip(table.numeric.iter().chain(std::iter::repeat(&false)))
        {
            out += &format!("<td{}>{}</td>", class(n), cell_html(cell));
        }
        out += "</tr>\n";
    }
    out + "</tbody>\n</table></div>\n"
}

fn cell_html(cell: &Cell) -> String {
    let text = escape(&cell.text);
    let text = if cell.bold {
        format!("<strong>{text}</strong>")
    } else {
        text
    };
    if cell.marks.is_empty() {
        text
    } else {
        format!("{text}<sup>{}</sup>", escape(&cell.marks))
    }
}

/// Escapes text and turns `code` spans into `<code>`.
fn inline(text: &str) -> String {
    let escaped = escape(text);
    let mut out = String::with_capacity(escaped.len());
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            out += &format!("<code>{part}</code>");
        } else {
            out += part;
        }
    }
    out
}

/// HTML-escapes `&`, `<`, `>` and `"`.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlines_svg_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("figures")).unwrap();
        std::fs::write(
            dir.path().join("figures/a.svg"),
            "<?xml version=\"1.0\"?>\n<svg viewBox=\"0 0 1 1\"></svg>",
        )
        .unwrap();
        let document = Document {
            title: "A & B".into(),
            blocks: vec![
                Block::Paragraph("p < 0.05 for `none`".into()),
                Block::Figure {
                    png: String::new(),
                    svg: "figures/a.svg".into(),
                    title: "Fig".into(),
                    caption: "c".into(),
                },
                Block::Table(Table {
                    header: vec!["x".into()],
                    rows: vec![vec![Cell {
                        text: "0.9".into(),
                        bold: true,
                        marks: "*".into(),
                    }]],
                    numeric: vec![true],
                }),
            ],
        };
        let html = render(&document, dir.path()).unwrap();
        assert!(html.contains("<title>A &amp; B</title>"));
        assert!(html.contains("<p>p &lt; 0.05 for <code>none</code></p>"));
        assert!(html.contains("<figure>\n<svg viewBox") && !html.contains("<?xml"));
        assert!(html.contains("<td class=\"num\"><strong>0.9</strong><sup>*</sup></td>"));
        let missing = Document {
            title: String::new(),
            blocks: vec![Block::Figure {
                png: String::new(),
                svg: "figures/b.svg".into(),
                title: String::new(),
                caption: String::new(),
            }],
        };
        assert!(render(&missing, dir.path())
            .unwrap_err()
            .to_string()
            .contains("b.svg"));
    }
}
