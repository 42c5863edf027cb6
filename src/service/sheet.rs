//! A table of the settlement's files: a header, rows of cells and a total row, written
//! as CSV rows or as a worksheet with the header bold and frozen, amounts as numbers
//! with two decimals, and every column sized to its content.

use crate::domain::money::Fen;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

/// One cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    /// Yuan, written as a number with two decimals.
    Yuan(Fen),
    Int(i64),
    Empty,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        let text = text.into();
        if text.is_empty() { Cell::Empty } else { Cell::Text(text) }
    }

    /// The cell as CSV text.
    fn csv(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Yuan(f) => f.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Empty => String::new(),
        }
    }

    /// How wide the cell shows, in Excel's character widths (a CJK character takes two).
    fn width(&self) -> f64 {
        self.csv().chars().map(|c| if c.is_ascii() { 1.1 } else { 2.1 }).sum()
    }
}

/// A row, bold or not.
#[derive(Debug, Clone)]
pub struct Row {
    pub cells: Vec<Cell>,
    pub bold: bool,
}

/// A table: header, rows, and a total row at the end.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: &'static str,
    pub header: Vec<&'static str>,
    pub rows: Vec<Row>,
}

/// Columns are never narrower or wider than this (in characters).
const MIN_WIDTH: f64 = 6.0;
const MAX_WIDTH: f64 = 60.0;

impl Table {
    pub fn new(name: &'static str, header: &[&'static str]) -> Table {
        Table { name, header: header.to_vec(), rows: Vec::new() }
    }

    pub fn push(&mut self, cells: Vec<Cell>) {
        self.rows.push(Row { cells, bold: false });
    }

    pub fn push_bold(&mut self, cells: Vec<Cell>) {
        self.rows.push(Row { cells, bold: true });
    }

    /// Writes the header and the rows to a CSV writer.
    pub fn write_csv<W: std::io::Write>(&self, writer: &mut csv::Writer<W>) -> csv::Result<()> {
        writer.write_record(&self.header)?;
        for row in &self.rows {
            writer.write_record(row.cells.iter().map(Cell::csv))?;
        }
        Ok(())
    }

    /// Adds the table to the workbook as a worksheet.
    pub fn write_sheet(&self, book: &mut Workbook) -> Result<(), XlsxError> {
        let bold = Format::new().set_bold();
        let yuan = Format::new().set_num_format("0.00");
        let bold_yuan = Format::new().set_bold().set_num_format("0.00");
        let sheet = book.add_worksheet().set_name(self.name)?;
        let mut widths: Vec<f64> = self.header.iter().map(|h| Cell::text(*h).width()).collect();
        for (col, title) in self.header.iter().enumerate() {
            sheet.write_string_with_format(0, col as u16, *title, &bold)?;
        }
        for (i, row) in self.rows.iter().enumerate() {
            let r = i as u32 + 1;
            for (c, cell) in row.cells.iter().enumerate() {
                let col = c as u16;
                match (cell, row.bold) {
                    (Cell::Text(t), false) => sheet.write_string(r, col, t)?,
                    (Cell::Text(t), true) => sheet.write_string_with_format(r, col, t, &bold)?,
                    (Cell::Yuan(f), false) => sheet.write_number_with_format(r, col, yuan_of(*f), &yuan)?,
                    (Cell::Yuan(f), true) => sheet.write_number_with_format(r, col, yuan_of(*f), &bold_yuan)?,
                    (Cell::Int(n), false) => sheet.write_number(r, col, *n as f64)?,
                    (Cell::Int(n), true) => sheet.write_number_with_format(r, col, *n as f64, &bold)?,
                    (Cell::Empty, _) => sheet,
                };
                if let Some(w) = widths.get_mut(c) {
                    *w = w.max(cell.width());
                }
            }
        }
        for (col, width) in widths.into_iter().enumerate() {
            sheet.set_column_width(col as u16, (width + 2.0).clamp(MIN_WIDTH, MAX_WIDTH))?;
        }
        sheet.set_freeze_panes(1, 0)?;
        Ok(())
    }
}

fn yuan_of(fen: Fen) -> f64 {
    fen.0 as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_counts_double_width() {
        assert!(Cell::text("客户成功事业部").width() > Cell::text("zhangwei").width());
        assert_eq!(Cell::text(""), Cell::Empty);
    }
}
