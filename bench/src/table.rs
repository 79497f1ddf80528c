//! Printing figures as Markdown tables, ready to paste into the README.

/// A table: a header row, then rows of cells.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints it with aligned columns.
    pub fn print(&self) {
        let columns = self.header.len();
        let width = |c: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(c))
                .chain([&self.header[c]])
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let line = |cells: &[String]| {
            let cells: Vec<String> = (0..columns)
                .map(|c| format!("{:<w$}", cells.get(c).map_or("", |s| s), w = widths[c]))
                .collect();
            println!("| {} |", cells.join(" | "));
        };
        line(&self.header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        println!("|-{}-|", rule.join("-|-"));
        for row in &self.rows {
            line(row);
        }
        println!();
    }
}

/// Milliseconds, to one decimal.
pub fn ms(duration: std::time::Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

/// `a / b` as a ratio, to two decimals, with the `x` readers expect.
pub fn ratio(a: f64, b: f64) -> String {
    times(a / b)
}

/// A ratio already computed, as [`ratio`] prints it.
pub fn times(ratio: f64) -> String {
    format!("{ratio:.2}x")
}

/// Bytes in MB (10^6), to two decimals.
pub fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1e6)
}
